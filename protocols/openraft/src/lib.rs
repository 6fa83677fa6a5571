//! `openraft`: a Raft KV built on the [openraft](https://docs.rs/openraft) crate
//! (`=0.10.0-alpha.37`), hosted in quorumlab's deterministic simulator.
//!
//! * Each server node is one simulator process with its own single-threaded executor
//!   ([`rt::Executor`]) whose clock is the node's local virtual clock (nanoseconds). It hosts one
//!   openraft `Raft` per group the node belongs to (`Layout::groups`).
//! * openraft's `AsyncRuntime` is [`rt::SimRt`]: spawn, sleep and timeouts on that executor,
//!   FIFO channels (no tokio runtime, no tokio `watch`), election randomness seeded from the
//!   node's random stream. Same spec + seed ⇒ the same history, byte for byte.
//! * openraft's RPCs ([`net`]) are simulator messages through the network emulator; replies are
//!   matched by RPC id and time out after openraft's TTL in virtual time.
//! * Vote and log are durable ([`store::LogStore`]); a crash drops the executor with every task
//!   and Raft instance; a restart builds new instances over the kept log, and openraft rebuilds
//!   the state machine by replaying the committed log.
//! * Clients are the generic [`KvClient`] with an adapter ([`client::Adapter`]) that follows
//!   `ForwardToLeader` hints and retries within the client timeout.
//!
//! See docs/protocols/openraft.md.

pub mod client;
pub mod net;
pub mod rt;
pub mod server;
pub mod store;

use client::{AdState, AdTimer, Adapter};
use net::OrMsg;
use quorumlab_kv::client::{ClientCmd, ClientEffect};
use quorumlab_kv::{
    ClientConfig, ClientState, KvClient, KvProcess, KvProtocol, Layout, Leadership, Outcome,
    Request, Wire,
};
use quorumlab_sim::{driver, nanos, Ctx, Nanos, Process};
use rand::Rng;
use serde::{Deserialize, Serialize};
use server::{ServerConfig, ServerProc};
use stateright::actor::Id;
use std::sync::Arc;
use std::time::Duration;

/// How reads are served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// `ReadPolicy::ReadIndex`: the leader confirms its leadership with a heartbeat round, waits
    /// until the state machine has applied the read index, then reads locally.
    #[default]
    ReadIndex,
    /// `ReadPolicy::LeaseRead`: the leader reads locally while its quorum-acknowledged lease
    /// (election_timeout_max after the acks) holds.
    LeaseRead,
    /// Reads are log entries like writes (one replication round, applied in order).
    Log,
}

/// The `[protocol.openraft]` section of an experiment spec. Replicas per group, number of groups
/// and the client timeout come from the shared sections. The defaults equal the `raft`
/// protocol's so the two can be compared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// openraft `Config::election_timeout_min` (ms).
    pub election_timeout_min_ms: u64,
    /// openraft `Config::election_timeout_max` (ms); also the leader lease.
    pub election_timeout_max_ms: u64,
    /// openraft `Config::heartbeat_interval` (ms); also openraft's AppendEntries RPC timeout.
    pub heartbeat_ms: u64,
    /// openraft `Config::max_payload_entries`: most entries in one AppendEntries.
    pub max_payload_entries: u64,
    pub read_policy: ReadMode,
    /// openraft `Config::enable_pre_vote`.
    pub pre_vote: bool,
    /// openraft `Config::allow_log_reversion`: let a leader restart replication to a follower
    /// whose log lost entries it had acknowledged (a `crash` with `lose_unsynced`). openraft's
    /// own default is off: a release build then stops replicating to that follower for good
    /// (until a leader change) and a debug build trips a `debug_assert!`.
    pub allow_log_reversion: bool,
    /// Client back-off before a retry (after LeaseExpired, or when no leader is known).
    pub retry_min_ms: u64,
    pub retry_max_ms: u64,
    /// A client that hears nothing for this long re-sends to another member.
    pub resend_ms: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            heartbeat_ms: 50,
            max_payload_entries: 300,
            read_policy: ReadMode::ReadIndex,
            pre_vote: false,
            allow_log_reversion: true,
            retry_min_ms: 10,
            retry_max_ms: 20,
            resend_ms: 200,
        }
    }
}

