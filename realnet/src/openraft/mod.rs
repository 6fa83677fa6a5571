//! `openraft` over real networks: the [openraft](https://docs.rs/openraft) crate
//! (`=0.10.0-alpha.37`) on tokio (`openraft-rt-tokio`), its RPCs over the same authenticated TCP
//! frames as the other protocols ([`net`]), its vote and log in a checksummed append-only log on
//! disk ([`store`]), one `Raft` per group the node belongs to.
//!
//! What is shared with the simulated `openraft` protocol (crate `quorumlab-openraft`): the
//! client adapter and its messages ([`quorumlab_openraft::client::Adapter`],
//! [`quorumlab_openraft::net::OrMsg`]: the load process runs the very same client code), the
//! replicated map with its de-duplication of retried requests
//! ([`quorumlab_openraft::store::KvData`]), the log command ([`quorumlab_openraft::store::Cmd`])
//! and the `[protocol.openraft]` parameters, the state machine
//! ([`quorumlab_openraft::store::StateMachine`], for any
//! [`quorumlab_openraft::store::KvConfig`]) and the handling of client requests
//! ([`quorumlab_openraft::server::answer_client`]). What differs: the type configuration (the
//! tokio runtime instead of the simulator-clock executor), hence the storage and network glue in
//! this module.

pub mod net;
pub mod node;
pub mod store;

use crate::codec::{Endpoints, RealProtocol};
use openraft::alias::{SnapshotMetaOf, VoteOf};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use quorumlab_kv::{KvClient, KvNode, KvServer, Layout, Leadership};
use quorumlab_openraft::client::Adapter;
use quorumlab_openraft::net::OrMsg;
use quorumlab_openraft::store::{Cmd, KvData};
use quorumlab_workloads::Spec;
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};
use std::sync::Arc;
use std::time::Duration;

openraft::declare_raft_types!(
    /// The type configuration of real-mode openraft: as the simulated one
    /// (`quorumlab_openraft::store::TC`) but on the tokio runtime.
    pub TT:
        D = Cmd,
        R = quorumlab_kv::Outcome,
        Node = openraft::EmptyNode,
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>,
        AsyncRuntime = openraft_rt_tokio::TokioRuntime,
);

impl quorumlab_openraft::store::KvConfig for TT {}

pub type Vote = VoteOf<TT>;

/// The body of an openraft RPC (request or reply) between two nodes.
#[derive(Debug, Serialize, Deserialize)]
pub enum RpcBody {
    Vote(VoteRequest<TT>),
    PreVote(VoteRequest<TT>),
    VoteResp(VoteResponse<TT>),
    Append(AppendEntriesRequest<TT>),
    AppendResp(AppendEntriesResponse<TT>),
    Snapshot(Vote, SnapshotMetaOf<TT>, KvData),
    SnapshotResp(SnapshotResponse<TT>),
}

impl RpcBody {
    pub fn is_reply(&self) -> bool {
        matches!(
            self,
            RpcBody::VoteResp(_) | RpcBody::AppendResp(_) | RpcBody::SnapshotResp(_)
        )
    }
}

/// Every frame of a real openraft cluster: the client protocol of the simulated `openraft`
/// (unchanged), or an RPC of group `group` numbered `rpc` by its sender.
#[derive(Debug, Serialize, Deserialize)]
pub enum OrWire {
    Kv(OrMsg),
    Rpc { group: u32, rpc: u64, body: RpcBody },
}

/// The server side of a real openraft cluster is not an actor (see [`node`]); the load process
/// only hosts clients, so the server slot of its endpoints holds this placeholder.
#[derive(Clone, Debug)]
pub struct NoServer;

impl Actor for NoServer {
    type Msg = OrMsg;
    type Timer = ();
    type State = ();
    type Storage = ();
    type Random = ();
    fn on_start(&self, _: Id, _: &Option<()>, _: &mut Out<Self>) {}
}

impl KvServer for NoServer {
    fn leadership(&self, _: &()) -> Vec<Leadership> {
        Vec::new()
    }
}

/// The client adapter of the simulated `openraft` protocol, built from the spec.
pub fn adapter(spec: &Spec, layout: &Layout) -> Adapter {
    let p = &spec.protocol.openraft;
    Adapter {
        layout: Arc::new(layout.clone()),
        retry: (
            Duration::from_millis(p.retry_min_ms),
            Duration::from_millis(p.retry_max_ms),
        ),
        resend: Duration::from_millis(p.resend_ms),
    }
}

/// openraft in a load process: the simulated protocol's clients, frames as [`OrWire::Kv`].
pub struct OpenraftReal;

impl RealProtocol for OpenraftReal {
    const NAME: &'static str = "openraft";
    type S = NoServer;
    type C = Adapter;

    fn endpoints(spec: &Spec, layout: &Layout) -> Result<Endpoints<Self>, String> {
        spec.protocol.openraft.validate()?;
        let a = adapter(spec, layout);
        let timeout = Duration::from_secs_f64(spec.workload.timeout_ms.max(1.0) / 1000.0);
        let servers = (0..layout.nodes).map(|_| KvNode::Server(NoServer));
        let clients =
            (0..layout.clients).map(|_| KvNode::Client(KvClient::new(a.clone(), timeout)));
        Ok(servers.chain(clients).collect())
    }
    fn enc_msg(m: &OrMsg) -> Vec<u8> {
        postcard::to_stdvec(&OrWire::Kv(m.clone())).expect("postcard encodes plain data")
    }
    fn dec_msg(b: &[u8]) -> Option<OrMsg> {
        match postcard::from_bytes(b).ok()? {
            OrWire::Kv(m) => Some(m),
            OrWire::Rpc { .. } => None,
        }
    }
    fn enc_storage(_: &()) -> Vec<u8> {
        Vec::new()
    }
    fn dec_storage(_: &[u8]) -> Option<()> {
        Some(())
    }
}
