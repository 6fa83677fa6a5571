//! One ensemble peer: riak_ensemble_peer's state machine (probe, election, prefollow,
//! prepare, prelead, leading, following), its quorum collections (riak_ensemble_msg), its
//! lease (riak_ensemble_lease) and the leader's K/V workers (riak_ensemble_peer_worker running
//! do_get_fsm / do_put_fsm / do_overwrite_fsm).
//!
//! Function names follow the Erlang ones where there is one, so the two can be read side by
//! side.

use crate::msg::{Body, Ens, Fact, KvReply, Msg, Obj, Timer, Version};
use crate::params::{Cfg, Variant};
use crate::store::PeerDurable;
use crate::Server;
use quorumlab_kv::layout::ring_hash;
use quorumlab_kv::{Datum, FailKind, Op, Outcome, Request};
use stateright::actor::{Id, Out};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Node-wide test hooks (see [`crate::msg::Intercept`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Intercepts {
    pub check_epoch_false: bool,
    pub drop_puts: bool,
    pub trust_lease: Option<bool>,
    pub lease_ms: Option<u64>,
    pub notfound_delay_ms: Option<u64>,
}

/// What a peer handler needs from its node.
pub(crate) struct Cx<'a> {
    pub cfg: &'a Cfg,
    pub me: Id,
    pub o: &'a mut Out<Server>,
    pub next_req: &'a mut u64,
    pub boot: u64,
    pub icpt: &'a Intercepts,
    /// Something durable changed: the node saves once at the end of the handler.
    pub save: bool,
}

impl Cx<'_> {
    fn new_req(&mut self) -> u64 {
        *self.next_req += 1;
        (self.boot << 40) | *self.next_req
    }
    fn send(&mut self, to: Id, m: Msg) {
        self.o.send(to, m);
    }
    fn reply(&mut self, to: Id, ens: Ens, req: u64, body: Body) {
        self.o.send(to, Msg::Reply { ens, req, body });
    }
    fn timer(&mut self, t: Timer, d: Duration) {
        self.o.set_timer(t, d..d);
    }
    fn trust_lease(&self) -> bool {
        self.icpt.trust_lease.unwrap_or(self.cfg.trust_lease)
    }
    fn notfound_read_delay(&self) -> Duration {
        self.icpt
            .notfound_delay_ms
            .map(Duration::from_millis)
            .unwrap_or(self.cfg.notfound_read_delay)
    }
    fn lease(&self) -> Duration {
        self.icpt
            .lease_ms
            .map(Duration::from_millis)
            .unwrap_or(self.cfg.lease)
    }
}

/// The peer's state (riak's FSM state name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Probe,
    Election,
    Prefollow,
    Prepare,
    Prelead,
    Leading,
    Following,
}

/// How many replies a collection needs (riak_ensemble_msg `required()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Required {
    Quorum,
    /// A quorum, then up to `notfound_read_delay` more for everyone.
    AllOrQuorum,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Met,
    Nack,
    Wait,
}

/// One quorum collection (riak's `#msgstate{}` / `#collect{}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Collect {
    pub req: u64,
    pub required: Required,
    /// riak's `Extra` check: at least one reply must carry an object at least this new.
    pub extra: Option<Version>,
    /// One reply per peer (a duplicate from the same peer is ignored).
    pub replies: Vec<(Id, Body)>,
    /// `try_collect_all`: the quorum was met; waiting for the rest.
    pub all_phase: bool,
}

impl Collect {
    fn new(req: u64, required: Required, extra: Option<Version>) -> Self {
        Collect {
            req,
            required,
            extra,
            replies: Vec::new(),
            all_phase: false,
        }
    }

    fn add(&mut self, from: Id, body: Body) -> bool {
        if self.replies.iter().any(|(p, _)| *p == from) {
            return false;
        }
        self.replies.push((from, body));
        true
    }

    /// riak_ensemble_msg:quorum_met/5 over the single view `members`.
    fn status(&self, me: Id, members: &[Id], all: bool) -> Status {
        let quorum = if all {
            members.len()
        } else {
            members.len() / 2 + 1
        };
        let (mut valid, mut nacks) = (0, 0);
        for (p, b) in &self.replies {
            if members.contains(p) {
                if *b == Body::Nack {
                    nacks += 1;
                } else {
                    valid += 1;
                }
            }
        }
        let heard = valid + usize::from(members.contains(&me));
        if heard >= quorum {
            match self.extra {
                Some(v) if !all => {
                    let ok = self.replies.iter().any(|(p, b)| {
                        members.contains(p) && matches!(b, Body::Obj(Some(o)) if o.version >= v)
                    });
                    if ok {
                        Status::Met
                    } else {
                        Status::Wait
                    }
                }
                _ => Status::Met,
            }
        } else if nacks >= quorum || heard + nacks == members.len() {
            Status::Nack
        } else {
            Status::Wait
        }
    }

    /// The non-nack replies (riak's `find_valid/1`).
    fn valid(&self) -> Vec<(Id, Body)> {
        self.replies
            .iter()
            .filter(|(_, b)| *b != Body::Nack)
            .cloned()
            .collect()
    }
}

/// What the peer's own FSM is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FsmWhat {
    Probe,
    Prepare(u64),
    NewEpoch(u64),
    /// The leader tick's commit (`try_commit/2`, which blocks the FSM).
    Commit,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FsmOp {
    pub what: FsmWhat,
    pub c: Collect,
}

/// A client request queued on a leader worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Job {
    pub client: Id,
    pub req: Request,
}

