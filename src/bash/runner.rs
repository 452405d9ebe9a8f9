//! One running command: spawn it, gather its output, enforce its timeout.
//!
//! One thread per command does everything: it polls both pipes, notices the
//! exit, the timeout and stop requests, and stores the output chunks.

#![allow(unsafe_code)]

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::{BashService, FLUSH_AFTER, MAX_CHUNK_CHARS};
use crate::util::process::{signal_group, terminate_group};
use crate::wire::{BashCommand, BashOutput};
use crate::{Error, Result};

/// How often the runner looks at the clock when nothing happens.
const TICK: Duration = Duration::from_millis(50);
/// How long output is still read after the shell exited while a background
/// child keeps its pipes open.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(50);

/// How a caller reaches a running command.
#[derive(Clone)]
pub(super) struct Handle {
    pgid: i32,
    stop: Arc<AtomicBool>,
}

impl Handle {
    /// Asks the runner to stop the command (SIGTERM, then SIGKILL).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Kills the command's process group at once.
    pub fn kill(&self) {
        signal_group(self.pgid, libc::SIGKILL);
    }
}

/// A started command whose output nobody collects yet.
pub(super) struct Launched {
    command: BashCommand,
    child: Child,
    pgid: i32,
    stop: Arc<AtomicBool>,
}

/// Starts `command` (`sh -c`, as the reference's create_subprocess_shell) in
/// its own process group, recorded in the service's groups.
pub(super) fn launch(command: BashCommand, service: &BashService) -> Result<Launched> {
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
    let child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("starting `{}`", command.command), e))?;
    let pgid = child.id() as i32;
    service.groups.register(pgid);
    Ok(Launched {
        command,
        child,
        pgid,
        stop: Arc::new(AtomicBool::new(false)),
    })
}

impl Launched {
    /// The command.
    pub fn command(&self) -> &BashCommand {
        &self.command
    }

    /// How callers reach the command while it runs.
    pub fn handle(&self) -> Handle {
        Handle {
            pgid: self.pgid,
            stop: Arc::clone(&self.stop),
        }
    }

    /// Stores the `BashCommand` event (while the command already runs), then
    /// collects and stores its output until it ends. `progress` gets one
    /// message after each of the two.
    pub fn run(mut self, service: Arc<BashService>, progress: &Sender<()>) {
        service.record(&self.command);
        let _ = progress.send(());
        let groups = Arc::clone(&service.groups);
        let (out, err) = (self.child.stdout.take(), self.child.stderr.take());
        Collector::new(self.command, service, self.pgid).run(self.child, out, err, &self.stop);
        groups.unregister(self.pgid);
        let _ = progress.send(());
    }

    /// [`run`](Self::run) on a thread of its own.
    pub fn run_in_background(self, service: Arc<BashService>, progress: Sender<()>) -> Result<()> {
        let pgid = self.pgid;
        std::thread::Builder::new()
            .name("bash-run".into())
            .spawn(move || self.run(service, &progress))
            .map(|_| ())
            .map_err(|e| {
                signal_group(pgid, libc::SIGKILL);
                Error::io("spawning a thread", e)
            })
    }
}

fn exit_code(status: ExitStatus) -> i64 {
    status
        .code()
        .map(i64::from)
        .or_else(|| status.signal().map(|s| 128 + i64::from(s)))
        .unwrap_or(-1)
}

/// Waits up to `timeout` until one of the open pipes is readable (or hung
/// up) or the exit notifier fires; returns which did.
fn poll_fds(
    out: Option<&ChildStdout>,
    err: Option<&ChildStderr>,
    exited: Option<&OwnedFd>,
    timeout: Duration,
) -> [bool; 3] {
    let fd = |raw: Option<i32>| libc::pollfd {
        fd: raw.unwrap_or(-1),
        events: libc::POLLIN,
        revents: 0,
    };
    let mut fds = [
        fd(out.map(|p| p.as_raw_fd())),
        fd(err.map(|p| p.as_raw_fd())),
        fd(exited.map(|p| p.as_raw_fd())),
    ];
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: `fds` is a valid array of three pollfd; negative fds are ignored.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 3, ms) };
    if n <= 0 {
        return [false; 3];
    }
    let ready = |f: &libc::pollfd| {
        f.fd >= 0 && f.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
    };
    [ready(&fds[0]), ready(&fds[1]), ready(&fds[2])]
}

