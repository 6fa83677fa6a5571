//! Read repair, statebox expiry, and DVV actors across crashes.

mod common;

use common::*;
use quorumlab_eventual::{Params, Statebox, Ts};
use quorumlab_kv::{Datum, Op};
use quorumlab_sim::{MS, SEC};
use std::collections::BTreeSet;

const KEY: u32 = 21;

#[test]
fn read_repair_fixes_a_stale_primary() {
    // No sloppy quorum and no handoff in the window: only read repair can fix the replica.
    let p = Params {
        sloppy_quorum: false,
        handoff_interval_ms: 24 * 3600 * 1000,
        ..params()
    };
    let mut h = H::new(5, 1, p, 31);
    let prims = h.primaries(KEY);
    h.isolate(prims[2]);
    assert_eq!(h.ask(0, KEY, Op::Write(5)), ok());
    h.heal();
    h.run_for(500 * MS);
    assert_eq!(
        h.local_view(prims[2], KEY),
        None,
        "still stale after the heal"
    );
    assert_eq!(h.ask(0, KEY, Op::Read), reg(5));
    h.run_for(100 * MS);
    assert_eq!(h.local_view(prims[2], KEY), Some(Datum::Reg(5)));
    assert!(h.eventual_stats().read_repairs >= 1);
}

#[test]
fn without_sloppy_quorum_a_write_needs_w_primaries() {
    let p = Params {
        sloppy_quorum: false,
        ..params()
    };
    let mut h = H::new(5, 1, p, 32);
    let prims = h.primaries(KEY);
    h.isolate(prims[1]);
    h.isolate(prims[2]);
    // Only one primary reachable: the write is stored on it but never acknowledged by W.
    let out = h.ask(0, KEY, Op::Add(1));
    assert_ne!(out, ok(), "{out:?}");
    // With a sloppy quorum the same write succeeds through fallbacks.
    let mut h = H::new(5, 1, params(), 32);
    h.isolate(prims[1]);
    h.isolate(prims[2]);
    assert_eq!(h.ask(0, KEY, Op::Add(1)), ok());
}

#[test]
fn statebox_expire_drops_old_ops() {
    let ts = |t| Ts { t, node: 0 };
    let mut b = Statebox::default();
    b.modify(ts(1_000), 1, 16, 500);
    b.modify(ts(1_200), 2, 16, 500);
    let p = b.modify(ts(2_000), 3, 16, 500);
    assert_eq!(p.expired, 2);
    assert_eq!(b.queue.iter().map(|q| q.1).collect::<Vec<_>>(), vec![3]);
    assert_eq!(b.value, BTreeSet::from([1, 2, 3]));
}

#[test]
fn a_restart_starts_a_new_dvv_actor() {
    let mut h = H::new(5, 1, params(), 33);
    let prims = h.primaries(KEY);
    let p0 = prims[0];
    assert_eq!(h.ask(0, KEY, Op::Add(1)), ok());
    h.run_for(50 * MS);
    // The coordinator crashes losing its last save (the write above), and restarts.
    h.sim.crash(p0, true);
    h.sim.restart(p0);
    h.run_for(SEC);
    assert_eq!(h.ask(0, KEY, Op::Add(2)), ok());
    h.run_for(50 * MS);
    let obj = h.obj(prims[1], KEY).expect("replica");
    let epochs: BTreeSet<u64> = obj
        .ctx
        .0
        .keys()
        .filter(|a| a.node as usize == p0)
        .map(|a| a.epoch)
        .collect();
    assert_eq!(epochs.len(), 2, "two epochs of node {p0}: {:?}", obj.ctx);
    assert_eq!(set_of(&h.ask(0, KEY, Op::Read)), vec![1, 2]);
}
