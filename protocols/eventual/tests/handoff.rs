//! Sloppy quorum and hinted handoff: a write while a primary is cut off lands on a fallback,
//! tagged with the primary; after the heal the fallback hands it over and drops its copy.

mod common;

use common::*;
use quorumlab_kv::{Datum, Op, Outcome};
use quorumlab_sim::{MS, SEC};
use stateright::actor::Id;

const KEY: u32 = 11;

#[test]
fn hinted_handoff_delivers_after_heal() {
    let mut h = H::new(5, 1, params(), 7);
    let prims = h.primaries(KEY);
    let gone = prims[2];
    h.isolate(gone);
    assert_eq!(h.ask(0, KEY, Op::Write(42)), ok());
    h.run_for(300 * MS);
    // The fallback (the next node on the ring) holds the copy, hinted for the primary.
    let cfg_order: Vec<usize> = (0..5).filter(|n| !prims.contains(n)).collect();
    let holders: Vec<usize> = cfg_order
        .iter()
        .copied()
        .filter(|&f| h.obj(f, KEY).is_some())
        .collect();
    assert_eq!(holders.len(), 1, "one fallback copy: {holders:?}");
    let f = holders[0];
    let stored = &h.node(f).dur.data[&quorumlab_kv::Key(KEY)];
    assert!(stored.hints.contains(&Id::from(gone)), "{stored:?}");
    assert_eq!(
        h.local_view(gone, KEY),
        None,
        "the cut-off primary has nothing yet"
    );
    assert!(h.eventual_stats().sloppy_substitutions >= 1);

    // Heal: within a few handoff intervals the primary has the value and the fallback
    // dropped its copy.
    h.heal();
    h.run_for(4 * SEC);
    assert_eq!(h.local_view(gone, KEY), Some(Datum::Reg(42)));
    assert!(h.obj(f, KEY).is_none(), "the fallback dropped its copy");
    assert!(h.eventual_stats().handoffs >= 1);
    assert_eq!(
        h.ask(0, KEY, Op::Read),
        Some(Outcome::Ok(Some(Datum::Reg(42))))
    );
}

#[test]
fn both_sides_of_a_partition_keep_writing() {
    // Clients talk to their own node; {0,1} | {2,3,4}: every key has a primary or a
    // fallback on each side, so every write succeeds on both sides.
    let p = quorumlab_eventual::Params {
        client_routing: quorumlab_eventual::Routing::Local,
        ..params()
    };
    let mut h = H::new(5, 5, p, 8);
    let c: Vec<usize> = (0..5).map(|i| h.client(i)).collect();
    h.partition(&[vec![0, 1, c[0], c[1]], vec![2, 3, 4, c[2], c[3], c[4]]]);
    let mut calls = Vec::new();
    for round in 0..10u64 {
        for cl in 0..5usize {
            calls.push(h.invoke(cl, 100 + cl as u32, Op::Add(round)));
        }
        h.settle(3000 * MS);
    }
    for &i in &calls {
        assert_eq!(h.outcome(i), ok(), "call {i}: {:?}", h.calls[i]);
    }
    h.heal();
    h.run_for(5 * SEC);
    for cl in 0..5usize {
        assert_eq!(
            set_of(&h.ask(0, 100 + cl as u32, Op::Read)),
            (0..10).collect::<Vec<u64>>()
        );
    }
}
