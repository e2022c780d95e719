//! Decoding request parameters (spec 40 §2.4): JSON objects, `x-www-form-urlencoded` and
//! `multipart/form-data` bodies, merged over the query string (the body wins).
//!
//! Failures are returned as the finished HTTP response (built once per refused request).
#![allow(clippy::result_large_err)]

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use super::response::{error, plain};
use crate::callback::{CallbackError, ErrorCode, Params};

/// Query-string pairs in order, repeated keys kept.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// The query string as parameters (last value of a repeated key wins).
pub fn query_params(query: Option<&str>) -> Params {
    query_pairs(query).into_iter().collect()
}

enum Encoding {
    Json,
    Form,
    Multipart(String),
}

fn encoding(headers: &HeaderMap, empty_body: bool) -> Result<Option<Encoding>, Response> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return if empty_body {
            Ok(None)
        } else {
            Err(plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "A request body needs a Content-Type",
            ))
        };
    };
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(Some(Encoding::Json)),
        "application/x-www-form-urlencoded" => Ok(Some(Encoding::Form)),
        "multipart/form-data" => match multer::parse_boundary(text) {
            Ok(boundary) => Ok(Some(Encoding::Multipart(boundary))),
            Err(_) => Err(error(&CallbackError::new(
                ErrorCode::BadParameter,
                "multipart/form-data body without a valid boundary",
            ))),
        },
        _ => Err(plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Unsupported Content-Type '{text}': use application/json, multipart/form-data or application/x-www-form-urlencoded"
            ),
        )),
    }
}

/// Reads at most `limit` bytes of body; a larger body is refused with 413.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body larger than {limit} bytes"),
        )
    })
}

/// Decodes the parameters of a start or update request.
pub async fn decode(headers: &HeaderMap, query: Option<&str>, body: Bytes) -> Result<Params, Response> {
    let mut params = query_params(query);
    match encoding(headers, body.is_empty())? {
        None => {}
        Some(Encoding::Form) => params.extend(form_urlencoded::parse(&body).into_owned()),
        Some(Encoding::Json) => params.extend(json_params(&body).map_err(|e| error(&e))?),
        Some(Encoding::Multipart(boundary)) => {
            params.extend(multipart_params(body, boundary).await.map_err(|e| error(&e))?)
        }
    }
    Ok(params)
}

/// A JSON object's members as parameters: strings as-is, numbers and booleans in canonical
/// text, `null` absent; arrays and objects are refused naming the key.
fn json_params(body: &[u8]) -> Result<Vec<(String, String)>, CallbackError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| CallbackError::new(ErrorCode::BadParameter, format!("Malformed JSON body: {e}")))?;
    let Value::Object(members) = value else {
        return Err(CallbackError::new(
            ErrorCode::BadParameter,
            "The JSON body must be an object",
        ));
    };
    let mut out = Vec::with_capacity(members.len());
    for (key, value) in members {
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(CallbackError::bad_parameter(
                    &key,
                    format!("Parameter {key} must be a string, number or boolean, not an array or object"),
                ));
            }
        };
        out.push((key, text));
    }
    Ok(out)
}

/// The text parts of a multipart body; file parts are ignored.
async fn multipart_params(body: Bytes, boundary: String) -> Result<Vec<(String, String)>, CallbackError> {
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let bad = |e: multer::Error| {
        CallbackError::new(ErrorCode::BadParameter, format!("Malformed multipart body: {e}"))
    };
    let mut out = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        if field.file_name().is_some() {
            continue;
        }
        let Some(name) = field.name().map(str::to_string) else {
            continue;
        };
        let text = field.text().await.map_err(bad)?;
        out.push((name, text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_become_text() {
        let p = json_params(br#"{"a":"x","n":42,"f":1.5,"b":true,"z":null}"#).unwrap();
        assert_eq!(
            p,
            vec![
                ("a".into(), "x".into()),
                ("n".into(), "42".into()),
                ("f".into(), "1.5".into()),
                ("b".into(), "true".into())
            ]
        );
        let e = json_params(br#"{"usr_list":[1,2]}"#).unwrap_err();
        assert_eq!(e.properties["option"], "usr_list");
        assert!(json_params(b"[1]").is_err());
        assert!(
            json_params(b"{bad")
                .unwrap_err()
                .message
                .starts_with("Malformed JSON body")
        );
        assert!(json_params(b"  ").unwrap().is_empty());
    }

    #[tokio::test]
    async fn multipart_text_parts() {
        let body = "--XX\r\nContent-Disposition: form-data; name=\"_customer_number\"\r\n\r\n5117\r\n\
                    --XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nfile\r\n\
                    --XX\r\nContent-Disposition: form-data; name=\"usr_customer_name\"\r\n\r\nBob Markel\r\n--XX--\r\n";
        let p = multipart_params(Bytes::from(body), "XX".into()).await.unwrap();
        assert_eq!(
            p,
            vec![
                ("_customer_number".into(), "5117".into()),
                ("usr_customer_name".into(), "Bob Markel".into())
            ]
        );
        assert!(
            multipart_params(Bytes::from("garbage"), "XX".into())
                .await
                .is_err()
        );
    }
}
