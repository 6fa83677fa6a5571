//! A small per-key linearizability check (Wing & Gong search with memoization) for the test
//! histories: each key is a register starting absent. `ok` ops must take effect once within
//! their interval; `info` ops may take effect once after their invocation, or never; `fail`
//! ops never take effect (a failed precondition is not used as an observation here).
//!
//! To keep the search small, an `info` write/create/cas whose (unique) value no ok read and
//! no ok cas ever observed is dropped: with no precondition observations, removing an
//! unobserved effect cannot make a linearizable history non-linearizable.

use super::Call;
use quorumlab_kv::{Op, Outcome, Value};
use std::collections::{BTreeMap, BTreeSet, HashSet};

#[derive(Clone, Copy, Debug)]
struct LOp {
    invoke: u64,
    ret: u64,
    op: Op,
    outcome: Outcome,
}

/// `None` if the op cannot happen in state `cur`; else the next state.
fn step(o: &LOp, cur: Option<Value>) -> Option<Option<Value>> {
    match (o.outcome, o.op) {
        (Outcome::Ok(v), Op::Read) => (cur == v).then_some(cur),
        (_, Op::Read) => Some(cur),
        (_, Op::Write(v)) => Some(Some(v)),
        (_, Op::Delete) => Some(None),
        (_, Op::Cas { expected, new }) => (cur == Some(expected)).then_some(Some(new)),
        (_, Op::Create(v)) => cur.is_none().then_some(Some(v)),
    }
}

/// `Some(true)`: linearizable; `Some(false)`: not; `None`: search budget exhausted.
fn check_key(mut ops: Vec<LOp>, budget: usize) -> Option<bool> {
    ops.sort_by_key(|o| (o.invoke, o.ret));
    let n = ops.len();
    let must = ops.iter().filter(|o| o.ret != u64::MAX).count();
    // Canonical memo key: (first not-done index, done indices above it, value).
    let mut seen: HashSet<(usize, Vec<usize>, Option<Value>)> = HashSet::new();
    let mut stack: Vec<(usize, BTreeSet<usize>, Option<Value>, usize)> =
        vec![(0, BTreeSet::new(), None, 0)];
    while let Some((p, above, cur, k)) = stack.pop() {
        if k == must {
            return Some(true);
        }
        if !seen.insert((p, above.iter().copied().collect(), cur)) {
            continue;
        }
        if seen.len() > budget {
            return None;
        }
        let is_done = |i: usize| i < p || above.contains(&i);
        let min_ret = (p..n)
            .filter(|&i| !is_done(i))
            .map(|i| ops[i].ret)
            .min()
            .unwrap_or(u64::MAX);
        for (i, o) in ops.iter().enumerate().skip(p) {
            if o.invoke >= min_ret {
                break; // sorted by invoke; an op that returned at t precedes one invoked at t
            }
            if is_done(i) {
                continue;
            }
            if let Some(next) = step(o, cur) {
                let mut a = above.clone();
                a.insert(i);
                let mut p2 = p;
                while a.remove(&p2) {
                    p2 += 1;
                }
                let k2 = k + usize::from(o.ret != u64::MAX);
                stack.push((p2, a, next, k2));
            }
        }
    }
    Some(false)
}

/// Checks every key; returns the keys found not linearizable, and the keys whose search ran
/// out of budget.
pub fn check(calls: &[Call]) -> (Vec<u32>, Vec<u32>) {
    let mut observed: BTreeSet<(u32, Value)> = BTreeSet::new();
    for c in calls {
        match (c.req.op, c.done) {
            (Op::Read, Some((_, Outcome::Ok(Some(v))))) => {
                observed.insert((c.req.key.0, v));
            }
            (Op::Cas { expected, .. }, Some((_, Outcome::Ok(_)))) => {
                observed.insert((c.req.key.0, expected));
            }
            _ => {}
        }
    }
    let mut by_key: BTreeMap<u32, Vec<LOp>> = BTreeMap::new();
    for c in calls {
        let key = c.req.key.0;
        let (ret, outcome) = match c.done {
            Some((_, Outcome::Fail(_))) => continue,
            Some((_, Outcome::Info)) | None => (u64::MAX, Outcome::Info),
            Some((t, o)) => (t.max(c.invoke + 1), o),
        };
        if ret == u64::MAX {
            let written = match c.req.op {
                Op::Read => continue,
                Op::Write(v) | Op::Create(v) | Op::Cas { new: v, .. } => Some(v),
                Op::Delete => None,
            };
            if written.is_some_and(|v| !observed.contains(&(key, v))) {
                continue;
            }
        }
        by_key.entry(key).or_default().push(LOp {
            invoke: c.invoke,
            ret,
            op: c.req.op,
            outcome,
        });
    }
    let (mut bad, mut unknown) = (Vec::new(), Vec::new());
    for (k, ops) in by_key {
        match check_key(ops, 2_000_000) {
            Some(true) => {}
            Some(false) => bad.push(k),
            None => unknown.push(k),
        }
    }
    (bad, unknown)
}

/// The keys found not linearizable (a budget overrun counts as a failure to check).
pub fn bad_keys(calls: &[Call]) -> Vec<u32> {
    let (bad, unknown) = check(calls);
    assert!(
        unknown.is_empty(),
        "linearizability search too large for keys {unknown:?}"
    );
    bad
}
