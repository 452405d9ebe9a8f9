//! What handlers see and return: [`ApiRequest`] (method, decoded path
//! segments, query, headers, body) and [`ApiResponse`], plus [`ApiError`],
//! which renders every failure in the reference's FastAPI shapes.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::wire::{ErrorBody, ValidationError};

/// An HTTP request, fully read.
#[derive(Debug)]
pub struct ApiRequest {
    /// Upper-case method.
    pub method: String,
    /// Decoded path segments (`/api/bash/x` -> `["api", "bash", "x"]`).
    pub segments: Vec<String>,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Headers with lower-case names.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

impl ApiRequest {
    /// A header value by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The first value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A required query parameter (422 `missing` when absent).
    pub fn required_query(&self, name: &str) -> Result<&str, ApiError> {
        self.query(name).ok_or_else(|| {
            ApiError::validation("missing", &["query", name], "Field required", Value::Null)
        })
    }

    /// An optional integer query parameter within `min..=max`.
    pub fn int_query(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        let Some(raw) = self.query(name) else {
            return Ok(None);
        };
        let n: i64 = raw.trim().parse().map_err(|_| {
            ApiError::validation(
                "int_parsing",
                &["query", name],
                "Input should be a valid integer, unable to parse string as an integer",
                json!(raw),
            )
        })?;
        if n < min {
            return Err(ApiError::Validation(vec![ValidationError {
                error_type: "greater_than_equal".into(),
                loc: vec![json!("query"), json!(name)],
                msg: format!("Input should be greater than or equal to {min}"),
                input: json!(raw),
                ctx: Some(json!({ "ge": min })),
            }]));
        }
        if n > max {
            return Err(ApiError::Validation(vec![ValidationError {
                error_type: "less_than_equal".into(),
                loc: vec![json!("query"), json!(name)],
                msg: format!("Input should be less than or equal to {max}"),
                input: json!(raw),
                ctx: Some(json!({ "le": max })),
            }]));
        }
        Ok(Some(n))
    }

    /// `sort_order=TIMESTAMP|TIMESTAMP_DESC` (default `TIMESTAMP`): whether
    /// newest comes first.
    pub fn timestamp_descending(&self) -> Result<bool, ApiError> {
        match self.query("sort_order") {
            None | Some("TIMESTAMP") => Ok(false),
            Some("TIMESTAMP_DESC") => Ok(true),
            Some(other) => Err(ApiError::validation(
                "enum",
                &["query", "sort_order"],
                "Input should be 'TIMESTAMP' or 'TIMESTAMP_DESC'",
                json!(other),
            )),
        }
    }

    /// The body parsed as JSON into `T`, with 422s shaped like FastAPI's.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let value: Value = serde_json::from_slice(&self.body).map_err(|e| {
            ApiError::Validation(vec![ValidationError {
                error_type: "json_invalid".into(),
                loc: vec![json!("body"), json!(e.column())],
                msg: "JSON decode error".into(),
                input: json!({}),
                ctx: Some(json!({ "error": e.to_string() })),
            }])
        })?;
        // Every request body is a model (a JSON object). serde would also
        // build a struct from an array of its fields; the reference would not.
        if !value.is_object() {
            return Err(not_an_object(&["body"], value));
        }
        serde_json::from_value(value.clone()).map_err(|e| body_error(&e, value))
    }
}

/// The 422 for a value at `loc` that should have been an object.
pub fn not_an_object(loc: &[&str], input: Value) -> ApiError {
    ApiError::validation(
        "model_attributes_type",
        loc,
        "Input should be a valid dictionary or object to extract fields from",
        input,
    )
}

/// Turns a serde error on a request body into a 422 entry.
fn body_error(e: &serde_json::Error, input: Value) -> ApiError {
    let msg = e.to_string();
    if let Some(field) = msg
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        return ApiError::validation("missing", &["body", field], "Field required", input);
    }
    let kind = if input.is_object() {
        "value_error"
    } else {
        "model_attributes_type"
    };
    ApiError::validation(kind, &["body"], &msg, input)
}

