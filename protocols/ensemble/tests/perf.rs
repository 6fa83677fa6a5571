//! Throughput of the simulation itself (not a correctness test; `cargo test --release -p
//! quorumlab-ensemble --test perf -- --ignored --nocapture`). Numbers go to
//! docs/protocols/ensemble.md.

mod common;
use common::*;
use quorumlab_ensemble::Params;
use quorumlab_kv::Op;
use quorumlab_sim::{Latency, LinkModel, SEC};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

fn run(keys: u32, groups: usize, clients: usize, secs: u64) {
    let link = LinkModel {
        latency: Latency::Lognormal {
            median_ms: 0.5,
            sigma: 0.3,
        },
        ..LinkModel::default()
    };
    let mut h = H::with_link(
        5,
        clients,
        3,
        groups,
        keys,
        Params::default(),
        link,
        2_000,
        1,
    );
    for g in 0..groups {
        h.wait_leader(g, 30 * SEC).expect("leader");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let t0 = Instant::now();
    let (e0, v0) = (h.sim.stats().events, h.calls.len());
    let end = h.now() + secs * SEC;
    let mut value = 0;
    while h.now() < end {
        for c in 0..clients {
            if !h.is_open(c) {
                value += 1;
                let key = rng.random_range(0..keys);
                let op = if rng.random_bool(0.5) {
                    Op::Read
                } else {
                    Op::Write(value)
                };
                h.invoke(c, key, op);
            }
        }
        h.run_for(rng.random_range(1..3) * quorumlab_sim::MS);
    }
    let wall = t0.elapsed().as_secs_f64();
    let events = h.sim.stats().events - e0;
    let ops = h.calls.len() - v0;
    let stored: usize = (0..5)
        .filter_map(|n| quorumlab_ensemble::node_state(h.sim.process(n)))
        .flat_map(|s| s.peers.iter().map(|p| p.dur.data.len()))
        .sum();
    println!(
        "keys {keys:>8} groups {groups:>3} clients {clients:>3}: {secs} s simulated, {ops} ops, {events} events in {wall:.2} s wall = {:.0} events/s, {:.0} ops/s; {stored} records stored",
        events as f64 / wall,
        ops as f64 / wall
    );
}

#[test]
#[ignore]
fn simulation_throughput() {
    run(1_000, 64, 50, 60);
    run(100_000, 64, 50, 60);
    run(1_000_000, 64, 50, 60);
}
