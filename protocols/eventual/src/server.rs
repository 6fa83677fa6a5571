//! The server actor: every node is a replica for the keys whose preference list holds it, a
//! fallback for others, and a coordinator for any request a client sends it.
//!
//! * Get (riak_kv_get_fsm): read the local copy and ask the other replicas; answer after R
//!   replies with the merged object's view and causal context; when every replica has
//!   answered (or the request expires), push the merged object to replicas that answered
//!   with less (read repair).
//! * Put (riak_kv_put_fsm with the coordinating vnode): apply the write to the local copy
//!   (a new DVV dot of this node's actor), save, send the whole object to the other
//!   replicas, answer after W acknowledgements (the coordinator's own write counts).
//! * Add: a read phase as Get, then a put of the merged statebox with the element added.
//! * Sloppy quorum: a replica that has not answered within `sloppy_timeout` (or is already
//!   suspected) is replaced by the next node on the ring that is neither a replica nor
//!   suspected; that fallback stores the copy with a hint naming the primary.
//! * Hinted handoff: every `handoff_interval`, each node offers its hinted copies to their
//!   primaries; a copy is dropped once every primary it stands in for has acknowledged it
//!   unchanged.

use crate::msg::{Msg, PutVal, Reply, Timer, Why};
use crate::object::{view_of, Actor, Obj, Sib, Ts, Val, VV};
use crate::params::Cfg;
use quorumlab_kv::{Datum, Key, KvServer, Leadership, Value};
use stateright::actor::{Actor as SrActor, Id, Out};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A node's local clock, as the host sets it before each event (the simulator: the node's
/// local clock, which runs at its clock rate; a real runtime: the OS clock). Not part of the
/// actor state; under the model checker it stays 0 and timestamps tie, broken by node id.
#[derive(Clone, Debug, Default)]
pub struct Clock(Arc<AtomicU64>);

impl Clock {
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    pub fn set(&self, t: u64) {
        self.0.store(t, Ordering::Relaxed)
    }
}

/// The server actor.
#[derive(Clone, Debug)]
pub struct Server {
    pub cfg: Arc<Cfg>,
    pub clock: Clock,
}

/// One stored copy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stored {
    pub obj: Obj,
    /// The primaries this copy stands in for (empty on a primary): hinted handoff sends it
    /// to each of them.
    pub hints: BTreeSet<Id>,
}

/// What survives a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Durable {
    /// Restarts so far (part of coordinator request ids).
    pub boots: u64,
    /// The next DVV actor epoch to hand out (bumped on every start, so an epoch whose save
    /// was lost in a crash is never reused).
    pub next_epoch: u64,
    /// One `Arc` per key: a save (the simulator keeps the whole storage) clones pointers, not
    /// objects.
    pub data: BTreeMap<Key, Arc<Stored>>,
}

/// Counters of what the protocol did and lost (volatile: they restart at 0 on a restart).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Elements that a statebox sibling held but the statebox merge did not reproduce,
    /// because the operation that added them had been pruned from every queue:
    /// statebox's data loss, seen when a read or an add merges siblings.
    pub statebox_lost: u64,
    /// Queued ops dropped by `max_queue`.
    pub pruned_truncated: u64,
    /// Queued ops dropped by `expire_ms`.
    pub pruned_expired: u64,
    /// Writes this node coordinated that lost at once to a sibling with a later timestamp
    /// (last-write-wins mode only): acknowledged, never visible.
    pub lww_stale_writes: u64,
    /// Most siblings seen in one object read.
    pub max_siblings: u64,
    /// Fallback copies stored (writes to this node as a stand-in for a primary).
    pub hinted_writes: u64,
    /// Hinted copies acknowledged by a primary.
    pub handoffs: u64,
    /// Read-repair puts sent.
    pub read_repairs: u64,
    /// Replicas replaced by a fallback (sloppy quorum).
    pub sloppy_substitutions: u64,
}

