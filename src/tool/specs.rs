//! The tools as the model sees them: our own descriptions, the reference's
//! names and parameter schemas (every tool gets an optional `summary`, and
//! tools that change things an optional `security_risk`, listed first).

use serde_json::{json, Map, Value};

use crate::llm::ToolSpec;

const TERMINAL: &str = "Run a bash command in a persistent shell that keeps its working directory and environment between calls.

* One command per call; chain steps with `&&` or `;`.
* A command that prints nothing new for 30 seconds returns with exit code -1 while it keeps running. Then send an empty `command` to read more output, set `is_input` to true to type into it (text, or keys such as `C-c`, `C-d`, `C-z`, `ENTER`, `TAB`, `UP`), or interrupt it with `C-c`.
* Give `timeout` (seconds) for commands known to take long, such as installs, builds and tests.
* Start servers and other endless programs in the background with output to a file: `python3 app.py > app.log 2>&1 &`.
* Do not use `set -e`: a failing command would end the shell.
* Prefer absolute paths, and check that a directory exists before writing into it.";

const FILE_EDITOR: &str = "View, create and edit plain-text files.

* `view` shows a file with line numbers (like `cat -n`), or lists a directory two levels deep.
* `create` writes a new file; it refuses to overwrite an existing one.
* `str_replace` replaces `old_str` with `new_str`; `old_str` must match the file exactly once, whitespace included, so include enough context to make it unique.
* `insert` adds `new_str` after line `insert_line` (0 inserts at the top).
* `undo_edit` reverts the last change to the file.
* Paths must be absolute. Long output is cut; use `view_range` or `grep -n` in the terminal for big files.";

const TASK_TRACKER: &str = "Keep a task list for multi-step work. `view` shows it; `plan` replaces it with `task_list` (each task has a `title`, optional `notes` and a `status` of todo, in_progress or done). Keep exactly one task in progress while working, and mark tasks done as soon as they are.";

const FINISH: &str = "End your turn: call this when the task is complete, or when you cannot go on without the user. `message` tells the user what was done and anything they must know.";

const THINK: &str = "Write down a thought: reason through a problem, weigh options or plan, without changing anything. Use it when a step needs thinking before acting.";

fn risk_and_summary(read_only: bool, properties: Value) -> Value {
    let mut props = Map::new();
    if !read_only {
        props.insert(
            "security_risk".into(),
            json!({"type": "string",
                   "description": "How risky this action is: LOW for reading, MEDIUM for changes that can be undone, HIGH for destructive or irreversible actions or ones touching secrets.",
                   "enum": ["UNKNOWN", "LOW", "MEDIUM", "HIGH"]}),
        );
    }
    props.insert(
        "summary".into(),
        json!({"type": "string", "description": "About ten words saying what this action does."}),
    );
    if let Value::Object(rest) = properties {
        props.extend(rest);
    }
    Value::Object(props)
}

fn spec(
    name: &str,
    description: &str,
    read_only: bool,
    properties: Value,
    required: &[&str],
) -> ToolSpec {
    let mut parameters = json!({
        "type": "object",
        "properties": risk_and_summary(read_only, properties),
    });
    if !required.is_empty() {
        parameters["required"] = json!(required);
    }
    ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters,
    }
}

/// The five default tools, in the reference's order (built once, shared).
pub fn default_specs() -> std::sync::Arc<Vec<ToolSpec>> {
    static SPECS: std::sync::OnceLock<std::sync::Arc<Vec<ToolSpec>>> = std::sync::OnceLock::new();
    std::sync::Arc::clone(SPECS.get_or_init(|| std::sync::Arc::new(build_specs())))
}

