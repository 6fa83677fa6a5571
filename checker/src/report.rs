//! The check report: verdicts, per-key results, violations; JSON, a short explanation for
//! people, and the value that goes into `summary.json`.

use crate::prepare::HistoryStats;
use quorumlab_kv::history::ProcessId;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::fmt::Write as _;
use std::time::Duration;

/// The answer for a history or a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Linearizable,
    NotLinearizable,
    /// The budget (time or memory) ran out, or the history could not be interpreted.
    Unknown,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "not linearizable",
            Verdict::Unknown => "unknown",
        }
    }

    /// `quorumlab check`'s exit code: 0 linearizable, 1 not linearizable, 3 unknown.
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Linearizable => 0,
            Verdict::NotLinearizable => 1,
            Verdict::Unknown => 3,
        }
    }
}

/// How an op ended, as far as the checker is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpOutcome {
    /// Completed `ok`: took effect within its interval.
    Ok,
    /// `info` or never completed: may take effect at any point after its invocation, or never.
    Info,
    /// `fail` with `"error":"precondition"`: no effect; the precondition was false at some
    /// instant within the interval.
    PreconditionFailed,
}

/// One operation of a key, as shown in a violation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpView {
    /// Position in the key's ops (in invocation order); linearizations refer to it.
    pub id: usize,
    pub process: ProcessId,
    pub f: String,
    /// The argument (write/create/append value, cas `[expected, new]`) or, for a read, the
    /// value it returned (null = absent).
    pub value: Json,
    pub outcome: OpOutcome,
    pub invoke_time: u64,
    /// `None` for `info` ops and invocations that never completed.
    pub complete_time: Option<u64>,
    /// The `index` of the invocation and completion events.
    pub invoke_index: u64,
    pub complete_index: Option<u64>,
}

impl OpView {
    /// `write 3`, `read -> 3`, `cas 1 -> 2`, `create 5 (failed: precondition)`, `write 3 (info)`.
    pub fn describe(&self) -> String {
        let v = |j: &Json| match j {
            Json::Null => "nil".to_string(),
            other => other.to_string(),
        };
        let mut s = match (self.f.as_str(), &self.value) {
            ("read" | "get", x) => format!("{} -> {}", self.f, v(x)),
            ("cas", Json::Array(a)) if a.len() == 2 => {
                format!("cas {} -> {}", v(&a[0]), v(&a[1]))
            }
            ("delete", _) => "delete".to_string(),
            (f, x) => format!("{f} {}", v(x)),
        };
        match self.outcome {
            OpOutcome::Ok => {}
            OpOutcome::Info => s.push_str(" (info)"),
            OpOutcome::PreconditionFailed => s.push_str(" (failed: precondition)"),
        }
        s
    }

    /// `[invoke, complete]` or `[invoke, …)` for ops that never completed.
    pub fn interval(&self) -> String {
        match self.complete_time {
            Some(c) => format!("[{}, {}]", self.invoke_time, c),
            None => format!("[{}, never completed)", self.invoke_time),
        }
    }

    pub fn process_name(&self) -> String {
        match &self.process {
            ProcessId::Client(n) => n.to_string(),
            ProcessId::Named(s) => s.clone(),
        }
    }
}

/// The evidence that one key is not linearizable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// `None` for single-register histories without keys.
    pub key: Option<String>,
    /// All checked ops of the key, in invocation order.
    pub ops: Vec<OpView>,
    /// The op that cannot be linearized: its completion is reached, at the end of the longest
    /// partial linearization, with no way to put it in.
    pub failing_op: Option<usize>,
    /// Set when the failing op is refuted without search: it observed a value that no
    /// operation on the key could have produced (then `linearization` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The longest partial linearization found (op ids, in linearization order).
    pub linearization: Vec<usize>,
    /// The key's value after each op of `linearization` (null = absent).
    pub values_after: Vec<Json>,
    /// The value at the end of the partial linearization.
    pub value_before_failing_op: Json,
}

/// The result for one key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyResult {
    pub key: Option<String>,
    pub verdict: Verdict,
    /// Ops checked on this key.
    pub ops: usize,
    /// Search steps taken.
    pub steps: u64,
    /// Distinct (linearized set, value) configurations cached.
    pub cache_entries: usize,
    /// Why the verdict is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The whole check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    pub verdict: Verdict,
    /// Set when the history could not be interpreted (then the verdict is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub keys: usize,
    pub linearizable_keys: usize,
    pub not_linearizable_keys: usize,
    pub unknown_keys: usize,
    pub history: HistoryStats,
    /// One result per key, keys in natural order (`k2` before `k10`).
    pub results: Vec<KeyResult>,
    /// One per key that is not linearizable, in key order.
    pub violations: Vec<Violation>,
    /// Wall time of the check (not serialized: check.json is deterministic).
    #[serde(skip)]
    pub elapsed: Duration,
}

fn key_name(k: &Option<String>) -> String {
    match k {
        Some(k) => format!("key {k}"),
        None => "the register".to_string(),
    }
}

