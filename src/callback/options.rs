//! How a request's parameters and a service's options make a callback's effective option set
//! (spec 40 §5.2-5.5): token substitution, overwritable options, user data, the customer
//! number's normalisation, the desired-time window and the immediate-vs-scheduled rule.

use std::collections::BTreeMap;

use crate::callback::Params;
use crate::callback::error::{CallbackError, CallbackResult};
use crate::callback::record::SYSTEM_KEYS;
use crate::clock::Millis;
use crate::config::ServiceConfig;
use crate::config::service_check_typed_option as check_typed_option;

/// Request keys that steer the operation itself and are not stored as options.
pub const CONTROL_KEYS: [&str; 6] = [
    "_callback_state",
    "_callback_reason",
    "_desired_time",
    "_new_desired_time",
    "_copy_from_id",
    "_customer_number",
];

/// The service's options with `$token$` placeholders replaced by the request's token values
/// (textual, not recursive; a token without a value stays as written). Parameters that only
/// declare a token are not options and are left out.
pub fn service_options(service: &ServiceConfig, params: &Params) -> BTreeMap<String, String> {
    let replacements: Vec<(String, &str)> = service
        .tokens
        .iter()
        .filter_map(|t| params.get(t).map(|v| (format!("${t}$"), v.as_str())))
        .collect();
    service
        .params
        .iter()
        .filter(|(k, _)| k.starts_with('_') && !service.is_token_declaration(k))
        .map(|(k, v)| {
            let mut value = v.clone();
            for (placeholder, replacement) in &replacements {
                if value.contains(placeholder.as_str()) {
                    value = value.replace(placeholder.as_str(), replacement);
                }
            }
            (k.clone(), value)
        })
        .collect()
}

/// Merges request parameters into an option set (spec 40 §5.2 step 2-3): an option the service
/// configures is kept unless it is overwritable; other options and all user data are taken.
pub fn merge_request(
    service: &ServiceConfig,
    options: &mut BTreeMap<String, String>,
    params: &Params,
) -> CallbackResult<()> {
    for (key, value) in params {
        if CONTROL_KEYS.contains(&key.as_str()) || SYSTEM_KEYS.contains(&key.as_str()) {
            continue;
        }
        if key.starts_with('_') {
            let overwritable = service.overwritable.iter().any(|o| o == key);
            if !overwritable && service.params.contains_key(key) {
                continue;
            }
            check_typed_option(key, value).map_err(|problem| {
                CallbackError::bad_parameter(key, format!("Invalid value for option {key}: {problem}"))
            })?;
        }
        options.insert(key.clone(), value.clone());
    }
    Ok(())
}

/// The number rules need a country (spec 40 §5.7): `_disallow_impossible_phone_numbers` or
/// `_disallow_premium_phone_numbers` without `_default_country` is a configuration error.
pub fn check_number_rules_configured(
    service: &str,
    options: &BTreeMap<String, String>,
) -> CallbackResult<()> {
    if options
        .get("_default_country")
        .is_some_and(|c| !c.trim().is_empty())
    {
        return Ok(());
    }
    for option in [
        "_disallow_impossible_phone_numbers",
        "_disallow_premium_phone_numbers",
    ] {
        if options
            .get(option)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            return Err(CallbackError::bad_configuration(
                service,
                format!(
                    "Service option {service} / _default_country is not configured. But option {option} is set. \
                     We cannot validate phone numbers without knowing the country."
                ),
            ));
        }
    }
    Ok(())
}

