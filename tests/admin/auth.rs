//! Basic authentication and roles on every admin route (spec 40 §2.8, spec 50 §5.1): missing
//! or wrong credentials → 401 with the Basic challenge; CallbackReadOnly may read, never change.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

/// Every admin route with a harmless request: (method, path, JSON body, changes data).
fn routes() -> Vec<(Method, &'static str, Option<Value>, bool)> {
    vec![
        (
            Method::POST,
            "/genesys/1/admin/callback/ops/delete",
            Some(json!({"_id": ["unknown"]})),
            true,
        ),
        (Method::GET, "/genesys/1/admin/callback/queues", None, false),
        (Method::GET, "/genesys/1/admin/callback/watermarks", None, false),
        (
            Method::POST,
            "/genesys/1/admin/callback/reportcancelled",
            Some(json!({"callback_reason": "CANCELLED"})),
            false,
        ),
        (
            Method::POST,
            "/genesys/1/admin/callback/number-check",
            Some(json!({"service": "cb-test", "_customer_number": "5115"})),
            false,
        ),
        (
            Method::POST,
            "/genesys/1/admin/number-rules/north_america/test",
            Some(json!({"number": "2015550123", "default_country": "US"})),
            false,
        ),
        (
            Method::POST,
            "/genesys/1/admin/api-keys/validate",
            Some(json!({"key": "x"})),
            false,
        ),
    ]
}

async fn call(
    s: &TestServer,
    method: &Method,
    path: &str,
    body: &Option<Value>,
    who: Option<(&str, &str)>,
) -> Resp {
    let mut req = s.client.request(method.clone(), s.url(path));
    if let Some((user, password)) = who {
        req = req.basic_auth(user, Some(password));
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    s.send(req).await
}

#[tokio::test]
async fn a01_every_admin_route_needs_credentials() {
    let s = TestServer::start().await;
    for (method, path, body, _) in routes() {
        assert_unauthorized(&call(&s, &method, path, &body, None).await, path);
        assert_unauthorized(
            &call(&s, &method, path, &body, Some(("admin", "Secret"))).await,
            path,
        );
        assert_unauthorized(
            &call(&s, &method, path, &body, Some(("Admin", "secret"))).await,
            path,
        );
        assert_unauthorized(&call(&s, &method, path, &body, Some(("admin", ""))).await, path);
    }
    s.stop().await;
}

#[tokio::test]
async fn a02_roles() {
    let s = TestServer::start().await;
    for (method, path, body, changes) in routes() {
        // Key validation is an Administrator/Developer tool (spec 50 §5.1): see a04.
        let writers: &[(&str, &str)] = if path.ends_with("/api-keys/validate") {
            &[ADMIN]
        } else {
            &[ADMIN, SUPERVISOR]
        };
        for &who in writers {
            let r = call(&s, &method, path, &body, Some(who)).await;
            assert!(
                r.status == 200 || r.status == 204,
                "{} on {path}: {} {}",
                who.0,
                r.status,
                r.text()
            );
        }
        let r = call(&s, &method, path, &body, Some(READER)).await;
        if changes || path.ends_with("/api-keys/validate") {
            assert_eq!(r.status, 403, "reader on {path}: {}", r.text());
        } else {
            assert!(
                r.status == 200 || r.status == 204,
                "reader on {path}: {} {}",
                r.status,
                r.text()
            );
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn a03_service_routes_need_no_credentials() {
    // Without API keys configured, the non-admin routes need no authentication (§2.8 [D]).
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    s.record("cb-test", &id).await;
    assert_eq!(s.lookup("cb-test", "5115").await, vec![id]);
    s.stop().await;
}

#[tokio::test]
async fn a04_supervisor_may_not_validate_api_keys() {
    let s = TestServer::start().await;
    let r = s
        .admin_post_as(
            "/genesys/1/admin/api-keys/validate",
            SUPERVISOR,
            &json!({"key": "x"}),
        )
        .await;
    assert_eq!(r.status, 403, "Supervisor on key validation: {}", r.text());
    s.stop().await;
}
