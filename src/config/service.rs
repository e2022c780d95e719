//! One callback service: a `[service.NAME]` section of underscore options (the seed's service
//! configuration), with the values the server needs parsed once at load.

use std::collections::BTreeMap;

use super::ConfigError;
use super::calendar::CalendarConfig;
use super::values::{Section, TomlTable, option_text, parse_bool, split_list};

/// Options whose value is a whole number, with their allowed range and unit.
const NUMERIC_OPTIONS: &[(&str, i64, i64, &str)] = &[
    ("_ttl", 1, 10 * 365 * 86400, "seconds"),
    ("_request_execution_time_buffer", 0, 30 * 86400, "seconds"),
    ("_max_ors_submit_attempts", 1, 100, ""),
    ("_max_dial_attempts", 1, 100, ""),
    ("_dial_retry_timeout", 0, 7 * 86400, "seconds"),
    ("_urs_vq_priority", -1_000_000, 1_000_000, ""),
    ("_urs_vq_priority_increment", -1_000_000, 1_000_000, ""),
    ("_urs_vq_priority_increment_interval", 1, 86400, "seconds"),
    ("_urs_queued_ttl", 1, 10 * 365 * 86400, "seconds"),
    ("_request_time_bucket", 1, 1440, "minutes"),
    ("_max_transfer_to_agent_attempts", 1, 100, ""),
    ("_agent_transfer_confirm_timeout", 0, 3600, "seconds"),
];

/// Options whose value is `true` or `false`.
const BOOLEAN_OPTIONS: &[&str] = &[
    "_wait_for_agent",
    "_wait_for_user_confirm",
    "_enable_reject_out_of_office_hours",
    "_fix_plus_on_int_phone_numbers",
    "_disallow_impossible_phone_numbers",
    "_disallow_premium_phone_numbers",
    "_agent_preview",
];

/// Default `_ttl`: one day (seed lines 3380-3381).
pub const DEFAULT_TTL_SECS: i64 = 86400;
/// Default `_max_ors_submit_attempts`.
pub const DEFAULT_MAX_SUBMIT_ATTEMPTS: u32 = 3;

/// Whether `key` is a valid option or user-data name: an ECMAScript-style identifier,
/// `^[A-Za-z_$][A-Za-z0-9_$]*$` (spec 40 §2.5).
pub fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// Checks the value of a typed option (numbers, booleans); `Err` describes the problem.
pub fn check_typed_option(key: &str, value: &str) -> Result<(), String> {
    if let Some((_, min, max, unit)) = NUMERIC_OPTIONS.iter().find(|(k, ..)| *k == key) {
        let ok = value
            .trim()
            .parse::<i64>()
            .is_ok_and(|n| (*min..=*max).contains(&n));
        if !ok {
            let unit = if unit.is_empty() {
                String::new()
            } else {
                format!(" of {unit}")
            };
            return Err(format!(
                "expected a whole number{unit} from {min} to {max}, got '{value}'"
            ));
        }
    } else if BOOLEAN_OPTIONS.contains(&key) && parse_bool(value).is_none() {
        return Err(format!("expected true or false, got '{value}'"));
    } else if key == "_target" && !value.trim().is_empty() && !value.contains('$') {
        // A value with a `$token$` placeholder is checked once the request fills it in.
        crate::routing::target::TargetList::parse(value)?;
    }
    Ok(())
}

/// Where a callback's estimated wait time comes from (spec 40 §5.5), first set option wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EwtSource {
    /// `_request_ewt_service`: another service whose queue is asked.
    Service(String),
    /// `_request_queue_time_stat`: `statistic;object type;object id[;tenant]`.
    Statistic {
        statistic: String,
        object_type: String,
        object_id: String,
        tenant: Option<String>,
    },
    /// `_urs_ewt_vq`, `_urs_virtual_queue` or `_vq`: a virtual queue.
    VirtualQueue(String),
}

impl EwtSource {
    /// Picks the EWT source from an effective option set. `Err` carries the unparseable
    /// `_request_queue_time_stat` value.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<Option<EwtSource>, String> {
        let get = |k: &str| options.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        if let Some(s) = get("_request_ewt_service") {
            return Ok(Some(EwtSource::Service(s.to_string())));
        }
        if let Some(stat) = get("_request_queue_time_stat") {
            let fields: Vec<&str> = stat.split(';').map(str::trim).collect();
            if !(3..=4).contains(&fields.len()) || fields.iter().any(|f| f.is_empty()) {
                return Err(stat.to_string());
            }
            return Ok(Some(EwtSource::Statistic {
                statistic: fields[0].to_string(),
                object_type: fields[1].to_string(),
                object_id: fields[2].to_string(),
                tenant: fields.get(3).map(|t| t.to_string()),
            }));
        }
        for key in ["_urs_ewt_vq", "_urs_virtual_queue", "_vq"] {
            if let Some(vq) = get(key) {
                return Ok(Some(EwtSource::VirtualQueue(vq.to_string())));
            }
        }
        Ok(None)
    }
}

