//! The workload driver: runs one experiment for one protocol in the simulator and records the
//! history.
//!
//! Jepsen process semantics: each client has at most one op outstanding; after an `info` it
//! continues under a fresh process id (`client + k × clients`), since the old process may still
//! have an op in flight as far as the checker knows.

use crate::generator::OpGen;
use crate::network::build_network;
use crate::spec::{Fault, Mode, NemesisGen, NemesisKind, Spec};
use quorumlab_kv::history::{Event, EventType};
use quorumlab_kv::{ClientConfig, KvProcess, KvProtocol, Layout, Outcome, Request};
use quorumlab_sim::{MsgRecord, Nanos, NetStats, RunStop, Seeds, Sim, SimStats, Stream, MS, SEC};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::json;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

/// A fault as it was applied.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FaultRecord {
    pub time_ns: Nanos,
    pub kind: String,
    pub description: String,
    /// Endpoints the fault acted on (the isolated or crashed nodes, the minority side...).
    pub nodes: Vec<usize>,
    /// Whether this event ends faults (heal, restart, clock back to 1, end of pause).
    pub ends: bool,
}

/// A change of leader of a group, as the driver observed it (sampled every 10 ms and at
/// every fault).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LeaderChange {
    pub time_ns: Nanos,
    pub group: usize,
    pub leader: Option<usize>,
    pub term: u64,
}

/// Everything a run produced.
#[derive(Clone, Debug)]
pub struct RunOutput {
    pub protocol: String,
    pub seed: u64,
    pub history: Vec<Event>,
    /// Virtual time at the end of the run.
    pub end_ns: Nanos,
    /// The measured window (after warm-up).
    pub measure_from_ns: Nanos,
    pub measure_to_ns: Nanos,
    /// Message accounting over the whole run.
    pub net: NetStats,
    /// Message accounting over the measured window only.
    pub net_window: NetStats,
    pub sim: SimStats,
    pub faults: Vec<FaultRecord>,
    pub leaders: Vec<LeaderChange>,
    pub messages: Vec<MsgRecord>,
    pub layout: Layout,
    /// The group of each key (index = key number).
    pub key_groups: Vec<usize>,
    /// Open-loop arrivals dropped because every client was busy.
    pub skipped_arrivals: u64,
    /// The protocol's own counters at the end of the run ([`KvProcess::counters`]).
    pub protocol_counters: BTreeMap<String, u64>,
}

/// Sums processes' [`KvProcess::counters`] (`max_*` counters take the maximum).
pub fn collect_counters<'a, P: KvProcess + 'a>(
    procs: impl IntoIterator<Item = &'a P>,
) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for p in procs {
        for (name, v) in p.counters() {
            let slot = out.entry(name.to_string()).or_insert(0);
            *slot = if name.starts_with("max_") {
                (*slot).max(v)
            } else {
                *slot + v
            };
        }
    }
    out
}

/// Knobs that do not change what happens in a run.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Called now and then with the fraction of virtual time done.
    pub progress: Option<&'a mut dyn FnMut(f64)>,
    /// Record every message sent in this virtual-time window (for sequence diagrams). `None`:
    /// the 200 ms around the first fault.
    pub message_window: Option<(Nanos, Nanos)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Invoke(usize),
    Arrival,
    Fault(usize),
    GenStart(usize),
    GenEnd {
        gen: usize,
        target: usize,
    },
    /// One round of final reads (round number).
    FinalRound(u64),
    Sample,
    MeasureStart,
    MeasureEnd,
}

struct ClientSlot {
    process: u64,
    outstanding: Option<(Request, Nanos)>,
}

