//! The blocking HTTP plumbing shared by the remote clients: one ureq agent
//! (keep-alive pool), the base URL, the optional session key, and the mapping
//! of failures to [`Error::Http`] / [`Error::Transport`].

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// The largest response body read into memory (file downloads included).
pub const MAX_RESPONSE_BYTES: u64 = 1024 * 1024 * 1024;

/// A server's base URL plus the agent that talks to it.
#[derive(Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    base: String,
    session_key: Option<String>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("base", &self.base)
            .field(
                "session_key",
                &self.session_key.as_ref().map(|_| "**********"),
            )
            .finish()
    }
}

impl HttpClient {
    /// A client for `base_url` (trailing `/` removed); `timeout` bounds each call.
    pub fn new(base_url: &str, session_key: Option<String>, timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_idle_connections_per_host(16)
            .user_agent(concat!("openhands-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        HttpClient {
            agent,
            base: base_url.trim_end_matches('/').to_string(),
            session_key: session_key.filter(|k| !k.is_empty()),
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The session key, if any.
    pub fn session_key(&self) -> Option<&str> {
        self.session_key.as_deref()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn finish(
        &self,
        what: String,
        result: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let mut response = result.map_err(|e| Error::Transport {
            request: what.clone(),
            message: e.to_string(),
        })?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .lossy_utf8(true)
            .read_to_string()
            .unwrap_or_default();
        Err(Error::Http {
            status,
            request: what,
            body,
        })
    }

    /// Sends a request with optional JSON body and query; returns the response.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        json: Option<&serde_json::Value>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let url = self.url(path);
        let what = format!("{method} {path}");
        macro_rules! prepare {
            ($builder:expr) => {{
                let mut b = $builder;
                for (k, v) in query {
                    b = b.query(*k, *v);
                }
                if let Some(key) = &self.session_key {
                    b = b.header("X-Session-API-Key", key);
                }
                b
            }};
        }
        let result = match method {
            "GET" => prepare!(self.agent.get(&url)).call(),
            "DELETE" => prepare!(self.agent.delete(&url)).call(),
            "POST" | "PATCH" | "PUT" => {
                let b = match method {
                    "POST" => prepare!(self.agent.post(&url)),
                    "PATCH" => prepare!(self.agent.patch(&url)),
                    _ => prepare!(self.agent.put(&url)),
                };
                match json {
                    Some(v) => b.send_json(v),
                    None => b.send_empty(),
                }
            }
            other => return Err(Error::InvalidInput(format!("unsupported method {other}"))),
        };
        self.finish(what, result)
    }

    /// Sends raw bytes with a content type (multipart uploads).
    pub fn post_bytes(
        &self,
        path: &str,
        query: &[(&str, &str)],
        content_type: &str,
        body: &[u8],
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let mut b = self.agent.post(self.url(path)).content_type(content_type);
        for (k, v) in query {
            b = b.query(*k, *v);
        }
        if let Some(key) = &self.session_key {
            b = b.header("X-Session-API-Key", key);
        }
        self.finish(format!("POST {path}"), b.send(body))
    }

    /// A JSON call whose answer is parsed into `T`.
    pub fn json<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&impl Serialize>,
    ) -> Result<T> {
        let body = body
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| Error::json(format!("the body of {method} {path}"), e))?;
        let mut response = self.call(method, path, query, body.as_ref())?;
        read_json(&mut response, &format!("{method} {path}"))
    }
}

/// Reads a JSON response body.
pub fn read_json<T: DeserializeOwned>(
    response: &mut ureq::http::Response<ureq::Body>,
    what: &str,
) -> Result<T> {
    let bytes = read_bytes(response, what)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::json(format!("the answer to {what}"), e))
}

/// Reads a whole response body (up to [`MAX_RESPONSE_BYTES`]).
pub fn read_bytes(response: &mut ureq::http::Response<ureq::Body>, what: &str) -> Result<Vec<u8>> {
    response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_vec()
        .map_err(|e| Error::Transport {
            request: what.to_string(),
            message: format!("reading the response: {e}"),
        })
}
