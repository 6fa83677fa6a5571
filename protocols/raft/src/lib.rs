//! `raft`: a compact, faithful Raft (Ongaro & Ousterhout 2014; Ongaro's thesis for reads, leases
//! and leader stickiness) behind the quorumlab KV contract, written as one `stateright` actor so
//! that the code the model checker explores is the code the experiments run.
//!
//! * [`Server`]: one actor per node, hosting one Raft replica for every group the [`Layout`] puts
//!   on that node (multi-Raft: the key space is split over `G` groups, `G = 1` by default).
//! * [`Adapter`]: the client side: known leader per group, redirects, back-off retries.
//! * [`Raft`]: the [`KvProtocol`] the workload driver runs; [`Params`] are its spec parameters.
//! * [`Variant`]: seeded classic bugs (`volatile_vote`, `commit_prior_term`, `unbounded_lease`).
//!
//! See `docs/protocols/raft.md` for what is implemented, what is simplified, and measured round
//! trips.

mod client;
pub mod log;
mod server;

pub use client::{Adapter, AdapterState, RetryTimer};
pub use log::Log;
pub use server::{Durable, GroupDurable, Lead, PendingRead, Replica, Role, Server, State, Timer};

use quorumlab_kv::{ClientConfig, KvClient, KvNode, KvProtocol, Layout, Outcome, Request};
use quorumlab_sim::{ActorProcess, Message};
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::time::Duration;

/// A Raft term.
pub type Term = u64;
/// A 1-based log index (0 = the empty prefix).
pub type Index = u64;

/// What a log entry asks the state machine to do.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Cmd {
    /// The entry a new leader appends at the start of its term (thesis §6.4: it lets the leader
    /// learn which entries are committed, and commit entries of earlier terms indirectly).
    Noop,
    /// A client operation; `client` is where the leader sends the outcome once applied.
    Kv { client: Id, req: Request },
}

/// A log entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub cmd: Cmd,
}

/// A server's answer to a client request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Resp {
    /// Applied (or read) with this outcome.
    Done(Outcome),
    /// Not accepted here: not the leader (hint: the leader this node knows, if any). The request
    /// was not appended to any log by this node, so the client may safely retry elsewhere.
    Redirect(Option<Id>),
    /// The request was appended but this node stopped leading before it was applied: its fate is
    /// unknown (it may still be committed by a later leader).
    Unknown,
}

/// Raft messages. `g` is the Raft group; `round` numbers the leader's AppendEntries broadcasts
/// within its term and is echoed in the acknowledgement (ReadIndex confirmation, leases, check
/// quorum).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Msg {
    /// AppendEntries request (also the heartbeat).
    Append {
        g: u32,
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: Index,
        round: u64,
    },
    /// AppendEntries response. On success `index` is the last index known to match the leader;
    /// on failure (`success == false`) `index` is the conflict index and `conflict_term` the
    /// term of the follower's conflicting entry, if it has one (fast backtracking, §5.3).
    AppendAck {
        g: u32,
        term: Term,
        success: bool,
        index: Index,
        conflict_term: Option<Term>,
        round: u64,
    },
    /// RequestVote request.
    Vote {
        g: u32,
        term: Term,
        last_index: Index,
        last_term: Term,
    },
    /// RequestVote response.
    VoteAck { g: u32, term: Term, granted: bool },
    /// A client request (the group follows from the key).
    ClientReq(Request),
    /// A server's answer to request `id`.
    ClientResp { id: u64, resp: Resp },
}

const ENTRY_BYTES: usize = 48;

impl Message for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Append { .. } => "append",
            Msg::AppendAck { .. } => "append_ack",
            Msg::Vote { .. } => "vote",
            Msg::VoteAck { .. } => "vote_ack",
            Msg::ClientReq(_) => "client_req",
            Msg::ClientResp {
                resp: Resp::Redirect(_),
                ..
            } => "redirect",
            Msg::ClientResp { .. } => "client_resp",
        }
    }
    fn approx_bytes(&self) -> usize {
        match self {
            // group, term, prev index/term, commit, round, length prefix.
            Msg::Append { entries, .. } => 52 + ENTRY_BYTES * entries.len(),
            Msg::AppendAck { .. } => 44,
            Msg::Vote { .. } => 28,
            Msg::VoteAck { .. } => 13,
            Msg::ClientReq(_) => 40,
            Msg::ClientResp { .. } => 24,
        }
    }
}

/// How reads are served (selectable in the spec as `read_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// Reads are log entries, like writes (one replication round per read).
    Log,
    /// The leader records its commit index, confirms it still leads with one heartbeat round
    /// acknowledged by a majority, and answers once it has applied up to that index (§6.4).
    #[default]
    ReadIndex,
    /// The leader answers locally while its lease (armed by timers at each heartbeat round,
    /// `lease_ms` of its own clock, renewed by majority acknowledgement) is valid; otherwise it
    /// falls back to `read_index` (§6.4.1).
    Lease,
}

/// Seeded classic bugs, selectable in the spec (`variant`) and by the model checker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// Raft as specified.
    #[default]
    Faithful,
    /// The current term and the vote are saved but not restored after a restart (the bug of
    /// stateright's own Raft example): a node can vote twice in one term, so two leaders can be
    /// elected in the same term (breaks election safety, then log matching and linearizability).
    VolatileVote,
    /// The leader commits any entry stored on a majority, also entries of earlier terms
    /// (Figure 8): a committed entry can then be overwritten by a later leader.
    CommitPriorTerm,
    /// Lease reads are served whenever the node believes it leads, without the clock bound: a
    /// deposed leader cut off from the majority serves stale reads. Implies `read_mode = "lease"`.
    UnboundedLease,
}

