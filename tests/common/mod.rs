//! Helpers shared by the integration tests: temporary directories and an
//! in-process server on 127.0.0.1 port 0 that stops when dropped.
#![allow(dead_code)]

pub mod fake_llm;

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use openhands_sync::server::{Server, ServerConfig, ServerHandle, SessionKeys};

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ohs-test-{tag}-{}",
            openhands_sync::util::id::uuid4_hex()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir.canonicalize().unwrap())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server running in this process.
pub struct TestServer {
    pub url: String,
    pub state: TempDir,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> Self {
        Self::with(|_| {})
    }

    pub fn with_keys(keys: &[&str]) -> Self {
        let keys = SessionKeys::new(keys.iter().map(|k| k.to_string()));
        Self::with(move |c| c.session_keys = keys.clone())
    }

    pub fn with(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let state = TempDir::new("state");
        let mut config = ServerConfig::new("127.0.0.1", 0);
        config.state_dir = state.path().to_path_buf();
        adjust(&mut config);
        let server = Server::bind(config).expect("server binds");
        let url = format!("http://{}", server.local_addr());
        let handle = server.handle();
        let thread = std::thread::spawn(move || server.run().expect("server runs"));
        TestServer {
            url,
            state,
            handle,
            thread: Some(thread),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A ureq agent that reports every status instead of failing on 4xx/5xx.
pub fn raw_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}
