//! The driver end to end with the reference protocol: determinism (with and without faults),
//! Jepsen process semantics, open loop, fault records.

use quorumlab_kv::history::{write_jsonl, EventType, ProcessId};
use quorumlab_single::Single;
use quorumlab_workloads::{run, RunOptions, RunOutput, Spec};

fn go(spec: &Spec, seed: u64) -> RunOutput {
    run::<Single>(spec, &spec.protocol.single, seed, RunOptions::default()).expect("run")
}

fn bytes(out: &RunOutput) -> Vec<u8> {
    let mut b = Vec::new();
    write_jsonl(&mut b, &out.history).unwrap();
    b
}

const FAULTY: &str = r#"
[cluster]
nodes = 3
replicas = 3
[network]
latency = { kind = "lognormal", median_ms = 1.0, sigma = 0.5 }
loss = 0.02
duplicate = 0.02
delivery = "unordered"
[workload]
clients = 4
keys = 5
duration_s = 5.0
warmup_s = 0.5
timeout_ms = 100.0
[[faults]]
at_s = 1.0
fault = { kind = "crash", node = "n0" }
[[faults]]
at_s = 1.5
fault = { kind = "restart", node = "n0" }
[[faults]]
at_s = 2.0
fault = { kind = "pause", node = "n0", for_ms = 300.0 }
[[faults]]
at_s = 3.0
fault = { kind = "partition", groups = [["n0", "c0"], ["n1", "n2", "c1", "c2", "c3"]] }
[[faults]]
at_s = 3.5
fault = { kind = "heal" }
[[nemesis]]
kind = "clock"
every_s = 1.0
duration_s = 0.5
rate = 1.5
"#;

#[test]
fn same_seed_gives_byte_identical_history() {
    let spec = Spec::default_with(&["workload.duration_s=5".into()]).unwrap();
    assert_eq!(bytes(&go(&spec, 3)), bytes(&go(&spec, 3)));
    assert_ne!(bytes(&go(&spec, 3)), bytes(&go(&spec, 4)));
}

#[test]
fn same_seed_gives_byte_identical_history_with_faults() {
    let spec = Spec::parse(FAULTY, "faulty.toml", &[]).unwrap();
    let a = go(&spec, 11);
    let b = go(&spec, 11);
    assert_eq!(bytes(&a), bytes(&b));
    assert!(a.faults.len() >= 5, "{:?}", a.faults);
    assert!(a.net.total.dropped > 0 && a.net.total.duplicated > 0);
}

#[test]
fn info_moves_a_client_to_a_fresh_process() {
    // Crash the only serving node: in-flight ops time out as info; their clients continue
    // under process + clients.
    let spec = Spec::parse(FAULTY, "faulty.toml", &[]).unwrap();
    let out = go(&spec, 1);
    let infos: Vec<u64> = out
        .history
        .iter()
        .filter(|e| e.kind == EventType::Info && !e.process.is_nemesis())
        .filter(|e| e.time + 50_000_000 < out.measure_to_ns) // later infos end the run
        .map(|e| match e.process {
            ProcessId::Client(p) => p,
            _ => unreachable!(),
        })
        .collect();
    assert!(!infos.is_empty(), "a crash must produce info ops");
    for p in infos {
        let fresh = p + 4;
        assert!(
            out.history
                .iter()
                .any(|e| e.process == ProcessId::Client(fresh)),
            "process {p} had an info; expected its client to continue as {fresh}"
        );
        // and the old process never invokes again
        let last_info = out
            .history
            .iter()
            .rposition(|e| e.process == ProcessId::Client(p))
            .unwrap();
        assert_eq!(out.history[last_info].kind, EventType::Info);
    }
}

#[test]
fn at_most_one_op_outstanding_per_process() {
    let spec = Spec::parse(FAULTY, "faulty.toml", &[]).unwrap();
    let out = go(&spec, 5);
    let mut open = std::collections::BTreeSet::new();
    for e in &out.history {
        let ProcessId::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            assert!(open.insert(p), "process {p} invoked twice");
        } else {
            assert!(
                open.remove(&p),
                "process {p} completed without an invocation"
            );
        }
    }
    assert!(open.is_empty(), "every op completes by the end of the run");
}

#[test]
fn open_loop_rate_is_respected() {
    let spec = Spec::default_with(&[
        "workload.mode=\"open\"".into(),
        "workload.rate=200".into(),
        "workload.clients=50".into(),
        "workload.duration_s=10".into(),
        "workload.warmup_s=0".into(),
        "faults=[]".into(),
    ])
    .unwrap();
    let out = go(&spec, 2);
    let invokes = out
        .history
        .iter()
        .filter(|e| e.kind == EventType::Invoke)
        .count() as f64;
    assert!(
        (invokes / 10.0 - 200.0).abs() < 20.0,
        "{invokes} invocations in 10 s"
    );
}

#[test]
fn isolate_leader_without_leader_isolates_first_replica() {
    let spec = Spec::default_with(&["workload.duration_s=20".into()]).unwrap();
    let out = go(&spec, 1);
    let f = &out.faults[0];
    assert_eq!(f.kind, "isolate_leader");
    assert_eq!(f.nodes, vec![0]);
    assert!(f.description.contains("no leader"), "{}", f.description);
    assert_eq!(out.faults[1].kind, "heal");
    // nemesis events are in the history too
    assert_eq!(
        out.history
            .iter()
            .filter(|e| e.process.is_nemesis())
            .count(),
        2
    );
}

