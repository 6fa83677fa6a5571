//! The Raft log as a cheaply clonable, copy-on-write sequence of entries.
//!
//! Every append (leader) or accepted AppendEntries (follower) is followed by `Out::save` of the
//! durable state, and the simulator keeps that value (plus the previous one, for crashes that
//! lose un-synced writes). Cloning a `Vec<Entry>` there would make each save O(log length). This
//! log is a shallow persistent tree: frozen chunks of [`CHUNK`] entries, grouped into frozen
//! pages of [`PAGE`] chunks, all shared through `Arc`, plus an open page and a short tail. A clone
//! costs three reference-count increments; an append after a save copies at most the tail
//! (< [`CHUNK`] entries), once per chunk the open page (< [`PAGE`] pointers), and once per page
//! the page list (log length / ([`CHUNK`]·[`PAGE`]) pointers). `Arc` (not `Rc`) because
//! stateright's checker moves states between threads.
//!
//! Indices are Raft's: 1-based; index 0 is the empty prefix, whose term is 0.

use crate::Entry;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Entries per frozen chunk.
pub const CHUNK: usize = 32;
/// Chunks per frozen page.
pub const PAGE: usize = 32;
const PAGE_ENTRIES: usize = CHUNK * PAGE;

type Chunk = Arc<[Entry]>;

/// A Raft log.
#[derive(Clone, Default)]
pub struct Log {
    /// Full pages, each exactly [`PAGE`] full chunks; never mutated once frozen.
    pages: Arc<Vec<Arc<Vec<Chunk>>>>,
    /// The open page: fewer than [`PAGE`] full chunks.
    page: Arc<Vec<Chunk>>,
    /// The entries after the full chunks (fewer than [`CHUNK`]).
    tail: Arc<Vec<Entry>>,
}

impl Log {
    pub fn new() -> Self {
        Self::default()
    }

    /// Index of the last entry (0 if empty).
    pub fn last_index(&self) -> u64 {
        (self.pages.len() * PAGE_ENTRIES + self.page.len() * CHUNK + self.tail.len()) as u64
    }

    /// Term of the last entry (0 if empty).
    pub fn last_term(&self) -> u64 {
        self.term(self.last_index()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.last_index() == 0
    }

    /// The chunk (or tail) holding `index` and the offset in it; `index` must be in the log.
    fn locate(&self, index: u64) -> (&[Entry], usize) {
        let i = (index - 1) as usize;
        let p = i / PAGE_ENTRIES;
        if p < self.pages.len() {
            let r = i % PAGE_ENTRIES;
            return (&self.pages[p][r / CHUNK], r % CHUNK);
        }
        let r = i - self.pages.len() * PAGE_ENTRIES;
        let c = r / CHUNK;
        if c < self.page.len() {
            (&self.page[c], r % CHUNK)
        } else {
            (&self.tail, r % CHUNK)
        }
    }

    /// The entry at `index` (1-based).
    pub fn get(&self, index: u64) -> Option<&Entry> {
        if index == 0 || index > self.last_index() {
            return None;
        }
        let (c, o) = self.locate(index);
        c.get(o)
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
            let full: Chunk = std::mem::take(tail).into();
            let page = Arc::make_mut(&mut self.page);
            page.push(full);
            if page.len() == PAGE {
                let full = std::mem::take(&mut self.page);
                Arc::make_mut(&mut self.pages).push(full);
            }
        }
    }

