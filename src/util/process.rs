//! Child processes in their own process groups: signalling whole groups, and
//! [`ProcessGroups`], a per-owner registry so that shutdown kills every command
//! the owner started and nothing it spawned outlives it by accident.

#![allow(unsafe_code)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::guardian::Guardian;

/// The live process groups started by one owner (a server, a service), so
/// that owner can kill all of them at shutdown without touching groups that
/// belong to anyone else in the same process. With a [`Guardian`], the groups
/// are also killed if this process dies without a chance to do it itself.
#[derive(Debug, Default)]
pub struct ProcessGroups {
    live: Mutex<HashSet<i32>>,
    guardian: Option<Arc<Guardian>>,
}

impl ProcessGroups {
    /// An empty registry whose groups `guardian` kills should we crash.
    pub fn guarded_by(guardian: Option<Arc<Guardian>>) -> Self {
        ProcessGroups {
            live: Mutex::default(),
            guardian,
        }
    }

    /// Records a live process group (its leader's pid).
    pub fn register(&self, pgid: i32) {
        if let Ok(mut set) = self.live.lock() {
            set.insert(pgid);
        }
        if let Some(g) = &self.guardian {
            g.watch(pgid);
        }
    }

    /// Forgets a process group whose leader has been reaped.
    pub fn unregister(&self, pgid: i32) {
        if let Ok(mut set) = self.live.lock() {
            set.remove(&pgid);
        }
        if let Some(g) = &self.guardian {
            g.forget(pgid);
        }
    }

    /// Kills every registered group at once (SIGKILL); returns how many.
    pub fn kill_all(&self) -> usize {
        let groups: Vec<i32> = match self.live.lock() {
            Ok(set) => set.iter().copied().collect(),
            Err(_) => return 0,
        };
        for &g in &groups {
            signal_group(g, libc::SIGKILL);
            // Shells started with setsid lead sessions whose jobs may live in
            // other process groups.
            kill_session(g);
        }
        groups.len()
    }
}

/// Sends `signal` to every process of group `pgid`; false if none was there.
pub fn signal_group(pgid: i32, signal: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: killpg has no memory-safety preconditions.
    unsafe { libc::killpg(pgid, signal) == 0 }
}

/// Whether any process of group `pgid` is still alive.
pub fn group_alive(pgid: i32) -> bool {
    signal_group(pgid, 0)
}

/// SIGTERM to the group, then SIGKILL if it is still alive after `grace`.
pub fn terminate_group(pgid: i32, grace: Duration) {
    if !signal_group(pgid, libc::SIGTERM) {
        return;
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !group_alive(pgid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    signal_group(pgid, libc::SIGKILL);
}

/// Sends `signal` to one process; false if it is not there.
pub fn signal_process(pid: i32, signal: i32) -> bool {
    if pid <= 1 {
        return false;
    }
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// SIGKILLs every process of session `sid` (a shell started with `setsid`
/// and all its jobs, whatever their process groups), by scanning `/proc`.
pub fn kill_session(sid: i32) -> usize {
    if sid <= 1 {
        return 0;
    }
    let mut killed = 0;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name (which may contain spaces) start after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // rest: state ppid pgrp session ...
        if fields.get(3).and_then(|s| s.parse::<i32>().ok()) == Some(sid) {
            signal_process(pid, libc::SIGKILL);
            killed += 1;
        }
    }
    killed
}

/// Returns free heap memory to the system (glibc `malloc_trim`).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; callable from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
