//! `ensemble`: riak_ensemble's per-key Multi-Paxos ensembles (basho/riak_ensemble, branch
//! `develop`), as a stateright actor that runs unchanged in the simulator and in the model
//! checker.
//!
//! * The key space is hashed onto `G` ring partitions (`Layout::group_of`); each is an
//!   ensemble of `n` peers on distinct nodes (the preference list, `Layout::groups[g]`).
//! * One [`Server`] actor per node hosts one [`Peer`] for each ensemble placed on the node;
//!   every message and timer carries its ensemble.
//! * A peer is riak_ensemble_peer's state machine (probe, election, prefollow, prepare,
//!   prelead, leading, following), with riak_ensemble_msg's quorum collection, the
//!   riak_ensemble_lease lease (a timer: drift of the node's clock acts on it as on a real
//!   node) and the leader's K/V workers (freshness test, quorum read + rewrite, overwrite,
//!   put_once, kmodify).
//! * [`Adapter`] is the client side: routing, forwarding, redirects, back-off.
//!
//! docs/protocols/ensemble.md maps this code onto riak_ensemble's modules and names every
//! simplification and variant.

mod client;
mod msg;
mod params;
mod peer;
mod server;
mod store;

pub use client::{outcome, Adapter, AdapterState, Attempt, Retry};
pub use msg::{Body, Ens, Fact, Intercept, KvReply, Msg, Obj, Timer, Version};
pub use params::{Cfg, Params, Variant};
pub use peer::{
    Active, Collect, Deferred, FsmOp, FsmWhat, Intercepts, Job, Peer, Required, Role, Step, Then,
    Worker,
};
pub use server::{NodeSt, Server};
pub use store::{NodeDurable, PeerDurable, Rec, Store, FAN};

use quorumlab_kv::{ClientConfig, KvClient, KvNode, KvProtocol, Layout, NodeState};
use quorumlab_sim::ActorProcess;
use std::sync::Arc;
use std::time::Duration;

/// A node of an ensemble cluster (server or client).
pub type Node = KvNode<Server, Adapter>;
/// A simulated process of an ensemble cluster.
pub type Proc = ActorProcess<Node>;

/// The protocol marker for the workload driver.
pub struct Ensemble;

impl Ensemble {
    /// The server actor for `layout` and `params`.
    pub fn server(layout: &Layout, params: &Params) -> Server {
        Server {
            cfg: Arc::new(Cfg::new(params, layout)),
        }
    }

    /// The client adapter for `layout` and `params`.
    pub fn adapter(layout: &Layout, params: &Params) -> Adapter {
        Adapter {
            layout: Arc::new(layout.clone()),
            backoff: Duration::from_millis(params.retry_backoff_ms),
        }
    }
}

impl KvProtocol for Ensemble {
    const NAME: &'static str = "ensemble";
    const ABOUT: &'static str =
        "riak_ensemble: per-key Multi-Paxos ensembles with leader leases (G ensembles of n peers)";
    type Params = Params;
    type Proc = Proc;

    fn check(params: &Params, layout: &Layout) -> Result<(), String> {
        params.check()?;
        if layout.groups.len() > u32::MAX as usize {
            return Err("cluster.groups is too large for the ensemble protocol".into());
        }
        Ok(())
    }

    fn build(layout: &Layout, params: &Params, client: &ClientConfig) -> Vec<Proc> {
        let server = Ensemble::server(layout, params);
        let adapter = Ensemble::adapter(layout, params);
        let servers = (0..layout.nodes).map(|_| KvNode::Server(server.clone()));
        let clients = (0..layout.clients)
            .map(|_| KvNode::Client(KvClient::new(adapter.clone(), client.timeout)));
        servers.chain(clients).map(ActorProcess::new).collect()
    }
}

/// The server state of a simulated process (`None` for clients and crashed nodes).
pub fn node_state(p: &Proc) -> Option<&NodeSt> {
    match p.state() {
        Some(NodeState::Server(Some(s))) => Some(s),
        _ => None,
    }
}

/// The durable storage of a simulated server process.
pub fn node_storage(p: &Proc) -> Option<&NodeDurable> {
    p.storage()
}

#[cfg(test)]
mod tests;
