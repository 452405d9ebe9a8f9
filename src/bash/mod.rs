//! The workspace's one-off shell commands (`/api/bash/...`): start a command,
//! stream its output as ordered `BashOutput` chunks, stop it, search the
//! results.
//!
//! Each command runs as `/bin/sh -c CMD` (as in the reference) in its own
//! process group with stdin closed. Its runner (the caller's thread for
//! [`BashService::execute`], a thread of its own for [`BashService::start`])
//! stores the `BashCommand` event while the command runs, then polls both
//! pipes and the exit (a pidfd) and stores chunks as they come:
//! - output pending for [`FLUSH_AFTER`] while the command still runs is
//!   published as an intermediate chunk, and any chunk is split at
//!   [`MAX_CHUNK_CHARS`] (the reference's limit), never inside a UTF-8 character;
//! - the final chunk carries the exit code; -1 after a timeout or a stop, when
//!   the whole process group gets SIGTERM and, a second later, SIGKILL.

mod index;
mod runner;
mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use store::BashSearch;
use store::BashStore;

use crate::util::process::ProcessGroups;
use crate::wire::{BashCommand, BashEvent, BashOutput, ExecuteBashRequest};
use crate::{Error, Result};

/// The largest chunk of output in one `BashOutput`, in characters.
pub const MAX_CHUNK_CHARS: usize = 1024 * 1024;
/// How long output may wait before it is published while a command runs.
pub const FLUSH_AFTER: Duration = Duration::from_millis(200);

/// Runs workspace commands and keeps their events.
pub struct BashService {
    store: Arc<BashStore>,
    default_cwd: Option<PathBuf>,
    running: Mutex<HashMap<String, runner::Handle>>,
    groups: Arc<ProcessGroups>,
    closed: AtomicBool,
}

impl BashService {
    /// A service storing events under `events_dir`; commands without a `cwd`
    /// run in `default_cwd` (the server's own directory when `None`); their
    /// process groups are recorded in `groups`.
    pub fn new(
        events_dir: &Path,
        default_cwd: Option<PathBuf>,
        groups: Arc<ProcessGroups>,
    ) -> Arc<Self> {
        Arc::new(BashService {
            store: Arc::new(BashStore::open(events_dir)),
            default_cwd,
            running: Mutex::new(HashMap::new()),
            groups,
            closed: AtomicBool::new(false),
        })
    }

    /// Starts a command and returns with its `BashCommand` event once that is
    /// stored (the command is already running by then).
    pub fn start(self: &Arc<Self>, request: ExecuteBashRequest) -> Result<BashCommand> {
        let launched = self.launch(request)?;
        let command = launched.command().clone();
        let (progress_tx, progress_rx) = crossbeam_channel::bounded(2);
        if let Err(e) = launched.run_in_background(Arc::clone(self), progress_tx) {
            self.finished(&command.id);
            return Err(e);
        }
        let _ = progress_rx.recv();
        Ok(command)
    }

    /// Runs a command to the end on the caller's thread and returns all its
    /// output as one `BashOutput` (the last chunk's id and order, everything
    /// joined).
    pub fn execute(self: &Arc<Self>, request: ExecuteBashRequest) -> Result<BashOutput> {
        let launched = self.launch(request)?;
        let id = launched.command().id.clone();
        let (progress_tx, _progress_rx) = crossbeam_channel::bounded(2);
        launched.run(Arc::clone(self), &progress_tx);
        Ok(self.collect(&id))
    }

    /// Starts the process and makes it stoppable by id.
    fn launch(self: &Arc<Self>, request: ExecuteBashRequest) -> Result<runner::Launched> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::InvalidInput(
                "the bash service is shutting down".into(),
            ));
        }
        let cwd = request.cwd.clone().or_else(|| {
            self.default_cwd
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
        });
        if let Some(dir) = &cwd {
            if !Path::new(dir).is_dir() {
                return Err(Error::InvalidInput(format!(
                    "cwd does not exist or is not a directory: {dir}"
                )));
            }
        }
        let command = BashCommand {
            command: request.command,
            cwd,
            timeout: request.timeout,
            id: crate::util::id::uuid4_hex(),
            timestamp: crate::util::time::now_utc(),
        };
        let id = command.id.clone();
        let launched = runner::launch(command, self)?;
        if let Ok(mut running) = self.running.lock() {
            running.insert(id, launched.handle());
        }
        Ok(launched)
    }

    /// Stores the command event (called by its runner).
    fn record(&self, command: &BashCommand) {
        self.store.append(BashEvent::Command(command.clone()));
    }

    /// Stores an output chunk (called by runners).
    fn publish(&self, output: BashOutput) {
        self.store.append(BashEvent::Output(output));
    }

    /// Forgets a finished command (called by its runner).
    fn finished(&self, command_id: &str) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(command_id);
        }
    }

    /// Stops a running command. `Ok(true)` if it was running or had already
    /// finished, `Ok(false)` if the id is unknown.
    pub fn stop(&self, command_id: &str) -> bool {
        let handle = self
            .running
            .lock()
            .ok()
            .and_then(|r| r.get(command_id).cloned());
        match handle {
            Some(h) => {
                h.stop();
                true
            }
            None => matches!(
                self.store.get(command_id).as_deref(),
                Some(BashEvent::Command(_))
            ),
        }
    }

    /// The event with this id.
    pub fn get(&self, id: &str) -> Option<Arc<BashEvent>> {
        self.store.get(id)
    }

    /// One page of events.
    pub fn search(&self, query: &BashSearch) -> (Vec<Arc<BashEvent>>, Option<String>) {
        self.store.search(query)
    }

    /// Joins every output chunk of a finished command.
    fn collect(&self, command_id: &str) -> BashOutput {
        let query = BashSearch {
            kind: Some("BashOutput".into()),
            command_id: Some(command_id.to_string()),
            limit: usize::MAX,
            ..BashSearch::default()
        };
        let (items, _) = self.store.search(&query);
        let mut outputs: Vec<&BashOutput> = items
            .iter()
            .filter_map(|e| match e.as_ref() {
                BashEvent::Output(o) => Some(o),
                _ => None,
            })
            .collect();
        outputs.sort_by_key(|o| o.order);
        let join = |f: fn(&BashOutput) -> &Option<String>| {
            let s: String = outputs.iter().filter_map(|o| f(o).as_deref()).collect();
            (!s.is_empty()).then_some(s)
        };
        let stdout = join(|o| &o.stdout);
        let stderr = join(|o| &o.stderr);
        match outputs.last() {
            Some(last) => BashOutput {
                exit_code: Some(last.exit_code.unwrap_or(-1)),
                stdout,
                stderr,
                ..(*last).clone()
            },
            None => BashOutput {
                id: crate::util::id::uuid4_hex(),
                timestamp: crate::util::time::now_utc(),
                command_id: command_id.to_string(),
                order: 0,
                exit_code: Some(-1),
                stdout: None,
                stderr: None,
            },
        }
    }

    /// Refuses new commands and kills the running ones (their final chunks
    /// are still stored).
    pub fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let handles: Vec<runner::Handle> = self
            .running
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        for h in &handles {
            h.kill();
        }
    }
}
