//! Random workloads under random faults: same seed ⇒ identical history; whatever the faults,
//! no acknowledged add is lost once the cluster heals (statebox with a long queue), and the
//! replicas converge.

mod common;

use common::*;
use quorumlab_eventual::Params;
use quorumlab_kv::{Datum, Key, Op, Outcome};
use quorumlab_sim::{Nanos, MS, SEC};
use std::collections::BTreeSet;

/// A small deterministic generator (the test must not depend on rand's stream stability).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NODES: usize = 5;
const CLIENTS: usize = 6;
const SET_KEYS: u32 = 4;
const REG_KEYS: u32 = 4;

fn chaos(seed: u64, params: Params, lose_unsynced: bool) -> H {
    let mut h = H::new(NODES, CLIENTS, params, seed);
    let mut rng = Lcg(seed ^ 0x5eed);
    let mut next_val = 1u64;
    let end: Nanos = 20 * SEC;
    let mut next_fault = 2 * SEC;
    let mut down: Option<usize> = None;
    while h.now() < end {
        for c in 0..CLIENTS {
            let busy = h
                .calls
                .iter()
                .any(|call| call.client == c && call.done.is_none());
            if busy || rng.below(3) != 0 {
                continue;
            }
            next_val += 1;
            let (key, op) = if rng.below(2) == 0 {
                let k = 100 + rng.below(SET_KEYS as u64) as u32;
                let op = if rng.below(4) == 0 {
                    Op::Read
                } else {
                    Op::Add(next_val)
                };
                (k, op)
            } else {
                let k = rng.below(REG_KEYS as u64) as u32;
                let op = match rng.below(5) {
                    0 => Op::Read,
                    1 => Op::Write(next_val),
                    2 => Op::Cas {
                        expected: next_val.saturating_sub(1 + rng.below(4)),
                        new: next_val,
                    },
                    3 => Op::Create(next_val),
                    _ => Op::Delete,
                };
                (k, op)
            };
            h.invoke(c, key, op);
        }
        if h.now() >= next_fault {
            next_fault += SEC + rng.below(2000) * MS;
            h.heal();
            if let Some(n) = down.take() {
                h.sim.restart(n);
            }
            match rng.below(4) {
                0 => {
                    let cut = rng.below(NODES as u64) as usize;
                    let a: Vec<usize> = (0..NODES).filter(|&n| n <= cut).collect();
                    let b: Vec<usize> = (0..NODES).filter(|&n| n > cut).collect();
                    h.partition(&[a, b]);
                }
                1 => {
                    let n = rng.below(NODES as u64) as usize;
                    h.sim.crash(n, lose_unsynced);
                    down = Some(n);
                }
                2 => {
                    let n = rng.below(NODES as u64) as usize;
                    h.sim
                        .set_clock_rate(n, [0.5, 1.0, 1.5][rng.below(3) as usize]);
                }
                _ => {}
            }
        }
        h.run_for(5 * MS);
    }
    h.heal();
    if let Some(n) = down.take() {
        h.sim.restart(n);
    }
    h.settle(3000 * MS);
    h.run_for(5 * SEC);
    h
}

fn acked_adds(h: &H, key: u32) -> BTreeSet<u64> {
    h.calls
        .iter()
        .filter(|c| c.req.key == Key(key))
        .filter_map(|c| match (c.req.op, &c.done) {
            (Op::Add(e), Some((_, Outcome::Ok(_)))) => Some(e),
            _ => None,
        })
        .collect()
}

fn tried_adds(h: &H, key: u32) -> BTreeSet<u64> {
    h.calls
        .iter()
        .filter(|c| c.req.key == Key(key))
        .filter_map(|c| match c.req.op {
            Op::Add(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn same_seed_same_history() {
    let a = chaos(21, params(), true);
    let b = chaos(21, params(), true);
    assert!(a.calls.len() > 500, "{} calls", a.calls.len());
    assert_eq!(a.calls, b.calls);
    assert_eq!(a.sim.net_stats().total.sent, b.sim.net_stats().total.sent);
    let c = chaos(22, params(), true);
    assert_ne!(a.calls, c.calls);
}

#[test]
fn no_acknowledged_add_is_lost_and_replicas_converge() {
    for seed in [1, 2, 3] {
        let p = Params {
            max_queue: 100_000,
            ..params()
        };
        let mut h = chaos(seed, p, false);
        let ok = h
            .calls
            .iter()
            .filter(|c| matches!(c.done, Some((_, Outcome::Ok(_)))))
            .count();
        assert!(ok * 10 >= h.calls.len() * 8, "ok {ok} of {}", h.calls.len());
        for k in 100..100 + SET_KEYS {
            let read = set_of(&h.ask(0, k, Op::Read));
            let got: BTreeSet<u64> = read.into_iter().collect();
            let acked = acked_adds(&h, k);
            assert!(
                acked.is_subset(&got),
                "seed {seed} key {k}: lost {:?}",
                acked.difference(&got).collect::<Vec<_>>()
            );
            assert!(
                got.is_subset(&tried_adds(&h, k)),
                "seed {seed} key {k}: phantom adds"
            );
            // Read repair after that read: every primary converges.
            h.run_for(500 * MS);
            for p in h.primaries(k) {
                assert_eq!(
                    h.local_view(p, k),
                    Some(Datum::Set(got.iter().copied().collect())),
                    "seed {seed} key {k} node {p}"
                );
            }
        }
        assert_eq!(h.eventual_stats().statebox_lost, 0);
    }
}
