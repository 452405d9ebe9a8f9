//! [`LlmError`]: why a model call failed, with the reference's error class
//! names (`LLMRateLimitError`, ...) so conversation error events match.

use std::time::Duration;

/// The kind of an LLM failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmErrorKind {
    /// 401/403: bad or missing key.
    Authentication,
    /// 429: slow down.
    RateLimit,
    /// No answer in time.
    Timeout,
    /// 5xx or connection failure.
    ServiceUnavailable,
    /// 400/404/422: the request itself is wrong.
    BadRequest,
    /// The prompt is larger than the model's context window.
    ContextWindowExceeded,
    /// The answer could not be understood.
    BadResponse,
    /// The configuration cannot work (unknown provider, missing URL).
    Config,
}

/// A failed model call.
#[derive(Debug, Clone)]
pub struct LlmError {
    /// What kind of failure.
    pub kind: LlmErrorKind,
    /// What happened (never contains the key).
    pub message: String,
    /// HTTP status, when there was one.
    pub status: Option<u16>,
    /// The provider's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

impl LlmError {
    /// A new error.
    pub fn new(kind: LlmErrorKind, message: impl Into<String>) -> Self {
        LlmError {
            kind,
            message: message.into(),
            status: None,
            retry_after: None,
        }
    }

    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            LlmErrorKind::RateLimit | LlmErrorKind::Timeout | LlmErrorKind::ServiceUnavailable
        )
    }

    /// The reference's exception class name for this failure.
    pub fn code(&self) -> &'static str {
        match self.kind {
            LlmErrorKind::Authentication => "LLMAuthenticationError",
            LlmErrorKind::RateLimit => "LLMRateLimitError",
            LlmErrorKind::Timeout => "LLMTimeoutError",
            LlmErrorKind::ServiceUnavailable => "LLMServiceUnavailableError",
            LlmErrorKind::BadRequest => "LLMBadRequestError",
            LlmErrorKind::ContextWindowExceeded => "LLMContextWindowExceedError",
            LlmErrorKind::BadResponse => "LLMNoResponseError",
            LlmErrorKind::Config => "LLMBadRequestError",
        }
    }

    /// Classifies an HTTP error answer.
    pub fn from_status(status: u16, body: &str, retry_after: Option<Duration>) -> Self {
        let snippet: String = body.chars().take(500).collect();
        let lower = snippet.to_ascii_lowercase();
        let kind = match status {
            401 | 403 => LlmErrorKind::Authentication,
            429 => LlmErrorKind::RateLimit,
            408 => LlmErrorKind::Timeout,
            400 | 413
                if lower.contains("context")
                    && (lower.contains("length")
                        || lower.contains("window")
                        || lower.contains("too long")) =>
            {
                LlmErrorKind::ContextWindowExceeded
            }
            500..=599 => LlmErrorKind::ServiceUnavailable,
            _ => LlmErrorKind::BadRequest,
        };
        LlmError {
            kind,
            message: format!("provider answered HTTP {status}: {snippet}"),
            status: Some(status),
            retry_after,
        }
    }
}

impl std::fmt::Display for LlmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.message)
    }
}

impl std::error::Error for LlmError {}

impl From<LlmError> for crate::Error {
    fn from(e: LlmError) -> Self {
        crate::Error::Llm(e.to_string())
    }
}
