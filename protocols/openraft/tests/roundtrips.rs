//! Round trips under constant latency: what each operation costs in one-way network delays.

mod common;
use common::*;
use quorumlab_kv::{Op, Outcome};
use quorumlab_openraft::{Params, ReadMode};
use quorumlab_sim::{Nanos, MS, US};

/// Steady-state latencies (after the first ops of a term) of write / read, in µs, and the
/// messages one op costs, with a constant one-way latency `d` on every link.
fn measure(read: ReadMode, nodes: usize, d_ms: f64) -> (Vec<Nanos>, Vec<Nanos>, u64) {
    let p = Params {
        read_policy: read,
        ..Params::default()
    };
    let mut c = cluster(nodes, nodes, 1, 1, &p, constant(d_ms), 9);
    c.wait_leader(0, 3000 * MS).unwrap();
    // Let the first heartbeats establish the lease and warm the client's leader cache.
    c.run_for(100 * MS);
    for i in 0..3 {
        assert_eq!(c.must(0, 1, Op::Write(i)).0, Outcome::Ok(None));
    }
    let (mut w, mut r) = (Vec::new(), Vec::new());
    let sent0 = c.sim.net_stats().total.sent;
    for i in 0..20 {
        c.run_for(3 * MS); // idle gap, shorter than a heartbeat interval
        let (o, dw) = c.must(0, 1, Op::Write(100 + i));
        assert_eq!(o, Outcome::Ok(None));
        w.push(dw);
        let (o, dr) = c.must(0, 1, Op::Read);
        assert_eq!(o, Outcome::read_reg(Some(100 + i)));
        r.push(dr);
    }
    let sent = c.sim.net_stats().total.sent - sent0;
    (w, r, sent)
}

#[test]
fn round_trips_under_constant_latency() {
    let d = 1.0; // ms one-way
    let one = (d * MS as f64) as Nanos;
    for (read, nodes, read_hops) in [
        (ReadMode::ReadIndex, 3, 4),
        (ReadMode::LeaseRead, 3, 2),
        (ReadMode::Log, 3, 4),
        (ReadMode::ReadIndex, 5, 4),
    ] {
        let (w, r, sent) = measure(read, nodes, d);
        let med = |v: &Vec<Nanos>| {
            let mut v = v.clone();
            v.sort();
            v[v.len() / 2]
        };
        eprintln!(
            "{read:?} n={nodes}: write p50 {} us (min {} max {}), read p50 {} us (min {} max {}); {:.1} msgs per write+read pair",
            med(&w) / US,
            w.iter().min().unwrap() / US,
            w.iter().max().unwrap() / US,
            med(&r) / US,
            r.iter().min().unwrap() / US,
            r.iter().max().unwrap() / US,
            sent as f64 / 20.0
        );
        // A write: client → leader → followers → leader → client = 4 one-way delays, and
        // nothing more: no timer, batching delay or extra hop inside openraft.
        assert!(w.iter().all(|&x| x == 4 * one), "{read:?} writes {w:?}");
        // A read costs `read_hops` one-way delays (ReadIndex: a heartbeat round inside the
        // leader; LeaseRead: none), except that a ReadIndex round that finds a heartbeat already
        // in flight to a follower waits for it (one AppendEntries in flight per follower): up to
        // one more round trip.
        assert!(
            r.iter()
                .all(|&x| x >= read_hops * one && x <= (read_hops + 2) * one),
            "{read:?} reads {r:?}"
        );
        assert_eq!(med(&r), read_hops * one, "{read:?} reads {r:?}");
    }
}
