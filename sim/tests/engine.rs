//! Semantics of the simulator: determinism, crash/restart, pause, clock rate, partitions.

use proptest::prelude::*;
use quorumlab_sim::{
    driver, ActorProcess, Latency, LinkModel, Message, Network, Seeds, Sim, Stream, MS,
};
use stateright::actor::{Actor, Id, Out};
use std::borrow::Cow;
use std::time::Duration;

/// A test actor: counts pings, echoes them, saves its count, reports to the driver.
#[derive(Clone, Debug)]
struct Echo {
    peers: Vec<Id>,
    /// Timer period in ms (0 = no timer).
    tick_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum M {
    Ping(u64),
    Pong(u64),
    /// Reported to the driver: (what, value).
    Report(&'static str, u64),
}

impl Message for M {
    fn kind(&self) -> &'static str {
        match self {
            M::Ping(_) => "ping",
            M::Pong(_) => "pong",
            M::Report(..) => "report",
        }
    }
}

impl Actor for Echo {
    type Msg = M;
    type Timer = ();
    type State = u64;
    type Storage = u64;
    type Random = ();

    fn on_start(&self, _id: Id, storage: &Option<u64>, o: &mut Out<Self>) -> u64 {
        if self.tick_ms > 0 {
            let d = Duration::from_millis(self.tick_ms);
            o.set_timer((), d..d);
        }
        o.send(driver(), M::Report("start", storage.unwrap_or(0)));
        storage.unwrap_or(0)
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<u64>, src: Id, msg: M, o: &mut Out<Self>) {
        match msg {
            M::Ping(x) => {
                *state.to_mut() += 1;
                o.save(**state);
                o.send(src, M::Pong(x));
                o.send(driver(), M::Report("ping", x));
            }
            M::Pong(x) => o.send(driver(), M::Report("pong", x)),
            M::Report(..) => {}
        }
    }

