//! §10.5 Get one (R5 / R5a) and §10.6 Lookup (R6 / R7).

use serde_json::{Value, json};

use crate::common::*;

const FIXED_R5_KEYS: [&str; 8] = [
    "_id",
    "_service_name",
    "_customer_number",
    "_callback_state",
    "_desired_time",
    "_time_scheduled",
    "_expiration_time",
    "_url",
];
const FIXED_LOOKUP_KEYS: [&str; 6] = [
    "_id",
    "desired_time",
    "_callback_state",
    "_expiration_time",
    "_customer_number",
    "url",
];

// ------------------------------------------------------------------------- §10.5

#[tokio::test]
async fn t87_v1_and_v2_paths_identical() {
    let s = TestServer::start().await;
    let t = t_plus_days(2);
    let id = s
        .create("cb-test", json!({"_customer_number": "5115", "_desired_time": iso(t), "usr_customer_name": "Bob", "usr_other": "x"}))
        .await;
    let v2 = s.get(&format!("/genesys/2/service/callback/cb-test/{id}")).await;
    let v1 = s.get(&format!("/genesys/1/service/callback/cb-test/{id}")).await;
    assert_eq!(v2.status, 200, "{}", v2.text());
    assert_eq!(v1.status, 200, "{}", v1.text());
    assert_eq!(v1.body, v2.body, "identical bodies");
    let rec = v2.ok_object();
    // The 8 fixed keys plus the returned-keys the record has a value for (usr_customer_name);
    // other options (_ttl, ...) and user data outside returned-keys (usr_other) are not shown.
    let mut want: Vec<&str> = FIXED_R5_KEYS.to_vec();
    want.push("usr_customer_name");
    assert_eq!(keys(&rec), sorted(&want));
    // Fixed keys come first, returned keys after them (§3 [D]).
    let order: Vec<&String> = rec.keys().collect();
    assert_eq!(
        order.last().map(|k| k.as_str()),
        Some("usr_customer_name"),
        "returned keys after the fixed keys: {order:?}"
    );
    assert_eq!(str_field(&rec, "_id"), id);
    assert_eq!(str_field(&rec, "_desired_time"), iso(t));
    assert_eq!(
        str_field(&rec, "_expiration_time"),
        iso(t + DAY_MS),
        "_desired_time + _ttl"
    );
    let scheduled = str_field(&rec, "_time_scheduled");
    assert_eq!(scheduled.len(), 24, "canonical ISO form: {scheduled}");
    assert!(scheduled.ends_with('Z'));
    s.stop().await;
}

#[tokio::test]
async fn t88_get_unknown() {
    let s = TestServer::start().await;
    let id = "7-22222222-2222-4222-8222-222222222222";
    for v in [1, 2] {
        let r = s
            .get(&format!("/genesys/{v}/service/callback/cb-test/{id}"))
            .await;
        let body = assert_error(&r, 40030, &format!("Callback {id} cannot be found"));
        assert_eq!(prop(&body, "id"), Some(&json!(id)));
    }
    s.stop().await;
}

#[tokio::test]
async fn t89_get_under_wrong_service() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-other", "5115").await;
    let r = s.get(&format!("/genesys/2/service/callback/cb-test/{id}")).await;
    assert_error(&r, 40030, &format!("Callback {id} cannot be found"));
    s.stop().await;
}

#[tokio::test]
async fn t90_availability_is_not_get_by_id() {
    let s = TestServer::start().await;
    let r = s.get("/genesys/1/service/callback/cb-test/availability").await;
    let is_not_found_envelope = serde_json::from_slice::<Value>(&r.body)
        .ok()
        .and_then(|v| v.get("code").and_then(Value::as_u64))
        .is_some_and(|c| c == 40030);
    assert!(
        !is_not_found_envelope,
        "availability answered as Get-by-ID: {} {}",
        r.status,
        r.text()
    );
    assert_ne!(r.status, 404, "the availability route exists");
    s.stop().await;
}

// ------------------------------------------------------------------------- §10.6

