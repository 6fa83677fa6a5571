//! Exact round trips under constant one-way latency d and no loss (riak's slides: a leased
//! get costs no peer message; a put one quorum round trip; the first get of a key in a new
//! epoch a read and a rewrite).

mod common;
use common::*;
use quorumlab_ensemble::{Intercept, Params};
use quorumlab_kv::{Op, Outcome};
use quorumlab_sim::{Nanos, MS, SEC};

const D: u64 = 5; // ms

fn d(k: u64) -> Nanos {
    k * D * MS
}

/// One measured op: asserts its latency and returns the peer messages it caused.
fn measure(
    h: &mut H,
    key: u32,
    op: Op,
    expect: Outcome,
    rtt_d: u64,
    what: &str,
) -> Vec<(String, u64)> {
    h.sync_after_tick(0);
    let before = h.stats();
    let (o, lat) = h.call(0, key, op, 10 * SEC).expect("completes");
    let after = h.stats();
    assert_eq!(o, expect, "{what}: outcome");
    assert_eq!(
        lat,
        d(rtt_d),
        "{what}: latency {} ms, expected {}d",
        lat as f64 / 1e6,
        rtt_d
    );
    let kinds = [
        "client_req",
        "client_resp",
        "forward",
        "get",
        "put",
        "obj",
        "check_epoch",
        "ack",
        "nack",
        "update_hash",
        "commit",
    ];
    let msgs: Vec<(String, u64)> = kinds
        .iter()
        .map(|k| (k.to_string(), sent(&after, &before, k)))
        .filter(|(_, n)| *n > 0)
        .collect();
    println!("{what:<45} {:>3} ms = {rtt_d}d  msgs {msgs:?}", lat / MS);
    msgs
}

fn count(msgs: &[(String, u64)], k: &str) -> u64 {
    msgs.iter().find(|(x, _)| x == k).map_or(0, |(_, n)| *n)
}

