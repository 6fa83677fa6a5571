//! statebox: the article's friend graph; order-independent merges (property tests); pruning
//! too early loses an add, and the loss is counted.

mod common;

use common::*;
use proptest::prelude::*;
use quorumlab_eventual::{Actor, Dot, Obj, Params, Routing, Sib, Statebox, Ts, Val, VV};
use quorumlab_kv::Op;
use quorumlab_sim::{MS, SEC};
use std::collections::BTreeSet;

const ALICE: u64 = 1;
const BOB: u64 = 2;
const CHARLIE: u64 = 3;

fn following(u: u64) -> u32 {
    100 + u as u32
}
fn followers(u: u64) -> u32 {
    200 + u as u32
}

fn local() -> Params {
    Params {
        client_routing: Routing::Local,
        ..params()
    }
}

/// `add_friend(a, b)` by client `c`: b joins a's following, a joins b's followers (two adds,
/// started together).
fn add_friend(h: &mut H, c: usize, a: u64, b: u64) -> [usize; 2] {
    [
        h.invoke(c, following(a), Op::Add(b)),
        h.invoke(c + 1, followers(b), Op::Add(a)),
    ]
}

#[test]
fn the_articles_friend_graph() {
    // Clients 0,1 talk to nodes 0,1; clients 2..5 to nodes 2,3,4,0 (local routing).
    let mut h = H::new(5, 6, local(), 11);
    let cl: Vec<usize> = (0..6).map(|i| h.client(i)).collect();
    // Split the cluster so the three friendships are made concurrently on two sides.
    h.partition(&[vec![0, 1, cl[0], cl[1]], vec![2, 3, 4, cl[2], cl[3], cl[4]]]);
    let mut calls = Vec::new();
    calls.extend(add_friend(&mut h, 0, ALICE, BOB));
    calls.extend(add_friend(&mut h, 2, ALICE, CHARLIE));
    h.settle(3000 * MS);
    calls.extend(add_friend(&mut h, 3, BOB, ALICE));
    h.settle(3000 * MS);
    for &i in &calls {
        assert_eq!(h.outcome(i), ok(), "{:?}", h.calls[i]);
    }
    h.heal();
    h.run_for(4 * SEC);
    // following:alice was written on both sides: its primaries hold two statebox siblings.
    let sibs = h
        .primaries(following(ALICE))
        .into_iter()
        .map(|p| h.obj(p, following(ALICE)).map_or(0, |o| o.sibs.len()))
        .max();
    assert_eq!(sibs, Some(2));
    let read = |h: &mut H, k: u32| set_of(&h.ask(5, k, Op::Read));
    assert_eq!(read(&mut h, following(ALICE)), vec![BOB, CHARLIE]);
    assert_eq!(read(&mut h, followers(ALICE)), vec![BOB]);
    assert_eq!(read(&mut h, following(BOB)), vec![ALICE]);
    assert_eq!(read(&mut h, followers(BOB)), vec![ALICE]);
    assert_eq!(read(&mut h, followers(CHARLIE)), vec![ALICE]);
    assert_eq!(read(&mut h, following(CHARLIE)), Vec::<u64>::new());
    assert_eq!(h.eventual_stats().statebox_lost, 0);
}

/// Two adds on one side (the first pruned from the queue by `max_queue = 1`), then a newer
/// add on the other side: the merge replays the newest value plus the queues and misses the
/// pruned add.
fn prune_scenario(max_queue: usize) -> (Vec<u64>, u64) {
    let p = Params {
        max_queue,
        ..local()
    };
    let mut h = H::new(5, 5, p, 12);
    let cl: Vec<usize> = (0..5).map(|i| h.client(i)).collect();
    h.partition(&[vec![0, 1, cl[0], cl[1]], vec![2, 3, 4, cl[2], cl[3], cl[4]]]);
    let k = 50;
    assert_eq!(h.ask(0, k, Op::Add(1)), ok());
    assert_eq!(h.ask(0, k, Op::Add(2)), ok());
    h.run_for(10 * MS);
    assert_eq!(h.ask(2, k, Op::Add(3)), ok());
    h.heal();
    h.run_for(4 * SEC);
    let s = set_of(&h.ask(4, k, Op::Read));
    (s, h.eventual_stats().statebox_lost)
}

#[test]
fn pruning_too_early_loses_an_acknowledged_add_and_counts_it() {
    assert_eq!(prune_scenario(16), (vec![1, 2, 3], 0));
    let (s, lost) = prune_scenario(1);
    assert_eq!(
        s,
        vec![2, 3],
        "add(1) was acknowledged, then pruned and lost"
    );
    assert!(lost >= 1, "the loss is counted");
}

