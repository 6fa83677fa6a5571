//! Figures derived from one run, beyond `summary.json`: ok/fail/info over time, fault windows,
//! unavailability per fault, per-group availability, leadership, latency distributions.
//!
//! Definitions (also in docs/user-guide-reports.md):
//! * Time series cover the whole run (warm-up included) and bucket ops by **completion** time.
//! * Latency distributions (CDFs) cover ok ops **invoked** in the measured window, like
//!   `summary.json`.
//! * A fault's *affected keys* are the keys of the groups that have one of the fault's nodes
//!   as a member (all keys when the fault names no server node, e.g. `ring`).
//! * *To first ok*: from the fault to the completion of the first ok op on an affected key that
//!   was invoked at or after the fault. *To all groups ok*: the same, for the slowest affected
//!   group (groups with no op invoked after the fault are left out).
//! * *Heal to recovery*: from the end of the fault (heal, restart, end of pause) until every
//!   affected group has completed an ok op after it.

use crate::ops::{pair_ops, OpRecord};
use hdrhistogram::Histogram;
use quorumlab_kv::history::EventType;
use quorumlab_workloads::{FaultRecord, LeaderChange, RunOutput};
use serde::Serialize;
use std::collections::BTreeMap;

/// One millisecond in virtual nanoseconds.
pub const MS: u64 = 1_000_000;

/// Most points of a latency-over-time scatter (the rest are sampled out evenly).
pub const SCATTER_CAP: usize = 4000;

/// ok/fail/info completions in one time bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Bucket {
    pub start_ns: u64,
    pub ok: u64,
    /// Every `fail`, including those counted in `fail_precondition`.
    pub fail: u64,
    /// `fail`s because a cas/create precondition was false (definite answers).
    pub fail_precondition: u64,
    pub info: u64,
}

impl Bucket {
    pub fn completed(&self) -> u64 {
        self.ok + self.fail + self.info
    }
    /// Answered / completed, `None` when nothing completed: an answer is an `ok`, or a
    /// cas/create `fail` whose precondition was false (a definite, correct "no" from a system
    /// that was available), as in `summary.availability.ok_fraction`.
    pub fn ok_share(&self) -> Option<f64> {
        let c = self.completed();
        (c > 0).then(|| (self.ok + self.fail_precondition) as f64 / c as f64)
    }
}

/// A fault from its start to its end (heal, restart, end of pause; `None`: to the end of the
/// run).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultWindow {
    pub start_ns: u64,
    pub end_ns: Option<u64>,
    pub kind: String,
    /// Short label for figures: kind and nodes.
    pub label: String,
    pub description: String,
    pub nodes: Vec<usize>,
}

/// How long clients went without ok ops around one fault.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Unavailability {
    pub fault: String,
    pub kind: String,
    pub start_s: f64,
    pub end_s: Option<f64>,
    pub affected_groups: Vec<usize>,
    pub affected_keys: usize,
    /// Fault → first ok op (invoked after the fault) on an affected key. `None`: none in the run.
    pub to_first_ok_ms: Option<f64>,
    /// Fault → every affected group has had such an ok op.
    pub to_all_groups_ok_ms: Option<f64>,
    /// End of the fault → every affected group has completed an ok op after it.
    pub heal_to_recovery_ms: Option<f64>,
}

/// Ok and completed ops per group and time bucket (`[group][bucket]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GroupHeat {
    pub bucket_ns: u64,
    pub ok: Vec<Vec<u32>>,
    pub completed: Vec<Vec<u32>>,
}

impl GroupHeat {
    pub fn share(&self, g: usize, b: usize) -> Option<f64> {
        let c = self.completed[g][b];
        (c > 0).then(|| f64::from(self.ok[g][b]) / f64::from(c))
    }
}

/// Who led a group over a span of time (`leader: None`: nobody).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeaderSegment {
    pub group: usize,
    pub from_ns: u64,
    pub to_ns: u64,
    pub leader: Option<usize>,
    pub term: u64,
}

