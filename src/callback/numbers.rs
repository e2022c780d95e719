//! Customer-number screening at create time (spec 40 §5.7, spec 20 §5, spec 50 §7):
//! exception pattern groups (`_exceptions`), impossible and premium numbers
//! (`_disallow_impossible_phone_numbers`, `_disallow_premium_phone_numbers`, with
//! `_default_country`), and country/number validation rules (`_number_rule`).

use std::collections::BTreeMap;

use phonenumber::{PhoneNumber, Type};

use super::error::{CallbackError, CallbackResult, ErrorCode};
use super::options::{check_number_rules_configured, option_flag};
use crate::config::{Config, NumberRule};

/// What screening said of a number: the rule that decided, and the refusal if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Screening {
    /// `accepted`, or the option whose rule refused the number.
    pub rule: &'static str,
    /// The pattern entry or rule detail that matched, when there is one.
    pub detail: Option<String>,
    pub error: Option<CallbackError>,
}

fn rejected(service: &str, message: &str) -> CallbackError {
    CallbackError::new(ErrorCode::NumberRejected, message).with("service", service)
}

/// The number as pattern groups see it: with a leading `+` (spec 20 §5.2).
fn with_plus(number: &str) -> String {
    if number.starts_with('+') {
        number.to_string()
    } else {
        format!("+{number}")
    }
}

fn parse(number: &str, country: Option<&str>) -> Option<PhoneNumber> {
    let id = country.and_then(|c| {
        c.trim()
            .to_ascii_uppercase()
            .parse::<phonenumber::country::Id>()
            .ok()
    });
    phonenumber::parse(id, number).ok()
}

/// Outcome of a `_number_rule` (spec 50 §7.1 AD-063): `pass`, `country_not_permitted` or
/// `blocked_pattern`, with the country or pattern concerned.
pub fn evaluate_rule(
    rule: &NumberRule,
    number: &str,
    default_country: Option<&str>,
) -> (&'static str, Option<String>) {
    let parsed = parse(number, default_country);
    let country = parsed
        .as_ref()
        .and_then(|n| n.country().id())
        .map(|id| id.as_ref().to_string());
    match &country {
        Some(c) if rule.allowed_countries.contains(c) => {}
        other => {
            return (
                "country_not_permitted",
                Some(other.clone().unwrap_or_else(|| "unknown".into())),
            );
        }
    }
    let digits = parsed
        .map(|n| format!("{}{}", n.code().value(), n.national().value()))
        .unwrap_or_else(|| number.chars().filter(char::is_ascii_digit).collect());
    match rule.blocked_patterns.iter().find(|(_, re)| re.is_match(&digits)) {
        Some((pattern, _)) => ("blocked_pattern", Some(pattern.clone())),
        None => ("pass", country),
    }
}

