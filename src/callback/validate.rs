//! Service validation, run before anything else on the service routes (spec 40 §5.1).

use crate::callback::error::{CallbackError, CallbackResult};
use crate::config::{Config, ServiceConfig};

/// What a request wants from a service; it decides which checks apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Start, reschedule or update (steps 1-5).
    Write,
    /// Cancel, get, lookup (steps 1-4).
    Read,
    /// Availability (steps 1-4, `_type=builtin` accepted too).
    Availability,
}

/// Finds a service and checks that it can serve the request.
pub fn check_service<'c>(
    config: &'c Config,
    name: &str,
    access: Access,
) -> CallbackResult<&'c ServiceConfig> {
    let bad = |message: String| CallbackError::bad_configuration(name, message);
    let service = config
        .service(name)
        .ok_or_else(|| bad(format!("Service undefined: {name}")))?;
    match service.option("_type") {
        Some("ors") => {}
        Some("builtin") if access == Access::Availability => {}
        Some("builtin") => return Err(bad(format!("Service {name} has option _type != ors"))),
        _ => return Err(bad(format!("Service {name} has unknown value for option _type"))),
    }
    if service.option("_service") != Some("callback") {
        return Err(bad(format!("Service {name} has option _service != callback")));
    }
    if access == Access::Write && service.option("_media_type") == Some("chat") {
        for needed in ["default_chat_endpoint", "default_client_timeout"] {
            if !config.chat.contains_key(needed) {
                return Err(bad(format!(
                    "Missing {needed} option in chat section because this service has parameter _media_type=chat"
                )));
            }
        }
    }
    Ok(service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::error::ErrorCode;

    const CONFIG: &str = r#"
        [service.ok]
        _type = "ors"
        _service = "callback"
        [service.builtin]
        _type = "builtin"
        _service = "callback"
        [service.weird]
        _type = "foo"
        _service = "callback"
        [service.notcb]
        _type = "ors"
        _service = "chat"
        [service.chat]
        _type = "ors"
        _service = "callback"
        _media_type = "chat"
    "#;

    fn message(name: &str, access: Access) -> String {
        let config = Config::parse(CONFIG, "t").unwrap();
        let e = check_service(&config, name, access).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadConfiguration);
        assert_eq!(e.properties["service"], name);
        e.message
    }

    #[test]
    fn checks_in_order() {
        let config = Config::parse(CONFIG, "t").unwrap();
        assert!(check_service(&config, "ok", Access::Write).is_ok());
        assert_eq!(message("nosuch", Access::Read), "Service undefined: nosuch");
        assert_eq!(
            message("builtin", Access::Write),
            "Service builtin has option _type != ors"
        );
        assert!(check_service(&config, "builtin", Access::Availability).is_ok());
        assert_eq!(
            message("weird", Access::Read),
            "Service weird has unknown value for option _type"
        );
        assert_eq!(
            message("notcb", Access::Read),
            "Service notcb has option _service != callback"
        );
        assert!(
            message("chat", Access::Write)
                .starts_with("Missing default_chat_endpoint option in chat section")
        );
        assert!(check_service(&config, "chat", Access::Read).is_ok());
    }
}
