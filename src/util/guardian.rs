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

/// A running guardian process; see the module docs.
#[derive(Debug)]
pub struct Guardian {
    input: Mutex<Option<ChildStdin>>,
    child: Mutex<Child>,
}

impl Guardian {
    /// Starts the guardian.
    pub fn spawn() -> Result<Guardian> {
        let mut child = Command::new("/bin/sh")
            .args(["-c", SCRIPT, "openhands-sync-guardian"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| Error::io("starting the guardian process", e))?;
        let input = child.stdin.take();
        Ok(Guardian {
            input: Mutex::new(input),
            child: Mutex::new(child),
        })
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
        let Ok(mut input) = self.input.lock() else {
            return;
        };
        let Some(pipe) = input.as_mut() else {
            return;
        };
        if let Err(e) = writeln!(pipe, "{op}{pgid}") {
            log::warn!("the guardian process is gone ({e}); commands may outlive a crash");
            *input = None;
        }
    }
}

impl Drop for Guardian {
    /// Closes the pipe (the guardian kills what is still listed) and reaps it.
    fn drop(&mut self) {
        if let Ok(mut input) = self.input.lock() {
            input.take();
        }
        if let Ok(mut child) = self.child.lock() {
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
        let guardian = Guardian::spawn().unwrap();
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
