//! RTP (RFC 3550): packets, the per-leg session, receiver statistics and RTCP.
//!
//! Packets are parsed and built with the `rtp-rs` crate; [`parse`] adds the checks a receiver
//! needs before it trusts a datagram, and turns every problem into a [`MalformedRtp`] value.

mod packet;
pub mod rtcp;
mod session;
mod stats;

pub use packet::{MalformedRtp, RtpBuildError, RtpHeader, RtpPacket, looks_like_rtcp, parse, write};
pub use session::{
    DropReason, Incoming, MediaKind, RtpSession, SendError, SessionConfig, SessionCounters, SessionEvent,
};
pub use stats::{ReceiverStats, ReceptionSnapshot};
