//! Raft in the simulator: exact round trips, failover, minority partitions, safety invariants
//! under random faults, determinism, and the seeded lease bug.

mod common;

use common::*;
use quorumlab_kv::{Datum, FailKind, Key, Op, Outcome, Request};
use quorumlab_raft::{Cmd, Params, ReadMode, Variant};
use quorumlab_sim::{Latency, LinkModel, MS};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

fn req(id: u64, key: u32, op: Op) -> Request {
    Request {
        id,
        key: Key(key),
        op,
    }
}

/// Brings a 3-node cluster to a steady leader and teaches the client where it is.
fn settled(params: &Params, d_ms: f64) -> Cluster {
    let mut c = cluster(3, 3, 1, 1, params, constant(d_ms), 7);
    c.sim.run_until(ms(1000));
    assert!(c.leader(0).is_some(), "a leader within 1 s");
    let (o, _) = call(&mut c.sim, 3, req(1, 1, Op::Write(1)), ms(2000));
    assert_eq!(o, Outcome::Ok(None));
    c
}

#[test]
fn round_trips_are_exact_under_constant_latency() {
    let d = 5.0;
    let dn = (d * MS as f64) as u64;
    for (mode, read_rtt) in [
        (ReadMode::ReadIndex, 4 * dn),
        (ReadMode::Lease, 2 * dn),
        (ReadMode::Log, 4 * dn),
    ] {
        let params = Params {
            read_mode: mode,
            ..Params::default()
        };
        let mut c = settled(&params, d);
        let (o, t) = call(&mut c.sim, 3, req(2, 1, Op::Write(7)), ms(1000));
        assert_eq!(o, Outcome::Ok(None));
        assert_eq!(t, 4 * dn, "{mode:?}: write = 2d + 2d");
        let (o, t) = call(&mut c.sim, 3, req(3, 1, Op::Read), ms(1000));
        assert_eq!(o, Outcome::read_reg(Some(7)));
        assert_eq!(t, read_rtt, "{mode:?}: read");
        // cas and create failures are decided by the state machine.
        let (o, _) = call(
            &mut c.sim,
            3,
            req(
                4,
                1,
                Op::Cas {
                    expected: 3,
                    new: 4,
                },
            ),
            ms(1000),
        );
        assert_eq!(o, Outcome::Fail(FailKind::Precondition));
        let (o, _) = call(&mut c.sim, 3, req(5, 1, Op::Create(9)), ms(1000));
        assert_eq!(o, Outcome::Fail(FailKind::Precondition));
        let (o, t) = call(
            &mut c.sim,
            3,
            req(
                6,
                1,
                Op::Cas {
                    expected: 7,
                    new: 8,
                },
            ),
            ms(1000),
        );
        assert_eq!((o, t), (Outcome::Ok(None), 4 * dn));
        let (o, _) = call(&mut c.sim, 3, req(7, 1, Op::Delete), ms(1000));
        assert_eq!(o, Outcome::Ok(None));
        let (o, _) = call(&mut c.sim, 3, req(8, 1, Op::Create(5)), ms(1000));
        assert_eq!(o, Outcome::Ok(None));
        let (o, _) = call(&mut c.sim, 3, req(9, 1, Op::Read), ms(1000));
        assert_eq!(o, Outcome::read_reg(Some(5)));
        println!(
            "{mode:?}: write {:.1} ms, read {:.1} ms (d = {d} ms)",
            4.0 * d,
            read_rtt as f64 / MS as f64
        );
    }
}

