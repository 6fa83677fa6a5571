//! The Raft log as a cheaply clonable, copy-on-write sequence of entries.
//!
//! Every append (leader) or accepted AppendEntries (follower) is followed by `Out::save` of the
//! durable state, and the simulator keeps that value (plus the previous one, for crashes that
//! lose un-synced writes). Cloning a `Vec<Entry>` there would make each save O(log length). This
//! log is split into frozen chunks of [`CHUNK`] entries shared through `Arc` plus a short tail,
//! so that a clone costs two reference-count increments, and an append after a save copies at
//! most the tail (< [`CHUNK`] entries). `Arc` (not `Rc`) because stateright's checker moves
//! states between threads.
//!
//! Indices are Raft's: 1-based; index 0 is the empty prefix, whose term is 0.

use crate::Entry;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Entries per frozen chunk.
pub const CHUNK: usize = 32;

/// A Raft log.
#[derive(Clone, Default)]
pub struct Log {
    /// Full chunks, each exactly [`CHUNK`] entries, never mutated once frozen.
    frozen: Arc<Vec<Arc<[Entry]>>>,
    /// The entries after the frozen chunks (fewer than [`CHUNK`]).
    tail: Arc<Vec<Entry>>,
}

impl Log {
    pub fn new() -> Self {
        Self::default()
    }

    /// Index of the last entry (0 if empty).
    pub fn last_index(&self) -> u64 {
        (self.frozen.len() * CHUNK + self.tail.len()) as u64
    }

    /// Term of the last entry (0 if empty).
    pub fn last_term(&self) -> u64 {
        self.term(self.last_index()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.last_index() == 0
    }

    /// The entry at `index` (1-based).
    pub fn get(&self, index: u64) -> Option<&Entry> {
        if index == 0 || index > self.last_index() {
            return None;
        }
        let i = (index - 1) as usize;
        let (c, o) = (i / CHUNK, i % CHUNK);
        if c < self.frozen.len() {
            Some(&self.frozen[c][o])
        } else {
            self.tail.get(o)
        }
    }

    /// The term at `index`: `Some(0)` for index 0, `None` past the end.
    pub fn term(&self, index: u64) -> Option<u64> {
        if index == 0 {
            Some(0)
        } else {
            self.get(index).map(|e| e.term)
        }
    }

    pub fn push(&mut self, e: Entry) {
        let tail = Arc::make_mut(&mut self.tail);
        tail.push(e);
        if tail.len() == CHUNK {
            let full: Arc<[Entry]> = std::mem::take(tail).into();
            Arc::make_mut(&mut self.frozen).push(full);
        }
    }

    /// Keeps entries `1..=len`, dropping the rest.
    pub fn truncate(&mut self, len: u64) {
        if len >= self.last_index() {
            return;
        }
        let len = len as usize;
        let (c, o) = (len / CHUNK, len % CHUNK);
        if c >= self.frozen.len() {
            Arc::make_mut(&mut self.tail).truncate(o);
            return;
        }
        let tail: Vec<Entry> = self.frozen[c][..o].to_vec();
        Arc::make_mut(&mut self.frozen).truncate(c);
        self.tail = Arc::new(tail);
    }

    /// Clones of the entries `from..=to` (clamped to the log).
    pub fn slice(&self, from: u64, to: u64) -> Vec<Entry> {
        let to = to.min(self.last_index());
        let from = from.max(1);
        if from > to {
            return Vec::new();
        }
        (from..=to)
            .map(|i| self.get(i).expect("in range").clone())
            .collect()
    }

    /// The first index of the run of entries with `term` that contains `index`.
    pub fn first_index_of_term_at(&self, index: u64) -> u64 {
        let Some(t) = self.term(index) else {
            return index;
        };
        let mut i = index;
        while i > 1 && self.term(i - 1) == Some(t) {
            i -= 1;
        }
        i
    }

    /// The last index whose entry has term `t`, if any (terms are non-decreasing in a log).
    pub fn last_index_of_term(&self, t: u64) -> Option<u64> {
        // Binary search for the last index with term <= t.
        let (mut lo, mut hi) = (0u64, self.last_index());
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if self.term(mid).unwrap_or(u64::MAX) <= t {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        (lo > 0 && self.term(lo) == Some(t)).then_some(lo)
    }

    /// Iterates over the entries in order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.frozen
            .iter()
            .flat_map(|c| c.iter())
            .chain(self.tail.iter())
    }

    /// The first index at which `self` and `other` differ (`min(len) + 1` if one is a prefix of
    /// the other, `len + 1` if equal). Shared chunks are skipped without comparing entries.
    pub fn first_difference(&self, other: &Log) -> u64 {
        let mut i = 0usize;
        let shared = self.frozen.len().min(other.frozen.len());
        while i < shared && Arc::ptr_eq(&self.frozen[i], &other.frozen[i]) {
            i += 1;
        }
        let mut idx = (i * CHUNK) as u64 + 1;
        let end = self.last_index().min(other.last_index());
        while idx <= end && self.get(idx) == other.get(idx) {
            idx += 1;
        }
        idx
    }

    /// Whether two logs share all their storage (a cheap "certainly equal").
    pub fn same_storage(&self, other: &Log) -> bool {
        Arc::ptr_eq(&self.frozen, &other.frozen) && Arc::ptr_eq(&self.tail, &other.tail)
    }
}

impl PartialEq for Log {
    fn eq(&self, other: &Self) -> bool {
        self.same_storage(other)
            || (self.last_index() == other.last_index()
                && self.first_difference(other) > self.last_index())
    }
}
impl Eq for Log {}

impl Hash for Log {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.last_index().hash(h);
        for e in self.iter() {
            e.hash(h);
        }
    }
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl FromIterator<Entry> for Log {
    fn from_iter<I: IntoIterator<Item = Entry>>(iter: I) -> Self {
        let mut l = Log::new();
        for e in iter {
            l.push(e);
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cmd;

    fn e(term: u64) -> Entry {
        Entry {
            term,
            cmd: Cmd::Noop,
        }
    }

    #[test]
    fn push_get_truncate_across_chunks() {
        let mut l = Log::new();
        for i in 0..100u64 {
            l.push(e(i / 10 + 1));
        }
        assert_eq!(l.last_index(), 100);
        assert_eq!(l.term(1), Some(1));
        assert_eq!(l.term(100), Some(10));
        assert_eq!(l.term(101), None);
        let saved = l.clone();
        l.truncate(40);
        assert_eq!(l.last_index(), 40);
        assert_eq!(saved.last_index(), 100, "a clone is unaffected");
        l.push(e(99));
        assert_eq!(l.term(41), Some(99));
        assert_eq!(l.first_difference(&saved), 41);
        assert_eq!(saved.first_difference(&saved.clone()), 101);
        l.truncate(3);
        assert_eq!(l.slice(1, 10).len(), 3);
        assert_eq!(l.last_index_of_term(1), Some(3));
        assert_eq!(saved.last_index_of_term(5), Some(50));
        assert_eq!(saved.last_index_of_term(11), None);
        assert_eq!(saved.first_index_of_term_at(47), 41);
        let rebuilt: Log = saved.iter().cloned().collect();
        assert_eq!(rebuilt, saved);
        assert_ne!(rebuilt, l);
    }
}