fn build_specs() -> Vec<ToolSpec> {
    vec![
        spec(
            "terminal",
            TERMINAL,
            false,
            json!({
                "command": {"type": "string", "description": "The command to run. Empty to read more output of a running command; with `is_input`, text or a key name (C-c, C-d, C-z, C-<letter>, UP, DOWN, LEFT, RIGHT, HOME, END, PGUP, PGDN, TAB, ESC, BS, ENTER)."},
                "is_input": {"type": "boolean", "description": "Send `command` to the running process instead of running it. Default false."},
                "timeout": {"type": "number", "description": "Optional hard limit in seconds. Without it the call returns after 30 seconds without new output."},
                "reset": {"type": "boolean", "description": "Start a fresh shell (environment and state are lost). Only when the terminal is stuck; not together with is_input."}
            }),
            &["command"],
        ),
        spec(
            "file_editor",
            FILE_EDITOR,
            false,
            json!({
                "command": {"type": "string", "description": "One of `view`, `create`, `str_replace`, `insert`, `undo_edit`.",
                            "enum": ["view", "create", "str_replace", "insert", "undo_edit"]},
                "path": {"type": "string", "description": "Absolute path to file or directory."},
                "file_text": {"type": "string", "description": "Content of the new file (`create`)."},
                "old_str": {"type": "string", "description": "Exact text to replace (`str_replace`)."},
                "new_str": {"type": "string", "description": "Replacement text (`str_replace`, may be empty) or text to add (`insert`)."},
                "insert_line": {"type": "integer", "description": "Line after which `new_str` is inserted (`insert`); 0 for the top."},
                "view_range": {"type": "array", "items": {"type": "integer"}, "description": "Lines to show, [start, end], 1-based; end -1 means to the end of the file (`view` of a file)."}
            }),
            &["command", "path"],
        ),
        spec(
            "task_tracker",
            TASK_TRACKER,
            false,
            json!({
                "command": {"type": "string", "description": "`view` to show the list, `plan` to replace it.", "enum": ["view", "plan"]},
                "task_list": {"type": "array", "description": "The whole new list (`plan`).",
                    "items": {"type": "object", "properties": {
                        "title": {"type": "string", "description": "Short title."},
                        "notes": {"type": "string", "description": "Details."},
                        "status": {"type": "string", "description": "todo, in_progress or done.", "enum": ["todo", "in_progress", "done"]}
                    }, "required": ["title"]}}
            }),
            &[],
        ),
        spec(
            "finish",
            FINISH,
            true,
            json!({"message": {"type": "string", "description": "Final message to the user."}}),
            &["message"],
        ),
        spec(
            "think",
            THINK,
            true,
            json!({"thought": {"type": "string", "description": "The thought."}}),
            &["thought"],
        ),
    ]
}

/// Whether a tool only reads (no `security_risk`, never needs confirmation).
pub fn is_read_only(name: &str) -> bool {
    matches!(name, "finish" | "think")
}

/// A tool as the `tools` list of a `SystemPromptEvent` carries it.
pub fn definition_json(spec: &ToolSpec) -> Value {
    let (kind, action, observation) = match spec.name.as_str() {
        "terminal" => ("TerminalTool", "TerminalAction", "TerminalObservation"),
        "file_editor" => (
            "FileEditorTool",
            "FileEditorAction",
            "FileEditorObservation",
        ),
        "task_tracker" => (
            "TaskTrackerTool",
            "TaskTrackerAction",
            "TaskTrackerObservation",
        ),
        "finish" => ("FinishTool", "FinishAction", "FinishObservation"),
        "think" => ("ThinkTool", "ThinkAction", "ThinkObservation"),
        _ => ("Tool", "Action", "Observation"),
    };
    let read_only = is_read_only(&spec.name);
    json!({
        "description": spec.description,
        "action_type": action,
        "observation_type": observation,
        "annotations": {
            "title": spec.name,
            "readOnlyHint": read_only,
            "destructiveHint": !read_only,
            "idempotentHint": read_only,
            "openWorldHint": spec.name == "terminal",
        },
        "kind": kind,
        "title": spec.name,
    })
}
