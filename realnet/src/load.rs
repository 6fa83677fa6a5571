//! The real-time workload driver: the spec's clients as `KvClient` actors in one process, ops
//! from the same generator as in simulation, a history with monotonic nanosecond timestamps.

use crate::cluster::ClusterFile;
use crate::codec::RealProtocol;
use crate::host::{Hook, Host};
use crate::node::layout;
use quorumlab_kv::history::Event;
use quorumlab_kv::{Outcome, Request};
use quorumlab_sim::{Seeds, Stream};
use quorumlab_workloads::generator::OpGen;
use quorumlab_workloads::spec::Mode;
use quorumlab_workloads::Spec;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use stateright::actor::Id;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;
use tokio::time::Instant;

fn ns(s: f64) -> u64 {
    (s * 1e9).round().max(0.0) as u64
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Act {
    Invoke(usize),
    Arrival,
    StopIssuing,
}

struct Slot {
    process: u64,
    outstanding: Option<Request>,
}

/// What a load run produced.
pub struct LoadResult {
    pub history: Vec<Event>,
    pub skipped_arrivals: u64,
    pub measure_from_ns: u64,
    pub measure_to_ns: u64,
    pub end_ns: u64,
    pub client_stats: crate::host::Stats,
}

struct Driver {
    start: Instant,
    nodes: usize,
    clients: Vec<Slot>,
    by_req: HashMap<u64, usize>,
    gen: OpGen,
    rng: ChaCha8Rng,
    history: Vec<Event>,
    queue: BinaryHeap<Reverse<(u64, u64, Act)>>,
    seq: u64,
    issuing: bool,
    hard_stop: u64,
    mode: Mode,
    think_ns: u64,
    rate: f64,
    next_arrival_client: usize,
    skipped: u64,
}

impl Driver {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
    fn at(&mut self, t: u64, a: Act) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, a)));
    }
    fn exp_gap(&mut self) -> u64 {
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        ns(-u.ln() / self.rate.max(1e-9))
    }
    fn record(&mut self, mut e: Event) {
        e.index = self.history.len() as u64;
        self.history.push(e);
    }
    fn invoke<R: RealProtocol>(&mut self, c: usize, host: &mut Host<R>) -> bool {
        if !self.issuing || self.clients[c].outstanding.is_some() {
            return false;
        }
        let req = self.gen.next_for(c, &mut self.rng);
        let now = self.now();
        self.record(Event::invoke(now, self.clients[c].process, &req));
        self.clients[c].outstanding = Some(req);
        self.by_req.insert(req.id, c);
        host.invoke((self.nodes + c) as u32, req);
        true
    }
}

impl<R: RealProtocol> Hook<R> for Driver {
    fn next(&self) -> Option<Instant> {
        let t = self
            .queue
            .peek()
            .map(|Reverse((t, _, _))| *t)
            .unwrap_or(u64::MAX)
            .min(self.hard_stop);
        Some(self.start + Duration::from_nanos(t))
    }
    fn fire(&mut self, host: &mut Host<R>) {
        let now = self.now();
        while let Some(&Reverse((t, _, a))) = self.queue.peek() {
            if t > now {
                break;
            }
            self.queue.pop();
            match a {
                Act::Invoke(c) => {
                    self.invoke(c, host);
                }
                Act::Arrival => {
                    let n = self.clients.len();
                    let idle = (0..n)
                        .map(|k| (self.next_arrival_client + k) % n)
                        .find(|&c| self.clients[c].outstanding.is_none());
                    match idle {
                        Some(c) if self.issuing => {
                            self.next_arrival_client = (c + 1) % n;
                            self.invoke(c, host);
                        }
                        _ => self.skipped += 1,
                    }
                    if self.issuing {
                        let g = self.exp_gap();
                        self.at(t + g, Act::Arrival);
                    }
                }
                Act::StopIssuing => self.issuing = false,
            }
        }
    }
    fn done(&mut self, _host: &mut Host<R>, _client: u32, req: Request, outcome: Outcome) {
        let Some(c) = self.by_req.remove(&req.id) else {
            return;
        };
        let now = self.now();
        let process = self.clients[c].process;
        self.record(Event::complete(now, process, &req, &outcome));
        self.gen.observe(&req, &outcome);
        self.clients[c].outstanding = None;
        if outcome == Outcome::Info {
            self.clients[c].process += self.clients.len() as u64;
        }
        if self.mode == Mode::Closed {
            self.at(now + self.think_ns, Act::Invoke(c));
        }
    }
    fn finished(&self) -> bool {
        (!self.issuing && self.clients.iter().all(|c| c.outstanding.is_none()))
            || self.now() >= self.hard_stop
    }
}

/// Runs the spec's workload against `cluster` in real time; `start` is time zero of the history.
pub fn run_load<R: RealProtocol>(
    spec: &Spec,
    cluster: &ClusterFile,
    seed: u64,
    start: std::time::Instant,
) -> Result<LoadResult, String> {
    let n = cluster.nodes.len();
    let layout = layout(spec, n)?;
    let mut actors = R::endpoints(spec, &layout)?;
    let clients: Vec<_> = actors
        .drain(n..)
        .enumerate()
        .map(|(c, a)| (Id::from(n + c), a))
        .collect();
    let w = &spec.workload;
    let measure_from = ns(w.warmup_s);
    let measure_to = measure_from + ns(w.duration_s);
    let seeds = Seeds::new(seed);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let addrs = (0..n).map(|i| cluster.addr(i)).collect();
        let mut host = Host::<R>::new(
            addrs,
            cluster.secret.clone(),
            clients,
            None,
            seed ^ 0xC11E,
            tx,
        );
        let start = Instant::from_std(start);
        let mut d = Driver {
            start,
            nodes: n,
            clients: (0..w.clients)
                .map(|i| Slot {
                    process: i as u64,
                    outstanding: None,
                })
                .collect(),
            by_req: HashMap::new(),
            gen: OpGen::new(w),
            rng: seeds.rng(Stream::Workload),
            history: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            issuing: true,
            hard_stop: measure_to + 2 * ns(w.timeout_ms / 1000.0) + ns(1.0),
            mode: w.mode,
            think_ns: ns(w.think_ms / 1000.0),
            rate: w.rate,
            next_arrival_client: 0,
            skipped: 0,
        };
        let now = d.now();
        match w.mode {
            Mode::Closed => {
                for c in 0..w.clients {
                    d.at(now, Act::Invoke(c));
                }
            }
            Mode::Open => {
                let g = d.exp_gap();
                d.at(now + g, Act::Arrival);
            }
        }
        d.at(measure_to, Act::StopIssuing);
        host.start()?;
        host.run(&mut rx, &mut d).await;
        let end_ns = d.now();
        Ok(LoadResult {
            history: d.history,
            skipped_arrivals: d.skipped,
            measure_from_ns: measure_from,
            measure_to_ns: measure_to,
            end_ns,
            client_stats: host.stats.clone(),
        })
    })
}
