//! Call legs: a leg owns its dialog (signalling, sans-IO: outbound in [`leg`], inbound in
//! [`inbound_leg`]) and its RTP session (the media task of [`media_task`], started by
//! [`driver`]); the driver also bridges legs.

pub mod dialog;
pub mod driver;
pub mod dtmf_collect;
pub mod inbound;
pub mod inbound_leg;
pub mod leg;
pub mod media_task;
pub mod phones;
pub mod registrar;
pub mod relay;
pub mod trunks;