/// A response ready to send.
#[derive(Debug)]
pub struct ApiResponse {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// A JSON body with status 200.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        Self::json_status(200, value)
    }

    /// A JSON body with the given status.
    pub fn json_status<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => ApiResponse {
                status,
                content_type: "application/json",
                headers: Vec::new(),
                body,
            },
            Err(e) => ApiError::internal(format!("serialising the response: {e}")).into_response(),
        }
    }

    /// Raw bytes with status 200.
    pub fn bytes(content_type: &'static str, body: Vec<u8>) -> Self {
        ApiResponse {
            status: 200,
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    /// `{"success": true}`.
    pub fn success() -> Self {
        Self::json(&crate::wire::Success::default())
    }
}

/// A failed request, in the reference's error shapes.
#[derive(Debug)]
pub enum ApiError {
    /// 400 `{"detail": "..."}`.
    BadRequest(String),
    /// 401 `{"detail": "Unauthorized"}`.
    Unauthorized,
    /// 403 `{"detail": "..."}`.
    Forbidden(String),
    /// 404 `{"detail": "..."}` (`"Not Found"` for unknown routes).
    NotFound(String),
    /// 405 `{"detail": "Method Not Allowed"}`.
    MethodNotAllowed,
    /// 408 `{"detail": "..."}`: the request did not arrive in time.
    RequestTimeout,
    /// 409 `{"detail": "..."}`.
    Conflict(String),
    /// 413 `{"detail": "..."}`.
    PayloadTooLarge(u64),
    /// 422 `{"detail": [ValidationError...]}`.
    Validation(Vec<ValidationError>),
    /// 422 `{"detail": "..."}` (routes that raise with a message).
    Unprocessable(String),
    /// 431 `{"detail": "..."}`: the request head is too large.
    HeaderTooLarge,
    /// 500 `{"detail": "Internal Server Error", "exception": ..., "error_id": ...}`.
    Internal(String),
}

impl ApiError {
    /// A 422 with one entry.
    pub fn validation(kind: &str, loc: &[&str], msg: &str, input: Value) -> Self {
        ApiError::Validation(vec![ValidationError {
            error_type: kind.to_string(),
            loc: loc.iter().map(|s| json!(s)).collect(),
            msg: msg.to_string(),
            input,
            ctx: None,
        }])
    }

    /// A 500 for an unexpected failure.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::Internal(message.into())
    }

    /// 404 with the generic `Not Found` detail.
    pub fn not_found() -> Self {
        ApiError::NotFound("Not Found".into())
    }

    /// The response for this error.
    pub fn into_response(self) -> ApiResponse {
        let (status, detail, exception, error_id) = match self {
            ApiError::BadRequest(d) => (400, json!(d), None, None),
            ApiError::Unauthorized => (401, json!("Unauthorized"), None, None),
            ApiError::Forbidden(d) => (403, json!(d), None, None),
            ApiError::NotFound(d) => (404, json!(d), None, None),
            ApiError::MethodNotAllowed => (405, json!("Method Not Allowed"), None, None),
            ApiError::RequestTimeout => (
                408,
                json!("The request did not arrive in time."),
                None,
                None,
            ),
            ApiError::Conflict(d) => (409, json!(d), None, None),
            ApiError::HeaderTooLarge => (
                431,
                json!("Request header fields are too large."),
                None,
                None,
            ),
            ApiError::PayloadTooLarge(limit) => (
                413,
                json!(format!(
                    "Request body is larger than the limit of {limit} bytes"
                )),
                None,
                None,
            ),
            ApiError::Validation(errors) => (422, json!(errors), None, None),
            ApiError::Unprocessable(d) => (422, json!(d), None, None),
            ApiError::Internal(e) => {
                let id = crate::util::id::uuid4_hex();
                log::error!("internal error {id}: {e}");
                (500, json!("Internal Server Error"), Some(e), Some(id))
            }
        };
        let body = ErrorBody {
            detail,
            exception,
            error_id,
        };
        let mut response = ApiResponse::json_status(status, &body);
        response.status = status;
        response
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::InvalidInput(m) => ApiError::BadRequest(m),
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// Decodes `%XX` escapes (and `+` as space when `plus_is_space`); invalid
/// escapes are kept as written, invalid UTF-8 is replaced.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a request target into decoded path segments and query pairs.
pub fn split_target(target: &str) -> (Vec<String>, Vec<(String, String)>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segments = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect();
    (segments, query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_targets() {
        let (seg, q) = split_target("/api/file/download?path=%2Ftmp%2Fa+b.txt&x=1&flag");
        assert_eq!(seg, ["api", "file", "download"]);
        assert_eq!(q[0], ("path".into(), "/tmp/a b.txt".into()));
        assert_eq!(q[2], ("flag".into(), "".into()));
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert_eq!(percent_decode("a%2", false), "a%2");
        assert_eq!(percent_decode("%", false), "%");
    }
}