/// A coordinator request's target: which node, which primary it stands in for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub hint: Option<Id>,
    /// Read phase: the reply (`Some(None)` = notfound). Write phase: `Some(_)` = acked.
    pub reply: Option<Option<Obj>>,
    /// Gave up on it (suspected).
    pub dropped: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FsmOp {
    Get,
    Put { ctx: VV, val: PutVal },
    Add(Value),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    Read,
    Write,
}

/// A coordinator request in progress (riak's get/put FSM).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fsm {
    pub client: Id,
    pub id: u64,
    pub key: Key,
    pub op: FsmOp,
    pub phase: Phase,
    pub targets: BTreeMap<Id, Target>,
    /// Replies (read) or acks (write), the coordinator's own included.
    pub count: usize,
    /// The coordinator's own copy is counted in `count` (it is a replica or stands in for a
    /// suspected one).
    pub me_counts: bool,
    /// Read phase: the coordinator's own copy and every reply merged.
    pub merged: Obj,
    /// The coordinator's own copy as read (for read repair).
    pub local: Option<Obj>,
    /// The client has its answer.
    pub answered: bool,
}

/// A node's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeSt {
    pub me: Id,
    pub dur: Durable,
    /// The DVV actor epoch this node writes with, per key, in this incarnation (dropped with
    /// a dropped copy; empty after a restart).
    pub actors: BTreeMap<Key, u64>,
    /// Nodes suspected down (no answer within `sloppy_timeout`); cleared by any message from
    /// them.
    pub down: BTreeSet<Id>,
    pub fsms: BTreeMap<u64, Fsm>,
    pub next_rid: u64,
    pub stats: Stats,
}

impl NodeSt {
    /// This node's copy of `key`.
    pub fn obj(&self, key: Key) -> Option<&Obj> {
        self.dur.data.get(&key).map(|s| &s.obj)
    }
    /// What a read of this node's copy alone would show.
    pub fn local_view(&self, key: Key) -> Option<Datum> {
        view_of(self.obj(key)).datum
    }
}

fn node_u32(id: Id) -> u32 {
    usize::from(id) as u32
}

impl Server {
    fn lww(&self) -> bool {
        self.cfg.lww
    }

    fn ts(&self, st: &NodeSt) -> Ts {
        Ts {
            t: self.clock.now(),
            node: node_u32(st.me),
        }
    }

    fn is_server(&self, id: Id) -> bool {
        usize::from(id) < self.cfg.nodes
    }

    /// Merges `obj` into the local copy of `key`; `hint`: the copy stands in for a primary.
    /// Returns whether anything changed (the caller saves).
    fn store(&self, st: &mut NodeSt, key: Key, obj: &Obj, hint: Option<Id>) -> bool {
        let primary = self.cfg.is_primary(key, st.me);
        let lww = self.lww();
        let prims = self.cfg.primaries(key);
        if let Some(s) = st.dur.data.get(&key) {
            let hinted = primary
                || match hint {
                    Some(h) => s.hints.contains(&h),
                    None => prims.iter().all(|p| s.hints.contains(p)),
                };
            if hinted && s.obj.descends(obj, lww) {
                // Nothing new: no copy-on-write of the stored object, no save.
                return false;
            }
        }
        let s = Arc::make_mut(st.dur.data.entry(key).or_default());
        s.obj.merge(obj, lww);
        if !primary {
            match hint {
                Some(h) => {
                    s.hints.insert(h);
                }
                None => s.hints.extend(prims.iter().copied()),
            }
            st.stats.hinted_writes += 1;
        }
        true
    }

    fn save(&self, st: &NodeSt, o: &mut Out<Self>) {
        o.save(st.dur.clone());
    }

