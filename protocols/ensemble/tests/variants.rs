//! The variants that reproduce known or suspected flaws, each against the faithful protocol,
//! and the lease's dependence on clock rate.

mod common;
use common::*;
use quorumlab_ensemble::{Params, Role, Variant};
use quorumlab_kv::{Op, Outcome};
use quorumlab_sim::{MS, SEC};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn params(variant: Variant) -> Params {
    Params {
        variant,
        ..Params::default()
    }
}

/// Runs until a node other than `not` leads ensemble 0 in a newer epoch than `not` knows
/// (`not` itself may still believe it leads).
fn wait_other_leader(h: &mut H, not: usize, limit: u64) -> usize {
    let end = h.now() + limit;
    let old = h.peer(not, 0).map_or(0, |p| p.fact.epoch);
    loop {
        let found = (0..h.layout.nodes).filter(|&n| n != not).find(|&n| {
            h.peer(n, 0)
                .is_some_and(|p| p.role == Role::Leading && p.fact.epoch > old)
        });
        if let Some(l) = found {
            return l;
        }
        assert!(h.now() < end, "no other leader");
        h.run_for(50 * MS);
    }
}

/// Isolates `n` until another node leads, then heals and waits for stability.
fn depose(h: &mut H, n: usize) -> usize {
    let others: Vec<usize> = (0..h.layout.nodes).filter(|&x| x != n).collect();
    let now = h.now();
    h.sim.network_mut().partition(&[vec![n], others], now);
    let l = wait_other_leader(h, n, 60 * SEC);
    h.sim.network_mut().heal_all();
    h.wait_stable(0, 60 * SEC).expect("stable");
    l
}

/// lease_pr49: with the old default (lease = tick·2/3 < tick) the lease runs out before the
/// next tick renews it, so about a third of gets pay a check_epoch quorum round trip. The
/// faithful lease (tick·3/2) never lapses on a healthy leader.
#[test]
fn lease_pr49_makes_a_third_of_reads_pay_a_quorum() {
    let mut fraction = Vec::new();
    for v in [Variant::Faithful, Variant::LeasePr49] {
        let mut h = H::new(3, 1, 3, 1, 10, params(v), 1.0, 5_000, 21);
        h.wait_stable(0, 30 * SEC).expect("leader");
        assert_eq!(
            h.call_until_ok(0, 1, Op::Write(1), 20 * SEC),
            Some(Outcome::Ok(None))
        );
        assert_eq!(
            h.call_until_ok(0, 1, Op::Read, 20 * SEC),
            Some(Outcome::read_reg(Some(1)))
        );
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (mut checked, n) = (0, 300);
        for _ in 0..n {
            h.run_for(rng.random_range(10..100) * MS);
            let before = h.stats();
            let (o, _) = h.call(0, 1, Op::Read, 10 * SEC).expect("completes");
            assert_eq!(o, Outcome::read_reg(Some(1)));
            if sent(&h.stats(), &before, "check_epoch") > 0 {
                checked += 1;
            }
        }
        let f = checked as f64 / n as f64;
        println!("{}: {checked}/{n} reads needed check_epoch", v.name());
        fraction.push(f);
    }
    assert_eq!(
        fraction[0], 0.0,
        "faithful lease never lapses on a healthy leader"
    );
    assert!(
        fraction[1] > 0.2 && fraction[1] < 0.5,
        "lease_pr49: {}",
        fraction[1]
    );
}

/// skip_rewrite: a new leader answers a get of a non-fresh key from whatever quorum it read
/// without rewriting it, so a value written only to a minority (an `info` write of the old
/// leader) can appear and disappear again: reads v1, v2, v1. The faithful rewrite makes the
/// first read's answer durable in the new epoch.
#[test]
fn skip_rewrite_lets_reads_flip_flop() {
    for v in [Variant::Faithful, Variant::SkipRewrite] {
        let mut h = H::new(3, 1, 3, 1, 10, params(v), 1.0, 2_000, 31);
        let (a, _) = h.wait_stable(0, 30 * SEC).expect("leader");
        assert_eq!(
            h.call_until_ok(0, 1, Op::Write(1), 20 * SEC),
            Some(Outcome::Ok(None))
        );
        h.sync_after_tick(0);
        // The leader is cut off; a write reaches only its own backend.
        let others: Vec<usize> = (0..3).filter(|&n| n != a).collect();
        let now = h.now();
        h.sim
            .network_mut()
            .partition(&[vec![a], others.clone()], now);
        let (o, _) = h.call(0, 1, Op::Write(2), 10 * SEC).unwrap();
        assert_eq!(
            o,
            Outcome::Info,
            "{}: the minority write is unknown",
            v.name()
        );
        assert_eq!(h.local_obj(a, 1), Some(Some(2)));
        let l2 = wait_other_leader(&mut h, a, 60 * SEC);
        let f = *others.iter().find(|&&n| n != l2).unwrap();
        // Read 1: quorum {l2, f}.
        assert_eq!(
            h.call_until_ok(0, 1, Op::Read, 30 * SEC),
            Some(Outcome::read_reg(Some(1)))
        );
        h.sim.network_mut().heal_all();
        h.wait_stable(0, 30 * SEC).expect("old leader follows");
        // Read 2: quorum {l2, a} (f cut off).
        let now = h.now();
        h.sim.network_mut().partition(&[vec![f], vec![a, l2]], now);
        let r2 = h.call_until_ok(0, 1, Op::Read, 30 * SEC);
        h.sim.network_mut().heal_all();
        h.wait_stable(0, 30 * SEC).expect("stable");
        // Read 3: quorum {l2, f} (a cut off).
        let now = h.now();
        h.sim.network_mut().partition(&[vec![a], vec![f, l2]], now);
        let r3 = h.call_until_ok(0, 1, Op::Read, 30 * SEC);
        h.sim.network_mut().heal_all();
        let reads = h.ok_reads(1);
        println!("{}: reads {reads:?}", v.name());

        match v {
            Variant::Faithful => {
                assert_eq!(
                    (r2, r3),
                    (
                        Some(Outcome::read_reg(Some(1))),
                        Some(Outcome::read_reg(Some(1)))
                    )
                );
                assert!(h.bad_keys().is_empty());
            }
            _ => {
                assert_eq!(
                    (r2, r3),
                    (
                        Some(Outcome::read_reg(Some(2))),
                        Some(Outcome::read_reg(Some(1)))
                    )
                );
                assert_eq!(h.bad_keys(), vec![1], "v1, v2, v1 is not linearizable");
            }
        }
    }
}

