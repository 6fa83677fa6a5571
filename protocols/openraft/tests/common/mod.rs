//! Test harness: an openraft cluster in the raw simulator, and a tiny synchronous client driver.

#![allow(dead_code)]

use quorumlab_kv::{ClientConfig, Key, KvProcess, KvProtocol, Layout, Op, Outcome, Request};
use quorumlab_openraft::{Openraft, OpenraftNode, Params};
use quorumlab_sim::{Latency, LinkModel, Nanos, Network, RunStop, Seeds, Sim, Stream, MS};
use std::time::Duration;

pub struct Cluster {
    pub sim: Sim<OpenraftNode>,
    pub layout: Layout,
    pub next_id: u64,
}

pub fn constant(ms: f64) -> LinkModel {
    LinkModel {
        latency: Latency::Constant { ms },
        ..Default::default()
    }
}

pub fn cluster(
    nodes: usize,
    replicas: usize,
    groups: usize,
    clients: usize,
    params: &Params,
    link: LinkModel,
    seed: u64,
) -> Cluster {
    let layout = Layout::new(nodes, clients, replicas, groups, 1000).unwrap();
    Openraft::check(params, &layout).unwrap();
    let procs = Openraft::build(
        &layout,
        params,
        &ClientConfig {
            timeout: Duration::from_secs(1),
        },
    );
    let net = Network::uniform(
        layout.endpoints(),
        link,
        Seeds::new(seed).rng(Stream::Network),
    );
    let mut sim = Sim::new(procs, net, Seeds::new(seed));
    sim.start_all();
    Cluster {
        sim,
        layout,
        next_id: 1,
    }
}

impl Cluster {
    /// The leader of `group` (highest term among up servers claiming it).
    pub fn leader(&self, group: usize) -> Option<(usize, u64)> {
        let mut best: Option<(usize, u64)> = None;
        for i in 0..self.layout.nodes {
            if !self.sim.is_up(i) {
                continue;
            }
            for l in self.sim.process(i).leadership() {
                if l.group == group && best.is_none_or(|b| l.term > b.1) {
                    best = Some((i, l.term));
                }
            }
        }
        best
    }

    pub fn run_for(&mut self, d: Nanos) {
        let until = self.sim.now() + d;
        while self.sim.run_until(until) == RunStop::Outbox {
            self.sim.take_outbox();
        }
    }

    /// Waits (up to `max`) until `group` has a leader.
    pub fn await_leader(&mut self, group: usize, max: Nanos) -> Option<(usize, u64)> {
        let end = self.sim.now() + max;
        while self.sim.now() < end {
            if let Some(l) = self.leader(group) {
                return Some(l);
            }
            self.run_for(MS);
        }
        self.leader(group)
    }

    /// Client `c` performs `op` on `key`; returns the outcome and the latency.
    pub fn call(&mut self, c: usize, key: u32, op: Op) -> (Outcome, Nanos) {
        let id = self.next_id;
        self.next_id += 1;
        let req = Request {
            id,
            key: Key(key),
            op,
        };
        let endpoint = self.layout.nodes + c;
        let t0 = self.sim.now();
        self.sim.inject(endpoint, OpenraftNode::invoke_msg(req));
        loop {
            let stop = self.sim.run_until(t0 + 10_000 * MS);
            for (_, m) in self.sim.take_outbox() {
                if let Some((r, o)) = OpenraftNode::completion(m) {
                    if r.id == id {
                        return (o, self.sim.now() - t0);
                    }
                }
            }
            if stop == RunStop::Limit {
                panic!("no completion for {req:?}");
            }
        }
    }

    pub fn panics(&self) -> u64 {
        (0..self.layout.nodes)
            .filter_map(|i| self.sim.process(i).server().map(|s| s.exec_stats().panics))
            .sum()
    }
}
