//! Server settings: where to listen, where state lives, keys and limits.

use std::path::PathBuf;
use std::time::Duration;

use super::auth::SessionKeys;

/// How a [`Server`](super::Server) runs. Build one with [`ServerConfig::new`]
/// or [`ServerConfig::from_env`] and adjust fields as needed.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Interface to bind (default `127.0.0.1`).
    pub host: String,
    /// Port to bind; 0 picks a free one (default 8000).
    pub port: u16,
    /// Root of the server's state: `conversations/`, `bash_events/`, `project/`
    /// (default `workspace`, relative to the current directory).
    pub state_dir: PathBuf,
    /// Accepted session keys (empty = no authentication).
    pub session_keys: SessionKeys,
    /// Largest JSON body accepted, in bytes.
    pub max_body_bytes: u64,
    /// Largest file upload accepted, in bytes.
    pub max_upload_bytes: u64,
    /// When set, the file routes only touch paths inside this directory
    /// (after resolving `..` and symlinks). Unset, any absolute path is allowed,
    /// as in the reference.
    pub file_root: Option<PathBuf>,
    /// fsync every stored event and state file (survives power loss, not
    /// just a crash of the process). `OH_FSYNC=1`.
    pub durable: bool,
    /// Key for sealing stored credentials (`OH_SECRET_KEY`); the first
    /// session key is used when unset.
    pub secret_key: Option<crate::llm::Secret>,
    /// How long a client may take to send a request head, and again its
    /// body (plus one second per 100 KiB of announced body), however slowly
    /// it trickles in; then 408 (default 30 s, `OH_REQUEST_TIMEOUT_SECONDS`).
    pub request_timeout: Duration,
    /// The most client connections open at once (HTTP and WebSocket); more
    /// are answered 503 and closed (default 1,024, `OH_MAX_CONNECTIONS`).
    pub max_connections: usize,
}

impl ServerConfig {
    /// Defaults on `host:port`, without reading the environment.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ServerConfig {
            host: host.into(),
            port,
            state_dir: PathBuf::from("workspace"),
            session_keys: SessionKeys::default(),
            max_body_bytes: 16 * 1024 * 1024,
            max_upload_bytes: 256 * 1024 * 1024,
            file_root: None,
            durable: false,
            secret_key: None,
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }

    /// Defaults plus the environment: session keys (`SESSION_API_KEY`,
    /// `OH_SESSION_API_KEYS_*`), `OH_STATE_DIR`, `OH_FILE_ROOT`, `OH_FSYNC`,
    /// `OH_SECRET_KEY`, `OH_REQUEST_TIMEOUT_SECONDS`, `OH_MAX_CONNECTIONS`.
    pub fn from_env(host: impl Into<String>, port: u16) -> Self {
        let mut c = Self::new(host, port);
        c.session_keys = SessionKeys::from_env();
        if let Ok(dir) = std::env::var("OH_STATE_DIR") {
            c.state_dir = PathBuf::from(dir);
        }
        c.secret_key = std::env::var("OH_SECRET_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .map(crate::llm::Secret::new);
        c.durable =
            std::env::var("OH_FSYNC").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        if let Ok(root) = std::env::var("OH_FILE_ROOT") {
            c.file_root = Some(PathBuf::from(root));
        }
        if let Some(secs) = env_number("OH_REQUEST_TIMEOUT_SECONDS") {
            c.request_timeout = Duration::from_secs_f64(secs.max(0.1));
        }
        if let Some(n) = env_number("OH_MAX_CONNECTIONS") {
            c.max_connections = (n as usize).max(1);
        }
        c
    }

    /// Directory of bash events.
    pub fn bash_events_dir(&self) -> PathBuf {
        self.state_dir.join("bash_events")
    }

    /// Directory of stored conversations.
    pub fn conversations_dir(&self) -> PathBuf {
        self.state_dir.join("conversations")
    }
}

/// A positive number from the environment; unset or unparsable is `None`
/// (with a warning for the latter).
fn env_number(name: &str) -> Option<f64> {
    let raw = std::env::var(name).ok()?;
    match raw.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Some(n),
        _ => {
            log::warn!("ignoring {name}={raw:?}: not a positive number");
            None
        }
    }
}