/// What to do after a successful quorum put.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Then {
    /// The rewrite of a get: answer the get with it.
    ReplyGet,
    /// The rewrite before a put: go on to the modify step.
    Modify,
    /// The client's own write: answer ok.
    Reply,
}

/// Where a worker is in its request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// The local read (a call into the peer FSM, which may be blocked in a tick).
    LocalGet,
    /// `check_lease/1` found no valid lease: `check_epoch` to a quorum.
    CheckEpoch(Collect),
    /// `get_latest_obj/4` (the read of `update_key/4`); `modify` for a put.
    Latest { c: Collect, modify: bool },
    /// `put_obj/4`: sent to the peers; `local_done` once the leader's own backend has it
    /// (another call into the FSM); `expired` if the collector gave up before that.
    Put {
        c: Collect,
        obj: Obj,
        then: Then,
        local_done: bool,
        expired: bool,
    },
    /// Waiting for the (blocked) FSM to take `request_failed`.
    RequestFailed,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Active {
    pub job: Job,
    /// The leader's local object and the version its tree records, read at `LocalGet`.
    pub local: Option<Obj>,
    pub known: Option<Version>,
    pub step: Step,
}

/// One `riak_ensemble_peer_worker`: runs its requests one at a time, in arrival order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Worker {
    pub queue: VecDeque<Job>,
    pub cur: Option<Active>,
}

/// Something the FSM could not take while blocked in its tick commit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Deferred {
    Msg(Id, Msg),
    /// Worker `w` (of worker generation `gen`) waits for the FSM.
    Worker(u32, u64),
}

/// One peer of one ensemble.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub ens: Ens,
    pub role: Role,
    pub fact: Fact,
    /// `(epoch, seq)` of the leader this peer gave up on.
    pub abandoned: Option<(u64, u64)>,
    /// The follower has seen a commit of its leader's epoch.
    pub ready: bool,
    /// `(candidate, next_epoch)` during prefollow and prepare/prelead.
    pub prelim: Option<(Id, u64)>,
    pub awaiting: Option<FsmOp>,
    /// The lease is valid (armed by a tick commit, cleared by `LeaseExpire` or step-down).
    pub lease: bool,
    /// riak's ets `{obj_seq, Epoch}` counter: (epoch, counter).
    pub obj_seq: (u64, u64),
    /// riak's ets `seq`: the fact seq of the last local commit.
    pub ets_seq: u64,
    /// The FSM is inside the synchronous tick commit; other events wait in `deferred`.
    pub blocked: bool,
    pub deferred: VecDeque<Deferred>,
    pub workers: Vec<Worker>,
    /// Bumped whenever the workers are killed (`reset_workers/1`).
    pub wgen: u64,
    pub dur: Arc<PeerDurable>,
}

fn latest_fact(replies: &[(Id, Body)], mine: Fact) -> Fact {
    replies.iter().fold(mine, |a, (_, b)| match b {
        Body::Fact(f) if f.vsn() > a.vsn() => *f,
        _ => a,
    })
}

/// riak's `existing_leader/3`.
fn existing_leader(
    replies: &[(Id, Body)],
    abandoned: Option<(u64, u64)>,
    latest: &Fact,
    members: &[Id],
) -> Option<Id> {
    let valid = |vsn: (u64, u64)| abandoned.is_none_or(|a| vsn > a);
    match latest.leader {
        None => {
            let mut counts: BTreeMap<(u64, Id), usize> = BTreeMap::new();
            for (_, b) in replies {
                if let Body::Fact(f) = b {
                    if let Some(l) = f.leader {
                        if valid(f.vsn()) && members.contains(&l) {
                            *counts.entry((f.epoch, l)).or_default() += 1;
                        }
                    }
                }
            }
            // Most votes; ties go to the highest (epoch, leader) (riak: dict order).
            counts
                .into_iter()
                .max_by_key(|&(k, c)| (c, k))
                .map(|((_, l), _)| l)
        }
        Some(l) => valid(latest.vsn()).then_some(l),
    }
}

/// riak's `verify_hash/4`: is `obj` at least as new as the tree says?
fn verify(obj: Option<&Obj>, known: Option<Version>) -> bool {
    match (obj, known) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(o), Some(k)) => o.version >= k,
    }
}

/// riak's `latest_obj/3`: the newest object among the replies and the local one.
fn latest_obj(replies: &[(Id, Body)], local: Option<Obj>) -> Option<Obj> {
    replies.iter().fold(local, |acc, (_, b)| match (&acc, b) {
        (None, Body::Obj(Some(o))) => Some(o.clone()),
        (Some(a), Body::Obj(Some(o))) if o.version > a.version => Some(o.clone()),
        _ => acc,
    })
}

impl Peer {
    /// `init/1` + `setup/2`: load the fact, local commit, probe.
    pub(crate) fn boot(ens: Ens, dur: Arc<PeerDurable>, cx: &mut Cx) -> Peer {
        let fact = dur.fact.unwrap_or_default();
        let mut p = Peer {
            ens,
            role: Role::Probe,
            fact,
            abandoned: None,
            ready: false,
            prelim: None,
            awaiting: None,
            lease: false,
            obj_seq: (fact.epoch, 0),
            ets_seq: fact.seq,
            blocked: false,
            deferred: VecDeque::new(),
            workers: Vec::new(),
            wgen: 0,
            dur,
        };
        p.local_commit(fact, cx);
        p.probe_init(cx);
        p
    }