    fn on_timeout(&self, _id: Id, _state: &mut Cow<u64>, _t: &(), o: &mut Out<Self>) {
        o.send(driver(), M::Report("tick", 0));
        for p in &self.peers {
            o.send(*p, M::Ping(1000));
        }
    }
}

fn sim(n: usize, tick_ms: u64, link: LinkModel, seed: u64) -> Sim<ActorProcess<Echo>> {
    let procs = (0..n)
        .map(|i| {
            ActorProcess::new(Echo {
                peers: (0..n).filter(|&j| j != i).map(Id::from).collect(),
                tick_ms,
            })
        })
        .collect();
    let seeds = Seeds::new(seed);
    let mut s = Sim::new(
        procs,
        Network::uniform(n, link, seeds.rng(Stream::Network)),
        seeds,
    );
    s.start_all();
    s
}

fn constant(ms: f64) -> LinkModel {
    LinkModel {
        latency: Latency::Constant { ms },
        ..LinkModel::default()
    }
}

/// Runs to `t` collecting every report with its time.
fn collect(s: &mut Sim<ActorProcess<Echo>>, t: u64) -> Vec<(u64, usize, M)> {
    let mut out = Vec::new();
    loop {
        let stop = s.run_until(t);
        for (from, m) in s.take_outbox() {
            out.push((s.now(), usize::from(from), m));
        }
        if stop == quorumlab_sim::RunStop::Limit {
            return out;
        }
    }
}

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    let link = LinkModel {
        latency: Latency::Uniform {
            min_ms: 0.5,
            max_ms: 3.0,
        },
        loss: 0.1,
        duplicate: 0.05,
        fifo: false,
    };
    let a = collect(&mut sim(4, 7, link.clone(), 9), 500 * MS);
    let b = collect(&mut sim(4, 7, link.clone(), 9), 500 * MS);
    let c = collect(&mut sim(4, 7, link, 10), 500 * MS);
    assert!(a.len() > 20, "{}", a.len());
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn constant_latency_round_trip_is_exact() {
    let mut s = sim(2, 5, constant(2.0), 1);
    let r = collect(&mut s, 20 * MS);
    let pongs: Vec<u64> = r
        .iter()
        .filter(|(_, _, m)| matches!(m, M::Report("pong", _)))
        .map(|(t, _, _)| *t)
        .collect();
    // tick at 5 ms, ping arrives at 7 ms, pong back at 9 ms.
    assert_eq!(pongs[0], 9 * MS);
}

#[test]
fn crash_loses_volatile_state_and_restart_restores_storage() {
    let mut s = sim(2, 0, constant(1.0), 1);
    collect(&mut s, 0);
    s.inject(1, M::Ping(1));
    s.inject(1, M::Ping(2));
    collect(&mut s, MS);
    assert_eq!(s.process(1).state(), Some(&2));
    s.crash(1, false);
    assert!(!s.is_up(1));
    assert_eq!(s.process(1).state(), None);
    s.restart(1);
    let r = collect(&mut s, 2 * MS);
    assert!(r
        .iter()
        .any(|(_, n, m)| *n == 1 && *m == M::Report("start", 2)));
    assert_eq!(s.process(1).state(), Some(&2));
}

#[test]
fn crash_losing_unsynced_write_restores_previous_save() {
    let mut s = sim(1, 0, constant(1.0), 1);
    collect(&mut s, 0);
    for i in 0..3 {
        s.inject(0, M::Ping(i));
    }
    collect(&mut s, MS);
    assert_eq!(s.process(0).storage(), Some(&3));
    s.crash(0, true);
    s.restart(0);
    assert_eq!(s.process(0).state(), Some(&2), "the last save was lost");
}

#[test]
fn messages_to_a_down_node_are_dropped() {
    let mut s = sim(2, 10, constant(1.0), 1);
    s.crash(1, false);
    let r = collect(&mut s, 35 * MS);
    // Node 0 ticks at 10, 20, 30 ms and pings node 1, which is down: no pongs, drops counted.
    assert!(!r.iter().any(|(_, _, m)| matches!(m, M::Report("pong", _))));
    assert_eq!(
        s.net_stats().total.dropped,
        1,
        "the timer fires once; its ping dies on arrival"
    );
}

#[test]
fn pause_delays_messages_and_timers() {
    let mut s = sim(2, 10, constant(1.0), 1);
    s.pause(1, 50 * MS);
    let r = collect(&mut s, 100 * MS);
    // Node 1's own tick (due at 10 ms) fires late, at the end of the pause.
    let tick1: Vec<u64> = r
        .iter()
        .filter(|(_, n, m)| *n == 1 && *m == M::Report("tick", 0))
        .map(|(t, _, _)| *t)
        .collect();
    assert_eq!(tick1[0], 50 * MS);
    // Node 0's ping (sent at 10 ms, arriving at 11 ms) waits in node 1's buffer until 50 ms.
    let ping1: Vec<u64> = r
        .iter()
        .filter(|(_, n, m)| *n == 1 && matches!(m, M::Report("ping", _)))
        .map(|(t, _, _)| *t)
        .collect();
    assert_eq!(ping1[0], 50 * MS);
}

#[test]
fn fast_clock_fires_timers_early() {
    let mut s = sim(1, 30, constant(1.0), 1);
    s.set_clock_rate(0, 1.5);
    let r = collect(&mut s, 25 * MS);
    let t: Vec<u64> = r
        .iter()
        .filter(|(_, _, m)| *m == M::Report("tick", 0))
        .map(|(t, _, _)| *t)
        .collect();
    assert_eq!(
        t,
        vec![20 * MS],
        "30 ms of local time pass in 20 ms of real time"
    );
    assert_eq!(s.local_now(0), (25.0 * 1.5 * MS as f64) as u64);
}

#[test]
fn rate_change_rearms_pending_timers() {
    let mut s = sim(1, 100, constant(1.0), 1);
    collect(&mut s, 40 * MS); // 40 ms local elapsed, 60 ms left
    s.set_clock_rate(0, 2.0); // remaining 60 ms local = 30 ms real
    let r = collect(&mut s, 200 * MS);
    let t = r
        .iter()
        .find(|(_, _, m)| *m == M::Report("tick", 0))
        .unwrap()
        .0;
    assert_eq!(t, 70 * MS);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// No message crosses a cut: with random cuts in place, every delivery is on an uncut link.
    #[test]
    fn no_message_crosses_a_cut(seed in 0u64..1000, cuts in proptest::collection::vec((0usize..5, 0usize..5), 0..12)) {
        let mut s = sim(5, 3, constant(0.5), seed);
        s.log_messages(0, u64::MAX);
        for &(a, b) in &cuts {
            s.network_mut().cut(a, b, 0);
        }
        collect(&mut s, 100 * MS);
        for m in s.message_log() {
            if m.delivered.is_some() {
                prop_assert!(!cuts.contains(&(m.from, m.to)), "{m:?} crossed a cut");
            }
        }
        // Messages in flight when a cut appears die too.
        let t = s.now();
        s.network_mut().cut(0, 1, t);
        s.network_mut().cut(1, 0, t);
        s.network_mut().heal_all();
        collect(&mut s, t + 10 * MS);
        let late = s.message_log().iter().filter(|m| (m.from, m.to) == (0, 1) && m.sent < t && m.delivered.is_some_and(|d| d > t)).count();
        prop_assert_eq!(late, 0);
    }
}

/// An actor that asks for a random choice at start and reports what it got.
#[derive(Clone, Debug)]
struct Chooser;

impl Actor for Chooser {
    type Msg = M;
    type Timer = ();
    type State = Option<u64>;
    type Storage = ();
    type Random = u64;

    fn on_start(&self, _id: Id, _s: &Option<()>, o: &mut Out<Self>) -> Option<u64> {
        o.choose_random("pick", vec![10, 20, 30]);
        None
    }

    fn on_random(&self, _id: Id, state: &mut Cow<Option<u64>>, r: &u64, o: &mut Out<Self>) {
        *state.to_mut() = Some(*r);
        o.send(driver(), M::Report("random", *r));
    }
}

#[test]
fn choose_random_resolves_with_the_node_stream_at_the_same_instant() {
    let picks: Vec<u64> = (0..40)
        .map(|seed| {
            let seeds = Seeds::new(seed);
            let mut s = Sim::new(
                vec![ActorProcess::new(Chooser)],
                Network::uniform(1, constant(1.0), seeds.rng(Stream::Network)),
                seeds,
            );
            s.start_all();
            s.run_until(0);
            let out = s.take_outbox();
            assert_eq!(s.now(), 0);
            match out.as_slice() {
                [(_, M::Report("random", v))] => *v,
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert!(picks.iter().all(|p| [10, 20, 30].contains(p)));
    for v in [10, 20, 30] {
        assert!(picks.contains(&v), "{v} never chosen in 40 seeds");
    }
}
