//! A small harness over the raw simulator for the eventual tests.
#![allow(dead_code)]

use quorumlab_eventual::{node_state, total_stats, Eventual, NodeSt, Obj, Params, Proc, Stats};
use quorumlab_kv::{
    ClientConfig, Datum, Key, KvProtocol, Layout, Op, Outcome, Request, Value, Wire,
};
use quorumlab_sim::{Latency, LinkModel, Nanos, Network, RunStop, Seeds, Sim, Stream, MS};
use std::collections::BTreeMap;
use std::time::Duration;

/// One op of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
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

impl H {
    /// `nodes` servers, `clients` clients, constant one-way latency of 1 ms, client timeout
    /// 1 s.
    pub fn new(nodes: usize, clients: usize, params: Params, seed: u64) -> H {
        let link = LinkModel {
            latency: Latency::Constant { ms: 1.0 },
            ..LinkModel::default()
        };
        Self::with_link(nodes, clients, params, link, seed)
    }

    pub fn with_link(
        nodes: usize,
        clients: usize,
        params: Params,
        link: LinkModel,
        seed: u64,
    ) -> H {
        let layout = Layout::new(nodes, clients, nodes, 1, 1000).unwrap();
        Eventual::check(&params, &layout).unwrap();
        let procs = Eventual::build(
            &layout,
            &params,
            &ClientConfig {
                timeout: Duration::from_millis(1000),
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

    /// Invokes and runs until the call completes (at most 2 s); returns the outcome.
    pub fn call(&mut self, c: usize, key: u32, op: Op) -> Option<Outcome> {
        let i = self.invoke(c, key, op);
        let end = self.now() + 2000 * MS;
        while self.calls[i].done.is_none() && self.now() < end {
            match self.sim.run_until(end) {
                RunStop::Outbox => self.collect(),
                RunStop::Limit => self.collect(),
            }
        }
        self.calls[i].done.as_ref().map(|(_, o)| o.clone())
    }

    /// Runs until every open call has completed (at most 3 s).
    pub fn settle(&mut self) {
        let end = self.now() + 3000 * MS;
        while !self.open.is_empty() && self.now() < end {
            match self.sim.run_until(end) {
                RunStop::Outbox | RunStop::Limit => self.collect(),
            }
        }
    }

    pub fn outcome(&self, i: usize) -> Option<Outcome> {
        self.calls[i].done.as_ref().map(|(_, o)| o.clone())
    }

    pub fn node(&self, n: usize) -> &NodeSt {
        node_state(self.sim.process(n)).expect("server up")
    }

    pub fn obj(&self, n: usize, key: u32) -> Option<&Obj> {
        self.node(n).obj(Key(key))
    }

    pub fn local_view(&self, n: usize, key: u32) -> Option<Datum> {
        self.node(n).local_view(Key(key))
    }

    pub fn stats(&self) -> Stats {
        total_stats(self.sim.processes())
    }

    /// The key's primaries.
    pub fn primaries(&self, key: u32) -> Vec<usize> {
        let cfg = Eventual::cfg(&self.layout, &self.params);
        cfg.primaries(Key(key))
            .iter()
            .map(|&i| usize::from(i))
            .collect()
    }

    /// Cuts `node` off from every other endpoint (servers and clients).
    pub fn isolate(&mut self, node: usize) {
        let now = self.now();
        let n = self.layout.endpoints();
        for o in 0..n {
            if o != node {
                self.sim.network_mut().cut(node, o, now);
                self.sim.network_mut().cut(o, node, now);
            }
        }
    }

    pub fn partition(&mut self, parts: &[Vec<usize>]) {
        let now = self.now();
        self.sim.network_mut().partition(parts, now);
    }

    pub fn heal(&mut self) {
        self.sim.network_mut().heal_all();
    }
}

/// The set a read returned.
pub fn set_of(o: &Option<Outcome>) -> Vec<Value> {
    match o {
        Some(Outcome::Ok(Some(Datum::Set(s)))) => s.iter().copied().collect(),
        Some(Outcome::Ok(None)) => Vec::new(),
        other => panic!("not a set read: {other:?}"),
    }
}

pub fn params() -> Params {
    Params::default()
}

pub fn ok() -> Option<Outcome> {
    Some(Outcome::Ok(None))
}

pub fn reg(v: Value) -> Option<Outcome> {
    Some(Outcome::Ok(Some(Datum::Reg(v))))
}
