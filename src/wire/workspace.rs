//! File and git results of the workspace routes, the server's health and info
//! bodies, and the client-side [`CommandResult`].

use serde::{Deserialize, Serialize};

/// `{"success": true, "file_size": N}`, the answer of `file/upload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileUploadResult {
    /// Always true on a 200.
    #[serde(default = "yes")]
    pub success: bool,
    /// Bytes written.
    pub file_size: u64,
}

fn yes() -> bool {
    true
}

/// How a file changed in git.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GitChangeStatus {
    /// Renamed.
    #[serde(rename = "MOVED")]
    Moved,
    /// New (also untracked files).
    #[serde(rename = "ADDED")]
    Added,
    /// Removed.
    #[serde(rename = "DELETED")]
    Deleted,
    /// Modified.
    #[serde(rename = "UPDATED")]
    Updated,
}

/// One changed file of `git/changes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitChange {
    /// How it changed.
    pub status: GitChangeStatus,
    /// Path relative to the directory asked about.
    pub path: String,
}

/// Old and new text of one file (`git/diff`); both null outside a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitDiff {
    /// Working-tree content.
    pub modified: Option<String>,
    /// Content at the compared ref.
    pub original: Option<String>,
}

/// `{"status": "ok"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// `ok`.
    pub status: String,
}

/// The result of running a command in a workspace, as the reference's
/// `CommandResult`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    /// The command line.
    pub command: String,
    /// Exit code; -1 after a timeout or a transport failure.
    pub exit_code: i64,
    /// Everything written to standard output.
    pub stdout: String,
    /// Everything written to standard error (plus a note on timeout).
    pub stderr: String,
    /// Whether the command was stopped by its timeout.
    pub timeout_occurred: bool,
}
