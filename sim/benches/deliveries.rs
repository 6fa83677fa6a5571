//! Simulator throughput: message deliveries per wall second for an all-to-all echo cluster
//! (every actor keeps one ping in flight to every other actor).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use quorumlab_sim::{ActorProcess, Latency, LinkModel, Message, Network, Seeds, Sim, Stream, MS};
use stateright::actor::{Actor, Id, Out};
use std::borrow::Cow;

#[derive(Clone)]
struct Echo {
    n: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum M {
    Ping(u32),
    Pong(u32),
}

impl Message for M {
    fn kind(&self) -> &'static str {
        match self {
            M::Ping(_) => "ping",
            M::Pong(_) => "pong",
        }
    }
}

impl std::fmt::Debug for Echo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Echo")
    }
}

impl Actor for Echo {
    type Msg = M;
    type Timer = ();
    type State = u64;
    type Storage = ();
    type Random = ();

    fn on_start(&self, id: Id, _s: &Option<()>, o: &mut Out<Self>) -> u64 {
        for j in 0..self.n {
            if Id::from(j) != id {
                o.send(Id::from(j), M::Ping(0));
            }
        }
        0
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<u64>, src: Id, msg: M, o: &mut Out<Self>) {
        *state.to_mut() += 1;
        match msg {
            M::Ping(x) => o.send(src, M::Pong(x)),
            M::Pong(x) => o.send(src, M::Ping(x + 1)),
        }
    }
}

/// Runs an `n`-node echo cluster for `ms` of virtual time; returns the deliveries.
fn echo(n: usize, ms: u64) -> u64 {
    let seeds = Seeds::new(1);
    let link = LinkModel {
        latency: Latency::Uniform {
            min_ms: 0.2,
            max_ms: 1.0,
        },
        ..LinkModel::default()
    };
    let procs = (0..n).map(|_| ActorProcess::new(Echo { n })).collect();
    let mut sim = Sim::new(
        procs,
        Network::uniform(n, link, seeds.rng(Stream::Network)),
        seeds,
    );
    sim.start_all();
    sim.run_until(ms * MS);
    sim.net_stats().total.delivered
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim");
    for n in [5usize, 16] {
        let deliveries = echo(n, 200);
        g.throughput(Throughput::Elements(deliveries));
        g.bench_function(format!("echo_all_to_all_{n}_nodes_200ms"), |b| {
            b.iter(|| echo(n, 200))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
