//! Callback states (spec 40 §4.1) and completion reasons (§4.4).

use std::fmt;

/// The `_callback_state` of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Scheduled,
    Queued,
    Routing,
    Processing,
    Paused,
    Completed,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Scheduled,
        State::Queued,
        State::Routing,
        State::Processing,
        State::Paused,
        State::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Scheduled => "SCHEDULED",
            State::Queued => "QUEUED",
            State::Routing => "ROUTING",
            State::Processing => "PROCESSING",
            State::Paused => "PAUSED",
            State::Completed => "COMPLETED",
        }
    }

    /// Parses a state name; matching is case-sensitive (spec 40 §4.1).
    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// States in which a live execution session exists.
    pub fn is_in_session(self) -> bool {
        !matches!(self, State::Scheduled | State::Completed)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Completion reasons the server itself writes.
pub mod reason {
    pub const CANCELLED: &str = "CANCELLED";
    pub const CANCELLED_BY_ADMIN: &str = "CANCELLED_BY_ADMIN";
    pub const FAIL_TIMEOUT_TTL: &str = "FAIL_TIMEOUT_TTL";
    pub const NOT_AVAILABLE: &str = "NOT_AVAILABLE";
    pub const SUBMIT_ERROR: &str = "SUBMIT_ERROR";
    pub const FAIL_CALL_TO_CUSTOMER: &str = "FAIL_CALL_TO_CUSTOMER";
    /// Legacy name that selects `FAIL_CALL_TO_CUSTOMER` (spec 40 §9 #1).
    pub const FAIL_USER_UNREACHABLE: &str = "FAIL_USER_UNREACHABLE";

    /// Whether a stored reason is selected by a reason given in a filter.
    pub fn matches(stored: &str, selector: &str) -> bool {
        stored == selector || (selector == FAIL_USER_UNREACHABLE && stored == FAIL_CALL_TO_CUSTOMER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::parse("queued"), None);
        assert_eq!(State::parse("FOO"), None);
    }

    #[test]
    fn legacy_reason_selects_new_name() {
        assert!(reason::matches("FAIL_CALL_TO_CUSTOMER", "FAIL_USER_UNREACHABLE"));
        assert!(!reason::matches("CANCELLED", "FAIL_USER_UNREACHABLE"));
    }
}
