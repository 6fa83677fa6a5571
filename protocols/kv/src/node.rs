//! One actor type for a whole KV cluster: servers of a protocol and generic clients, talking
//! [`Wire`] messages. The same [`KvNode`] runs in the simulator (through
//! `quorumlab_sim::ActorProcess`) and in stateright's model checker.

use crate::client::{ClientAdapter, ClientCmd, ClientEffect, ClientState, KvClient};
use crate::layout::Layout;
use crate::op::{Outcome, Request};
use quorumlab_sim::{driver, ActorProcess, Message, Process};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Command, Id, Out};
use std::borrow::Cow;
use std::fmt::Debug;
use std::time::Duration;

/// Messages of a KV cluster.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Wire<M> {
    /// A protocol message (server ↔ server, client ↔ server).
    Peer(M),
    /// The driver asks a client to invoke a request.
    Invoke(Request),
    /// A client reports a completed request to the driver.
    Done(Request, Outcome),
}

impl<M: Message> Message for Wire<M> {
    fn kind(&self) -> &'static str {
        match self {
            Wire::Peer(m) => m.kind(),
            Wire::Invoke(_) => "invoke",
            Wire::Done(..) => "done",
        }
    }
    fn approx_bytes(&self) -> usize {
        match self {
            Wire::Peer(m) => m.approx_bytes(),
            _ => 32,
        }
    }
}

/// Timers of a KV cluster node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeTimer<S, C> {
    Server(S),
    Client(C),
    /// The client timeout of the outstanding op.
    Deadline,
}

/// State of a KV cluster node. The server state sits in an `Option` only so that it can be
/// moved out and back without a clone while a handler runs; it is always `Some`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NodeState<S, C> {
    Server(Option<S>),
    Client(ClientState<C>),
}

impl<S, C> NodeState<S, C> {
    pub fn server(&self) -> Option<&S> {
        match self {
            NodeState::Server(s) => s.as_ref(),
            NodeState::Client(_) => None,
        }
    }
    pub fn client(&self) -> Option<&ClientState<C>> {
        match self {
            NodeState::Client(c) => Some(c),
            NodeState::Server(_) => None,
        }
    }
}

/// Who leads what, as a server sees itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Leadership {
    pub group: usize,
    /// Epoch (ensemble) or term (Raft).
    pub term: u64,
}

/// A protocol's server actor.
pub trait KvServer: Actor {
    /// The groups this server currently leads by its own state (it may be a deposed leader that
    /// has not noticed yet; the driver breaks ties by the highest term).
    fn leadership(&self, state: &Self::State) -> Vec<Leadership>;
}

/// A server or a client of a protocol with server actor `S` and client adapter `C`.
#[derive(Clone, Debug)]
pub enum KvNode<S, C> {
    Server(S),
    Client(KvClient<C>),
}

fn lift_server<S, C>(out: Out<S>, o: &mut Out<KvNode<S, C>>)
where
    S: Actor,
    C: ClientAdapter<Msg = S::Msg>,
{
    for cmd in out {
        match cmd {
            Command::Send(to, m) => o.send(to, Wire::Peer(m)),
            Command::SetTimer(t, r) => o.set_timer(NodeTimer::Server(t), r),
            Command::CancelTimer(t) => o.cancel_timer(NodeTimer::Server(t)),
            Command::ChooseRandom(k, v) => o.choose_random(k, v),
            Command::Save(s) => o.save(s),
        }
    }
}

fn lift_client<S, C>(fx: Vec<ClientEffect<C::Msg, C::Timer>>, o: &mut Out<KvNode<S, C>>)
where
    S: Actor,
    C: ClientAdapter<Msg = S::Msg>,
{
    for e in fx {
        match e {
            ClientEffect::Adapter(ClientCmd::Send(to, m)) => o.send(to, Wire::Peer(m)),
            ClientEffect::Adapter(ClientCmd::SetTimer(t, r)) => {
                o.set_timer(NodeTimer::Client(t), r)
            }
            ClientEffect::Adapter(ClientCmd::CancelTimer(t)) => {
                o.cancel_timer(NodeTimer::Client(t))
            }
            ClientEffect::SetDeadline(d) => o.set_timer(NodeTimer::Deadline, d..d),
            ClientEffect::CancelDeadline => o.cancel_timer(NodeTimer::Deadline),
            ClientEffect::Done(req, outcome) => o.send(driver(), Wire::Done(req, outcome)),
        }
    }
}

/// Runs a server handler on the server part of `state` without cloning it when it is owned.
fn with_server<S: Actor, C: Clone>(
    state: &mut Cow<NodeState<S::State, C>>,
    f: impl FnOnce(&mut Cow<S::State>),
) {
    match state {
        Cow::Owned(NodeState::Server(slot)) => {
            let s = slot.take().expect("server state present");
            let mut c = Cow::Owned(s);
            f(&mut c);
            *slot = Some(c.into_owned());
        }
        Cow::Borrowed(NodeState::Server(Some(s))) => {
            let mut c: Cow<S::State> = Cow::Borrowed(s);
            f(&mut c);
            if let Cow::Owned(new) = c {
                *state = Cow::Owned(NodeState::Server(Some(new)));
            }
        }
        _ => {}
    }
}

/// Runs a client handler on the client part of `state`.
fn with_client<S: Clone, C: Clone>(
    state: &mut Cow<NodeState<S, C>>,
    f: impl FnOnce(&mut ClientState<C>),
) {
    if let NodeState::Client(c) = state.to_mut() {
        f(c)
    }
}

