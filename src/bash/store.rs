//! Where bash events live: one JSON file per event (written in place: names
//! are unique), an in-memory index of names, and the newest bodies cached in the reference's layout
//! (`<YYYYMMDDHHMMSSffffff>_<Kind>[_<command_id>]_<event_id>`), so events
//! survive a restart and the directory reads the same as the reference's.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::util::time::compact_key;
use crate::wire::BashEvent;

/// Filters of `GET /api/bash/bash_events/search`.
#[derive(Debug, Clone, Default)]
pub struct BashSearch {
    /// Only events of this kind (`BashCommand`, `BashOutput`, `BashError`).
    pub kind: Option<String>,
    /// Only output of this command (32 hex).
    pub command_id: Option<String>,
    /// Only outputs with `order` greater than this.
    pub order_gt: Option<u64>,
    /// Only events at or after this time (compact key prefix).
    pub timestamp_gte: Option<String>,
    /// Only events before this time (compact key prefix).
    pub timestamp_lt: Option<String>,
    /// Newest first.
    pub descending: bool,
    /// Start at this event name (from a previous `next_page_id`).
    pub page_id: Option<String>,
    /// Page size (1..=100).
    pub limit: usize,
}

/// All bash events, in timestamp order.
pub struct BashStore {
    dir: PathBuf,
    events: RwLock<Index>,
}

/// An event body, if cached (else it is on disk only).
type Slot = Option<Arc<BashEvent>>;

/// How many event bodies stay in memory; older ones are read from disk when
/// asked for (the index of names is always in memory).
pub const CACHED_EVENTS: usize = 2048;

/// Event names (timestamp order) with the newest bodies cached, plus the names
/// of each command's outputs, so polling one command never scans every event.
#[derive(Default)]
struct Index {
    by_name: BTreeMap<String, Slot>,
    by_command: std::collections::HashMap<String, Vec<String>>,
    cached: std::collections::VecDeque<String>,
}

impl Index {
    fn insert(&mut self, name: String, event: Slot) {
        // `<ts>_BashOutput_<command id>_<event id>`: the name says the command.
        let parts: Vec<&str> = name.split('_').collect();
        if let [_, "BashOutput", command, _] = parts.as_slice() {
            self.by_command
                .entry(command.to_string())
                .or_default()
                .push(name.clone());
        }
        if event.is_some() {
            self.cached.push_back(name.clone());
            while self.cached.len() > CACHED_EVENTS {
                if let Some(old) = self.cached.pop_front() {
                    if let Some(slot) = self.by_name.get_mut(&old) {
                        *slot = None;
                    }
                }
            }
        }
        self.by_name.insert(name, event);
    }
}

/// The file name (and index key) of an event.
fn event_name(event: &BashEvent) -> String {
    let mut name = format!("{}_{}", compact_key(event.timestamp()), event.kind());
    if let BashEvent::Output(o) = event {
        name.push('_');
        name.push_str(&o.command_id);
    }
    name.push('_');
    name.push_str(event.id());
    name
}