/// The table of docs/protocols/ensemble.md.
#[test]
fn round_trips_are_exact() {
    let mut h = H::new(3, 1, 3, 1, 100, Params::default(), D as f64, 5_000, 7);
    let (l, e1) = h.wait_stable(0, 30 * SEC).expect("a leader");
    // Teach the client who leads (its first request may be forwarded).
    assert_eq!(
        h.call_until_ok(0, 1, Op::Write(1), 10 * SEC),
        Some(Outcome::Ok(None))
    );

    let m = measure(
        &mut h,
        2,
        Op::Write(20),
        Outcome::Ok(None),
        4,
        "overwrite (kover)",
    );
    assert_eq!(
        (count(&m, "put"), count(&m, "obj"), count(&m, "update_hash")),
        (2, 2, 2)
    );

    let m = measure(
        &mut h,
        2,
        Op::Read,
        Outcome::read_reg(Some(20)),
        2,
        "get, fresh, valid lease",
    );
    assert_eq!(
        m.iter().map(|(_, n)| n).sum::<u64>(),
        2,
        "only client_req and client_resp: {m:?}"
    );

    let cas = Op::Cas {
        expected: 20,
        new: 21,
    };
    let m = measure(&mut h, 2, cas, Outcome::Ok(None), 4, "cas, fresh (kmodify)");
    assert_eq!(count(&m, "get"), 0);

    let bad = Op::Cas {
        expected: 20,
        new: 22,
    };
    let m = measure(
        &mut h,
        2,
        bad,
        Outcome::Fail(quorumlab_kv::FailKind::Precondition),
        2,
        "cas, fresh, precondition false",
    );
    assert_eq!(count(&m, "put"), 0);

    let m = measure(
        &mut h,
        2,
        Op::Delete,
        Outcome::Ok(None),
        4,
        "delete (kdelete)",
    );
    assert_eq!(count(&m, "put"), 2);

    // A key nobody has: the read waits for all (notfound_read_delay) and writes no tombstone.
    let m = measure(
        &mut h,
        3,
        Op::Read,
        Outcome::Ok(None),
        4,
        "get, key never written",
    );
    assert_eq!((count(&m, "get"), count(&m, "put")), (2, 0));
    assert_eq!(h.local_obj(l, 3), None, "no tombstone");

    let m = measure(
        &mut h,
        4,
        Op::Create(40),
        Outcome::Ok(None),
        6,
        "create (put_once), key never written",
    );
    assert_eq!((count(&m, "get"), count(&m, "put")), (2, 2));

    let m = measure(
        &mut h,
        4,
        Op::Read,
        Outcome::read_reg(Some(40)),
        2,
        "get after create",
    );
    assert_eq!(count(&m, "get"), 0);

    // trust_lease = false: every get confirms the epoch with a quorum.
    h.intercept_all(Intercept::TrustLease(Some(false)));
    let m = measure(
        &mut h,
        2,
        Op::Read,
        Outcome::Ok(None),
        4,
        "get, trust_lease=false (check_epoch)",
    );
    assert_eq!(count(&m, "check_epoch"), 2);
    h.intercept_all(Intercept::TrustLease(None));

    // A new epoch: isolate the leader until another is elected, then heal.
    let others: Vec<usize> = (0..3).filter(|&n| n != l).collect();
    let now = h.now();
    h.sim
        .network_mut()
        .partition(&[vec![l], others.clone()], now);
    let end = h.now() + 60 * SEC;
    while !h.leader(0).is_some_and(|(n, e)| n != l && e > e1) {
        assert!(h.now() < end, "no new leader");
        h.run_for(100 * MS);
    }
    h.sim.network_mut().heal_all();
    let (l2, e2) = h.wait_stable(0, 30 * SEC).expect("stable again");
    assert!(e2 > e1);
    // Teach the client the new leader with a key of no interest.
    assert!(matches!(
        h.call_until_ok(0, 5, Op::Read, 10 * SEC),
        Some(Outcome::Ok(_))
    ));
    assert_eq!(h.leader(0).map(|x| x.0), Some(l2));

    let m = measure(
        &mut h,
        4,
        Op::Read,
        Outcome::read_reg(Some(40)),
        6,
        "get, first in a new epoch (read+rewrite)",
    );
    assert_eq!((count(&m, "get"), count(&m, "put")), (2, 2));
    measure(
        &mut h,
        4,
        Op::Read,
        Outcome::read_reg(Some(40)),
        2,
        "get, second in the new epoch",
    );

    let cas = Op::Cas {
        expected: 1,
        new: 11,
    };
    let m = measure(
        &mut h,
        1,
        cas,
        Outcome::Ok(None),
        8,
        "cas, first in a new epoch (read+rewrite+write)",
    );
    assert_eq!((count(&m, "get"), count(&m, "put")), (2, 4));

    measure(
        &mut h,
        1,
        Op::Write(12),
        Outcome::Ok(None),
        4,
        "overwrite in the new epoch",
    );
}

/// Sanity: the forwarded path costs one extra one-way hop.
#[test]
fn forwarded_request_costs_one_hop() {
    let mut h = H::new(3, 2, 3, 1, 100, Params::default(), D as f64, 5_000, 11);
    let (l, _) = h.wait_stable(0, 30 * SEC).expect("a leader");
    assert_eq!(
        h.call_until_ok(0, 1, Op::Write(1), 10 * SEC),
        Some(Outcome::Ok(None))
    );
    h.sync_after_tick(0);
    // Client 1 has never talked to anyone: it asks the first member of the preference list.
    let first = usize::from(h.layout.groups[0][0]);
    let (o, lat) = h.call(1, 1, Op::Read, 10 * SEC).unwrap();
    assert_eq!(o, Outcome::read_reg(Some(1)));
    let expect = if first == l { d(2) } else { d(3) };
    assert_eq!(lat, expect, "leader {l}, first member {first}");
}
