//! The `file_editor` tool: `view` (numbered lines, or a two-level directory
//! listing), `create`, `str_replace` (the old text must occur exactly once),
//! `insert` and `undo_edit`. Paths must be absolute. Mistakes come back as
//! error observations the model can act on; writes are atomic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::wire::{Content, FileEditorAction, FileEditorObservation, TextContent};

/// Longest view shown to the model, in characters (the reference's limit).
pub const MAX_VIEW_CHARS: usize = 16_000;
/// Largest file the editor opens.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
const SNIPPET_LINES: usize = 4;

/// The editor, with its per-file undo history.
#[derive(Debug, Default)]
pub struct FileEditor {
    history: HashMap<PathBuf, Vec<String>>,
}

struct Failure(String);

type Outcome = Result<FileEditorObservation, Failure>;

impl FileEditor {
    /// A new editor with empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs one command.
    pub fn execute(&mut self, action: &FileEditorAction) -> FileEditorObservation {
        let path = PathBuf::from(&action.path);
        match self.run(action, &path) {
            Ok(obs) => obs,
            Err(Failure(text)) => FileEditorObservation {
                content: vec![Content::Text(TextContent::new(text))],
                is_error: true,
                command: Some(action.command.clone()),
                path: Some(action.path.clone()),
                prev_exist: path.exists(),
                old_content: None,
                new_content: None,
                extra: Default::default(),
            },
        }
    }

    fn run(&mut self, a: &FileEditorAction, path: &Path) -> Outcome {
        if !path.is_absolute() {
            return Err(Failure(format!(
                "The path `{}` is not absolute. Give the full path, starting with /.",
                a.path
            )));
        }
        let exists = path.exists();
        if a.command != "create" && !exists {
            return Err(Failure(format!(
                "The path {} does not exist. Check the path and try again.",
                a.path
            )));
        }
        if path.is_dir() && a.command != "view" {
            return Err(Failure(format!(
                "{} is a directory; only `view` works on directories.",
                a.path
            )));
        }
        match a.command.as_str() {
            "view" => self.view(a, path),
            "create" => self.create(a, path, exists),
            "str_replace" => self.str_replace(a, path),
            "insert" => self.insert(a, path),
            "undo_edit" => self.undo(a, path),
            other => Err(Failure(format!(
                "Unknown command `{other}`. Use one of: view, create, str_replace, insert, undo_edit."
            ))),
        }
    }

    fn view(&self, a: &FileEditorAction, path: &Path) -> Outcome {
        if path.is_dir() {
            if a.view_range.is_some() {
                return Err(Failure(
                    "`view_range` only applies to files, not directories.".into(),
                ));
            }
            let mut lines = Vec::new();
            list_dir(path, 0, &mut lines);
            let hidden = std::fs::read_dir(path)
                .map(|r| {
                    r.flatten()
                        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
                        .count()
                })
                .unwrap_or(0);
            let mut text = format!(
                "Files and directories up to 2 levels deep in {}, hidden ones left out:\n{}\n",
                path.display(),
                lines.join("\n")
            );
            if hidden > 0 {
                text.push_str(&format!(
                    "\n{hidden} hidden entries are not shown; use `ls -la {}` to see them.\n",
                    path.display()
                ));
            }
            return Ok(ok(a, truncate(&text, true), true, None, None));
        }
        let content = read_text(path)?;
        let lines: Vec<&str> = content.split('\n').collect();
        let n = if content.ends_with('\n') {
            lines.len() - 1
        } else {
            lines.len()
        };
        let (start, end) = match a.view_range.as_deref() {
            None => (1, n),
            Some([s, e]) => {
                let (s, e) = (*s, *e);
                if s < 1 || s as usize > n.max(1) {
                    return Err(Failure(format!("Invalid `view_range` start {s}: the file has {n} lines, start must be between 1 and {n}.")));
                }
                let e = if e == -1 { n as i64 } else { e };
                if e < s || e as usize > n {
                    return Err(Failure(format!("Invalid `view_range` end {e}: it must be between {s} and {n}, or -1 for the end of the file.")));
                }
                (s as usize, e as usize)
            }
            Some(_) => {
                return Err(Failure(
                    "`view_range` must be two integers: [start, end].".into(),
                ))
            }
        };
        let body = numbered(&lines[start.saturating_sub(1)..end.min(lines.len())], start);
        let text = format!(
            "Here's the result of running `cat -n` on {}:\n{body}\n",
            path.display()
        );
        Ok(ok(a, truncate(&text, false), true, None, None))
    }

