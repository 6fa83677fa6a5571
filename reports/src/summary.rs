//! `summary.json`: the machine-readable figures of one run.
//!
//! Conventions (also in docs/user-guide.md):
//! * Figures cover ops *invoked* in the measured window (after warm-up); the history has all.
//! * Latency percentiles are over `ok` ops (per `f` and `"all"`), in microseconds of virtual
//!   time, from an hdrhistogram with 3 significant digits.
//! * `ok_fraction` = answered / completed ops, an answer being an `ok` or a cas/create `fail`
//!   whose precondition was false (a definite answer); `longest_gap_ms` = the longest span of
//!   the window without an answer.

use crate::metrics::Unavailability;
use crate::ops::{pair_ops, OpRecord};
use hdrhistogram::Histogram;
use quorumlab_kv::history::{write_jsonl, EventType};
use quorumlab_sim::KindStats;
use quorumlab_workloads::{FaultRecord, RunOutput};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct OpCounts {
    pub invoked: u64,
    pub ok: u64,
    /// Every `fail`, including `precondition_failed`.
    pub fail: u64,
    /// cas/create `fail`s whose precondition was false: definite answers.
    pub precondition_failed: u64,
    pub info: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Availability {
    /// Answered / completed ops of the window. An answer is an `ok`, or a cas/create `fail`
    /// whose precondition was false: the system was there and said a definite, correct "no"
    /// (counting those as unavailable would make a workload with creates on existing keys
    /// look like an outage). `ops` keeps the raw counts.
    pub ok_fraction: f64,
    /// The longest span of the window without an answer (as above).
    pub longest_gap_ms: f64,
    /// The longest gap without an ok op *of one client* (client = process mod clients), over
    /// the clients: what the most cut-off client saw (a client partitioned with a minority
    /// waits until the heal under consensus; under eventual consistency it keeps going).
    pub worst_client_gap_ms: f64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Messages {
    /// Counted over the measured window.
    pub sent: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub bytes: u64,
    pub per_ok_op: f64,
    pub bytes_per_ok_op: f64,
    pub by_kind: BTreeMap<String, KindStats>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FaultSummary {
    pub time_s: f64,
    pub kind: String,
    pub description: String,
    pub nodes: Vec<usize>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LeaderSummary {
    pub elections: usize,
    /// Longest time any group spent without a leader inside the measured window, in ms.
    pub longest_leaderless_ms: f64,
}

/// The figures of one run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub protocol: String,
    pub seed: u64,
    pub sim_seconds: f64,
    pub wall_seconds: f64,
    pub measured_seconds: f64,
    pub ops: OpCounts,
    pub throughput_ok_per_s: f64,
    pub latency_us: BTreeMap<String, Percentiles>,
    pub availability: Availability,
    pub messages: Messages,
    pub faults: Vec<FaultSummary>,
    pub leadership: LeaderSummary,
    pub events: u64,
    pub history_events: usize,
    pub history_sha256: String,
    /// `null` until checked; then `true`, `false` or `"unknown"`.
    pub linearizable: serde_json::Value,
    /// Per fault: time to the first ok op on the affected keys, and from its end (heal) to
    /// full recovery (see `metrics`).
    pub unavailability: Vec<Unavailability>,
    /// The set checker (lost / unexpected adds, stale reads, convergence after the final
    /// heal), for runs with set-valued keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sets: Option<quorumlab_checker::SetReport>,
    /// The protocol's own counters at the end of the run (e.g. `eventual`'s statebox
    /// pruning, hinted handoffs, read repairs); absent when the protocol has none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub protocol_counters: BTreeMap<String, u64>,
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        count: h.len(),
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
        mean: (h.mean() * 10.0).round() / 10.0,
    }
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Longest span in `[from, to]` with no time in `oks` (sorted).
pub fn longest_gap(oks: &[u64], from: u64, to: u64) -> u64 {
    let mut prev = from;
    let mut best = 0;
    for &t in oks.iter().filter(|&&t| t >= from && t <= to) {
        best = best.max(t - prev);
        prev = t;
    }
    best.max(to.saturating_sub(prev))
}

/// The ops invoked in the measured window of `run`.
pub fn measured_ops(run: &RunOutput) -> Vec<OpRecord> {
    pair_ops(&run.history)
        .into_iter()
        .filter(|o| o.invoke_ns >= run.measure_from_ns && o.invoke_ns < run.measure_to_ns)
        .collect()
}

/// The history file's bytes (JSON Lines).
pub fn history_bytes(run: &RunOutput) -> Vec<u8> {
    let mut buf = Vec::with_capacity(run.history.len() * 100);
    write_jsonl(&mut buf, &run.history).expect("writing to memory");
    buf
}

/// Computes the summary of a run. `wall_seconds` is measured by the caller.
pub fn summarize(run: &RunOutput, history_bytes: &[u8], wall_seconds: f64) -> Summary {
    let ops = measured_ops(run);
    let mut counts = OpCounts::default();
    let mut hists: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    let mut all = new_hist();
    let mut ok_times = Vec::new();
    let clients = run.layout.clients.max(1) as u64;
    let mut client_ok: Vec<Vec<u64>> = vec![Vec::new(); clients as usize];
    for o in &ops {
        counts.invoked += 1;
        match o.outcome {
            Some(EventType::Ok) => {
                counts.ok += 1;
                let us = (o.latency_ns().unwrap_or(0) / 1_000).max(1);
                all.saturating_record(us);
                hists
                    .entry(o.f.clone())
                    .or_insert_with(new_hist)
                    .saturating_record(us);
                ok_times.push(o.complete_ns.unwrap_or(o.invoke_ns));
                client_ok[(o.process % clients) as usize]
                    .push(o.complete_ns.unwrap_or(o.invoke_ns));
            }
            Some(EventType::Fail) => {
                counts.fail += 1;
                if o.is_precondition_fail() {
                    counts.precondition_failed += 1;
                    let t = o.complete_ns.unwrap_or(o.invoke_ns);
                    ok_times.push(t);
                    client_ok[(o.process % clients) as usize].push(t);
                }
            }
            Some(EventType::Info) => counts.info += 1,
            _ => {}
        }
    }
    ok_times.sort_unstable();
    let window_ns = run.measure_to_ns - run.measure_from_ns;
    let mut latency_us: BTreeMap<String, Percentiles> = hists
        .iter()
        .map(|(f, h)| (f.clone(), percentiles(h)))
        .collect();
    latency_us.insert("all".into(), percentiles(&all));
    let completed = counts.ok + counts.fail + counts.info;
    let net = &run.net_window;
    let n_ok = counts.ok;
    let per_ok = |x: u64| {
        if n_ok > 0 {
            x as f64 / n_ok as f64
        } else {
            0.0
        }
    };
    let elections = run.leaders.iter().filter(|l| l.leader.is_some()).count();
    Summary {
        protocol: run.protocol.clone(),
        seed: run.seed,
        sim_seconds: run.end_ns as f64 / 1e9,
        wall_seconds,
        measured_seconds: window_ns as f64 / 1e9,
        throughput_ok_per_s: counts.ok as f64 / (window_ns as f64 / 1e9),
        availability: Availability {
            ok_fraction: if completed > 0 {
                (counts.ok + counts.precondition_failed) as f64 / completed as f64
            } else {
                0.0
            },
            longest_gap_ms: longest_gap(&ok_times, run.measure_from_ns, run.measure_to_ns) as f64
                / 1e6,
            worst_client_gap_ms: client_ok
                .iter_mut()
                .map(|t| {
                    t.sort_unstable();
                    longest_gap(t, run.measure_from_ns, run.measure_to_ns)
                })
                .max()
                .unwrap_or(0) as f64
                / 1e6,
        },
        ops: counts,
        latency_us,
        messages: Messages {
            sent: net.total.sent,
            delivered: net.total.delivered,
            dropped: net.total.dropped,
            duplicated: net.total.duplicated,
            bytes: net.total.bytes,
            per_ok_op: per_ok(net.total.sent),
            bytes_per_ok_op: per_ok(net.total.bytes),
            by_kind: net
                .by_kind
                .iter()
                .map(|(k, s)| (k.to_string(), s.clone()))
                .collect(),
        },
        faults: run.faults.iter().map(fault_summary).collect(),
        leadership: LeaderSummary {
            elections,
            longest_leaderless_ms: longest_leaderless(run) as f64 / 1e6,
        },
        events: run.sim.events,
        history_events: run.history.len(),
        history_sha256: format!("{:x}", Sha256::digest(history_bytes)),
        linearizable: serde_json::Value::Null,
        unavailability: crate::metrics::run_unavailability(run),
        sets: quorumlab_checker::check_sets(&run.history),
        protocol_counters: run.protocol_counters.clone(),
    }
}

fn fault_summary(f: &FaultRecord) -> FaultSummary {
    FaultSummary {
        time_s: f.time_ns as f64 / 1e9,
        kind: f.kind.clone(),
        description: f.description.clone(),
        nodes: f.nodes.clone(),
    }
}

/// The longest time any group had no leader within the measured window (0 for leaderless
/// protocols, which never report one).
fn longest_leaderless(run: &RunOutput) -> u64 {
    if run.leaders.iter().all(|l| l.leader.is_none()) {
        return 0;
    }
    let groups = run.layout.groups.len();
    let (from, to) = (run.measure_from_ns, run.measure_to_ns);
    let mut best = 0;
    for g in 0..groups {
        let changes: Vec<_> = run.leaders.iter().filter(|l| l.group == g).collect();
        // State at each point: leader or not; find leaderless spans clipped to the window.
        let mut since: Option<u64> = Some(0);
        for c in &changes {
            match (c.leader, since) {
                (Some(_), Some(s)) => {
                    let (a, b) = (s.max(from), c.time_ns.min(to));
                    if b > a {
                        best = best.max(b - a);
                    }
                    since = None;
                }
                (None, None) => since = Some(c.time_ns),
                _ => {}
            }
        }
        if let Some(s) = since {
            let (a, b) = (s.max(from), to);
            if b > a {
                best = best.max(b - a);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_covers_edges() {
        assert_eq!(longest_gap(&[], 0, 100), 100);
        assert_eq!(longest_gap(&[10, 20, 90], 0, 100), 70);
        assert_eq!(longest_gap(&[50], 0, 100), 50);
        assert_eq!(longest_gap(&[5, 200], 0, 100), 95);
    }
}
