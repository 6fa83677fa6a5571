//! Test harness: an openraft cluster in the raw simulator, and a tiny synchronous client driver.

#![allow(dead_code)]

use quorumlab_openraft::{Openraft, Params};
use quorumlab_sim::LinkModel;
pub use quorumlab_testkit::constant;

/// An openraft cluster in the raw simulator (the shared harness).
pub type Cluster = quorumlab_testkit::Cluster<Openraft>;

pub fn cluster(
    nodes: usize,
    replicas: usize,
    groups: usize,
    clients: usize,
    params: &Params,
    link: LinkModel,
    seed: u64,
) -> Cluster {
    quorumlab_testkit::cluster(nodes, replicas, groups, clients, params, link, seed)
}

/// Openraft-only views.
pub trait OpenraftExt {
    /// Panics caught in openraft's tasks, summed over the servers.
    fn panics(&self) -> u64;
}

impl OpenraftExt for Cluster {
    fn panics(&self) -> u64 {
        (0..self.layout.nodes)
            .filter_map(|i| self.sim.process(i).server().map(|s| s.exec_stats().panics))
            .sum()
    }
}