    fn create(&mut self, a: &FileEditorAction, path: &Path, exists: bool) -> Outcome {
        if exists {
            return Err(Failure(format!(
                "A file already exists at {}; `create` never overwrites. Use `str_replace` or `insert` to change it.",
                a.path
            )));
        }
        let text = a.file_text.as_deref().ok_or_else(|| {
            Failure("Parameter `file_text` is required for command: create.".into())
        })?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure(format!("Cannot create {}: {e}", parent.display())))?;
        }
        write(path, text)?;
        self.history.entry(path.to_path_buf()).or_default();
        let mut obs = ok(
            a,
            format!("File created successfully at: {}", a.path),
            false,
            None,
            Some(text.to_string()),
        );
        obs.prev_exist = false;
        Ok(obs)
    }

    fn str_replace(&mut self, a: &FileEditorAction, path: &Path) -> Outcome {
        let old = a.old_str.as_deref().ok_or_else(|| {
            Failure("Parameter `old_str` is required for command: str_replace.".into())
        })?;
        let new = a.new_str.as_deref().unwrap_or("");
        if old == new {
            return Err(Failure(
                "`new_str` equals `old_str`: nothing would change.".into(),
            ));
        }
        let content = read_text(path)?;
        if old.is_empty() {
            return Err(Failure(
                "`old_str` is empty; give the exact text to replace.".into(),
            ));
        }
        let starts: Vec<usize> = content.match_indices(old).map(|(i, _)| i).collect();
        match starts.len() {
            0 => Err(Failure(format!(
                "No replacement was made: `{old}` does not occur verbatim in {}. Check whitespace and indentation.",
                a.path
            ))),
            1 => {
                let updated = content.replacen(old, new, 1);
                write(path, &updated)?;
                self.history.entry(path.to_path_buf()).or_default().push(content.clone());
                let line = content[..starts[0]].matches('\n').count() + 1;
                let snippet = snippet(&updated, line, new.matches('\n').count());
                let text = format!(
                    "The file {} has been edited. Here's the result of running `cat -n` on a snippet of {}:\n{snippet}\nReview the changes and make sure they are as expected. Edit the file again if necessary.",
                    a.path, a.path
                );
                Ok(ok(a, text, true, Some(content), Some(updated)))
            }
            _ => {
                let lines: Vec<String> = starts
                    .iter()
                    .map(|&i| (content[..i].matches('\n').count() + 1).to_string())
                    .collect();
                Err(Failure(format!(
                    "No replacement was made: `{old}` occurs {} times, on lines {}. Include more surrounding text so it is unique.",
                    starts.len(),
                    lines.join(", ")
                )))
            }
        }
    }

    fn insert(&mut self, a: &FileEditorAction, path: &Path) -> Outcome {
        let at = a.insert_line.ok_or_else(|| {
            Failure("Parameter `insert_line` is required for command: insert.".into())
        })?;
        let new = a.new_str.as_deref().ok_or_else(|| {
            Failure("Parameter `new_str` is required for command: insert.".into())
        })?;
        let content = read_text(path)?;
        let mut lines: Vec<&str> = content.split('\n').collect();
        let trailing = content.ends_with('\n');
        if trailing {
            lines.pop();
        }
        if at < 0 || at as usize > lines.len() {
            return Err(Failure(format!(
                "Invalid `insert_line` {at}: it must be between 0 and {} (the number of lines).",
                lines.len()
            )));
        }
        let at = at as usize;
        let new_lines: Vec<&str> = new.split('\n').collect();
        let mut out: Vec<&str> = lines[..at].to_vec();
        out.extend(&new_lines);
        out.extend(&lines[at..]);
        let mut updated = out.join("\n");
        if trailing || content.is_empty() {
            updated.push('\n');
        }
        write(path, &updated)?;
        self.history
            .entry(path.to_path_buf())
            .or_default()
            .push(content.clone());
        let snippet = snippet(&updated, at + 1, new_lines.len().saturating_sub(1));
        let text = format!(
            "The file {} has been edited. Here's the result of running `cat -n` on a snippet of the edited file:\n{snippet}\nReview the changes and make sure they are as expected (correct indentation, no duplicate lines). Edit the file again if necessary.",
            a.path
        );
        Ok(ok(a, text, true, Some(content), Some(updated)))
    }

    fn undo(&mut self, a: &FileEditorAction, path: &Path) -> Outcome {
        let previous = self
            .history
            .get_mut(path)
            .and_then(Vec::pop)
            .ok_or_else(|| Failure(format!("There is no edit to undo for {}.", a.path)))?;
        let current = read_text(path)?;
        write(path, &previous)?;
        let text = format!(
            "Last edit to {} undone successfully. Here's the result of running `cat -n` on {}:\n{}\n",
            a.path,
            a.path,
            numbered(&previous.split('\n').collect::<Vec<_>>(), 1)
        );
        Ok(ok(
            a,
            truncate(&text, false),
            true,
            Some(current),
            Some(previous),
        ))
    }
}

