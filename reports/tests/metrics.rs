//! Metrics of a small synthetic run against values computed by hand, and report generation on
//! degenerate runs (empty, all failed, all unknown) without panics.

use quorumlab_kv::history::{Event, EventType, ProcessId};
use quorumlab_kv::Layout;
use quorumlab_reports::compare::{write_compare, CompareRun};
use quorumlab_reports::metrics::{fault_windows, group_heat, leader_segments, timeline, MS};
use quorumlab_reports::{pair_ops, summarize, write_run_files, RunMetrics};
use quorumlab_sim::{KindStats, NetStats, SimStats};
use quorumlab_workloads::{FaultRecord, LeaderChange, RunOutput, Spec};
use serde_json::Value;

fn ev(t_ms: u64, p: u64, kind: EventType, f: &str, key: &str) -> Event {
    Event {
        index: 0,
        time: t_ms * MS,
        process: ProcessId::Client(p),
        kind,
        f: f.into(),
        key: Some(key.into()),
        value: Value::Null,
        error: None,
    }
}

fn run_with(
    history: Vec<Event>,
    faults: Vec<FaultRecord>,
    leaders: Vec<LeaderChange>,
) -> RunOutput {
    let mut history = history;
    history.sort_by_key(|e| e.time);
    for (i, e) in history.iter_mut().enumerate() {
        e.index = i as u64;
    }
    // 4 nodes, groups of 2: g0 = {n0, n1}, g1 = {n1, n2}.
    let layout = Layout::new(4, 2, 2, 2, 4).unwrap();
    let window = NetStats {
        total: KindStats {
            sent: 24,
            delivered: 22,
            dropped: 2,
            duplicated: 0,
            bytes: 2400,
        },
        by_kind: vec![(
            "request",
            KindStats {
                sent: 24,
                delivered: 22,
                dropped: 2,
                duplicated: 0,
                bytes: 2400,
            },
        )],
    };
    RunOutput {
        protocol: "test".into(),
        seed: 7,
        history,
        end_ns: 100 * MS,
        measure_from_ns: 0,
        measure_to_ns: 100 * MS,
        net: window.clone(),
        net_window: window,
        sim: SimStats::default(),
        faults,
        leaders,
        messages: vec![],
        layout,
        key_groups: vec![0, 1, 0, 1],
        skipped_arrivals: 0,
        protocol_counters: Default::default(),
    }
}

/// The synthetic run (times in ms):
/// * p0 on k0 (group 0): write 0→2 ok; cas 10→12 fail (precondition); write 21→41 info;
///   then as p2: write 41→70 ok.
/// * p1 on k1 (group 1): read 0→3 ok; read 10→11 ok; read 25→26 ok; read 61→62 ok.
/// * n0 isolated at 20, healed at 60. Group 0 led by n1 (t1) from 5 to 20, by n2 (t2) from 30;
///   group 1 by n2 (t1) from 5.
fn synthetic() -> RunOutput {
    use EventType::*;
    let mut cas_fail = ev(12, 0, Fail, "cas", "k0");
    cas_fail.error = Some("precondition".into());
    let h = vec![
        ev(0, 0, Invoke, "write", "k0"),
        ev(2, 0, Ok, "write", "k0"),
        ev(10, 0, Invoke, "cas", "k0"),
        cas_fail,
        ev(21, 0, Invoke, "write", "k0"),
        ev(41, 0, Info, "write", "k0"),
        ev(41, 2, Invoke, "write", "k0"),
        ev(70, 2, Ok, "write", "k0"),
        ev(0, 1, Invoke, "read", "k1"),
        ev(3, 1, Ok, "read", "k1"),
        ev(10, 1, Invoke, "read", "k1"),
        ev(11, 1, Ok, "read", "k1"),
        ev(25, 1, Invoke, "read", "k1"),
        ev(26, 1, Ok, "read", "k1"),
        ev(61, 1, Invoke, "read", "k1"),
        ev(62, 1, Ok, "read", "k1"),
    ];
    let faults = vec![
        FaultRecord {
            time_ns: 20 * MS,
            kind: "isolate".into(),
            description: "isolate n0".into(),
            nodes: vec![0],
            ends: false,
        },
        FaultRecord {
            time_ns: 60 * MS,
            kind: "heal".into(),
            description: "heal all links".into(),
            nodes: vec![],
            ends: true,
        },
    ];
    let lc = |t: u64, group: usize, leader: Option<usize>, term: u64| LeaderChange {
        time_ns: t * MS,
        group,
        leader,
        term,
    };
    let leaders = vec![
        lc(5, 0, Some(1), 1),
        lc(5, 1, Some(2), 1),
        lc(20, 0, None, 1),
        lc(30, 0, Some(2), 2),
    ];
    run_with(h, faults, leaders)
}

