//! Shared helpers for the simulator tests: cluster construction and a test-only observer that
//! checks Raft's safety invariants over all nodes' state after every event.

#![allow(dead_code)]

use quorumlab_kv::{NodeState, Outcome, Request, Wire};
use quorumlab_raft::{Cmd, Entry, Log, Node, Params, Raft, State};
use quorumlab_sim::{ActorProcess, LinkModel, Nanos, Sim, MS};
pub use quorumlab_testkit::constant;
use std::collections::BTreeMap;

pub type P = ActorProcess<Node>;

/// A Raft cluster in the raw simulator (the shared harness).
pub type Cluster = quorumlab_testkit::Cluster<Raft>;

pub fn cluster(
    nodes: usize,
    replicas: usize,
    groups: usize,
    clients: usize,
    params: &Params,
    link: LinkModel,
    seed: u64,
) -> Cluster {
    quorumlab_testkit::cluster(nodes, replicas, groups, clients, params, link, seed)
}

pub fn server_state(sim: &Sim<P>, i: usize) -> Option<&State> {
    match sim.process(i).state()? {
        NodeState::Server(s) => s.as_ref(),
        NodeState::Client(_) => None,
    }
}

/// Runs until `deadline` or until a completion arrives; returns the completions.
pub fn run_for_completion(sim: &mut Sim<P>, deadline: Nanos) -> Vec<(Request, Outcome)> {
    sim.run_until(deadline);
    sim.take_outbox()
        .into_iter()
        .filter_map(|(_, m)| match m {
            Wire::Done(r, o) => Some((r, o)),
            _ => None,
        })
        .collect()
}

/// Invokes `req` on client endpoint `client` and runs until it completes (or `limit` ns pass).
/// Returns the outcome and the latency.
pub fn call(sim: &mut Sim<P>, client: usize, req: Request, limit: Nanos) -> (Outcome, Nanos) {
    let t0 = sim.now();
    sim.inject(client, Wire::Invoke(req));
    let deadline = t0 + limit;
    loop {
        let done = run_for_completion(sim, deadline);
        if let Some((_, o)) = done.into_iter().find(|(r, _)| r.id == req.id) {
            return (o, sim.now() - t0);
        }
        assert!(sim.now() < deadline, "request {req:?} did not complete");
    }
}

/// Safety invariants checked over all server states after every event:
/// election safety (at most one leader per group and term, ever), log matching (an index and a
/// term identify the entry and its whole prefix, across all logs and all time), state-machine
/// safety (a committed index never holds a different entry), and local sanity
/// (`applied <= commit <= last index`).
#[derive(Default)]
pub struct Observer {
    leaders: BTreeMap<(u32, u64), usize>,
    /// (group, index, term) -> (command, term of the previous entry).
    entries: BTreeMap<(u32, u64, u64), (Cmd, u64)>,
    pub committed: BTreeMap<(u32, u64), Entry>,
    /// Last seen log and commit index per (node, group).
    seen: BTreeMap<(usize, u32), (Log, u64)>,
    pub max_term: u64,
    pub checks: u64,
}

impl Observer {
    pub fn check(&mut self, sim: &Sim<P>, nodes: usize) -> Result<(), String> {
        self.checks += 1;
        for i in 0..nodes {
            let Some(st) = server_state(sim, i) else {
                continue;
            };
            for r in st.groups.iter().flatten() {
                let g = r.group;
                let log = r.log();
                self.max_term = self.max_term.max(r.term());
                if r.is_leader() {
                    let who = *self.leaders.entry((g, r.term())).or_insert(i);
                    if who != i {
                        return Err(format!(
                            "election safety: nodes {who} and {i} both lead group {g} in term {}",
                            r.term()
                        ));
                    }
                }
                if !(r.applied <= r.commit && r.commit <= log.last_index()) {
                    return Err(format!(
                        "node {i} group {g}: applied {} commit {} last {}",
                        r.applied,
                        r.commit,
                        log.last_index()
                    ));
                }
                let (first, prev_commit) = match self.seen.get(&(i, g)) {
                    Some((old, c)) if old.same_storage(log) && *c == r.commit => continue,
                    Some((old, c)) => (old.first_difference(log), *c),
                    None => (1, 0),
                };
                for idx in first..=log.last_index() {
                    let e = log.get(idx).unwrap();
                    let prev_term = log.term(idx - 1).unwrap();
                    let k = (g, idx, e.term);
                    match self.entries.get(&k) {
                        Some((cmd, pt)) if *cmd != e.cmd || *pt != prev_term => {
                            return Err(format!(
                                "log matching: node {i} group {g} index {idx} term {} holds {:?} after term {prev_term}, elsewhere {cmd:?} after term {pt}",
                                e.term, e.cmd
                            ));
                        }
                        Some(_) => {}
                        None => {
                            self.entries.insert(k, (e.cmd.clone(), prev_term));
                        }
                    }
                }
                for idx in first.min(prev_commit + 1)..=r.commit {
                    let e = log.get(idx).unwrap();
                    match self.committed.get(&(g, idx)) {
                        Some(c) if c != e => {
                            return Err(format!(
                                "state machine safety: node {i} group {g} index {idx} committed {e:?}, elsewhere {c:?}"
                            ));
                        }
                        Some(_) => {}
                        None => {
                            self.committed.insert((g, idx), e.clone());
                        }
                    }
                }
                self.seen.insert((i, g), (log.clone(), r.commit));
            }
        }
        Ok(())
    }
}

pub fn ms(x: u64) -> Nanos {
    x * MS
}
