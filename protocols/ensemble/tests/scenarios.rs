//! riak_ensemble's own test scenarios (test/*_test.erl), ported to the simulator. Their
//! `rt_intercept` hooks become `Intercept` messages injected by the test.

mod common;
use common::*;
use quorumlab_ensemble::{Intercept, Params};
use quorumlab_kv::{Op, Outcome};
use quorumlab_sim::{MS, SEC};

/// Runs until some node other than `not` leads ensemble 0 with an epoch above `epoch`.
fn wait_new_leader(h: &mut H, not: usize, epoch: u64, limit: u64) -> (usize, u64) {
    let end = h.now() + limit;
    loop {
        let found = (0..h.layout.nodes)
            .filter(|&n| n != not)
            .filter_map(|n| {
                h.peer(n, 0)
                    .filter(|p| p.role == quorumlab_ensemble::Role::Leading && p.fact.epoch > epoch)
                    .map(|p| (n, p.fact.epoch))
            })
            .max_by_key(|x| x.1);
        if let Some(f) = found {
            return f;
        }
        assert!(h.now() < end, "no new leader within {} s", limit / SEC);
        h.run_for(50 * MS);
    }
}

/// basic_test: put, get; suspend the leader → a new leader; reads continue; resume; reads
/// continue.
#[test]
fn basic() {
    let mut h = H::new(3, 1, 3, 1, 10, Params::default(), 1.0, 5_000, 1);
    let (l, e) = h.wait_stable(0, 30 * SEC).expect("leader");
    assert_eq!(
        h.call_until_ok(0, 1, Op::Write(100), 20 * SEC),
        Some(Outcome::Ok(None))
    );
    assert_eq!(
        h.call_until_ok(0, 1, Op::Read, 20 * SEC),
        Some(Outcome::read_reg(Some(100)))
    );

    h.sim.pause(l, 30 * SEC); // erlang:suspend_process(LeaderPid)
    let (l2, _) = wait_new_leader(&mut h, l, e, 30 * SEC);
    assert_ne!(l2, l);
    assert_eq!(
        h.call_until_ok(0, 1, Op::Read, 30 * SEC),
        Some(Outcome::read_reg(Some(100)))
    );

    // resume_process: the old leader wakes up still "leading", fails its tick, steps down
    // and follows.
    let resume = h.now().max(30 * SEC) + 2 * SEC;
    h.run_until(resume);
    assert_eq!(
        h.call_until_ok(0, 1, Op::Read, 30 * SEC),
        Some(Outcome::read_reg(Some(100)))
    );
    let (l3, _) = h.wait_stable(0, 30 * SEC).expect("stable after resume");
    assert_eq!(h.peer(l, 0).unwrap().fact.leader.map(usize::from), Some(l3));
    assert!(h.ok_reads(1).iter().all(|v| *v == Some(100)));
}

/// drop_write_test: the backends of all peers but the first leader acknowledge puts without
/// storing them. After a leader change no read may return notfound: the integrity tree
/// (updated separately) knows the key exists, so the new leader refuses to answer until it
/// has heard from a peer with the object.
#[test]
fn drop_write() {
    let mut h = H::new(5, 1, 5, 1, 10, Params::default(), 1.0, 5_000, 2);
    let (l, e) = h.wait_stable(0, 30 * SEC).expect("leader");
    for n in 0..5 {
        if n != l {
            h.intercept(n, Intercept::DropPuts(true));
        }
    }
    assert_eq!(
        h.call_until_ok(0, 7, Op::Write(70), 20 * SEC),
        Some(Outcome::Ok(None))
    );
    assert_eq!(
        h.call_until_ok(0, 7, Op::Read, 20 * SEC),
        Some(Outcome::read_reg(Some(70)))
    );
    for n in 0..5 {
        if n != l {
            assert_eq!(h.local_obj(n, 7), None, "node {n} dropped the write");
        }
    }
    h.sim.pause(l, 15 * SEC);
    wait_new_leader(&mut h, l, e, 60 * SEC);
    // Reads while the only copy is suspended: errors are fine, notfound is not.
    for _ in 0..3 {
        let _ = h.call(0, 7, Op::Read, 10 * SEC);
    }
    let resumed = h.now().max(15 * SEC) + SEC;
    h.run_until(resumed);
    assert!(
        h.calls.iter().any(|c| c.req.key.0 == 7
            && matches!(&c.done, Some((t, o)) if *t < resumed && !matches!(o, Outcome::Ok(_)))),
        "while the only copy was suspended, the new leader refused to answer"
    );
    // read_until/1: retry until a read succeeds.
    let got = h.call_until_ok(0, 7, Op::Read, 120 * SEC);
    assert_eq!(got, Some(Outcome::read_reg(Some(70))));
    let reads = h.ok_reads(7);
    assert!(
        reads.iter().all(|v| *v == Some(70)),
        "a read returned {reads:?}"
    );
}