#[test]
fn summary_matches_hand_computed_values() {
    let run = synthetic();
    let s = summarize(&run, b"", 0.0);
    assert_eq!(
        (
            s.ops.invoked,
            s.ops.ok,
            s.ops.fail,
            s.ops.precondition_failed,
            s.ops.info
        ),
        (8, 6, 1, 1, 1)
    );
    // answered: 6 ok + the cas whose precondition was false, of 8
    assert!((s.availability.ok_fraction - 0.875).abs() < 1e-12);
    // answers at 2, 3, 11, 12, 26, 62, 70 ms: the longest gap is 26 → 62.
    assert!((s.availability.longest_gap_ms - 36.0).abs() < 1e-9);
    assert!((s.throughput_ok_per_s - 60.0).abs() < 1e-9);
    // ok latencies: 2, 3, 1, 1, 29, 1 ms.
    let all = &s.latency_us["all"];
    assert_eq!(all.count, 6);
    assert_eq!(all.p50, 1000);
    assert!((all.max as f64 - 29_000.0).abs() <= 29.0, "{}", all.max);
    assert_eq!(s.latency_us["read"].count, 4);
    assert!((s.messages.per_ok_op - 4.0).abs() < 1e-12);
    assert!((s.messages.bytes_per_ok_op - 400.0).abs() < 1e-12);
    assert_eq!(s.leadership.elections, 3);
    assert!((s.leadership.longest_leaderless_ms - 10.0).abs() < 1e-9);
    // Unavailability: n0 is in group 0 only, whose keys are k0 and k2.
    assert_eq!(s.unavailability.len(), 1);
    let u = &s.unavailability[0];
    assert_eq!(u.affected_groups, vec![0]);
    assert_eq!(u.affected_keys, 2);
    assert_eq!(u.to_first_ok_ms, Some(50.0)); // write invoked at 41, ok at 70; fault at 20
    assert_eq!(u.to_all_groups_ok_ms, Some(50.0));
    assert_eq!(u.heal_to_recovery_ms, Some(10.0)); // heal at 60, ok at 70
    assert_eq!(u.end_s, Some(0.06));
}

#[test]
fn time_series_match_hand_computed_values() {
    let run = synthetic();
    let ops = pair_ops(&run.history);
    let b = timeline(&ops, 100 * MS, 10 * MS);
    assert_eq!(b.len(), 10);
    let row = |i: usize| (b[i].ok, b[i].fail, b[i].fail_precondition, b[i].info);
    assert_eq!(row(0), (2, 0, 0, 0));
    assert_eq!(row(1), (1, 1, 1, 0));
    assert_eq!(row(2), (1, 0, 0, 0));
    assert_eq!(row(3), (0, 0, 0, 0));
    assert_eq!(row(4), (0, 0, 0, 1));
    assert_eq!(row(6), (1, 0, 0, 0));
    assert_eq!(row(7), (1, 0, 0, 0));
    assert_eq!(b[1].ok_share(), Some(1.0)); // an ok read and a false precondition
    assert_eq!(b[3].ok_share(), None);

    let h = group_heat(&ops, 2, &run.key_groups, 100 * MS, 50 * MS);
    assert_eq!((h.ok[0][0], h.completed[0][0]), (1, 3));
    assert_eq!((h.ok[0][1], h.completed[0][1]), (1, 1));
    assert_eq!((h.ok[1][0], h.completed[1][0]), (3, 3));
    assert_eq!((h.ok[1][1], h.completed[1][1]), (1, 1));
    assert!((h.share(0, 0).unwrap() - 1.0 / 3.0).abs() < 1e-12);

    let w = fault_windows(&run.faults, 4);
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].start_ns, w[0].end_ns), (20 * MS, Some(60 * MS)));
    assert_eq!(w[0].label, "isolate n0");

    let segs = leader_segments(&run.leaders, 2, 100 * MS);
    let g0: Vec<(u64, u64, Option<usize>, u64)> = segs
        .iter()
        .filter(|s| s.group == 0)
        .map(|s| (s.from_ns / MS, s.to_ns / MS, s.leader, s.term))
        .collect();
    assert_eq!(
        g0,
        vec![
            (0, 5, None, 0),
            (5, 20, Some(1), 1),
            (20, 30, None, 1),
            (30, 100, Some(2), 2)
        ]
    );
    let m = RunMetrics::compute(&run);
    assert_eq!(m.elections.len(), 3);
    assert_eq!(m.scatter_total, 8);
    assert_eq!(m.pending, 0);
    // The CDF of all ok latencies ends at 1.
    let cdf = &m.cdf["all"];
    assert!((cdf.last().unwrap().1 - 1.0).abs() < 1e-12);
    assert!((cdf[0].1 - 0.5).abs() < 1e-12, "{cdf:?}"); // three of six at 1 ms
}

