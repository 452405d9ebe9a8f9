//! The guardian: a tiny watchdog process that kills our commands if we die
//! without cleaning up.
//!
//! A graceful shutdown kills every command group through
//! [`ProcessGroups::kill_all`](super::process::ProcessGroups::kill_all), and
//! shells on a PTY get SIGHUP when their terminal goes away. Neither helps a
//! plain `sh -c` command when the server is SIGKILLed or OOM-killed: nothing
//! runs in the dead process. So the server starts one small `/bin/sh` next to
//! itself and tells it, over a pipe, which process groups are live
//! (`+PGID` / `-PGID` lines). The kernel closes that pipe however the server
//! ends; on end of input the guardian SIGKILLs every group still listed and
//! exits. It ignores SIGINT, SIGTERM and SIGHUP and lives in its own process
//! group, so a signal meant for the server does not take it first.
//!
//! It is a shell script rather than a forked copy of this process because
//! forking a multi-threaded program leaves only async-signal-safe calls
//! usable in the child, and re-executing our own binary would not work for
//! programs that embed the library.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use crate::{Error, Result};

/// Keeps the list of live groups, and kills them all when its input ends.
const SCRIPT: &str = r#"
trap '' INT TERM HUP PIPE
live=''
while IFS= read -r line; do
  case $line in
    +*) live="$live ${line#+}" ;;
    -*) rest=''
        for g in $live; do [ "$g" = "${line#-}" ] || rest="$rest $g"; done
        live=$rest ;;
  esac
done
for g in $live; do kill -s KILL -- "-$g" 2>/dev/null; done
"#;

/// The guardian of one server; see the module docs. Its process starts
/// with the first group it is asked to watch, so a server that never runs a
/// command never has one.
#[derive(Debug, Default)]
pub struct Guardian {
    process: Mutex<Process>,
}

#[derive(Debug, Default)]
enum Process {
    /// Not needed yet.
    #[default]
    NotStarted,
    Running {
        input: ChildStdin,
        child: Child,
    },
    /// It could not be started or has died; commands may outlive a crash.
    Gone,
}

impl Guardian {
    /// A guardian whose process starts when the first group is watched.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the guardian to kill group `pgid` if this process dies.
    pub fn watch(&self, pgid: i32) {
        self.tell('+', pgid);
    }

    /// Tells the guardian group `pgid` is gone (its leader was reaped).
    pub fn forget(&self, pgid: i32) {
        self.tell('-', pgid);
    }

    fn tell(&self, op: char, pgid: i32) {
        let Ok(mut process) = self.process.lock() else {
            return;
        };
        if matches!(*process, Process::NotStarted) {
            *process = match start() {
                Ok((input, child)) => Process::Running { input, child },
                Err(e) => {
                    log::warn!("{e}: commands may outlive a crash of this process");
                    Process::Gone
                }
            };
        }
        if let Process::Running { input, .. } = &mut *process {
            if let Err(e) = writeln!(input, "{op}{pgid}") {
                log::warn!("the guardian process is gone ({e}); commands may outlive a crash");
                *process = Process::Gone;
            }
        }
    }
}

fn start() -> Result<(ChildStdin, Child)> {
    let mut child = Command::new("/bin/sh")
        .args(["-c", SCRIPT, "openhands-sync-guardian"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io("starting the guardian process", e))?;
    match child.stdin.take() {
        Some(input) => Ok((input, child)),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(Error::Process(
                "the guardian process has no input pipe".into(),
            ))
        }
    }
}

impl Drop for Guardian {
    /// Closes the pipe (the guardian kills what is still listed) and reaps it.
    fn drop(&mut self) {
        let process = match self.process.get_mut() {
            Ok(p) => std::mem::take(p),
            Err(poisoned) => std::mem::take(poisoned.into_inner()),
        };
        if let Process::Running { input, mut child } = process {
            drop(input);
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::process::group_alive;

    fn sleeper() -> Child {
        Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap()
    }

    #[test]
    fn groups_still_listed_die_when_the_pipe_closes_and_forgotten_ones_live() {
        let guardian = Guardian::new();
        let (mut watched, mut forgotten) = (sleeper(), sleeper());
        let (w, f) = (watched.id() as i32, forgotten.id() as i32);
        guardian.watch(w);
        guardian.watch(f);
        guardian.forget(f);
        // Dropping closes the pipe and waits until the guardian has exited.
        drop(guardian);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while watched.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(
            watched.try_wait().unwrap().is_some(),
            "watched group lives on"
        );
        assert!(!group_alive(w));
        assert!(group_alive(f), "a forgotten group was killed");
        let _ = forgotten.kill();
        let _ = forgotten.wait();
    }
}