fn ok(
    a: &FileEditorAction,
    text: String,
    prev_exist: bool,
    old: Option<String>,
    new: Option<String>,
) -> FileEditorObservation {
    FileEditorObservation {
        content: vec![Content::Text(TextContent::new(text))],
        is_error: false,
        command: Some(a.command.clone()),
        path: Some(a.path.clone()),
        prev_exist,
        old_content: old,
        new_content: new,
        extra: Default::default(),
    }
}

fn read_text(path: &Path) -> Result<String, Failure> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure(format!("Cannot read {}: {e}", path.display())))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(Failure(format!(
            "{} is {} bytes, more than the editor's limit of {MAX_FILE_BYTES}. Use the terminal (head, sed -n, grep -n) instead.",
            path.display(),
            meta.len()
        )));
    }
    let bytes =
        std::fs::read(path).map_err(|e| Failure(format!("Cannot read {}: {e}", path.display())))?;
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return Err(Failure(format!(
            "{} looks like a binary file; the editor only handles text.",
            path.display()
        )));
    }
    String::from_utf8(bytes).map_err(|_| Failure(format!("{} is not UTF-8 text.", path.display())))
}

fn write(path: &Path, text: &str) -> Result<(), Failure> {
    crate::util::fs::write_atomic(path, text.as_bytes(), false)
        .map_err(|e| Failure(format!("Cannot write {}: {e}", path.display())))
}

fn numbered(lines: &[&str], first: usize) -> String {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{:6}\t{l}", i + first))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lines around an edit at `line` spanning `extra` more lines.
fn snippet(content: &str, line: usize, extra: usize) -> String {
    let lines: Vec<&str> = content.split('\n').collect();
    let start = line.saturating_sub(SNIPPET_LINES).max(1);
    let end = (line + extra + SNIPPET_LINES).min(lines.len());
    numbered(&lines[start - 1..end], start)
}

fn truncate(text: &str, directory: bool) -> String {
    if text.chars().count() <= MAX_VIEW_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(MAX_VIEW_CHARS).collect();
    let note = if directory {
        "<response clipped><NOTE>The listing is too long to show whole. View a subdirectory, or use `find` with a pattern in the terminal.</NOTE>"
    } else {
        "<response clipped><NOTE>The file is too long to show whole. Search it with `grep -n` in the terminal, then view the lines you need with `view_range`.</NOTE>"
    };
    format!("{head}\n{note}")
}

fn list_dir(dir: &Path, depth: usize, out: &mut Vec<String>) {
    if depth == 0 {
        out.push(format!("{}/", dir.display()));
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let is_dir = p.is_dir();
        out.push(format!("{}{}", p.display(), if is_dir { "/" } else { "" }));
        if is_dir && depth < 1 {
            list_dir(&p, depth + 1, out);
        }
    }
}