#[test]
fn written_values_are_unique() {
    let spec = Spec::default_with(&["workload.duration_s=5".into()]).unwrap();
    let out = go(&spec, 8);
    let mut seen = std::collections::BTreeSet::new();
    for e in out.history.iter().filter(|e| e.kind == EventType::Invoke) {
        let v = match e.f.as_str() {
            "write" | "create" => e.value.as_u64(),
            "cas" => e.value[1].as_u64(),
            _ => None,
        };
        if let Some(v) = v {
            assert!(seen.insert(v), "value {v} written twice");
        }
    }
}

#[test]
fn region_model_sets_half_the_rtt() {
    let spec = Spec::parse(
        r#"
[cluster]
nodes = 3
replicas = 3
[workload]
clients = 1
[network.regions]
names = ["us", "eu"]
rtt_ms = [[1.0, 80.0], [80.0, 1.0]]
nodes = ["us", "us", "eu"]
clients = ["eu"]
"#,
        "regions.toml",
        &[],
    )
    .unwrap();
    let links = quorumlab_workloads::network::link_models(&spec);
    let n = 4;
    let lat = |a: usize, b: usize| links[a * n + b].latency.mean_ms();
    assert_eq!(lat(0, 1), 0.5);
    assert_eq!(lat(0, 2), 40.0);
    assert_eq!(lat(3, 2), 0.5, "the client is in eu");
    assert_eq!(lat(3, 0), 40.0);
    assert_eq!(lat(1, 1), 0.0, "no network to oneself");
}

#[test]
fn unknown_region_is_a_spec_error() {
    let e = Spec::parse(
        "[cluster]\nnodes = 1\nreplicas = 1\n[network.regions]\nnames = [\"us\"]\nrtt_ms = [[1.0]]\nnodes = [\"mars\"]\nclients = [\"us\"]\n",
        "r.toml",
        &[],
    )
    .unwrap_err();
    assert!(e.msg.contains("mars"), "{e}");
    assert_eq!(e.line, Some(4));
}

/// Sets under a partition, through every consensus protocol: the run ends with the final heal
/// and final reads; no acknowledged add is lost, the history (adds included) is linearizable.
#[test]
fn set_workload_with_final_reads_loses_no_add_under_consensus() {
    let spec = Spec::default_with(&[
        "workload.duration_s=6".into(),
        "workload.warmup_s=1".into(),
        "workload.keys=8".into(),
        "workload.set_keys=3".into(),
        "workload.mix={ read = 30, write = 20, cas = 10, add = 40 }".into(),
        "workload.quiet_s=2".into(),
        "faults=[{ at_s = 2.5, fault = { kind = \"isolate_leader\", group = 0 } }, \
                 { at_s = 4.5, fault = { kind = \"heal\" } }]"
            .into(),
    ])
    .unwrap();
    for name in ["single", "raft", "ensemble", "openraft"] {
        let out = quorumlab_workloads::run_named(name, &spec, 7, RunOptions::default()).unwrap();
        let heal = out
            .history
            .iter()
            .find(|e| e.process.is_nemesis() && e.f == "final-heal")
            .unwrap_or_else(|| panic!("{name}: no final heal"))
            .time;
        let final_reads = out
            .history
            .iter()
            .filter(|e| e.time > heal && e.f == "read" && e.kind == EventType::Ok)
            .count();
        assert!(final_reads >= 20, "{name}: {final_reads} final reads");
        let sets = quorumlab_checker::check_sets(&out.history).expect("set keys");
        assert_eq!(sets.keys, 3, "{name}");
        assert!(sets.counts.acknowledged > 50, "{name}: {sets:?}");
        assert_eq!(
            (sets.counts.lost, sets.counts.unexpected),
            (0, 0),
            "{name}: {sets:?}"
        );
        assert_eq!(sets.verdict, "valid", "{name}");
        assert!(sets.convergence_ns.is_some(), "{name}: {sets:?}");
        let lin = quorumlab_checker::check_events(&out.history, &Default::default());
        assert_eq!(
            lin.verdict,
            quorumlab_checker::Verdict::Linearizable,
            "{name}: {:?}",
            lin.violations.first()
        );
    }
}

/// Every protocol, sets and registers, a partition and the final reads: the same seed gives a
/// byte-identical history, another seed another one.
#[test]
fn every_protocol_is_deterministic_with_sets_and_final_reads() {
    let spec = Spec::default_with(&[
        "workload.duration_s=4".into(),
        "workload.warmup_s=1".into(),
        "workload.set_keys=5".into(),
        "workload.mix={ read = 40, write = 20, cas = 5, create = 5, add = 30 }".into(),
        "workload.quiet_s=1".into(),
        "faults=[{ at_s = 2.0, fault = { kind = \"isolate_leader\", group = 0 } }, \
                 { at_s = 2.0, fault = { kind = \"clock_rate\", node = \"n1\", rate = 2.0 } }]"
            .into(),
    ])
    .unwrap();
    for (name, _) in quorumlab_workloads::protocols() {
        let go = |seed| {
            bytes(
                &quorumlab_workloads::run_named(name, &spec, seed, RunOptions::default()).unwrap(),
            )
        };
        let a = go(11);
        assert_eq!(a, go(11), "{name}: same seed, different history");
        assert_ne!(a, go(12), "{name}: different seeds, same history");
    }
}
