//! Operations reconstructed from a history: each invocation paired with its completion.

use quorumlab_kv::history::{Event, EventType, ProcessId};
use serde::Serialize;
use std::collections::BTreeMap;

/// One client operation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpRecord {
    pub process: u64,
    pub f: String,
    pub key: Option<String>,
    pub invoke_ns: u64,
    /// `None` when the history ends before the op completes.
    pub complete_ns: Option<u64>,
    /// `Ok`, `Fail` or `Info`; `None` if it never completed.
    pub outcome: Option<EventType>,
    /// The completion's value (the invocation's if it never completed).
    pub value: serde_json::Value,
    /// The completion's error, e.g. `"precondition"` on a cas/create `fail` whose precondition
    /// was false.
    pub error: Option<String>,
}

impl OpRecord {
    pub fn latency_ns(&self) -> Option<u64> {
        self.complete_ns.map(|c| c.saturating_sub(self.invoke_ns))
    }
    pub fn is_ok(&self) -> bool {
        self.outcome == Some(EventType::Ok)
    }
    /// A `fail` because a cas/create precondition was false: a definite answer.
    pub fn is_precondition_fail(&self) -> bool {
        self.outcome == Some(EventType::Fail) && self.error.as_deref() == Some("precondition")
    }
}

/// Pairs invocations with completions per process, in invocation order. Nemesis events and
/// completions without an invocation are skipped.
pub fn pair_ops(history: &[Event]) -> Vec<OpRecord> {
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    let mut ops: Vec<OpRecord> = Vec::new();
    for e in history {
        let ProcessId::Client(p) = e.process else {
            continue;
        };
        match e.kind {
            EventType::Invoke => {
                open.insert(p, ops.len());
                ops.push(OpRecord {
                    process: p,
                    f: e.f.clone(),
                    key: e.key.clone(),
                    invoke_ns: e.time,
                    complete_ns: None,
                    outcome: None,
                    value: e.value.clone(),
                    error: None,
                });
            }
            kind => {
                if let Some(i) = open.remove(&p) {
                    let op = &mut ops[i];
                    op.complete_ns = Some(e.time);
                    op.outcome = Some(kind);
                    op.value = e.value.clone();
                    op.error = e.error.clone();
                }
            }
        }
    }
    ops
}
