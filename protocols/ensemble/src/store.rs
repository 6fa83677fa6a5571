//! Durable state: per peer, the saved fact and the local backend (objects) with the
//! integrity tree's record of each key's version.
//!
//! Saving must stay cheap for millions of simulated events: the simulator's `Save` replaces the
//! node's whole storage, so the storage is a vector of `Arc`s (one per hosted peer), and each
//! peer's objects are split into `BUCKETS` `Arc`ed maps. A write clones one small bucket (the
//! previous storage still shares the old one) and a save clones one `Arc` per hosted peer.

use crate::msg::{Ens, Fact, Obj, Version};
use quorumlab_kv::Key;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Buckets per peer store.
pub const BUCKETS: usize = 16;

/// What a peer keeps about one key: the backend object (riak's basic backend) and the
/// version its integrity tree records (riak's synctree, reduced to key → version).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rec {
    pub obj: Option<Obj>,
    pub known: Option<Version>,
}

/// A peer's key → record map, bucketed for cheap copy-on-write.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Store {
    buckets: Vec<Arc<BTreeMap<Key, Rec>>>,
}

impl Store {
    fn bucket(key: Key) -> usize {
        key.0 as usize % BUCKETS
    }

    pub fn get(&self, key: Key) -> Rec {
        self.buckets
            .get(Self::bucket(key))
            .and_then(|b| b.get(&key).copied())
            .unwrap_or_default()
    }

    fn entry(&mut self, key: Key) -> &mut Rec {
        if self.buckets.is_empty() {
            self.buckets = (0..BUCKETS).map(|_| Arc::new(BTreeMap::new())).collect();
        }
        Arc::make_mut(&mut self.buckets[Self::bucket(key)])
            .entry(key)
            .or_default()
    }

    /// The backend stores `obj`.
    pub fn put_obj(&mut self, key: Key, obj: Obj) {
        self.entry(key).obj = Some(obj);
    }

    /// The tree records `version` for `key`.
    pub fn set_known(&mut self, key: Key, version: Version) {
        self.entry(key).known = Some(version);
    }

    /// Every record, in key order within buckets (for tests and inspection).
    pub fn iter(&self) -> impl Iterator<Item = (Key, Rec)> + '_ {
        self.buckets
            .iter()
            .flat_map(|b| b.iter().map(|(k, r)| (*k, *r)))
    }

    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.len()).sum()
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
