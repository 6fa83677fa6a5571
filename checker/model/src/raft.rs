//! `raft` under the harness: configuration, boundaries, Raft's own durability invariants
//! (state machine safety, leader completeness, acknowledged entries on a majority of durable
//! logs), and symmetry reduction for server-only models.

use crate::config::{ModelCfg, NetKind};
use crate::harness::{KvModel, Proto, St};
use crate::history::written_value;
use quorumlab_kv::{Layout, NodeState, Op, Outcome, Request};
use quorumlab_raft::{
    Adapter, AdapterState, Cmd, Durable, Entry, Msg, Params, Raft, ReadMode, Replica, Resp,
    RetryTimer, Role, Server, State, Timer, Variant,
};
use stateright::actor::{Envelope, Id, Network};
use std::sync::Arc;

/// The start schedule of the lease teaching case (after the warm start).
pub const LEASE_PREFIX: &[&str] = &[
    "deliver c0 → n0",
    "deliver n0 → n1: append",
    "deliver n0 → n2: append",
    "deliver n2 → n0: append_ack",
    "timeout n1: LeaderContact",
    "timeout n1: Election",
    "timeout n2: LeaderContact",
    "deliver n1 → n2: vote?",
    "deliver n2 → n1: vote",
];

/// The raft protocol marker.
pub struct RaftProto;

pub const VARIANTS: &[&str] = &[
    "faithful",
    "volatile_vote",
    "commit_prior_term",
    "unbounded_lease",
];

fn variant(name: &str) -> Result<Variant, String> {
    Ok(match name {
        "faithful" => Variant::Faithful,
        "volatile_vote" => Variant::VolatileVote,
        "commit_prior_term" => Variant::CommitPriorTerm,
        "unbounded_lease" => Variant::UnboundedLease,
        _ => {
            return Err(format!(
                "unknown raft variant {name:?} (expected one of: {})",
                VARIANTS.join(", ")
            ))
        }
    })
}

fn replicas(st: &State) -> impl Iterator<Item = &Replica> {
    st.groups.iter().flatten()
}

/// Formats a request id (`actor << 32 | n`) and an op.
pub fn fmt_req(r: &Request) -> String {
    format!(
        "#{}.{} {}",
        r.id >> 32,
        r.id & 0xffff_ffff,
        fmt_op(r.key.0, &r.op)
    )
}

pub fn fmt_op(k: u32, op: &Op) -> String {
    match op {
        Op::Read => format!("read k{k}"),
        Op::Write(v) => format!("write k{k}={v}"),
        Op::Cas { expected, new } => format!("cas k{k} {expected}→{new}"),
        Op::Create(v) => format!("create k{k}={v}"),
        Op::Delete => format!("delete k{k}"),
        Op::Add(e) => format!("add k{k}+{e}"),
    }
}

pub fn fmt_outcome(o: &Outcome) -> String {
    match o {
        Outcome::Ok(Some(v)) => format!("ok {v}"),
        Outcome::Ok(None) => "ok".into(),
        Outcome::Fail(k) => format!("fail ({k:?})").to_lowercase(),
        Outcome::Info => "info".into(),
    }
}

fn fmt_entry(e: &Entry) -> String {
    match &e.cmd {
        Cmd::Noop => format!("t{} noop", e.term),
        Cmd::Kv { req, .. } => format!("t{} {}", e.term, fmt_req(req)),
    }
}

impl Proto for RaftProto {
    const NAME: &'static str = "raft";
    type Msg = Msg;
    type STimer = Timer;
    type SState = State;
    type Storage = Durable;
    type CTimer = RetryTimer;
    type CState = AdapterState;
    type Server = Server;
    type Adapter = Adapter;

