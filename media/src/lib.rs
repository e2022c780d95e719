//! # boomerang-media
//!
//! The sans-IO media core of Boomerang: every audio frame of every call passes through here.
//!
//! Nothing in this crate opens a socket, spawns a task or reads a clock. Time is passed in by
//! the caller as a [`Time`] (a monotonic microsecond count from an origin the caller chooses),
//! input is pushed in (`handle_rtp`, `push`, ...) and output is polled out (`poll_frame`,
//! `poll_rtcp`, `poll_timeout`, ...), in the style of `quinn-proto` and `str0m`. Treatment files
//! are the one exception to "no IO": [`treatment::load`] and [`treatment::TreatmentCache`] read
//! files, once, at load time, and never on the per-frame path.
//!
//! Modules:
//! - [`g711`]: table-driven µ-law and A-law encode/decode (ITU-T G.711).
//! - [`rtp`]: RTP packets (RFC 3550, via `rtp-rs`), the per-leg [`rtp::RtpSession`], receiver
//!   statistics and RTCP sender/receiver reports with the RFC's transmission interval.
//! - [`jitter`]: adaptive or fixed-delay jitter buffer with flagged concealment frames.
//! - [`dtmf`]: RFC 4733 telephone-events, receive and send.
//! - [`treatment`]: load, resample, encode, cache and play WAV treatments; the option forms of
//!   spec 20 §2; `treatments check` reports through [`treatment::inspect`].
//! - [`cpd`]: call-progress detection (human, machine and beep, fax, busy, ringback, SIT,
//!   silence) with the evidence behind each decision.
//!
//! The per-frame paths (G.711, RTP build/parse, jitter buffer, treatment playback) do not
//! allocate: treatments are decoded, resampled and encoded once and shared through `Arc`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cpd;
pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod rtp;
mod time;
pub mod treatment;

pub use time::Time;