/// What a `[[nemesis]]` generator injects when it fires: the fault, and the node it picked (for
/// [`nemesis_end`]). Shared by the simulator's driver and real mode, so both draw the same
/// faults from the same random stream.
pub fn nemesis_start<R: Rng>(
    gen: &NemesisGen,
    nodes: usize,
    groups: usize,
    rng: &mut R,
) -> (Fault, usize) {
    let pick = |rng: &mut R| rng.random_range(0..nodes);
    match gen.kind {
        NemesisKind::Halves => (Fault::Halves, 0),
        NemesisKind::Bridge => (Fault::Bridge, 0),
        NemesisKind::Ring => (Fault::Ring, 0),
        NemesisKind::Isolate => {
            let i = pick(rng);
            (
                Fault::Isolate {
                    node: format!("n{i}"),
                },
                i,
            )
        }
        NemesisKind::IsolateLeader => {
            let group = rng.random_range(0..groups);
            (Fault::IsolateLeader { group }, 0)
        }
        NemesisKind::Crash | NemesisKind::CrashLoseUnsynced => {
            let i = pick(rng);
            (
                Fault::Crash {
                    node: format!("n{i}"),
                    lose_unsynced: gen.kind == NemesisKind::CrashLoseUnsynced,
                },
                i,
            )
        }
        NemesisKind::Pause => {
            let i = pick(rng);
            (
                Fault::Pause {
                    node: format!("n{i}"),
                    for_ms: gen.duration_s * 1000.0,
                },
                i,
            )
        }
        NemesisKind::Clock => {
            let i = pick(rng);
            (
                Fault::ClockRate {
                    node: format!("n{i}"),
                    rate: gen.rate,
                },
                i,
            )
        }
    }
}

/// What ends a generator's fault `duration_s` after it fired (`None`: it ends by itself).
pub fn nemesis_end(gen: &NemesisGen, target: usize) -> Option<Fault> {
    match gen.kind {
        NemesisKind::Halves
        | NemesisKind::Bridge
        | NemesisKind::Ring
        | NemesisKind::Isolate
        | NemesisKind::IsolateLeader => Some(Fault::Heal),
        NemesisKind::Crash | NemesisKind::CrashLoseUnsynced => Some(Fault::Restart {
            node: format!("n{target}"),
        }),
        NemesisKind::Pause => None, // a pause ends by itself
        NemesisKind::Clock => Some(Fault::ClockRate {
            node: format!("n{target}"),
            rate: 1.0,
        }),
    }
}

/// Jepsen's bridge over nodes in `order`: two halves that cannot talk to each other, and the
/// middle node that talks to both. Returns the directed links to cut.
pub fn bridge_cuts(order: &[usize]) -> Vec<(usize, usize)> {
    let mid = order.len() / 2;
    let (left, right) = (&order[..mid], &order[mid + 1..]);
    let mut cuts = Vec::new();
    for &a in left {
        for &b in right {
            cuts.push((a, b));
            cuts.push((b, a));
        }
    }
    cuts
}

/// Jepsen's majorities ring over nodes in `order`: each node keeps links to ring neighbours
/// within distance d = ⌈⌊n/2⌋/2⌉, so it sees 2d+1 ≥ a majority, and no two nodes see the same
/// majority. Returns the directed links to cut, and d.
pub fn ring_cuts(order: &[usize]) -> (Vec<(usize, usize)>, usize) {
    let n = order.len();
    let d = (n / 2).div_ceil(2).max(1);
    let mut cuts = Vec::new();
    for i in 0..n {
        for j in 0..n {
            let dist = (i + n - j) % n;
            if dist.min(n - dist) > d {
                cuts.push((order[i], order[j]));
            }
        }
    }
    (cuts, d)
}

/// Milliseconds (f64, from a spec) to virtual nanoseconds.
pub fn ms(x: f64) -> Nanos {
    (x * MS as f64).round().max(0.0) as Nanos
}

fn secs(x: f64) -> Nanos {
    (x * SEC as f64).round().max(0.0) as Nanos
}

const SAMPLE_EVERY: Nanos = 10 * MS;

struct Driver<'s, P: KvProtocol> {
    spec: &'s Spec,
    sim: Sim<P::Proc>,
    layout: Layout,
    gen: OpGen,
    wrng: ChaCha8Rng,
    frng: ChaCha8Rng,
    clients: Vec<ClientSlot>,
    by_req: BTreeMap<u64, usize>,
    history: Vec<Event>,
    queue: BinaryHeap<Reverse<(Nanos, u64, Action)>>,
    seq: u64,
    faults: Vec<FaultRecord>,
    leaders: Vec<LeaderChange>,
    current_leader: Vec<(Option<usize>, u64)>,
    issuing: bool,
    skipped: u64,
    net_at_start: NetStats,
    net_window: Option<NetStats>,
    /// Set when the final phase starts: its end.
    final_until: Option<Nanos>,
}

