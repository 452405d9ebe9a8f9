//! Helpers shared by the integration tests: temporary directories and an
//! in-process server on 127.0.0.1 port 0 that stops when dropped.
#![allow(dead_code)]

pub mod binary;
pub mod fake_llm;
pub mod proxy;

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

/// Opens the event socket of a conversation (with a read timeout).
pub fn ws_connect(base_url: &str, path: &str) -> tungstenite::WebSocket<std::net::TcpStream> {
    let addr = base_url.trim_start_matches("http://");
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let (ws, _) =
        tungstenite::client(format!("ws://{addr}{path}"), tcp).expect("websocket handshake");
    ws
}

/// The next JSON frame, or `None` when the socket closed or timed out.
pub fn ws_next(ws: &mut tungstenite::WebSocket<std::net::TcpStream>) -> Option<serde_json::Value> {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => return serde_json::from_str(t.as_str()).ok(),
            Ok(tungstenite::Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// The close code the server sent, reading until the socket ends.
pub fn ws_close_code(ws: &mut tungstenite::WebSocket<std::net::TcpStream>) -> Option<u16> {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(Some(f))) => return Some(u16::from(f.code)),
            Ok(tungstenite::Message::Close(None)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// A conversation on `base_url` driven by the offline scripted model.
pub fn create_scripted_conversation(
    base_url: &str,
    working_dir: &Path,
    extra: serde_json::Value,
) -> String {
    let agent = openhands_sync::agent::spec::AgentSpec::default_for(
        openhands_sync::llm::LlmConfig::new("scripted/demo").with_usage_id("agent"),
    );
    let mut body = serde_json::json!({
        "agent": agent.to_value_exposed(),
        "workspace": {"working_dir": working_dir, "kind": "LocalWorkspace"},
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let mut r = raw_agent()
        .post(format!("{base_url}/api/conversations"))
        .send_json(&body)
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        201,
        "{}",
        r.body_mut().read_to_string().unwrap_or_default()
    );
    let info: serde_json::Value = r.body_mut().read_json().unwrap();
    info["id"].as_str().unwrap().to_string()
}

/// The pids (one per line) of live processes whose command line contains
/// `marker`; empty when none runs. Zombies are dead and not counted: when
/// their parent died, whether the machine's init reaps them promptly is not
/// ours to test.
pub fn processes_matching(marker: &str) -> String {
    let out = std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    stat.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().next().map(String::from))
                })
                .is_some_and(|state| state != "Z")
        })
        .map(|pid| format!("{pid}\n"))
        .collect()
}

/// GET a URL: (status, JSON body or null).
pub fn get_json(url: &str) -> (u16, serde_json::Value) {
    let mut r = raw_agent().get(url).call().unwrap();
    let status = r.status().as_u16();
    (
        status,
        r.body_mut().read_json().unwrap_or(serde_json::Value::Null),
    )
}

/// GET a URL that must answer 200; its JSON body.
pub fn get_ok(url: &str) -> serde_json::Value {
    let (status, body) = get_json(url);
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}

/// POST JSON to a URL: (status, JSON body or null).
pub fn post_json(url: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let mut r = raw_agent().post(url).send_json(&body).unwrap();
    let status = r.status().as_u16();
    (
        status,
        r.body_mut().read_json().unwrap_or(serde_json::Value::Null),
    )
}

/// A user message body for `POST .../events`.
pub fn message(text: &str, run: bool) -> serde_json::Value {
    serde_json::json!({"role": "user", "content": [{"type": "text", "text": text}], "run": run})
}

/// Polls a conversation until its status is `want` (30 s at most); returns its info.
pub fn wait_status(base: &str, id: &str, want: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, info) = get_json(&format!("{base}/api/conversations/{id}"));
        if info["execution_status"] == want {
            return info;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "status stayed {}",
            info["execution_status"]
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The ids of every stored event of a conversation, following pages.
pub fn stored_ids(url: &str, id: &str) -> Vec<String> {
    let ws = openhands_sync::client::RemoteWorkspace::new(url);
    openhands_sync::client::socket::fetch_all_events(ws.http(), id)
        .unwrap()
        .iter()
        .map(|e| e.id().to_string())
        .collect()
}

/// A `sleep` reachable under a name that contains `marker` (a symlink in
/// `dir`), so `processes_matching(marker)` finds it even when started from
/// `/bin/sh`, which has no `exec -a`.
pub fn named_sleep(dir: &Path, marker: &str) -> PathBuf {
    let out = std::process::Command::new("sh")
        .args(["-c", "command -v sleep"])
        .output()
        .unwrap();
    let sleep = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let link = dir.join(marker);
    std::os::unix::fs::symlink(sleep, &link).unwrap();
    link
}

/// A small deterministic generator for randomised campaigns, so a failing
/// run can be replayed from its seed.
pub struct Lcg {
    seed: u64,
    state: u64,
}

impl Lcg {
    /// Seeded from `env` when set (to replay a run), else from the clock; the
    /// seed is printed either way.
    pub fn from_env_or_clock(env: &str) -> Self {
        let seed = std::env::var(env)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        println!("seed {seed} (replay with {env}={seed})");
        Lcg { seed, state: seed }
    }

    /// The seed it started from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The next number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.state = self
            .state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.state >> 33) % n as u64) as usize
    }
}
