//! Bash events of the workspace routes (`/api/bash/...`): commands and their
//! output chunks. Unlike conversation events these keep null fields, ids are
//! 32 hex digits and timestamps end in `Z`, as in the reference.

use serde::{Deserialize, Serialize};

use super::macros::tagged_union;

/// The body of `start_bash_command` / `execute_bash_command`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecuteBashRequest {
    /// Shell command line, run with `bash -c`.
    pub command: String,
    /// Working directory; the server's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Seconds before the command's process group is killed.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

/// The reference's default command timeout, in seconds.
pub const DEFAULT_BASH_TIMEOUT: u64 = 300;

fn default_timeout() -> u64 {
    DEFAULT_BASH_TIMEOUT
}

/// A command that was started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BashCommand {
    /// The command line.
    pub command: String,
    /// Working directory it runs in.
    pub cwd: Option<String>,
    /// Timeout in seconds.
    pub timeout: u64,
    /// 32-hex id.
    pub id: String,
    /// ISO-8601 UTC time with `Z`.
    pub timestamp: String,
}

/// A chunk of a command's output; the last chunk carries `exit_code`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BashOutput {
    /// 32-hex id.
    pub id: String,
    /// ISO-8601 UTC time with `Z`.
    pub timestamp: String,
    /// The command this output belongs to.
    pub command_id: String,
    /// Position of this chunk (0, 1, 2, ...).
    #[serde(default)]
    pub order: u64,
    /// Exit code on the last chunk (-1 after a timeout or a stop), else null.
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// Standard output of this chunk, null when empty.
    #[serde(default)]
    pub stdout: Option<String>,
    /// Standard error of this chunk, null when empty.
    #[serde(default)]
    pub stderr: Option<String>,
}

/// An error about a bash request (e.g. a bad frame on the bash socket).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BashError {
    /// 32-hex id.
    pub id: String,
    /// ISO-8601 UTC time with `Z`.
    pub timestamp: String,
    /// Error class name.
    pub code: String,
    /// What happened.
    pub detail: String,
}

tagged_union! {
    /// Any bash event, chosen by `kind`.
    pub enum BashEvent {
        /// `BashCommand`.
        Command(BashCommand) = "BashCommand",
        /// `BashOutput`.
        Output(BashOutput) = "BashOutput",
        /// `BashError`.
        Error(BashError) = "BashError",
    }
}

impl BashEvent {
    /// The event id.
    pub fn id(&self) -> &str {
        match self {
            BashEvent::Command(c) => &c.id,
            BashEvent::Output(o) => &o.id,
            BashEvent::Error(e) => &e.id,
            BashEvent::Unknown(m) => m.get("id").and_then(|v| v.as_str()).unwrap_or(""),
        }
    }

    /// The event timestamp.
    pub fn timestamp(&self) -> &str {
        match self {
            BashEvent::Command(c) => &c.timestamp,
            BashEvent::Output(o) => &o.timestamp,
            BashEvent::Error(e) => &e.timestamp,
            BashEvent::Unknown(m) => m.get("timestamp").and_then(|v| v.as_str()).unwrap_or(""),
        }
    }
}
