//! Callback records, their state machine and the operations of the callback API.

pub mod admin;
pub mod admission;
pub mod engine;
pub mod error;
pub mod numbers;
pub mod options;
pub mod record;
pub mod scheduler;
pub mod service;
pub mod state;
pub mod validate;

pub use error::{CallbackError, CallbackResult, ErrorCode};
pub use record::CallbackRecord;
pub use service::Callbacks;
pub use state::State;

/// Request parameters after decoding (JSON, form or multipart, plus the query string): key →
/// text value, the last value of a repeated key kept.
pub type Params = std::collections::BTreeMap<String, String>;