impl CheckReport {
    /// A report for a history that could not be interpreted.
    pub fn from_error(msg: String, stats: HistoryStats) -> CheckReport {
        CheckReport {
            verdict: Verdict::Unknown,
            error: Some(msg),
            keys: 0,
            linearizable_keys: 0,
            not_linearizable_keys: 0,
            unknown_keys: 0,
            history: stats,
            results: Vec::new(),
            violations: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    /// 0 linearizable, 1 not linearizable, 3 unknown.
    pub fn exit_code(&self) -> i32 {
        self.verdict.exit_code()
    }

    /// The value of `summary.json`'s `linearizable`: `true`, `false` or `"unknown"`.
    pub fn to_summary_value(&self) -> Json {
        match self.verdict {
            Verdict::Linearizable => Json::Bool(true),
            Verdict::NotLinearizable => Json::Bool(false),
            Verdict::Unknown => Json::String("unknown".into()),
        }
    }

    /// The report as pretty JSON (the content of `check.json`).
    pub fn to_json_string(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// A few readable lines: the verdict and, for a violation, the op that cannot be
    /// linearized and the end of the longest partial linearization.
    pub fn explain(&self) -> String {
        let mut s = String::new();
        let h = &self.history;
        let secs = self.elapsed.as_secs_f64();
        if let Some(e) = &self.error {
            let _ = writeln!(s, "unknown: the history cannot be checked: {e}");
            return s;
        }
        let keys_word = if self.keys == 1 { "key" } else { "keys" };
        match self.verdict {
            Verdict::Linearizable => {
                let _ = writeln!(
                    s,
                    "linearizable: {} ops on {} {keys_word} ({} info, {} failed preconditions, \
                     {} other fails dropped), checked in {secs:.3} s",
                    h.ops, self.keys, h.info, h.precondition_failed, h.fail_dropped
                );
            }
            Verdict::Unknown => {
                let _ = writeln!(
                    s,
                    "unknown: {} of {} {keys_word} could not be decided ({} linearizable); \
                     {} ops, {secs:.3} s",
                    self.unknown_keys, self.keys, self.linearizable_keys, h.ops
                );
                for r in self
                    .results
                    .iter()
                    .filter(|r| r.verdict == Verdict::Unknown)
                    .take(3)
                {
                    let _ = writeln!(
                        s,
                        "  {} ({} ops): {}",
                        key_name(&r.key),
                        r.ops,
                        r.reason.as_deref().unwrap_or("undecided")
                    );
                }
            }
            Verdict::NotLinearizable => {
                let names: Vec<String> = self
                    .violations
                    .iter()
                    .take(5)
                    .map(|v| v.key.clone().unwrap_or_else(|| "(no key)".into()))
                    .collect();
                let more = if self.violations.len() > 5 {
                    ", …"
                } else {
                    ""
                };
                let _ = writeln!(
                    s,
                    "not linearizable: {} of {} {keys_word} ({}{more}) cannot be linearized; \
                     {} linearizable, {} unknown; {} ops, {secs:.3} s",
                    self.not_linearizable_keys,
                    self.keys,
                    names.join(", "),
                    self.linearizable_keys,
                    self.unknown_keys,
                    h.ops
                );
                if let Some(v) = self.violations.first() {
                    explain_violation(&mut s, v);
                }
            }
        }
        s
    }
}

fn explain_violation(s: &mut String, v: &Violation) {
    let val = |j: &Json| match j {
        Json::Null => "absent".to_string(),
        other => other.to_string(),
    };
    if let (Some(f), Some(why)) = (v.failing_op.and_then(|i| v.ops.get(i)), &v.reason) {
        let _ = writeln!(
            s,
            "{}: {} by process {} {} cannot be linearized: {why}.",
            key_name(&v.key),
            f.describe(),
            f.process_name(),
            f.interval()
        );
        return;
    }
    if let Some(f) = v.failing_op.and_then(|i| v.ops.get(i)) {
        let _ = writeln!(
            s,
            "{}: {} by process {} {} cannot be linearized: it completed, but no order of \
             the ops before it lets it take effect there.",
            key_name(&v.key),
            f.describe(),
            f.process_name(),
            f.interval()
        );
    } else {
        let _ = writeln!(s, "{}: no linearization exists.", key_name(&v.key));
    }
    let n = v.linearization.len();
    let _ = writeln!(
        s,
        "  longest partial linearization: {n} of {} ops, leaving the value {}{}",
        v.ops.len(),
        val(&v.value_before_failing_op),
        if n == 0 { "" } else { ":" }
    );
    let shown = 6;
    if n > shown {
        let _ = writeln!(s, "    … {} earlier ops", n - shown);
    }
    for (i, (&id, after)) in v
        .linearization
        .iter()
        .zip(&v.values_after)
        .enumerate()
        .skip(n.saturating_sub(shown))
    {
        let op = &v.ops[id];
        let _ = writeln!(
            s,
            "    {:>4}. process {:<4} {:<28} {:<26} value now {}",
            i + 1,
            op.process_name(),
            op.describe(),
            op.interval(),
            val(after)
        );
    }
}
