//! Where bash events live: one JSON file per event in the reference's layout
//! (`<YYYYMMDDHHMMSSffffff>_<Kind>[_<command_id>]_<event_id>`, written in
//! place: names are unique), so events survive a restart and the directory
//! reads the same as the reference's, plus the in-memory [`Index`].

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::index::{hex16, Index, Key};
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
    index: RwLock<Index>,
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
        let mut keys = Vec::new();
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                match Key::parse(&name) {
                    Some(key) => keys.push(key),
                    None if name.starts_with('.') => {}
                    None => log::warn!("ignoring {name} in the bash events directory"),
                }
            }
        }
        // In time order, as they were stored: each command before its output.
        keys.sort_unstable();
        let mut index = Index::default();
        for key in keys {
            index.insert(key, None);
        }
        BashStore {
            dir: dir.to_path_buf(),
            index: RwLock::new(index),
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
        match Key::parse(&name) {
            Some(key) => {
                if let Ok(mut index) = self.index.write() {
                    index.insert(key, Some(Arc::clone(&event)));
                }
            }
            None => log::warn!("bash event {name} has an unexpected id or time; not indexed"),
        }
        event
    }

    /// The body of `key`, from the cache or the disk.
    fn body(&self, index: &Index, key: &Key) -> Option<Arc<BashEvent>> {
        if let Some(e) = index.body(key) {
            return Some(e);
        }
        let name = key.name();
        match fs::read(self.dir.join(&name)).map(|b| serde_json::from_slice::<BashEvent>(&b)) {
            Ok(Ok(e)) => Some(Arc::new(e)),
            _ => {
                log::warn!("skipping unreadable bash event file {name}");
                None
            }
        }
    }

    /// The event with this id (32 hex), if any.
    pub fn get(&self, id: &str) -> Option<Arc<BashEvent>> {
        let id = hex16(id)?;
        let index = self.index.read().ok()?;
        let key = index.find(&id)?;
        self.body(&index, &key)
    }

    /// One page of events matching `q`, and the name of the next match.
    pub fn search(&self, q: &BashSearch) -> (Vec<Arc<BashEvent>>, Option<String>) {
        let Ok(index) = self.index.read() else {
            return (Vec::new(), None);
        };
        let command = match q.command_id.as_deref().map(hex16) {
            Some(None) => return (Vec::new(), None), // not an id: nothing matches
            Some(Some(c)) => Some(c),
            None => None,
        };
        // One recent command's output: walk its own (small, ordered) list.
        let keys = match (&command, q.kind.as_deref()) {
            (Some(c), None | Some("BashOutput")) => index.outputs_of(c).unwrap_or(index.keys()),
            _ => index.keys(),
        };
        page(keys, q, command.as_ref(), &|k| self.body(&index, k))
    }
}

/// One page of `keys` (in order) matching `q`.
fn page(
    keys: &[Key],
    q: &BashSearch,
    command: Option<&[u8; 16]>,
    load: &dyn Fn(&Key) -> Option<Arc<BashEvent>>,
) -> (Vec<Arc<BashEvent>>, Option<String>) {
    // The key alone rules out other kinds, commands and times before reading.
    let wanted = |key: &Key| -> bool {
        if q.kind.as_deref().is_some_and(|k| key.kind().as_str() != k) {
            return false;
        }
        if command.is_some_and(|c| !key.is_output_of(c)) {
            return false;
        }
        if q.timestamp_gte.is_some() || q.timestamp_lt.is_some() {
            let name = key.name();
            if q.timestamp_gte
                .as_deref()
                .is_some_and(|gte| name.as_str() < gte)
                || q.timestamp_lt
                    .as_deref()
                    .is_some_and(|lt| name.as_str() >= lt)
            {
                return false;
            }
        }
        true
    };
    let matches = |ev: &BashEvent| match ev {
        BashEvent::Output(o) => q.order_gt.is_none_or(|g| o.order > g),
        _ => true,
    };
    // An unknown page id starts from the beginning, as in the reference.
    let start = q.page_id.as_deref().and_then(Key::parse).and_then(|p| {
        let at = keys.partition_point(|k| k < &p);
        (keys.get(at) == Some(&p)).then_some(at)
    });
    let ordered: Box<dyn Iterator<Item = &Key>> = match (q.descending, start) {
        (false, at) => Box::new(keys[at.unwrap_or(0)..].iter()),
        (true, Some(at)) => Box::new(keys[..=at].iter().rev()),
        (true, None) => Box::new(keys.iter().rev()),
    };
    let mut items = Vec::new();
    for key in ordered.filter(|k| wanted(k)) {
        let Some(ev) = load(key) else { continue };
        if !matches(&ev) {
            continue;
        }
        if items.len() >= q.limit {
            return (items, Some(key.name()));
        }
        items.push(ev);
    }
    (items, None)
}