    fn variants() -> &'static [&'static str] {
        VARIANTS
    }

    fn defaults(v: &str) -> Result<ModelCfg, String> {
        variant(v)?;
        let mut c = ModelCfg::base("raft", v);
        match v {
            // A write and a read, one crash, from the warm start (n0 leads term 1): every
            // schedule of up to 8 steps, re-elections included (terms up to 2).
            "faithful" => {
                c.clients = 2;
                c.ops = 1;
                c.crashes = 1;
                c.max_term = 2;
                c.max_rounds = 2;
                c.warmup = true;
                c.depth = Some(8);
            }
            // Two leaders in one term after a restart that forgot the vote: servers only.
            "volatile_vote" => {
                c.clients = 0;
                c.crashes = 1;
                c.max_term = 1;
                c.max_rounds = 1;
            }
            // Figure 8 in three servers: from the warm start (n0 leads term 1), n0 appends a
            // client write at index 2 but is deposed before replicating it; n1 leads term 2 with
            // its own no-op at index 2; n0 leads term 3 and, sending one entry per
            // AppendEntries, gets the term-1 write onto n2 and counts it as committed, although
            // n1, whose log is as up-to-date as n2's, can still be elected and overwrite it.
            "commit_prior_term" => {
                c.script = vec![vec![(quorumlab_kv::Key(0), Op::Write(1))]];
                c.max_term = 3;
                c.max_rounds = 1;
                c.max_entries = 1;
                c.warmup = true;
                c.network = NetKind::Ordered;
            }
            // Lease reads in the model: timers have no durations, so no lease ever protects.
            // The start schedule (given, not searched): from the warm start, c0's write of k1
            // commits on n0 and n2 (the reply to c0 is still in flight), then n1 wins term 2
            // while n0 still believes it leads with a valid lease. The search finds the rest:
            // c1's write commits under n1, c0 learns its write is done and reads k0 from n0.
            // The same configuration without lease reads is verified exhaustively.
            "unbounded_lease" => {
                c.script = vec![
                    vec![
                        (quorumlab_kv::Key(1), Op::Write(9)),
                        (quorumlab_kv::Key(0), Op::Read),
                    ],
                    vec![(quorumlab_kv::Key(0), Op::Write(1))],
                ];
                c.lease_reads = true;
                c.max_term = 2;
                c.max_rounds = 2;
                c.warmup = true;
                c.network = NetKind::Ordered;
                c.prefix = LEASE_PREFIX.iter().map(|s| s.to_string()).collect();
            }
            _ => unreachable!(),
        }
        Ok(c)
    }

    fn build(cfg: &ModelCfg, layout: &Layout) -> Result<(Server, Adapter), String> {
        let params = Params {
            variant: variant(&cfg.variant)?,
            read_mode: if cfg.lease_reads {
                ReadMode::Lease
            } else {
                ReadMode::ReadIndex
            },
            check_quorum: false,
            max_entries_per_append: cfg.max_entries,
            ..Params::default()
        };
        params.validate()?;
        Ok((
            Raft::server(layout, &params),
            Raft::adapter(layout, &params),
        ))
    }

    fn client_request(msg: &Msg) -> Option<&Request> {
        match msg {
            Msg::ClientReq(r) => Some(r),
            _ => None,
        }
    }

    fn in_bounds(cfg: &ModelCfg, st: &State, _storage: Option<&Durable>) -> bool {
        replicas(st).all(|r| {
            r.term() <= cfg.max_term
                && match &r.role {
                    Role::Leader(l) => l.round <= cfg.max_rounds,
                    _ => true,
                }
        })
    }

    fn durability(m: &KvModel<Self>, s: &St<Self>) -> Result<(), String> {
        // Every server's last known state (a crashed server's last state still tells what it
        // had committed).
        let reps: Vec<(usize, &Replica)> = (0..m.servers)
            .filter_map(|i| match &*s.actor_states[i] {
                NodeState::Server(Some(st)) => Some((i, st)),
                _ => None,
            })
            .flat_map(|(i, st)| replicas(st).map(move |r| (i, r)))
            .collect();
        // State machine safety: no two servers commit different entries at an index.
        for (x, &(i, a)) in reps.iter().enumerate() {
            for &(j, b) in &reps[x + 1..] {
                if a.group != b.group {
                    continue;
                }
                for idx in 1..=a.commit.min(b.commit) {
                    if a.log().get(idx) != b.log().get(idx) {
                        return Err(format!(
                            "state machine safety: n{i} and n{j} committed different entries at index {idx} ({} vs {})",
                            a.log().get(idx).map_or("none".into(), fmt_entry),
                            b.log().get(idx).map_or("none".into(), fmt_entry),
                        ));
                    }
                }
            }
        }
        // Leader completeness: a leader of term t holds every entry committed by a server whose
        // term is below t (that entry was committed in an earlier term).
        for &(i, l) in &reps {
            if s.crashed[i] || !l.is_leader() {
                continue;
            }
            for &(j, r) in &reps {
                if r.group != l.group || r.term() >= l.term() {
                    continue;
                }
                for idx in 1..=r.commit {
                    if l.log().get(idx) != r.log().get(idx) {
                        return Err(format!(
                            "leader completeness: n{i}, leader of term {}, lacks entry {idx} ({}) that n{j} committed in term {} or earlier",
                            l.term(),
                            r.log().get(idx).map_or("none".into(), fmt_entry),
                            r.term()
                        ));
                    }
                }
            }
        }
        // Leader completeness, inductive form: a server whose log lacks a committed entry must
        // not be electable, i.e. its log must be less up-to-date than a majority's (in correct
        // Raft a majority holds the entry behind a last entry of the committing term or later).
        let majority = m.servers / 2 + 1;
        let last = |r: &Replica| (r.log().last_term(), r.log().last_index());
        for &(i, c) in &reps {
            for idx in 1..=c.commit {
                let e = c.log().get(idx);
                for &(j, r) in &reps {
                    if r.group != c.group || r.log().get(idx) == e {
                        continue;
                    }
                    let electors: Vec<usize> = reps
                        .iter()
                        .filter(|(_, v)| v.group == c.group && last(r) >= last(v))
                        .map(|&(k, _)| k)
                        .collect();
                    if electors.len() >= majority {
                        return Err(format!(
                            "leader completeness: n{j} lacks entry {idx} ({}) that n{i} committed, yet its log is as up-to-date as {} — it can still be elected",
                            e.map_or("none".into(), fmt_entry),
                            electors
                                .iter()
                                .map(|k| format!("n{k}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                }
            }
        }
        // An acknowledged mutation stays in a majority of durable logs.
        for o in &s.history.ops {
            if written_value(&o.op).is_none() || !matches!(o.ret, Some((_, Outcome::Ok(_)))) {
                continue;
            }
            let holders = (0..m.servers)
                .filter(|&i| {
                    s.actor_storages[i].as_ref().is_some_and(|d| {
                        d.groups.iter().flatten().any(|g| {
                            g.log
                                .iter()
                                .any(|e| matches!(&e.cmd, Cmd::Kv { req, .. } if req.id == o.id))
                        })
                    })
                })
                .count();
            if holders < majority {
                return Err(format!(
                    "acknowledged {} is in only {holders} durable log(s), fewer than a majority",
                    fmt_op(o.key.0, &o.op)
                ));
            }
        }
        Ok(())
    }

    fn summary(st: &State) -> String {
        replicas(st)
            .map(|r| {
                let role = match &r.role {
                    Role::Leader(_) => "leader".to_string(),
                    Role::Candidate { .. } => "candidate".to_string(),
                    Role::Follower => match r.leader {
                        Some(l) => format!("follower of n{}", usize::from(l)),
                        None => "follower".to_string(),
                    },
                };
                format!(
                    "{role} t{} log {} commit {}{}",
                    r.term(),
                    r.log().last_index(),
                    r.commit,
                    if r.leader_contact && matches!(r.role, Role::Follower) {
                        " (ignores votes: recent leader contact)"
                    } else {
                        ""
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn fmt_msg(msg: &Msg) -> String {
        match msg {
            Msg::Append {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
                round,
                ..
            } => format!(
                "append t{term} prev {prev_index}/t{prev_term} [{}] commit {commit} r{round}",
                entries.iter().map(fmt_entry).collect::<Vec<_>>().join(", ")
            ),
            Msg::AppendAck {
                term,
                success,
                index,
                round,
                ..
            } => format!(
                "append_ack t{term} {} idx {index} r{round}",
                if *success { "ok" } else { "reject" }
            ),
            Msg::Vote {
                term,
                last_index,
                last_term,
                ..
            } => format!("vote? t{term} last {last_index}/t{last_term}"),
            Msg::VoteAck { term, granted, .. } => {
                format!(
                    "vote t{term} {}",
                    if *granted { "granted" } else { "denied" }
                )
            }
            Msg::ClientReq(r) => format!("request {}", fmt_req(r)),
            Msg::ClientResp { id, resp } => {
                let r = match resp {
                    Resp::Done(o) => fmt_outcome(o),
                    Resp::Redirect(Some(l)) => format!("redirect to n{}", usize::from(*l)),
                    Resp::Redirect(None) => "redirect".into(),
                    Resp::Unknown => "unknown".into(),
                };
                format!("response #{}.{} {r}", id >> 32, id & 0xffff_ffff)
            }
        }
    }

    fn settled(states: &[&State]) -> bool {
        let lead = match states
            .first()
            .and_then(|s| s.groups.first())
            .and_then(Option::as_ref)
        {
            Some(r) => r,
            None => return false,
        };
        let Role::Leader(l) = &lead.role else {
            return false;
        };
        if lead.commit < l.term_start {
            return false;
        }
        states[1..].iter().all(|s| {
            replicas(s).all(|r| {
                r.term() == lead.term()
                    && r.leader == Some(Id::from(0))
                    && matches!(r.role, Role::Follower)
                    && r.log() == lead.log()
            })
        })
    }

    fn warmup_rank(server: usize, t: &Timer) -> Option<u8> {
        match t {
            Timer::LeaderContact(_) => Some(0),
            Timer::Election(_) if server == 0 => Some(1),
            _ => None,
        }
    }

    fn tidy_client(layout: &Layout, st: &AdapterState) -> Option<AdapterState> {
        let n = layout.groups.first().map_or(1, Vec::len).max(1) as u32;
        if st.rot.iter().all(|&r| r < n) {
            return None;
        }
        let mut st = st.clone();
        for r in &mut st.rot {
            *r %= n;
        }
        Some(st)
    }

    fn symmetry(cfg: &ModelCfg) -> Result<fn(&St<Self>) -> St<Self>, String> {
        if cfg.script.iter().any(|ops| !ops.is_empty()) || cfg.clients > 0 {
            return Err("raft symmetry reduction is sound only without clients (a client's retry rotation orders the servers); use --clients 0".into());
        }
        Ok(representative)
    }
}

/// Id-free features of a server, to order servers canonically.
fn key(s: &St<RaftProto>, i: usize) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    if let NodeState::Server(Some(st)) = &*s.actor_states[i] {
        for r in replicas(st) {
            r.term().hash(&mut h);
            r.log().hash(&mut h);
            r.commit.hash(&mut h);
            r.applied.hash(&mut h);
            r.leader_contact.hash(&mut h);
            r.d.voted_for.is_some().hash(&mut h);
            r.leader.is_some().hash(&mut h);
            std::mem::discriminant(&r.role).hash(&mut h);
        }
    }
    s.crashed[i].hash(&mut h);
    let mut timers: Vec<String> = s.timers_set[i].iter().map(|t| format!("{t:?}")).collect();
    timers.sort();
    timers.hash(&mut h);
    if let Some(d) = &s.actor_storages[i] {
        for g in d.groups.iter().flatten() {
            (g.term, g.voted_for.is_some(), &g.log).hash(&mut h);
        }
    }
    h.finish()
}

/// Symmetry reduction for a server-only raft model: servers are interchangeable (one group over
/// all of them, no clients), so the state is rewritten under the permutation that sorts servers
/// by their id-free features. Any permutation yields an equivalent state, so ties (broken by
/// index) cost reduction, never soundness.
pub fn representative(s: &St<RaftProto>) -> St<RaftProto> {
    let n = s.actor_states.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (key(s, i), i));
    // order[new] = old; pi[old] = new
    let mut pi = vec![0; n];
    for (new, &old) in order.iter().enumerate() {
        pi[old] = new;
    }
    if pi.iter().enumerate().all(|(a, &b)| a == b) {
        return s.clone();
    }
    let map = |id: Id| -> Id {
        let i = usize::from(id);
        if i < n {
            Id::from(pi[i])
        } else {
            id
        }
    };
    let perm_vec = |v: &Vec<u64>| -> Vec<u64> {
        let mut out = v.clone();
        for (old, x) in v.iter().enumerate() {
            if old < n {
                out[pi[old]] = *x;
            }
        }
        out
    };
    let rewrite_state = |ns: &quorumlab_kv::NodeState<State, AdapterState>| match ns {
        NodeState::Server(Some(st)) => {
            let mut st = st.clone();
            st.me = map(st.me);
            for r in st.groups.iter_mut().flatten() {
                r.me = pi[r.me];
                r.d.voted_for = r.d.voted_for.map(map);
                r.leader = r.leader.map(map);
                match &mut r.role {
                    Role::Candidate { votes } => {
                        let old = votes.clone();
                        for (o, v) in old.into_iter().enumerate() {
                            votes[pi[o]] = v;
                        }
                    }
                    Role::Leader(l) => {
                        l.next = perm_vec(&l.next);
                        l.matched = perm_vec(&l.matched);
                        l.acked = perm_vec(&l.acked);
                    }
                    Role::Follower => {}
                }
            }
            NodeState::Server(Some(st))
        }
        other => other.clone(),
    };
    let mut out = s.clone();
    for (old, &new) in pi.iter().enumerate() {
        out.actor_states[new] = Arc::new(rewrite_state(&s.actor_states[old]));
        out.timers_set[new] = s.timers_set[old].clone();
        out.crashed[new] = s.crashed[old];
        out.random_choices[new] = s.random_choices[old].clone();
        out.actor_storages[new] = s.actor_storages[old].as_ref().map(|d| Durable {
            groups: d
                .groups
                .iter()
                .map(|g| {
                    g.as_ref().map(|g| {
                        let mut g = g.clone();
                        g.voted_for = g.voted_for.map(map);
                        g
                    })
                })
                .collect(),
        });
    }
    out.network = match &s.network {
        Network::Ordered(m) => {
            let mut net = Network::new_ordered([]);
            if let Network::Ordered(o) = &mut net {
                for ((a, b), q) in m {
                    o.insert((map(*a), map(*b)), q.clone());
                }
            }
            net
        }
        Network::UnorderedNonDuplicating(m) => {
            let mut net = Network::new_unordered_nonduplicating([]);
            if let Network::UnorderedNonDuplicating(o) = &mut net {
                for (e, c) in m.iter() {
                    o.insert(
                        Envelope {
                            src: map(e.src),
                            dst: map(e.dst),
                            msg: e.msg.clone(),
                        },
                        *c,
                    );
                }
            }
            net
        }
        Network::UnorderedDuplicating(set, last) => {
            let mut net = Network::new_unordered_duplicating([]);
            if let Network::UnorderedDuplicating(o, l) = &mut net {
                for e in set.iter() {
                    o.insert(Envelope {
                        src: map(e.src),
                        dst: map(e.dst),
                        msg: e.msg.clone(),
                    });
                }
                *l = last.as_ref().map(|e| Envelope {
                    src: map(e.src),
                    dst: map(e.dst),
                    msg: e.msg.clone(),
                });
            }
            net
        }
    };
    out
}
