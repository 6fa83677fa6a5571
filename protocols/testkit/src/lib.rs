//! Test harness shared by the protocol crates' simulator tests: a cluster of any
//! [`KvProtocol`] in the raw simulator (no workload driver), clients invoked one call at a time,
//! every call kept, and quorumlab's checkers over the calls.
//!
//! Protocol-specific views (an ensemble peer's role, a Raft replica's log) stay in each crate's
//! tests, as extension traits or functions over [`Cluster`].

use quorumlab_checker::{check_events, check_sets, CheckOptions, SetReport, Verdict};
use quorumlab_kv::history::Event;
use quorumlab_kv::{
    ClientConfig, Datum, Key, KvProcess, KvProtocol, Layout, Op, Outcome, Request, Value,
};
use quorumlab_sim::{
    Latency, LinkModel, Nanos, NetStats, Network, RunStop, Seeds, Sim, Stream, MS,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// A link with a constant one-way latency.
pub fn constant(ms: f64) -> LinkModel {
    LinkModel {
        latency: Latency::Constant { ms },
        ..LinkModel::default()
    }
}

/// `x` milliseconds of virtual time.
pub fn ms(x: u64) -> Nanos {
    x * MS
}

/// `nodes` servers, `groups` groups of `replicas`, `clients` clients, 1000 keys, client
/// timeout 1 s: the small clusters of the Raft tests.
pub fn cluster<P: KvProtocol>(
    nodes: usize,
    replicas: usize,
    groups: usize,
    clients: usize,
    params: &P::Params,
    link: LinkModel,
    seed: u64,
) -> Cluster<P> {
    let layout = Layout::new(nodes, clients, replicas, groups, 1000).expect("a valid layout");
    Cluster::start(layout, params.clone(), link, Duration::from_secs(1), seed)
}

/// One call: who, what, when, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub client: usize,
    pub req: Request,
    pub invoke: Nanos,
    /// Completion time and outcome (`None`: never completed).
    pub done: Option<(Nanos, Outcome)>,
}

/// A simulated cluster of protocol `P` with its calls.
pub struct Cluster<P: KvProtocol> {
    pub sim: Sim<P::Proc>,
    pub layout: Layout,
    pub params: P::Params,
    pub next_id: u64,
    pub calls: Vec<Call>,
    open: BTreeMap<u64, usize>,
    /// (call, completed?) in the order invocations and completions happened.
    order: Vec<(usize, bool)>,
}

impl<P: KvProtocol> Cluster<P> {
    /// Builds and starts the cluster: every link `link`, clients time out after `timeout`.
    pub fn start(
        layout: Layout,
        params: P::Params,
        link: LinkModel,
        timeout: Duration,
        seed: u64,
    ) -> Self {
        Self::try_start(layout, params, link, timeout, seed).expect("parameters fit the layout")
    }

    /// [`Cluster::start`], with the protocol's objection to its parameters as an error.
    pub fn try_start(
        layout: Layout,
        params: P::Params,
        link: LinkModel,
        timeout: Duration,
        seed: u64,
    ) -> Result<Self, String> {
        P::check(&params, &layout)?;
        let procs = P::build(&layout, &params, &ClientConfig { timeout });
        let seeds = Seeds::new(seed);
        let net = Network::uniform(layout.endpoints(), link, seeds.rng(Stream::Network));
        let mut sim = Sim::new(procs, net, seeds);
        sim.start_all();
        Ok(Cluster {
            sim,
            layout,
            params,
            next_id: 0,
            calls: Vec::new(),
            open: BTreeMap::new(),
            order: Vec::new(),
        })
    }

    pub fn now(&self) -> Nanos {
        self.sim.now()
    }

    /// Endpoint id of client `i`.
    pub fn client(&self, i: usize) -> usize {
        self.layout.nodes + i
    }