/// Screens a customer number against a callback's effective options.
pub fn screen(config: &Config, service: &str, options: &BTreeMap<String, String>, number: &str) -> Screening {
    let refuse = |rule: &'static str, detail: Option<String>, error: CallbackError| Screening {
        rule,
        detail,
        error: Some(error),
    };
    if let Err(e) = check_number_rules_configured(service, options) {
        return refuse("_default_country", None, e);
    }
    if let Some(group_name) = options.get("_exceptions").filter(|g| !g.trim().is_empty()) {
        let Some(group) = config.patterns.get(group_name.trim()) else {
            let e = CallbackError::bad_configuration(
                service,
                format!(
                    "Option _exceptions of service {service} names pattern group '{group_name}', which is not configured"
                ),
            );
            return refuse("_exceptions", None, e);
        };
        let matched = group.first_match(&with_plus(number));
        let refused = if group.reject_on_match {
            matched.is_some()
        } else {
            matched.is_none()
        };
        if refused {
            let e = rejected(
                service,
                "Customer Number is not allowed. Check option _exceptions",
            );
            let e = match matched {
                Some(entry) => e.with("pattern", entry),
                None => e,
            };
            return refuse("_exceptions", matched.map(str::to_string), e);
        }
    }
    let default_country = options
        .get("_default_country")
        .map(String::as_str)
        .filter(|c| !c.trim().is_empty());
    let impossible = option_flag(options, "_disallow_impossible_phone_numbers");
    let premium = option_flag(options, "_disallow_premium_phone_numbers");
    if impossible || premium {
        let Some(parsed) = parse(number, default_country) else {
            return refuse(
                "_disallow_impossible_phone_numbers",
                None,
                rejected(
                    service,
                    "Customer Number is not allowed, because it failed validating. Check option _disallow_impossible_phone_numbers",
                ),
            );
        };
        if impossible && !parsed.is_valid() {
            return refuse(
                "_disallow_impossible_phone_numbers",
                None,
                rejected(
                    service,
                    "Customer Number is not allowed, because it is invalid. Check option _disallow_impossible_phone_numbers",
                ),
            );
        }
        if premium && parsed.number_type(&phonenumber::metadata::DATABASE) == Type::PremiumRate {
            return refuse(
                "_disallow_premium_phone_numbers",
                None,
                rejected(
                    service,
                    "Customer Number is not allowed, because it's a premium number. Check option _disallow_premium_phone_numbers",
                ),
            );
        }
    }
    if let Some(rule_name) = options.get("_number_rule").filter(|r| !r.trim().is_empty()) {
        let Some(rule) = config.number_rules.get(rule_name.trim()) else {
            let e = CallbackError::bad_configuration(
                service,
                format!(
                    "Option _number_rule of service {service} names rule '{rule_name}', which is not configured"
                ),
            );
            return refuse("_number_rule", None, e);
        };
        match evaluate_rule(rule, number, default_country) {
            ("country_not_permitted", country) => {
                let e = rejected(
                    service,
                    "Customer Number is not allowed, because its country is not permitted. Check option _number_rule",
                );
                return refuse("_number_rule", country, e);
            }
            ("blocked_pattern", pattern) => {
                let e = rejected(
                    service,
                    "Customer Number is not allowed, because it matches a blocked pattern. Check option _number_rule",
                );
                let e = match &pattern {
                    Some(p) => e.with("pattern", p.as_str()),
                    None => e,
                };
                return refuse("_number_rule", pattern, e);
            }
            _ => {}
        }
    }
    Screening {
        rule: "accepted",
        detail: None,
        error: None,
    }
}

/// Longest customer number accepted.
pub const MAX_NUMBER_LEN: usize = 64;

/// Whether text can be dialled: digits with an optional leading `+`, `*`, `#`, and the usual
/// visual separators (space, `-`, `.`, `(`, `)`), with at least one digit.
pub fn is_dialable(text: &str) -> bool {
    let body = text.strip_prefix('+').unwrap_or(text);
    text.len() <= MAX_NUMBER_LEN
        && body.chars().any(|c| c.is_ascii_digit())
        && body.chars().all(|c| c.is_ascii_digit() || "*# -.()".contains(c))
}

/// The customer number must be dialable (before any configured rule).
pub fn check_dialable(number: &str) -> CallbackResult<()> {
    if is_dialable(number) {
        Ok(())
    } else {
        Err(CallbackError::bad_parameter(
            "_customer_number",
            format!(
                "Invalid value for _customer_number: '{}' is not a phone number (digits, an optional leading '+', \
                 '*', '#', spaces, '-', '.', '(' and ')'; at most {MAX_NUMBER_LEN} characters)",
                number.chars().take(MAX_NUMBER_LEN).collect::<String>()
            ),
        ))
    }
}

/// What is dialled for a customer number: `_prefix_dial_out` followed by the number's digits
/// (and `*`/`#`); a leading `+` is kept only when there is no prefix.
pub fn dial_string(options: &BTreeMap<String, String>, number: &str) -> String {
    let prefix = options.get("_prefix_dial_out").map(|p| p.trim()).unwrap_or("");
    let digits: String = number
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '*' || *c == '#')
        .collect();
    if prefix.is_empty() && number.trim_start().starts_with('+') {
        format!("+{digits}")
    } else {
        format!("{prefix}{digits}")
    }
}

