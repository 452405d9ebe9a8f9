//! The `terminal` tool: one persistent bash per conversation on a PTY. The
//! working directory and environment persist between calls; every prompt
//! prints a marker with the last exit code and the directory, which is how a
//! command's end is recognised.
//!
//! A command ends when its marker arrives, when its `timeout` passes (hard
//! timeout), or, without `timeout`, when it printed nothing new for the
//! no-output timeout (30 s by default). In the last two cases the command keeps
//! running: the next call may send input to it (`is_input`, including keys such
//! as `C-c`), ask for more output (empty command), or the agent starts a new
//! shell with `reset`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::pty::PtyShell;
use crate::util::process::ProcessGroups;
use crate::wire::{CmdOutputMetadata, Content, TerminalAction, TerminalObservation, TextContent};
use crate::Result;

/// The prompt: a marker line with the exit code and working directory.
pub const PS1: &str = "\n###OHS-PROMPT:$?:$PWD:OHS###\n";
const MARK_START: &[u8] = b"###OHS-PROMPT:";
const MARK_END: &[u8] = b":OHS###";
/// Longest output shown to the model, in characters (the reference's limit).
pub const MAX_OUTPUT_CHARS: usize = 30_000;
/// Default no-output timeout.
pub const NO_CHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// A finished prompt marker found in the output.
struct Marker {
    start: usize,
    end: usize,
    exit_code: i64,
    cwd: String,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn find_marker(bytes: &[u8], from: usize) -> Option<Marker> {
    let start = find(bytes, MARK_START, from)?;
    let body_start = start + MARK_START.len();
    let body_end = find(bytes, MARK_END, body_start)?;
    let body = String::from_utf8_lossy(&bytes[body_start..body_end]);
    let (code, cwd) = body.split_once(':')?;
    let mut end = body_end + MARK_END.len();
    if bytes.get(end) == Some(&b'\n') {
        end += 1;
    }
    // The prompt begins with a newline of its own.
    let start = if start > 0 && bytes[start - 1] == b'\n' {
        start - 1
    } else {
        start
    };
    Some(Marker {
        start,
        end,
        exit_code: code.trim().parse().unwrap_or(-1),
        cwd: cwd.to_string(),
    })
}

/// Settings of a terminal.
#[derive(Debug, Clone)]
pub struct TerminalConfig {
    /// Where the shell starts.
    pub working_dir: PathBuf,
    /// Give up waiting after this long without new output (no `timeout` given).
    pub no_change_timeout: Duration,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

/// The persistent shell of one conversation.
pub struct Terminal {
    config: TerminalConfig,
    shell: Option<PtyShell>,
    groups: std::sync::Arc<ProcessGroups>,
    running: Option<String>,
    cwd: String,
}

impl Terminal {
    /// A terminal that starts its shell on first use; its process group is
    /// recorded in `groups`.
    pub fn new(config: TerminalConfig, groups: std::sync::Arc<ProcessGroups>) -> Self {
        let cwd = config.working_dir.to_string_lossy().into_owned();
        Terminal {
            config,
            shell: None,
            groups,
            running: None,
            cwd,
        }
    }

    fn shell(&mut self) -> Result<&mut PtyShell> {
        if self.shell.is_none() {
            std::fs::create_dir_all(&self.config.working_dir).ok();
            let shell = PtyShell::spawn(&self.config.working_dir, &self.config.env)?;
            self.groups.register(shell.pid());
            // The first prompt says the shell is ready.
            let ready = shell.wait(Instant::now() + Duration::from_secs(10), None, |s| {
                find_marker(&s.bytes, 0).map(|m| {
                    s.bytes.drain(..m.end);
                })
            });
            if ready.is_none() {
                log::warn!("terminal: no prompt from the new shell within 10 s");
            }
            self.shell = Some(shell);
        }
        match self.shell.as_mut() {
            Some(s) => Ok(s),
            None => Err(crate::Error::Process("the terminal could not start".into())),
        }
    }

    /// Kills the shell and everything it started.
    pub fn close(&mut self) {
        if let Some(mut shell) = self.shell.take() {
            self.groups.unregister(shell.pid());
            shell.kill();
        }
        self.running = None;
    }

    /// The shell's current directory, as last reported.
    pub fn cwd(&self) -> &str {
        &self.cwd
    }