fn write_all(run: &RunOutput) -> String {
    let spec = Spec::default_with(&[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = summarize(run, b"", 0.0);
    write_run_files(dir.path(), &spec, run, &s).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    for f in [
        "summary.csv",
        "ops.csv",
        "timeline.csv",
        "groups.csv",
        "unavailability.csv",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    let runs = vec![CompareRun {
        protocol: run.protocol.clone(),
        dir: "x".into(),
        summary: s,
        metrics: RunMetrics::compute(run),
    }];
    let cdir = tempfile::tempdir().unwrap();
    write_compare(cdir.path(), &spec, 1, &runs).unwrap();
    write_compare(cdir.path(), &spec, 1, &[]).unwrap();
    // The sim-vs-real overlay (the same run as both engines, and no protocol at all).
    let pair = quorumlab_reports::engines::EnginePair {
        protocol: run.protocol.clone(),
        sim: runs[0].clone(),
        real: runs[0].clone(),
    };
    let edir = tempfile::tempdir().unwrap();
    quorumlab_reports::engines::write_engines(edir.path(), &spec, 1, &[pair], "test").unwrap();
    quorumlab_reports::engines::write_engines(edir.path(), &spec, 1, &[], "test").unwrap();
    html
}

#[test]
fn reports_of_degenerate_runs_do_not_panic() {
    // Empty: no ops, no faults, no leaders, no messages.
    let empty = run_with(vec![], vec![], vec![]);
    let html = write_all(&empty);
    assert!(html.contains("<html"));
    // All failed, all unknown, and ops that never complete.
    use EventType::*;
    for kind in [Fail, Info] {
        let mut h = Vec::new();
        for i in 0..50u64 {
            h.push(ev(2 * i, i, Invoke, "write", "k1"));
            h.push(ev(2 * i + 1, i, kind, "write", "k1"));
        }
        h.push(ev(99, 999, Invoke, "read", "k0"));
        let run = run_with(h, synthetic().faults, vec![]);
        let html = write_all(&run);
        assert!(html.contains("No ok ops"), "{kind:?}");
    }
    // A run with one zero-length op and a fault that never heals.
    let mut f = synthetic().faults;
    f.truncate(1);
    let run = run_with(
        vec![ev(5, 0, Invoke, "read", "k0"), ev(5, 0, Ok, "read", "k0")],
        f,
        vec![],
    );
    write_all(&run);
}

#[test]
fn a_run_is_reported_deterministically() {
    let spec = Spec::default_with(&[]).unwrap();
    let run = synthetic();
    let s = summarize(&run, b"", 0.0);
    let m = RunMetrics::compute(&run);
    let a = quorumlab_reports::run_report::run_report_html(&spec, &run, &s, &m, None);
    let b = quorumlab_reports::run_report::run_report_html(&spec, &run, &s, &m, None);
    assert_eq!(a, b);
}
