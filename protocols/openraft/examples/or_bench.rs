//! Simulated operations per wall second, openraft vs raft on the same spec.
//!
//! `cargo run --release -p quorumlab-openraft --example or_bench [-- CLIENTS [PROTOCOLS [SPEC]]]`
//! (defaults: 50 clients for the loaded spec, `openraft,raft`, both specs `default` and `loaded`)
//!
//! Runs the built-in default spec (with its isolate-leader fault) and a loaded variant (more
//! clients, no think time, no faults) under both protocols, 3 seeds each, and prints virtual
//! seconds, ops, and wall time of the run itself (spec parsing and reports excluded).

use quorumlab_workloads::{run_named, RunOptions, Spec};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let clients: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let protos: Vec<String> = match args.get(2) {
        Some(p) => p.split(',').map(String::from).collect(),
        None => vec!["openraft".into(), "raft".into()],
    };
    let specs = [
        ("default", Spec::default_with(&[]).unwrap()),
        (
            "loaded",
            Spec::default_with(&[
                format!("workload.clients={clients}"),
                "workload.think_ms=0.0".into(),
                "workload.duration_s=10.0".into(),
                "workload.warmup_s=1.0".into(),
            ])
            .map(|mut s| {
                s.faults.clear();
                s
            })
            .unwrap(),
        ),
    ];
    let only = args.get(3).cloned();
    for (name, spec) in specs
        .iter()
        .filter(|(n, _)| only.as_deref().is_none_or(|o| o == *n))
    {
        for p in &protos {
            let mut wall = 0.0;
            let mut ops = 0usize;
            let mut oks = 0usize;
            let mut events = 0u64;
            let mut virt = 0.0;
            for seed in 1..=3 {
                let t = Instant::now();
                let out = run_named(p, spec, seed, RunOptions::default()).unwrap();
                wall += t.elapsed().as_secs_f64();
                ops += out
                    .history
                    .iter()
                    .filter(|e| e.kind.name() == "invoke" && !e.process.is_nemesis())
                    .count();
                oks += out.history.iter().filter(|e| e.kind.name() == "ok").count();
                events += out.sim.events;
                virt += out.end_ns as f64 / 1e9;
            }
            println!(
                "{name:8} {p:9} virt {virt:6.1} s  ops {ops:7} ok {oks:7}  wall {wall:6.2} s  \
                 {:8.0} ops/wall-s  {:6.1} virt-s/wall-s  {:9.0} sim events/wall-s",
                ops as f64 / wall,
                virt / wall,
                events as f64 / wall
            );
        }
    }
}