#[test]
fn failover_elects_a_new_leader_and_writes_resume() {
    let mut gaps = Vec::new();
    for seed in 0..10 {
        let params = Params::default();
        let mut c = cluster(3, 3, 1, 1, &params, constant(2.0), seed);
        c.sim.run_until(ms(1000));
        let (old, old_term) = c.leader(0).expect("leader");
        let (o, _) = call(&mut c.sim, 3, req(1, 1, Op::Write(1)), ms(2000));
        assert_eq!(o, Outcome::Ok(None));
        let crash_at = c.sim.now();
        c.sim.crash(old, false);
        // Step until another node leads.
        while c.leader(0).is_none_or(|(n, _)| n == old) {
            assert!(c.sim.step());
            assert!(c.sim.now() < crash_at + ms(5000), "no new leader after 5 s");
        }
        let (new, term) = c.leader(0).unwrap();
        assert!(new != old && term > old_term);
        let gap = c.sim.now() - crash_at;
        gaps.push(gap as f64 / MS as f64);
        // Writes resume (the client's first try may go to the dead leader and end as info).
        let mut id = 10;
        let ok_at = loop {
            id += 1;
            let (o, _) = call(&mut c.sim, 3, req(id, 1, Op::Write(id)), ms(3000));
            if o == Outcome::Ok(None) {
                break c.sim.now();
            }
            assert!(c.sim.now() < crash_at + ms(10_000), "writes did not resume");
        };
        // The old leader comes back as a follower and catches up.
        c.sim.restart(old);
        c.sim.run_until(c.sim.now() + ms(1000));
        let st = server_state(&c.sim, old).unwrap();
        let r = st.groups[0].as_ref().unwrap();
        assert!(!r.is_leader());
        assert_eq!(r.kv.get(&Key(1)), Some(&Datum::Reg(id)));
        println!(
            "seed {seed}: leaderless for {:.1} ms, first ok write {:.1} ms after the crash",
            gap as f64 / MS as f64,
            (ok_at - crash_at) as f64 / MS as f64
        );
    }
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let max = gaps.iter().cloned().fold(0.0, f64::max);
    println!("time without a leader after a leader crash: mean {mean:.1} ms, max {max:.1} ms");
    // Followers wait one election timeout (150..300 ms) plus one round of votes.
    assert!(max < 700.0, "max leaderless time {max} ms");
}

#[test]
fn minority_cannot_commit_and_its_entries_are_replaced_after_heal() {
    let params = Params::default();
    let mut c = cluster(5, 5, 1, 2, &params, constant(2.0), 3);
    let (a, b) = (5usize, 6usize); // clients
    c.sim.run_until(ms(1000));
    let (old, old_term) = c.leader(0).expect("leader");
    // Teach client `a` the leader.
    let (o, _) = call(&mut c.sim, a, req(1, 1, Op::Write(1)), ms(2000));
    assert_eq!(o, Outcome::Ok(None));
    // Minority: the old leader, one follower and client a. Majority: the other three, client b.
    let other = (0..5).find(|&i| i != old).unwrap();
    let minority = vec![old, other, a];
    let majority: Vec<usize> = (0..5)
        .filter(|i| !minority.contains(i))
        .chain([b])
        .collect();
    let t = c.sim.now();
    c.sim
        .network_mut()
        .partition(&[minority.clone(), majority.clone()], t);
    // A write in the minority cannot commit: the old leader appends it, then steps down
    // (check quorum) and answers "unknown".
    let (o, lat) = call(&mut c.sim, a, req(2, 1, Op::Write(2)), ms(3000));
    assert_eq!(o, Outcome::Info, "minority write must not be ok");
    println!(
        "minority write ended as info after {:.1} ms",
        lat as f64 / MS as f64
    );
    let old_log = server_state(&c.sim, old).unwrap().groups[0]
        .as_ref()
        .unwrap()
        .log()
        .clone();
    let minority_idx = (1..=old_log.last_index())
        .find(|&i| matches!(&old_log.get(i).unwrap().cmd, Cmd::Kv { req, .. } if req.id == 2))
        .expect("old leader appended the minority write");
    // The majority elects a leader and commits.
    let mut id = 10;
    loop {
        id += 1;
        let (o, _) = call(&mut c.sim, b, req(id, 1, Op::Write(100 + id)), ms(3000));
        if o == Outcome::Ok(None) {
            break;
        }
        assert!(c.sim.now() < t + ms(10_000), "majority did not commit");
    }
    let (new, new_term) = c.leader(0).unwrap();
    assert!(majority.contains(&new) && new_term > old_term);
    // Heal: the minority's uncommitted entry is replaced everywhere.
    c.sim.network_mut().heal_all();
    c.sim.run_until(c.sim.now() + ms(2000));
    let (o, _) = call(&mut c.sim, b, req(99, 1, Op::Read), ms(3000));
    assert_eq!(o, Outcome::read_reg(Some(100 + id)));
    c.sim.run_until(c.sim.now() + ms(500));
    let logs: Vec<_> = (0..5)
        .map(|i| {
            server_state(&c.sim, i).unwrap().groups[0]
                .as_ref()
                .unwrap()
                .log()
                .clone()
        })
        .collect();
    for (i, l) in logs.iter().enumerate() {
        assert_eq!(l, &logs[0], "node {i} log differs after heal");
        let e = l.get(minority_idx).unwrap();
        assert!(
            !matches!(&e.cmd, Cmd::Kv { req, .. } if req.id == 2),
            "node {i} still holds the minority's entry"
        );
        assert!(
            server_state(&c.sim, i).unwrap().groups[0]
                .as_ref()
                .unwrap()
                .kv
                .get(&Key(1))
                == Some(&Datum::Reg(100 + id))
        );
    }
}