impl<S, C> Actor for KvNode<S, C>
where
    S: Actor,
    C: ClientAdapter<Msg = S::Msg>,
    C::State: PartialEq,
{
    type Msg = Wire<S::Msg>;
    type Timer = NodeTimer<S::Timer, C::Timer>;
    type State = NodeState<S::State, C::State>;
    type Storage = S::Storage;
    type Random = S::Random;

    fn on_start(&self, id: Id, storage: &Option<S::Storage>, o: &mut Out<Self>) -> Self::State {
        match self {
            KvNode::Server(s) => {
                let mut so = Out::new();
                let st = s.on_start(id, storage, &mut so);
                lift_server(so, o);
                NodeState::Server(Some(st))
            }
            KvNode::Client(c) => {
                let mut fx = Vec::new();
                let st = c.init(id, &mut fx);
                lift_client(fx, o);
                NodeState::Client(st)
            }
        }
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut Cow<Self::State>,
        src: Id,
        msg: Self::Msg,
        o: &mut Out<Self>,
    ) {
        match (self, msg) {
            (KvNode::Server(s), Wire::Peer(m)) => {
                let mut so = Out::new();
                with_server::<S, C::State>(state, |st| s.on_msg(id, st, src, m, &mut so));
                lift_server(so, o);
            }
            (KvNode::Client(c), Wire::Peer(m)) => {
                let mut fx = Vec::new();
                with_client(state, |st| c.on_msg(id, st, src, m, &mut fx));
                lift_client(fx, o);
            }
            (KvNode::Client(c), Wire::Invoke(req)) => {
                let mut fx = Vec::new();
                with_client(state, |st| c.invoke(st, req, &mut fx));
                lift_client(fx, o);
            }
            _ => {}
        }
    }

    fn on_timeout(
        &self,
        id: Id,
        state: &mut Cow<Self::State>,
        timer: &Self::Timer,
        o: &mut Out<Self>,
    ) {
        match (self, timer) {
            (KvNode::Server(s), NodeTimer::Server(t)) => {
                let mut so = Out::new();
                with_server::<S, C::State>(state, |st| s.on_timeout(id, st, t, &mut so));
                lift_server(so, o);
            }
            (KvNode::Client(c), NodeTimer::Client(t)) => {
                let mut fx = Vec::new();
                with_client(state, |st| c.on_adapter_timer(id, st, t, &mut fx));
                lift_client(fx, o);
            }
            (KvNode::Client(c), NodeTimer::Deadline) => {
                let mut fx = Vec::new();
                with_client(state, |st| c.on_deadline(id, st, &mut fx));
                lift_client(fx, o);
            }
            _ => {}
        }
    }

    fn on_random(
        &self,
        id: Id,
        state: &mut Cow<Self::State>,
        random: &Self::Random,
        o: &mut Out<Self>,
    ) {
        if let KvNode::Server(s) = self {
            let mut so = Out::new();
            with_server::<S, C::State>(state, |st| s.on_random(id, st, random, &mut so));
            lift_server(so, o);
        }
    }

    fn name(&self) -> String {
        match self {
            KvNode::Server(s) => s.name(),
            KvNode::Client(_) => "client".into(),
        }
    }
}

/// What the workload driver needs from a simulated KV process, whatever hosts it.
pub trait KvProcess: Process {
    /// The message that makes a client invoke `req`.
    fn invoke_msg(req: Request) -> Self::Msg;
    /// A completion, if `msg` (sent to the driver) is one.
    fn completion(msg: Self::Msg) -> Option<(Request, Outcome)>;
    /// The groups this process leads by its own state (empty for clients and down nodes).
    fn leadership(&self) -> Vec<Leadership>;
    /// Protocol-specific counters of this process (e.g. statebox ops pruned, hinted
    /// handoffs), reported in `summary.json` as `protocol_counters`: summed over processes,
    /// except names starting with `max_`, which take the maximum.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

impl<S, C> KvProcess for ActorProcess<KvNode<S, C>>
where
    S: KvServer,
    S::Msg: Message,
    S::Timer: Ord,
    C: ClientAdapter<Msg = S::Msg>,
{
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
        match (self.actor(), self.state()) {
            (KvNode::Server(s), Some(NodeState::Server(Some(st)))) => s.leadership(st),
            _ => Vec::new(),
        }
    }
}

/// Client-side settings shared by every protocol.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// After this long without an answer an op completes as `info`.
    pub timeout: Duration,
}

/// A protocol the workload driver can run: its spec parameters and how to build a cluster.
pub trait KvProtocol {
    /// The name used on the command line and in specs (`[protocol.NAME]`).
    const NAME: &'static str;
    /// One line for `quorumlab protocols`.
    const ABOUT: &'static str;
    /// The protocol's parameters in the experiment spec.
    type Params: Clone + Debug + Default + Serialize + DeserializeOwned;
    type Proc: KvProcess;

    /// Rejects parameters that cannot work with this layout (the message names the key).
    fn check(params: &Self::Params, layout: &Layout) -> Result<(), String> {
        let _ = (params, layout);
        Ok(())
    }

    /// Builds one process per endpoint: servers `0..layout.nodes`, then the clients.
    fn build(layout: &Layout, params: &Self::Params, client: &ClientConfig) -> Vec<Self::Proc>;
}
