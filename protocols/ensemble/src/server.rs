//! The server actor: one per node, hosting one peer for every ensemble the layout places on
//! that node. Messages and timers carry the ensemble; the node routes them to its peer.

use crate::msg::{Ens, Intercept, Msg, Timer};
use crate::params::Cfg;
use crate::peer::{Cx, Intercepts, Peer};
use crate::store::{NodeDurable, PeerDurable};
use quorumlab_kv::{KvServer, Leadership};
use stateright::actor::{Actor, Id, Out};
use std::borrow::Cow;
use std::sync::Arc;

/// The server actor (its configuration; all nodes share it).
#[derive(Clone, Debug)]
pub struct Server {
    pub cfg: Arc<Cfg>,
}

/// A node's volatile state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeSt {
    /// This incarnation (restarts count up; part of every request id).
    pub boot: u64,
    pub next_req: u64,
    pub icpt: Intercepts,
    /// One peer per hosted ensemble, sorted by ensemble.
    pub peers: Vec<Peer>,
}

impl NodeSt {
    /// This node's peer of ensemble `ens`, if it hosts one.
    pub fn peer(&self, ens: Ens) -> Option<&Peer> {
        self.peers
            .binary_search_by_key(&ens, |p| p.ens)
            .ok()
            .map(|i| &self.peers[i])
    }
}

fn msg_ens(m: &Msg) -> Option<Ens> {
    match *m {
        Msg::Probe { ens, .. }
        | Msg::Prepare { ens, .. }
        | Msg::NewEpoch { ens, .. }
        | Msg::Commit { ens, .. }
        | Msg::Get { ens, .. }
        | Msg::Put { ens, .. }
        | Msg::CheckEpoch { ens, .. }
        | Msg::UpdateHash { ens, .. }
        | Msg::Reply { ens, .. }
        | Msg::ClientReq { ens, .. }
        | Msg::Forward { ens, .. } => Some(ens),
        Msg::ClientResp { .. } | Msg::Redirect { .. } | Msg::Intercept(_) => None,
    }
}

fn timer_ens(t: &Timer) -> Ens {
    match *t {
        Timer::State(e)
        | Timer::FsmQuorum(e)
        | Timer::WorkerQuorum(e, _)
        | Timer::NotfoundDelay(e, _)
        | Timer::LeaseExpire(e) => e,
    }
}

impl Server {
    /// Runs `f` on the peer of `ens`, then saves the node's storage if anything durable
    /// changed.
    fn with_peer(
        &self,
        id: Id,
        state: &mut Cow<NodeSt>,
        ens: Ens,
        o: &mut Out<Self>,
        f: impl FnOnce(&mut Peer, &mut Cx),
    ) {
        let Ok(i) = state.peers.binary_search_by_key(&ens, |p| p.ens) else {
            return;
        };
        let st = state.to_mut();
        let NodeSt {
            boot,
            next_req,
            icpt,
            peers,
        } = st;
        let mut cx = Cx {
            cfg: &self.cfg,
            me: id,
            o,
            next_req,
            boot: *boot,
            icpt,
            save: false,
        };
        f(&mut peers[i], &mut cx);
        if cx.save {
            let storage = NodeDurable {
                boot: *boot,
                peers: peers.iter().map(|p| p.dur.clone()).collect(),
            };
            o.save(storage);
        }
    }
}

impl Actor for Server {
    type Msg = Msg;
    type Timer = Timer;
    type State = NodeSt;
    type Storage = NodeDurable;
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<NodeDurable>, o: &mut Out<Self>) -> NodeSt {
        let boot = storage.as_ref().map_or(0, |s| s.boot) + 1;
        let mut next_req = 0;
        let icpt = Intercepts::default();
        let mut peers = Vec::new();
        for (g, members) in self.cfg.groups.iter().enumerate() {
            if !members.contains(&id) {
                continue;
            }
            let ens = g as Ens;
            let dur = storage
                .as_ref()
                .and_then(|s| s.peers.iter().find(|p| p.ens == ens).cloned())
                .unwrap_or_else(|| Arc::new(PeerDurable::new(ens)));
            let mut cx = Cx {
                cfg: &self.cfg,
                me: id,
                o,
                next_req: &mut next_req,
                boot,
                icpt: &icpt,
                save: false,
            };
            peers.push(Peer::boot(ens, dur, &mut cx));
        }
        // Always save: the incarnation number must survive the next crash.
        o.save(NodeDurable {
            boot,
            peers: peers.iter().map(|p| p.dur.clone()).collect(),
        });
        NodeSt {
            boot,
            next_req,
            icpt,
            peers,
        }
    }

    fn on_msg(&self, id: Id, state: &mut Cow<NodeSt>, src: Id, msg: Msg, o: &mut Out<Self>) {
        if let Msg::Intercept(i) = msg {
            let icpt = &mut state.to_mut().icpt;
            match i {
                Intercept::CheckEpochFalse(b) => icpt.check_epoch_false = b,
                Intercept::DropPuts(b) => icpt.drop_puts = b,
                Intercept::TrustLease(t) => icpt.trust_lease = t,
                Intercept::LeaseMs(l) => icpt.lease_ms = l,
                Intercept::NotfoundDelayMs(d) => icpt.notfound_delay_ms = d,
            }
            return;
        }
        let Some(ens) = msg_ens(&msg) else { return };
        self.with_peer(id, state, ens, o, |p, cx| p.on_msg(src, msg, cx));
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<NodeSt>, timer: &Timer, o: &mut Out<Self>) {
        let t = *timer;
        self.with_peer(id, state, timer_ens(&t), o, |p, cx| p.on_timer(t, cx));
    }

    fn name(&self) -> String {
        "ensemble".into()
    }
}

impl KvServer for Server {
    fn leadership(&self, state: &NodeSt) -> Vec<Leadership> {
        state
            .peers
            .iter()
            .filter(|p| p.is_leading())
            .map(|p| Leadership {
                group: p.ens as usize,
                term: p.fact.epoch,
            })
            .collect()
    }
}
