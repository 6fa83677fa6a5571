//! Versioned objects: dotted version vectors (DVV), siblings, last-write-wins and statebox
//! values.
//!
//! An [`Obj`] is what one replica stores for one key: a causal context (a version vector over
//! [`Actor`]s: every event the replica has seen) and the siblings it still considers current,
//! each tagged with the [`Dot`] of the write that created it. This is the DVV representation
//! of riak_kv 2.x (`dvv_enabled = true`, Preguiça et al. 2012): a write names exactly one new
//! event, so two concurrent writes through the same coordinator stay two siblings (plain
//! vnode vector clocks would make the second look like it descends from the first, the
//! "sibling explosion"/lost-update problem DVVs were introduced to fix).
//!
//! With `allow_mult = false` the same objects are resolved by last-write-wins: every put and
//! every merge keeps only the sibling with the highest coordinator timestamp [`Ts`], ignoring
//! causality (riak's `last_write_wins = true`).

use quorumlab_kv::{Datum, Value, ValueSet};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A timestamp from the coordinating node's own clock (virtual ns of its local clock, which
/// runs at the node's clock rate); the node id breaks ties.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Ts {
    pub t: u64,
    pub node: u32,
}

/// A DVV actor: a node and a per-key epoch. A node starts a new epoch for a key whenever it
/// starts coordinating writes on a local copy it did not hold in this incarnation (first
/// write, after a restart, after handing a fallback copy off), so a dot is never reused even
/// when a node loses or drops its copy (riak_kv's per-key epochs solve the same problem).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Actor {
    pub node: u32,
    pub epoch: u64,
}

/// One event: the `n`-th write coordinated by `actor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    pub actor: Actor,
    pub n: u64,
}

/// A version vector: for each actor, how many of its events are known.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VV(pub BTreeMap<Actor, u64>);

impl VV {
    pub fn get(&self, a: Actor) -> u64 {
        self.0.get(&a).copied().unwrap_or(0)
    }
    /// Whether the event `d` is known.
    pub fn covers(&self, d: &Dot) -> bool {
        self.get(d.actor) >= d.n
    }
    pub fn join(&mut self, o: &VV) {
        for (&a, &n) in &o.0 {
            let e = self.0.entry(a).or_insert(0);
            *e = (*e).max(n);
        }
    }
    pub fn add(&mut self, d: &Dot) {
        let e = self.0.entry(d.actor).or_insert(0);
        *e = (*e).max(d.n);
    }
    /// `self >= o` entry-wise.
    pub fn dominates(&self, o: &VV) -> bool {
        o.0.iter().all(|(&a, &n)| self.get(a) >= n)
    }
}

/// A statebox (Bob Ippolito, 2011): a value plus the queue of timestamped, repeatable
/// operations that produced it. The only operation here is "add element e" (set union),
/// for which `F(F(v)) = F(v)` and any two commute, so replaying a queue in timestamp order
/// onto any value that already reflects some of its operations is harmless.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Statebox {
    pub value: ValueSet,
    /// (timestamp, element added), sorted by timestamp.
    pub queue: BTreeSet<(Ts, Value)>,
    pub last_modified: Ts,
}

/// What pruning a queue removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Ops dropped because the queue was longer than `max_queue`.
    pub truncated: u64,
    /// Ops dropped because they were older than `expire`.
    pub expired: u64,
}

impl Statebox {
    /// `statebox:modify/3` followed by statebox_riak's `expire` and `truncate`: apply `add e`
    /// at time `ts`, queue it, then drop queued ops older than `last_modified - expire_ns`
    /// and all but the newest `max_queue`.
    pub fn modify(&mut self, ts: Ts, e: Value, max_queue: usize, expire_ns: u64) -> Pruned {
        self.value.insert(e);
        self.queue.insert((ts, e));
        self.last_modified = ts;
        let mut p = Pruned::default();
        let horizon = ts.t.saturating_sub(expire_ns);
        let before = self.queue.len();
        self.queue.retain(|(t, _)| t.t >= horizon);
        p.expired = (before - self.queue.len()) as u64;
        while self.queue.len() > max_queue {
            self.queue.pop_first();
            p.truncated += 1;
        }
        p
    }

    /// `statebox:merge/1`: take the newest statebox's value and apply the union of every
    /// queue, in timestamp order. Returns the merged statebox and the number of elements that
    /// some input's value held but the result does not: operations that were pruned from a
    /// queue before another replica needed them (statebox's documented way to lose data).
    pub fn merge<'a>(boxes: impl IntoIterator<Item = &'a Statebox>) -> (Statebox, u64) {
        let boxes: Vec<&Statebox> = boxes.into_iter().collect();
        let Some(newest) = boxes.iter().copied().max_by(|a, b| {
            (a.last_modified, &a.value, &a.queue).cmp(&(b.last_modified, &b.value, &b.queue))
        }) else {
            return (Statebox::default(), 0);
        };
        let queue: BTreeSet<(Ts, Value)> =
            boxes.iter().flat_map(|b| b.queue.iter().copied()).collect();
        let mut value = newest.value.clone();
        for &(_, e) in &queue {
            value.insert(e);
        }
        let seen: BTreeSet<Value> = boxes.iter().flat_map(|b| b.value.iter().copied()).collect();
        let lost = seen.difference(&value).count() as u64;
        (
            Statebox {
                value,
                queue,
                last_modified: newest.last_modified,
            },
            lost,
        )
    }

    fn bytes(&self) -> usize {
        16 + 8 * self.value.len() + 24 * self.queue.len()
    }
}

