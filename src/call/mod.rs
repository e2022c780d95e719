//! Call legs: a leg owns its dialog (signalling, sans-IO in [`leg`]) and its RTP session
//! (driven by [`driver`]); the driver also bridges legs.

pub mod driver;
pub mod leg;
pub mod registrar;
pub mod trunks;