/// The `[protocol.raft]` section of an experiment spec. The replication factor `n`
/// (`cluster.replicas`), the number of groups `G` (`cluster.groups`) and the client timeout come
/// from the shared sections of the spec.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound (exclusive) of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Leader heartbeat (empty AppendEntries) interval.
    pub heartbeat_ms: u64,
    /// Most entries in one AppendEntries message.
    pub max_entries_per_append: usize,
    pub read_mode: ReadMode,
    /// Lease duration on the leader's clock, counted from when a heartbeat round is sent. Must
    /// not exceed `election_timeout_min_ms`; the margin covers clock drift (the default 120 of
    /// 150 ms tolerates rates within about ±11%).
    pub lease_ms: u64,
    /// A leader that has not heard from a majority for `election_timeout_max_ms` steps down
    /// (thesis §6.2), so clients stop waiting on a deposed leader.
    pub check_quorum: bool,
    /// Client back-off before retrying after a redirect without a usable leader hint.
    pub retry_min_ms: u64,
    pub retry_max_ms: u64,
    pub variant: Variant,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            heartbeat_ms: 50,
            max_entries_per_append: 64,
            read_mode: ReadMode::ReadIndex,
            lease_ms: 120,
            check_quorum: true,
            retry_min_ms: 10,
            retry_max_ms: 20,
            variant: Variant::Faithful,
        }
    }
}

impl Params {
    /// The read mode in force (`unbounded_lease` forces lease reads).
    pub fn effective_read_mode(&self) -> ReadMode {
        if self.variant == Variant::UnboundedLease {
            ReadMode::Lease
        } else {
            self.read_mode
        }
    }

    /// Rejects impossible values; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let k = "protocol.raft";
        if self.election_timeout_min_ms == 0 {
            return Err(format!("{k}.election_timeout_min_ms must be > 0"));
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return Err(format!(
                "{k}.election_timeout_max_ms ({}) must be > election_timeout_min_ms ({})",
                self.election_timeout_max_ms, self.election_timeout_min_ms
            ));
        }
        if self.heartbeat_ms == 0 || self.heartbeat_ms >= self.election_timeout_min_ms {
            return Err(format!(
                "{k}.heartbeat_ms ({}) must be > 0 and < election_timeout_min_ms ({})",
                self.heartbeat_ms, self.election_timeout_min_ms
            ));
        }
        if self.max_entries_per_append == 0 {
            return Err(format!("{k}.max_entries_per_append must be >= 1"));
        }
        if self.lease_ms == 0 || self.lease_ms > self.election_timeout_min_ms {
            return Err(format!(
                "{k}.lease_ms ({}) must be > 0 and <= election_timeout_min_ms ({})",
                self.lease_ms, self.election_timeout_min_ms
            ));
        }
        if self.retry_min_ms > self.retry_max_ms {
            return Err(format!(
                "{k}.retry_min_ms ({}) must be <= retry_max_ms ({})",
                self.retry_min_ms, self.retry_max_ms
            ));
        }
        Ok(())
    }
}

/// The protocol marker for the workload driver.
pub struct Raft;

/// A node of a Raft KV cluster (server or client).
pub type Node = KvNode<Server, Adapter>;

impl Raft {
    /// The server actors and client adapters for `layout` (also for the model checker, which
    /// builds its own clients).
    pub fn server(layout: &Layout, params: &Params) -> Server {
        Server::new(layout.clone(), params.clone())
    }

    pub fn adapter(layout: &Layout, params: &Params) -> Adapter {
        Adapter::new(
            layout,
            Duration::from_millis(params.retry_min_ms),
            Duration::from_millis(params.retry_max_ms),
        )
    }
}

impl KvProtocol for Raft {
    const NAME: &'static str = "raft";
    const ABOUT: &'static str =
        "Raft (multi-Raft over G groups): leader election, log replication, read_index/lease/log reads";
    type Params = Params;
    type Proc = ActorProcess<Node>;

    fn check(params: &Params, layout: &Layout) -> Result<(), String> {
        params.validate()?;
        if layout.groups.len() > u32::MAX as usize {
            return Err("cluster.groups is too large".into());
        }
        Ok(())
    }

    fn build(layout: &Layout, params: &Params, client: &ClientConfig) -> Vec<Self::Proc> {
        let server = Raft::server(layout, params);
        let adapter = Raft::adapter(layout, params);
        let servers = (0..layout.nodes).map(|_| KvNode::Server(server.clone()));
        let clients = (0..layout.clients)
            .map(|_| KvNode::Client(KvClient::new(adapter.clone(), client.timeout)));
        servers.chain(clients).map(ActorProcess::new).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_defaults_and_errors() {
        let p = Params::default();
        assert!(p.validate().is_ok());
        let bad = Params {
            heartbeat_ms: 200,
            ..Params::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .contains("protocol.raft.heartbeat_ms"));
        let bad = Params {
            lease_ms: 151,
            ..Params::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .contains("protocol.raft.lease_ms"));
    }
}