/// A configured callback service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub name: String,
    /// Every configured parameter as text: `_xxx` options and other keys alike.
    pub params: BTreeMap<String, String>,
    /// Token names declared by a parameter whose value is `$name$` (spec 40 §5.3).
    pub tokens: Vec<String>,
    pub ttl_secs: i64,
    pub buffer_secs: i64,
    pub max_submit_attempts: u32,
    /// Keys a lookup may use: `_customer_lookup_keys` plus `_customer_number`.
    pub lookup_keys: Vec<String>,
    /// `_mandatory_customer_lookup_keys`.
    pub mandatory_lookup_keys: Vec<String>,
    /// `_overwritable_options`, restricted to the two the seed allows (`_ors`, `_target`).
    pub overwritable: Vec<String>,
    pub fix_plus: bool,
}

impl ServiceConfig {
    pub fn parse(
        file: &str,
        name: &str,
        table: &TomlTable,
        calendars: &BTreeMap<String, CalendarConfig>,
        chat: &BTreeMap<String, String>,
        warnings: &mut Vec<String>,
    ) -> Result<ServiceConfig, ConfigError> {
        let place = format!("service.{name}");
        let s = Section::new(file, &place, table);
        if name.is_empty() || name.contains('/') || name.len() > 128 {
            return Err(s.invalid("", "a service name must be 1-128 characters without '/'"));
        }
        let mut params = BTreeMap::new();
        for (key, value) in table {
            let text = option_text(value).map_err(|p| s.invalid(key, p))?;
            check_typed_option(key, &text).map_err(|p| s.invalid(key, p))?;
            params.insert(key.clone(), text);
        }
        let mut warn =
            |option: &str, text: String| warnings.push(format!("{file}: [{place}] {option}: {text}"));

        let mut tokens = Vec::new();
        for (key, value) in &params {
            if !is_valid_key(key) {
                warn(key, "not a valid option name; requests cannot refer to it".into());
            }
            if let Some(token) = token_declaration(value) {
                if !is_valid_key(token) {
                    return Err(s.invalid(key, format!("token name '{token}' is not a valid identifier")));
                }
                tokens.push(token.to_string());
            }
        }

        let get = |k: &str| params.get(k).map(String::as_str);
        match get("_type") {
            Some("ors") => {}
            Some("builtin") => warn(
                "_type",
                "builtin: start/cancel/update requests are refused with 50020 (availability works)".into(),
            ),
            other => warn(
                "_type",
                format!(
                    "{}: every request is refused with 50020",
                    other.map_or("missing".into(), |t| format!("unknown value '{t}'"))
                ),
            ),
        }
        if get("_service") != Some("callback") {
            warn(
                "_service",
                "not 'callback': every request is refused with 50020".into(),
            );
        }
        if get("_media_type") == Some("chat") {
            for needed in ["default_chat_endpoint", "default_client_timeout"] {
                if !chat.contains_key(needed) {
                    warn(
                        "_media_type",
                        format!(
                            "chat, but the [chat] section has no {needed}: requests are refused with 50020"
                        ),
                    );
                }
            }
        }
        if let Some(cal) = get("_business_hours_service")
            && !calendars.contains_key(cal)
        {
            warn(
                "_business_hours_service",
                format!("no [calendar.{cal}] section: requests are refused with 50020"),
            );
        }
        if let Err(stat) = EwtSource::from_options(&params) {
            warn(
                "_request_queue_time_stat",
                format!("'{stat}' is not statistic;type;id[;tenant]: requests are refused with 50020"),
            );
        }
        for option in [
            "_disallow_impossible_phone_numbers",
            "_disallow_premium_phone_numbers",
        ] {
            if get(option).and_then(parse_bool) == Some(true) && get("_default_country").is_none() {
                warn(
                    option,
                    "set without _default_country: requests are refused with 50020".into(),
                );
            }
        }
        if let Some(prefix) = get("_prefix_dial_out")
            && !prefix
                .trim()
                .chars()
                .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
        {
            return Err(s.invalid(
                "_prefix_dial_out",
                format!("'{prefix}' is not a dial prefix (digits, '*' and '#' only)"),
            ));
        }
        let mut overwritable = Vec::new();
        for item in split_list(get("_overwritable_options").unwrap_or("")) {
            if item == "_ors" || item == "_target" {
                overwritable.push(item);
            } else {
                warn(
                    "_overwritable_options",
                    format!("'{item}' ignored: only _ors and _target may be overwritten"),
                );
            }
        }
        let mut lookup_keys = split_list(get("_customer_lookup_keys").unwrap_or(""));
        if !lookup_keys.iter().any(|k| k == "_customer_number") {
            lookup_keys.insert(0, "_customer_number".to_string());
        }
        let number = |k: &str, default: i64| {
            get(k)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(default)
        };
        Ok(ServiceConfig {
            name: name.to_string(),
            tokens,
            ttl_secs: number("_ttl", DEFAULT_TTL_SECS),
            buffer_secs: number("_request_execution_time_buffer", 0),
            max_submit_attempts: number("_max_ors_submit_attempts", DEFAULT_MAX_SUBMIT_ATTEMPTS as i64)
                as u32,
            lookup_keys,
            mandatory_lookup_keys: split_list(get("_mandatory_customer_lookup_keys").unwrap_or("")),
            overwritable,
            fix_plus: get("_fix_plus_on_int_phone_numbers")
                .and_then(parse_bool)
                .unwrap_or(false),
            params,
        })
    }

