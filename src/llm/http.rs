//! The one HTTP call every provider makes: POST JSON, read JSON, map
//! failures to [`LlmError`].

use std::time::Duration;

use serde_json::Value;

use super::error::{LlmError, LlmErrorKind};

/// A JSON answer and the headers a provider may put information in.
pub struct JsonAnswer {
    /// The body.
    pub body: Value,
    /// `x-litellm-response-cost`, when present.
    pub litellm_cost: Option<f64>,
}

/// POSTs `body` to `url` with `headers`; `timeout` bounds the whole call.
pub fn post_json(
    url: &str,
    headers: &[(String, String)],
    body: &Value,
    timeout: Option<Duration>,
) -> Result<JsonAnswer, LlmError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(timeout)
        .build()
        .into();
    let mut req = agent.post(url);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let mut response = req.send_json(body).map_err(|e| {
        let kind = match &e {
            ureq::Error::Timeout(_) => LlmErrorKind::Timeout,
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                LlmErrorKind::Timeout
            }
            _ => LlmErrorKind::ServiceUnavailable,
        };
        LlmError::new(kind, format!("cannot reach {}: {e}", strip_query(url)))
    })?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    let litellm_cost = response
        .headers()
        .get("x-litellm-response-cost")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok());
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| {
            LlmError::new(
                LlmErrorKind::ServiceUnavailable,
                format!("reading the answer: {e}"),
            )
        })?;
    if !(200..300).contains(&status) {
        return Err(LlmError::from_status(status, &text, retry_after));
    }
    let body = serde_json::from_str(&text).map_err(|e| {
        let snippet: String = text.chars().take(200).collect();
        LlmError::new(
            LlmErrorKind::BadResponse,
            format!("the provider's answer is not valid JSON ({e}): {snippet}"),
        )
    })?;
    Ok(JsonAnswer { body, litellm_cost })
}

fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// POSTs `body` with `headers` plus the config's `extra_headers`, bounded by
/// the config's `timeout`.
pub fn post_for(
    cfg: &super::LlmConfig,
    url: &str,
    mut headers: Vec<(String, String)>,
    body: &Value,
) -> Result<JsonAnswer, LlmError> {
    for (k, v) in cfg.extra_headers.iter().flatten() {
        let value = v
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| v.to_string());
        headers.push((k.clone(), value));
    }
    post_json(
        url,
        &headers,
        body,
        cfg.timeout.map(Duration::from_secs_f64),
    )
}