#[tokio::test]
async fn t91_lookup_by_number() {
    let s = TestServer::start().await;
    let a = s.create_scheduled("cb-test", "5115").await;
    let b = s.create_forced("cb-test", "5115", "QUEUED").await;
    s.create_scheduled("cb-test", "9999").await;
    s.create_scheduled("cb-other", "5115").await;
    let r = s
        .get("/genesys/1/service/callback/cb-test?_customer_number=5115")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json();
    let items = list.as_array().expect("array");
    assert_eq!(items.len(), 2, "{list}");
    let mut got = ids_of(&list);
    got.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(got, want);
    for item in items {
        let obj = item.as_object().unwrap();
        assert_eq!(keys(obj), sorted(&FIXED_LOOKUP_KEYS), "exact item keys: {obj:?}");
        let id = str_field(obj, "_id");
        assert_eq!(str_field(obj, "url"), format!("/1/service/callback/cb-test/{id}"));
        assert_eq!(str_field(obj, "_customer_number"), "5115");
        assert!(obj.get("desired_time").is_some_and(Value::is_string));
    }
    s.stop().await;
}

#[tokio::test]
async fn t92_lookup_no_match() {
    let s = TestServer::start().await;
    s.create_scheduled("cb-test", "5115").await;
    let r = s
        .get("/genesys/1/service/callback/cb-test?_customer_number=4242")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!([]));
    // The cache-buster `_` is ignored (§6.6 [D]).
    let r = s
        .get("/genesys/1/service/callback/cb-test?_customer_number=5115&_=1406647599350")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(ids_of(&r.json()).len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn t93_lookup_without_property() {
    let s = TestServer::start().await;
    let r = s.get("/genesys/1/service/callback/cb-test").await;
    let body = assert_error(&r, 40010, "No lookup possible. No properties to look for.");
    assert_eq!(message(&body), "No lookup possible. No properties to look for.");
    // Filters alone are not lookup properties.
    let r = s
        .get("/genesys/1/service/callback/cb-test?_callback_state=COMPLETED&operand=OR")
        .await;
    assert_error(&r, 40010, "No lookup possible. No properties to look for.");
    s.stop().await;
}

#[tokio::test]
async fn t94_lookup_on_non_lookup_key() {
    let s = TestServer::start().await;
    let r = s.get("/genesys/1/service/callback/cb-test?usr_unknown=1").await;
    let body = assert_error(&r, 40010, "No such lookup possible for");
    assert!(prop(&body, "properties").is_some(), "{body:?}");
    s.stop().await;
}

#[tokio::test]
async fn t95_state_filter() {
    let s = TestServer::start().await;
    let scheduled = s.create_scheduled("cb-test", "5115").await;
    let completed = s.create_forced("cb-test", "5115", "COMPLETED").await;
    let queued = s.create_forced("cb-test", "5115", "QUEUED").await;
    let base = "/genesys/1/service/callback/cb-test?_customer_number=5115";
    let only = s.get(&format!("{base}&_callback_state=COMPLETED")).await;
    assert_eq!(only.status, 200, "{}", only.text());
    assert_eq!(ids_of(&only.json()), vec![completed.clone()]);
    let not = s.get(&format!("{base}&_callback_state=!COMPLETED")).await;
    assert_eq!(not.status, 200, "{}", not.text());
    let mut got = ids_of(&not.json());
    got.sort();
    let mut want = vec![scheduled, queued];
    want.sort();
    assert_eq!(got, want);
    for item in not.json().as_array().unwrap() {
        assert_ne!(item["_callback_state"], "COMPLETED");
    }
    let quoted = s.get(&format!("{base}&_callback_state='COMPLETED'")).await;
    assert_eq!(quoted.status, 200, "{}", quoted.text());
    assert_eq!(quoted.json(), only.json());
    s.stop().await;
}

#[tokio::test]
async fn t96_bad_state_filter() {
    let s = TestServer::start().await;
    let r = s
        .get("/genesys/1/service/callback/cb-test?_customer_number=5115&_callback_state=BOGUS")
        .await;
    let body = assert_error(&r, 40020, "Cannot process 'filter' parameter correctly");
    assert!(prop(&body, "filter").is_some(), "{body:?}");
    s.stop().await;
}

#[tokio::test]
async fn t97_desired_time_window() {
    let s = TestServer::start().await;
    let (t2, t3, t4) = (t_plus_days(2), t_plus_days(3), t_plus_days(4));
    let mut ids = Vec::new();
    for t in [t4, t2, t3] {
        ids.push(
            s.create(
                "cb-test",
                json!({"_customer_number": "5115", "_desired_time": iso(t)}),
            )
            .await,
        );
    }
    let (id4, _id2, id3) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    let r = s
        .get(&format!(
            "/genesys/1/service/callback/cb-test?_customer_number=5115&_desired_time_from={}&_desired_time_to={}",
            iso(t3),
            iso(t4)
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Bounds inclusive, ordered by desired time ascending.
    assert_eq!(ids_of(&r.json()), vec![id3, id4]);
    let all = s
        .get("/genesys/1/service/callback/cb-test?_customer_number=5115")
        .await
        .json();
    let times: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["desired_time"].as_str().unwrap())
        .collect();
    assert_eq!(times, vec![iso(t2), iso(t3), iso(t4)], "ordered by desired_time");
    let r = s
        .get("/genesys/1/service/callback/cb-test?_customer_number=5115&_desired_time_from=notatime")
        .await;
    assert_error(&r, 40010, "");
    let r = s
        .get("/genesys/1/service/callback/cb-test?_customer_number=5115&_desired_time_to=notatime")
        .await;
    assert_error(&r, 40010, "");
    s.stop().await;
}

#[tokio::test]
async fn t98_operand_and_or() {
    let s = TestServer::start().await;
    let t = iso(t_plus_days(2));
    let both = s
        .create(
            "cb-test",
            json!({"_customer_number": "5115", "usr_account": "A1", "_desired_time": t}),
        )
        .await;
    let number_only = s
        .create(
            "cb-test",
            json!({"_customer_number": "5115", "usr_account": "A2", "_desired_time": t}),
        )
        .await;
    let account_only = s
        .create(
            "cb-test",
            json!({"_customer_number": "5116", "usr_account": "A1", "_desired_time": t}),
        )
        .await;
    s.create(
        "cb-test",
        json!({"_customer_number": "5117", "usr_account": "A3", "_desired_time": t}),
    )
    .await;
    let and = s
        .get("/genesys/1/service/callback/cb-test?_customer_number=5115&usr_account=A1")
        .await;
    assert_eq!(and.status, 200, "{}", and.text());
    assert_eq!(ids_of(&and.json()), vec![both.clone()]);
    let or = s
        .get("/genesys/1/service/callback/cb-test?_customer_number=5115&usr_account=A1&operand=OR")
        .await;
    assert_eq!(or.status, 200, "{}", or.text());
    let mut got = ids_of(&or.json());
    got.sort();
    let mut want = vec![both, number_only, account_only];
    want.sort();
    assert_eq!(got, want);
    // Items carry the configured returned-keys they have a value for.
    for item in or.json().as_array().unwrap() {
        assert!(item.get("usr_account").is_some_and(Value::is_string), "{item}");
    }
    let bad = s
        .get("/genesys/1/service/callback/cb-test?_customer_number=5115&operand=XOR")
        .await;
    let body = assert_error(&bad, 40010, "");
    assert_eq!(prop(&body, "option"), Some(&json!("operand")));
    s.stop().await;
}

#[tokio::test]
async fn t99_lookup_across_services() {
    let s = TestServer::start().await;
    let a = s.create_scheduled("cb-test", "5115").await;
    let b = s.create_scheduled("cb-other", "5115").await;
    s.create_scheduled("cb-other", "9999").await;
    let r = s.get("/genesys/1/service/callback?_customer_number=5115").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json();
    let mut got = ids_of(&list);
    got.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(got, want);
    for item in list.as_array().unwrap() {
        let id = item["_id"].as_str().unwrap();
        let service = if id == a { "cb-test" } else { "cb-other" };
        assert_eq!(item["url"], format!("/1/service/callback/{service}/{id}"));
    }
    s.stop().await;
}

#[tokio::test]
async fn t100_lookup_is_or_was() {
    let s = TestServer::start().await;
    let id = s
        .create(
            "cb-test",
            json!({"_customer_number": "5115", "usr_account": "A", "_desired_time": iso(t_plus_days(2))}),
        )
        .await;
    let r = s
        .put_json(
            &format!("/genesys/1/service/callback/cb-test/{id}"),
            &json!({"usr_account": "B"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let old = s.get("/genesys/1/service/callback/cb-test?usr_account=A").await;
    assert_eq!(old.status, 200, "{}", old.text());
    assert_eq!(ids_of(&old.json()), vec![id.clone()]);
    let new = s.get("/genesys/1/service/callback/cb-test?usr_account=B").await;
    assert_eq!(ids_of(&new.json()), vec![id.clone()]);
    assert_eq!(
        new.json()[0]["usr_account"],
        "B",
        "the item shows the current value"
    );
    s.stop().await;
}
