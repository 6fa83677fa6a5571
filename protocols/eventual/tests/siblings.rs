//! Siblings: concurrent writes are kept (allow_mult) and resolved deterministically on read;
//! a write with the read context supersedes them; LWW keeps one; cas is not atomic.

mod common;

use common::*;
use quorumlab_eventual::{Params, Val};
use quorumlab_kv::{FailKind, Op, Outcome};
use quorumlab_sim::MS;

const KEY: u32 = 7;

#[test]
fn write_then_read() {
    let mut h = H::new(5, 2, params(), 1);
    assert_eq!(h.ask(0, KEY, Op::Read), Some(Outcome::Ok(None)));
    assert_eq!(h.ask(0, KEY, Op::Write(10)), ok());
    assert_eq!(h.ask(1, KEY, Op::Read), reg(10));
    assert_eq!(h.ask(1, KEY, Op::Delete), ok());
    assert_eq!(h.ask(0, KEY, Op::Read), Some(Outcome::Ok(None)));
    // Every primary holds the tombstone, none of the others holds anything.
    h.run_for(100 * MS);
    for n in 0..5 {
        let held = h.obj(n, KEY).is_some();
        assert_eq!(held, h.primaries(KEY).contains(&n), "node {n}");
    }
}

#[test]
fn concurrent_writes_become_siblings_and_a_later_write_resolves_them() {
    let mut h = H::new(5, 2, params(), 2);
    let a = h.invoke(0, KEY, Op::Write(1));
    let b = h.invoke(1, KEY, Op::Write(2));
    h.settle(3000 * MS);
    assert_eq!(h.outcome(a), ok());
    assert_eq!(h.outcome(b), ok());
    h.run_for(50 * MS);
    let prims = h.primaries(KEY);
    for &p in &prims {
        let obj = h.obj(p, KEY).expect("replica holds the key");
        let vals: Vec<_> = obj.sibs.values().map(|s| s.val.clone()).collect();
        assert_eq!(vals.len(), 2, "node {p}: {vals:?}");
        assert!(vals.contains(&Val::Reg(1)) && vals.contains(&Val::Reg(2)));
    }
    // A read resolves to the latest sibling by (coordinator timestamp, dot).
    let obj = h.obj(prims[0], KEY).unwrap().clone();
    let latest = match obj.latest().unwrap().val {
        Val::Reg(v) => v,
        ref other => panic!("{other:?}"),
    };
    assert_eq!(h.ask(0, KEY, Op::Read), reg(latest));
    assert!(h.eventual_stats().max_siblings >= 2);
    // A write with the read's context supersedes both siblings.
    assert_eq!(h.ask(0, KEY, Op::Write(3)), ok());
    h.run_for(50 * MS);
    for &p in &prims {
        let obj = h.obj(p, KEY).unwrap();
        assert_eq!(obj.sibs.len(), 1, "node {p}: {obj:?}");
    }
    assert_eq!(h.ask(1, KEY, Op::Read), reg(3));
}

#[test]
fn lww_keeps_one_version() {
    let p = Params {
        allow_mult: false,
        ..params()
    };
    let mut h = H::new(5, 2, p, 3);
    let a = h.invoke(0, KEY, Op::Write(1));
    let b = h.invoke(1, KEY, Op::Write(2));
    h.settle(3000 * MS);
    assert_eq!(h.outcome(a), ok());
    assert_eq!(h.outcome(b), ok());
    h.run_for(50 * MS);
    for p in h.primaries(KEY) {
        assert_eq!(h.obj(p, KEY).unwrap().sibs.len(), 1);
    }
}

#[test]
fn cas_is_a_client_side_read_then_write_and_not_atomic() {
    let mut h = H::new(5, 2, params(), 4);
    assert_eq!(h.ask(0, KEY, Op::Write(1)), ok());
    // Both clients read 1, both see the precondition hold, both write.
    let a = h.invoke(
        0,
        KEY,
        Op::Cas {
            expected: 1,
            new: 2,
        },
    );
    let b = h.invoke(
        1,
        KEY,
        Op::Cas {
            expected: 1,
            new: 3,
        },
    );
    h.settle(3000 * MS);
    assert_eq!(h.outcome(a), ok());
    assert_eq!(h.outcome(b), ok());
    // Only one of them can be read back; the other is a sibling nobody sees.
    let r = h.ask(0, KEY, Op::Read);
    assert!(r == reg(2) || r == reg(3), "{r:?}");
    // A failed precondition is an observation.
    assert_eq!(
        h.ask(
            0,
            KEY,
            Op::Cas {
                expected: 9,
                new: 4
            }
        ),
        Some(Outcome::Fail(FailKind::Precondition))
    );
    assert_eq!(
        h.ask(1, KEY, Op::Create(5)),
        Some(Outcome::Fail(FailKind::Precondition))
    );
    // Two concurrent creates of an absent key both succeed.
    let c = h.invoke(0, KEY + 1, Op::Create(6));
    let d = h.invoke(1, KEY + 1, Op::Create(7));
    h.settle(3000 * MS);
    assert_eq!(h.outcome(c), ok());
    assert_eq!(h.outcome(d), ok());
}

#[test]
fn add_on_a_register_is_a_failed_precondition() {
    let mut h = H::new(5, 1, params(), 5);
    assert_eq!(h.ask(0, KEY, Op::Write(1)), ok());
    assert_eq!(
        h.ask(0, KEY, Op::Add(3)),
        Some(Outcome::Fail(FailKind::Precondition))
    );
}

#[test]
fn quorum_reads_see_completed_writes_from_any_coordinator() {
    // Local routing: most coordinators are outside the key's preference list. Without
    // faults, R + W > N still makes every read see the last completed write.
    let p = Params {
        client_routing: quorumlab_eventual::Routing::Local,
        ..params()
    };
    let mut h = H::new(5, 5, p, 6);
    for i in 0..60u64 {
        let key = (i % 7) as u32;
        let w = (i % 5) as usize;
        let r = ((i + 2) % 5) as usize;
        assert_eq!(h.ask(w, key, Op::Write(i + 100)), ok());
        assert_eq!(h.ask(r, key, Op::Read), reg(i + 100), "op {i}");
        let a = h.ask(w, 200 + key, Op::Add(i));
        assert_eq!(a, ok());
        let s = set_of(&h.ask(r, 200 + key, Op::Read));
        assert!(s.contains(&i), "op {i}: {s:?}");
    }
}
