//! `eventual`: Dynamo-style replication as Riak KV does it with `allow_mult`, the CAP contrast
//! to the consensus protocols.
//!
//! * Keys are hashed onto a ring of `ring_size` partitions (`quorumlab_kv::Layout`'s
//!   placement); each key lives on a preference list of `n` nodes. Any node coordinates any
//!   request; reads wait for R replies, writes for W acknowledgements.
//! * Sloppy quorum and hinted handoff: replicas that do not answer are replaced by fallback
//!   nodes, which hand their copies back to the primaries later. Read repair fixes stale
//!   replicas a read noticed.
//! * Versioning by dotted version vectors; with `allow_mult = true` concurrent writes are kept
//!   as siblings; with `allow_mult = false`, last-write-wins on the coordinators' own clocks.
//! * Set-valued keys are stateboxes: a value plus a queue of timestamped `add` operations;
//!   siblings merge by replaying every queue onto the newest value.
//! * `cas` and `create` are client-side read-then-write: not atomic.
//!
//! The server is a stateright actor; [`Proc`] hosts it in the simulator and sets its
//! [`Clock`] to the node's local clock before every event. docs/protocols/eventual.md
//! explains the model, the modes and what each loses.

mod client;
mod msg;
pub mod object;
mod params;
mod server;

pub use client::{Adapter, AdapterState, CallSt, Step};
pub use msg::{Msg, PutVal, Reply, Retry, Timer, Why};
pub use object::{Actor, Dot, Obj, Sib, Statebox, Ts, Val, View, VV};
pub use params::{Cfg, Params, Routing};
pub use server::{Clock, Durable, Fsm, FsmOp, NodeSt, Phase, Server, Stats, Stored, Target};

use quorumlab_kv::{
    ClientConfig, KvClient, KvNode, KvProcess, KvProtocol, Layout, Leadership, NodeState, Outcome,
    Request, Wire,
};
use quorumlab_sim::{ActorProcess, Ctx, Process};
use stateright::actor::Id;
use std::sync::Arc;

/// A node of an eventual cluster (server or client).
pub type Node = KvNode<Server, Adapter>;
type Inner = ActorProcess<Node>;
type PMsg = <Inner as Process>::Msg;
type PTimer = <Inner as Process>::Timer;

/// A simulated process: the hosted actor plus the clock handle its server reads.
pub struct Proc {
    inner: Inner,
    clock: Option<Clock>,
}

impl Proc {
    pub fn inner(&self) -> &ActorProcess<Node> {
        &self.inner
    }
    fn tick(&self, cx: &Ctx<'_, PMsg, PTimer>) {
        if let Some(c) = &self.clock {
            c.set(cx.local_now());
        }
    }
}

impl Process for Proc {
    type Msg = PMsg;
    type Timer = PTimer;

    fn start(&mut self, cx: &mut Ctx<'_, PMsg, PTimer>) {
        self.tick(cx);
        self.inner.start(cx)
    }
    fn on_msg(&mut self, cx: &mut Ctx<'_, PMsg, PTimer>, src: Id, msg: PMsg) {
        self.tick(cx);
        self.inner.on_msg(cx, src, msg)
    }
    fn on_timer(&mut self, cx: &mut Ctx<'_, PMsg, PTimer>, timer: PTimer) {
        self.tick(cx);
        self.inner.on_timer(cx, timer)
    }
    fn crash(&mut self, lose_unsynced: bool) {
        self.inner.crash(lose_unsynced)
    }
}

impl KvProcess for Proc {
    fn invoke_msg(req: Request) -> PMsg {
        Wire::Invoke(req)
    }
    fn completion(msg: PMsg) -> Option<(Request, Outcome)> {
        Inner::completion(msg)
    }
    fn leadership(&self) -> Vec<Leadership> {
        self.inner.leadership()
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        let Some(s) = node_state(self).map(|n| &n.stats) else {
            return Vec::new();
        };
        vec![
            ("statebox_lost", s.statebox_lost),
            ("statebox_pruned_truncated", s.pruned_truncated),
            ("statebox_pruned_expired", s.pruned_expired),
            ("lww_stale_writes", s.lww_stale_writes),
            ("max_siblings", s.max_siblings),
            ("hinted_writes", s.hinted_writes),
            ("handoffs", s.handoffs),
            ("read_repairs", s.read_repairs),
            ("sloppy_substitutions", s.sloppy_substitutions),
        ]
    }
}

/// The protocol marker for the workload driver.
pub struct Eventual;

impl Eventual {
    pub fn cfg(layout: &Layout, params: &Params) -> Arc<Cfg> {
        Arc::new(Cfg::new(params, layout))
    }
}

impl KvProtocol for Eventual {
    const NAME: &'static str = "eventual";
    const ABOUT: &'static str = "Dynamo/Riak KV: N/R/W, sloppy quorum, hinted handoff, read repair, DVV siblings, statebox sets (not linearizable)";
    type Params = Params;
    type Proc = Proc;

    fn check(params: &Params, layout: &Layout) -> Result<(), String> {
        params.check(layout.nodes)
    }

    fn build(layout: &Layout, params: &Params, client: &ClientConfig) -> Vec<Proc> {
        let cfg = Eventual::cfg(layout, params);
        let servers = (0..layout.nodes).map(|_| {
            let clock = Clock::default();
            Proc {
                inner: ActorProcess::new(KvNode::Server(Server {
                    cfg: cfg.clone(),
                    clock: clock.clone(),
                })),
                clock: Some(clock),
            }
        });
        let adapter = Adapter { cfg: cfg.clone() };
        let clients = (0..layout.clients).map(|_| Proc {
            inner: ActorProcess::new(KvNode::Client(KvClient::new(
                adapter.clone(),
                client.timeout,
            ))),
            clock: None,
        });
        servers.chain(clients).collect()
    }
}

/// The server state of a simulated process (`None` for clients and crashed nodes).
pub fn node_state(p: &Proc) -> Option<&NodeSt> {
    match p.inner.state() {
        Some(NodeState::Server(Some(s))) => Some(s),
        _ => None,
    }
}

/// The durable storage of a simulated server process.
pub fn node_storage(p: &Proc) -> Option<&Durable> {
    p.inner.storage()
}

/// The protocol counters of a set of processes, summed (crashed nodes count as zero).
pub fn total_stats<'a>(procs: impl IntoIterator<Item = &'a Proc>) -> Stats {
    let mut t = Stats::default();
    for s in procs.into_iter().filter_map(node_state).map(|n| &n.stats) {
        t.statebox_lost += s.statebox_lost;
        t.pruned_truncated += s.pruned_truncated;
        t.pruned_expired += s.pruned_expired;
        t.lww_stale_writes += s.lww_stale_writes;
        t.max_siblings = t.max_siblings.max(s.max_siblings);
        t.hinted_writes += s.hinted_writes;
        t.handoffs += s.handoffs;
        t.read_repairs += s.read_repairs;
        t.sloppy_substitutions += s.sloppy_substitutions;
    }
    t
}