/// Random faults: crashes (sometimes losing the last unsynced save), restarts, partitions,
/// heals, pauses, clock drift; lossy, duplicating, reordering links; random ops from clients.
/// Safety invariants are checked after every event (unless `lose_unsynced`: a crash that loses
/// an acknowledged write voids Raft's durability assumption). Returns a digest of the run, or the
/// first invariant violation.
type Digest = (Vec<(u64, Request, Outcome)>, u64, u64);

/// Checks every ok read against the order in which mutations were committed (the log order is
/// the linearization order of mutations): a read invoked at `ti` and answered at `tr` must return
/// the key's value after some prefix of that order that includes every mutation completed before
/// `ti` and no mutation invoked after `tr`.
fn check_reads(
    layout: &quorumlab_kv::Layout,
    invoked: &BTreeMap<u64, u64>,
    history: &[(u64, Request, Outcome)],
    committed: &BTreeMap<(u32, u64), quorumlab_raft::Entry>,
) -> Result<usize, String> {
    // Per key: (request id, value after) for each committed mutation, in log order.
    let mut order: BTreeMap<Key, Vec<(u64, Option<Datum>)>> = BTreeMap::new();
    let mut value: BTreeMap<Key, Option<Datum>> = BTreeMap::new();
    let mut expect_idx: BTreeMap<u32, u64> = BTreeMap::new();
    for (&(g, idx), e) in committed {
        let next = expect_idx.entry(g).or_insert(1);
        assert_eq!(
            idx, *next,
            "committed log of group {g} has a hole at {next}"
        );
        *next += 1;
        if let Cmd::Kv { req, .. } = &e.cmd {
            let cur = value.get(&req.key).cloned().flatten();
            let (_, new) = req.op.apply(cur);
            value.insert(req.key, new.clone());
            if req.op.is_mutation() {
                order.entry(req.key).or_default().push((req.id, new));
            }
        }
    }
    let done: BTreeMap<u64, u64> = history
        .iter()
        .filter(|(_, _, o)| !matches!(o, Outcome::Info))
        .map(|(t, r, _)| (r.id, *t))
        .collect();
    let mut checked = 0;
    for (tr, r, o) in history {
        let (Op::Read, Outcome::Ok(v)) = (r.op, o) else {
            continue;
        };
        let _ = layout;
        let ti = invoked[&r.id];
        let muts = order.get(&r.key).map(Vec::as_slice).unwrap_or(&[]);
        // Position 0 = initial state; position p = after the p-th mutation.
        let lo = muts
            .iter()
            .enumerate()
            .filter(|(_, (id, _))| done.get(id).is_some_and(|&t| t < ti))
            .map(|(p, _)| p + 1)
            .max()
            .unwrap_or(0);
        let hi = muts
            .iter()
            .position(|(id, _)| invoked[id] > *tr)
            .unwrap_or(muts.len());
        let ok = (lo..=hi).any(|p| {
            if p == 0 {
                v.is_none()
            } else {
                muts[p - 1].1 == *v
            }
        });
        if !ok {
            return Err(format!(
                "read {r:?} invoked at {ti} answered {v:?} at {tr}: not a value of {:?} between positions {lo} and {hi}",
                r.key
            ));
        }
        checked += 1;
    }
    Ok(checked)
}
fn chaos(seed: u64, params: &Params, secs: u64, lose_unsynced: bool) -> Result<Digest, String> {
    let link = LinkModel {
        latency: Latency::Uniform {
            min_ms: 0.5,
            max_ms: 8.0,
        },
        loss: 0.02,
        duplicate: 0.02,
        fifo: false,
    };
    let (nodes, clients) = (5, 4);
    let mut c = cluster(nodes, 3, 3, clients, params, link, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xFA17);
    let mut obs = Observer::default();
    let mut history = Vec::new();
    let mut next_id = 1u64;
    let mut invoked = BTreeMap::new();
    let mut busy = vec![false; clients];
    let mut next_fault = ms(300);
    let end = ms(secs * 1000);
    while c.sim.now() < end {
        // Keep every idle client busy.
        for (k, b) in busy.iter_mut().enumerate() {
            if !*b {
                let key = rng.random_range(0..6);
                let op = match rng.random_range(0..5) {
                    0 | 1 => Op::Read,
                    2 => Op::Write(next_id),
                    3 => Op::Cas {
                        expected: rng.random_range(0..next_id.max(1)),
                        new: next_id,
                    },
                    _ => Op::Create(next_id),
                };
                c.sim
                    .inject(nodes + k, quorumlab_kv::Wire::Invoke(req(next_id, key, op)));
                invoked.insert(next_id, c.sim.now());
                next_id += 1;
                *b = true;
            }
        }
        if c.sim.now() >= next_fault {
            let n = rng.random_range(0..nodes);
            let now = c.sim.now();
            match rng.random_range(0..7) {
                0 => c.sim.crash(n, lose_unsynced && rng.random_bool(0.3)),
                1 => (0..nodes).for_each(|i| c.sim.restart(i)),
                2 => {
                    // Clients land on either side too, so some talk to a deposed leader.
                    let mut side: Vec<usize> = (0..nodes + clients)
                        .filter(|_| rng.random_bool(0.5))
                        .collect();
                    if !side.contains(&n) {
                        side.push(n);
                    }
                    let rest: Vec<usize> =
                        (0..nodes + clients).filter(|i| !side.contains(i)).collect();
                    c.sim.network_mut().heal_all();
                    c.sim.network_mut().partition(&[side, rest], now);
                }
                3 => c.sim.network_mut().heal_all(),
                4 => c.sim.pause(n, ms(rng.random_range(10..400))),
                5 => c
                    .sim
                    .set_clock_rate(n, [0.95, 1.0, 1.05][rng.random_range(0..3)]),
                _ => {
                    c.sim.network_mut().heal_all();
                    (0..nodes).for_each(|i| c.sim.restart(i));
                }
            }
            next_fault = now + ms(rng.random_range(50..600));
        }
        if !c.sim.step() {
            break;
        }
        if !lose_unsynced {
            if let Err(e) = obs.check(&c.sim, nodes) {
                return Err(format!("seed {seed} at {} ns: {e}", c.sim.now()));
            }
        }
        for (from, m) in c.sim.take_outbox() {
            if let quorumlab_kv::Wire::Done(r, o) = m {
                busy[usize::from(from) - nodes] = false;
                history.push((c.sim.now(), r, o));
            }
        }
    }
    if !lose_unsynced {
        check_reads(&c.layout, &invoked, &history, &obs.committed)?;
    }
    Ok((history, c.sim.stats().events, obs.max_term))
}