impl Params {
    /// Rejects impossible values; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let k = "protocol.openraft";
        if self.heartbeat_ms == 0 {
            return Err(format!("{k}.heartbeat_ms must be > 0"));
        }
        if self.election_timeout_min_ms <= self.heartbeat_ms {
            return Err(format!(
                "{k}.election_timeout_min_ms ({}) must be > heartbeat_ms ({})",
                self.election_timeout_min_ms, self.heartbeat_ms
            ));
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return Err(format!(
                "{k}.election_timeout_max_ms ({}) must be > election_timeout_min_ms ({})",
                self.election_timeout_max_ms, self.election_timeout_min_ms
            ));
        }
        if self.max_payload_entries == 0 {
            return Err(format!("{k}.max_payload_entries must be > 0"));
        }
        if self.retry_max_ms < self.retry_min_ms {
            return Err(format!(
                "{k}.retry_max_ms ({}) must be >= retry_min_ms ({})",
                self.retry_max_ms, self.retry_min_ms
            ));
        }
        if self.resend_ms == 0 {
            return Err(format!("{k}.resend_ms must be > 0"));
        }
        self.raft_config().map(|_| ())
    }

    /// The openraft configuration these parameters stand for.
    pub fn raft_config(&self) -> Result<openraft::Config, String> {
        let c = openraft::Config {
            cluster_name: "quorumlab".into(),
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            heartbeat_interval: self.heartbeat_ms,
            max_payload_entries: self.max_payload_entries,
            // The whole log is kept: a restarted node rebuilds its state machine from it.
            snapshot_policy: openraft::SnapshotPolicy::Never,
            enable_pre_vote: Some(self.pre_vote),
            allow_log_reversion: Some(self.allow_log_reversion),
            ..Default::default()
        };
        c.validate()
            .map_err(|e| format!("protocol.openraft: openraft rejects the config: {e}"))
    }
}

/// The simulator timers of an openraft cluster process.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrTimer {
    /// A server's executor has a timer due.
    Wake,
    /// A client adapter timer.
    Client(AdTimer),
    /// The client timeout of the outstanding op.
    Deadline,
}

/// A client: the generic [`KvClient`] with the openraft adapter.
pub struct ClientProc {
    client: KvClient<Adapter>,
    state: Option<ClientState<AdState>>,
}

impl ClientProc {
    fn apply(
        &mut self,
        fx: Vec<ClientEffect<OrMsg, AdTimer>>,
        cx: &mut Ctx<'_, Wire<OrMsg>, OrTimer>,
    ) {
        for e in fx {
            match e {
                ClientEffect::Adapter(ClientCmd::Send(to, m)) => cx.send(to, Wire::Peer(m)),
                ClientEffect::Adapter(ClientCmd::SetTimer(t, r)) => {
                    let (lo, hi) = (nanos(r.start), nanos(r.end));
                    let d: Nanos = if hi > lo {
                        cx.rng().random_range(lo..hi)
                    } else {
                        lo
                    };
                    cx.set_timer(OrTimer::Client(t), d);
                }
                ClientEffect::Adapter(ClientCmd::CancelTimer(t)) => {
                    cx.cancel_timer(OrTimer::Client(t))
                }
                ClientEffect::SetDeadline(d) => cx.set_timer(OrTimer::Deadline, nanos(d)),
                ClientEffect::CancelDeadline => cx.cancel_timer(OrTimer::Deadline),
                ClientEffect::Done(req, outcome) => cx.send(driver(), Wire::Done(req, outcome)),
            }
        }
    }

    /// The adapter's state (known leaders), while up.
    pub fn adapter_state(&self) -> Option<&AdState> {
        self.state.as_ref().map(|s| &s.adapter)
    }
}

/// A process of an openraft cluster: a server node or a client.
pub enum OpenraftNode {
    Server(ServerProc),
    Client(ClientProc),
}

impl OpenraftNode {
    pub fn server(&self) -> Option<&ServerProc> {
        match self {
            OpenraftNode::Server(s) => Some(s),
            OpenraftNode::Client(_) => None,
        }
    }
}