    /// The replicas to contact for `key` besides this node: the primaries, a suspected one
    /// replaced by the next unsuspected fallback (sloppy quorum). A coordinator that is not a
    /// primary stands in for the first suspected primary itself. Returns the targets and the
    /// hints of the coordinator's own copy.
    fn plan(&self, st: &NodeSt, key: Key) -> (BTreeMap<Id, Target>, Option<Id>) {
        let me = st.me;
        let prims = self.cfg.primaries(key);
        let mut fallbacks = self.cfg.ring_order(key)[self.cfg.n..]
            .iter()
            .copied()
            .filter(|f| *f != me && !st.down.contains(f))
            .collect::<Vec<_>>()
            .into_iter();
        let mut me_used = prims.contains(&me);
        let mut my_hint = None;
        let mut targets = BTreeMap::new();
        for &p in prims {
            if p == me {
                continue;
            }
            let target = if !self.cfg.sloppy || !st.down.contains(&p) {
                Some((p, None))
            } else if !me_used {
                me_used = true;
                my_hint = Some(p);
                None
            } else {
                fallbacks.next().map(|f| (f, Some(p)))
            };
            if let Some((t, hint)) = target {
                targets.insert(
                    t,
                    Target {
                        hint,
                        reply: None,
                        dropped: false,
                    },
                );
            }
        }
        (targets, my_hint)
    }

    /// The next fallback for a dropped target standing in for `primary`.
    fn replacement(&self, st: &NodeSt, fsm: &Fsm) -> Option<Id> {
        self.cfg.ring_order(fsm.key)[self.cfg.n..]
            .iter()
            .copied()
            .find(|f| *f != st.me && !st.down.contains(f) && !fsm.targets.contains_key(f))
    }

    /// This node's DVV actor for `key`, starting a new epoch if it has none.
    fn actor(&self, st: &mut NodeSt, key: Key) -> Actor {
        let epoch = match st.actors.get(&key) {
            Some(&e) => e,
            None => {
                let e = st.dur.next_epoch;
                st.dur.next_epoch += 1;
                st.actors.insert(key, e);
                e
            }
        };
        Actor {
            node: node_u32(st.me),
            epoch,
        }
    }

    fn answer(&self, fsm: &mut Fsm, msg: Msg, o: &mut Out<Self>) {
        if !fsm.answered {
            fsm.answered = true;
            o.send(fsm.client, msg);
        }
    }

    fn begin(&self, st: &mut NodeSt, client: Id, id: u64, key: Key, op: FsmOp, o: &mut Out<Self>) {
        let rid = (st.dur.boots << 32) | st.next_rid;
        st.next_rid += 1;
        let phase = match op {
            FsmOp::Put { .. } => Phase::Write,
            _ => Phase::Read,
        };
        let mut fsm = Fsm {
            client,
            id,
            key,
            op,
            phase,
            targets: BTreeMap::new(),
            count: 0,
            me_counts: false,
            merged: Obj::default(),
            local: None,
            answered: false,
        };
        o.set_timer(
            Timer::Expire(rid),
            self.cfg.request_timeout..self.cfg.request_timeout,
        );
        match phase {
            Phase::Read => self.start_read(st, rid, &mut fsm, o),
            Phase::Write => self.start_write(st, rid, &mut fsm, o),
        }
        if !self.finished(&fsm) {
            st.fsms.insert(rid, fsm);
        } else {
            o.cancel_timer(Timer::Sloppy(rid));
            o.cancel_timer(Timer::Expire(rid));
        }
    }

    fn arm_sloppy(&self, rid: u64, o: &mut Out<Self>) {
        let t = self.cfg.sloppy_timeout;
        o.set_timer(Timer::Sloppy(rid), t..t);
    }

