//! SIP: messages (rsip + a thin wrapper), RFC 3261 transactions and the endpoint that matches
//! messages to them (sans-IO), SDP offer/answer, session timers (RFC 4028), the transports
//! (UDP datagrams; TCP streams cut by the sans-IO framer in [`transport`], connections in
//! [`tcp`]), and the telephony configuration.

pub mod config;
pub mod endpoint;
pub mod msg;
pub mod sdp;
pub mod session_timer;
pub mod tcp;
pub mod transaction;
pub mod transport;
