//! Last-write-wins on each coordinator's own clock: a node whose clock runs slow writes
//! "in the past", and its later writes lose to earlier ones — acknowledged, never visible.

mod common;

use common::*;
use quorumlab_eventual::{Params, Routing};
use quorumlab_kv::Op;
use quorumlab_sim::{MS, SEC};

fn lww(local: bool) -> Params {
    Params {
        allow_mult: false,
        client_routing: if local {
            Routing::Local
        } else {
            Routing::Preflist
        },
        ..params()
    }
}

/// Client `i` talks to node `i` (local routing, 5 nodes).
fn run(
    slow_rate: f64,
) -> (
    H,
    Option<quorumlab_kv::Outcome>,
    Option<quorumlab_kv::Outcome>,
) {
    let mut h = H::new(5, 5, lww(true), 9);
    h.sim.set_clock_rate(1, slow_rate);
    h.run_until(10 * SEC);
    assert_eq!(h.ask(0, 3, Op::Write(1)), ok());
    h.run_for(100 * MS);
    // Strictly later, through node 1.
    assert_eq!(h.ask(1, 3, Op::Write(2)), ok());
    h.run_for(100 * MS);
    let reg = h.ask(4, 3, Op::Read);
    // Sets: the slow node's add, acknowledged, disappears too.
    assert_eq!(h.ask(0, 4, Op::Add(1)), ok());
    h.run_for(100 * MS);
    assert_eq!(h.ask(1, 4, Op::Add(2)), ok());
    h.run_for(100 * MS);
    let set = h.ask(4, 4, Op::Read);
    (h, reg, set)
}

#[test]
fn lww_loses_the_later_write_under_clock_skew() {
    // Control: synchronized clocks, the later write wins and both adds survive.
    let (_, reg_ok, set_ok) = run(1.0);
    assert_eq!(reg_ok, reg(2));
    assert_eq!(set_of(&set_ok), vec![1, 2]);
    // Node 1's clock runs at half speed: at 10 s it reads ~5 s.
    let (h, reg_lost, set_lost) = run(0.5);
    assert_eq!(reg_lost, reg(1), "the later write lost to the earlier one");
    assert_eq!(
        set_of(&set_lost),
        vec![1],
        "the acknowledged add(2) is lost"
    );
    // The add's coordinator read the newer sibling first, so it saw its own write lose.
    assert!(h.eventual_stats().lww_stale_writes >= 1);
}

#[test]
fn lww_loses_concurrent_adds_even_without_skew() {
    let mut h = H::new(5, 2, lww(false), 10);
    let a = h.invoke(0, 5, Op::Add(1));
    let b = h.invoke(1, 5, Op::Add(2));
    h.settle(3000 * MS);
    assert_eq!(h.outcome(a), ok());
    assert_eq!(h.outcome(b), ok());
    let s = set_of(&h.ask(0, 5, Op::Read));
    assert_eq!(s.len(), 1, "one of two concurrent adds survives: {s:?}");
}
