//! Child processes in their own process groups, and a registry of the live
//! groups so that shutdown (or a crash handler) can kill every command this
//! process started: nothing we spawn outlives us by accident.

#![allow(unsafe_code)]

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

fn registry() -> &'static Mutex<HashSet<i32>> {
    static GROUPS: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
    GROUPS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Records a live process group (its leader's pid).
pub fn register_group(pgid: i32) {
    if let Ok(mut set) = registry().lock() {
        set.insert(pgid);
    }
}

/// Forgets a process group whose leader has been reaped.
pub fn unregister_group(pgid: i32) {
    if let Ok(mut set) = registry().lock() {
        set.remove(&pgid);
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

/// Kills every registered process group at once (SIGKILL); used at shutdown.
pub fn kill_all_groups() -> usize {
    let groups: Vec<i32> = match registry().lock() {
        Ok(set) => set.iter().copied().collect(),
        Err(_) => return 0,
    };
    for &g in &groups {
        signal_group(g, libc::SIGKILL);
    }
    groups.len()
}