    /// A configured parameter.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// A configured boolean option (`false` when absent).
    pub fn flag(&self, key: &str) -> bool {
        self.option(key).and_then(parse_bool).unwrap_or(false)
    }

    /// Whether a parameter only declares a token (and is not itself a callback option).
    pub fn is_token_declaration(&self, key: &str) -> bool {
        self.params.get(key).and_then(|v| token_declaration(v)).is_some()
    }
}

/// `$name$` → `name`.
fn token_declaration(value: &str) -> Option<&str> {
    let inner = value.strip_prefix('$')?.strip_suffix('$')?;
    (!inner.is_empty() && !inner.contains('$')).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_syntax() {
        for ok in ["_customer_number", "usr_name", "$x", "a1", "_"] {
            assert!(is_valid_key(ok), "{ok}");
        }
        for bad in ["foo.bar", "foo-bar", "1abc", "", "a b", "é"] {
            assert!(!is_valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn ewt_source_priority() {
        let mut o = BTreeMap::new();
        o.insert("_vq".to_string(), "VQ1".to_string());
        o.insert("_request_ewt_service".to_string(), "other".to_string());
        assert_eq!(
            EwtSource::from_options(&o),
            Ok(Some(EwtSource::Service("other".into())))
        );
        o.remove("_request_ewt_service");
        assert_eq!(
            EwtSource::from_options(&o),
            Ok(Some(EwtSource::VirtualQueue("VQ1".into())))
        );
        o.insert(
            "_request_queue_time_stat".into(),
            "ExpectedWaitTime;Queue;8999@SIP_Server;Environment".into(),
        );
        assert!(matches!(
            EwtSource::from_options(&o),
            Ok(Some(EwtSource::Statistic { .. }))
        ));
        o.insert("_request_queue_time_stat".into(), "garbage".into());
        assert_eq!(EwtSource::from_options(&o), Err("garbage".into()));
        assert_eq!(EwtSource::from_options(&BTreeMap::new()), Ok(None));
    }

    #[test]
    fn typed_options() {
        assert!(check_typed_option("_ttl", "86400").is_ok());
        assert!(check_typed_option("_ttl", "0").is_err());
        assert!(check_typed_option("_ttl", "-5").is_err());
        assert!(check_typed_option("_wait_for_agent", "TRUE").is_ok());
        assert!(check_typed_option("_wait_for_agent", "yes").is_err());
        assert!(check_typed_option("_anything_else", "whatever").is_ok());
        assert!(check_typed_option("_target", "Billing@SS.GA").is_ok());
        assert!(check_typed_option("_target", "?:Billing>5 & English").is_ok());
        assert!(check_typed_option("_target", "Billing@$token$.GA").is_ok());
        assert!(check_typed_option("_target", "?:Billing>").is_err());
        assert!(check_typed_option("_target", "[{\"target\": 5}]").is_err());
        assert!(check_typed_option("_agent_transfer_confirm_timeout", "-1").is_err());
        assert!(check_typed_option("_max_transfer_to_agent_attempts", "0").is_err());
    }

    #[test]
    fn token_declarations() {
        assert_eq!(token_declaration("$my_token$"), Some("my_token"));
        assert_eq!(token_declaration("Billing@$my_token$.GA"), None);
        assert_eq!(token_declaration("$$"), None);
    }
}
