//! A small harness over the raw simulator for the eventual tests.
#![allow(dead_code)]

use quorumlab_eventual::{node_state, total_stats, Eventual, NodeSt, Obj, Params, Stats};
use quorumlab_kv::{Datum, Key, Layout, Op, Outcome, Value};
use quorumlab_sim::{Latency, LinkModel, MS};
#[allow(unused_imports)]
pub use quorumlab_testkit::{ms, Call, Cluster};
use std::time::Duration;

/// An eventual cluster with its calls (the shared harness).
pub type H = Cluster<Eventual>;

/// Eventual views over the shared harness.
pub trait EventualExt {
    /// `nodes` servers, `clients` clients, constant one-way latency of 1 ms, client timeout
    /// 1 s.
    #[allow(clippy::new_ret_no_self)]
    fn new(nodes: usize, clients: usize, params: Params, seed: u64) -> H {
        let link = LinkModel {
            latency: Latency::Constant { ms: 1.0 },
            ..LinkModel::default()
        };
        Self::with_link(nodes, clients, params, link, seed)
    }

    fn with_link(nodes: usize, clients: usize, params: Params, link: LinkModel, seed: u64) -> H {
        let layout = Layout::new(nodes, clients, nodes, 1, 1000).unwrap();
        H::start(layout, params, link, Duration::from_millis(1000), seed)
    }

    /// Invokes and runs until the call completes (at most 2 s); returns the outcome.
    fn ask(&mut self, c: usize, key: u32, op: Op) -> Option<Outcome>;
    fn node(&self, n: usize) -> &NodeSt;
    fn obj(&self, n: usize, key: u32) -> Option<&Obj>;
    fn local_view(&self, n: usize, key: u32) -> Option<Datum>;
    fn eventual_stats(&self) -> Stats;
    /// The key's primaries.
    fn primaries(&self, key: u32) -> Vec<usize>;
}

impl EventualExt for H {
    fn ask(&mut self, c: usize, key: u32, op: Op) -> Option<Outcome> {
        self.call(c, key, op, 2000 * MS).map(|(o, _)| o)
    }

    fn node(&self, n: usize) -> &NodeSt {
        node_state(self.sim.process(n)).expect("server up")
    }

    fn obj(&self, n: usize, key: u32) -> Option<&Obj> {
        self.node(n).obj(Key(key))
    }

    fn local_view(&self, n: usize, key: u32) -> Option<Datum> {
        self.node(n).local_view(Key(key))
    }

    fn eventual_stats(&self) -> Stats {
        total_stats(self.sim.processes())
    }

    fn primaries(&self, key: u32) -> Vec<usize> {
        let cfg = Eventual::cfg(&self.layout, &self.params);
        cfg.primaries(Key(key))
            .iter()
            .map(|&i| usize::from(i))
            .collect()
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
