//! One running command: spawn it, gather its output, enforce its timeout.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::{BashService, FLUSH_AFTER, MAX_CHUNK_CHARS};
use crate::util::process::{signal_group, terminate_group};
use crate::wire::{BashCommand, BashOutput};
use crate::{Error, Result};

/// How a caller reaches a running command.
#[derive(Clone)]
pub(super) struct Handle {
    pgid: i32,
    stop_tx: Sender<Signal>,
}

enum Signal {
    Stop,
}

impl Handle {
    /// Asks the runner to stop the command (SIGTERM, then SIGKILL).
    pub fn stop(&self) {
        let _ = self.stop_tx.try_send(Signal::Stop);
    }

    /// Kills the command's process group at once.
    pub fn kill(&self) {
        signal_group(self.pgid, libc::SIGKILL);
    }
}

enum Msg {
    Out(bool, Vec<u8>),
    Eof,
    Exit(i64),
}

/// Spawns `command` and a runner thread for it. `done` gets one message when
/// the final chunk is stored.
pub(super) fn spawn(
    command: BashCommand,
    service: Arc<BashService>,
    done: Sender<()>,
) -> Result<Handle> {
    // `sh -c`, as the reference's create_subprocess_shell.
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(&command.command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(dir) = &command.cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("starting `{}`", command.command), e))?;
    let pgid = child.id() as i32;
    let groups = Arc::clone(&service.groups);
    groups.register(pgid);
    let (tx, rx) = crossbeam_channel::unbounded();
    for (is_err, pipe) in [
        (
            false,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            true,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        let tx = tx.clone();
        let Some(mut pipe) = pipe else { continue };
        spawn_named("bash-pipe", move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(Msg::Out(is_err, buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = tx.send(Msg::Eof);
        })?;
    }
    spawn_named("bash-wait", move || {
        use std::os::unix::process::ExitStatusExt;
        let code = match child.wait() {
            Ok(status) => status
                .code()
                .map(i64::from)
                .or_else(|| status.signal().map(|s| 128 + i64::from(s)))
                .unwrap_or(-1),
            Err(_) => -1,
        };
        groups.unregister(pgid);
        let _ = tx.send(Msg::Exit(code));
    })?;
    let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
    spawn_named("bash-run", move || {
        Collector::new(command, service, pgid).run(rx, stop_rx);
        let _ = done.send(());
    })?;
    Ok(Handle { pgid, stop_tx })
}

fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map(|_| ())
        .map_err(|e| Error::io("spawning a thread", e))
}

/// Bytes that form whole UTF-8 characters, leaving an incomplete tail behind.
#[derive(Default)]
struct Utf8Buffer {
    text: String,
    tail: Vec<u8>,
}

impl Utf8Buffer {
    fn push(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        let mut start = 0;
        loop {
            match std::str::from_utf8(&self.tail[start..]) {
                Ok(s) => {
                    self.text.push_str(s);
                    self.tail.clear();
                    return;
                }
                Err(e) => {
                    let valid = start + e.valid_up_to();
                    self.text
                        .push_str(&String::from_utf8_lossy(&self.tail[start..valid]));
                    match e.error_len() {
                        Some(bad) => {
                            self.text.push(char::REPLACEMENT_CHARACTER);
                            start = valid + bad;
                        }
                        None => {
                            self.tail.drain(..valid);
                            return;
                        }
                    }
                }
            }
        }
    }

    fn finish(&mut self) {
        if !self.tail.is_empty() {
            self.text.push_str(&String::from_utf8_lossy(&self.tail));
            self.tail.clear();
        }
    }

    /// Takes at most `max` characters of complete text.
    fn take(&mut self, max: usize) -> Option<String> {
        if self.text.is_empty() {
            return None;
        }
        match self.text.char_indices().nth(max) {
            Some((cut, _)) => {
                let rest = self.text.split_off(cut);
                Some(std::mem::replace(&mut self.text, rest))
            }
            None => Some(std::mem::take(&mut self.text)),
        }
    }
}

struct Collector {
    command: BashCommand,
    service: Arc<BashService>,
    pgid: i32,
    order: u64,
    stdout: Utf8Buffer,
    stderr: Utf8Buffer,
}