impl<P: KvProtocol> Driver<'_, P> {
    fn at(&mut self, t: Nanos, a: Action) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, a)));
    }

    fn record(&mut self, mut e: Event) {
        e.index = self.history.len() as u64;
        self.history.push(e);
    }

    fn invoke(&mut self, c: usize) {
        if !self.issuing || self.clients[c].outstanding.is_some() {
            return;
        }
        let req = self.gen.next_for(c, &mut self.wrng);
        self.send_request(c, req);
    }

    fn send_request(&mut self, c: usize, req: Request) {
        let now = self.sim.now();
        let process = self.clients[c].process;
        self.record(Event::invoke(now, process, &req));
        self.clients[c].outstanding = Some((req, now));
        self.by_req.insert(req.id, c);
        let endpoint = self.layout.nodes + c;
        self.sim.inject(endpoint, P::Proc::invoke_msg(req));
    }

    fn complete(&mut self, req: Request, outcome: Outcome) {
        let Some(c) = self.by_req.remove(&req.id) else {
            return;
        };
        let now = self.sim.now();
        let process = self.clients[c].process;
        self.record(Event::complete(now, process, &req, &outcome));
        self.gen.observe(&req, &outcome);
        self.clients[c].outstanding = None;
        if matches!(outcome, Outcome::Info) {
            self.clients[c].process += self.clients.len() as u64;
        }
        if self.spec.workload.mode == Mode::Closed && self.final_until.is_none() {
            let t = now + ms(self.spec.workload.think_ms);
            self.at(t, Action::Invoke(c));
        }
    }

    /// The end of the measured phase: heal everything and start the final reads.
    fn start_final_phase(&mut self) {
        let now = self.sim.now();
        let w = &self.spec.workload;
        self.final_until = Some(now + secs(w.quiet_s));
        self.sim.network_mut().heal_all();
        let mut restarted = Vec::new();
        for i in 0..self.layout.nodes {
            if !self.sim.is_up(i) {
                self.sim.restart(i);
                restarted.push(i);
            }
            if self.sim.clock_rate(i) != 1.0 {
                self.sim.set_clock_rate(i, 1.0);
            }
        }
        let d = format!(
            "final heal: all links healed, clocks at 1x{}; final reads for {} s",
            if restarted.is_empty() {
                String::new()
            } else {
                format!(
                    ", restarted {}",
                    restarted
                        .iter()
                        .map(|&i| self.node_name(i))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            w.quiet_s
        );
        self.log_fault("final-heal", d, restarted, true);
        self.at(now, Action::FinalRound(0));
    }

    /// Final reads, round `r`: every idle client reads one set key, round-robin, so that over
    /// the rounds every client (and so every coordinator a client uses) reads every key.
    fn final_round(&mut self, r: u64) {
        let sets = u64::from(self.spec.workload.set_key_count());
        let n = self.clients.len() as u64;
        for c in 0..self.clients.len() {
            if self.clients[c].outstanding.is_some() {
                continue;
            }
            let key = quorumlab_kv::Key(((r * n + c as u64) % sets) as u32);
            let req = self.gen.read_of(key);
            self.send_request(c, req);
        }
        let now = self.sim.now();
        let next = now + ms(self.spec.workload.final_read_every_ms);
        if self.final_until.is_some_and(|end| next <= end) {
            self.at(next, Action::FinalRound(r + 1));
        }
    }

    /// The current leader of each group: among up servers that claim it, the highest term.
    fn observe_leaders(&mut self) -> Vec<(Option<usize>, u64)> {
        let mut best: Vec<(Option<usize>, u64)> = vec![(None, 0); self.layout.groups.len()];
        for i in 0..self.layout.nodes {
            if !self.sim.is_up(i) {
                continue;
            }
            for l in self.sim.process(i).leadership() {
                if l.group < best.len() && (best[l.group].0.is_none() || l.term > best[l.group].1) {
                    best[l.group] = (Some(i), l.term);
                }
            }
        }
        let now = self.sim.now();
        for (g, &(leader, term)) in best.iter().enumerate() {
            if self.current_leader[g] != (leader, term) {
                self.current_leader[g] = (leader, term);
                self.leaders.push(LeaderChange {
                    time_ns: now,
                    group: g,
                    leader,
                    term,
                });
            }
        }
        best
    }

    fn node_name(&self, i: usize) -> String {
        if i < self.layout.nodes {
            format!("n{i}")
        } else {
            format!("c{}", i - self.layout.nodes)
        }
    }

    /// Resolves `n3`, `c1`, `leader`, `leader:G` to an endpoint.
    fn target(&mut self, name: &str) -> Option<usize> {
        if name == "leader" || name.starts_with("leader:") {
            let g = name
                .strip_prefix("leader:")
                .and_then(|g| g.parse().ok())
                .unwrap_or(0);
            return self.observe_leaders().get(g).and_then(|x| x.0);
        }
        self.spec.endpoint(name)
    }

    fn isolate(&mut self, node: usize) {
        let now = self.sim.now();
        let net = self.sim.network_mut();
        for j in 0..self.layout.nodes {
            if j != node {
                net.cut(node, j, now);
                net.cut(j, node, now);
            }
        }
    }

    fn servers_shuffled(&mut self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.layout.nodes).collect();
        v.shuffle(&mut self.frng);
        v
    }

    fn log_fault(&mut self, kind: &str, description: String, nodes: Vec<usize>, ends: bool) {
        let now = self.sim.now();
        self.record(Event::nemesis(
            now,
            EventType::Info,
            kind,
            json!({ "description": description, "nodes": nodes.iter().map(|&i| self.node_name(i)).collect::<Vec<_>>() }),
        ));
        self.faults.push(FaultRecord {
            time_ns: now,
            kind: kind.into(),
            description,
            nodes,
            ends,
        });
    }

    fn apply(&mut self, fault: &Fault) {
        let now = self.sim.now();
        let kind = fault.name();
        match fault {
            Fault::Partition { groups } => {
                let comps: Vec<Vec<usize>> = groups
                    .iter()
                    .map(|g| g.iter().filter_map(|x| self.spec.endpoint(x)).collect())
                    .collect();
                self.sim.network_mut().partition(&comps, now);
                let desc = format!("partition {groups:?}");
                let minority = comps
                    .iter()
                    .min_by_key(|c| c.len())
                    .cloned()
                    .unwrap_or_default();
                self.log_fault(kind, desc, minority, false);
            }
            Fault::OneWay { from, to } => {
                let (f, t): (Vec<usize>, Vec<usize>) = (
                    from.iter().filter_map(|x| self.spec.endpoint(x)).collect(),
                    to.iter().filter_map(|x| self.spec.endpoint(x)).collect(),
                );
                for &a in &f {
                    for &b in &t {
                        self.sim.network_mut().cut(a, b, now);
                    }
                }
                self.log_fault(kind, format!("cut {from:?} -> {to:?}"), f, false);
            }
            Fault::Isolate { node } => match self.target(node) {
                Some(i) => {
                    self.isolate(i);
                    self.log_fault(
                        kind,
                        format!("isolate {}", self.node_name(i)),
                        vec![i],
                        false,
                    );
                }
                None => self.log_fault(
                    kind,
                    format!("isolate {node}: no such node now"),
                    vec![],
                    false,
                ),
            },
            Fault::IsolateLeader { group } => {
                let leaders = self.observe_leaders();
                match leaders.get(*group).and_then(|x| x.0) {
                    Some(i) => {
                        self.isolate(i);
                        let d = format!("isolate leader of group {group}: {}", self.node_name(i));
                        self.log_fault(kind, d, vec![i], false);
                    }
                    None => {
                        // A leaderless protocol (or a group without a leader right now): isolate
                        // the first node of the group's preference list instead.
                        let i = usize::from(self.layout.groups[*group][0]);
                        self.isolate(i);
                        let d = format!(
                            "group {group} has no leader; isolate its first replica {}",
                            self.node_name(i)
                        );
                        self.log_fault(kind, d, vec![i], false);
                    }
                }
            }
            Fault::Halves => {
                let v = self.servers_shuffled();
                let (minority, majority) = v.split_at(v.len() / 2);
                let comps = vec![minority.to_vec(), majority.to_vec()];
                self.sim.network_mut().partition(&comps, now);
                let d = format!(
                    "halves: minority {:?}",
                    minority
                        .iter()
                        .map(|&i| self.node_name(i))
                        .collect::<Vec<_>>()
                );
                self.log_fault(kind, d, minority.to_vec(), false);
            }
            Fault::Bridge => {
                let v = self.servers_shuffled();
                for (a, b) in bridge_cuts(&v) {
                    self.sim.network_mut().cut(a, b, now);
                }
                let mid = v[v.len() / 2];
                let d = format!("bridge through {}", self.node_name(mid));
                self.log_fault(kind, d, vec![mid], false);
            }
            Fault::Ring => {
                let v = self.servers_shuffled();
                let (cuts, d) = ring_cuts(&v);
                for (a, b) in cuts {
                    self.sim.network_mut().cut(a, b, now);
                }
                let order: Vec<String> = v.iter().map(|&i| self.node_name(i)).collect();
                self.log_fault(
                    kind,
                    format!("majorities ring {order:?}, each sees ±{d}"),
                    vec![],
                    false,
                );
            }
            Fault::Heal => {
                self.sim.network_mut().heal_all();
                self.log_fault(kind, "heal all links".into(), vec![], true);
            }
            Fault::Crash {
                node,
                lose_unsynced,
            } => match self.target(node) {
                Some(i) => {
                    self.sim.crash(i, *lose_unsynced);
                    let d = format!(
                        "crash {}{}",
                        self.node_name(i),
                        if *lose_unsynced {
                            " (losing un-synced writes)"
                        } else {
                            ""
                        }
                    );
                    self.log_fault(kind, d, vec![i], false);
                }
                None => self.log_fault(
                    kind,
                    format!("crash {node}: no such node now"),
                    vec![],
                    false,
                ),
            },
            Fault::Restart { node } => match self.target(node) {
                Some(i) => {
                    self.sim.restart(i);
                    self.log_fault(
                        kind,
                        format!("restart {}", self.node_name(i)),
                        vec![i],
                        true,
                    );
                }
                None => self.log_fault(kind, format!("restart {node}: no such node"), vec![], true),
            },
            Fault::ClockRate { node, rate } => match self.target(node) {
                Some(i) => {
                    self.sim.set_clock_rate(i, *rate);
                    let d = format!("clock of {} runs at {rate}x", self.node_name(i));
                    self.log_fault(kind, d, vec![i], *rate == 1.0);
                }
                None => self.log_fault(
                    kind,
                    format!("clock {node}: no such node now"),
                    vec![],
                    false,
                ),
            },
            Fault::Pause { node, for_ms } => match self.target(node) {
                Some(i) => {
                    self.sim.pause(i, ms(*for_ms));
                    let d = format!("pause {} for {for_ms} ms", self.node_name(i));
                    self.log_fault(kind, d, vec![i], false);
                }
                None => self.log_fault(
                    kind,
                    format!("pause {node}: no such node now"),
                    vec![],
                    false,
                ),
            },
        }
        self.observe_leaders();
    }

    fn gen_start(&mut self, g: usize) {
        let gen = self.spec.nemesis[g].clone();
        let now = self.sim.now();
        let groups = self.layout.groups.len();
        let (fault, target) = nemesis_start(&gen, self.layout.nodes, groups, &mut self.frng);
        self.apply(&fault);
        self.at(
            now + secs(gen.duration_s),
            Action::GenEnd { gen: g, target },
        );
        let next = now + secs(gen.every_s);
        if gen.stop_s.is_none_or(|s| next <= secs(s)) {
            self.at(next, Action::GenStart(g));
        }
    }

    fn gen_end(&mut self, g: usize, target: usize) {
        if let Some(f) = nemesis_end(&self.spec.nemesis[g], target) {
            self.apply(&f);
        }
    }

    fn idle_client(&mut self) -> Option<usize> {
        let idle: Vec<usize> = (0..self.clients.len())
            .filter(|&c| self.clients[c].outstanding.is_none())
            .collect();
        if idle.is_empty() {
            None
        } else {
            Some(idle[self.wrng.random_range(0..idle.len())])
        }
    }

    fn exp_gap(&mut self) -> Nanos {
        let u: f64 = 1.0 - self.wrng.random::<f64>();
        secs(-u.ln() / self.spec.workload.rate)
    }

    fn drain_outbox(&mut self) {
        for (_, msg) in self.sim.take_outbox() {
            if let Some((req, outcome)) = P::Proc::completion(msg) {
                self.complete(req, outcome);
            }
        }
    }
}

