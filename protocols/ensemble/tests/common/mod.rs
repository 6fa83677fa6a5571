//! A small harness over the raw simulator for the ensemble tests.
#![allow(dead_code)]

use quorumlab_ensemble::{node_state, Ensemble, Intercept, Msg, Params, Peer, Role};
use quorumlab_kv::{Key, Layout, Value, Wire};
use quorumlab_sim::{Latency, LinkModel, Nanos, NetStats, MS, SEC};
#[allow(unused_imports)]
pub use quorumlab_testkit::{ms, Call, Cluster};
use stateright::actor::Id;
use std::time::Duration;

/// An ensemble cluster with its calls.
pub type H = Cluster<Ensemble>;

/// Ensemble views and steps over the shared harness.
pub trait EnsembleExt {
    /// `nodes` servers, `clients` clients, ensembles of `replicas`, `groups` ensembles,
    /// constant one-way latency `d_ms`, client timeout `timeout_ms`.
    #[allow(clippy::too_many_arguments, clippy::new_ret_no_self)]
    fn new(
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
    fn with_link(
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
        H::start(
            layout,
            params,
            link,
            Duration::from_millis(timeout_ms),
            seed,
        )
    }

    fn peer(&self, node: usize, g: usize) -> Option<&Peer>;
    fn stable_leader(&self, g: usize) -> Option<(usize, u64)>;
    fn wait_stable(&mut self, g: usize, limit: Nanos) -> Option<(usize, u64)>;
    fn sync_after_tick(&mut self, g: usize);
    fn intercept(&mut self, node: usize, i: Intercept);
    fn intercept_all(&mut self, i: Intercept);
    fn local_obj(&self, n: usize, key: u32) -> Option<Option<Value>>;
}

impl EnsembleExt for H {
    fn peer(&self, node: usize, g: usize) -> Option<&Peer> {
        node_state(self.sim.process(node)).and_then(|s| s.peer(g as u32))
    }

    /// A leader whose followers are all following it (stable).
    fn stable_leader(&self, g: usize) -> Option<(usize, u64)> {
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

    /// Runs until ensemble `g` has a leader followed by every live member.
    fn wait_stable(&mut self, g: usize, limit: Nanos) -> Option<(usize, u64)> {
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
    fn sync_after_tick(&mut self, g: usize) {
        let (l, _) = self.leader(g).expect("a leader");
        let end = self.now() + 5 * SEC;
        while !self.peer(l, g).is_some_and(|p| p.blocked) {
            assert!(self.now() < end && self.step(), "no tick");
        }
        while self.peer(l, g).is_some_and(|p| p.blocked) {
            assert!(self.now() < end && self.step(), "tick never ends");
        }
    }

    fn intercept(&mut self, node: usize, i: Intercept) {
        self.sim.inject(node, Wire::Peer(Msg::Intercept(i)));
        // Injected messages are delivered at the current instant, when the sim next runs.
        let now = self.now();
        self.run_until(now);
    }

    fn intercept_all(&mut self, i: Intercept) {
        for n in 0..self.layout.nodes {
            self.intercept(n, i);
        }
    }

    /// The value node `n`'s backend holds for `key` in ensemble `g` (outer None: no object;
    /// Some(None): a tombstone).
    fn local_obj(&self, n: usize, key: u32) -> Option<Option<Value>> {
        let g = self.layout.group_of(Key(key));
        self.peer(n, g)
            .and_then(|p| p.dur.data.get(Key(key)).obj)
            .map(|o| o.value.and_then(|d| d.reg()))
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