/// A sibling's value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Val {
    /// A register value.
    Reg(Value),
    /// A delete (riak keeps tombstones: `delete_mode = keep`).
    Tomb,
    /// A set-valued key's statebox.
    Set(Statebox),
}

/// A sibling: the coordinator's timestamp and the value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Sib {
    pub ts: Ts,
    pub val: Val,
}

/// One replica's object for one key.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Obj {
    /// Every event this object has seen (its siblings' dots included).
    pub ctx: VV,
    /// The current siblings, by the dot of the write that created each.
    pub sibs: BTreeMap<Dot, Sib>,
}

/// What a read shows of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub datum: Option<Datum>,
    /// Elements lost by an early prune, detected while merging statebox siblings.
    pub lost: u64,
}

impl Obj {
    /// The next dot of `actor` on this object.
    pub fn next_dot(&self, actor: Actor) -> Dot {
        Dot {
            actor,
            n: self.ctx.get(actor) + 1,
        }
    }

    /// A write with client context `ctx` (what the writer had read) creating sibling `sib`
    /// with the fresh dot `dot`. DVV: drops the siblings the writer had seen; keeps the
    /// concurrent ones. LWW: keeps the newest by timestamp.
    pub fn put(&mut self, ctx: &VV, dot: Dot, sib: Sib, lww: bool) {
        if !lww {
            self.sibs.retain(|d, _| !ctx.covers(d));
        }
        self.ctx.join(ctx);
        self.ctx.add(&dot);
        self.sibs.insert(dot, sib);
        if lww {
            self.lww_reduce();
        }
    }

    /// Merges another replica's object into this one (DVV `sync`): a sibling survives if the
    /// other side also has it or has not seen its dot. Commutative, associative, idempotent.
    pub fn merge(&mut self, o: &Obj, lww: bool) {
        if lww {
            for (d, s) in &o.sibs {
                self.sibs.entry(*d).or_insert_with(|| s.clone());
            }
            self.ctx.join(&o.ctx);
            self.lww_reduce();
            return;
        }
        let mut sibs = BTreeMap::new();
        for (d, s) in &self.sibs {
            if o.sibs.contains_key(d) || !o.ctx.covers(d) {
                sibs.insert(*d, s.clone());
            }
        }
        for (d, s) in &o.sibs {
            if !sibs.contains_key(d) && (self.sibs.contains_key(d) || !self.ctx.covers(d)) {
                sibs.insert(*d, s.clone());
            }
        }
        self.ctx.join(&o.ctx);
        self.sibs = sibs;
    }

    /// Keeps only the sibling with the highest (timestamp, dot).
    fn lww_reduce(&mut self) {
        if self.sibs.len() > 1 {
            let best = self
                .sibs
                .iter()
                .max_by_key(|(d, s)| (s.ts, **d))
                .map(|(d, s)| (*d, s.clone()))
                .expect("non-empty");
            self.sibs.clear();
            self.sibs.insert(best.0, best.1);
        }
    }

    /// Whether this object knows everything `o` knows (merging `o` in would change nothing).
    /// Computed without merging: the context must dominate, and (DVV) the merge must neither
    /// drop one of our siblings nor add one of theirs; (LWW) our only sibling must be the
    /// newest of both.
    pub fn descends(&self, o: &Obj, lww: bool) -> bool {
        if !self.ctx.dominates(&o.ctx) {
            return false;
        }
        if lww {
            let newest = self
                .sibs
                .iter()
                .chain(o.sibs.iter())
                .max_by_key(|(d, s)| (s.ts, **d))
                .map(|(d, _)| *d);
            return match newest {
                None => true,
                Some(d) => self.sibs.len() == 1 && self.sibs.contains_key(&d),
            };
        }
        self.sibs
            .keys()
            .all(|d| o.sibs.contains_key(d) || !o.ctx.covers(d))
            && o.sibs
                .keys()
                .all(|d| self.sibs.contains_key(d) || self.ctx.covers(d))
    }

    /// The statebox of a set-valued key: every statebox sibling merged. `None` if no sibling
    /// is a statebox.
    pub fn statebox(&self) -> Option<(Statebox, u64)> {
        let boxes: Vec<&Statebox> = self
            .sibs
            .values()
            .filter_map(|s| match &s.val {
                Val::Set(b) => Some(b),
                _ => None,
            })
            .collect();
        (!boxes.is_empty()).then(|| Statebox::merge(boxes))
    }

    /// The latest sibling by (timestamp, dot).
    pub fn latest(&self) -> Option<&Sib> {
        self.sibs
            .iter()
            .max_by_key(|(d, s)| (s.ts, **d))
            .map(|(_, s)| s)
    }

    /// What a read returns: a set key's siblings merged as stateboxes (the sorted set); a
    /// register key's latest sibling by coordinator timestamp (absent for a tombstone).
    pub fn view(&self) -> View {
        if let Some((b, lost)) = self.statebox() {
            return View {
                datum: Some(Datum::Set(b.value)),
                lost,
            };
        }
        let datum = match self.latest().map(|s| &s.val) {
            Some(Val::Reg(v)) => Some(Datum::Reg(*v)),
            _ => None,
        };
        View { datum, lost: 0 }
    }

    /// Approximate encoded size.
    pub fn bytes(&self) -> usize {
        16 * self.ctx.0.len()
            + self
                .sibs
                .values()
                .map(|s| {
                    40 + match &s.val {
                        Val::Set(b) => b.bytes(),
                        _ => 8,
                    }
                })
                .sum::<usize>()
    }
}

/// Views of an optional object (absent = never written).
pub fn view_of(o: Option<&Obj>) -> View {
    o.map_or(
        View {
            datum: None,
            lost: 0,
        },
        Obj::view,
    )
}