#[test]
fn unit_merge_loses_a_pruned_op() {
    let ts = |t| Ts { t, node: 0 };
    let mut a = Statebox::default();
    a.modify(ts(1), 10, 1, u64::MAX);
    a.modify(ts(2), 20, 1, u64::MAX);
    let mut b = Statebox::default();
    b.modify(ts(3), 30, 1, u64::MAX);
    let (m, lost) = Statebox::merge([&a, &b]);
    assert_eq!(m.value, BTreeSet::from([20, 30]));
    assert_eq!(lost, 1);
}

// ---- property tests ----

/// Replicas build stateboxes from a common start by adding elements at distinct times;
/// any merge order gives the same statebox, and with a queue long enough nothing is lost.
fn boxes_from(ops: &[(usize, u64)], replicas: usize) -> Vec<Statebox> {
    let mut boxes = vec![Statebox::default(); replicas];
    for (t, &(r, e)) in ops.iter().enumerate() {
        boxes[r % replicas].modify(
            Ts {
                t: t as u64 + 1,
                node: (r % replicas) as u32,
            },
            e,
            1000,
            u64::MAX,
        );
    }
    boxes
}

/// Replica objects with DVV siblings, built from a random interleaving of statebox adds
/// (read the local object, merge, add, put with the read context) and syncs.
fn objects_from(steps: &[(usize, usize, u64, bool)], replicas: usize) -> Vec<Obj> {
    let mut objs = vec![Obj::default(); replicas];
    for (t, &(r, from, e, sync)) in steps.iter().enumerate() {
        let (r, from) = (r % replicas, from % replicas);
        if sync {
            let o = objs[from].clone();
            objs[r].merge(&o, false);
        } else {
            let obj = &mut objs[r];
            let (mut b, _) = obj.statebox().unwrap_or_default();
            let ts = Ts {
                t: t as u64 + 1,
                node: r as u32,
            };
            b.modify(ts, e, 1000, u64::MAX);
            let actor = Actor {
                node: r as u32,
                epoch: 1,
            };
            let dot: Dot = obj.next_dot(actor);
            let ctx: VV = obj.ctx.clone();
            obj.put(
                &ctx,
                dot,
                Sib {
                    ts,
                    val: Val::Set(b),
                },
                false,
            );
        }
    }
    objs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn statebox_merge_is_order_independent(
        ops in prop::collection::vec((0usize..4, 0u64..20), 0..40),
        perm in Just(()).prop_perturb(|_, mut rng| {
            let mut v: Vec<usize> = (0..4).collect();
            for i in (1..v.len()).rev() {
                let j = (rng.next_u32() as usize) % (i + 1);
                v.swap(i, j);
            }
            v
        }),
    ) {
        let boxes = boxes_from(&ops, 4);
        let (m1, l1) = Statebox::merge(boxes.iter());
        let (m2, l2) = Statebox::merge(perm.iter().map(|&i| &boxes[i]));
        prop_assert_eq!(&m1, &m2);
        prop_assert_eq!(l1, l2);
        prop_assert_eq!(l1, 0);
        // Merging in two halves then merging the halves gives the same value.
        let (h1, _) = Statebox::merge([&boxes[perm[0]], &boxes[perm[1]]]);
        let (h2, _) = Statebox::merge([&boxes[perm[2]], &boxes[perm[3]]]);
        let (m3, _) = Statebox::merge([&h1, &h2]);
        prop_assert_eq!(&m3.value, &m1.value);
        let all: BTreeSet<u64> = ops.iter().map(|&(_, e)| e).collect();
        prop_assert_eq!(&m1.value, &all);
    }

    #[test]
    fn replica_objects_converge_to_every_add(
        steps in prop::collection::vec((0usize..3, 0usize..3, 0u64..30, any::<bool>()), 0..40),
        order in Just(()).prop_perturb(|_, mut rng| {
            let mut v: Vec<usize> = (0..3).collect();
            for i in (1..v.len()).rev() {
                let j = (rng.next_u32() as usize) % (i + 1);
                v.swap(i, j);
            }
            v
        }),
    ) {
        let objs = objects_from(&steps, 3);
        let mut a = Obj::default();
        for o in &objs {
            a.merge(o, false);
        }
        let mut b = Obj::default();
        for &i in &order {
            b.merge(&objs[i], false);
        }
        // `descends` agrees with "merging changes nothing", both ways, in both modes.
        for lww in [false, true] {
            for x in &objs {
                for y in &objs {
                    let mut m = x.clone();
                    m.merge(y, lww);
                    prop_assert_eq!(x.descends(y, lww), m == *x);
                }
                let mut m = a.clone();
                m.merge(x, lww);
                prop_assert_eq!(a.descends(x, lww), m == a);
            }
        }
        // Merging twice changes nothing.
        let mut c = b.clone();
        c.merge(&objs[order[0]], false);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&b, &c);
        let added: BTreeSet<u64> = steps.iter().filter(|s| !s.3).map(|s| s.2).collect();
        let (sb, lost) = a.statebox().unwrap_or_default();
        prop_assert_eq!(sb.value, added);
        prop_assert_eq!(lost, 0);
    }
}
