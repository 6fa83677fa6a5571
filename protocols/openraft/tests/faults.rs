//! Crash, restart and partition behaviour in the raw simulator.

mod common;
use common::*;
use quorumlab_kv::{Datum, Key, Op, Outcome};
use quorumlab_openraft::Params;
use quorumlab_sim::MS;

#[test]
fn leader_crash_re_election_writes_resume() {
    let mut c = cluster(5, 5, 1, 1, &Params::default(), constant(1.0), 11);
    let (l0, t0) = c.wait_leader(0, 3000 * MS).expect("first leader");
    for i in 0..20 {
        assert_eq!(
            c.must(0, i % 4, Op::Write(100 + i as u64)).0,
            Outcome::Ok(None)
        );
    }
    let crashed_at = c.sim.now();
    c.sim.crash(l0, false);
    // The first write after the crash waits for the new leader (the client re-sends to other
    // members when the dead leader stays silent) and then succeeds.
    let (o, d) = c.must(0, 1, Op::Write(999));
    assert_eq!(o, Outcome::Ok(None), "write after crash");
    let (l1, t1) = c.leader(0).expect("new leader");
    assert_ne!(l1, l0);
    assert!(t1 > t0);
    eprintln!(
        "leader n{l0} crashed at {} ms; n{l1} (term {t1}) took over; first write took {} ms",
        crashed_at / MS,
        d / MS
    );
    // openraft refuses votes until the old leader's lease (election_timeout_max) has run out,
    // then a candidate's election timer must fire: between 300 and ~700 ms.
    assert!(
        d > 300 * MS && d < 1000 * MS,
        "first write after crash took {d} ns"
    );
    for i in 0..20 {
        let (o, d) = c.must(0, i % 4, Op::Write(200 + i as u64));
        assert_eq!(o, Outcome::Ok(None));
        assert!(d < 10 * MS, "steady write took {d} ns");
    }
    assert_eq!(c.must(0, 1, Op::Read).0, Outcome::read_reg(Some(217)));
    // The old leader restarts as a follower, replays its log and catches up.
    c.sim.restart(l0);
    c.run_for(500 * MS);
    assert_eq!(c.leader(0).map(|l| l.0), Some(l1));
    let sm = c
        .sim
        .process(l0)
        .server()
        .unwrap()
        .state_machine(0)
        .unwrap();
    let leader_sm = c
        .sim
        .process(l1)
        .server()
        .unwrap()
        .state_machine(0)
        .unwrap();
    assert_eq!(sm.lock().unwrap().data, leader_sm.lock().unwrap().data);
    assert_eq!(
        sm.lock().unwrap().data.kv.get(&Key(1)),
        Some(&Datum::Reg(217))
    );
    assert_eq!(c.panics(), 0);
}

#[test]
fn minority_partition_cannot_commit() {
    let mut c = cluster(5, 5, 1, 2, &Params::default(), constant(1.0), 5);
    let (l0, _) = c.wait_leader(0, 3000 * MS).expect("leader");
    assert_eq!(c.must(0, 3, Op::Write(1)).0, Outcome::Ok(None));
    assert_eq!(c.must(1, 3, Op::Read).0, Outcome::read_reg(Some(1)));
    // The old leader, one follower and client 0 on one side; three nodes and client 1 on the
    // other.
    let follower = (0..5).find(|&i| i != l0).unwrap();
    let minority = vec![l0, follower, 5];
    let majority: Vec<usize> = (0..5)
        .filter(|i| !minority.contains(i))
        .chain([6])
        .collect();
    let now = c.sim.now();
    c.sim
        .network_mut()
        .partition(&[minority.clone(), majority.clone()], now);
    let committed_before = c
        .sim
        .process(l0)
        .server()
        .unwrap()
        .log_store(0)
        .unwrap()
        .clone();
    let committed_before = committed_before.durable.lock().unwrap().last_index();
    // Client 0 can only reach the minority: its write must not be acknowledged.
    let (o, _) = c.must(0, 3, Op::Write(2));
    assert_eq!(o, Outcome::Info, "minority acknowledged a write");
    let (o, _) = c.must(0, 3, Op::Read);
    assert_eq!(o, Outcome::Info, "minority served a read");
    // The majority elects a new leader and commits.
    let (o, _) = c.must(1, 3, Op::Write(3));
    assert_eq!(o, Outcome::Ok(None));
    let (l1, _) = c.leader(0).unwrap();
    assert!(majority.contains(&l1));
    // The minority side's state machines never saw value 2.
    for &i in &minority[..2] {
        let sm = c.sim.process(i).server().unwrap().state_machine(0).unwrap();
        assert_eq!(
            sm.lock().unwrap().data.kv.get(&Key(3)),
            Some(&Datum::Reg(1)),
            "n{i}"
        );
    }
    let _ = committed_before;
    // After the heal, the deposed leader's uncommitted entry is overwritten and everyone agrees.
    c.sim.network_mut().heal_all();
    c.run_for(1000 * MS);
    assert_eq!(c.must(0, 3, Op::Read).0, Outcome::read_reg(Some(3)));
    let sm = c
        .sim
        .process(l0)
        .server()
        .unwrap()
        .state_machine(0)
        .unwrap();
    assert_eq!(
        sm.lock().unwrap().data.kv.get(&Key(3)),
        Some(&Datum::Reg(3))
    );
    assert_eq!(c.panics(), 0);
}

#[test]
fn crash_losing_unsynced_write_recovers() {
    let mut c = cluster(3, 3, 1, 1, &Params::default(), constant(0.5), 3);
    let (l0, _) = c.wait_leader(0, 3000 * MS).expect("leader");
    for i in 0..10 {
        assert_eq!(c.must(0, 0, Op::Write(i)).0, Outcome::Ok(None));
    }
    let f = (0..3).find(|&i| i != l0).unwrap();
    let last_index = |c: &Cluster| {
        let store = c.sim.process(f).server().unwrap().log_store(0).unwrap();
        let index = store.durable.lock().unwrap().last_index();
        index
    };
    let before = last_index(&c);
    c.sim.crash(f, true);
    let after = last_index(&c);
    assert!(
        after < before,
        "the last append was lost: {before:?} -> {after:?}"
    );
    c.sim.restart(f);
    c.run_for(300 * MS);
    assert_eq!(c.must(0, 0, Op::Write(77)).0, Outcome::Ok(None));
    c.run_for(100 * MS);
    let sm = c.sim.process(f).server().unwrap().state_machine(0).unwrap();
    assert_eq!(
        sm.lock().unwrap().data.kv.get(&Key(0)),
        Some(&Datum::Reg(77))
    );
    assert_eq!(c.panics(), 0);
}
