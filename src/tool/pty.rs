//! A bash shell on a pseudo-terminal, in its own session: the raw machinery
//! under the `terminal` tool. Output is collected by a reader thread into a
//! buffer that callers wait on.

#![allow(unsafe_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Output collected from the terminal, and whether the shell is gone.
#[derive(Default)]
pub struct Screen {
    /// Bytes read since the buffer was last drained.
    pub bytes: Vec<u8>,
    /// Set when the shell closed the terminal.
    pub closed: bool,
    /// When bytes last arrived.
    pub last_output: Option<Instant>,
}

/// A shell running on a PTY.
pub struct PtyShell {
    writer: File,
    child: Child,
    screen: Arc<(Mutex<Screen>, Condvar)>,
}

fn cvt(r: libc::c_int, what: &str) -> Result<libc::c_int> {
    if r < 0 {
        Err(Error::io(what.to_string(), std::io::Error::last_os_error()))
    } else {
        Ok(r)
    }
}

impl PtyShell {
    /// Starts `bash` (no rc files, no line editing, interactive) in `cwd`
    /// with extra environment `env`.
    pub fn spawn(cwd: &Path, env: &[(String, String)]) -> Result<PtyShell> {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: 50,
            ws_col: 250,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two fds into the provided ints; null name and
        // termios pointers are allowed; `size` outlives the call.
        cvt(
            unsafe {
                libc::openpty(
                    &mut master,
                    &mut slave,
                    std::ptr::null_mut(),
                    std::ptr::null(),
                    &size,
                )
            },
            "opening a pseudo-terminal",
        )?;
        // Neither end may leak into other children: a copy of the master kept
        // open elsewhere would stop the hang-up that ends the shell's session
        // when we go away.
        for fd in [master, slave] {
            // SAFETY: fcntl on fds we own, with valid flags.
            cvt(
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) },
                "marking the terminal close-on-exec",
            )?;
        }
        // SAFETY: both fds were just returned by openpty and are owned here.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        set_raw_output(&slave)?;
        let slave_file = File::from(slave);
        let stdio = |f: &File| -> Result<Stdio> {
            f.try_clone()
                .map(Stdio::from)
                .map_err(|e| Error::io("duplicating the terminal", e))
        };
        let mut cmd = Command::new("bash");
        cmd.args(["--norc", "--noprofile", "--noediting", "-i"])
            .current_dir(cwd)
            .env("TERM", "dumb")
            .env("PAGER", "cat")
            .env("GIT_PAGER", "cat")
            .env("PS2", "")
            .env("PS1", super::terminal::PS1)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(stdio(&slave_file)?)
            .stdout(stdio(&slave_file)?)
            .stderr(stdio(&slave_file)?);
        // SAFETY: only async-signal-safe calls (setsid, ioctl) run between
        // fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| Error::io("starting bash", e))?;
        drop(slave_file);
        let writer = File::from(master);
        let mut reader = writer
            .try_clone()
            .map_err(|e| Error::io("duplicating the terminal", e))?;
        let screen = Arc::new((Mutex::new(Screen::default()), Condvar::new()));
        let sink = Arc::clone(&screen);
        std::thread::Builder::new()
            .name("terminal-reader".into())
            .spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    let n = match reader.read(&mut buf) {
                        Ok(0) | Err(_) => 0,
                        Ok(n) => n,
                    };
                    let (lock, cv) = &*sink;
                    let Ok(mut s) = lock.lock() else { return };
                    if n == 0 {
                        s.closed = true;
                        cv.notify_all();
                        return;
                    }
                    s.bytes.extend_from_slice(&buf[..n]);
                    s.last_output = Some(Instant::now());
                    cv.notify_all();
                }
            })
            .map_err(|e| Error::io("spawning the terminal reader", e))?;
        Ok(PtyShell {
            writer,
            child,
            screen,
        })
    }

    /// The shell's pid (also its process group and session id).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends bytes to the terminal (what a person would type).
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer
            .write_all(bytes)
            .and_then(|_| self.writer.flush())
            .map_err(|e| Error::io("writing to the terminal", e))
    }

    /// Waits until `done` says yes about the screen, or `deadline`, or until
    /// nothing new arrived for `quiet` (when given). Returns whatever `done`
    /// returned last.
    pub fn wait<T>(
        &self,
        deadline: Instant,
        quiet: Option<Duration>,
        mut done: impl FnMut(&mut Screen) -> Option<T>,
    ) -> Option<T> {
        let (lock, cv) = &*self.screen;
        let Ok(mut s) = lock.lock() else { return None };
        let since = Instant::now();
        loop {
            if let Some(v) = done(&mut s) {
                return Some(v);
            }
            let now = Instant::now();
            if now >= deadline || s.closed {
                return None;
            }
            if let Some(q) = quiet {
                let last = s.last_output.map_or(since, |t| t.max(since));
                if now >= last + q {
                    return None;
                }
            }
            let wake = quiet
                .map(|q| s.last_output.map_or(since, |t| t.max(since)) + q)
                .map_or(deadline, |t| t.min(deadline));
            let timeout = wake
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            s = match cv.wait_timeout(s, timeout) {
                Ok((g, _)) => g,
                Err(_) => return None,
            };
        }
    }

    /// Runs `f` on the screen under its lock.
    pub fn with_screen<T>(&self, f: impl FnOnce(&mut Screen) -> T) -> Option<T> {
        self.screen.0.lock().ok().map(|mut s| f(&mut s))
    }

    /// Kills the shell and everything in its session.
    pub fn kill(&mut self) {
        let sid = self.pid();
        crate::util::process::kill_session(sid);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PtyShell {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Turns off echo and output post-processing (`\n` -> `\r\n`) on the terminal.
fn set_raw_output(fd: &OwnedFd) -> Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: termios is plain old data; tcgetattr fills it for a valid fd.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is an open terminal and `t` a valid termios.
    cvt(
        unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) },
        "reading terminal modes",
    )?;
    t.c_lflag &= !(libc::ECHO | libc::ECHONL);
    t.c_oflag &= !libc::OPOST;
    // SAFETY: as above.
    cvt(
        unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &t) },
        "setting terminal modes",
    )?;
    Ok(())
}
