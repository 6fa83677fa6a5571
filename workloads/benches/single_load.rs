//! Simulator throughput with the full driver: the `single` protocol under a closed-loop load of
//! 200 clients without think time (history recording included).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use quorumlab_single::Single;
use quorumlab_workloads::{run, RunOptions, Spec};

fn spec() -> Spec {
    Spec::default_with(&[
        "workload.clients=200".into(),
        "workload.think_ms=0".into(),
        "workload.warmup_s=0".into(),
        "workload.duration_s=1".into(),
        "faults=[]".into(),
    ])
    .expect("spec")
}

fn bench(c: &mut Criterion) {
    let spec = spec();
    let once = run::<Single>(&spec, &spec.protocol.single, 1, RunOptions::default()).unwrap();
    let mut g = c.benchmark_group("driver");
    g.sample_size(10);
    g.throughput(Throughput::Elements(once.net.total.delivered));
    g.bench_function("single_200_clients_1s_deliveries", |b| {
        b.iter(|| run::<Single>(&spec, &spec.protocol.single, 1, RunOptions::default()).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