    fn collect(&mut self) {
        let now = self.sim.now();
        for (_, m) in self.sim.take_outbox() {
            if let Some((req, outcome)) = P::Proc::completion(m) {
                if let Some(i) = self.open.remove(&req.id) {
                    self.calls[i].done = Some((now, outcome));
                    self.order.push((i, true));
                }
            }
        }
    }

    /// One simulator step (one event), recording completions. False when nothing is left.
    pub fn step(&mut self) -> bool {
        let more = self.sim.step();
        self.collect();
        more
    }

    /// Runs until virtual time `t`, recording completions.
    pub fn run_until(&mut self, t: Nanos) {
        while self.sim.run_until(t) == RunStop::Outbox {
            self.collect();
        }
        self.collect();
    }

    pub fn run_for(&mut self, d: Nanos) {
        let t = self.now() + d;
        self.run_until(t);
    }

    /// Client `c` invokes `op` on `key` now; returns the index of the call.
    pub fn invoke(&mut self, c: usize, key: u32, op: Op) -> usize {
        self.next_id += 1;
        let req = Request {
            id: self.next_id,
            key: Key(key),
            op,
        };
        let i = self.calls.len();
        self.calls.push(Call {
            client: c,
            req,
            invoke: self.now(),
            done: None,
        });
        self.open.insert(req.id, i);
        self.order.push((i, false));
        let to = self.client(c);
        self.sim.inject(to, P::Proc::invoke_msg(req));
        i
    }

    /// Whether client `c` has a call in flight.
    pub fn is_open(&self, c: usize) -> bool {
        self.open.values().any(|&i| self.calls[i].client == c)
    }

    /// Invokes and runs until the call completes (or `limit` passes); returns the outcome and
    /// the latency.
    pub fn call(&mut self, c: usize, key: u32, op: Op, limit: Nanos) -> Option<(Outcome, Nanos)> {
        let i = self.invoke(c, key, op);
        let end = self.now() + limit;
        loop {
            match self.sim.run_until(end) {
                RunStop::Outbox => self.collect(),
                RunStop::Limit => {
                    self.collect();
                    break;
                }
            }
            if self.calls[i].done.is_some() {
                break;
            }
        }
        let call = &self.calls[i];
        call.done.clone().map(|(t, o)| (o, t - call.invoke))
    }

    /// Runs until every open call has completed, at most `limit`.
    pub fn settle(&mut self, limit: Nanos) {
        let end = self.now() + limit;
        while !self.open.is_empty() && self.now() < end {
            match self.sim.run_until(end) {
                RunStop::Outbox | RunStop::Limit => self.collect(),
            }
        }
    }

    /// The outcome of call `i`, if it completed.
    pub fn outcome(&self, i: usize) -> Option<Outcome> {
        self.calls[i].done.as_ref().map(|(_, o)| o.clone())
    }

    /// Cuts endpoint `node` off from every other endpoint (servers and clients), both ways.
    pub fn isolate(&mut self, node: usize) {
        let now = self.now();
        for o in 0..self.layout.endpoints() {
            if o != node {
                self.sim.network_mut().cut(node, o, now);
                self.sim.network_mut().cut(o, node, now);
            }
        }
    }

    /// Splits the endpoints into `parts` (endpoints in no part keep every link).
    pub fn partition(&mut self, parts: &[Vec<usize>]) {
        let now = self.now();
        self.sim.network_mut().partition(parts, now);
    }

    /// Heals every cut link.
    pub fn heal(&mut self) {
        self.sim.network_mut().heal_all();
    }

    /// [`Cluster::call`] that must complete within 10 s of virtual time.
    pub fn must(&mut self, c: usize, key: u32, op: Op) -> (Outcome, Nanos) {
        self.call(c, key, op, 10_000 * MS)
            .unwrap_or_else(|| panic!("client {c}: {op:?} on k{key} did not complete"))
    }

