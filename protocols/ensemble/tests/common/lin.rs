//! A small per-key linearizability check (Wing & Gong search with memoization) for the test
//! histories: each key is a register starting absent. `ok` ops must take effect once within
//! their interval; `info` ops may take effect once after their invocation, or never; `fail`
//! ops never take effect, but a failed precondition is an observation that must hold at some
//! point of the op's interval.

use super::Call;
use quorumlab_kv::{FailKind, Op, Outcome, Value};
use std::collections::{BTreeMap, HashSet};

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
        (Outcome::Fail(FailKind::Precondition), Op::Cas { expected, .. }) => {
            (cur != Some(expected)).then_some(cur)
        }
        (Outcome::Fail(FailKind::Precondition), Op::Create(_)) => cur.is_some().then_some(cur),
        (Outcome::Ok(v), Op::Read) => (cur == v).then_some(cur),
        (_, Op::Read) => Some(cur),
        (_, Op::Write(v)) => Some(Some(v)),
        (_, Op::Delete) => Some(None),
        (_, Op::Cas { expected, new }) => (cur == Some(expected)).then_some(Some(new)),
        (_, Op::Create(v)) => cur.is_none().then_some(Some(v)),
    }
}

fn check_key(mut ops: Vec<LOp>) -> bool {
    ops.sort_by_key(|o| o.invoke);
    let n = ops.len();
    let must: usize = ops.iter().filter(|o| o.ret != u64::MAX).count();
    let mut seen: HashSet<(Vec<bool>, Option<Value>)> = HashSet::new();
    // Iterative DFS: (done flags, value, count of must-ops done).
    let mut stack = vec![(vec![false; n], None::<Value>, 0usize)];
    while let Some((done, cur, k)) = stack.pop() {
        if k == must {
            return true;
        }
        if !seen.insert((done.clone(), cur)) {
            continue;
        }
        let min_ret = (0..n)
            .filter(|&i| !done[i])
            .map(|i| ops[i].ret)
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..n {
            if done[i] || ops[i].invoke > min_ret {
                continue;
            }
            if let Some(next) = step(&ops[i], cur) {
                let mut d = done.clone();
                d[i] = true;
                let k2 = k + usize::from(ops[i].ret != u64::MAX);
                stack.push((d, next, k2));
            }
        }
    }
    false
}

/// Checks every key; returns the keys that are not linearizable.
pub fn bad_keys(calls: &[Call]) -> Vec<u32> {
    let mut by_key: BTreeMap<u32, Vec<LOp>> = BTreeMap::new();
    for c in calls {
        let (ret, outcome) = match c.done {
            Some((_, Outcome::Fail(FailKind::NotApplied))) => continue,
            Some((_, Outcome::Info)) | None => (u64::MAX, Outcome::Info),
            Some((t, o)) => (t, o),
        };
        if matches!(outcome, Outcome::Info) && c.req.op == Op::Read {
            continue;
        }
        by_key.entry(c.req.key.0).or_default().push(LOp {
            invoke: c.invoke,
            ret,
            op: c.req.op,
            outcome,
        });
    }
    by_key
        .into_iter()
        .filter(|(_, ops)| !check_key(ops.clone()))
        .map(|(k, _)| k)
        .collect()
}

#[cfg(test)]
mod tests {}
