//! On-disk layout of a conversation, as the reference's:
//!
//! ```text
//! <dir>/base_state.json                    the ConversationState
//! <dir>/events/event-00000-<event id>.json one event per file, in order
//! ```
//!
//! Every file is written to a temporary name and renamed into place, so a
//! crash leaves whole files only. An event is on disk before anyone hears of
//! it: an acknowledged event survives a crash of the process (and, with
//! `durable`, a power loss too). Unreadable files found at load time (a
//! torn write from a foreign tool, manual damage) are skipped with a warning.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::state::ConversationState;
use crate::wire::Event;
use crate::{Error, Result};

/// The events of one conversation, in memory and (optionally) on disk.
pub struct EventLog {
    dir: Option<PathBuf>,
    durable: bool,
    events: Vec<Arc<Event>>,
}

impl EventLog {
    /// An empty log, stored under `dir` when given.
    pub fn new(dir: Option<PathBuf>, durable: bool) -> Self {
        EventLog {
            dir,
            durable,
            events: Vec::new(),
        }
    }

    /// Loads the events stored under `dir`.
    pub fn load(dir: &Path, durable: bool) -> Result<Self> {
        let events_dir = dir.join("events");
        let mut names: Vec<String> = match fs::read_dir(&events_dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("event-") && n.ends_with(".json"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(format!("listing {}", events_dir.display()), e)),
        };
        names.sort();
        let mut events = Vec::with_capacity(names.len());
        for name in names {
            let path = events_dir.join(&name);
            match fs::read(&path).map(|b| serde_json::from_slice::<Event>(&b)) {
                Ok(Ok(e)) => events.push(Arc::new(e)),
                Ok(Err(e)) => log::warn!("skipping unreadable event file {}: {e}", path.display()),
                Err(e) => log::warn!("skipping event file {}: {e}", path.display()),
            }
        }
        Ok(EventLog {
            dir: Some(dir.to_path_buf()),
            durable,
            events,
        })
    }

    /// Stores an event (disk first) and returns it shared.
    pub fn append(&mut self, event: Event) -> Result<Arc<Event>> {
        if let Some(dir) = &self.dir {
            let events_dir = dir.join("events");
            fs::create_dir_all(&events_dir)
                .map_err(|e| Error::io(format!("creating {}", events_dir.display()), e))?;
            let name = format!("event-{:05}-{}.json", self.events.len(), event.id());
            let data = serde_json::to_vec(&event).map_err(|e| Error::json("an event", e))?;
            crate::util::fs::write_atomic(&events_dir.join(&name), &data, self.durable)
                .map_err(|e| Error::io(format!("writing event {name}"), e))?;
        }
        let event = Arc::new(event);
        self.events.push(Arc::clone(&event));
        Ok(event)
    }

    /// All events, oldest first.
    pub fn all(&self) -> &[Arc<Event>] {
        &self.events
    }

    /// How many events there are.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// Writes `base_state.json`.
pub fn save_state(dir: &Path, state: &ConversationState, durable: bool) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let data =
        serde_json::to_vec_pretty(state).map_err(|e| Error::json("the conversation state", e))?;
    crate::util::fs::write_atomic(&dir.join("base_state.json"), &data, durable)
        .map_err(|e| Error::io(format!("writing {}/base_state.json", dir.display()), e))
}

/// Reads `base_state.json`.
pub fn load_state(dir: &Path) -> Result<ConversationState> {
    let path = dir.join("base_state.json");
    let data = fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    serde_json::from_slice(&data).map_err(|e| Error::json(path.display().to_string(), e))
}
