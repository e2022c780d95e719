//! Number screening (spec 40 §5.7, items 24 and 76; spec 50 §7): exception pattern groups,
//! impossible and premium numbers with libphonenumber data, country allow-lists and blocked
//! patterns, on create and on update; the admin check endpoints; bad rule configuration.

use serde_json::{Value, json};

use crate::common::*;

const MSG_EXCEPTIONS: &str = "Customer Number is not allowed. Check option _exceptions";
const MSG_INVALID: &str =
    "Customer Number is not allowed, because it is invalid. Check option _disallow_impossible_phone_numbers";
const MSG_FAILED: &str = "Customer Number is not allowed, because it failed validating. Check option _disallow_impossible_phone_numbers";
const MSG_PREMIUM: &str = "Customer Number is not allowed, because it's a premium number. Check option _disallow_premium_phone_numbers";
const MSG_COUNTRY: &str =
    "Customer Number is not allowed, because its country is not permitted. Check option _number_rule";
const MSG_PATTERN: &str =
    "Customer Number is not allowed, because it matches a blocked pattern. Check option _number_rule";

/// Checks a 40040 refusal with exactly `expected` as message and `properties.service`.
async fn assert_rejected(s: &TestServer, service: &str, number: &str, expected: &str) {
    let r = s.try_create(service, &json!({"_customer_number": number})).await;
    let body = assert_error(&r, 40040, "Customer Number is not allowed");
    assert_eq!(message(&body), expected, "{service} / {number}");
    assert_eq!(
        prop(&body, "service").and_then(Value::as_str),
        Some(service),
        "{body:?}"
    );
    assert!(
        s.lookup(service, number).await.is_empty(),
        "a refused number left a record"
    );
}

