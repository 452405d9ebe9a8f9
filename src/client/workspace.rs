//! [`RemoteWorkspace`]: run commands, move files and read git state on an agent
//! server, blocking. Works against this crate's server and the reference's.

use std::path::Path;
use std::time::{Duration, Instant};

use super::http::{read_bytes, read_json, HttpClient};
use crate::wire::{
    BashCommand, BashEvent, CommandResult, ExecuteBashRequest, FileUploadResult, GitChange,
    GitDiff, Page,
};
use crate::{Error, Result};

/// Default timeout of a command, in seconds (the reference client's).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of [`RemoteWorkspace::execute_command_with`].
#[derive(Debug, Clone, Default)]
pub struct CommandOptions {
    /// Directory to run in; the server's own when `None`.
    pub cwd: Option<String>,
    /// How long the command may run (default 30 s).
    pub timeout: Option<Duration>,
}

/// Settings for a [`RemoteWorkspace`].
#[derive(Debug, Clone)]
pub struct RemoteWorkspaceBuilder {
    base_url: String,
    session_key: Option<String>,
    working_dir: String,
    request_timeout: Duration,
}

impl RemoteWorkspaceBuilder {
    /// The `X-Session-API-Key` to send.
    pub fn session_key(mut self, key: impl Into<String>) -> Self {
        self.session_key = Some(key.into());
        self
    }

    /// The working directory on the server that relative git paths start
    /// from (default `workspace/project`, as in the reference).
    pub fn working_dir(mut self, dir: impl Into<String>) -> Self {
        self.working_dir = dir.into();
        self
    }

    /// Upper bound of one HTTP call (default 10 minutes).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Builds the workspace (no network I/O yet).
    pub fn build(self) -> RemoteWorkspace {
        RemoteWorkspace {
            http: HttpClient::new(&self.base_url, self.session_key, self.request_timeout),
            working_dir: self.working_dir,
        }
    }
}

/// A workspace on an agent server, reached over HTTP.
///
/// ```no_run
/// use openhands_sync::client::RemoteWorkspace;
///
/// let ws = RemoteWorkspace::new("http://127.0.0.1:8000");
/// let result = ws.execute_command("pwd")?;
/// println!("{} (exit {})", result.stdout.trim(), result.exit_code);
/// # Ok::<(), openhands_sync::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RemoteWorkspace {
    http: HttpClient,
    working_dir: String,
}

impl RemoteWorkspace {
    /// A workspace on the server at `base_url`, without a session key.
    pub fn new(base_url: &str) -> Self {
        Self::builder(base_url).build()
    }

    /// Settings for a workspace on the server at `base_url`.
    pub fn builder(base_url: &str) -> RemoteWorkspaceBuilder {
        RemoteWorkspaceBuilder {
            base_url: base_url.to_string(),
            session_key: None,
            working_dir: "workspace/project".into(),
            request_timeout: Duration::from_secs(600),
        }
    }

    /// The HTTP client, shared with conversations on the same server.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The server-side working directory.
    pub fn working_dir(&self) -> &str {
        &self.working_dir
    }

    /// Whether `GET /health` answers 2xx.
    pub fn alive(&self) -> bool {
        self.http.call("GET", "/health", &[], None).is_ok()
    }

    /// Runs `command` in the server's directory with the default timeout.
    pub fn execute_command(&self, command: &str) -> Result<CommandResult> {
        self.execute_command_with(command, &CommandOptions::default())
    }

    /// Starts a command without waiting for it.
    pub fn start_command(&self, command: &str, options: &CommandOptions) -> Result<BashCommand> {
        let timeout = options.timeout.unwrap_or(DEFAULT_COMMAND_TIMEOUT);
        let request = ExecuteBashRequest {
            command: command.to_string(),
            cwd: options.cwd.clone(),
            timeout: timeout.as_secs().max(1),
        };
        let event: BashEvent =
            self.http
                .json("POST", "/api/bash/start_bash_command", &[], Some(&request))?;
        match event {
            BashEvent::Command(c) if !c.id.is_empty() => Ok(c),
            other => Err(Error::InvalidInput(format!(
                "start_bash_command answered a {} instead of a BashCommand",
                other.kind()
            ))),
        }
    }