    /// Repeats `op` until it is ok (each attempt waits for its completion), up to `limit`.
    pub fn call_until_ok(&mut self, c: usize, key: u32, op: Op, limit: Nanos) -> Option<Outcome> {
        let end = self.now() + limit;
        while self.now() < end {
            match self.call(c, key, op, end - self.now()) {
                Some((o @ Outcome::Ok(_), _)) => return Some(o),
                Some(_) => self.run_for(100 * MS),
                None => return None,
            }
        }
        None
    }

    /// The leader of `group`: the up server claiming it with the highest term or epoch.
    pub fn leader(&self, group: usize) -> Option<(usize, u64)> {
        (0..self.layout.nodes)
            .filter(|&i| self.sim.is_up(i))
            .flat_map(|i| {
                self.sim
                    .process(i)
                    .leadership()
                    .into_iter()
                    .filter(|l| l.group == group)
                    .map(move |l| (i, l.term))
            })
            .max_by_key(|&(n, t)| (t, n))
    }

    /// Runs until `group` has a leader (checking every millisecond), up to `limit`.
    pub fn wait_leader(&mut self, group: usize, limit: Nanos) -> Option<(usize, u64)> {
        let end = self.now() + limit;
        while self.now() < end {
            if let Some(l) = self.leader(group) {
                return Some(l);
            }
            self.run_for(MS);
        }
        self.leader(group)
    }

    /// What every ok read of `key` returned, in call order.
    pub fn ok_read_data(&self, key: u32) -> Vec<Option<Datum>> {
        self.calls
            .iter()
            .filter(|c| c.req.key.0 == key && c.req.op == Op::Read)
            .filter_map(|c| match &c.done {
                Some((_, Outcome::Ok(v))) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    /// The register values every ok read of `key` returned, in call order.
    pub fn ok_reads(&self, key: u32) -> Vec<Option<Value>> {
        self.ok_read_data(key)
            .into_iter()
            .map(|d| d.and_then(|d| d.reg()))
            .collect()
    }

    pub fn stats(&self) -> NetStats {
        self.sim.net_stats().clone()
    }

    /// The calls as a history: invocations and completions in the order they happened (a
    /// call invoked right after another completed, at the same instant, follows it); calls
    /// never completed stay open. Every call is its own process (a test client may start a
    /// call while an earlier one is still unanswered).
    pub fn history(&self) -> Vec<Event> {
        self.order
            .iter()
            .enumerate()
            .map(|(index, &(i, completed))| {
                let c = &self.calls[i];
                let process = i as u64;
                let mut e = match (&c.done, completed) {
                    (Some((t, o)), true) => Event::complete(*t, process, &c.req, o),
                    _ => Event::invoke(c.invoke, process, &c.req),
                };
                e.index = index as u64;
                e
            })
            .collect()
    }

    /// The keys whose calls are not linearizable (quorumlab's checker); a key the checker
    /// cannot decide fails the test.
    pub fn bad_keys(&self) -> Vec<u32> {
        let report = check_events(&self.history(), &CheckOptions::default());
        assert!(report.error.is_none(), "history: {:?}", report.error);
        let key_no = |k: &Option<String>| -> u32 {
            k.as_deref()
                .and_then(|s| s.strip_prefix('k'))
                .and_then(|n| n.parse().ok())
                .expect("keys are k<n>")
        };
        let unknown: Vec<_> = report
            .results
            .iter()
            .filter(|r| r.verdict == Verdict::Unknown)
            .map(|r| key_no(&r.key))
            .collect();
        assert!(unknown.is_empty(), "checker undecided for keys {unknown:?}");
        report
            .results
            .iter()
            .filter(|r| r.verdict == Verdict::NotLinearizable)
            .map(|r| key_no(&r.key))
            .collect()
    }

    /// The set checker over the calls (`None` without adds).
    pub fn sets(&self) -> Option<SetReport> {
        check_sets(&self.history())
    }
}
