//! The crate's one error type.

use std::fmt;
use std::io;

/// Everything that can go wrong in this crate.
///
/// Each variant says where the failure came from; `Display` gives a message a
/// person can act on, with the context the failure happened in.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file, socket or process operation failed. `context` says what we were
    /// doing (e.g. "reading /path/to/file").
    Io {
        /// What was being done when the error happened.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// JSON could not be parsed or did not have the expected shape.
    Json {
        /// What was being parsed.
        context: String,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// The server answered with a non-success HTTP status.
    Http {
        /// HTTP status code.
        status: u16,
        /// The method and URL of the request.
        request: String,
        /// The response body (usually the reference's `{"detail": ...}`).
        body: String,
    },
    /// The HTTP request could not be sent or its answer could not be read
    /// (connection refused, reset, timeout, bad response).
    Transport {
        /// The method and URL of the request.
        request: String,
        /// What went wrong.
        message: String,
    },
    /// A WebSocket failed; `fatal` closes (4001 auth, 4004 unknown
    /// conversation) are reported as [`Error::Closed`].
    WebSocket(String),
    /// The peer closed a connection with a code that forbids retrying.
    Closed {
        /// WebSocket close code (4001 = authentication failed, 4004 = not found).
        code: u16,
        /// The close reason sent by the peer.
        reason: String,
    },
    /// An operation did not finish in time.
    Timeout(String),
    /// An argument or configuration value is invalid.
    InvalidInput(String),
    /// A language model provider failed (after retries, where retrying applies).
    Llm(String),
    /// A spawned server or child process failed.
    Process(String),
    /// A conversation run ended in `error` (or `stuck`); `code` is the
    /// reference's error class (`LLMAuthenticationError`, `MaxIterationsReached`, ...).
    Run {
        /// Error class name.
        code: String,
        /// What happened.
        detail: String,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps a JSON error with what was being parsed.
    pub fn json(context: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            context: context.into(),
            source,
        }
    }

    /// The HTTP status code, when the error is an HTTP answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "while {context}: {source}"),
            Error::Json { context, source } => write!(f, "invalid JSON in {context}: {source}"),
            Error::Http {
                status,
                request,
                body,
            } => write!(f, "{request} answered HTTP {status}: {body}"),
            Error::Transport { request, message } => write!(f, "{request} failed: {message}"),
            Error::WebSocket(m) => write!(f, "websocket error: {m}"),
            Error::Closed { code, reason } => {
                write!(f, "connection closed by peer with code {code}: {reason}")
            }
            Error::Timeout(m) => write!(f, "timed out: {m}"),
            Error::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Error::Llm(m) => write!(f, "LLM error: {m}"),
            Error::Process(m) => write!(f, "process error: {m}"),
            Error::Run { code, detail } => write!(f, "conversation run failed ({code}): {detail}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Json { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Shorthand for `Result<T, openhands_sync::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
