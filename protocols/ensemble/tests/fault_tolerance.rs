//! With n replicas and k peers of an ensemble crashed, ops on that ensemble succeed iff
//! k ≤ (n−1)/2 (quorum = n/2+1); other ensembles are unaffected.

mod common;
use common::*;
use quorumlab_ensemble::Params;
use quorumlab_kv::{Key, Op, Outcome};
use quorumlab_sim::SEC;

#[test]
fn ops_succeed_iff_a_majority_is_up() {
    for n in [3usize, 5, 7] {
        for k in 0..=n {
            let mut h = H::new(
                n,
                1,
                n,
                1,
                10,
                Params::default(),
                1.0,
                5_000,
                100 + (n * 10 + k) as u64,
            );
            let (l, _) = h.wait_stable(0, 30 * SEC).expect("leader");
            assert_eq!(
                h.call_until_ok(0, 1, Op::Write(1), 20 * SEC),
                Some(Outcome::Ok(None))
            );
            // Crash the leader first, then the other members in preference-list order.
            let mut victims = vec![l];
            victims.extend(
                h.layout.groups[0]
                    .iter()
                    .map(|&m| usize::from(m))
                    .filter(|&m| m != l),
            );
            for &v in victims.iter().take(k) {
                h.sim.crash(v, false);
            }
            h.run_for(SEC);
            let w = h.call_until_ok(0, 1, Op::Write(2), 60 * SEC);
            let r = h.call_until_ok(0, 1, Op::Read, 20 * SEC);
            let expect = k <= (n - 1) / 2;
            if expect {
                assert_eq!(w, Some(Outcome::Ok(None)), "n={n} k={k}: write");
                assert_eq!(r, Some(Outcome::read_reg(Some(2))), "n={n} k={k}: read");
            } else {
                assert_eq!(w, None, "n={n} k={k}: no write may succeed");
                assert_eq!(r, None, "n={n} k={k}: no read may succeed");
            }
        }
    }
}

/// Many ensembles on 7 nodes: crash two nodes; exactly the ensembles with two members on
/// them become unavailable.
#[test]
fn only_ensembles_without_a_majority_stop() {
    let (nodes, groups) = (7usize, 7usize);
    let mut h = H::new(
        nodes,
        groups,
        3,
        groups,
        1000,
        Params::default(),
        1.0,
        3_000,
        9,
    );
    for g in 0..groups {
        h.wait_stable(g, 30 * SEC).expect("leader");
    }
    // One key per ensemble; client g uses ensemble g.
    let key_of: Vec<u32> = (0..groups)
        .map(|g| (0..1000).find(|&k| h.layout.group_of(Key(k)) == g).unwrap())
        .collect();
    for (g, &key) in key_of.iter().enumerate() {
        assert!(matches!(
            h.call_until_ok(g, key, Op::Write(7), 20 * SEC),
            Some(Outcome::Ok(_))
        ));
    }
    let crashed = [2usize, 3];
    for &c in &crashed {
        h.sim.crash(c, false);
    }
    h.run_for(SEC);
    for (g, &key) in key_of.iter().enumerate() {
        let down = h.layout.groups[g]
            .iter()
            .filter(|&&m| crashed.contains(&usize::from(m)))
            .count();
        let r = h.call_until_ok(
            g,
            key,
            Op::Cas {
                expected: 7,
                new: 8,
            },
            40 * SEC,
        );
        if down <= 1 {
            assert_eq!(
                r,
                Some(Outcome::Ok(None)),
                "ensemble {g} ({down} members down)"
            );
        } else {
            assert_eq!(r, None, "ensemble {g} ({down} members down)");
        }
    }
}