/// A point of a latency-over-time scatter.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ScatterPoint {
    pub invoke_ns: u64,
    pub latency_ns: u64,
    pub outcome: EventType,
    /// A `fail` because a cas/create precondition was false.
    pub precondition: bool,
}

/// Everything the per-run figures need.
#[derive(Clone, Debug, Serialize)]
pub struct RunMetrics {
    pub protocol: String,
    pub seed: u64,
    /// The end of the time axis: the end of the run.
    pub span_ns: u64,
    pub measure_from_ns: u64,
    pub measure_to_ns: u64,
    pub nodes: usize,
    pub groups: usize,
    pub bucket_ns: u64,
    pub timeline: Vec<Bucket>,
    /// Ops that never completed (the history ended first).
    pub pending: u64,
    pub faults: Vec<FaultWindow>,
    pub unavailability: Vec<Unavailability>,
    pub heat: GroupHeat,
    pub leaders: Vec<LeaderSegment>,
    /// Leader changes to a leader (elections), as sampled.
    pub elections: Vec<LeaderChange>,
    pub has_leaders: bool,
    /// Per op type and `"all"`: (latency ms, fraction of ok ops at or below), from an
    /// hdrhistogram of the measured window's ok ops.
    pub cdf: BTreeMap<String, Vec<(f64, f64)>>,
    pub scatter: Vec<ScatterPoint>,
    /// Completed ops before sampling the scatter.
    pub scatter_total: usize,
}

/// A round step (1, 2 or 5 × 10^k ns, at least 1 µs) that cuts `span` into at most `target`
/// buckets.
pub fn nice_step(span_ns: u64, target: u64) -> u64 {
    let want = span_ns.div_ceil(target.max(1)).max(1);
    let mut base: u64 = 1_000;
    loop {
        for m in [1, 2, 5] {
            let s = base.saturating_mul(m);
            if s >= want {
                return s;
            }
        }
        if base > u64::MAX / 100 {
            return u64::MAX;
        }
        base *= 10;
    }
}

/// `n3` for a server, `c1` for a client.
pub fn endpoint_name(i: usize, nodes: usize) -> String {
    if i < nodes {
        format!("n{i}")
    } else {
        format!("c{}", i - nodes)
    }
}

/// The group of an op's key (`"k12"` → `key_groups[12]`).
pub fn key_group(key: Option<&str>, key_groups: &[usize]) -> Option<usize> {
    let k: usize = key?.strip_prefix('k')?.parse().ok()?;
    key_groups.get(k).copied()
}