/// A descriptor that becomes readable when process `pid` exits (Linux
/// `pidfd_open`), so the runner can wait for output and exit at once without
/// polling; `None` where the kernel lacks it.
#[cfg(target_os = "linux")]
fn exit_notifier(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the descriptor was just created for us and nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(not(target_os = "linux"))]
fn exit_notifier(_pid: u32) -> Option<OwnedFd> {
    None
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

    fn run(
        mut self,
        mut child: Child,
        mut out: Option<ChildStdout>,
        mut err: Option<ChildStderr>,
        stop: &AtomicBool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(self.command.timeout);
        let mut pending_since: Option<Instant> = None;
        let mut exit: Option<i64> = None;
        let mut drain_until: Option<Instant> = None;
        let (mut forced, mut timed_out) = (false, false);
        let mut buf = vec![0u8; 64 * 1024];
        let exited = exit_notifier(child.id());
        loop {
            let now = Instant::now();
            let mut wake = now + TICK;
            if let Some(t) = pending_since {
                wake = wake.min(t + FLUSH_AFTER);
            }
            if !forced {
                wake = wake.min(deadline);
            }
            let pipes_open = out.is_some() || err.is_some();
            let watch_exit = exited.as_ref().filter(|_| exit.is_none());
            if pipes_open || watch_exit.is_some() {
                let [o, e, _] = poll_fds(
                    out.as_ref(),
                    err.as_ref(),
                    watch_exit,
                    wake.saturating_duration_since(now),
                );
                for (ready, is_err) in [(o, false), (e, true)] {
                    if !ready {
                        continue;
                    }
                    let n = if is_err {
                        err.as_mut().map_or(Ok(0), |p| p.read(&mut buf))
                    } else {
                        out.as_mut().map_or(Ok(0), |p| p.read(&mut buf))
                    };
                    match n {
                        Ok(0) | Err(_) => {
                            if is_err {
                                err = None
                            } else {
                                out = None
                            }
                        }
                        Ok(n) => {
                            if is_err {
                                self.stderr.push(&buf[..n])
                            } else {
                                self.stdout.push(&buf[..n])
                            }
                            pending_since.get_or_insert_with(Instant::now);
                            self.flush_full_chunks();
                        }
                    }
                }
            }
            if exit.is_none() {
                let reaped = if exited.is_none() && out.is_none() && err.is_none() {
                    // No exit notifier and both pipes closed: the shell is
                    // exiting; reap it.
                    wait_briefly(&mut child, wake)
                } else {
                    child.try_wait().ok().flatten()
                };
                if let Some(status) = reaped {
                    exit = Some(exit_code(status));
                    drain_until = Some(Instant::now() + DRAIN_AFTER_EXIT);
                }
            }
            let now = Instant::now();
            if exit.is_some()
                && (out.is_none() && err.is_none() || drain_until.is_some_and(|d| now >= d))
            {
                break;
            }
            if !forced && stop.load(Ordering::SeqCst) {
                forced = true;
                self.kill_group();
            }
            if !forced && exit.is_none() && now >= deadline {
                forced = true;
                timed_out = true;
                log::warn!(
                    "command timed out after {} seconds (command_id={})",
                    self.command.timeout,
                    self.command.id
                );
                self.kill_group();
            }
            if exit.is_none() && pending_since.is_some_and(|t| now >= t + FLUSH_AFTER) {
                self.publish(None, MAX_CHUNK_CHARS);
                pending_since = None;
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

/// Reaps the child if it exits before `until` (checking often at first).
fn wait_briefly(child: &mut Child, until: Instant) -> Option<ExitStatus> {
    let mut pause = Duration::from_micros(50);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(pause.min(until.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}
