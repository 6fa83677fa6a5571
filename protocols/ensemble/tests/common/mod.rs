//! A small harness over the raw simulator for the ensemble tests.
#![allow(dead_code)]

pub mod lin;

use quorumlab_ensemble::{node_state, Ensemble, Intercept, Msg, Params, Peer, Proc, Role};
use quorumlab_kv::{ClientConfig, Key, KvProtocol, Layout, Op, Outcome, Request, Value, Wire};
use quorumlab_sim::{
    Latency, LinkModel, Nanos, NetStats, Network, RunStop, Seeds, Sim, Stream, MS, SEC,
};
use stateright::actor::Id;
use std::collections::BTreeMap;
use std::time::Duration;

/// One op of the history.
#[derive(Clone, Debug)]
pub struct Call {
    pub client: usize,
    pub req: Request,
    pub invoke: Nanos,
    /// Completion time and outcome (`None`: never completed).
    pub done: Option<(Nanos, Outcome)>,
}

pub struct H {
    pub sim: Sim<Proc>,
    pub layout: Layout,
    pub params: Params,
    pub next_id: u64,
    pub calls: Vec<Call>,
    open: BTreeMap<u64, usize>,
}

pub fn ms(x: u64) -> Nanos {
    x * MS
}

impl H {
    /// `nodes` servers, `clients` clients, ensembles of `replicas`, `groups` ensembles,
    /// constant one-way latency `d_ms`, client timeout `timeout_ms`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        nodes: usize,
        clients: usize,
        replicas: usize,
        groups: usize,
        keys: u32,
        params: Params,
        d_ms: f64,
        timeout_ms: u64,
        seed: u64,
    ) -> H {
        let link = LinkModel {
            latency: Latency::Constant { ms: d_ms },
            ..LinkModel::default()
        };
        Self::with_link(
            nodes, clients, replicas, groups, keys, params, link, timeout_ms, seed,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub fn with_link(
        nodes: usize,
        clients: usize,
        replicas: usize,
        groups: usize,
        keys: u32,
        params: Params,
        link: LinkModel,
        timeout_ms: u64,
        seed: u64,
    ) -> H {
        let layout = Layout::new(nodes, clients, replicas, groups, keys).unwrap();
        Ensemble::check(&params, &layout).unwrap();
        let procs = Ensemble::build(
            &layout,
            &params,
            &ClientConfig {
                timeout: Duration::from_millis(timeout_ms),
            },
        );
        let seeds = Seeds::new(seed);
        let net = Network::uniform(layout.endpoints(), link, seeds.rng(Stream::Network));
        let mut sim = Sim::new(procs, net, seeds);
        sim.start_all();
        H {
            sim,
            layout,
            params,
            next_id: 0,
            calls: Vec::new(),
            open: BTreeMap::new(),
        }
    }

    pub fn now(&self) -> Nanos {
        self.sim.now()
    }

    /// Endpoint id of client `i`.
    pub fn client(&self, i: usize) -> usize {
        self.layout.nodes + i
    }

    fn collect(&mut self) {
        let now = self.sim.now();
        for (_, m) in self.sim.take_outbox() {
            if let Wire::Done(req, outcome) = m {
                if let Some(i) = self.open.remove(&req.id) {
                    self.calls[i].done = Some((now, outcome));
                }
            }
        }
    }

    /// Runs until virtual time `t`, recording completions.
    pub fn run_until(&mut self, t: Nanos) {
        while self.sim.run_until(t) == RunStop::Outbox {
            self.collect();
        }
        self.collect();
    }

    pub fn run_for(&mut self, d: Nanos) {
        let t = self.now() + d;
        self.run_until(t);
    }

    /// Client `c` invokes `op` on `key` now; returns the index of the call.
    pub fn invoke(&mut self, c: usize, key: u32, op: Op) -> usize {
        self.next_id += 1;
        let req = Request {
            id: self.next_id,
            key: Key(key),
            op,
        };
        let i = self.calls.len();
        self.calls.push(Call {
            client: c,
            req,
            invoke: self.now(),
            done: None,
        });
        self.open.insert(req.id, i);
        let to = self.client(c);
        self.sim.inject(to, Wire::Invoke(req));
        i
    }

    pub fn is_open(&self, c: usize) -> bool {
        self.open.values().any(|&i| self.calls[i].client == c)
    }

    /// Invokes and runs until the call completes (or `limit` passes); returns the outcome and
    /// the latency.
    pub fn call(&mut self, c: usize, key: u32, op: Op, limit: Nanos) -> Option<(Outcome, Nanos)> {
        let i = self.invoke(c, key, op);
        let end = self.now() + limit;
        loop {
            match self.sim.run_until(end) {
                RunStop::Outbox => self.collect(),
                RunStop::Limit => {
                    self.collect();
                    break;
                }
            }
            if self.calls[i].done.is_some() {
                break;
            }
        }
        let call = &self.calls[i];
        call.done.clone().map(|(t, o)| (o, t - call.invoke))
    }

    /// Repeats `op` until it is ok (each attempt waits for its completion), up to `limit`.
    pub fn call_until_ok(&mut self, c: usize, key: u32, op: Op, limit: Nanos) -> Option<Outcome> {
        let end = self.now() + limit;
        while self.now() < end {
            match self.call(c, key, op, end - self.now()) {
                Some((o @ Outcome::Ok(_), _)) => return Some(o),
                Some(_) => self.run_for(100 * MS),
                None => return None,
            }
        }
        None
    }

    pub fn peer(&self, node: usize, g: usize) -> Option<&Peer> {
        node_state(self.sim.process(node)).and_then(|s| s.peer(g as u32))
    }

    /// The node leading ensemble `g` with the highest epoch, if any.
    pub fn leader(&self, g: usize) -> Option<(usize, u64)> {
        (0..self.layout.nodes)
            .filter_map(|n| {
                self.peer(n, g)
                    .filter(|p| p.role == Role::Leading)
                    .map(|p| (n, p.fact.epoch))
            })
            .max_by_key(|&(n, e)| (e, n))
    }

    /// A leader whose followers are all following it (stable).
    pub fn stable_leader(&self, g: usize) -> Option<(usize, u64)> {
        let (l, e) = self.leader(g)?;
        let all = self.layout.groups[g].iter().all(|&m| {
            let n = usize::from(m);
            !self.sim.is_up(n)
                || n == l
                || self.peer(n, g).is_some_and(|p| {
                    p.role == Role::Following
                        && p.fact.leader == Some(Id::from(l))
                        && p.fact.epoch == e
                        && p.ready
                })
        });
        all.then_some((l, e))
    }

    /// Runs until ensemble `g` has a leader (checking every 10 ms).
    pub fn wait_leader(&mut self, g: usize, limit: Nanos) -> Option<(usize, u64)> {
        let end = self.now() + limit;
        while self.now() < end {
            if let Some(l) = self.leader(g) {
                return Some(l);
            }
            self.run_for(10 * MS);
        }
        self.leader(g)
    }

    /// Runs until ensemble `g` has a leader followed by every live member.
    pub fn wait_stable(&mut self, g: usize, limit: Nanos) -> Option<(usize, u64)> {
        let end = self.now() + limit;
        while self.now() < end {
            if let Some(l) = self.stable_leader(g) {
                return Some(l);
            }
            self.run_for(10 * MS);
        }
        self.stable_leader(g)
    }

    /// Steps until the leader of `g` has just finished a tick commit, so that the next
    /// ~`tick` of time is free of ticks (for exact latency measurements).
    pub fn sync_after_tick(&mut self, g: usize) {
        let (l, _) = self.leader(g).expect("a leader");
        let end = self.now() + 5 * SEC;
        while !self.peer(l, g).is_some_and(|p| p.blocked) {
            assert!(self.now() < end && self.sim.step(), "no tick");
            self.collect();
        }
        while self.peer(l, g).is_some_and(|p| p.blocked) {
            assert!(self.now() < end && self.sim.step(), "tick never ends");
            self.collect();
        }
    }

    pub fn intercept(&mut self, node: usize, i: Intercept) {
        self.sim.inject(node, Wire::Peer(Msg::Intercept(i)));
        // Injected messages are delivered at the current instant, when the sim next runs.
        let now = self.now();
        self.run_until(now);
    }

    pub fn intercept_all(&mut self, i: Intercept) {
        for n in 0..self.layout.nodes {
            self.intercept(n, i);
        }
    }

    /// The value node `n`'s backend holds for `key` in ensemble `g` (outer None: no object;
    /// Some(None): a tombstone).
    pub fn local_obj(&self, n: usize, key: u32) -> Option<Option<Value>> {
        let g = self.layout.group_of(Key(key));
        self.peer(n, g)
            .and_then(|p| p.dur.data.get(Key(key)).obj)
            .map(|o| o.value.and_then(|d| d.reg()))
    }

    /// The values every ok read of `key` returned, in call order.
    pub fn ok_reads(&self, key: u32) -> Vec<Option<Value>> {
        self.calls
            .iter()
            .filter(|c| c.req.key.0 == key && c.req.op == Op::Read)
            .filter_map(|c| match &c.done {
                Some((_, Outcome::Ok(v))) => Some(v.as_ref().and_then(|d| d.reg())),
                _ => None,
            })
            .collect()
    }

    pub fn stats(&self) -> NetStats {
        self.sim.net_stats().clone()
    }
}

/// Messages of `kind` sent between two snapshots.
pub fn sent(after: &NetStats, before: &NetStats, kind: &str) -> u64 {
    let get = |s: &NetStats| {
        s.by_kind
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, k)| k.sent)
    };
    get(after) - get(before)
}

/// All messages sent between two snapshots.
pub fn sent_total(after: &NetStats, before: &NetStats) -> u64 {
    after.total.sent - before.total.sent
}