    fn start_read(&self, st: &mut NodeSt, rid: u64, fsm: &mut Fsm, o: &mut Out<Self>) {
        let (targets, my_hint) = self.plan(st, fsm.key);
        fsm.local = st.obj(fsm.key).cloned();
        fsm.merged = fsm.local.clone().unwrap_or_default();
        // The coordinator's own copy counts toward R if it is a replica: a primary, a
        // stand-in for a suspected primary, or a node holding a (hinted) copy. A node outside
        // the preference list with nothing stored is not a replica.
        let replica =
            self.cfg.is_primary(fsm.key, st.me) || my_hint.is_some() || fsm.local.is_some();
        fsm.me_counts = replica;
        fsm.count = usize::from(replica);
        fsm.targets = targets;
        for &t in fsm.targets.keys() {
            o.send(t, Msg::RGet { rid, key: fsm.key });
        }
        self.arm_sloppy(rid, o);
        self.read_progress(st, rid, fsm, o);
    }

    /// After a read reply (or at the start): answer at R; go on to the write phase of an add.
    fn read_progress(&self, st: &mut NodeSt, rid: u64, fsm: &mut Fsm, o: &mut Out<Self>) {
        if fsm.phase != Phase::Read || fsm.count < self.cfg.r || fsm.answered {
            return;
        }
        st.stats.max_siblings = st.stats.max_siblings.max(fsm.merged.sibs.len() as u64);
        match fsm.op.clone() {
            FsmOp::Get => {
                let v = fsm.merged.view();
                st.stats.statebox_lost += v.lost;
                let msg = Msg::GetOk {
                    id: fsm.id,
                    datum: v.datum,
                    ctx: fsm.merged.ctx.clone(),
                };
                self.answer(fsm, msg, o);
            }
            FsmOp::Add(elem) => {
                if fsm
                    .merged
                    .sibs
                    .values()
                    .any(|s| matches!(s.val, Val::Reg(_)))
                    && fsm.merged.statebox().is_none()
                {
                    let id = fsm.id;
                    self.answer(
                        fsm,
                        Msg::Done {
                            id,
                            reply: Reply::Precondition,
                        },
                        o,
                    );
                    return;
                }
                let (mut b, lost) = fsm.merged.statebox().unwrap_or_default();
                st.stats.statebox_lost += lost;
                let ts = self.ts(st);
                let p = b.modify(ts, elem, self.cfg.max_queue, self.cfg.expire_ns);
                st.stats.pruned_truncated += p.truncated;
                st.stats.pruned_expired += p.expired;
                let ctx = fsm.merged.ctx.clone();
                let merged = std::mem::take(&mut fsm.merged);
                fsm.phase = Phase::Write;
                self.write_local(
                    st,
                    fsm.key,
                    Some(&merged),
                    &ctx,
                    Sib {
                        ts,
                        val: Val::Set(b),
                    },
                    o,
                );
                self.send_write(st, rid, fsm, o);
            }
            FsmOp::Put { .. } => {}
        }
    }

    /// The coordinating replica's write: merge what was read, add the new sibling under a
    /// fresh dot, save.
    fn write_local(
        &self,
        st: &mut NodeSt,
        key: Key,
        read: Option<&Obj>,
        ctx: &VV,
        sib: Sib,
        o: &mut Out<Self>,
    ) {
        let actor = self.actor(st, key);
        let lww = self.lww();
        let (_, my_hint) = self.plan(st, key);
        let mut obj = st.obj(key).cloned().unwrap_or_default();
        if let Some(r) = read {
            obj.merge(r, lww);
        }
        let dot = obj.next_dot(actor);
        obj.put(ctx, dot, sib, lww);
        if lww && !obj.sibs.contains_key(&dot) {
            st.stats.lww_stale_writes += 1;
        }
        self.store(st, key, &obj, my_hint);
        self.save(st, o);
    }