    /// Keeps entries `1..=len`, dropping the rest.
    pub fn truncate(&mut self, len: u64) {
        if len >= self.last_index() {
            return;
        }
        let len = len as usize;
        let p = len / PAGE_ENTRIES;
        if p < self.pages.len() {
            let r = len % PAGE_ENTRIES;
            let (c, o) = (r / CHUNK, r % CHUNK);
            let old = self.pages[p].clone();
            self.page = Arc::new(old[..c].to_vec());
            self.tail = Arc::new(old[c][..o].to_vec());
            Arc::make_mut(&mut self.pages).truncate(p);
            return;
        }
        let r = len - self.pages.len() * PAGE_ENTRIES;
        let (c, o) = (r / CHUNK, r % CHUNK);
        if c < self.page.len() {
            self.tail = Arc::new(self.page[c][..o].to_vec());
            Arc::make_mut(&mut self.page).truncate(c);
        } else {
            Arc::make_mut(&mut self.tail).truncate(o);
        }
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
        // Binary search for the first index whose term is >= t (terms never decrease).
        let (mut lo, mut hi) = (1u64, index);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.term(mid).unwrap_or(u64::MAX) >= t {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
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
        self.pages
            .iter()
            .flat_map(|p| p.iter())
            .chain(self.page.iter())
            .flat_map(|c| c.iter())
            .chain(self.tail.iter())
    }

    /// The first index at which `self` and `other` differ (`min(len) + 1` if one is a prefix of
    /// the other, `len + 1` if equal). Shared pages and chunks are skipped without comparing
    /// entries.
    pub fn first_difference(&self, other: &Log) -> u64 {
        let shared = self.pages.len().min(other.pages.len());
        let mut p = 0;
        while p < shared && Arc::ptr_eq(&self.pages[p], &other.pages[p]) {
            p += 1;
        }
        let mut idx = (p * PAGE_ENTRIES) as u64 + 1;
        let end = self.last_index().min(other.last_index());
        while idx <= end {
            let (a, oa) = self.locate(idx);
            let (b, ob) = other.locate(idx);
            if oa == 0 && ob == 0 && a.len() == CHUNK && std::ptr::eq(a, b) {
                idx += CHUNK as u64;
                continue;
            }
            if a[oa] != b[ob] {
                return idx;
            }
            idx += 1;
        }
        idx
    }

    /// Whether two logs share all their storage (a cheap "certainly equal").
    pub fn same_storage(&self, other: &Log) -> bool {
        Arc::ptr_eq(&self.pages, &other.pages)
            && Arc::ptr_eq(&self.page, &other.page)
            && Arc::ptr_eq(&self.tail, &other.tail)
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

    /// Against a plain `Vec` model: pushes, truncations at every level, clones kept alive.
    #[test]
    fn matches_a_vec_model() {
        let mut l = Log::new();
        let mut v: Vec<Entry> = Vec::new();
        let mut kept = Vec::new();
        let mut x = 12345u64;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut term = 1;
        for step in 0..20_000 {
            if rnd(100) < 3 && !v.is_empty() {
                let keep = rnd(v.len() as u64 + 1);
                l.truncate(keep);
                v.truncate(keep as usize);
                term += 1;
            } else {
                if rnd(50) == 0 {
                    term += 1;
                }
                l.push(e(term));
                v.push(e(term));
            }
            if step % 97 == 0 {
                kept.push((l.clone(), v.clone()));
            }
            assert_eq!(l.last_index(), v.len() as u64);
        }
        for (i, x) in v.iter().enumerate() {
            assert_eq!(l.get(i as u64 + 1), Some(x));
        }
        assert!(l.iter().eq(v.iter()));
        for (kl, kv) in &kept {
            assert!(kl.iter().eq(kv.iter()), "a saved clone changed");
            let d = kl.first_difference(&l);
            let model = kv.iter().zip(v.iter()).take_while(|(a, b)| a == b).count() as u64 + 1;
            assert_eq!(d, model);
        }
        for t in 0..=term + 1 {
            let last = v.iter().rposition(|x| x.term == t).map(|i| i as u64 + 1);
            assert_eq!(l.last_index_of_term(t), last);
        }
        let probe = v.len() as u64 / 2 + 1;
        let t = v[probe as usize - 1].term;
        let first = v.iter().position(|x| x.term == t).unwrap() as u64 + 1;
        assert_eq!(l.first_index_of_term_at(probe), first);
    }
}
