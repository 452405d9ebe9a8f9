//! The in-memory index of bash events: every event's file name packed into
//! a 48-byte [`Key`] (a sorted `Vec`, not a map of strings: a long-running
//! server keeps millions of them), the newest bodies, and per-command lists
//! for the commands started most recently (the ones clients poll).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::sync::Arc;

use crate::wire::BashEvent;

/// How many event bodies stay in memory; older ones are read from disk.
pub const CACHED_EVENTS: usize = 2048;
/// How many recent commands keep a list of their outputs; searches for older
/// ones scan the index (still in memory, no disk).
pub const INDEXED_COMMANDS: usize = 1024;

/// The kinds of bash event, in the order their names sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `BashCommand`.
    Command,
    /// `BashError`.
    Error,
    /// `BashOutput`.
    Output,
}

impl Kind {
    /// The name used in `kind` fields and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Command => "BashCommand",
            Kind::Error => "BashError",
            Kind::Output => "BashOutput",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        [Kind::Command, Kind::Error, Kind::Output]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A file name `<YYYYMMDDHHMMSS><ffffff>_<Kind>[_<command id>]_<event id>`,
/// packed. Keys order exactly as the names do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    seconds: u64,
    micros: u32,
    kind: Kind,
    command: [u8; 16],
    id: [u8; 16],
}

impl Key {
    /// Parses a file name; `None` for names this store did not write.
    pub fn parse(name: &str) -> Option<Key> {
        let mut parts = name.split('_');
        let (ts, kind) = (parts.next()?, Kind::parse(parts.next()?)?);
        let command = if kind == Kind::Output {
            hex16(parts.next()?)?
        } else {
            [0; 16]
        };
        let id = hex16(parts.next()?)?;
        if parts.next().is_some() || ts.len() != 20 || !ts.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Key {
            seconds: ts[..14].parse().ok()?,
            micros: ts[14..].parse().ok()?,
            kind,
            command,
            id,
        })
    }

    /// The file name back.
    pub fn name(&self) -> String {
        let mut s = String::with_capacity(110);
        let _ = write!(
            s,
            "{:014}{:06}_{}",
            self.seconds,
            self.micros,
            self.kind.as_str()
        );
        if self.kind == Kind::Output {
            s.push('_');
            push_hex(&mut s, &self.command);
        }
        s.push('_');
        push_hex(&mut s, &self.id);
        s
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether this is an output of `command` (32 hex).
    pub fn is_output_of(&self, command: &[u8; 16]) -> bool {
        self.kind == Kind::Output && &self.command == command
    }

    /// Whether the event id is `id`.
    pub fn has_id(&self, id: &[u8; 16]) -> bool {
        &self.id == id
    }
}

/// 32 lower- or upper-case hex digits as 16 bytes.
pub fn hex16(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

fn push_hex(s: &mut String, bytes: &[u8; 16]) {
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
}

/// Every event's key in order, the newest bodies, and recent commands' outputs.
#[derive(Default)]
pub struct Index {
    keys: Vec<Key>,
    bodies: HashMap<Key, Arc<BashEvent>>,
    cached: VecDeque<Key>,
    outputs: HashMap<[u8; 16], Vec<Key>>,
    commands: VecDeque<[u8; 16]>,
}

impl Index {
    /// Adds an event (with its body when it is new, so it is cached).
    pub fn insert(&mut self, key: Key, body: Option<Arc<BashEvent>>) {
        // Events arrive almost in order: the position is at or near the end.
        let at = self.keys.partition_point(|k| k <= &key);
        self.keys.insert(at, key);
        match key.kind {
            Kind::Command => {
                self.commands.push_back(key.id);
                self.outputs.entry(key.id).or_default();
                while self.commands.len() > INDEXED_COMMANDS {
                    if let Some(old) = self.commands.pop_front() {
                        self.outputs.remove(&old);
                    }
                }
            }
            Kind::Output => {
                if let Some(list) = self.outputs.get_mut(&key.command) {
                    let at = list.partition_point(|k| k <= &key);
                    list.insert(at, key);
                }
            }
            Kind::Error => {}
        }
        if let Some(body) = body {
            self.bodies.insert(key, body);
            self.cached.push_back(key);
            while self.cached.len() > CACHED_EVENTS {
                if let Some(old) = self.cached.pop_front() {
                    self.bodies.remove(&old);
                }
            }
        }
    }

    /// Every key, in order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The outputs of a recent command, in order; `None` if it is not one of
    /// the last [`INDEXED_COMMANDS`] (or unknown).
    pub fn outputs_of(&self, command: &[u8; 16]) -> Option<&[Key]> {
        self.outputs.get(command).map(Vec::as_slice)
    }

    /// The cached body of `key`.
    pub fn body(&self, key: &Key) -> Option<Arc<BashEvent>> {
        self.bodies.get(key).cloned()
    }

    /// The newest key with event id `id`.
    pub fn find(&self, id: &[u8; 16]) -> Option<Key> {
        self.keys.iter().rev().find(|k| k.has_id(id)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CMD: &str = "20261124125727455685_BashCommand_0123456789abcdef0123456789abcdef";
    const OUT: &str = "20261124125727455690_BashOutput_0123456789abcdef0123456789abcdef_fedcba9876543210fedcba9876543210";

    #[test]
    fn names_round_trip_and_keys_sort_like_names() {
        for name in [CMD, OUT] {
            assert_eq!(Key::parse(name).unwrap().name(), name);
        }
        let mut names = vec![
            OUT.to_string(),
            CMD.to_string(),
            CMD.replace("BashCommand", "BashError"),
            "20261124125727455685_BashOutput_00000000000000000000000000000000_00000000000000000000000000000001".into(),
            "20251124125727455685_BashCommand_ffffffffffffffffffffffffffffffff".into(),
        ];
        let mut keys: Vec<Key> = names.iter().map(|n| Key::parse(n).unwrap()).collect();
        names.sort();
        keys.sort();
        let back: Vec<String> = keys.iter().map(Key::name).collect();
        assert_eq!(back, names);
        assert!(std::mem::size_of::<Key>() <= 48);
    }

    #[test]
    fn refuses_foreign_names() {
        for name in [
            "",
            ".tmp",
            "2026_BashCommand_0123456789abcdef0123456789abcdef",
            "20261124125727455685_Other_0123456789abcdef0123456789abcdef",
            "20261124125727455685_BashCommand_0123",
            "20261124125727455685_BashCommand_0123456789abcdef0123456789abcdef_extra",
            "2026112412572745568x_BashCommand_0123456789abcdef0123456789abcdef",
        ] {
            assert!(Key::parse(name).is_none(), "{name}");
        }
    }

    #[test]
    fn old_commands_drop_their_lists_but_stay_indexed() {
        let mut index = Index::default();
        for i in 0..INDEXED_COMMANDS + 10 {
            let name = format!("2026112412{i:010}_BashCommand_{i:032x}");
            index.insert(Key::parse(&name).unwrap(), None);
        }
        assert!(index
            .outputs_of(&hex16(&format!("{:032x}", 0)).unwrap())
            .is_none());
        assert!(index
            .outputs_of(&hex16(&format!("{:032x}", INDEXED_COMMANDS + 9)).unwrap())
            .is_some());
        assert_eq!(index.keys().len(), INDEXED_COMMANDS + 10);
        assert!(index
            .find(&hex16(&format!("{:032x}", 3)).unwrap())
            .is_some());
    }
}
