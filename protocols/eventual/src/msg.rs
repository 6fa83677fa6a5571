//! Messages and timers.

use crate::object::{Obj, VV};
use quorumlab_kv::{Datum, Key, Value};
use quorumlab_sim::Message;
use serde::{Deserialize, Serialize};
use stateright::actor::Id;

/// How a coordinator answers a mutation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reply {
    /// W replicas (the coordinator included) acknowledged.
    Ok,
    /// Nothing was written (a read phase did not reach R, or no replica was reachable).
    Unavailable,
    /// Written locally and sent, but W acknowledgements did not come in time: may or may not
    /// be visible.
    Timeout,
    /// `add` on a key that holds a register.
    Precondition,
}

/// A register write's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PutVal {
    Reg(Value),
    Tomb,
}

/// Why a replica put is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Why {
    Write,
    ReadRepair,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Msg {
    // ---- client → coordinator ----
    /// Quorum read.
    Get {
        id: u64,
        key: Key,
    },
    /// A register write (or delete) with the causal context the client read.
    Put {
        id: u64,
        key: Key,
        ctx: VV,
        val: PutVal,
    },
    /// A statebox update: add `elem` to the set.
    Add {
        id: u64,
        key: Key,
        elem: Value,
    },
    // ---- coordinator → client ----
    GetOk {
        id: u64,
        datum: Option<Datum>,
        ctx: VV,
    },
    GetFail {
        id: u64,
    },
    Done {
        id: u64,
        reply: Reply,
    },
    // ---- coordinator ↔ replicas ----
    RGet {
        rid: u64,
        key: Key,
    },
    RGetResp {
        rid: u64,
        key: Key,
        obj: Option<Obj>,
    },
    /// Store (merge) `obj`; `hint`: the primary this fallback copy stands in for.
    RPut {
        rid: u64,
        key: Key,
        obj: Obj,
        hint: Option<Id>,
        why: Why,
    },
    RPutAck {
        rid: u64,
        key: Key,
    },
    /// Hinted handoff: a fallback offers its copy to a primary.
    Handoff {
        key: Key,
        obj: Obj,
    },
    /// The primary merged `obj` (echoed, so the fallback can tell if its copy changed since).
    HandoffAck {
        key: Key,
        obj: Obj,
    },
    /// Is a suspected node back?
    Ping,
    Pong,
}

impl Message for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Get { .. } => "get",
            Msg::Put { .. } => "put",
            Msg::Add { .. } => "add",
            Msg::GetOk { .. } | Msg::GetFail { .. } => "get_resp",
            Msg::Done { .. } => "done",
            Msg::RGet { .. } => "rget",
            Msg::RGetResp { .. } => "rget_resp",
            Msg::RPut {
                why: Why::Write, ..
            } => "rput",
            Msg::RPut {
                why: Why::ReadRepair,
                ..
            } => "read_repair",
            Msg::RPutAck { .. } => "rput_ack",
            Msg::Handoff { .. } => "handoff",
            Msg::HandoffAck { .. } => "handoff_ack",
            Msg::Ping => "ping",
            Msg::Pong => "pong",
        }
    }

    fn approx_bytes(&self) -> usize {
        match self {
            Msg::Put { ctx, .. } | Msg::GetOk { ctx, .. } => 48 + 16 * ctx.0.len(),
            Msg::RGetResp { obj, .. } => 32 + obj.as_ref().map_or(0, Obj::bytes),
            Msg::RPut { obj, .. } | Msg::Handoff { obj, .. } => 40 + obj.bytes(),
            Msg::HandoffAck { obj, .. } => 24 + obj.bytes(),
            _ => 32,
        }
    }
}

/// Server timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// Coordinator request `rid`: replicas that have not answered are suspected.
    Sloppy(u64),
    /// Coordinator request `rid`: give up.
    Expire(u64),
    /// Offer hinted copies to their primaries; ping suspected nodes.
    Handoff,
}

/// Client adapter timers: try the next node for call `id`, attempt `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Retry {
    pub id: u64,
    pub attempt: u32,
}