    /// Runs one action and describes what happened.
    pub fn execute(&mut self, action: &TerminalAction) -> Result<TerminalObservation> {
        let mut notes = Vec::new();
        if action.reset {
            self.close();
            let cwd = self.config.working_dir.to_string_lossy().into_owned();
            self.cwd = cwd;
            notes.push(
                "The terminal was reset: a new shell started and earlier variables and state are gone."
                    .to_string(),
            );
            if action.command.trim().is_empty() {
                return Ok(self.observation(
                    "[RESET]",
                    notes.join(""),
                    Some(0),
                    false,
                    String::new(),
                    String::new(),
                ));
            }
        }
        let command = action.command.as_str();
        if action.is_input {
            if self.running.is_none() {
                return Ok(error_observation(
                    command,
                    "There is no running command to send input to.",
                ));
            }
            let keys = key_bytes(command);
            self.shell()?.write(&keys)?;
        } else if command.trim().is_empty() {
            if self.running.is_none() {
                return Ok(error_observation(
                    command,
                    "There is no running command to read more output from.",
                ));
            }
        } else if let Some(previous) = &self.running {
            let text = format!(
                "The command `{command}` was NOT run: `{previous}` is still running. Send input with is_input=true \
                 (for example C-c to interrupt it), send an empty command to read more output, or reset the terminal."
            );
            return Ok(error_observation(command, &text));
        } else {
            let mut line = command.trim_end_matches('\n').to_string();
            line.push('\n');
            self.shell()?.write(line.as_bytes())?;
            self.running = Some(command.to_string());
        }
        let observation = self.wait_for(command, action.timeout)?;
        Ok(if notes.is_empty() {
            observation
        } else {
            prepend(observation, &notes.join("\n"))
        })
    }

    fn wait_for(&mut self, command: &str, timeout: Option<f64>) -> Result<TerminalObservation> {
        let hard = timeout
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(Duration::from_secs_f64);
        let deadline = Instant::now() + hard.unwrap_or(Duration::from_secs(24 * 3600));
        let quiet = if hard.is_some() {
            None
        } else {
            Some(self.config.no_change_timeout)
        };
        let shell = self.shell()?;
        // Take everything up to the last marker seen (a multi-line input prints
        // one prompt per line), after a short settle for more prompts.
        let outcome = shell.wait(deadline, quiet, |s| {
            let first = find_marker(&s.bytes, 0)?;
            let mut last = first;
            while let Some(next) = find_marker(&s.bytes, last.end) {
                last = next;
            }
            Some(last.end)
        });
        if outcome.is_some() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let finished = shell.with_screen(|s| {
            let mut markers = Vec::new();
            let mut from = 0;
            while let Some(m) = find_marker(&s.bytes, from) {
                from = m.end;
                markers.push(m);
            }
            let closed = s.closed;
            match markers.last() {
                Some(last) => {
                    let mut text = Vec::new();
                    let mut pos = 0;
                    for m in &markers {
                        text.extend_from_slice(&s.bytes[pos..m.start]);
                        pos = m.end;
                    }
                    let (code, cwd) = (last.exit_code, last.cwd.clone());
                    let end = last.end;
                    s.bytes.drain(..end);
                    (Some((code, cwd)), text, closed)
                }
                None => (None, std::mem::take(&mut s.bytes), closed),
            }
        });
        let Some((done, raw, closed)) = finished else {
            return Ok(error_observation(command, "The terminal is not readable."));
        };
        let output = clean(&raw);
        match done {
            Some((code, cwd)) => {
                self.running = None;
                self.cwd = cwd;
                let suffix = format!("\n[The command completed with exit code {code}.]");
                Ok(self.observation(command, output, Some(code), false, String::new(), suffix))
            }
            None if closed => {
                self.close();
                let suffix = "\n[The shell exited; the next command starts a new one.]".to_string();
                Ok(self.observation(command, output, Some(-1), false, String::new(), suffix))
            }
            None => {
                let how = match hard {
                    Some(t) => format!("timed out after {} seconds", t.as_secs_f64()),
                    None => format!(
                        "has printed nothing new for {} seconds",
                        self.config.no_change_timeout.as_secs()
                    ),
                };
                let suffix = format!(
                    "\n[The command {how} and is still running. Send an empty command to read more output, \
                     send keys with is_input=true (C-c to interrupt, C-d for end of input) or text to answer a prompt, \
                     or set a longer timeout next time.]"
                );
                Ok(self.observation(command, output, None, hard.is_some(), String::new(), suffix))
            }
        }
    }

