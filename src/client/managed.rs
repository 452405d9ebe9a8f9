//! [`ManagedServer`]: start an agent server as a child process, wait until
//! `GET /health` answers 200, forward its output with a `[SERVER]` prefix, and
//! stop it (SIGTERM, then SIGKILL after 5 s) when dropped.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Set in the environment of a server started with
/// [`ServerCommand::CurrentExe`], so a program that forgot to call
/// [`serve_if_requested`](crate::cli::serve_if_requested) fails instead of
/// spawning itself forever.
pub const CHILD_MARKER_ENV: &str = "OPENHANDS_SYNC_SERVER_CHILD";

/// Which program runs the server.
#[derive(Debug, Clone)]
pub enum ServerCommand {
    /// A program and its leading arguments (`--host`/`--port` are appended),
    /// e.g. `openhands-sync serve` or `python -m openhands.agent_server`.
    Program(PathBuf, Vec<String>),
    /// This executable, re-run as `<exe> serve`; its `main` must call
    /// [`serve_if_requested`](crate::cli::serve_if_requested) first.
    CurrentExe,
    /// `$OPENHANDS_SYNC_BIN`, else `openhands-sync` next to this executable
    /// (or one directory up, for `target/*/examples`), else on `PATH`.
    Auto,
}

impl ServerCommand {
    fn resolve(&self) -> Result<(PathBuf, Vec<String>)> {
        match self {
            ServerCommand::Program(p, args) => Ok((p.clone(), args.clone())),
            ServerCommand::CurrentExe => {
                if std::env::var_os(CHILD_MARKER_ENV).is_some() {
                    return Err(Error::Process(
                        "this program was started as a managed server but did not call \
                         openhands_sync::cli::serve_if_requested() first"
                            .into(),
                    ));
                }
                let exe = std::env::current_exe()
                    .map_err(|e| Error::io("locating the current executable", e))?;
                Ok((exe, vec!["serve".into()]))
            }
            ServerCommand::Auto => {
                let serve = vec!["serve".to_string()];
                if let Some(bin) = std::env::var_os("OPENHANDS_SYNC_BIN") {
                    return Ok((PathBuf::from(bin), serve));
                }
                let name = "openhands-sync";
                if let Ok(exe) = std::env::current_exe() {
                    for dir in exe.ancestors().skip(1).take(2) {
                        let candidate = dir.join(name);
                        if candidate.is_file() {
                            return Ok((candidate, serve));
                        }
                    }
                }
                std::env::var_os("PATH")
                    .into_iter()
                    .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                    .map(|d| d.join(name))
                    .find(|c| c.is_file())
                    .map(|c| (c, serve))
                    .ok_or_else(|| {
                        Error::Process(
                            "openhands-sync not found: build it (cargo build --release) or set OPENHANDS_SYNC_BIN"
                                .into(),
                        )
                    })
            }
        }
    }
}

/// Settings for a [`ManagedServer`].
#[derive(Debug, Clone)]
pub struct ManagedServerBuilder {
    command: ServerCommand,
    host: String,
    port: u16,
    cwd: Option<PathBuf>,
    env: Vec<(String, String)>,
    startup_timeout: Duration,
    forward_output: bool,
}

impl ManagedServerBuilder {
    /// The program to run (default [`ServerCommand::Auto`]).
    pub fn command(mut self, command: ServerCommand) -> Self {
        self.command = command;
        self
    }

    /// Interface to bind (default `127.0.0.1`).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Port to bind; 0 (the default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Working directory of the server (its state lives below it).
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// An extra environment variable for the server.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// How long to wait for `/health` (default 60 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Print the server's output lines with a `[SERVER]` prefix (default on);
    /// off, the output is discarded.
    pub fn forward_output(mut self, on: bool) -> Self {
        self.forward_output = on;
        self
    }

    /// Starts the server and waits until it is healthy.
    pub fn start(self) -> Result<ManagedServer> {
        let (program, args) = self.command.resolve()?;
        let port = if self.port == 0 {
            free_port(&self.host)?
        } else {
            self.port
        };
        let mut cmd = Command::new(&program);
        cmd.args(&args)
            .args(["--host", &self.host, "--port", &port.to_string()])
            .env("LOG_JSON", "true")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if matches!(self.command, ServerCommand::CurrentExe) {
            cmd.env(CHILD_MARKER_ENV, "1");
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", program.display()), e))?;
        let mut readers = Vec::new();
        let forward = self.forward_output;
        if let Some(out) = child.stdout.take() {
            readers.push(forward_lines(Box::new(out), forward));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(forward_lines(Box::new(err), forward));
        }
        let url_host = if self.host == "0.0.0.0" {
            "127.0.0.1"
        } else {
            self.host.as_str()
        };
        let mut server = ManagedServer {
            child: Some(child),
            url: format!("http://{url_host}:{port}"),
            readers,
        };
        server.wait_healthy(self.startup_timeout)?;
        Ok(server)
    }
}

fn free_port(host: &str) -> Result<u16> {
    let l = std::net::TcpListener::bind((host, 0))
        .map_err(|e| Error::io(format!("finding a free port on {host}"), e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("reading a port", e))
}

fn forward_lines(stream: Box<dyn Read + Send>, forward: bool) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("server-output".into())
        .spawn(move || {
            for line in BufReader::new(stream).lines() {
                match line {
                    Ok(l) if forward => println!("[SERVER] {l}"),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        })
        .unwrap_or_else(|_| std::thread::spawn(|| {}))
}

/// A running server child process; stopped when dropped.
#[derive(Debug)]
pub struct ManagedServer {
    child: Option<Child>,
    url: String,
    readers: Vec<JoinHandle<()>>,
}

impl ManagedServer {
    /// Settings for a server (default: auto-located `openhands-sync`, a free
    /// port on 127.0.0.1).
    pub fn builder() -> ManagedServerBuilder {
        ManagedServerBuilder {
            command: ServerCommand::Auto,
            host: "127.0.0.1".into(),
            port: 0,
            cwd: None,
            env: Vec::new(),
            startup_timeout: Duration::from_secs(60),
            forward_output: true,
        }
    }

    /// The server's base URL, e.g. `http://127.0.0.1:8001`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let deadline = Instant::now() + timeout;
        let health = format!("{}/health", self.url);
        loop {
            if let Ok(r) = agent.get(&health).call() {
                if r.status().as_u16() == 200 {
                    return Ok(());
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(Error::Process(format!(
                        "the server exited during startup ({status})"
                    )));
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "{health} did not answer 200 within {timeout:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGTERM, SIGKILL after 5 s) and returns its exit status.
    pub fn stop(mut self) -> Result<ExitStatus> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return Err(Error::Process("the server was already stopped".into()));
        };
        crate::util::process::signal_process(child.id() as i32, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    break child
                        .wait()
                        .map_err(|e| Error::io("waiting for the server", e))?;
                }
            }
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Ok(status)
    }
}

impl Drop for ManagedServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.shutdown();
        }
    }
}