/// Whether an option is set to `true` (case-insensitive).
pub fn option_flag(options: &BTreeMap<String, String>, key: &str) -> bool {
    options
        .get(key)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Checks that every parameter name is a valid identifier (spec 40 §2.5).
pub fn check_keys(params: &Params) -> CallbackResult<()> {
    for key in params.keys() {
        if !crate::config::is_valid_key(key) {
            return Err(CallbackError::bad_parameter(
                key,
                format!("Invalid parameter name '{key}': names must match ^[A-Za-z_$][A-Za-z0-9_$]*$"),
            ));
        }
    }
    Ok(())
}

/// Normalises a customer number: trims it and, with `_fix_plus_on_int_phone_numbers`, puts a
/// `+` before an international number written without one (11 or more digits, no leading 0).
pub fn normalize_number(raw: &str, fix_plus: bool) -> String {
    let number = raw.trim();
    if fix_plus && !number.starts_with('+') {
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        let only_digits_and_separators = number.chars().all(|c| c.is_ascii_digit() || " -.()".contains(c));
        if only_digits_and_separators && digits.len() >= 11 && !digits.starts_with('0') {
            return format!("+{number}");
        }
    }
    number.to_string()
}

/// The immediate rule of spec 40 §5.5: `desired < now + buffer + EWT` (strict).
pub fn is_immediate(desired: Millis, now: Millis, buffer_secs: i64, ewt_secs: i64) -> bool {
    desired < now.saturating_add((buffer_secs + ewt_secs).saturating_mul(1000))
}

/// The allowed desired-time window `now - past < desired < now + future` (spec 40 §5.5).
/// `id` is the callback's ID (known or about to be assigned) for the past-time message.
pub fn check_desired_window(
    id: &str,
    desired: Millis,
    now: Millis,
    past_secs: i64,
    future_secs: i64,
) -> CallbackResult<()> {
    let offset = (desired - now).div_euclid(1000);
    let epoch = desired.div_euclid(1000);
    if desired <= now - past_secs * 1000 {
        return Err(CallbackError::bad_parameter(
            "_desired_time",
            format!(
                "Callback {id} contains _desired_time property in the past (-{past_secs}s < {offset}s < {future_secs}s) - epoch {epoch}s"
            ),
        ));
    }
    if desired >= now + future_secs * 1000 {
        return Err(CallbackError::bad_parameter(
            "_desired_time",
            format!(
                "Callback request contains _desired_time property too far in future (-{past_secs}s < {offset}s < {future_secs}s) - epoch {epoch}s"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::time::parse_iso;

    fn service(toml: &str) -> ServiceConfig {
        let text = format!("[service.s]\n_type='ors'\n_service='callback'\n{toml}");
        Config::parse(&text, "t").unwrap().services["s"].clone()
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tokens_are_substituted_textually() {
        let s = service("my_token_name='$my_token$'\n_target='Billing@$my_token$.GA'\n");
        let opts = service_options(&s, &params(&[("my_token", "Stat_Server1")]));
        assert_eq!(opts["_target"], "Billing@Stat_Server1.GA");
        assert!(!opts.contains_key("my_token_name"));
        let opts = service_options(&s, &params(&[]));
        assert_eq!(opts["_target"], "Billing@$my_token$.GA");
    }

    #[test]
    fn overwritable_configured_and_free_options() {
        let s =
            service("_overwritable_options='_ors,_target'\n_target='Default@SS.GA'\n_wait_for_agent=false\n");
        let mut opts = service_options(&s, &Params::new());
        let p = params(&[
            ("_target", "Other@SS.GA"),
            ("_wait_for_agent", "true"),
            ("_urs_virtual_queue", "VQ2"),
            ("usr_name", "Bob"),
            ("_id", "forged"),
            ("_callback_state", "QUEUED"),
        ]);
        merge_request(&s, &mut opts, &p).unwrap();
        assert_eq!(opts["_target"], "Other@SS.GA");
        assert_eq!(opts["_wait_for_agent"], "false");
        assert_eq!(opts["_urs_virtual_queue"], "VQ2");
        assert_eq!(opts["usr_name"], "Bob");
        assert!(!opts.contains_key("_id"));
        assert!(!opts.contains_key("_callback_state"));
    }

    #[test]
    fn typed_request_options_are_checked() {
        let s = service("");
        let mut opts = BTreeMap::new();
        let e = merge_request(&s, &mut opts, &params(&[("_ttl", "abc")])).unwrap_err();
        assert_eq!(e.properties["option"], "_ttl");
    }

    #[test]
    fn number_normalisation() {
        assert_eq!(normalize_number(" 5115 ", false), "5115");
        assert_eq!(normalize_number("12345678901", true), "+12345678901");
        assert_eq!(normalize_number("12345678901", false), "12345678901");
        assert_eq!(normalize_number("0612345678", true), "0612345678");
        assert_eq!(normalize_number("+33612345678", true), "+33612345678");
        assert_eq!(normalize_number("555-5461206", true), "555-5461206");
    }

    #[test]
    fn immediate_rule_worked_examples() {
        let at = |t: &str| parse_iso(&format!("2024-01-01T{t}:00Z")).unwrap();
        // Example 1: now 16:15, desired 17:05, buffer 300 s, EWT 10 min -> scheduled.
        assert!(!is_immediate(at("17:05"), at("16:15"), 300, 600));
        // Example 2: now 13:10, desired 13:15, buffer 120 s, EWT 5 min -> immediate.
        assert!(is_immediate(at("13:15"), at("13:10"), 120, 300));
        // Exactly now + buffer + EWT is scheduled (strict comparison).
        assert!(!is_immediate(at("13:17"), at("13:10"), 120, 300));
    }

    #[test]
    fn desired_time_window_messages() {
        let now = 1_000_000_000_000;
        let e = check_desired_window("1-x", now - 2 * 86_400_000, now, 86400, 2_592_000).unwrap_err();
        assert_eq!(
            e.message,
            "Callback 1-x contains _desired_time property in the past (-86400s < -172800s < 2592000s) - epoch 999827200s"
        );
        let e = check_desired_window("1-x", now + 400 * 86_400_000, now, 86400, 2_592_000).unwrap_err();
        assert!(e.message.starts_with("Callback request contains _desired_time property too far in future (-86400s < 34560000s < 2592000s)"));
        assert!(check_desired_window("1-x", now - 1000, now, 86400, 2_592_000).is_ok());
    }
}
