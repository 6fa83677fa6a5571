//! The reference's *possible flaw*: a follower adopts a new epoch in memory only (prefollow →
//! `new_epoch`), and saves it at the first commit. If it crashes in between, it comes back
//! with the old epoch and can help a second candidate become leader of the *same* epoch.
//! Followers accept a commit of an equal epoch from any sender, so both leaders then get
//! quorums, and their objects carry versions of one epoch with unrelated seqs: a later quorum
//! read can prefer an older write. This test builds that schedule in the simulator with one
//! crash and one process pause (no clock drift, no message loss beyond the crash).

mod common;
use common::lin::bad_keys;
use common::*;
use quorumlab_ensemble::{Params, Role};
use quorumlab_kv::{Op, Outcome};
use quorumlab_sim::{MS, SEC};
use stateright::actor::Id;

/// Writes fresh values `v, v+1, ...` to key 1 until one is acknowledged; returns it.
fn write_until_ok(h: &mut H, client: usize, mut v: u64) -> u64 {
    let end = h.now() + 20 * SEC;
    while h.now() < end {
        if let Some((Outcome::Ok(_), _)) = h.call(client, 1, Op::Write(v), 5 * SEC) {
            return v;
        }
        v += 1;
        h.run_for(100 * MS);
    }
    panic!("no write acknowledged");
}

#[test]
fn crash_before_the_first_commit_gives_two_leaders_of_one_epoch() {
    let mut h = H::new(3, 2, 3, 1, 10, Params::default(), 1.0, 3_000, 61);
    // Node 2 is cut off while 0 and 1 elect.
    h.sim.network_mut().partition(&[vec![0, 1], vec![2]], 0);
    // Step until one of 0/1 has acknowledged the other's new_epoch (following, not ready).
    let (l, f) = loop {
        assert!(h.sim.step() && h.now() < 60 * SEC, "no election");
        let acked = |n: usize| {
            h.peer(n, 0)
                .is_some_and(|p| p.role == Role::Following && p.fact.epoch == 1 && !p.ready)
        };
        if acked(0) {
            break (1, 0);
        }
        if acked(1) {
            break (0, 1);
        }
    };
    assert_eq!(h.peer(l, 0).unwrap().role, Role::Prelead);
    // The candidate pauses before it reads the ack; the follower crashes before the first
    // commit: its epoch 1 was never saved.
    let pause_end = h.now() + 40 * SEC;
    h.sim.pause(l, 40 * SEC);
    h.sim.crash(f, false);
    h.sim.restart(f);
    assert_eq!(
        h.peer(f, 0).unwrap().fact.epoch,
        0,
        "restarted with the saved epoch"
    );
    h.sim.network_mut().heal_all();

    // f and 2 elect a leader m of epoch 1 (prepare(0 + 1)); x is the other.
    let (m, x) = loop {
        h.run_for(50 * MS);
        assert!(h.now() < pause_end - 10 * SEC, "no second election in time");
        let lead = [f, 2].into_iter().find(|&n| {
            h.peer(n, 0)
                .is_some_and(|p| p.role == Role::Leading && p.fact.epoch == 1)
        });
        if let Some(m) = lead {
            let x = if m == f { 2 } else { f };
            if h.peer(x, 0)
                .is_some_and(|p| p.ready && p.fact.leader == Some(Id::from(m)))
            {
                break (m, x);
            }
        }
    };
    h.run_for(3 * SEC); // m's seq grows with its ticks
                        // Client 1 writes b through m (a fresh value per attempt, so that an unanswered attempt
                        // queued at the paused l cannot explain anything later).
    let b = write_until_ok(&mut h, 1, 100);

    // l wakes up, reads the old ack, leads epoch 1 as well; its first commit (epoch 1 ≥ 1)
    // is accepted by x, which now follows l.
    h.run_until(pause_end);
    let end = h.now() + 5 * SEC;
    while h
        .peer(x, 0)
        .is_none_or(|p| p.fact.leader != Some(Id::from(l)))
    {
        assert!(h.sim.step() && h.now() < end, "x never follows l");
    }
    let (pl, pm) = (h.peer(l, 0).unwrap(), h.peer(m, 0).unwrap());
    assert_eq!((pl.role, pl.fact.epoch), (Role::Leading, 1));
    assert_eq!(
        (pm.role, pm.fact.epoch),
        (Role::Leading, 1),
        "two leaders of epoch 1"
    );
    // Keep x with l for a moment (m's commits to x are cut) and write a through l.
    let now = h.now();
    h.sim.network_mut().cut(m, x, now);
    let a = write_until_ok(&mut h, 0, 200);
    h.sim.network_mut().heal_all();

    // l goes away. m still leads epoch 1 with x, and its own copy (b) is fresh: reads return
    // b although a was acknowledged later. a is lost.
    h.sim.crash(l, false);
    let r = h.call_until_ok(1, 1, Op::Read, 60 * SEC);
    println!("leaders of epoch 1: {l} and {m}; read after both writes: {r:?}");
    for c in &h.calls {
        let done = c.done.map(|(t, o)| (t / MS, o));
        println!(
            "  c{} {:?} @{} ms -> {done:?}",
            c.client,
            c.req.op,
            c.invoke / MS
        );
    }
    assert_eq!(
        r,
        Some(Outcome::Ok(Some(b))),
        "the acknowledged write of {a} is lost"
    );
    assert_eq!(bad_keys(&h.calls), vec![1]);
}
