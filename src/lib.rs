//! Boomerang: a self-hosted contact-centre callback server.
//!
//! The crate is organised as in `DESIGN.md`: `config` reads the TOML configuration, `store`
//! persists callback records, `callback` holds the record model, its state machine, the
//! scheduler and the engine interface, `routing` answers estimated-wait-time questions, `api`
//! serves the GMS-compatible REST API, and `server` wires them together.

pub mod api;
pub mod calendar;
pub mod call;
pub mod callback;
pub mod clock;
pub mod config;
pub mod report;
pub mod routing;
pub mod server;
pub mod sip;
pub mod store;
pub mod time;