    fn observation(
        &self,
        command: &str,
        output: String,
        exit_code: Option<i64>,
        timed_out: bool,
        prefix: String,
        suffix: String,
    ) -> TerminalObservation {
        TerminalObservation {
            content: vec![Content::Text(TextContent::new(truncate_middle(
                &output,
                MAX_OUTPUT_CHARS,
            )))],
            is_error: false,
            command: Some(command.to_string()),
            exit_code: Some(exit_code.unwrap_or(-1)),
            timeout: timed_out,
            metadata: CmdOutputMetadata {
                exit_code: exit_code.unwrap_or(-1),
                pid: self.shell.as_ref().map_or(-1, |s| i64::from(s.pid())),
                username: std::env::var("USER").ok(),
                hostname: None,
                working_dir: Some(self.cwd.clone()),
                py_interpreter_path: None,
                prefix,
                suffix,
            },
            full_output_save_dir: None,
            extra: Default::default(),
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.close();
    }
}

fn prepend(mut obs: TerminalObservation, note: &str) -> TerminalObservation {
    obs.metadata.prefix = format!("{note}\n\n{}", obs.metadata.prefix);
    obs
}

fn error_observation(command: &str, text: &str) -> TerminalObservation {
    TerminalObservation {
        content: vec![Content::Text(TextContent::new(text))],
        is_error: true,
        command: Some(command.to_string()),
        exit_code: Some(-1),
        timeout: false,
        metadata: CmdOutputMetadata {
            exit_code: -1,
            pid: -1,
            username: None,
            hostname: None,
            working_dir: None,
            py_interpreter_path: None,
            prefix: String::new(),
            suffix: String::new(),
        },
        full_output_save_dir: None,
        extra: Default::default(),
    }
}

/// Terminal text: carriage returns dropped, surrounding blank lines trimmed.
fn clean(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw)
        .replace("\r\n", "\n")
        .replace('\r', "");
    text.trim_matches('\n').to_string()
}

/// Keeps the head and tail of `text` within `max` characters, with a note
/// in between.
pub fn truncate_middle(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let note = "\n<response clipped><NOTE>The output was too long; only its beginning and end are shown.</NOTE>\n";
    let keep = max.saturating_sub(note.len());
    let head: String = text.chars().take(keep.div_ceil(2)).collect();
    let tail: String = text.chars().skip(count - keep / 2).collect();
    format!("{head}{note}{tail}")
}

/// What to write for an `is_input` value: control keys by name, else the text
/// followed by Enter.
fn key_bytes(input: &str) -> Vec<u8> {
    let named: Option<&[u8]> = match input {
        "C-c" => Some(b"\x03"),
        "C-d" => Some(b"\x04"),
        "C-z" => Some(b"\x1a"),
        "ENTER" => Some(b"\n"),
        "TAB" => Some(b"\t"),
        "ESC" => Some(b"\x1b"),
        "BS" => Some(b"\x7f"),
        "UP" => Some(b"\x1b[A"),
        "DOWN" => Some(b"\x1b[B"),
        "RIGHT" => Some(b"\x1b[C"),
        "LEFT" => Some(b"\x1b[D"),
        "HOME" => Some(b"\x1b[H"),
        "END" => Some(b"\x1b[F"),
        "PGUP" => Some(b"\x1b[5~"),
        "PGDN" => Some(b"\x1b[6~"),
        _ => None,
    };
    if let Some(b) = named {
        return b.to_vec();
    }
    let bytes = input.as_bytes();
    if bytes.len() == 3 && bytes.starts_with(b"C-") && bytes[2].is_ascii_alphabetic() {
        return vec![bytes[2].to_ascii_lowercase() - b'a' + 1];
    }
    let mut v = input.as_bytes().to_vec();
    v.push(b'\n');
    v
}

/// The text the model sees for a terminal observation.
pub fn llm_text(obs: &TerminalObservation) -> String {
    let output: String = obs.content.iter().filter_map(Content::as_text).collect();
    let mut text = String::new();
    if obs.is_error {
        text.push_str("[An error occurred during execution.]\n");
    }
    text.push_str(&obs.metadata.prefix);
    text.push_str(&output);
    text.push_str(&obs.metadata.suffix);
    if let Some(wd) = &obs.metadata.working_dir {
        text.push_str(&format!("\n[Current working directory: {wd}]"));
    }
    truncate_middle(&text, MAX_OUTPUT_CHARS)
}

/// Where a terminal for `dir` would start (absolute).
pub fn absolute_dir(dir: &Path) -> PathBuf {
    if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(dir))
            .unwrap_or_else(|_| dir.to_path_buf())
    }
}