    fn send_write(&self, st: &mut NodeSt, rid: u64, fsm: &mut Fsm, o: &mut Out<Self>) {
        let (targets, my_hint) = self.plan(st, fsm.key);
        fsm.targets = targets;
        // The coordinator's own write counts toward W if it is a primary or stands in for a
        // suspected one; otherwise its copy is an extra hinted copy (handed off and dropped
        // later) and W acknowledgements must come from the preference list.
        fsm.me_counts = self.cfg.is_primary(fsm.key, st.me) || my_hint.is_some();
        fsm.count = usize::from(fsm.me_counts);
        let obj = st.obj(fsm.key).cloned().unwrap_or_default();
        for (&t, tg) in &fsm.targets {
            o.send(
                t,
                Msg::RPut {
                    rid,
                    key: fsm.key,
                    obj: obj.clone(),
                    hint: tg.hint,
                    why: Why::Write,
                },
            );
        }
        self.arm_sloppy(rid, o);
        self.write_progress(fsm, o);
    }

    fn start_write(&self, st: &mut NodeSt, rid: u64, fsm: &mut Fsm, o: &mut Out<Self>) {
        let FsmOp::Put { ctx, val } = fsm.op.clone() else {
            return;
        };
        let ts = self.ts(st);
        let val = match val {
            PutVal::Reg(v) => Val::Reg(v),
            PutVal::Tomb => Val::Tomb,
        };
        self.write_local(st, fsm.key, None, &ctx, Sib { ts, val }, o);
        self.send_write(st, rid, fsm, o);
    }

    fn write_progress(&self, fsm: &mut Fsm, o: &mut Out<Self>) {
        if fsm.phase == Phase::Write && fsm.count >= self.cfg.w {
            let id = fsm.id;
            self.answer(
                fsm,
                Msg::Done {
                    id,
                    reply: Reply::Ok,
                },
                o,
            );
        }
    }

    /// Every live target has answered and the client has its answer.
    fn finished(&self, fsm: &Fsm) -> bool {
        fsm.answered && fsm.targets.values().all(|t| t.dropped || t.reply.is_some())
    }

    /// Read repair: push the merged object to every replica that answered with less.
    fn read_repair(&self, st: &mut NodeSt, rid: u64, fsm: &Fsm, o: &mut Out<Self>) {
        if fsm.phase != Phase::Read || !self.cfg.read_repair {
            return;
        }
        let lww = self.lww();
        let merged = &fsm.merged;
        for (&t, tg) in &fsm.targets {
            if let Some(reply) = &tg.reply {
                let stale = match reply {
                    Some(r) => !r.descends(merged, lww),
                    None => !merged.sibs.is_empty() || merged.ctx != VV::default(),
                };
                if stale {
                    st.stats.read_repairs += 1;
                    o.send(
                        t,
                        Msg::RPut {
                            rid,
                            key: fsm.key,
                            obj: merged.clone(),
                            hint: tg.hint,
                            why: Why::ReadRepair,
                        },
                    );
                }
            }
        }
        // The coordinator's own copy, if it keeps one.
        let keeps = st.dur.data.contains_key(&fsm.key) || self.cfg.is_primary(fsm.key, st.me);
        let has_news = fsm
            .local
            .as_ref()
            .map_or(!merged.sibs.is_empty(), |l| !l.descends(merged, lww));
        if keeps && has_news {
            let (_, my_hint) = self.plan(st, fsm.key);
            if self.store(st, fsm.key, merged, my_hint) {
                self.save(st, o);
            }
        }
    }

    fn end(&self, st: &mut NodeSt, rid: u64, o: &mut Out<Self>) {
        if let Some(fsm) = st.fsms.remove(&rid) {
            self.read_repair(st, rid, &fsm, o);
        }
        o.cancel_timer(Timer::Sloppy(rid));
        o.cancel_timer(Timer::Expire(rid));
    }

    fn with_fsm(
        &self,
        st: &mut NodeSt,
        rid: u64,
        o: &mut Out<Self>,
        f: impl FnOnce(&Self, &mut NodeSt, &mut Fsm, &mut Out<Self>),
    ) {
        let Some(mut fsm) = st.fsms.remove(&rid) else {
            return;
        };
        f(self, st, &mut fsm, o);
        let done = self.finished(&fsm);
        st.fsms.insert(rid, fsm);
        if done {
            self.end(st, rid, o);
        }
    }