#[test]
fn invariants_hold_under_random_faults() {
    let (mut total_ok, mut total_ops, mut total_events) = (0, 0, 0);
    for seed in 0..20 {
        for mode in [ReadMode::ReadIndex, ReadMode::Lease, ReadMode::Log] {
            let params = Params {
                read_mode: mode,
                ..Params::default()
            };
            let (h, events, max_term) = chaos(seed, &params, 10, false).unwrap();
            let ok = h
                .iter()
                .filter(|(_, _, o)| matches!(o, Outcome::Ok(_)))
                .count();
            assert!(ok > 0, "seed {seed} {mode:?}: no op succeeded");
            assert!(events > 1000);
            assert!(max_term > 0);
            total_ok += ok;
            total_ops += h.len();
            total_events += events;
        }
    }
    println!("chaos: {total_events} events, {total_ops} ops, {total_ok} ok, invariants held");
}

#[test]
fn no_panics_when_crashes_lose_unsynced_writes() {
    for seed in 100..110 {
        chaos(seed, &Params::default(), 5, true).unwrap();
    }
}

/// Not an assertion of safety: how often random chaos (with the invariant observer) exposes each
/// seeded bug. The model checker is the tool that finds them for sure.
#[test]
fn seeded_bugs_under_random_faults() {
    for variant in [
        Variant::VolatileVote,
        Variant::CommitPriorTerm,
        Variant::UnboundedLease,
    ] {
        let params = Params {
            variant,
            // A deposed leader that steps down soon has little time to serve stale reads.
            check_quorum: variant != Variant::UnboundedLease,
            ..Params::default()
        };
        let caught: Vec<String> = (0..20)
            .filter_map(|seed| chaos(seed, &params, 10, false).err())
            .collect();
        println!(
            "{variant:?}: caught in {}/20 chaos runs; first: {:?}",
            caught.len(),
            caught.first()
        );
    }
}