/// Screening as a result: the refusal, if any.
pub fn check(
    config: &Config,
    service: &str,
    options: &BTreeMap<String, String>,
    number: &str,
) -> CallbackResult<()> {
    match screen(config, service, options, number).error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[patterns.cb_errors]
premium = '^\+1900'
[number_rule.north_america]
allowed_countries = ["US", "CA"]
blocked_patterns = ['^1212555']
"#;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rule_of(options: &[(&str, &str)], number: &str) -> (&'static str, Option<String>, Option<u32>) {
        let config = Config::parse(CONFIG, "t").unwrap();
        let s = screen(&config, "svc", &opts(options), number);
        (s.rule, s.detail, s.error.map(|e| e.code.code()))
    }

    #[test]
    fn dialable_numbers_and_dial_strings() {
        for ok in [
            "5115",
            "+33 6 12 34 56 78",
            "(555) 546-1206",
            "555.546.1206",
            "*67#123",
        ] {
            assert!(is_dialable(ok), "{ok}");
        }
        for bad in [
            "",
            "abc",
            "1-800-FLOWERS",
            "+",
            "++33",
            "12345;drop",
            &"1".repeat(65),
        ] {
            assert!(!is_dialable(bad), "{bad}");
        }
        assert_eq!(
            check_dialable("abc").unwrap_err().properties["option"],
            "_customer_number"
        );
        assert_eq!(
            dial_string(&opts(&[("_prefix_dial_out", "91")]), "(650) 466-1232"),
            "916504661232"
        );
        assert_eq!(dial_string(&opts(&[]), "+33 6 12 34 56 78"), "+33612345678");
    }

    #[test]
    fn exception_patterns_see_a_leading_plus() {
        let o = [("_exceptions", "cb_errors")];
        assert_eq!(
            rule_of(&o, "1900123456"),
            ("_exceptions", Some("premium".into()), Some(40040))
        );
        assert_eq!(rule_of(&o, "+1900123456").2, Some(40040));
        assert_eq!(rule_of(&o, "33612345678"), ("accepted", None, None));
        assert_eq!(rule_of(&[("_exceptions", "nope")], "1").2, Some(50020));
    }

    #[test]
    fn impossible_and_premium_numbers() {
        let o = [
            ("_disallow_impossible_phone_numbers", "true"),
            ("_default_country", "US"),
        ];
        assert_eq!(rule_of(&o, "12").0, "_disallow_impossible_phone_numbers");
        assert_eq!(rule_of(&o, "2015550123").0, "accepted");
        assert_eq!(
            rule_of(&o, "not a number at all").0,
            "_disallow_impossible_phone_numbers"
        );
        let p = [
            ("_disallow_premium_phone_numbers", "true"),
            ("_default_country", "US"),
        ];
        assert_eq!(rule_of(&p, "9002345678").0, "_disallow_premium_phone_numbers");
        assert_eq!(rule_of(&p, "2015550123").0, "accepted");
        let fr = [
            ("_disallow_premium_phone_numbers", "true"),
            ("_default_country", "FR"),
        ];
        assert_eq!(rule_of(&fr, "0899123456").0, "_disallow_premium_phone_numbers");
        assert_eq!(rule_of(&fr, "0612345678").0, "accepted");
        assert_eq!(
            rule_of(&[("_disallow_premium_phone_numbers", "true")], "1").2,
            Some(50020)
        );
    }

    #[test]
    fn country_rules_use_the_numbering_plan() {
        let o = [("_number_rule", "north_america"), ("_default_country", "US")];
        // +1 is shared: 416 is Toronto (CA), 201 New Jersey (US), 876 Jamaica (JM).
        assert_eq!(rule_of(&o, "4165550123"), ("accepted", None, None));
        assert_eq!(rule_of(&o, "2015550123"), ("accepted", None, None));
        assert_eq!(
            rule_of(&o, "+18765550123"),
            ("_number_rule", Some("JM".into()), Some(40040))
        );
        assert_eq!(
            rule_of(&o, "+33612345678"),
            ("_number_rule", Some("FR".into()), Some(40040))
        );
        assert_eq!(
            rule_of(&o, "2125550123"),
            ("_number_rule", Some("^1212555".into()), Some(40040))
        );
    }
}
