//! The server binary as a child process on 127.0.0.1 port 0, with its log
//! collected; killed (SIGKILL) when dropped unless it was stopped before.
#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct BinaryServer {
    pub child: Child,
    pub url: String,
    log: Arc<Mutex<String>>,
}

impl BinaryServer {
    /// Starts `openhands-sync serve` with `state` as its state directory and
    /// current directory, plus `envs`; waits for its "listening on" line.
    pub fn spawn(state: &Path, envs: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_openhands-sync"))
            .args(["serve", "--host", "127.0.0.1", "--port", "0"])
            .current_dir(state)
            .env("OH_STATE_DIR", state)
            .envs(envs.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        let mut err = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut sent = false;
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut all = sink.lock().unwrap();
                all.push_str(&String::from_utf8_lossy(&buf[..n]));
                if !sent {
                    if let Some(url) = all
                        .split("listening on ")
                        .nth(1)
                        .and_then(|r| r.split(['"', '\n', ' ']).next())
                    {
                        let _ = tx.send(url.to_string());
                        sent = true;
                    }
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(url) => url,
            Err(_) => panic!("the server did not start: {}", log.lock().unwrap()),
        };
        BinaryServer { child, url, log }
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_field("VmRSS:")
    }

    /// How many threads the server process has.
    pub fn threads(&self) -> u64 {
        self.status_field("Threads:")
    }

    fn status_field(&self, name: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    /// SIGKILL, and wait for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and wait up to `within` for it to exit.
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        // SAFETY: kill(2) on our own child; no memory is involved.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        self.kill();
    }
}