    /// Runs `command` and waits for it: starts it, then polls its output
    /// (as the reference client does) until the exit code arrives or the
    /// timeout passes, which gives exit code -1 and `timeout_occurred`.
    pub fn execute_command_with(
        &self,
        command: &str,
        options: &CommandOptions,
    ) -> Result<CommandResult> {
        let timeout = options.timeout.unwrap_or(DEFAULT_COMMAND_TIMEOUT);
        let started = Instant::now();
        let cmd = self.start_command(command, options)?;
        let mut stdout = String::new();
        let mut stderr = String::new();
        let mut last_order: i64 = -1;
        let mut exit_code = None;
        let mut seen = std::collections::HashSet::new();
        let mut pause = Duration::from_millis(2);
        while exit_code.is_none() {
            let order = last_order.to_string();
            let mut query = vec![
                ("kind__eq", "BashOutput"),
                ("sort_order", "TIMESTAMP"),
                ("limit", "100"),
                ("command_id__eq", cmd.id.as_str()),
            ];
            if last_order >= 0 {
                query.push(("order__gt", order.as_str()));
            }
            let page: Page<BashEvent> =
                self.http
                    .json("GET", "/api/bash/bash_events/search", &query, None::<&()>)?;
            for event in page.items {
                let BashEvent::Output(out) = event else {
                    continue;
                };
                if !seen.insert(out.id.clone()) {
                    return Err(Error::InvalidInput(format!(
                        "duplicate output event {}",
                        out.id
                    )));
                }
                last_order = last_order.max(out.order as i64);
                stdout.push_str(out.stdout.as_deref().unwrap_or(""));
                stderr.push_str(out.stderr.as_deref().unwrap_or(""));
                if out.exit_code.is_some() {
                    exit_code = out.exit_code;
                }
            }
            if exit_code.is_some() {
                break;
            }
            if started.elapsed() >= timeout + Duration::from_secs(2) {
                stderr.push_str(&format!(
                    "Command timed out after {} seconds",
                    timeout.as_secs()
                ));
                exit_code = Some(-1);
                break;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
        let exit_code = exit_code.unwrap_or(-1);
        // The reference server ends a timed-out command with -1 and no note;
        // name the timeout ourselves so callers can tell it apart.
        let ran_out = started.elapsed() + Duration::from_millis(500) >= timeout;
        if exit_code == -1 && ran_out && !stderr.contains("timed out") {
            if !stderr.is_empty() && !stderr.ends_with('\n') {
                stderr.push('\n');
            }
            stderr.push_str(&format!(
                "Command timed out after {} seconds",
                timeout.as_secs()
            ));
        }
        Ok(CommandResult {
            command: command.to_string(),
            exit_code,
            timeout_occurred: exit_code == -1 && stderr.contains("timed out"),
            stdout,
            stderr,
        })
    }

    /// Uploads a local file to an absolute path on the server.
    pub fn file_upload(&self, source: &Path, destination: &str) -> Result<FileUploadResult> {
        let data = std::fs::read(source)
            .map_err(|e| Error::io(format!("reading {}", source.display()), e))?;
        let name = source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "upload".into());
        self.upload_bytes(&name, &data, destination)
    }

    /// Uploads bytes to an absolute path on the server.
    pub fn file_upload_bytes(&self, data: &[u8], destination: &str) -> Result<FileUploadResult> {
        self.upload_bytes("upload", data, destination)
    }

    fn upload_bytes(&self, name: &str, data: &[u8], destination: &str) -> Result<FileUploadResult> {
        let (content_type, body) = crate::server::multipart::encode_file(name, data);
        let mut response = self.http.post_bytes(
            "/api/file/upload",
            &[("path", destination)],
            &content_type,
            &body,
        )?;
        read_json(&mut response, "POST /api/file/upload")
    }

    /// Downloads a file from the server into memory.
    pub fn file_download_bytes(&self, source: &str) -> Result<Vec<u8>> {
        let mut response =
            self.http
                .call("GET", "/api/file/download", &[("path", source)], None)?;
        read_bytes(&mut response, "GET /api/file/download")
    }

    /// Downloads a file from the server to a local path (parents created);
    /// returns its size.
    pub fn file_download(&self, source: &str, destination: &Path) -> Result<u64> {
        let data = self.file_download_bytes(source)?;
        if let Some(parent) = destination.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        std::fs::write(destination, &data)
            .map_err(|e| Error::io(format!("writing {}", destination.display()), e))?;
        Ok(data.len() as u64)
    }

    fn remote_path(&self, path: &str) -> String {
        if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{}/{}", self.working_dir.trim_end_matches('/'), path)
        }
    }

    /// Files changed in the git repository at `path` (relative paths start at
    /// the working directory).
    pub fn git_changes(&self, path: &str) -> Result<Vec<GitChange>> {
        let p = self.remote_path(path);
        self.http.json(
            "GET",
            "/api/git/changes",
            &[("path", p.as_str())],
            None::<&()>,
        )
    }

    /// Old and new content of one file in a git repository.
    pub fn git_diff(&self, path: &str) -> Result<GitDiff> {
        let p = self.remote_path(path);
        self.http
            .json("GET", "/api/git/diff", &[("path", p.as_str())], None::<&()>)
    }
}
