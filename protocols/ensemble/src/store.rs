//! Durable state: per peer, the saved fact and the local backend (objects) with the
//! integrity tree's record of each key's version.
//!
//! Saving must stay cheap for millions of simulated events: the simulator's `Save` replaces the
//! node's whole storage, so the storage is a vector of `Arc`s (one per hosted peer), and each
//! peer's objects live in a small persistent trie of `Arc`ed nodes. A write copies one path of
//! the trie (the previous storage still shares the rest) and a save clones one `Arc` per
//! hosted peer.

use crate::msg::{Ens, Fact, Obj, Version};
use quorumlab_kv::layout::ring_hash;
use quorumlab_kv::Key;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Fan-out of each level of a peer store (three levels: 4096 leaves).
pub const FAN: usize = 16;

/// What a peer keeps about one key: the backend object (riak's basic backend) and the
/// version its integrity tree records (riak's synctree, reduced to key → version).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rec {
    pub obj: Option<Obj>,
    pub known: Option<Version>,
}

type Leaf = BTreeMap<Key, Rec>;
type Mid = Vec<Arc<Leaf>>;
type Top = Vec<Arc<Mid>>;

/// A peer's key → record map: a three-level trie of `Arc`ed nodes (16 × 16 × 16 leaves,
/// each a small map), allocated on first use. A write copies one path (three 16-entry
/// vectors and one leaf) instead of the whole map, so saving after every write stays cheap
/// however many keys a peer holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Store {
    root: Vec<Arc<Top>>,
}

fn slots(key: Key) -> (usize, usize, usize) {
    let h = ring_hash(u64::from(key.0)) as usize;
    (h % FAN, (h / FAN) % FAN, (h / (FAN * FAN)) % FAN)
}

impl Store {
    pub fn get(&self, key: Key) -> Rec {
        let (a, b, c) = slots(key);
        self.root
            .get(a)
            .and_then(|t| t.get(b))
            .and_then(|m| m.get(c))
            .and_then(|l| l.get(&key).cloned())
            .unwrap_or_default()
    }

    fn entry(&mut self, key: Key) -> &mut Rec {
        let (a, b, c) = slots(key);
        if self.root.is_empty() {
            self.root = (0..FAN).map(|_| Arc::new(Vec::new())).collect();
        }
        let top = Arc::make_mut(&mut self.root[a]);
        if top.is_empty() {
            *top = (0..FAN).map(|_| Arc::new(Vec::new())).collect();
        }
        let mid = Arc::make_mut(&mut top[b]);
        if mid.is_empty() {
            *mid = (0..FAN).map(|_| Arc::new(BTreeMap::new())).collect();
        }
        Arc::make_mut(&mut mid[c]).entry(key).or_default()
    }

    /// The backend stores `obj`.
    pub fn put_obj(&mut self, key: Key, obj: Obj) {
        self.entry(key).obj = Some(obj);
    }

    /// The tree records `version` for `key`.
    pub fn set_known(&mut self, key: Key, version: Version) {
        self.entry(key).known = Some(version);
    }

    /// Every record (in trie order; for tests and inspection).
    pub fn iter(&self) -> impl Iterator<Item = (Key, Rec)> + '_ {
        self.root
            .iter()
            .flat_map(|t| t.iter())
            .flat_map(|m| m.iter())
            .flat_map(|l| l.iter().map(|(k, r)| (*k, r.clone())))
    }

    pub fn len(&self) -> usize {
        self.root
            .iter()
            .flat_map(|t| t.iter())
            .flat_map(|m| m.iter())
            .map(|l| l.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The durable state of one peer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerDurable {
    pub ens: Ens,
    /// The last saved fact (`None`: never saved; loads as epoch 0, seq 0, no leader).
    pub fact: Option<Fact>,
    pub data: Store,
}

impl PeerDurable {
    pub fn new(ens: Ens) -> Self {
        PeerDurable {
            ens,
            fact: None,
            data: Store::default(),
        }
    }
}

/// The durable state of a node (the actor's `Storage`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeDurable {
    /// Incarnation counter, so request ids never repeat across restarts.
    pub boot: u64,
    /// One entry per hosted peer, sorted by ensemble.
    pub peers: Vec<Arc<PeerDurable>>,
}