/// lease_test: trusted vs untrusted reads; failing check_epoch → timeout (info); lease 0.
#[test]
fn lease() {
    let mut h = H::new(3, 1, 3, 1, 10, Params::default(), 1.0, 5_000, 3);
    h.wait_stable(0, 30 * SEC).expect("leader");
    assert_eq!(
        h.call_until_ok(0, 1, Op::Write(5), 20 * SEC),
        Some(Outcome::Ok(None))
    );

    // Lease trusted: a fresh read needs no quorum.
    h.sync_after_tick(0);
    let before = h.stats();
    assert_eq!(
        h.call(0, 1, Op::Read, 10 * SEC).map(|x| x.0),
        Some(Outcome::read_reg(Some(5)))
    );
    assert_eq!(sent(&h.stats(), &before, "check_epoch"), 0);

    // Lease not trusted: check_epoch to a quorum.
    h.intercept_all(Intercept::TrustLease(Some(false)));
    let before = h.stats();
    assert_eq!(
        h.call(0, 1, Op::Read, 10 * SEC).map(|x| x.0),
        Some(Outcome::read_reg(Some(5)))
    );
    assert_eq!(sent(&h.stats(), &before, "check_epoch"), 2);

    // Not trusted, and followers nack the epoch check: {error, timeout} → info; the leader
    // steps down (request_failed).
    h.intercept_all(Intercept::CheckEpochFalse(true));
    let (l, e) = h.leader(0).unwrap();
    assert_eq!(
        h.call(0, 1, Op::Read, 10 * SEC).map(|x| x.0),
        Some(Outcome::Info)
    );
    assert!(h.leader(0) != Some((l, e)), "the leader stepped down");

    // Trusted again (check_epoch still failing): leased reads work. The first read in the
    // new epoch rewrites (a quorum put, not a check_epoch), the second is leased.
    h.intercept_all(Intercept::TrustLease(None));
    h.wait_stable(0, 60 * SEC).expect("stable");
    assert_eq!(
        h.call_until_ok(0, 1, Op::Read, 30 * SEC),
        Some(Outcome::read_reg(Some(5)))
    );
    h.sync_after_tick(0);
    assert_eq!(
        h.call(0, 1, Op::Read, 10 * SEC).map(|x| x.0),
        Some(Outcome::read_reg(Some(5)))
    );

    // A zero lease is never valid: the read falls back to check_epoch, which fails.
    h.intercept_all(Intercept::LeaseMs(Some(0)));
    h.wait_stable(0, 60 * SEC).expect("stable");
    h.sync_after_tick(0);
    let o = h.call(0, 1, Op::Read, 10 * SEC).map(|x| x.0);
    assert!(!matches!(o, Some(Outcome::Ok(_))), "{o:?}");

    // Intercept removed: all is well.
    h.intercept_all(Intercept::CheckEpochFalse(false));
    h.wait_stable(0, 60 * SEC).expect("stable");
    assert_eq!(
        h.call_until_ok(0, 1, Op::Read, 30 * SEC),
        Some(Outcome::read_reg(Some(5)))
    );
    assert_eq!(
        h.call_until_ok(0, 1, Op::Read, 30 * SEC),
        Some(Outcome::read_reg(Some(5)))
    );
    assert!(h.ok_reads(1).iter().all(|v| *v == Some(5)));
}

/// read_tombstone_test: a read of a key nobody has writes no tombstone when every peer
/// answers in time; with a peer silent (and no extra wait) the read writes tombstones.
#[test]
fn read_tombstone() {
    let p = Params {
        notfound_read_delay_ms: 3000,
        ..Params::default()
    };
    let mut h = H::new(3, 1, 3, 1, 10, p, 1.0, 10_000, 4);
    let (l, _) = h.wait_stable(0, 30 * SEC).expect("leader");
    assert_eq!(
        h.call_until_ok(0, 1, Op::Read, 20 * SEC),
        Some(Outcome::Ok(None))
    );
    for n in 0..3 {
        assert_eq!(h.local_obj(n, 1), None, "node {n} has no tombstone");
    }

    h.intercept_all(Intercept::NotfoundDelayMs(Some(0)));
    let (l, _) = h.leader(0).map_or((l, 0), |x| x);
    let others: Vec<usize> = (0..3).filter(|&n| n != l).collect();
    let (f1, f2) = (others[0], others[1]);
    h.sync_after_tick(0);
    h.sim.pause(f2, 2 * SEC);
    assert_eq!(
        h.call(0, 2, Op::Read, 10 * SEC).map(|x| x.0),
        Some(Outcome::Ok(None))
    );
    h.run_for(3 * SEC);
    assert_eq!(h.local_obj(l, 2), Some(None), "leader has a tombstone");
    assert_eq!(
        h.local_obj(f1, 2),
        Some(None),
        "active follower has a tombstone"
    );
}
