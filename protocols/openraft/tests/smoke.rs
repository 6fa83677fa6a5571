mod common;
use common::*;
use quorumlab_kv::{Op, Outcome};
use quorumlab_openraft::Params;
use quorumlab_sim::MS;

#[test]
fn elects_and_serves() {
    let mut c = cluster(3, 3, 1, 1, &Params::default(), constant(0.1), 42);
    let l = c.await_leader(0, 2000 * MS);
    eprintln!("leader {l:?} at {}", c.sim.now());
    assert!(l.is_some());
    let (o, d) = c.call(0, 1, Op::Write(5));
    eprintln!("write {o:?} {d}");
    let (o2, d2) = c.call(0, 1, Op::Write(6));
    eprintln!("write {o2:?} {d2}");
    let (r, dr) = c.call(0, 1, Op::Read);
    eprintln!("read {r:?} {dr}");
    assert_eq!(r, Outcome::Ok(Some(6)));
    eprintln!("{:?}", c.sim.net_stats().by_kind);
    assert_eq!(c.panics(), 0);
}