    fn on_sloppy(&self, st: &mut NodeSt, rid: u64, o: &mut Out<Self>) {
        self.with_fsm(st, rid, o, |s, st, fsm, o| {
            let silent: Vec<Id> = fsm
                .targets
                .iter()
                .filter(|(_, t)| !t.dropped && t.reply.is_none())
                .map(|(&id, _)| id)
                .collect();
            if silent.is_empty() {
                return;
            }
            let mut sent = false;
            let mut stood_in = false;
            for t in silent {
                st.down.insert(t);
                let tg = fsm.targets.get_mut(&t).expect("target");
                tg.dropped = true;
                let primary = tg.hint.unwrap_or(t);
                // A write keeps looking for N copies even once answered (a fallback keeps
                // the copy for the primary); a read only while the client still waits.
                if !s.cfg.sloppy || (fsm.answered && fsm.phase == Phase::Read) {
                    continue;
                }
                // The coordinator itself is the nearest fallback (its write phase already
                // stored a copy hinted for every primary).
                if !fsm.me_counts {
                    fsm.me_counts = true;
                    fsm.count += 1;
                    stood_in = true;
                    st.stats.sloppy_substitutions += 1;
                    continue;
                }
                let Some(f) = s.replacement(st, fsm) else {
                    continue;
                };
                st.stats.sloppy_substitutions += 1;
                fsm.targets.insert(
                    f,
                    Target {
                        hint: Some(primary),
                        reply: None,
                        dropped: false,
                    },
                );
                let msg = match fsm.phase {
                    Phase::Read => Msg::RGet { rid, key: fsm.key },
                    Phase::Write => Msg::RPut {
                        rid,
                        key: fsm.key,
                        obj: st.obj(fsm.key).cloned().unwrap_or_default(),
                        hint: Some(primary),
                        why: Why::Write,
                    },
                };
                o.send(f, msg);
                sent = true;
            }
            if sent {
                s.arm_sloppy(rid, o);
            }
            if stood_in {
                match fsm.phase {
                    Phase::Read => s.read_progress(st, rid, fsm, o),
                    Phase::Write => s.write_progress(fsm, o),
                }
            }
        });
    }

    fn on_expire(&self, st: &mut NodeSt, rid: u64, o: &mut Out<Self>) {
        let Some(fsm) = st.fsms.get_mut(&rid) else {
            return;
        };
        let msg = match (&fsm.op, fsm.phase) {
            (FsmOp::Get, _) => Msg::GetFail { id: fsm.id },
            (_, Phase::Read) => Msg::Done {
                id: fsm.id,
                reply: Reply::Unavailable,
            },
            (_, Phase::Write) => Msg::Done {
                id: fsm.id,
                reply: Reply::Timeout,
            },
        };
        self.answer(fsm, msg, o);
        self.end(st, rid, o);
    }

    fn on_handoff_tick(&self, st: &mut NodeSt, o: &mut Out<Self>) {
        for (&key, s) in &st.dur.data {
            for &h in &s.hints {
                o.send(
                    h,
                    Msg::Handoff {
                        key,
                        obj: s.obj.clone(),
                    },
                );
            }
        }
        for &d in &st.down {
            o.send(d, Msg::Ping);
        }
        let t = self.cfg.handoff_interval;
        o.set_timer(Timer::Handoff, t..t + t / 2);
    }
}