impl Collector {
    fn new(command: BashCommand, service: Arc<BashService>, pgid: i32) -> Self {
        Collector {
            command,
            service,
            pgid,
            order: 0,
            stdout: Utf8Buffer::default(),
            stderr: Utf8Buffer::default(),
        }
    }

    fn run(mut self, rx: Receiver<Msg>, stop_rx: Receiver<Signal>) {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(self.command.timeout);
        let mut pending_since: Option<Instant> = None;
        let mut exit: Option<i64> = None;
        let mut open_pipes = 2;
        let mut forced = false;
        let mut timed_out = false;
        // After the shell exits, wait briefly for pipes still held open by
        // background children, then report.
        let mut drain_until: Option<Instant> = None;
        loop {
            if exit.is_some() && open_pipes == 0 {
                break;
            }
            let mut wake = if exit.is_some() {
                drain_until.unwrap_or(deadline)
            } else {
                deadline
            };
            if let Some(t) = pending_since {
                wake = wake.min(t + FLUSH_AFTER);
            }
            crossbeam_channel::select! {
                recv(rx) -> msg => match msg {
                    Ok(Msg::Out(is_err, bytes)) => {
                        if is_err { self.stderr.push(&bytes) } else { self.stdout.push(&bytes) }
                        pending_since.get_or_insert_with(Instant::now);
                        self.flush_full_chunks();
                    }
                    Ok(Msg::Eof) => open_pipes -= 1,
                    Ok(Msg::Exit(code)) => {
                        exit = Some(if forced { -1 } else { code });
                        drain_until = Some(Instant::now() + Duration::from_millis(50));
                    }
                    Err(_) => break,
                },
                recv(stop_rx) -> _ => {
                    if !forced {
                        forced = true;
                        self.kill_group();
                    }
                }
                default(wake.saturating_duration_since(Instant::now())) => {
                    let now = Instant::now();
                    if exit.is_some() && drain_until.is_some_and(|d| now >= d) {
                        break;
                    }
                    if exit.is_none() && now >= deadline && !forced {
                        forced = true;
                        timed_out = true;
                        log::warn!(
                            "command timed out after {} seconds (command_id={})",
                            self.command.timeout, self.command.id
                        );
                        self.kill_group();
                    }
                    if pending_since.is_some_and(|t| now >= t + FLUSH_AFTER) && exit.is_none() {
                        self.publish(None, MAX_CHUNK_CHARS);
                        pending_since = None;
                    }
                }
            }
        }
        self.stdout.finish();
        self.stderr.finish();
        if timed_out {
            // Say so in the output, so clients (the reference's included) can
            // tell a timeout from a command that exited with -1.
            let note = format!("Command timed out after {} seconds", self.command.timeout);
            if !self.stderr.text.is_empty() && !self.stderr.text.ends_with('\n') {
                self.stderr.text.push('\n');
            }
            self.stderr.text.push_str(&note);
        }
        self.publish(
            Some(if forced { -1 } else { exit.unwrap_or(-1) }),
            usize::MAX,
        );
        self.service.finished(&self.command.id);
    }

    fn kill_group(&self) {
        let pgid = self.pgid;
        // Escalate on another thread so output keeps flowing meanwhile.
        let _ = std::thread::Builder::new()
            .name("bash-kill".into())
            .spawn(move || terminate_group(pgid, Duration::from_secs(1)));
    }

    fn flush_full_chunks(&mut self) {
        while self.stdout.text.len() > MAX_CHUNK_CHARS || self.stderr.text.len() > MAX_CHUNK_CHARS {
            self.publish(None, MAX_CHUNK_CHARS);
        }
    }

    /// Publishes what is buffered (up to `max` characters per stream) as one
    /// chunk; the final chunk is always published, even when empty.
    fn publish(&mut self, exit_code: Option<i64>, max: usize) {
        let stdout = self.stdout.take(max);
        let stderr = self.stderr.take(max);
        if exit_code.is_none() && stdout.is_none() && stderr.is_none() {
            return;
        }
        let output = BashOutput {
            id: crate::util::id::uuid4_hex(),
            timestamp: crate::util::time::now_utc(),
            command_id: self.command.id.clone(),
            order: self.order,
            exit_code,
            stdout,
            stderr,
        };
        self.order += 1;
        self.service.publish(output);
    }
}