#[tokio::test]
async fn t24_exception_group_and_impossible_number() {
    let s = TestServer::start().await;
    assert_rejected(&s, "cb-exc", "1900123456", MSG_EXCEPTIONS).await;
    let r = s.try_create("cb-imp", &json!({"_customer_number": "12"})).await;
    let body = assert_error(&r, 40040, "Customer Number is not allowed, because it");
    assert!(
        message(&body).contains("Check option _disallow_impossible_phone_numbers"),
        "{body:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn t24b_exception_patterns_match_with_a_leading_plus() {
    let s = TestServer::start().await;
    // The error names the matched entry (spec 20 §5.4).
    let r = s
        .try_create("cb-exc", &json!({"_customer_number": "19005550000"}))
        .await;
    let body = assert_error(&r, 40040, MSG_EXCEPTIONS);
    assert_eq!(
        prop(&body, "pattern").and_then(Value::as_str),
        Some("premium"),
        "{body:?}"
    );
    // The pattern `^\+1900` sees the number with a leading `+`, given or not.
    assert_rejected(&s, "cb-exc", "+1900555000", MSG_EXCEPTIONS).await;
    // 1900 elsewhere than at the start is not matched.
    s.create_scheduled("cb-exc", "2190012345").await;
    s.create_scheduled("cb-exc", "5115").await;
    // Services without `_exceptions` accept the number.
    s.create_scheduled("cb-test", "1900123456").await;
    s.stop().await;
}

#[tokio::test]
async fn t24c_impossible_numbers_us() {
    let s = TestServer::start().await;
    // Parsed as a US number, but no such number can exist.
    assert_rejected(&s, "cb-imp", "1234567", MSG_INVALID).await;
    // Too short to be parsed at all.
    assert_rejected(&s, "cb-imp", "12", MSG_FAILED).await;
    // 555-0100 to 555-0199 are not in service, but the 201 area code is valid: accepted.
    s.create_scheduled("cb-imp", "2015550123").await;
    s.create_scheduled("cb-imp", "+12015550124").await;
    s.stop().await;
}

#[tokio::test]
async fn t24d_number_in_letters_fails_validating() {
    // Spec 40 §5.7: with _disallow_impossible_phone_numbers, a number that cannot be parsed is
    // refused with 40040 "... it failed validating ...".
    let s = TestServer::start().await;
    assert_rejected(&s, "cb-imp", "call me maybe", MSG_FAILED).await;
    s.stop().await;
}

#[tokio::test]
async fn t24e_premium_numbers_by_country() {
    let s = TestServer::start().await;
    // US premium rate: 900-NXX-XXXX.
    assert_rejected(&s, "cb-prem-us", "9002345678", MSG_PREMIUM).await;
    s.create_scheduled("cb-prem-us", "2015550123").await;
    // France: 0899 is premium rate, 06 is mobile.
    assert_rejected(&s, "cb-prem-fr", "0899123456", MSG_PREMIUM).await;
    s.create_scheduled("cb-prem-fr", "0612345678").await;
    s.stop().await;
}

#[tokio::test]
async fn t24f_premium_without_default_country_is_a_configuration_error() {
    let s = TestServer::start().await;
    let r = s
        .try_create("cb-prem", &json!({"_customer_number": "5115"}))
        .await;
    let body = assert_error(
        &r,
        50020,
        "Service option cb-prem / _default_country is not configured.",
    );
    assert_eq!(
        message(&body),
        "Service option cb-prem / _default_country is not configured. But option _disallow_premium_phone_numbers is set. We cannot validate phone numbers without knowing the country."
    );
    assert_eq!(prop(&body, "service").and_then(Value::as_str), Some("cb-prem"));
    s.stop().await;
}

#[tokio::test]
async fn t24g_country_rule() {
    let s = TestServer::start().await;
    // +1 is shared by several countries: Jamaica (876) is not allowed, Toronto (416) is.
    assert_rejected(&s, "cb-rule", "+18765550123", MSG_COUNTRY).await;
    assert_rejected(&s, "cb-rule", "+33612345678", MSG_COUNTRY).await;
    s.create_scheduled("cb-rule", "4165550123").await;
    s.create_scheduled("cb-rule", "2015550123").await;
    // Blocked pattern on the E.164 digits without `+`.
    let r = s
        .try_create("cb-rule", &json!({"_customer_number": "2125550123"}))
        .await;
    let body = assert_error(&r, 40040, MSG_PATTERN);
    assert_eq!(message(&body), MSG_PATTERN);
    assert_eq!(prop(&body, "pattern").and_then(Value::as_str), Some("^1212555"));
    s.stop().await;
}

#[tokio::test]
async fn t76_update_to_an_exception_number() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-exc", "5115").await;
    let path = format!("/genesys/1/service/callback/cb-exc/{id}");
    let r = s
        .put_json(&path, &json!({"_customer_number": "1900000001"}))
        .await;
    let body = assert_error(&r, 40040, MSG_EXCEPTIONS);
    assert_eq!(message(&body), MSG_EXCEPTIONS);
    // The record keeps its number.
    assert_eq!(
        str_field(&s.record("cb-exc", &id).await, "_customer_number"),
        "5115"
    );
    // An acceptable new number is taken.
    let r = s.put_json(&path, &json!({"_customer_number": "5116"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        str_field(&s.record("cb-exc", &id).await, "_customer_number"),
        "5116"
    );
    s.stop().await;
}

#[tokio::test]
async fn t76b_update_checks_country_rules_and_premium() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-rule", "2015550123").await;
    let r = s
        .put_json(
            &format!("/genesys/1/service/callback/cb-rule/{id}"),
            &json!({"_customer_number": "+33612345678"}),
        )
        .await;
    assert_eq!(message(&assert_error(&r, 40040, MSG_COUNTRY)), MSG_COUNTRY);
    let id = s.create_scheduled("cb-prem-us", "2015550123").await;
    let r = s
        .put_json(
            &format!("/genesys/1/service/callback/cb-prem-us/{id}"),
            &json!({"_customer_number": "9002345678"}),
        )
        .await;
    assert_eq!(message(&assert_error(&r, 40040, MSG_PREMIUM)), MSG_PREMIUM);
    s.stop().await;
}

#[tokio::test]
async fn t24h_pattern_group_settings() {
    // Entry names may contain spaces; `_on_match = "accept"` lets only matching numbers through;
    // `_match = "whole"` needs the whole value to match (spec 20 §5.3, §5.4).
    let toml = r#"
[patterns.only_uk]
_on_match = "accept"
'united kingdom' = '^\+44'

[patterns.exact]
_match = "whole"
'one number' = '\+15550001'

[service.cb-uk]
_type = "ors"
_service = "callback"
_ttl = 86400
_customer_lookup_keys = "_customer_number"
_exceptions = "only_uk"

[service.cb-exact]
_type = "ors"
_service = "callback"
_ttl = 86400
_customer_lookup_keys = "_customer_number"
_exceptions = "exact"
"#;
    let s = TestServer::with_toml(toml).await;
    s.create_scheduled("cb-uk", "442071234567").await;
    assert_rejected(&s, "cb-uk", "33612345678", MSG_EXCEPTIONS).await;
    assert_rejected(&s, "cb-exact", "15550001", MSG_EXCEPTIONS).await;
    s.create_scheduled("cb-exact", "155500012").await;
    s.stop().await;
}

// ------------------------------------------------------------------------- admin check endpoints

const CHECK: &str = "/genesys/1/admin/callback/number-check";

#[tokio::test]
async fn n01_number_check_names_the_rule() {
    let s = TestServer::start().await;
    let cases = [
        (
            "cb-exc",
            "1900123456",
            "_exceptions",
            Some("premium"),
            Some(MSG_EXCEPTIONS),
        ),
        ("cb-exc", "5115", "accepted", None, None),
        (
            "cb-imp",
            "1234567",
            "_disallow_impossible_phone_numbers",
            None,
            Some(MSG_INVALID),
        ),
        (
            "cb-imp",
            "12",
            "_disallow_impossible_phone_numbers",
            None,
            Some(MSG_FAILED),
        ),
        (
            "cb-prem-us",
            "9002345678",
            "_disallow_premium_phone_numbers",
            None,
            Some(MSG_PREMIUM),
        ),
        (
            "cb-rule",
            "+18765550123",
            "_number_rule",
            Some("JM"),
            Some(MSG_COUNTRY),
        ),
        (
            "cb-rule",
            "2125550123",
            "_number_rule",
            Some("^1212555"),
            Some(MSG_PATTERN),
        ),
        ("cb-rule", "4165550123", "accepted", None, None),
    ];
    for (service, number, rule, detail, msg) in cases {
        // A read-only user may check numbers.
        let r = s
            .admin_post_as(
                CHECK,
                READER,
                &json!({"service": service, "_customer_number": number}),
            )
            .await;
        let body = r.ok_object();
        let what = format!("{service}/{number}: {body:?}");
        let expected_result = if msg.is_some() { "rejected" } else { "accepted" };
        assert_eq!(
            body.get("result").and_then(Value::as_str),
            Some(expected_result),
            "{what}"
        );
        assert_eq!(body.get("rule").and_then(Value::as_str), Some(rule), "{what}");
        assert_eq!(body.get("detail").and_then(Value::as_str), detail, "{what}");
        match msg {
            Some(m) => {
                assert_eq!(body.get("code").and_then(Value::as_u64), Some(40040), "{what}");
                assert_eq!(body.get("message").and_then(Value::as_str), Some(m), "{what}");
            }
            None => {
                assert!(body.get("code").is_none(), "{what}");
                assert!(body.get("message").is_none(), "{what}");
            }
        }
    }
    // The check creates nothing.
    assert!(s.lookup("cb-exc", "5115").await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn n02_number_check_bad_requests() {
    let s = TestServer::start().await;
    let r = s
        .post_json(CHECK, &json!({"service": "cb-exc", "_customer_number": "1"}))
        .await;
    assert_unauthorized(&r, "number-check without credentials");
    let r = s.admin_post(CHECK, &json!({"service": "cb-exc"})).await;
    assert_error(&r, 40010, "");
    let r = s
        .admin_post(CHECK, &json!({"service": "cb-nope", "_customer_number": "1"}))
        .await;
    let body = assert_error(&r, 50020, "Service undefined: cb-nope");
    assert_eq!(message(&body), "Service undefined: cb-nope");
    // Premium check without a country: the configuration error, as a rejection.
    let r = s
        .admin_post(CHECK, &json!({"service": "cb-prem", "_customer_number": "5115"}))
        .await;
    let body = r.ok_object();
    assert_eq!(
        body.get("result").and_then(Value::as_str),
        Some("rejected"),
        "{body:?}"
    );
    assert_eq!(body.get("code").and_then(Value::as_u64), Some(50020), "{body:?}");
    s.stop().await;
}

fn rule_test(name: &str) -> String {
    format!("/genesys/1/admin/number-rules/{name}/test")
}

#[tokio::test]
async fn n03_number_rule_test_endpoint() {
    let s = TestServer::start().await;
    let cases = [
        ("4165550123", "pass", "country", "CA"),
        ("2015550123", "pass", "country", "US"),
        ("+18765550123", "country_not_permitted", "country", "JM"),
        ("+33612345678", "country_not_permitted", "country", "FR"),
        ("2125550123", "blocked_pattern", "pattern", "^1212555"),
    ];
    for (number, result, key, value) in cases {
        let r = s
            .admin_post_as(
                &rule_test("north_america"),
                READER,
                &json!({"number": number, "default_country": "US"}),
            )
            .await;
        let body = r.ok_object();
        assert_eq!(
            body.get("result").and_then(Value::as_str),
            Some(result),
            "{number}: {body:?}"
        );
        assert_eq!(
            body.get(key).and_then(Value::as_str),
            Some(value),
            "{number}: {body:?}"
        );
    }
    // Country first (spec 50 §7): a number whose country cannot be told is not permitted,
    // even though its digits match a blocked pattern.
    let r = s
        .admin_post(&rule_test("north_america"), &json!({"number": "+1212555"}))
        .await;
    let body = r.ok_object();
    assert_eq!(
        body.get("result").and_then(Value::as_str),
        Some("country_not_permitted"),
        "{body:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn n04_number_rule_test_bad_requests() {
    let s = TestServer::start().await;
    let r = s
        .post_json(&rule_test("north_america"), &json!({"number": "1"}))
        .await;
    assert_unauthorized(&r, "rule test without credentials");
    let r = s
        .admin_post(&rule_test("nope"), &json!({"number": "2015550123"}))
        .await;
    assert_eq!(r.status, 404, "unknown rule: {}", r.text());
    let r = s.admin_post(&rule_test("north_america"), &json!({})).await;
    assert_error(&r, 40010, "");
    let r = s
        .admin_post(&rule_test("north_america"), &json!({"number": "   "}))
        .await;
    assert_error(&r, 40010, "");
    s.stop().await;
}

// ------------------------------------------------------------------------- configuration

fn config_error(extra: &str) -> String {
    match boomerang::config::Config::parse(extra, "bad.toml") {
        Ok(_) => panic!("configuration accepted:\n{extra}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn n05_bad_rules_are_refused_at_configuration_check() {
    let e = config_error("[patterns.g]\nx = '(unclosed'\n");
    assert!(e.starts_with("bad.toml: [patterns.g] x:"), "{e}");
    assert!(e.contains("does not compile"), "{e}");
    let e = config_error("[number_rule.r]\nallowed_countries = ['US']\nblocked_patterns = ['[0-9']\n");
    assert!(
        e.starts_with("bad.toml: [number_rule.r] blocked_patterns:"),
        "{e}"
    );
    let e = config_error("[number_rule.r]\nallowed_countries = ['XX']\n");
    assert!(e.contains("not an ISO 3166 country code"), "{e}");
    let e = config_error("[number_rule.r]\nallowed_countries = []\n");
    assert!(
        e.starts_with("bad.toml: [number_rule.r] allowed_countries:"),
        "{e}"
    );
}

#[tokio::test]
async fn n06_unknown_pattern_group_or_rule_is_a_configuration_error() {
    for (option, value) in [("_exceptions", "no_such_group"), ("_number_rule", "no_such_rule")] {
        let toml = format!(
            "[service.cb-x]\n_type = \"ors\"\n_service = \"callback\"\n_ttl = 86400\n\
             _customer_lookup_keys = \"_customer_number\"\n{option} = \"{value}\"\n"
        );
        match boomerang::config::Config::parse(&toml, "x.toml") {
            // Refused at configuration check, naming the option.
            Err(e) => assert!(e.to_string().contains(option), "{e}"),
            // Or at request time, as a configuration error naming the missing name.
            Ok(_) => {
                let s = TestServer::with_toml(&toml).await;
                let r = s.try_create("cb-x", &json!({"_customer_number": "5115"})).await;
                let body = assert_error(&r, 50020, "");
                assert!(message(&body).contains(value), "{body:?}");
                s.stop().await;
            }
        }
    }
}
