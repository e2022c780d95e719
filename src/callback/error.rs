//! The error catalogue of the callback API (spec 40 §2.10-2.11): every refusal is a value with a
//! numeric code, a phrase, an exception class name kept for client compatibility, a message and
//! case-specific properties.

use serde_json::{Map, Value};

/// The numeric codes of spec 40 §2.11.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    NumberAlreadyBooked,
    ThrottleServiceLimit,
    ThrottleServiceIntervalLimit,
    ThrottleServiceParameterLimit,
    BadParameter,
    InvalidOperation,
    CallbackNotFound,
    NumberRejected,
    SlotUnavailable,
    SlotUnavailableProposal,
    CapacityError,
    CalendarError,
    OrsMaxSubmitRetries,
    BadConfiguration,
    OrsError,
    ServiceRedirectFailed,
    UnknownError,
}

impl ErrorCode {
    pub fn code(self) -> u32 {
        use ErrorCode::*;
        match self {
            NumberAlreadyBooked => 40001,
            ThrottleServiceLimit => 40002,
            ThrottleServiceIntervalLimit => 40003,
            ThrottleServiceParameterLimit => 40004,
            BadParameter => 40010,
            InvalidOperation => 40020,
            CallbackNotFound => 40030,
            NumberRejected => 40040,
            SlotUnavailable => 40050,
            SlotUnavailableProposal => 40051,
            CapacityError => 50004,
            CalendarError => 50005,
            OrsMaxSubmitRetries => 50006,
            BadConfiguration => 50020,
            OrsError => 50030,
            ServiceRedirectFailed => 50040,
            UnknownError => 50050,
        }
    }

    pub fn http_status(self) -> u16 {
        match self.code() {
            40001..=40004 => 429,
            c if c < 50000 => 400,
            _ => 500,
        }
    }

    pub fn phrase(self) -> &'static str {
        use ErrorCode::*;
        match self {
            NumberAlreadyBooked => "NUMBER_ALREADY_BOOKED",
            ThrottleServiceLimit => "THROTTLE_SERVICE_LIMIT",
            ThrottleServiceIntervalLimit => "THROTTLE_SERVICE_INTERVAL_LIMIT",
            ThrottleServiceParameterLimit => "THROTTLE_SERVICE_PARAMETER_LIMIT",
            BadParameter => "BAD_PARAMETER",
            InvalidOperation => "INVALID_OPERATION",
            CallbackNotFound => "CALLBACK_NOT_FOUND",
            NumberRejected => "NUMBER_REJECTED",
            SlotUnavailable => "SLOT_UNAVAILABLE",
            SlotUnavailableProposal => "SLOT_UNAVAILABLE_PROPOSAL",
            CapacityError => "CAPACITY_ERROR",
            CalendarError => "CALENDAR_ERROR",
            OrsMaxSubmitRetries => "ORS_MAX_SUBMIT_RETRIES",
            BadConfiguration => "BAD_CONFIGURATION",
            OrsError => "ORS_ERROR",
            ServiceRedirectFailed => "SERVICE_REDIRECT_FAILED",
            UnknownError => "UNKNOWN_ERROR",
        }
    }

    /// The exception class suffix; the full name is `com.genesyslab.gsg.services.callback.` + it.
    pub fn exception_suffix(self) -> &'static str {
        use ErrorCode::*;
        match self {
            NumberAlreadyBooked => "CallbackExceptionAlreadyBooked",
            ThrottleServiceLimit | ThrottleServiceIntervalLimit | ThrottleServiceParameterLimit => {
                "CallbackExceptionThrottled"
            }
            BadParameter => "CallbackExceptionBadParameter",
            InvalidOperation => "CallbackExceptionInvalidOperation",
            CallbackNotFound => "CallbackExceptionNotFound",
            NumberRejected => "CallbackExceptionNumber",
            SlotUnavailable | SlotUnavailableProposal => "CallbackExceptionAvailability",
            CapacityError => "CallbackExceptionCapacityError",
            CalendarError => "CallbackExceptionCalendarError",
            OrsMaxSubmitRetries => "CallbackExceptionMaxORSSubmitAttempts",
            BadConfiguration => "CallbackExceptionConfiguration",
            OrsError => "CallbackExceptionFromORS",
            ServiceRedirectFailed => "CallbackExceptionServiceRedirect",
            UnknownError => "CallbackExceptionUnknown",
        }
    }

    pub fn exception(self) -> String {
        format!("com.genesyslab.gsg.services.callback.{}", self.exception_suffix())
    }
}

/// A refusal of the callback API, rendered as the JSON error envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackError {
    pub code: ErrorCode,
    pub message: String,
    /// Boxed, like `availability`, to keep `Result<_, CallbackError>` small.
    pub properties: Box<Map<String, Value>>,
    /// Proposed slots, only with 40051.
    pub availability: Option<Box<Map<String, Value>>>,
}

pub type CallbackResult<T> = Result<T, CallbackError>;

impl CallbackError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            properties: Box::default(),
            availability: None,
        }
    }

    /// Adds one `properties` entry.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.properties.insert(key.to_string(), value.into());
        self
    }

    pub fn bad_parameter(option: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadParameter, message).with("option", option)
    }

    pub fn not_found(id: &str) -> Self {
        Self::new(
            ErrorCode::CallbackNotFound,
            format!("Callback {id} cannot be found"),
        )
        .with("id", id)
    }

    pub fn bad_configuration(service: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadConfiguration, message).with("service", service)
    }

    pub fn invalid_operation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidOperation, message)
    }

    /// An unexpected internal failure (50050); the message template has a trailing space.
    pub fn unknown(cause: impl std::fmt::Display) -> Self {
        let cause = cause.to_string();
        Self::new(
            ErrorCode::UnknownError,
            format!("Error processing callback {cause} "),
        )
        .with("message", cause)
    }
}

impl std::fmt::Display for CallbackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code.code(), self.code.phrase(), self.message)
    }
}

impl std::error::Error for CallbackError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_refusals_are_429_and_not_found_is_400() {
        assert_eq!(ErrorCode::NumberAlreadyBooked.http_status(), 429);
        assert_eq!(ErrorCode::ThrottleServiceParameterLimit.http_status(), 429);
        assert_eq!(ErrorCode::CallbackNotFound.http_status(), 400);
        assert_eq!(ErrorCode::BadConfiguration.http_status(), 500);
        assert_eq!(ErrorCode::UnknownError.code(), 50050);
    }

    #[test]
    fn unknown_error_message_keeps_trailing_space() {
        let e = CallbackError::unknown("boom");
        assert_eq!(e.message, "Error processing callback boom ");
        assert_eq!(e.properties["message"], "boom");
        assert_eq!(
            e.code.exception(),
            "com.genesyslab.gsg.services.callback.CallbackExceptionUnknown"
        );
    }
}