impl Process for OpenraftNode {
    type Msg = Wire<OrMsg>;
    type Timer = OrTimer;

    fn start(&mut self, cx: &mut Ctx<'_, Self::Msg, Self::Timer>) {
        match self {
            OpenraftNode::Server(s) => s.start(cx),
            OpenraftNode::Client(c) => {
                let mut fx = Vec::new();
                let st = c.client.init(cx.id(), &mut fx);
                c.state = Some(st);
                c.apply(fx, cx);
            }
        }
    }

    fn on_msg(&mut self, cx: &mut Ctx<'_, Self::Msg, Self::Timer>, src: Id, msg: Self::Msg) {
        match (self, msg) {
            (OpenraftNode::Server(s), Wire::Peer(m)) => s.on_msg(cx, src, m),
            (OpenraftNode::Client(c), msg) => {
                let me = cx.id();
                let Some(st) = c.state.as_mut() else {
                    return;
                };
                let mut fx = Vec::new();
                match msg {
                    Wire::Peer(m) => c.client.on_msg(me, st, src, m, &mut fx),
                    Wire::Invoke(req) => c.client.invoke(st, req, &mut fx),
                    Wire::Done(..) => {}
                }
                c.apply(fx, cx);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, Self::Msg, Self::Timer>, timer: Self::Timer) {
        match (self, timer) {
            (OpenraftNode::Server(s), OrTimer::Wake) => s.on_wake(cx),
            (OpenraftNode::Client(c), t) => {
                let me = cx.id();
                let Some(st) = c.state.as_mut() else {
                    return;
                };
                let mut fx = Vec::new();
                match t {
                    OrTimer::Client(t) => c.client.on_adapter_timer(me, st, &t, &mut fx),
                    OrTimer::Deadline => c.client.on_deadline(me, st, &mut fx),
                    OrTimer::Wake => {}
                }
                c.apply(fx, cx);
            }
            _ => {}
        }
    }

    fn crash(&mut self, lose_unsynced: bool) {
        match self {
            OpenraftNode::Server(s) => {
                s.crash();
                if lose_unsynced {
                    s.lose_unsynced();
                }
            }
            OpenraftNode::Client(c) => c.state = None,
        }
    }
}

impl KvProcess for OpenraftNode {
    fn invoke_msg(req: Request) -> Self::Msg {
        Wire::Invoke(req)
    }
    fn completion(msg: Self::Msg) -> Option<(Request, Outcome)> {
        match msg {
            Wire::Done(r, o) => Some((r, o)),
            _ => None,
        }
    }
    fn leadership(&self) -> Vec<Leadership> {
        match self {
            OpenraftNode::Server(s) => s.leadership(),
            OpenraftNode::Client(_) => Vec::new(),
        }
    }
}

/// The protocol marker for the workload driver.
pub struct Openraft;

impl KvProtocol for Openraft {
    const NAME: &'static str = "openraft";
    const ABOUT: &'static str =
        "the openraft crate (0.10.0-alpha.37) on a simulator-clock executor, one Raft per group";
    type Params = Params;
    type Proc = OpenraftNode;

    fn check(params: &Params, _layout: &Layout) -> Result<(), String> {
        params.validate()
    }

    fn build(layout: &Layout, params: &Params, client: &ClientConfig) -> Vec<OpenraftNode> {
        let layout = Arc::new(layout.clone());
        let raft = params
            .raft_config()
            .expect("parameters are checked before build");
        let cfg = Arc::new(ServerConfig {
            raft: Arc::new(raft),
            read: params.read_policy,
            layout: layout.clone(),
        });
        let adapter = Adapter {
            layout: layout.clone(),
            retry: (
                Duration::from_millis(params.retry_min_ms),
                Duration::from_millis(params.retry_max_ms),
            ),
            resend: Duration::from_millis(params.resend_ms),
        };
        let servers =
            (0..layout.nodes).map(|i| OpenraftNode::Server(ServerProc::new(i as u64, cfg.clone())));
        let clients = (0..layout.clients).map(|_| {
            OpenraftNode::Client(ClientProc {
                client: KvClient::new(adapter.clone(), client.timeout),
                state: None,
            })
        });
        servers.chain(clients).collect()
    }
}
