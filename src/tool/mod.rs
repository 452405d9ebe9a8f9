//! The default tools: `terminal`, `file_editor`, `task_tracker`, `finish`,
//! `think`, with the reference's names, parameter schemas and action and
//! observation kinds.
//!
//! Failures come in two kinds: mistakes the model can fix show up as error
//! observations (`is_error: true`); calls that cannot even be run (unknown
//! tool, arguments that do not fit the schema) are returned as `Err(text)` and
//! become `AgentErrorEvent`s. Tools never panic.

pub mod file_editor;
mod pty;
pub mod specs;
pub mod terminal;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

pub use specs::{default_specs, definition_json, is_read_only};

use crate::util::process::ProcessGroups;
use crate::wire::{
    Action, Content, Observation, Task, TaskTrackerObservation, TextContent, TextObservation,
};
use file_editor::FileEditor;
use terminal::{Terminal, TerminalConfig};

/// Where the tools of one conversation work.
#[derive(Debug, Clone)]
pub struct ToolboxConfig {
    /// The agent's working directory (the terminal starts there).
    pub working_dir: PathBuf,
    /// Where the task list is saved (`TASKS.json`), if anywhere.
    pub state_dir: Option<PathBuf>,
    /// The terminal's no-output timeout.
    pub no_change_timeout: Duration,
}

/// The tools of one conversation and their state.
pub struct Toolbox {
    terminal: Terminal,
    editor: FileEditor,
    tasks: Vec<Task>,
    tasks_file: Option<PathBuf>,
}

impl Toolbox {
    /// Tools working in `config.working_dir`; shells are recorded in `groups`.
    pub fn new(config: ToolboxConfig, groups: Arc<ProcessGroups>) -> Self {
        let working_dir = terminal::absolute_dir(&config.working_dir);
        let tasks_file = config.state_dir.map(|d| d.join("TASKS.json"));
        let tasks = tasks_file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Toolbox {
            terminal: Terminal::new(
                TerminalConfig {
                    working_dir,
                    no_change_timeout: config.no_change_timeout,
                    env: Vec::new(),
                },
                groups,
            ),
            editor: FileEditor::new(),
            tasks,
            tasks_file,
        }
    }

    /// Stops the shell and everything it started.
    pub fn close(&mut self) {
        self.terminal.close();
    }

    /// Runs an action. `Err` is a failure to report as an agent error.
    pub fn execute(&mut self, action: &Action) -> Result<Observation, String> {
        match action {
            Action::Terminal(a) => self
                .terminal
                .execute(a)
                .map(Observation::Terminal)
                .map_err(|e| format!("Error executing tool 'terminal': {e}")),
            Action::FileEditor(a) => Ok(Observation::FileEditor(self.editor.execute(a))),
            Action::TaskTracker(a) => Ok(Observation::TaskTracker(
                self.track(&a.command, &a.task_list),
            )),
            Action::Finish(a) => Ok(Observation::Finish(text_observation(&a.message))),
            Action::Think(_) => Ok(Observation::Think(text_observation(
                "Your thought has been logged.",
            ))),
            Action::Unknown(m) => Err(format!(
                "Tool for action kind '{}' is not available.",
                m.get("kind").and_then(Value::as_str).unwrap_or("?")
            )),
        }
    }

    fn track(&mut self, command: &str, list: &[Task]) -> TaskTrackerObservation {
        let text = if command == "plan" {
            self.tasks = list.to_vec();
            if let Some(f) = &self.tasks_file {
                if let Ok(data) = serde_json::to_vec_pretty(&self.tasks) {
                    let _ = std::fs::create_dir_all(f.parent().unwrap_or(f));
                    let _ = crate::util::fs::write_atomic(f, &data, false);
                }
            }
            format!(
                "Task list has been updated with {} item(s).",
                self.tasks.len()
            )
        } else if self.tasks.is_empty() {
            "The task list is empty. Use the \"plan\" command to create one.".to_string()
        } else {
            let mut s = String::from("# Task List\n");
            for (i, t) in self.tasks.iter().enumerate() {
                let icon = match t.status.as_str() {
                    "done" => "✅",
                    "in_progress" => "🔄",
                    _ => "⏳",
                };
                s.push_str(&format!("\n{}. {icon} {}", i + 1, t.title));
                if !t.notes.is_empty() {
                    s.push_str(&format!("\n   {}", t.notes));
                }
            }
            s
        };
        TaskTrackerObservation {
            content: vec![Content::Text(TextContent::new(text))],
            is_error: false,
            command: command.to_string(),
            task_list: self.tasks.clone(),
            extra: Default::default(),
        }
    }
}

fn text_observation(text: &str) -> TextObservation {
    TextObservation {
        content: vec![Content::Text(TextContent::new(text))],
        is_error: false,
        extra: Default::default(),
    }
}

/// Builds the action for a call of tool `name` with (already cleaned)
/// arguments; `Err` says why the arguments do not fit.
pub fn parse_action(name: &str, mut args: Map<String, Value>) -> Result<Action, String> {
    let kind = match name {
        "terminal" => "TerminalAction",
        "file_editor" => {
            if !args.contains_key("command") {
                let inferred = if args.contains_key("old_str") {
                    "str_replace"
                } else if args.contains_key("insert_line") {
                    "insert"
                } else if args.contains_key("file_text") {
                    "create"
                } else if args.contains_key("path") {
                    "view"
                } else {
                    return Err("Error validating tool 'file_editor': `command` is missing and cannot be inferred.".into());
                };
                args.insert("command".into(), Value::String(inferred.into()));
            }
            "FileEditorAction"
        }
        "task_tracker" => "TaskTrackerAction",
        "finish" => "FinishAction",
        "think" => "ThinkAction",
        other => {
            let names: Vec<String> = default_specs().iter().map(|s| s.name.clone()).collect();
            return Err(format!("Tool '{other}' not found. Available: {names:?}"));
        }
    };
    let keys: Vec<String> = args.keys().cloned().collect();
    args.insert("kind".into(), Value::String(kind.into()));
    serde_json::from_value(Value::Object(args))
        .map_err(|e| format!("Error validating tool '{name}': {e}. Parameters provided: {keys:?}"))
}

/// The text the model sees for an observation.
pub fn observation_text(obs: &Observation) -> String {
    let joined = |content: &[Content], is_error: bool| {
        let mut s = String::new();
        if is_error {
            s.push_str("[An error occurred during execution.]\n");
        }
        s.push_str(
            &content
                .iter()
                .filter_map(Content::as_text)
                .collect::<Vec<_>>()
                .join("\n"),
        );
        s
    };
    match obs {
        Observation::Terminal(t) => terminal::llm_text(t),
        Observation::FileEditor(f) => joined(&f.content, f.is_error),
        Observation::TaskTracker(t) => joined(&t.content, t.is_error),
        Observation::Finish(t) | Observation::Think(t) => joined(&t.content, t.is_error),
        Observation::Unknown(m) => Value::Object(m.clone()).to_string(),
    }
}