fn pause_ms(description: &str) -> Option<f64> {
    let rest = description.split(" for ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Pairs each fault with the event that ends it.
pub fn fault_windows(faults: &[FaultRecord], nodes: usize) -> Vec<FaultWindow> {
    let mut out = Vec::new();
    for (i, f) in faults.iter().enumerate() {
        if f.ends {
            continue;
        }
        let later = &faults[i + 1..];
        let end = match f.kind.as_str() {
            "crash" => later
                .iter()
                .find(|g| g.kind == "restart" && g.nodes == f.nodes)
                .map(|g| g.time_ns),
            "clock_rate" => later
                .iter()
                .find(|g| g.kind == "clock_rate" && g.ends && g.nodes == f.nodes)
                .map(|g| g.time_ns),
            "pause" => pause_ms(&f.description).map(|m| f.time_ns + (m * MS as f64) as u64),
            _ => later.iter().find(|g| g.kind == "heal").map(|g| g.time_ns),
        };
        let names: Vec<String> = f.nodes.iter().map(|&n| endpoint_name(n, nodes)).collect();
        let label = if names.is_empty() {
            f.kind.clone()
        } else if names.len() > 3 {
            format!("{} {},… ({})", f.kind, names[..2].join(","), names.len())
        } else {
            format!("{} {}", f.kind, names.join(","))
        };
        out.push(FaultWindow {
            start_ns: f.time_ns,
            end_ns: end,
            kind: f.kind.clone(),
            label,
            description: f.description.clone(),
            nodes: f.nodes.clone(),
        });
    }
    out
}

/// Time series of completions by outcome.
pub fn timeline(ops: &[OpRecord], span_ns: u64, bucket_ns: u64) -> Vec<Bucket> {
    let n = span_ns.div_ceil(bucket_ns).max(1) as usize;
    let mut b: Vec<Bucket> = (0..n)
        .map(|i| Bucket {
            start_ns: i as u64 * bucket_ns,
            ..Bucket::default()
        })
        .collect();
    for o in ops {
        let (Some(t), Some(kind)) = (o.complete_ns, o.outcome) else {
            continue;
        };
        let i = ((t / bucket_ns) as usize).min(n - 1);
        match kind {
            EventType::Ok => b[i].ok += 1,
            EventType::Fail => {
                b[i].fail += 1;
                if o.is_precondition_fail() {
                    b[i].fail_precondition += 1;
                }
            }
            EventType::Info => b[i].info += 1,
            EventType::Invoke => {}
        }
    }
    b
}

/// The first ok completion per group among `ops` (with their groups) that pass `pick`.
fn first_ok_per_group(
    ops: &[(usize, &OpRecord)],
    groups: &[usize],
    pick: impl Fn(&OpRecord) -> bool,
) -> (BTreeMap<usize, u64>, Vec<usize>) {
    let mut first: BTreeMap<usize, u64> = BTreeMap::new();
    let mut seen: Vec<usize> = Vec::new();
    for &(g, o) in ops {
        if !groups.contains(&g) || !pick(o) {
            continue;
        }
        if !seen.contains(&g) {
            seen.push(g);
        }
        if let (true, Some(c)) = (o.is_ok(), o.complete_ns) {
            let e = first.entry(g).or_insert(c);
            *e = (*e).min(c);
        }
    }
    seen.sort_unstable();
    (first, seen)
}

fn ms_since(t: u64, since: u64) -> f64 {
    t.saturating_sub(since) as f64 / MS as f64
}

/// Unavailability around each fault window.
pub fn unavailability(
    windows: &[FaultWindow],
    ops: &[OpRecord],
    run_groups: &[Vec<usize>],
    key_groups: &[usize],
    nodes: usize,
) -> Vec<Unavailability> {
    let with_group: Vec<(usize, &OpRecord)> = ops
        .iter()
        .filter_map(|o| key_group(o.key.as_deref(), key_groups).map(|g| (g, o)))
        .collect();
    windows
        .iter()
        .map(|w| {
            let servers: Vec<usize> = w.nodes.iter().copied().filter(|&n| n < nodes).collect();
            let mut affected: Vec<usize> = (0..run_groups.len())
                .filter(|&g| run_groups[g].iter().any(|m| servers.contains(m)))
                .collect();
            if affected.is_empty() {
                affected = (0..run_groups.len()).collect();
            }
            let affected_keys = key_groups.iter().filter(|g| affected.contains(g)).count();
            let (first, seen) =
                first_ok_per_group(&with_group, &affected, |o| o.invoke_ns >= w.start_ns);
            let to_first_ok_ms = first.values().min().map(|&t| ms_since(t, w.start_ns));
            let to_all_groups_ok_ms = if seen.is_empty() || first.len() < seen.len() {
                None
            } else {
                first.values().max().map(|&t| ms_since(t, w.start_ns))
            };
            let heal_to_recovery_ms = w.end_ns.and_then(|h| {
                let (first, seen) = first_ok_per_group(&with_group, &affected, |o| {
                    o.complete_ns.is_some_and(|c| c >= h)
                });
                if seen.is_empty() || first.len() < seen.len() {
                    None
                } else {
                    first.values().max().map(|&t| ms_since(t, h))
                }
            });
            Unavailability {
                fault: w.label.clone(),
                kind: w.kind.clone(),
                start_s: w.start_ns as f64 / 1e9,
                end_s: w.end_ns.map(|e| e as f64 / 1e9),
                affected_groups: affected,
                affected_keys,
                to_first_ok_ms,
                to_all_groups_ok_ms,
                heal_to_recovery_ms,
            }
        })
        .collect()
}

/// Per-group availability over time.
pub fn group_heat(
    ops: &[OpRecord],
    groups: usize,
    key_groups: &[usize],
    span_ns: u64,
    bucket_ns: u64,
) -> GroupHeat {
    let n = span_ns.div_ceil(bucket_ns).max(1) as usize;
    let mut h = GroupHeat {
        bucket_ns,
        ok: vec![vec![0; n]; groups],
        completed: vec![vec![0; n]; groups],
    };
    for o in ops {
        let (Some(t), Some(kind)) = (o.complete_ns, o.outcome) else {
            continue;
        };
        let Some(g) = key_group(o.key.as_deref(), key_groups).filter(|&g| g < groups) else {
            continue;
        };
        let b = ((t / bucket_ns) as usize).min(n - 1);
        h.completed[g][b] += 1;
        if kind == EventType::Ok {
            h.ok[g][b] += 1;
        }
    }
    h
}

/// Leadership spans per group from the sampled changes.
pub fn leader_segments(
    changes: &[LeaderChange],
    groups: usize,
    span_ns: u64,
) -> Vec<LeaderSegment> {
    let mut out = Vec::new();
    for g in 0..groups {
        let mut from = 0;
        let mut cur: (Option<usize>, u64) = (None, 0);
        for c in changes.iter().filter(|c| c.group == g) {
            if c.time_ns > from {
                out.push(LeaderSegment {
                    group: g,
                    from_ns: from,
                    to_ns: c.time_ns,
                    leader: cur.0,
                    term: cur.1,
                });
            }
            from = c.time_ns;
            cur = (c.leader, c.term);
        }
        if span_ns > from {
            out.push(LeaderSegment {
                group: g,
                from_ns: from,
                to_ns: span_ns,
                leader: cur.0,
                term: cur.1,
            });
        }
    }
    out
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// The CDF of a latency histogram (µs) as (ms, fraction) points, thinned to a few hundred.
pub fn cdf_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = Vec::new();
    if h.is_empty() {
        return pts;
    }
    let raw: Vec<(f64, f64)> = h
        .iter_recorded()
        .map(|v| {
            (
                h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0,
                v.quantile_iterated_to(),
            )
        })
        .collect();
    let last = raw.len() - 1;
    for (i, &(x, q)) in raw.iter().enumerate() {
        let keep = match pts.last() {
            None => true,
            Some(&(px, pq)) => {
                i == last || (x / px).log10() >= 0.004 || (q - pq) >= 0.002 || q >= 0.999
            }
        };
        if keep {
            pts.push((x, q));
        }
    }
    pts
}

/// Up to `cap` points, each outcome class (ok, fail with a false precondition, other fail,
/// info) thinned evenly in proportion to its size, but rare classes keep at least `cap / 10`
/// points (all of them when they have fewer).
pub fn downsample(points: &[ScatterPoint], cap: usize) -> Vec<ScatterPoint> {
    if points.len() <= cap {
        return points.to_vec();
    }
    let classes: Vec<Vec<ScatterPoint>> = [
        (EventType::Ok, false),
        (EventType::Fail, true),
        (EventType::Fail, false),
        (EventType::Info, false),
    ]
    .iter()
    .map(|&(k, pre)| {
        points
            .iter()
            .filter(|p| p.outcome == k && (k != EventType::Fail || p.precondition == pre))
            .copied()
            .collect()
    })
    .collect();
    let total = points.len();
    let mut keep: Vec<usize> = classes
        .iter()
        .map(|c| {
            let share = (cap as f64 * c.len() as f64 / total as f64).round() as usize;
            share.max((cap / 10).min(c.len())).min(c.len())
        })
        .collect();
    // Give back the excess from the largest class.
    let sum: usize = keep.iter().sum();
    if sum > cap {
        let big = (0..keep.len()).max_by_key(|&i| keep[i]).unwrap_or(0);
        keep[big] = keep[big].saturating_sub(sum - cap);
    }
    let thin = |v: &[ScatterPoint], k: usize| -> Vec<ScatterPoint> {
        if k >= v.len() {
            return v.to_vec();
        }
        (0..k).map(|i| v[i * v.len() / k]).collect()
    };
    let mut out: Vec<ScatterPoint> = classes
        .iter()
        .zip(&keep)
        .flat_map(|(c, &k)| thin(c, k))
        .collect();
    out.sort_by_key(|p| (p.invoke_ns, p.latency_ns));
    out
}

fn groups_of(run: &RunOutput) -> Vec<Vec<usize>> {
    run.layout
        .groups
        .iter()
        .map(|g| g.iter().map(|&id| usize::from(id)).collect())
        .collect()
}

/// The unavailability around each fault of a run.
pub fn run_unavailability(run: &RunOutput) -> Vec<Unavailability> {
    let ops = pair_ops(&run.history);
    let windows = fault_windows(&run.faults, run.layout.nodes);
    unavailability(
        &windows,
        &ops,
        &groups_of(run),
        &run.key_groups,
        run.layout.nodes,
    )
}

impl RunMetrics {
    /// Computes the figures of `run`.
    pub fn compute(run: &RunOutput) -> RunMetrics {
        let ops = pair_ops(&run.history);
        let last_completion = ops.iter().filter_map(|o| o.complete_ns).max().unwrap_or(0);
        let span_ns = run
            .end_ns
            .max(run.measure_to_ns)
            .max(last_completion)
            .max(1);
        let bucket_ns = nice_step(span_ns, 150);
        let nodes = run.layout.nodes;
        let groups = run.layout.groups.len();
        let run_groups = groups_of(run);
        let faults = fault_windows(&run.faults, nodes);
        let unavailability = unavailability(&faults, &ops, &run_groups, &run.key_groups, nodes);
        let heat = group_heat(
            &ops,
            groups,
            &run.key_groups,
            span_ns,
            nice_step(span_ns, 80),
        );
        let leaders = leader_segments(&run.leaders, groups, span_ns);
        let elections: Vec<LeaderChange> = run
            .leaders
            .iter()
            .filter(|l| l.leader.is_some())
            .cloned()
            .collect();

        let mut hists: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
        let mut all = new_hist();
        let mut points = Vec::new();
        let mut pending = 0;
        for o in &ops {
            let (Some(lat), Some(kind)) = (o.latency_ns(), o.outcome) else {
                pending += 1;
                continue;
            };
            points.push(ScatterPoint {
                invoke_ns: o.invoke_ns,
                latency_ns: lat,
                outcome: kind,
                precondition: o.is_precondition_fail(),
            });
            let measured = o.invoke_ns >= run.measure_from_ns && o.invoke_ns < run.measure_to_ns;
            if measured && kind == EventType::Ok {
                let us = (lat / 1_000).max(1);
                all.saturating_record(us);
                hists
                    .entry(o.f.clone())
                    .or_insert_with(new_hist)
                    .saturating_record(us);
            }
        }
        let mut cdf: BTreeMap<String, Vec<(f64, f64)>> = hists
            .iter()
            .map(|(f, h)| (f.clone(), cdf_points(h)))
            .collect();
        cdf.insert("all".into(), cdf_points(&all));
        RunMetrics {
            protocol: run.protocol.clone(),
            seed: run.seed,
            span_ns,
            measure_from_ns: run.measure_from_ns,
            measure_to_ns: run.measure_to_ns,
            nodes,
            groups,
            bucket_ns,
            timeline: timeline(&ops, span_ns, bucket_ns),
            pending,
            faults,
            unavailability,
            heat,
            has_leaders: run.leaders.iter().any(|l| l.leader.is_some()),
            leaders,
            elections,
            cdf,
            scatter_total: points.len(),
            scatter: downsample(&points, SCATTER_CAP),
        }
    }
}