/// Runs `spec` under protocol `P` with `params` and `seed`.
pub fn run<P: KvProtocol>(
    spec: &Spec,
    params: &P::Params,
    seed: u64,
    mut opts: RunOptions<'_>,
) -> Result<RunOutput, String> {
    let w = &spec.workload;
    let c = &spec.cluster;
    let layout = Layout::new(c.nodes, w.clients, c.replicas, c.groups, w.keys)?;
    P::check(params, &layout)?;
    let seeds = Seeds::new(seed);
    let client = ClientConfig {
        timeout: Duration::from_nanos(ms(w.timeout_ms)),
    };
    let procs = P::build(&layout, params, &client);
    if procs.len() != layout.endpoints() {
        return Err(format!(
            "protocol {} built {} processes for {} endpoints",
            P::NAME,
            procs.len(),
            layout.endpoints()
        ));
    }
    let mut sim = Sim::new(procs, build_network(spec, &seeds), seeds);
    let first_fault = spec
        .faults
        .iter()
        .map(|f| secs(f.at_s))
        .chain(spec.nemesis.iter().map(|g| secs(g.start_s + g.every_s)))
        .min();
    match opts.message_window {
        Some((a, b)) => sim.log_messages(a, b),
        None => {
            if let Some(t) = first_fault {
                sim.log_messages(t.saturating_sub(100 * MS), t + 100 * MS);
            }
        }
    }
    sim.start_all();
    let measure_from = secs(w.warmup_s);
    let measure_to = measure_from + secs(w.duration_s);
    let key_groups = (0..w.keys)
        .map(|k| layout.group_of(quorumlab_kv::Key(k)))
        .collect();
    let mut d = Driver::<P> {
        spec,
        sim,
        gen: OpGen::new(w),
        wrng: seeds.rng(Stream::Workload),
        frng: seeds.rng(Stream::Faults),
        clients: (0..w.clients)
            .map(|i| ClientSlot {
                process: i as u64,
                outstanding: None,
            })
            .collect(),
        by_req: BTreeMap::new(),
        history: Vec::new(),
        queue: BinaryHeap::new(),
        seq: 0,
        faults: Vec::new(),
        leaders: Vec::new(),
        current_leader: vec![(None, 0); layout.groups.len()],
        layout,
        issuing: true,
        skipped: 0,
        net_at_start: NetStats::default(),
        net_window: None,
        final_until: None,
    };
    match w.mode {
        Mode::Closed => {
            for c in 0..w.clients {
                d.at(0, Action::Invoke(c));
            }
        }
        Mode::Open => {
            let g = d.exp_gap();
            d.at(g, Action::Arrival);
        }
    }
    for (i, f) in spec.faults.iter().enumerate() {
        d.at(secs(f.at_s), Action::Fault(i));
    }
    for (i, g) in spec.nemesis.iter().enumerate() {
        d.at(secs(g.start_s + g.every_s), Action::GenStart(i));
    }
    d.at(0, Action::Sample);
    d.at(measure_from, Action::MeasureStart);
    d.at(measure_to, Action::MeasureEnd);

    // Main loop: run the simulator up to the next driver action; react to completions at once.
    let final_phase = if w.final_reads_on() {
        secs(w.quiet_s) + ms(w.timeout_ms) * 2 + SEC
    } else {
        0
    };
    let hard_stop = measure_to + ms(w.timeout_ms) * 2 + SEC + final_phase;
    let mut last_progress = 0;
    loop {
        let next = d
            .queue
            .peek()
            .map(|Reverse((t, _, _))| *t)
            .unwrap_or(Nanos::MAX);
        let limit = next.min(hard_stop);
        if d.sim.run_until(limit) == RunStop::Outbox {
            d.drain_outbox();
            continue;
        }
        let now = d.sim.now();
        if now >= measure_to && d.issuing {
            d.issuing = false;
        }
        let idle = d.clients.iter().all(|c| c.outstanding.is_none());
        if !d.issuing && idle && w.final_reads_on() && d.final_until.is_none() {
            d.start_final_phase();
            continue;
        }
        let final_done = d.final_until.is_none_or(|end| now >= end);
        if !d.issuing && idle && final_done {
            break;
        }
        if now >= hard_stop {
            break;
        }
        if let Some(p) = opts.progress.as_deref_mut() {
            if now - last_progress >= SEC / 2 {
                last_progress = now;
                p((now as f64 / measure_to as f64).min(1.0));
            }
        }
        while let Some(Reverse((t, _, a))) = d.queue.peek().copied() {
            if t > now {
                break;
            }
            d.queue.pop();
            match a {
                Action::Invoke(c) => d.invoke(c),
                Action::Arrival => {
                    if d.issuing {
                        match d.idle_client() {
                            Some(c) => d.invoke(c),
                            None => d.skipped += 1,
                        }
                        let g = d.exp_gap();
                        d.at(now + g, Action::Arrival);
                    }
                }
                // No new faults once the final phase has healed everything.
                Action::Fault(_) | Action::GenStart(_) if d.final_until.is_some() => {}
                Action::Fault(i) => {
                    let f = spec.faults[i].fault.clone();
                    d.apply(&f);
                }
                Action::GenStart(g) => d.gen_start(g),
                Action::FinalRound(r) => d.final_round(r),
                Action::GenEnd { gen, target } => d.gen_end(gen, target),
                Action::MeasureStart => d.net_at_start = d.sim.net_stats().clone(),
                Action::MeasureEnd => {
                    d.net_window = Some(d.sim.net_stats().since(&d.net_at_start));
                }
                Action::Sample => {
                    d.observe_leaders();
                    d.at(now + SAMPLE_EVERY, Action::Sample);
                }
            }
        }
    }
    if let Some(p) = opts.progress.as_deref_mut() {
        p(1.0);
    }
    let end_ns = d.sim.now();
    Ok(RunOutput {
        protocol: P::NAME.to_string(),
        seed,
        history: d.history,
        end_ns,
        measure_from_ns: measure_from,
        measure_to_ns: measure_to,
        net: d.sim.net_stats().clone(),
        net_window: d
            .net_window
            .unwrap_or_else(|| d.sim.net_stats().since(&d.net_at_start)),
        sim: d.sim.stats().clone(),
        faults: d.faults,
        leaders: d.leaders,
        messages: d.sim.message_log().to_vec(),
        layout: d.layout,
        key_groups,
        skipped_arrivals: d.skipped,
        protocol_counters: collect_counters(d.sim.processes()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn visible(n: usize, cuts: &[(usize, usize)]) -> Vec<BTreeSet<usize>> {
        (0..n)
            .map(|a| (0..n).filter(|&b| !cuts.contains(&(a, b))).collect())
            .collect()
    }

    #[test]
    fn majorities_ring_gives_every_node_a_different_majority() {
        for n in [3usize, 5, 7, 9] {
            let order: Vec<usize> = (0..n).rev().collect();
            let (cuts, _) = ring_cuts(&order);
            let views = visible(n, &cuts);
            for v in &views {
                assert!(v.len() > n / 2, "n={n}: a node sees only {v:?}");
            }
            if n >= 5 {
                let distinct: BTreeSet<_> = views.iter().collect();
                assert_eq!(distinct.len(), n, "n={n}: majorities must differ");
                assert!(
                    views.iter().all(|v| v.len() < n),
                    "n={n}: nobody sees everyone"
                );
            }
            // symmetric
            for &(a, b) in &cuts {
                assert!(cuts.contains(&(b, a)));
            }
        }
    }

    #[test]
    fn bridge_has_one_node_seeing_both_halves() {
        let order = vec![4, 2, 0, 1, 3];
        let views = visible(5, &bridge_cuts(&order));
        assert_eq!(views[0].len(), 5, "the bridge node sees everyone");
        assert_eq!(views[4], BTreeSet::from([4, 2, 0]));
        assert_eq!(views[3], BTreeSet::from([0, 1, 3]));
    }
}
