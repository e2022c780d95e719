//! Request parameter decoding (JSON, form, multipart, query string) never panics, whatever
//! the bytes: the first byte picks the content type, the second splits query and body.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;

const TYPES: [&str; 6] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=XX",
    "multipart/form-data",
    "text/plain",
    "application/json; charset=UTF-8",
];

fuzz_target!(|data: &[u8]| {
    let [kind, split, rest @ ..] = data else { return };
    let mut headers = HeaderMap::new();
    if let Some(t) = TYPES.get(*kind as usize % (TYPES.len() + 1)) {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(t));
    }
    let cut = (*split as usize).min(rest.len());
    let query = String::from_utf8_lossy(&rest[..cut]).into_owned();
    let body = axum::body::Bytes::copy_from_slice(&rest[cut..]);
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let _ = runtime.block_on(boomerang::api::params::decode(&headers, Some(&query), body));
});
