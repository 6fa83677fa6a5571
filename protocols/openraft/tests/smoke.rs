mod common;
use common::*;
use quorumlab_kv::{Op, Outcome};
use quorumlab_openraft::Params;
use quorumlab_sim::MS;

#[test]
fn elects_and_serves() {
    let mut c = cluster(3, 3, 1, 1, &Params::default(), constant(0.1), 42);
    let l = c.wait_leader(0, 2000 * MS);
    eprintln!("leader {l:?} at {}", c.sim.now());
    assert!(l.is_some());
    let (o, d) = c.must(0, 1, Op::Write(5));
    eprintln!("write {o:?} {d}");
    let (o2, d2) = c.must(0, 1, Op::Write(6));
    eprintln!("write {o2:?} {d2}");
    let (r, dr) = c.must(0, 1, Op::Read);
    eprintln!("read {r:?} {dr}");
    assert_eq!(r, Outcome::read_reg(Some(6)));
    eprintln!("{:?}", c.sim.net_stats().by_kind);
    assert_eq!(c.panics(), 0);
}

#[test]
fn sharded_groups_each_elect_and_serve() {
    // 5 nodes, 4 groups of 3 replicas: one openraft instance per group per member node.
    let mut c = cluster(5, 3, 4, 1, &Params::default(), constant(0.5), 8);
    for g in 0..4 {
        let (l, _) = c.wait_leader(g, 2000 * MS).expect("leader");
        assert!(c.layout.groups[g].contains(&quorumlab_sim::Id::from(l)));
    }
    // A key of every group.
    let mut keys = [None; 4];
    for k in 0..1000u32 {
        let g = c.layout.group_of(quorumlab_kv::Key(k));
        keys[g].get_or_insert(k);
    }
    for (g, k) in keys.iter().enumerate() {
        let k = k.expect("a key per group");
        assert_eq!(c.must(0, k, Op::Write(g as u64)).0, Outcome::Ok(None));
        assert_eq!(c.must(0, k, Op::Read).0, Outcome::read_reg(Some(g as u64)));
    }
    // Each node hosts exactly the groups the layout places on it.
    for n in 0..5 {
        let s = c.sim.process(n).server().unwrap();
        for g in 0..4u32 {
            let member = c.layout.groups[g as usize].contains(&quorumlab_sim::Id::from(n));
            assert_eq!(s.log_store(g).is_some(), member, "n{n} g{g}");
        }
    }
    assert_eq!(c.panics(), 0);
}
