//! What the default tools take (actions) and give back (observations), with the
//! reference's `kind` names: `TerminalAction`/`TerminalObservation`,
//! `FileEditorAction`/`FileEditorObservation`, `TaskTrackerAction`/
//! `TaskTrackerObservation`, `FinishAction`/`FinishObservation`,
//! `ThinkAction`/`ThinkObservation`.

use serde::{Deserialize, Serialize};

use super::common::{Content, Extra};
use super::macros::tagged_union;

/// Run a command in the persistent shell, or send input to a running one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TerminalAction {
    /// The command, or the text/keys to send when `is_input` is true.
    pub command: String,
    /// Send `command` to the running process instead of starting a new one.
    #[serde(default)]
    pub is_input: bool,
    /// Hard timeout in seconds; without it a no-output timeout applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    /// Start a fresh shell first.
    #[serde(default)]
    pub reset: bool,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// View, create or edit a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEditorAction {
    /// `view`, `create`, `str_replace`, `insert` or `undo_edit`.
    pub command: String,
    /// Absolute path.
    pub path: String,
    /// Content for `create`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_text: Option<String>,
    /// Text to replace for `str_replace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_str: Option<String>,
    /// Replacement for `str_replace`, text for `insert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_str: Option<String>,
    /// Line after which `insert` adds text (0 = top).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insert_line: Option<i64>,
    /// `[start, end]` lines for `view` (1-based, end -1 = to the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_range: Option<Vec<i64>>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One task of the task tracker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Short title.
    pub title: String,
    /// Details.
    #[serde(default)]
    pub notes: String,
    /// `todo`, `in_progress` or `done`.
    #[serde(default = "task_todo")]
    pub status: String,
}

fn task_todo() -> String {
    "todo".to_string()
}

/// View or replace the task list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTrackerAction {
    /// `view` or `plan`.
    #[serde(default = "view_command")]
    pub command: String,
    /// The new list for `plan`.
    #[serde(default)]
    pub task_list: Vec<Task>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

fn view_command() -> String {
    "view".to_string()
}

/// End the run with a message to the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishAction {
    /// The final message.
    pub message: String,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Write down a thought without doing anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThinkAction {
    /// The thought.
    pub thought: String,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

tagged_union! {
    /// A tool's input, chosen by `kind`.
    pub enum Action {
        /// `TerminalAction`.
        Terminal(TerminalAction) = "TerminalAction",
        /// `FileEditorAction`.
        FileEditor(FileEditorAction) = "FileEditorAction",
        /// `TaskTrackerAction`.
        TaskTracker(TaskTrackerAction) = "TaskTrackerAction",
        /// `FinishAction`.
        Finish(FinishAction) = "FinishAction",
        /// `ThinkAction`.
        Think(ThinkAction) = "ThinkAction",
    }
}

/// Exit code, process and location details reported after a shell command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CmdOutputMetadata {
    /// Exit code, -1 when unknown or still running.
    #[serde(default = "minus_one")]
    pub exit_code: i64,
    /// Process id, -1 when unknown.
    #[serde(default = "minus_one")]
    pub pid: i64,
    /// User the shell runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The shell's working directory after the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Python interpreter on PATH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub py_interpreter_path: Option<String>,
    /// Text shown before the output.
    #[serde(default)]
    pub prefix: String,
    /// Text shown after the output.
    #[serde(default)]
    pub suffix: String,
}

fn minus_one() -> i64 {
    -1
}

/// What a shell command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TerminalObservation {
    /// The output.
    #[serde(default)]
    pub content: Vec<Content>,
    /// Whether the tool failed.
    #[serde(default)]
    pub is_error: bool,
    /// The command that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Its exit code (`None`/-1 while still running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// Whether a timeout stopped waiting for it.
    #[serde(default)]
    pub timeout: bool,
    /// Exit code, cwd and decorations.
    pub metadata: CmdOutputMetadata,
    /// Where the full output of a truncated command was saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_output_save_dir: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The result of a file editor command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEditorObservation {
    /// Message or file view.
    #[serde(default)]
    pub content: Vec<Content>,
    /// Whether the command failed.
    #[serde(default)]
    pub is_error: bool,
    /// The editor command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The path it acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Whether the file existed before.
    #[serde(default = "yes")]
    pub prev_exist: bool,
    /// Content before an edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_content: Option<String>,
    /// Content after an edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_content: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

fn yes() -> bool {
    true
}

/// The task list after a task tracker command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTrackerObservation {
    /// Message or rendered list.
    #[serde(default)]
    pub content: Vec<Content>,
    /// Whether the command failed.
    #[serde(default)]
    pub is_error: bool,
    /// `view` or `plan`.
    #[serde(default)]
    pub command: String,
    /// The current list.
    #[serde(default)]
    pub task_list: Vec<Task>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A result that is just content (`FinishObservation`, `ThinkObservation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextObservation {
    /// The text shown to the model.
    #[serde(default)]
    pub content: Vec<Content>,
    /// Whether it is an error.
    #[serde(default)]
    pub is_error: bool,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

tagged_union! {
    /// A tool's output, chosen by `kind`.
    pub enum Observation {
        /// `TerminalObservation`.
        Terminal(TerminalObservation) = "TerminalObservation",
        /// `FileEditorObservation`.
        FileEditor(FileEditorObservation) = "FileEditorObservation",
        /// `TaskTrackerObservation`.
        TaskTracker(TaskTrackerObservation) = "TaskTrackerObservation",
        /// `FinishObservation`.
        Finish(TextObservation) = "FinishObservation",
        /// `ThinkObservation`.
        Think(TextObservation) = "ThinkObservation",
    }
}