impl BashStore {
    /// Opens the store at `dir`, indexing the events stored there by name
    /// (bodies are read when needed).
    pub fn open(dir: &Path) -> Self {
        let mut events = Index::default();
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') {
                    events.insert(name, None);
                }
            }
        }
        BashStore {
            dir: dir.to_path_buf(),
            events: RwLock::new(events),
        }
    }

    /// Stores an event: file first, then the index.
    pub fn append(&self, event: BashEvent) -> Arc<BashEvent> {
        let name = event_name(&event);
        // Names are unique, so a plain write is enough: a file torn by a crash
        // is skipped with a warning when read.
        let written = serde_json::to_vec(&event)
            .map_err(std::io::Error::other)
            .and_then(|data| {
                let path = self.dir.join(&name);
                fs::write(&path, &data).or_else(|e| {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        return Err(e);
                    }
                    fs::create_dir_all(&self.dir)?;
                    fs::write(&path, &data)
                })
            });
        if let Err(e) = written {
            log::warn!("could not persist bash event {name}: {e}");
        }
        let event = Arc::new(event);
        if let Ok(mut index) = self.events.write() {
            index.insert(name, Some(Arc::clone(&event)));
        }
        event
    }

    /// The body of `name`, from the cache or the disk.
    fn body(&self, name: &str, slot: &Slot) -> Slot {
        if let Some(e) = slot {
            return Some(Arc::clone(e));
        }
        match fs::read(self.dir.join(name)).map(|b| serde_json::from_slice::<BashEvent>(&b)) {
            Ok(Ok(e)) => Some(Arc::new(e)),
            _ => {
                log::warn!("skipping unreadable bash event file {name}");
                None
            }
        }
    }

    /// The event with this id (32 hex), if any.
    pub fn get(&self, id: &str) -> Slot {
        let suffix = format!("_{id}");
        let index = self.events.read().ok()?;
        let (name, slot) = index
            .by_name
            .iter()
            .rev()
            .find(|(name, _)| name.ends_with(&suffix))?;
        self.body(name, slot)
    }

    /// One page of events matching `q`, and the name of the next match.
    pub fn search(&self, q: &BashSearch) -> (Vec<Arc<BashEvent>>, Option<String>) {
        let Ok(index) = self.events.read() else {
            return (Vec::new(), None);
        };
        let load = |name: &str, slot: &Slot| self.body(name, slot);
        // One command's output: walk its own (small, ordered) list.
        if let (Some(cmd), None | Some("BashOutput")) = (&q.command_id, q.kind.as_deref()) {
            let subset: BTreeMap<String, Slot> = index
                .by_command
                .get(cmd)
                .into_iter()
                .flatten()
                .filter_map(|n| index.by_name.get(n).map(|e| (n.clone(), e.clone())))
                .collect();
            return page(&subset, q, &load);
        }
        page(&index.by_name, q, &load)
    }
}

/// One page of `map` (timestamp-ordered) matching `q`.
fn page(
    map: &BTreeMap<String, Slot>,
    q: &BashSearch,
    load: &dyn Fn(&str, &Slot) -> Slot,
) -> (Vec<Arc<BashEvent>>, Option<String>) {
    let matches = |name: &str, ev: &BashEvent| -> bool {
        if let Some(gte) = &q.timestamp_gte {
            if name < gte.as_str() {
                return false;
            }
        }
        if let Some(lt) = &q.timestamp_lt {
            if name >= lt.as_str() {
                return false;
            }
        }
        if let Some(kind) = &q.kind {
            if ev.kind() != kind {
                return false;
            }
        }
        match ev {
            BashEvent::Output(o) => {
                q.command_id.as_ref().is_none_or(|c| &o.command_id == c)
                    && q.order_gt.is_none_or(|g| o.order > g)
            }
            _ => q.command_id.is_none(),
        }
    };
    let iter: Box<dyn Iterator<Item = (&String, &Slot)>> = if q.descending {
        Box::new(map.iter().rev())
    } else {
        Box::new(map.iter())
    };
    let mut started = q.page_id.is_none() || !map.contains_key(q.page_id.as_deref().unwrap_or(""));
    let mut items = Vec::new();
    for (name, slot) in iter {
        if !started {
            if Some(name.as_str()) == q.page_id.as_deref() {
                started = true;
            } else {
                continue;
            }
        }
        // The name alone rules out other kinds and times before reading.
        if q.kind
            .as_deref()
            .is_some_and(|k| name.split('_').nth(1) != Some(k))
        {
            continue;
        }
        let Some(ev) = load(name, slot) else { continue };
        if !matches(name, &ev) {
            continue;
        }
        if items.len() >= q.limit {
            return (items, Some(name.clone()));
        }
        items.push(ev);
    }
    (items, None)
}