#[test]
fn runs_are_deterministic() {
    for seed in [1, 2, 3] {
        let p = Params::default();
        let a = chaos(seed, &p, 3, true).unwrap();
        let b = chaos(seed, &p, 3, true).unwrap();
        assert_eq!(a, b, "seed {seed}");
    }
}

/// A deposed leader cut off with a client: with `unbounded_lease` it serves a stale read; the
/// faithful lease never does (its lease runs out before the majority can elect a new leader).
fn stale_read_after_isolation(variant: Variant) -> Outcome {
    let params = Params {
        read_mode: ReadMode::Lease,
        variant,
        check_quorum: false,
        ..Params::default()
    };
    let mut c = cluster(3, 3, 1, 2, &params, constant(2.0), 5);
    let (a, b) = (3usize, 4usize);
    c.sim.run_until(ms(1000));
    let (old, _) = c.leader(0).expect("leader");
    assert_eq!(
        call(&mut c.sim, a, req(1, 1, Op::Write(1)), ms(2000)).0,
        Outcome::Ok(None)
    );
    assert_eq!(
        call(&mut c.sim, a, req(2, 1, Op::Read), ms(2000)).0,
        Outcome::read_reg(Some(1))
    );
    let t = c.sim.now();
    let rest: Vec<usize> = (0..3).filter(|&i| i != old).chain([b]).collect();
    c.sim.network_mut().partition(&[vec![old, a], rest], t);
    // The majority elects a new leader and client b writes 2.
    let mut id = 10;
    loop {
        id += 1;
        if call(&mut c.sim, b, req(id, 1, Op::Write(2)), ms(3000)).0 == Outcome::Ok(None) {
            break;
        }
    }
    // Client a, still talking to the old leader, reads.
    call(&mut c.sim, a, req(99, 1, Op::Read), ms(3000)).0
}

#[test]
fn unbounded_lease_serves_stale_reads_faithful_lease_does_not() {
    assert_eq!(
        stale_read_after_isolation(Variant::UnboundedLease),
        Outcome::read_reg(Some(1))
    );
    let faithful = stale_read_after_isolation(Variant::Faithful);
    assert_ne!(
        faithful,
        Outcome::read_reg(Some(1)),
        "faithful lease served a stale read"
    );
}

#[test]
fn multi_raft_groups_spread_leadership_and_serve_all_keys() {
    let params = Params::default();
    let mut c = cluster(5, 3, 8, 1, &params, constant(1.0), 11);
    c.sim.run_until(ms(1500));
    for g in 0..8 {
        assert!(c.leader(g).is_some(), "group {g} has a leader");
    }
    for k in 0..40u32 {
        let (o, _) = call(
            &mut c.sim,
            5,
            req(k as u64 * 2 + 1, k, Op::Write(k as u64)),
            ms(3000),
        );
        assert_eq!(o, Outcome::Ok(None));
        let (o, _) = call(&mut c.sim, 5, req(k as u64 * 2 + 2, k, Op::Read), ms(3000));
        assert_eq!(o, Outcome::read_reg(Some(k as u64)));
    }
}

#[test]
fn read_checker_catches_a_stale_read() {
    let layout = quorumlab_kv::Layout::new(3, 1, 3, 1, 10).unwrap();
    let w = |id, v| quorumlab_raft::Entry {
        term: 1,
        cmd: Cmd::Kv {
            client: quorumlab_sim::Id::from(3),
            req: req(id, 1, Op::Write(v)),
        },
    };
    let committed: BTreeMap<(u32, u64), quorumlab_raft::Entry> =
        [((0, 1), w(1, 10)), ((0, 2), w(2, 20))]
            .into_iter()
            .collect();
    let invoked: BTreeMap<u64, u64> = [(1, 0), (2, 10), (3, 30), (4, 15)].into_iter().collect();
    let mut history = vec![
        (5, req(1, 1, Op::Write(10)), Outcome::Ok(None)),
        (20, req(2, 1, Op::Write(20)), Outcome::Ok(None)),
        // Concurrent with write 2: either value is fine.
        (25, req(4, 1, Op::Read), Outcome::read_reg(Some(10))),
    ];
    assert_eq!(check_reads(&layout, &invoked, &history, &committed), Ok(1));
    // Invoked after write 2 completed, returns the old value: stale.
    history.push((40, req(3, 1, Op::Read), Outcome::read_reg(Some(10))));
    assert!(check_reads(&layout, &invoked, &history, &committed).is_err());
}