    fn members<'c>(&self, cfg: &'c Cfg) -> &'c [Id] {
        cfg.groups
            .get(self.ens as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Leading with a leader's role (for `KvServer::leadership`).
    pub fn is_leading(&self) -> bool {
        self.role == Role::Leading
    }

    // ------------------------------------------------------------------ durable state

    /// `local_commit/2`: adopt `f`, save it if more than `seq` changed, reset the object
    /// sequence on a new epoch, become ready.
    fn local_commit(&mut self, f: Fact, cx: &mut Cx) {
        self.fact = f;
        if cx.cfg.variant != Variant::VolatileFact {
            let saved = self.dur.fact.unwrap_or_default();
            if (saved.epoch, saved.leader) != (f.epoch, f.leader) {
                Arc::make_mut(&mut self.dur).fact = Some(f);
                cx.save = true;
            }
        }
        if self.obj_seq.0 != f.epoch {
            self.obj_seq = (f.epoch, 0);
        }
        self.ets_seq = f.seq;
        self.ready = true;
    }

    /// `obj_sequence/2`: the seq of the last local commit plus a per-epoch counter.
    fn obj_sequence(&mut self) -> u64 {
        if self.obj_seq.0 != self.fact.epoch {
            self.obj_seq = (self.fact.epoch, 0);
        }
        self.obj_seq.1 += 1;
        self.ets_seq + self.obj_seq.1
    }

    /// The backend's `put/4` (subject to the `drop_put` intercept).
    fn backend_put(&mut self, key: quorumlab_kv::Key, obj: Obj, cx: &mut Cx) {
        if !cx.icpt.drop_puts {
            Arc::make_mut(&mut self.dur).data.put_obj(key, obj);
            cx.save = true;
        }
    }

    /// The tree's `insert/3`.
    fn tree_insert(&mut self, key: quorumlab_kv::Key, v: Version, cx: &mut Cx) {
        if self.dur.data.get(key).known != Some(v) {
            Arc::make_mut(&mut self.dur).data.set_known(key, v);
            cx.save = true;
        }
    }

    // ------------------------------------------------------------------ state changes

    /// Leaves the current state: riak's `set_timer` always cancels the previous timer, and a
    /// new `send_all` replaces the previous collection.
    fn enter(&mut self, role: Role, cx: &mut Cx) {
        self.role = role;
        if self.awaiting.take().is_some() {
            cx.o.cancel_timer(Timer::FsmQuorum(self.ens));
        }
        cx.o.cancel_timer(Timer::State(self.ens));
    }

    /// `send_all/2`: ask every other member, collect into `awaiting`.
    fn send_all(&mut self, what: FsmWhat, cx: &mut Cx, make: impl Fn(u64) -> Msg) {
        let req = cx.new_req();
        let cfg = cx.cfg;
        for &p in self.members(cfg) {
            if p != cx.me {
                cx.send(p, make(req));
            }
        }
        self.awaiting = Some(FsmOp {
            what,
            c: Collect::new(req, Required::Quorum, None),
        });
        cx.timer(Timer::FsmQuorum(self.ens), cfg.peer_timeout);
        self.check_fsm(cx);
    }

    fn check_fsm(&mut self, cx: &mut Cx) {
        let cfg = cx.cfg;
        let Some(op) = &self.awaiting else { return };
        let status = op.c.status(cx.me, self.members(cfg), false);
        if status == Status::Wait {
            return;
        }
        let op = self.awaiting.take().expect("checked");
        cx.o.cancel_timer(Timer::FsmQuorum(self.ens));
        let valid = op.c.valid();
        if status == Status::Met {
            self.fsm_met(op.what, &valid, cx);
        } else {
            self.fsm_failed(op.what, &valid, cx);
        }
    }

    fn fsm_met(&mut self, what: FsmWhat, replies: &[(Id, Body)], cx: &mut Cx) {
        match (what, self.role) {
            (FsmWhat::Probe, Role::Probe) => self.probe_met(replies, cx),
            (FsmWhat::Prepare(ne), Role::Prepare) => self.prepare_met(ne, replies, cx),
            (FsmWhat::NewEpoch(ne), Role::Prelead) => self.prelead_met(ne, cx),
            (FsmWhat::Commit, Role::Leading) => self.tick_done(true, cx),
            _ => {}
        }
    }

    fn fsm_failed(&mut self, what: FsmWhat, replies: &[(Id, Body)], cx: &mut Cx) {
        match (what, self.role) {
            (FsmWhat::Probe, Role::Probe) => {
                // probe({timeout, Replies}): keep the latest fact, probe again after a delay.
                self.fact = latest_fact(replies, self.fact);
                cx.timer(Timer::State(self.ens), cx.cfg.probe_delay);
            }
            (FsmWhat::Prepare(_), Role::Prepare) | (FsmWhat::NewEpoch(_), Role::Prelead) => {
                self.probe_init(cx)
            }
            (FsmWhat::Commit, Role::Leading) => self.tick_done(false, cx),
            _ => {}
        }
    }

    fn probe_init(&mut self, cx: &mut Cx) {
        self.enter(Role::Probe, cx);
        self.fact.leader = None;
        let ens = self.ens;
        self.send_all(FsmWhat::Probe, cx, |req| Msg::Probe { ens, req });
    }

    fn probe_met(&mut self, replies: &[(Id, Body)], cx: &mut Cx) {
        let latest = latest_fact(replies, self.fact);
        let existing = existing_leader(replies, self.abandoned, &latest, self.members(cx.cfg));
        self.fact = latest;
        // maybe_follow/2 (the tree is always trusted: no exchange state).
        match existing {
            Some(l) if l != cx.me => {
                self.fact.leader = Some(l);
                self.following_init(true, cx);
            }
            _ => {
                self.fact.leader = None;
                self.election_init(cx);
            }
        }
    }

    fn election_init(&mut self, cx: &mut Cx) {
        self.enter(Role::Election, cx);
        // follower_timeout + rand:uniform(follower_timeout) (uniform in 1..=T ms).
        let ft = cx.cfg.follower_timeout;
        let ms = Duration::from_millis(1);
        cx.o.set_timer(Timer::State(self.ens), ft + ms..ft + ft + ms);
    }

    fn prefollow_init(&mut self, cand: Id, next: u64, cx: &mut Cx) {
        self.enter(Role::Prefollow, cx);
        self.prelim = Some((cand, next));
        cx.timer(Timer::State(self.ens), cx.cfg.prefollow_timeout);
    }

    fn prepare_init(&mut self, cx: &mut Cx) {
        self.enter(Role::Prepare, cx);
        let (ens, next) = (self.ens, self.fact.epoch + 1);
        self.send_all(FsmWhat::Prepare(next), cx, |req| Msg::Prepare {
            ens,
            req,
            epoch: next,
        });
    }

    fn prepare_met(&mut self, next: u64, replies: &[(Id, Body)], cx: &mut Cx) {
        self.fact = latest_fact(replies, self.fact);
        self.prelim = Some((cx.me, next));
        self.enter(Role::Prelead, cx);
        let ens = self.ens;
        self.send_all(FsmWhat::NewEpoch(next), cx, |req| Msg::NewEpoch {
            ens,
            req,
            epoch: next,
        });
    }

    fn prelead_met(&mut self, next: u64, cx: &mut Cx) {
        self.fact = Fact {
            leader: Some(cx.me),
            epoch: next,
            seq: 0,
        };
        // leading(init): fresh workers, then tick at once.
        self.enter(Role::Leading, cx);
        self.workers = vec![Worker::default(); cx.cfg.workers as usize];
        self.leader_tick(cx);
    }

    /// `leader_tick/1` → `try_commit/2`: commit the fact with seq+1 to a quorum. The FSM is
    /// blocked until the quorum answers or the collection times out.
    fn leader_tick(&mut self, cx: &mut Cx) {
        let new = Fact {
            seq: self.fact.seq + 1,
            ..self.fact
        };
        self.local_commit(new, cx);
        self.blocked = true;
        let ens = self.ens;
        self.send_all(FsmWhat::Commit, cx, |req| Msg::Commit {
            ens,
            req,
            fact: new,
        });
    }

    fn tick_done(&mut self, ok: bool, cx: &mut Cx) {
        self.blocked = false;
        if ok {
            // riak_ensemble_lease:lease/2, measured from the quorum ack; next tick.
            self.lease = true;
            cx.timer(Timer::LeaseExpire(self.ens), cx.lease());
            cx.timer(Timer::State(self.ens), cx.cfg.tick);
        } else {
            self.fact.leader = None;
            self.step_down(false, cx);
        }
        self.replay(cx);
    }

    fn following_init(&mut self, not_ready: bool, cx: &mut Cx) {
        self.enter(Role::Following, cx);
        if not_ready {
            self.ready = false;
        }
        cx.timer(Timer::State(self.ens), cx.cfg.follower_timeout);
    }

    fn abandon(&mut self, cx: &mut Cx) {
        self.abandoned = Some(self.fact.vsn());
        self.fact.leader = None;
        self.probe_init(cx);
    }

    /// `step_down/2`: unlease, kill the workers, forget the leader; then probe
    /// (`prepare == false`) or prepare a new epoch.
    fn step_down(&mut self, prepare: bool, cx: &mut Cx) {
        self.lease = false;
        cx.o.cancel_timer(Timer::LeaseExpire(self.ens));
        self.reset_workers(cx);
        self.fact.leader = None;
        self.blocked = false;
        if prepare {
            self.prepare_init(cx);
        } else {
            self.probe_init(cx);
        }
    }

    /// `reset_workers/1`: kill every worker; their requests die unanswered.
    fn reset_workers(&mut self, cx: &mut Cx) {
        for w in 0..self.workers.len() as u32 {
            cx.o.cancel_timer(Timer::WorkerQuorum(self.ens, w));
            cx.o.cancel_timer(Timer::NotfoundDelay(self.ens, w));
        }
        self.workers.clear();
        self.wgen += 1;
        self.deferred.retain(|d| !matches!(d, Deferred::Worker(..)));
    }

    // ------------------------------------------------------------------ events

    pub(crate) fn on_timer(&mut self, t: Timer, cx: &mut Cx) {
        match t {
            Timer::State(_) => match self.role {
                Role::Probe => self.probe_init(cx),      // probe_continue
                Role::Election => self.prepare_init(cx), // election_timeout (backend ping ok)
                Role::Prefollow => self.probe_init(cx),  // prefollow_timeout
                Role::Following => self.abandon(cx),     // follower_timeout
                Role::Leading if !self.blocked => self.leader_tick(cx),
                _ => {}
            },
            Timer::FsmQuorum(_) => {
                if let Some(op) = self.awaiting.take() {
                    let valid = op.c.valid();
                    self.fsm_failed(op.what, &valid, cx);
                }
            }
            Timer::LeaseExpire(_) => self.lease = false,
            Timer::WorkerQuorum(_, w) => self.worker_timeout(w, cx),
            Timer::NotfoundDelay(_, w) => {
                if let Some(Active {
                    step: Step::Latest { c, .. },
                    ..
                }) = self.active(w)
                {
                    if c.all_phase {
                        self.latest_done(w, cx);
                    }
                }
            }
        }
        self.pump(cx);
    }

    pub(crate) fn on_msg(&mut self, src: Id, msg: Msg, cx: &mut Cx) {
        if let Msg::Reply { req, body, .. } = msg {
            self.on_reply(src, req, body, cx);
        } else if self.blocked {
            // The FSM sits in try_commit: everything but collector replies waits in the
            // mailbox.
            self.deferred.push_back(Deferred::Msg(src, msg));
        } else {
            self.handle(src, msg, cx);
        }
        self.pump(cx);
    }

    fn valid_request(&self, src: Id, epoch: u64) -> bool {
        self.ready && epoch == self.fact.epoch && Some(src) == self.fact.leader
    }

    fn handle(&mut self, src: Id, msg: Msg, cx: &mut Cx) {
        let ens = self.ens;
        match msg {
            Msg::Probe { req, .. } => cx.reply(src, ens, req, Body::Fact(self.fact)),
            Msg::Prepare { req, epoch, .. } => match self.role {
                Role::Election => {
                    if epoch > self.fact.epoch {
                        cx.reply(src, ens, req, Body::Fact(self.fact));
                        self.prefollow_init(src, epoch, cx);
                    }
                }
                _ => cx.reply(src, ens, req, Body::Nack),
            },
            Msg::Commit { req, fact, .. } => match self.role {
                Role::Election if fact.epoch >= self.fact.epoch => {
                    cx.reply(src, ens, req, Body::Ok);
                    self.local_commit(fact, cx);
                    self.following_init(false, cx);
                }
                Role::Following if fact.epoch >= self.fact.epoch => {
                    self.local_commit(fact, cx);
                    cx.reply(src, ens, req, Body::Ok);
                    cx.timer(Timer::State(ens), cx.cfg.follower_timeout);
                }
                Role::Election | Role::Following => {}
                _ => cx.reply(src, ens, req, Body::Nack),
            },
            Msg::NewEpoch { req, epoch, .. } => match self.role {
                Role::Prefollow => {
                    if self.prelim == Some((src, epoch)) {
                        // The new epoch is adopted in memory only (saved at the first commit).
                        self.fact.epoch = epoch;
                        self.fact.leader = Some(src);
                        cx.reply(src, ens, req, Body::Ok);
                        self.following_init(true, cx);
                    } else {
                        self.probe_init(cx);
                    }
                }
                _ => cx.reply(src, ens, req, Body::Nack),
            },
            Msg::CheckEpoch { req, epoch, .. } => {
                let ok = self.role == Role::Following
                    && !cx.icpt.check_epoch_false
                    && epoch == self.fact.epoch
                    && Some(src) == self.fact.leader;
                cx.reply(src, ens, req, if ok { Body::Ok } else { Body::Nack });
            }
            Msg::Get {
                req, key, epoch, ..
            } => {
                if self.role == Role::Following && self.valid_request(src, epoch) {
                    let obj = self.dur.data.get(key).obj;
                    cx.reply(src, ens, req, Body::Obj(obj));
                } else {
                    cx.reply(src, ens, req, Body::Nack);
                }
            }
            Msg::Put {
                req,
                key,
                obj,
                epoch,
                ..
            } => {
                if self.role == Role::Following && self.valid_request(src, epoch) {
                    self.backend_put(key, obj.clone(), cx);
                    cx.reply(src, ens, req, Body::Obj(Some(obj)));
                } else {
                    cx.reply(src, ens, req, Body::Nack);
                }
            }
            Msg::UpdateHash { key, version, .. } => {
                if self.role == Role::Following {
                    self.tree_insert(key, version, cx);
                }
            }
            Msg::ClientReq { req, .. } => self.client_request(src, req, false, cx),
            Msg::Forward { client, req, .. } => self.client_request(client, req, true, cx),
            Msg::Reply { .. }
            | Msg::ClientResp { .. }
            | Msg::Redirect { .. }
            | Msg::Intercept(_) => {}
        }
    }

    /// A client request, directly or forwarded by a follower.
    fn client_request(&mut self, client: Id, req: Request, forwarded: bool, cx: &mut Cx) {
        match (self.role, self.fact.leader) {
            (Role::Leading, _) => self.leading_kv(client, req, cx),
            (Role::Following, Some(l)) if !forwarded && l != cx.me => {
                cx.send(
                    l,
                    Msg::Forward {
                        ens: self.ens,
                        client,
                        req,
                    },
                );
            }
            (_, leader) => {
                // riak: nack (the router turns it into `timeout`); a forward reaching a peer
                // that no longer leads is dropped by riak. Either way nothing was executed,
                // so we tell the client where to go instead.
                let leader = leader.filter(|&l| l != cx.me);
                cx.send(client, Msg::Redirect { id: req.id, leader });
            }
        }
    }

    fn on_reply(&mut self, src: Id, req: u64, body: Body, cx: &mut Cx) {
        if let Some(op) = &mut self.awaiting {
            if op.c.req == req {
                if op.c.add(src, body) {
                    if op.what == FsmWhat::Commit {
                        // blocking_send_all's collector waits one tick of *inactivity*.
                        cx.timer(Timer::FsmQuorum(self.ens), cx.cfg.peer_timeout);
                    }
                    self.check_fsm(cx);
                }
                return;
            }
        }
        for w in 0..self.workers.len() as u32 {
            let ens = self.ens;
            let Some(a) = self.active_mut(w) else {
                continue;
            };
            let (c, inactivity) = match &mut a.step {
                Step::CheckEpoch(c) => (c, true),
                Step::Latest { c, .. } => {
                    let all = c.all_phase;
                    (c, !all)
                }
                Step::Put { c, .. } => (c, true),
                _ => continue,
            };
            if c.req != req {
                continue;
            }
            if c.add(src, body) {
                if inactivity {
                    cx.timer(Timer::WorkerQuorum(ens, w), cx.cfg.peer_timeout);
                }
                self.check_worker(w, cx);
            }
            return;
        }
    }

    /// Runs deferred events once the FSM is free again.
    fn replay(&mut self, cx: &mut Cx) {
        while !self.blocked {
            let Some(d) = self.deferred.pop_front() else {
                break;
            };
            match d {
                Deferred::Msg(src, m) => self.handle(src, m, cx),
                Deferred::Worker(w, gen) if gen == self.wgen => self.resume(w, cx),
                Deferred::Worker(..) => {}
            }
        }
    }

    // ------------------------------------------------------------------ K/V (leader)

    fn active(&self, w: u32) -> Option<&Active> {
        self.workers.get(w as usize).and_then(|wk| wk.cur.as_ref())
    }
    fn active_mut(&mut self, w: u32) -> Option<&mut Active> {
        self.workers
            .get_mut(w as usize)
            .and_then(|wk| wk.cur.as_mut())
    }

    /// `leading_kv/3` → `async/3`: queue on the key's worker.
    fn leading_kv(&mut self, client: Id, req: Request, cx: &mut Cx) {
        let n = self.workers.len().max(1) as u64;
        let w = (ring_hash(u64::from(req.key.0)) % n) as usize;
        if self.workers.is_empty() {
            self.workers = vec![Worker::default(); cx.cfg.workers as usize];
        }
        let w = w.min(self.workers.len() - 1);
        self.workers[w].queue.push_back(Job { client, req });
    }

    /// Starts queued requests on idle workers (after every event).
    fn pump(&mut self, cx: &mut Cx) {
        if self.role != Role::Leading {
            return;
        }
        let mut w = 0;
        while w < self.workers.len() {
            let wk = &mut self.workers[w];
            if wk.cur.is_none() {
                if let Some(job) = wk.queue.pop_front() {
                    wk.cur = Some(Active {
                        job,
                        local: None,
                        known: None,
                        step: Step::LocalGet,
                    });
                    self.begin(w as u32, cx);
                    continue; // the request may have finished at once; look again
                }
            }
            w += 1;
        }
    }

    fn begin(&mut self, w: u32, cx: &mut Cx) {
        let Some(a) = self.active(w) else { return };
        match a.job.req.op {
            Op::Read | Op::Cas { .. } | Op::Create(_) | Op::Add(_) => self.local_get(w, cx),
            Op::Write(v) => self.overwrite(w, Some(Datum::Reg(v)), cx),
            Op::Delete => self.overwrite(w, None, cx),
        }
    }

    fn finish(&mut self, w: u32, reply: Option<KvReply>, cx: &mut Cx) {
        if let Some(wk) = self.workers.get_mut(w as usize) {
            if let Some(a) = wk.cur.take() {
                if let Some(r) = reply {
                    cx.send(
                        a.job.client,
                        Msg::ClientResp {
                            id: a.job.req.id,
                            reply: r,
                        },
                    );
                }
            }
        }
    }

    fn send_reply(&self, w: u32, reply: KvReply, cx: &mut Cx) {
        if let Some(a) = self.active(w) {
            cx.send(
                a.job.client,
                Msg::ClientResp {
                    id: a.job.req.id,
                    reply,
                },
            );
        }
    }

    fn resume(&mut self, w: u32, cx: &mut Cx) {
        match self.active(w).map(|a| &a.step) {
            Some(Step::LocalGet) => self.local_get(w, cx),
            Some(Step::Put {
                local_done: false, ..
            }) => self.local_put(w, cx),
            Some(Step::RequestFailed) => self.step_down(true, cx),
            _ => {}
        }
    }

    /// `local_get/3`: a call into the FSM.
    fn local_get(&mut self, w: u32, cx: &mut Cx) {
        if self.blocked {
            self.deferred.push_back(Deferred::Worker(w, self.wgen));
            return;
        }
        let Some(key) = self.active(w).map(|a| a.job.req.key) else {
            return;
        };
        let rec = self.dur.data.get(key);
        let fresh_epoch = self.fact.epoch;
        let Some(a) = self.active_mut(w) else { return };
        a.local = rec.obj.clone();
        a.known = rec.known;
        // is_current/4: exists, not older than the tree says, and of the current epoch.
        let current = rec
            .obj
            .as_ref()
            .is_some_and(|o| o.version.epoch == fresh_epoch)
            && verify(rec.obj.as_ref(), rec.known);
        match (a.job.req.op, current) {
            (Op::Read, true) => self.check_lease(w, cx),
            (Op::Read, false) => self.update_key(w, false, cx),
            (_, true) => self.modify(w, rec.obj, cx),
            (_, false) => self.update_key(w, true, cx),
        }
    }

    /// The lease is checked after the local read (in the actor both happen in the same
    /// handler, at the same virtual instant).
    fn check_lease(&mut self, w: u32, cx: &mut Cx) {
        if cx.trust_lease() && self.lease {
            let v = self
                .active(w)
                .and_then(|a| a.local.clone())
                .and_then(|o| o.value);
            self.finish(w, Some(KvReply::Ok(v)), cx);
            return;
        }
        let (ens, epoch) = (self.ens, self.fact.epoch);
        let c = self.worker_send(w, Required::Quorum, None, cx, |req| Msg::CheckEpoch {
            ens,
            req,
            epoch,
        });
        if let Some(a) = self.active_mut(w) {
            a.step = Step::CheckEpoch(c);
        }
        self.check_worker(w, cx);
    }

    /// Sends a worker request to every other member and arms the worker's quorum timer.
    fn worker_send(
        &mut self,
        w: u32,
        required: Required,
        extra: Option<Version>,
        cx: &mut Cx,
        make: impl Fn(u64) -> Msg,
    ) -> Collect {
        let req = cx.new_req();
        let cfg = cx.cfg;
        for &p in self.members(cfg) {
            if p != cx.me {
                cx.send(p, make(req));
            }
        }
        cx.timer(Timer::WorkerQuorum(self.ens, w), cfg.peer_timeout);
        Collect::new(req, required, extra)
    }

    /// `update_key/4`: read the latest object from a quorum (then rewrite it).
    fn update_key(&mut self, w: u32, modify: bool, cx: &mut Cx) {
        let Some(a) = self.active(w) else { return };
        let (key, local, known) = (a.job.req.key, a.local.as_ref(), a.known);
        let required = if known.is_none() {
            Required::AllOrQuorum
        } else {
            Required::Quorum
        };
        let extra = if verify(local, known) { None } else { known };
        let (ens, epoch) = (self.ens, self.fact.epoch);
        let c = self.worker_send(w, required, extra, cx, |req| Msg::Get {
            ens,
            req,
            key,
            epoch,
        });
        if let Some(a) = self.active_mut(w) {
            a.step = Step::Latest { c, modify };
        }
        self.check_worker(w, cx);
    }

    /// `do_overwrite_fsm/5`: no read; stamp and write.
    fn overwrite(&mut self, w: u32, value: Option<Datum>, cx: &mut Cx) {
        let _ = self.obj_sequence(); // riak draws a seq here and another in put_obj/3
        self.put_obj(w, value, None, Then::Reply, cx);
    }

    /// `put_obj/4`: stamp `(epoch, seq)`, send to the peers, then put locally.
    fn put_obj(&mut self, w: u32, value: Option<Datum>, seq: Option<u64>, then: Then, cx: &mut Cx) {
        let Some(key) = self.active(w).map(|a| a.job.req.key) else {
            return;
        };
        let seq = seq.unwrap_or_else(|| self.obj_sequence());
        let epoch = self.fact.epoch;
        let obj = Obj {
            value,
            version: Version { epoch, seq },
        };
        let ens = self.ens;
        let c = self.worker_send(w, Required::Quorum, None, cx, |req| Msg::Put {
            ens,
            req,
            key,
            obj: obj.clone(),
            epoch,
        });
        if let Some(a) = self.active_mut(w) {
            a.step = Step::Put {
                c,
                obj,
                then,
                local_done: false,
                expired: false,
            };
        }
        self.local_put(w, cx);
    }

    /// `local_put/4`: a call into the FSM.
    fn local_put(&mut self, w: u32, cx: &mut Cx) {
        if self.blocked {
            self.deferred.push_back(Deferred::Worker(w, self.wgen));
            return;
        }
        let Some(a) = self.active(w) else { return };
        let key = a.job.req.key;
        let Step::Put { obj, .. } = &a.step else {
            return;
        };
        self.backend_put(key, obj.clone(), cx);
        if let Some(Active {
            step: Step::Put { local_done, .. },
            ..
        }) = self.active_mut(w)
        {
            *local_done = true;
        }
        self.check_worker(w, cx);
    }

    /// `modify_key/5` with the op's function: put_once (kput_once), a value CAS (kmodify), or
    /// a set add (kmodify with a union function: the read and the write are one atomic
    /// modify, so concurrent adds cannot lose each other).
    fn modify(&mut self, w: u32, cur: Option<Obj>, cx: &mut Cx) {
        let Some(op) = self.active(w).map(|a| a.job.req.op) else {
            return;
        };
        if matches!(op, Op::Read | Op::Write(_) | Op::Delete) {
            return;
        }
        let seq = self.obj_sequence();
        let value = cur.and_then(|o| o.value);
        match op.apply(value) {
            (Outcome::Fail(FailKind::Precondition), _) => {
                self.finish(w, Some(KvReply::Precondition), cx)
            }
            (_, new) => self.put_obj(w, new, Some(seq), Then::Reply, cx),
        }
    }

    /// `request_failed`: the worker asks its FSM to step down and prepare a new epoch (which
    /// kills every worker, this one included).
    fn request_failed(&mut self, w: u32, cx: &mut Cx) {
        if self.blocked {
            if let Some(a) = self.active_mut(w) {
                a.step = Step::RequestFailed;
            }
            self.deferred.push_back(Deferred::Worker(w, self.wgen));
        } else {
            self.step_down(true, cx);
        }
    }

    fn check_worker(&mut self, w: u32, cx: &mut Cx) {
        let cfg = cx.cfg;
        let me = cx.me;
        let ens = self.ens;
        let members = self.members(cfg);
        let Some(a) = self
            .workers
            .get_mut(w as usize)
            .and_then(|wk| wk.cur.as_mut())
        else {
            return;
        };
        match &mut a.step {
            Step::CheckEpoch(c) => match c.status(me, members, false) {
                Status::Wait => {}
                Status::Met => {
                    cx.o.cancel_timer(Timer::WorkerQuorum(ens, w));
                    let v = a.local.clone().and_then(|o| o.value);
                    self.finish(w, Some(KvReply::Ok(v)), cx);
                }
                Status::Nack => {
                    cx.o.cancel_timer(Timer::WorkerQuorum(ens, w));
                    self.check_epoch_failed(w, cx);
                }
            },
            Step::Latest { c, modify } => {
                let modify = *modify;
                if !c.all_phase {
                    match c.status(me, members, false) {
                        Status::Wait => return,
                        Status::Nack => {
                            cx.o.cancel_timer(Timer::WorkerQuorum(ens, w));
                            self.latest_failed(w, modify, cx);
                            return;
                        }
                        Status::Met => {
                            cx.o.cancel_timer(Timer::WorkerQuorum(ens, w));
                            if c.required == Required::Quorum {
                                self.latest_done(w, cx);
                                return;
                            }
                            // try_collect_all/1
                            c.all_phase = true;
                            let delay = cx.notfound_read_delay();
                            cx.timer(Timer::NotfoundDelay(ens, w), delay);
                        }
                    }
                }
                if c.status(me, members, true) != Status::Wait {
                    cx.o.cancel_timer(Timer::NotfoundDelay(ens, w));
                    self.latest_done(w, cx);
                }
            }
            Step::Put {
                c,
                local_done,
                expired,
                ..
            } => {
                if !*local_done {
                    return;
                }
                let status = match c.status(me, members, false) {
                    Status::Wait if *expired => Status::Nack,
                    s => s,
                };
                match status {
                    Status::Wait => {}
                    Status::Met => {
                        cx.o.cancel_timer(Timer::WorkerQuorum(ens, w));
                        self.put_done(w, cx);
                    }
                    Status::Nack => {
                        cx.o.cancel_timer(Timer::WorkerQuorum(ens, w));
                        self.put_failed(w, cx);
                    }
                }
            }
            Step::LocalGet | Step::RequestFailed => {}
        }
    }

    /// The worker's collector gave up (one quorum wait without a reply).
    fn worker_timeout(&mut self, w: u32, cx: &mut Cx) {
        let Some(a) = self.active_mut(w) else { return };
        match &mut a.step {
            Step::CheckEpoch(_) => self.check_epoch_failed(w, cx),
            Step::Latest { c, modify } if !c.all_phase => {
                let modify = *modify;
                self.latest_failed(w, modify, cx)
            }
            Step::Put {
                local_done,
                expired,
                ..
            } => {
                if *local_done {
                    self.put_failed(w, cx);
                } else {
                    *expired = true;
                }
            }
            _ => {}
        }
    }

    /// check_lease/1 → false: reply `timeout`, then request_failed.
    fn check_epoch_failed(&mut self, w: u32, cx: &mut Cx) {
        self.send_reply(w, KvReply::Timeout, cx);
        self.request_failed(w, cx);
    }

    /// get_latest_obj/4 failed. A get answers `failed` first; a put asks the FSM to step
    /// down first, which kills the worker before its `unavailable` reply.
    fn latest_failed(&mut self, w: u32, modify: bool, cx: &mut Cx) {
        if !modify {
            self.send_reply(w, KvReply::Failed, cx);
        }
        self.request_failed(w, cx);
    }

    /// get_latest_obj/4 succeeded: skip the tombstone if everyone said notfound, else
    /// rewrite the latest object with the current epoch and a new seq.
    fn latest_done(&mut self, w: u32, cx: &mut Cx) {
        let members = self.members(cx.cfg).len();
        let Some(a) = self.active(w) else { return };
        let Step::Latest { c, modify } = &a.step else {
            return;
        };
        let modify = *modify;
        let replies = c.valid();
        let latest = latest_obj(&replies, a.local.clone());
        if !verify(latest.as_ref(), a.known) {
            self.latest_failed(w, modify, cx);
            return;
        }
        if latest.is_none() && replies.len() + 1 == members {
            // Everyone said notfound: no tombstone; a fake notfound object.
            let seq = self.obj_sequence();
            let fake = Obj {
                value: None,
                version: Version {
                    epoch: self.fact.epoch,
                    seq,
                },
            };
            if modify {
                self.modify(w, Some(fake), cx);
            } else {
                self.finish(w, Some(KvReply::Ok(None)), cx);
            }
            return;
        }
        if cx.cfg.variant == Variant::SkipRewrite && !modify {
            // The flaw under study: answer the get with an object of an older epoch
            // without making it durable in this epoch.
            self.finish(w, Some(KvReply::Ok(latest.and_then(|o| o.value))), cx);
            return;
        }
        let then = if modify { Then::Modify } else { Then::ReplyGet };
        self.put_obj(w, latest.and_then(|o| o.value), None, then, cx);
    }

    /// put_obj/4 reached its quorum: update the tree here and (asynchronously) on the peers.
    fn put_done(&mut self, w: u32, cx: &mut Cx) {
        let Some(a) = self.active(w) else { return };
        let key = a.job.req.key;
        let Step::Put { obj, then, .. } = &a.step else {
            return;
        };
        let (obj, then) = (obj.clone(), *then);
        self.tree_insert(key, obj.version, cx);
        let cfg = cx.cfg;
        for &p in self.members(cfg) {
            if p != cx.me {
                cx.send(
                    p,
                    Msg::UpdateHash {
                        ens: self.ens,
                        key,
                        version: obj.version,
                    },
                );
            }
        }
        match then {
            Then::ReplyGet | Then::Reply => self.finish(w, Some(KvReply::Ok(obj.value)), cx),
            Then::Modify => self.modify(w, Some(obj), cx),
        }
    }

    fn put_failed(&mut self, w: u32, cx: &mut Cx) {
        let Some(a) = self.active(w) else { return };
        if let Step::Put {
            then: Then::ReplyGet,
            ..
        } = a.step
        {
            // do_get_fsm: update_key failed → reply `failed`, then request_failed.
            self.send_reply(w, KvReply::Failed, cx);
        }
        self.request_failed(w, cx);
    }
}
