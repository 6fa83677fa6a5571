//! `single`: one unreplicated node behind the KV contract. The floor every replicated protocol is
//! measured against: one client round trip per op and nothing else. Node 0 serves every key; the
//! other server nodes of the layout idle. Each mutation is saved durably before the reply, so a
//! crash loses nothing acknowledged (unless the crash also loses un-synced writes).

use quorumlab_kv::{
    ClientAdapter, ClientConfig, ClientOut, KvClient, KvMap, KvNode, KvProtocol, KvServer, Layout,
    Leadership, Outcome, Request,
};
use quorumlab_sim::{ActorProcess, Message};
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};
use std::borrow::Cow;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Msg {
    Req(Request),
    Resp(u64, Outcome),
}

impl Message for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Req(_) => "request",
            Msg::Resp(..) => "response",
        }
    }
    fn approx_bytes(&self) -> usize {
        40
    }
}

/// The server: a map, saved on every change.
#[derive(Clone, Debug)]
pub struct Server;

impl Actor for Server {
    type Msg = Msg;
    type Timer = ();
    type State = KvMap;
    type Storage = KvMap;
    type Random = ();

    fn on_start(
        &self,
        _id: Id,
        storage: &Option<Self::Storage>,
        _o: &mut Out<Self>,
    ) -> Self::State {
        storage.clone().unwrap_or_default()
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<Self::State>, src: Id, msg: Msg, o: &mut Out<Self>) {
        if let Msg::Req(req) = msg {
            let (outcome, changed) = if req.op.is_mutation() {
                req.apply_to(state.to_mut())
            } else {
                (req.op.apply(state.get(&req.key).cloned()).0, false)
            };
            if changed {
                o.save(state.as_ref().clone());
            }
            o.send(src, Msg::Resp(req.id, outcome));
        }
    }
}

impl KvServer for Server {
    fn leadership(&self, _state: &Self::State) -> Vec<Leadership> {
        Vec::new()
    }
}

/// The client adapter: everything goes to node 0.
#[derive(Clone, Debug)]
pub struct Adapter;

impl ClientAdapter for Adapter {
    type Msg = Msg;
    type Timer = ();
    type State = ();

    fn init(&self, _me: Id) {}

    fn begin(&self, _st: &mut (), req: &Request, o: &mut ClientOut<Msg, ()>) {
        o.send(Id::from(0), Msg::Req(*req));
    }

    fn on_msg(
        &self,
        _st: &mut (),
        call: Option<&Request>,
        _src: Id,
        msg: Msg,
        _o: &mut ClientOut<Msg, ()>,
    ) -> Option<Outcome> {
        match (call, msg) {
            (Some(req), Msg::Resp(id, outcome)) if req.id == id => Some(outcome),
            _ => None,
        }
    }
}

/// `single` has no parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {}

pub struct Single;

pub type Node = KvNode<Server, Adapter>;

impl KvProtocol for Single {
    const NAME: &'static str = "single";
    const ABOUT: &'static str = "one unreplicated node (the floor: one client round trip per op)";
    type Params = Params;
    type Proc = ActorProcess<Node>;

    fn build(layout: &Layout, _params: &Params, client: &ClientConfig) -> Vec<Self::Proc> {
        let servers = (0..layout.nodes).map(|_| KvNode::Server(Server));
        let clients =
            (0..layout.clients).map(|_| KvNode::Client(KvClient::new(Adapter, client.timeout)));
        servers.chain(clients).map(ActorProcess::new).collect()
    }
}