/// volatile_fact: facts are not saved, so after a whole-cluster restart epochs start again
/// at 0 and new writes carry versions *older* than objects written before the restart. A
/// later quorum read then prefers the old object: an acknowledged write is lost.
#[test]
fn volatile_fact_loses_writes_after_a_cluster_restart() {
    for v in [Variant::Faithful, Variant::VolatileFact] {
        let mut h = H::new(3, 1, 3, 1, 10, params(v), 1.0, 2_000, 41);
        let (l, _) = h.wait_stable(0, 30 * SEC).expect("leader");
        depose(&mut h, l); // epoch 2
        assert_eq!(
            h.call_until_ok(0, 1, Op::Write(1), 20 * SEC),
            Some(Outcome::Ok(None))
        );
        let e_before = h.leader(0).unwrap().1;
        for n in 0..3 {
            h.sim.crash(n, false);
        }
        h.run_for(SEC);
        for n in 0..3 {
            h.sim.restart(n);
        }
        let (m, e_after) = h.wait_stable(0, 60 * SEC).expect("leader after restart");
        println!(
            "{}: epoch {e_before} before the restart, {e_after} after",
            v.name()
        );
        // Write v2 with one follower cut off: it keeps v1.
        let x = (0..3).find(|&n| n != m).unwrap();
        let now = h.now();
        h.sim
            .network_mut()
            .partition(&[vec![x], (0..3).filter(|&n| n != x).collect()], now);
        assert_eq!(
            h.call_until_ok(0, 1, Op::Write(2), 30 * SEC),
            Some(Outcome::Ok(None))
        );
        h.sim.network_mut().heal_all();
        h.wait_stable(0, 30 * SEC).expect("stable");
        // Depose the leader; the new leader reads from a quorum that includes x.
        let now = h.now();
        h.sim
            .network_mut()
            .partition(&[vec![m], (0..3).filter(|&n| n != m).collect()], now);
        wait_other_leader(&mut h, m, 60 * SEC);
        let r = h.call_until_ok(0, 1, Op::Read, 30 * SEC);
        h.sim.network_mut().heal_all();
        match v {
            Variant::Faithful => {
                assert!(e_after > e_before);
                assert_eq!(r, Some(Outcome::read_reg(Some(2))));
                assert!(h.bad_keys().is_empty());
            }
            _ => {
                assert!(e_after < e_before, "epochs restarted");
                assert_eq!(
                    r,
                    Some(Outcome::read_reg(Some(1))),
                    "the acknowledged write of 2 is lost"
                );
                assert_eq!(h.bad_keys(), vec![1]);
            }
        }
    }
}

/// Leases are timers on the node's own clock: a leader whose clock runs 50× slow keeps
/// trusting its lease long after its followers gave up on it and elected another leader,
/// and serves a stale read. At the normal rate the lease lapses (and the leader steps
/// down) long before a new leader can be elected.
#[test]
fn a_slow_leader_clock_breaks_the_lease() {
    for rate in [1.0, 0.02] {
        let mut h = H::new(3, 2, 3, 1, 10, Params::default(), 1.0, 1_000, 51);
        let (a, _) = h.wait_stable(0, 30 * SEC).expect("leader");
        assert_eq!(
            h.call_until_ok(0, 1, Op::Write(1), 20 * SEC),
            Some(Outcome::Ok(None))
        );
        assert_eq!(
            h.call_until_ok(0, 1, Op::Read, 20 * SEC),
            Some(Outcome::read_reg(Some(1)))
        );
        h.sync_after_tick(0);
        h.sim.set_clock_rate(a, rate);
        // Client 0 stays with the old leader, client 1 with the others.
        let (c0, c1) = (h.client(0), h.client(1));
        let others: Vec<usize> = (0..3).filter(|&n| n != a).collect();
        let mut side_b = others.clone();
        side_b.push(c1);
        let now = h.now();
        h.sim.network_mut().partition(&[vec![a, c0], side_b], now);
        wait_other_leader(&mut h, a, 60 * SEC);
        assert_eq!(
            h.call_until_ok(1, 1, Op::Write(2), 30 * SEC),
            Some(Outcome::Ok(None))
        );
        let (o, _) = h.call(0, 1, Op::Read, 5 * SEC).unwrap();
        println!("clock rate {rate}: the old leader answers {o:?}");
        match rate {
            1.0 => {
                assert!(!matches!(o, Outcome::Ok(_)), "no lease, no answer");
                assert!(h.bad_keys().is_empty());
            }
            _ => {
                assert_eq!(
                    o,
                    Outcome::read_reg(Some(1)),
                    "stale read under a slow clock"
                );
                assert_eq!(h.bad_keys(), vec![1]);
            }
        }
    }
}
