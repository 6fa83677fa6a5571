//! Wire types: facts, objects, versions, peer messages, client messages and timers.

use quorumlab_kv::{Datum, Key, Request};
use quorumlab_sim::Message;
use serde::{Deserialize, Serialize};
use stateright::actor::Id;

/// An ensemble number (an index into `Layout::groups`).
pub type Ens = u32;

/// An object version `(epoch, seq)`; versions order lexicographically (riak's
/// `riak_ensemble_backend:latest_obj/3`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Version {
    pub epoch: u64,
    pub seq: u64,
}

/// The consensus metadata of one peer (riak's `#fact{}`), minus the view fields: membership
/// change is not implemented, so `views` is always `[preference list]` and lives in the
/// configuration instead of in every message.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Fact {
    pub epoch: u64,
    pub seq: u64,
    pub leader: Option<Id>,
}

impl Fact {
    pub fn vsn(&self) -> (u64, u64) {
        (self.epoch, self.seq)
    }
}

/// A K/V object: a value or a tombstone (`value: None`, riak's `notfound` value), with the
/// version that wrote it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Obj {
    pub value: Option<Datum>,
    pub version: Version,
}

/// The body of a reply to a peer request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Body {
    /// Reply to `probe` and to an accepted `prepare`: the replier's fact.
    Fact(Fact),
    /// Reply to `commit`, `new_epoch`, `check_epoch`.
    Ok,
    /// Reply to a K/V `get` (`None` = notfound) or `put` (the stored object).
    Obj(Option<Obj>),
    /// Refusal; counts against the quorum.
    Nack,
}

/// What the leader answers a client (riak's `std_reply()`), plus a distinct precondition
/// failure (riak answers `failed` for both; the KV contract wants to know).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum KvReply {
    /// `{ok, Obj}`: the op took effect; for a get, the value read.
    Ok(Option<Datum>),
    /// `failed` because the precondition of a put_once / kupdate / kmodify was false.
    Precondition,
    /// `failed` for any other reason (a get whose read or rewrite failed).
    Failed,
    /// `timeout` (a quorum failed after writes may have been sent, or `check_epoch` failed).
    Timeout,
    /// `unavailable`.
    Unavailable,
}

/// Test hooks equivalent to riak_ensemble's `rt_intercept` (see the ported scenarios):
/// delivered by the driver (`Sim::inject`) to a server, never sent by the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Intercept {
    /// Followers on this node answer every `check_epoch` with nack (`check_epoch_false`).
    CheckEpochFalse(bool),
    /// The backend on this node acknowledges puts without storing them (`drop_put`).
    DropPuts(bool),
    /// Overrides `trust_lease` on this node (`application:set_env(trust_lease, ..)`).
    TrustLease(Option<bool>),
    /// Overrides `lease_duration` (ms) on this node.
    LeaseMs(Option<u64>),
    /// Overrides `notfound_read_delay` (ms) on this node.
    NotfoundDelayMs(Option<u64>),
}

/// Every message of the protocol. `ens` is the ensemble; `req` a request id unique per
/// sender incarnation, echoed by the reply.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Msg {
    // ---- election and heartbeat (riak_ensemble_peer core protocol) ----
    Probe {
        ens: Ens,
        req: u64,
    },
    Prepare {
        ens: Ens,
        req: u64,
        epoch: u64,
    },
    NewEpoch {
        ens: Ens,
        req: u64,
        epoch: u64,
    },
    Commit {
        ens: Ens,
        req: u64,
        fact: Fact,
    },
    // ---- K/V between the leader and its followers ----
    Get {
        ens: Ens,
        req: u64,
        key: Key,
        epoch: u64,
    },
    Put {
        ens: Ens,
        req: u64,
        key: Key,
        obj: Obj,
        epoch: u64,
    },
    CheckEpoch {
        ens: Ens,
        req: u64,
        epoch: u64,
    },
    /// Asynchronous integrity-tree update after a successful put (no reply).
    UpdateHash {
        ens: Ens,
        key: Key,
        version: Version,
    },
    Reply {
        ens: Ens,
        req: u64,
        body: Body,
    },
    // ---- clients ----
    /// A client request, to any member of the key's ensemble.
    ClientReq {
        ens: Ens,
        req: Request,
    },
    /// A follower passes a client request on to the leader it follows.
    Forward {
        ens: Ens,
        client: Id,
        req: Request,
    },
    /// The leader's answer, sent straight to the client.
    ClientResp {
        id: u64,
        reply: KvReply,
    },
    /// A peer that neither leads nor follows refused the request before doing anything
    /// (riak: `nack`); `leader` is its best guess.
    Redirect {
        id: u64,
        leader: Option<Id>,
    },
    /// Test hook (see [`Intercept`]).
    Intercept(Intercept),
}

impl Message for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Probe { .. } => "probe",
            Msg::Prepare { .. } => "prepare",
            Msg::NewEpoch { .. } => "new_epoch",
            Msg::Commit { .. } => "commit",
            Msg::Get { .. } => "get",
            Msg::Put { .. } => "put",
            Msg::CheckEpoch { .. } => "check_epoch",
            Msg::UpdateHash { .. } => "update_hash",
            Msg::Reply { body, .. } => match body {
                Body::Fact(_) => "fact",
                Body::Ok => "ack",
                Body::Obj(_) => "obj",
                Body::Nack => "nack",
            },
            Msg::ClientReq { .. } => "client_req",
            Msg::Forward { .. } => "forward",
            Msg::ClientResp { .. } => "client_resp",
            Msg::Redirect { .. } => "redirect",
            Msg::Intercept(_) => "intercept",
        }
    }

    fn approx_bytes(&self) -> usize {
        // A header (type, ensemble, request id, sender) of ~24 bytes, plus the payload.
        const H: usize = 24;
        const FACT: usize = 24;
        const OBJ: usize = 8 + 16 + 4; // value, version, key
        const REQ: usize = 8 + 4 + 17; // id, key, op
        H + match self {
            Msg::Probe { .. } => 0,
            Msg::Prepare { .. } | Msg::NewEpoch { .. } | Msg::CheckEpoch { .. } => 8,
            Msg::Commit { .. } => FACT,
            Msg::Get { .. } => 4 + 8,
            Msg::Put { .. } => OBJ + 8,
            Msg::UpdateHash { .. } => 4 + 16,
            Msg::Reply { body, .. } => match body {
                Body::Fact(_) => FACT,
                Body::Obj(_) => OBJ,
                Body::Ok | Body::Nack => 1,
            },
            Msg::ClientReq { .. } => REQ,
            Msg::Forward { .. } => REQ + 8,
            Msg::ClientResp { .. } => 8 + 9,
            Msg::Redirect { .. } => 8 + 8,
            Msg::Intercept(_) => 8,
        }
    }
}

/// Which quorum collection a timer belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// riak's single per-peer FSM timer (`set_timer/3`): probe delay, election timeout,
    /// prefollow timeout, follower timeout or leader tick, depending on the peer's state.
    State(Ens),
    /// The quorum wait of the peer's own FSM request (probe, prepare, new_epoch, tick commit).
    FsmQuorum(Ens),
    /// The quorum wait of K/V worker `w` (inactivity: reset by every reply, like riak's
    /// collector).
    WorkerQuorum(Ens, u32),
    /// `notfound_read_delay` of worker `w` (waiting for all replies after a quorum).
    NotfoundDelay(Ens, u32),
    /// The leader lease ran out (`riak_ensemble_lease`).
    LeaseExpire(Ens),
}