impl SrActor for Server {
    type Msg = Msg;
    type Timer = Timer;
    type State = NodeSt;
    type Storage = Durable;
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<Durable>, o: &mut Out<Self>) -> NodeSt {
        let mut dur = storage.clone().unwrap_or_default();
        dur.boots += 1;
        dur.next_epoch += 1;
        o.save(dur.clone());
        let t = self.cfg.handoff_interval;
        o.set_timer(Timer::Handoff, t..t + t / 2);
        NodeSt {
            me: id,
            dur,
            actors: BTreeMap::new(),
            down: BTreeSet::new(),
            fsms: BTreeMap::new(),
            next_rid: 0,
            stats: Stats::default(),
        }
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<NodeSt>, src: Id, msg: Msg, o: &mut Out<Self>) {
        let st = state.to_mut();
        if self.is_server(src) {
            st.down.remove(&src);
        }
        match msg {
            Msg::Get { id, key } => self.begin(st, src, id, key, FsmOp::Get, o),
            Msg::Put { id, key, ctx, val } => {
                self.begin(st, src, id, key, FsmOp::Put { ctx, val }, o)
            }
            Msg::Add { id, key, elem } => self.begin(st, src, id, key, FsmOp::Add(elem), o),
            Msg::RGet { rid, key } => {
                let obj = st.obj(key).cloned();
                o.send(src, Msg::RGetResp { rid, key, obj });
            }
            Msg::RGetResp { rid, obj, .. } => {
                let lww = self.lww();
                self.with_fsm(st, rid, o, |s, st, fsm, o| {
                    if fsm.phase != Phase::Read {
                        return;
                    }
                    let Some(t) = fsm.targets.get_mut(&src) else {
                        return;
                    };
                    if t.reply.is_some() {
                        return;
                    }
                    if let Some(ob) = &obj {
                        fsm.merged.merge(ob, lww);
                    }
                    t.reply = Some(obj);
                    fsm.count += 1;
                    s.read_progress(st, rid, fsm, o);
                });
            }
            Msg::RPut {
                rid,
                key,
                obj,
                hint,
                ..
            } => {
                if self.store(st, key, &obj, hint) {
                    self.save(st, o);
                }
                o.send(src, Msg::RPutAck { rid, key });
            }
            Msg::RPutAck { rid, .. } => {
                self.with_fsm(st, rid, o, |s, _st, fsm, o| {
                    if fsm.phase != Phase::Write {
                        // A read-repair ack.
                        return;
                    }
                    let Some(t) = fsm.targets.get_mut(&src) else {
                        return;
                    };
                    if t.reply.is_some() {
                        return;
                    }
                    t.reply = Some(None);
                    fsm.count += 1;
                    s.write_progress(fsm, o);
                });
            }
            Msg::Handoff { key, obj } => {
                if self.store(st, key, &obj, None) {
                    self.save(st, o);
                }
                o.send(src, Msg::HandoffAck { key, obj });
            }
            Msg::HandoffAck { key, obj } => {
                let primary = self.cfg.is_primary(key, st.me);
                let mut changed = false;
                if let Some(s) = st.dur.data.get_mut(&key).map(Arc::make_mut) {
                    if s.obj == obj && s.hints.remove(&src) {
                        st.stats.handoffs += 1;
                        changed = true;
                        if s.hints.is_empty() && !primary {
                            st.dur.data.remove(&key);
                            st.actors.remove(&key);
                        }
                    }
                }
                if changed {
                    self.save(st, o);
                }
            }
            Msg::Ping => o.send(src, Msg::Pong),
            Msg::Pong | Msg::GetOk { .. } | Msg::GetFail { .. } | Msg::Done { .. } => {}
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<NodeSt>, timer: &Timer, o: &mut Out<Self>) {
        let st = state.to_mut();
        match *timer {
            Timer::Sloppy(rid) => self.on_sloppy(st, rid, o),
            Timer::Expire(rid) => self.on_expire(st, rid, o),
            Timer::Handoff => self.on_handoff_tick(st, o),
        }
    }

    fn name(&self) -> String {
        "eventual".into()
    }
}

impl KvServer for Server {
    /// Leaderless: no node leads anything. (The driver's `isolate_leader` then isolates the
    /// first node of the group's preference list.)
    fn leadership(&self, _state: &NodeSt) -> Vec<Leadership> {
        Vec::new()
    }
}
