//! SIP: messages (rsip + a thin wrapper), RFC 3261 transactions and the endpoint that matches
//! datagrams to them (sans-IO), SDP offer/answer, and the tokio UDP driver.

pub mod config;
pub mod endpoint;
pub mod msg;
pub mod sdp;
pub mod session_timer;
pub mod tcp;
pub mod transaction;
pub mod transport;
