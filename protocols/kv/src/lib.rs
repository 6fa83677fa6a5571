//! The KV contract every quorumlab protocol implements (see DESIGN.md, "The KV contract").
//!
//! * [`op`]: keys, values, operations and outcomes (`ok` / `fail` / `info`).
//! * [`history`]: the JSON Lines history format, shared by the recorder, the checker and reports.
//! * [`layout`]: servers, clients, groups (ensembles / Raft groups) and key placement.
//! * [`client`]: the generic client actor and the per-protocol [`ClientAdapter`] it drives.
//! * [`node`]: [`KvNode`], one actor type for servers and clients, and the [`KvProcess`] and
//!   [`KvProtocol`] traits through which the workload driver runs any protocol.

pub mod client;
pub mod history;
pub mod layout;
pub mod node;
pub mod op;

pub use client::{ClientAdapter, ClientCmd, ClientOut, ClientState, KvClient};
pub use layout::Layout;
pub use node::{
    ClientConfig, KvNode, KvProcess, KvProtocol, KvServer, Leadership, NodeState, NodeTimer, Wire,
};
pub use op::{Datum, FailKind, Key, KvMap, Op, Outcome, Request, Value, ValueSet};
