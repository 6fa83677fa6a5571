//! The harness: a stateright [`Model`] built from a protocol's server actor and the generic KV
//! client actor ([`KvNode`]), i.e. the very code the simulator runs.
//!
//! [`KvModel`] wraps stateright's [`ActorModel`] and delegates to it, adding what the plain
//! `ActorModel` cannot express:
//!
//! * client completions (`Wire::Done`, sent to the driver id, which is no actor of the model)
//!   are recorded into the history and then removed from the network, so they neither pile up
//!   in the state nor offer pointless `Drop` actions on a lossy network;
//! * clients never crash (crash actions are generated for servers only, and the boundary
//!   rejects any state with a crashed client);
//! * client timeouts can be switched off (their timer is removed from the state);
//! * a crash is by default a reboot (crash and restart from durable storage in one step, at
//!   most `crashes` per run): for the monotone safety properties checked here this loses no
//!   violation (a crashed server only stops acting; moving its crash to just before its restart
//!   reaches a state with the same or more leaders and the same history and storage) and it
//!   shortens every counterexample by one step per crash; `crash_down` keeps stateright's
//!   semantics;
//! * protocol boundaries (highest term/epoch, rounds) keep the space finite;
//! * an optional warm start: the search begins where node 0 leads, reached by the shortest
//!   server-only schedule (kept, and shown in front of every counterexample);
//! * properties read `&KvModel`, so they see the configuration without `fn`-pointer tricks;
//! * the time budget (`timeout_secs`) is enforced for BFS and DFS (see
//!   [`KvModel::out_of_time`]).

use crate::config::{Mode, ModelCfg, NetKind};
use crate::history::Hist;
use quorumlab_kv::{
    ClientAdapter, KvClient, KvNode, KvServer, Layout, Leadership, NodeState, NodeTimer, Request,
    Wire,
};
use quorumlab_sim::driver;
use stateright::actor::{
    ActorModel, ActorModelAction, ActorModelState, Envelope, Id, LossyNetwork, Network,
};
use stateright::{Model, Path, Property};
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A protocol the harness can model-check.
pub trait Proto: Sized + Send + Sync + 'static {
    const NAME: &'static str;
    type Msg: Clone + Debug + Eq + Hash + Ord + Send + Sync + 'static;
    type STimer: Clone + Debug + Eq + Hash + Ord + Send + Sync + 'static;
    type SState: Clone + Debug + Eq + Hash + Send + Sync + 'static;
    type Storage: Clone + Debug + Eq + Hash + Send + Sync + 'static;
    type CTimer: Clone + Debug + Eq + Hash + Ord + Send + Sync + 'static;
    type CState: Clone + Debug + Eq + Hash + Send + Sync + 'static;
    type Server: KvServer<
            Msg = Self::Msg,
            Timer = Self::STimer,
            State = Self::SState,
            Storage = Self::Storage,
            Random = (),
        > + Clone
        + Debug
        + Send
        + Sync
        + 'static;
    type Adapter: ClientAdapter<Msg = Self::Msg, Timer = Self::CTimer, State = Self::CState>
        + Send
        + Sync
        + 'static;

    /// Variant names, the faithful protocol first.
    fn variants() -> &'static [&'static str];
    /// The configuration `quorumlab model PROTOCOL --variant V` starts from: for a seeded bug,
    /// the smallest configuration known to show it.
    fn defaults(variant: &str) -> Result<ModelCfg, String>;
    fn build(cfg: &ModelCfg, layout: &Layout) -> Result<(Self::Server, Self::Adapter), String>;
    /// The request a client message carries (to record invocations).
    fn client_request(msg: &Self::Msg) -> Option<&Request>;
    /// The protocol's boundary for one server (its current state, its storage).
    fn in_bounds(cfg: &ModelCfg, st: &Self::SState, storage: Option<&Self::Storage>) -> bool;
    /// Protocol-specific durability (e.g. Raft's state machine safety); `Err` explains.
    fn durability(m: &KvModel<Self>, s: &St<Self>) -> Result<(), String>;
    /// A short description of a server state for traces ("leader t1", "follower e2 of n0").
    fn summary(st: &Self::SState) -> String;
    /// A compact rendering of a message for traces.
    fn fmt_msg(msg: &Self::Msg) -> String {
        format!("{msg:?}")
    }
    /// The warm start is reached: node 0 leads, every other server follows it.
    fn settled(states: &[&Self::SState]) -> bool;
    /// Which server timers the warm-up may fire, by priority (lower first; `None`: never).
    /// By default node 0's: it becomes the leader.
    fn warmup_rank(server: usize, _t: &Self::STimer) -> Option<u8> {
        (server == 0).then_some(0)
    }
    /// Whether a server timer can still matter under this configuration (irrelevant timers are
    /// removed from the state, e.g. lease expiry when lease reads are off).
    fn timer_matters(_cfg: &ModelCfg, _t: &Self::STimer) -> bool {
        true
    }
    /// Canonicalises a server state under this configuration (must not change behaviour, e.g.
    /// a lease flag nobody reads); `None`: unchanged.
    fn tidy_server(_cfg: &ModelCfg, _st: &Self::SState) -> Option<Self::SState> {
        None
    }
    /// Canonicalises a client's adapter state (must not change behaviour); `None`: unchanged.
    fn tidy_client(_layout: &Layout, _st: &Self::CState) -> Option<Self::CState> {
        None
    }
    /// Symmetry reduction, where this protocol and configuration make it sound.
    #[allow(clippy::type_complexity)] // a plain fn pointer, as stateright's symmetry takes
    fn symmetry(_cfg: &ModelCfg) -> Result<fn(&St<Self>) -> St<Self>, String> {
        Err(format!(
            "symmetry reduction is not sound for {} (see docs/model-checking.md)",
            Self::NAME
        ))
    }
}

pub type Node<P> = KvNode<<P as Proto>::Server, <P as Proto>::Adapter>;
pub type NTimer<P> = NodeTimer<<P as Proto>::STimer, <P as Proto>::CTimer>;
pub type NState<P> = NodeState<<P as Proto>::SState, <P as Proto>::CState>;
pub type St<P> = ActorModelState<Node<P>, Hist>;
pub type Act<P> = ActorModelAction<Wire<<P as Proto>::Msg>, NTimer<P>, ()>;

/// What `record_msg_out` needs to know.
#[derive(Clone, Debug)]
pub struct RecCfg {
    pub servers: usize,
}

fn record_out<P: Proto>(cfg: &RecCfg, h: &Hist, env: Envelope<&Wire<P::Msg>>) -> Option<Hist> {
    if usize::from(env.src) < cfg.servers {
        return None;
    }
    match env.msg {
        Wire::Peer(m) => P::client_request(m).and_then(|r| h.invoke(env.src, r)),
        Wire::Done(req, outcome) => h.complete(req, outcome.clone()),
        Wire::Invoke(_) => None,
    }
}

/// The model of one run.
pub struct KvModel<P: Proto> {
    pub inner: ActorModel<Node<P>, RecCfg, Hist>,
    pub cfg: ModelCfg,
    pub layout: Layout,
    pub server: P::Server,
    pub servers: usize,
    /// The cold start (before the warm-up).
    pub cold: St<P>,
    /// The start schedule: the warm-up, then the `--prefix` (empty without either).
    pub warmup: Vec<Act<P>>,
    init: St<P>,
    /// When a checker thread first asked for actions: the start of the time budget.
    search_start: OnceLock<Instant>,
}

/// A stable 64-bit fingerprint of a state (for the warm-up search).
pub fn fingerprint<T: Hash>(t: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

fn strip_driver<M: Eq + Hash + Clone>(n: &mut Network<M>) {
    let d = driver();
    match n {
        Network::UnorderedNonDuplicating(m) => m.retain(|e, _| e.dst != d),
        Network::UnorderedDuplicating(set, last) => {
            set.retain(|e| e.dst != d);
            if last.as_ref().is_some_and(|e| e.dst == d) {
                *last = None;
            }
        }
        Network::Ordered(map) => map.retain(|(_, dst), _| *dst != d),
    }
}

/// Every message in the network, with repetitions (stateright's `Network::iter_all` never ends
/// on an ordered network with a flow of two or more messages in 0.31, so this walks the
/// variants itself).
pub fn envelopes<M: Eq + Hash>(n: &Network<M>) -> Vec<Envelope<&M>> {
    let mut out = Vec::new();
    match n {
        Network::UnorderedNonDuplicating(m) => {
            for (e, &c) in m.iter() {
                for _ in 0..c {
                    out.push(Envelope {
                        src: e.src,
                        dst: e.dst,
                        msg: &e.msg,
                    });
                }
            }
        }
        Network::UnorderedDuplicating(set, _) => {
            for e in set.iter() {
                out.push(Envelope {
                    src: e.src,
                    dst: e.dst,
                    msg: &e.msg,
                });
            }
        }
        Network::Ordered(map) => {
            for (&(src, dst), q) in map {
                for msg in q {
                    out.push(Envelope { src, dst, msg });
                }
            }
        }
    }
    out
}

/// The actor an action runs on, if it runs actor code.
pub fn acting<M, T, R>(a: &ActorModelAction<M, T, R>) -> Option<Id> {
    match a {
        ActorModelAction::Deliver { dst, .. } => Some(*dst),
        ActorModelAction::Timeout(id, _) => Some(*id),
        ActorModelAction::Recover(id) => Some(*id),
        ActorModelAction::SelectRandom { actor, .. } => Some(*actor),
        ActorModelAction::Crash(_) | ActorModelAction::Drop(_) => None,
    }
}

impl<P: Proto> KvModel<P> {
    pub fn new(mut cfg: ModelCfg) -> Result<Self, String> {
        cfg.resolve_script();
        let max_key = cfg
            .script
            .iter()
            .flatten()
            .map(|(k, _)| k.0 + 1)
            .max()
            .unwrap_or(1);
        cfg.keys = cfg.keys.max(max_key);
        cfg.validate()?;
        if !P::variants().contains(&cfg.variant.as_str()) {
            return Err(format!(
                "unknown {} variant {:?} (expected one of: {})",
                P::NAME,
                cfg.variant,
                P::variants().join(", ")
            ));
        }
        let layout = Layout::new(cfg.peers, cfg.clients, cfg.peers, 1, cfg.keys)?;
        let (server, adapter) = P::build(&cfg, &layout)?;
        let servers = cfg.peers;
        let mut actors: Vec<Node<P>> = (0..servers)
            .map(|_| KvNode::Server(server.clone()))
            .collect();
        for ops in &cfg.script {
            let mut c = KvClient::new(adapter.clone(), Duration::from_secs(1));
            c.script = ops.clone();
            actors.push(KvNode::Client(c));
        }
        let net = match cfg.network {
            NetKind::Unordered => Network::new_unordered_nonduplicating([]),
            NetKind::Ordered => Network::new_ordered([]),
            NetKind::Duplicating => Network::new_unordered_duplicating([]),
        };
        let inner = ActorModel::new(RecCfg { servers }, Hist::default())
            .actors(actors)
            .init_network(net)
            .lossy_network(if cfg.lossy {
                LossyNetwork::Yes
            } else {
                LossyNetwork::No
            })
            .max_crashes(if cfg.crash_down {
                cfg.crashes
            } else {
                usize::from(cfg.crashes > 0)
            })
            .record_msg_out(record_out::<P>);
        let cold = inner
            .init_states()
            .pop()
            .ok_or("the actor model has no initial state")?;
        let mut m = KvModel {
            inner,
            cfg,
            layout,
            server,
            servers,
            cold: cold.clone(),
            warmup: Vec::new(),
            init: cold,
            search_start: OnceLock::new(),
        };
        let mut cold = m.cold.clone();
        m.tidy(&mut cold, None);
        m.cold = cold.clone();
        m.init = cold.clone();
        if m.cfg.warmup {
            let (path, state) = m.warm(cold)?;
            m.warmup = path;
            m.init = state;
        }
        if !m.cfg.prefix.is_empty() {
            let pats: Vec<&str> = m.cfg.prefix.iter().map(String::as_str).collect();
            let (acts, state) = m
                .follow_from(m.init.clone(), &pats)
                .map_err(|e| format!("--prefix: {e}"))?;
            m.warmup.extend(acts);
            m.init = state;
        }
        Ok(m)
    }

    /// Whether the time budget of a BFS or DFS search is spent. stateright 0.31 looks at
    /// `Checker::timeout` only when a worker thread finds no queued work, which in a long search
    /// does not happen before the end, so `--timeout` alone did not stop one. The harness
    /// therefore enforces it: once `timeout_secs` have passed since a checker thread first
    /// expanded a state, checker threads see no enabled actions, the queues drain within
    /// moments, and the report says `time budget` (not exhaustive). Only stateright's worker
    /// threads (named `checker-N`) are cut off: counterexample paths, which stateright rebuilds
    /// on the calling thread after the search, still replay. Random simulation has a working
    /// timer of its own and is left alone.
    pub fn out_of_time(&self) -> bool {
        let Some(budget) = self.cfg.timeout_secs else {
            return false;
        };
        if self.cfg.mode == Mode::Simulate
            || !std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("checker-"))
        {
            return false;
        }
        let start = *self.search_start.get_or_init(Instant::now);
        start.elapsed().as_secs_f64() >= budget
    }

    /// Post-processing after every step of actor code (see the module docs).
    fn tidy(&self, s: &mut St<P>, actor: Option<Id>) {
        let servers = match actor {
            None => 0..self.servers,
            Some(id) if usize::from(id) < self.servers => usize::from(id)..usize::from(id) + 1,
            Some(_) => 0..0,
        };
        for i in servers {
            if let NodeState::Server(Some(st)) = &*s.actor_states[i] {
                if let Some(st) = P::tidy_server(&self.cfg, st) {
                    s.actor_states[i] = Arc::new(NodeState::Server(Some(st)));
                }
            }
            let drop: Vec<NTimer<P>> = s.timers_set[i]
                .iter()
                .filter(|t| matches!(t, NodeTimer::Server(t) if !P::timer_matters(&self.cfg, t)))
                .cloned()
                .collect();
            for t in drop {
                s.timers_set[i].cancel(&t);
            }
        }
        let client = match actor {
            None => None,
            Some(id) if usize::from(id) >= self.servers => Some(usize::from(id)),
            Some(_) => return,
        };
        strip_driver(&mut s.network);
        let range = match client {
            Some(i) => i..i + 1,
            None => self.servers..s.actor_states.len(),
        };
        for i in range {
            if !self.cfg.client_timeouts {
                s.timers_set[i].cancel(&NodeTimer::Deadline);
            }
            if let NodeState::Client(c) = &*s.actor_states[i] {
                if let Some(a) = P::tidy_client(&self.layout, &c.adapter) {
                    let mut c = c.clone();
                    c.adapter = a;
                    s.actor_states[i] = Arc::new(NodeState::Client(c));
                }
            }
        }
    }

    /// The state of server `i`, if it is a live server.
    pub fn server_state<'a>(&self, s: &'a St<P>, i: usize) -> Option<&'a P::SState> {
        match &*s.actor_states[i] {
            NodeState::Server(Some(st)) => Some(st),
            _ => None,
        }
    }

    /// Two live servers leading the same group in the same term/epoch, if any.
    pub fn leader_conflict(&self, s: &St<P>) -> Option<(Leadership, usize, usize)> {
        let mut seen: Vec<(Leadership, usize)> = Vec::new();
        for i in 0..self.servers {
            if s.crashed[i] {
                continue;
            }
            let Some(st) = self.server_state(s, i) else {
                continue;
            };
            for l in self.server.leadership(st) {
                if let Some(&(_, j)) = seen.iter().find(|(x, _)| *x == l) {
                    return Some((l, j, i));
                }
                seen.push((l, i));
            }
        }
        None
    }

    /// Why durability fails in `s`, if it does.
    pub fn durability_error(&self, s: &St<P>) -> Option<String> {
        if let Some(t) = s.history.lost_ack_text() {
            return Some(t);
        }
        P::durability(self, s).err()
    }

    fn is_settled(&self, s: &St<P>) -> bool {
        let servers: Option<Vec<&P::SState>> =
            (0..self.servers).map(|i| self.server_state(s, i)).collect();
        let Some(states) = servers else { return false };
        let quiet = envelopes(&s.network)
            .iter()
            .all(|e| usize::from(e.src) >= self.servers || usize::from(e.dst) >= self.servers);
        quiet && P::settled(&states)
    }

    /// A server-only schedule from the cold start to a settled state: greedily, deliver the
    /// first deliverable server-to-server message (in stateright's action order), otherwise fire
    /// the allowed timer of highest priority ([`Proto::warmup_rank`]). Deterministic.
    fn warm(&self, start: St<P>) -> Result<(Vec<Act<P>>, St<P>), String> {
        let mut s = start;
        let mut path = Vec::new();
        let srv = |id: &Id| usize::from(*id) < self.servers;
        for _ in 0..2000 {
            if self.is_settled(&s) {
                return Ok((path, s));
            }
            let mut acts = Vec::new();
            self.inner.actions(&s, &mut acts);
            let mut ranked: Vec<(u8, usize, Act<P>)> = acts
                .into_iter()
                .enumerate()
                .filter_map(|(k, a)| {
                    let r = match &a {
                        ActorModelAction::Deliver { src, dst, .. } if srv(src) && srv(dst) => 0,
                        ActorModelAction::Timeout(id, NodeTimer::Server(t)) if srv(id) => {
                            1 + P::warmup_rank(usize::from(*id), t)?
                        }
                        _ => return None,
                    };
                    Some((r, k, a))
                })
                .collect();
            ranked.sort_by_key(|(r, k, _)| (*r, *k));
            let next = ranked.into_iter().find_map(|(_, _, a)| {
                let n = self.next_state(&s, a.clone())?;
                self.within_boundary(&n).then_some((a, n))
            });
            let Some((a, n)) = next else { break };
            path.push(a);
            s = n;
        }
        Err(format!(
            "warm start: the server-only schedule did not make node 0 the settled leader within the boundary ({} steps)",
            path.len()
        ))
    }

    /// The warm-up followed by `path`, as (state before, action) steps, plus the last state.
    #[allow(clippy::type_complexity)] // (state, action, crash?) per step, then the last state
    pub fn full_steps(&self, path: Path<St<P>, Act<P>>) -> (Vec<(St<P>, Act<P>, bool)>, St<P>) {
        let mut steps = Vec::new();
        let mut s = self.cold.clone();
        for a in &self.warmup {
            let n = self.next_state(&s, a.clone()).expect("warm-up replays");
            steps.push((s, a.clone(), true));
            s = n;
        }
        let v = path.into_vec();
        let mut last = s;
        for (st, a) in v {
            match a {
                Some(a) => steps.push((st, a, false)),
                None => last = st,
            }
        }
        (steps, last)
    }

    /// Follows a schedule given as action texts (each step takes the first enabled action whose
    /// [`Model::format_action`] text contains the pattern) from the initial state. For tests and
    /// docs: it shows that a hand-written scenario is a path of the model.
    pub fn follow(&self, patterns: &[&str]) -> Result<Path<St<P>, Act<P>>, String> {
        let (acts, _) = self.follow_from(self.init.clone(), patterns)?;
        Path::from_actions(self, self.init.clone(), &acts)
            .ok_or_else(|| "the schedule does not replay".to_string())
    }

    fn follow_from(&self, start: St<P>, patterns: &[&str]) -> Result<(Vec<Act<P>>, St<P>), String> {
        let mut s = start;
        let mut acts_taken = Vec::new();
        for (k, pat) in patterns.iter().enumerate() {
            let mut acts = Vec::new();
            self.actions(&s, &mut acts);
            let found = acts.into_iter().find_map(|a| {
                if !self.format_action(&a).contains(pat) {
                    return None;
                }
                let n = self.next_state(&s, a.clone())?;
                self.within_boundary(&n).then_some((a, n))
            });
            let Some((a, n)) = found else {
                let mut acts = Vec::new();
                self.actions(&s, &mut acts);
                return Err(format!(
                    "step {}: no enabled action matches {pat:?}; enabled: {}",
                    k + 1,
                    acts.iter()
                        .map(|a| self.format_action(a))
                        .collect::<Vec<_>>()
                        .join(" | ")
                ));
            };
            acts_taken.push(a);
            s = n;
        }
        Ok((acts_taken, s))
    }

    /// Actor name: servers `n0..`, clients `c0..`.
    pub fn actor_name(&self, id: Id) -> String {
        let i = usize::from(id);
        if id == driver() {
            "driver".into()
        } else if i < self.servers {
            format!("n{i}")
        } else {
            format!("c{}", i - self.servers)
        }
    }
}

fn election_safety<P: Proto>(m: &KvModel<P>, s: &St<P>) -> bool {
    m.leader_conflict(s).is_none()
}

fn linearizable<P: Proto>(_: &KvModel<P>, s: &St<P>) -> bool {
    s.history.linearizable()
}

fn durability<P: Proto>(m: &KvModel<P>, s: &St<P>) -> bool {
    s.history.lost_ack.is_none() && P::durability(m, s).is_ok()
}

fn progress<P: Proto>(_: &KvModel<P>, s: &St<P>) -> bool {
    s.history.completed() > 0
}

/// Property names, in report order.
pub const PROPERTIES: [&str; 4] = ["election safety", "linearizable", "durability", "progress"];

impl<P: Proto> Model for KvModel<P> {
    type State = St<P>;
    type Action = Act<P>;

    fn init_states(&self) -> Vec<St<P>> {
        vec![self.init.clone()]
    }

    fn actions(&self, s: &St<P>, actions: &mut Vec<Act<P>>) {
        if self.out_of_time() {
            return;
        }
        self.inner.actions(s, actions);
        let servers = self.servers;
        let reboots_left = self.cfg.crash_down || (s.history.reboots as usize) < self.cfg.crashes;
        actions.retain(|a| match a {
            ActorModelAction::Crash(id) => usize::from(*id) < servers && reboots_left,
            _ => true,
        });
    }

    fn next_state(&self, s: &St<P>, a: Act<P>) -> Option<St<P>> {
        if let (ActorModelAction::Crash(id), false) = (&a, self.cfg.crash_down) {
            // A reboot: crash and restart from durable storage in one step.
            let id = *id;
            let down = self.inner.next_state(s, a)?;
            let mut n = self
                .inner
                .next_state(&down, ActorModelAction::Recover(id))?;
            n.history.reboots = n.history.reboots.saturating_add(1);
            self.tidy(&mut n, Some(id));
            return Some(n);
        }
        let who = acting(&a);
        let mut n = self.inner.next_state(s, a)?;
        if who.is_some() {
            self.tidy(&mut n, who);
        }
        Some(n)
    }

    fn format_action(&self, a: &Act<P>) -> String {
        crate::trace::action_text(self, a)
    }

    fn format_step(&self, last: &St<P>, a: Act<P>) -> Option<String> {
        self.inner.format_step(last, a)
    }

    fn as_svg(&self, path: Path<St<P>, Act<P>>) -> Option<String> {
        let (steps, last) = self.full_steps(path);
        Some(crate::trace::svg(self, &steps, &last))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(PROPERTIES[0], election_safety::<P>),
            Property::always(PROPERTIES[1], linearizable::<P>),
            Property::always(PROPERTIES[2], durability::<P>),
            Property::sometimes(PROPERTIES[3], progress::<P>),
        ]
    }

    fn within_boundary(&self, s: &St<P>) -> bool {
        if s.crashed[self.servers..].iter().any(|&c| c) {
            return false; // clients never crash
        }
        (0..self.servers).all(|i| match &*s.actor_states[i] {
            NodeState::Server(Some(st)) => {
                P::in_bounds(&self.cfg, st, s.actor_storages[i].as_ref())
            }
            _ => true,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Mode;

    #[test]
    fn the_time_budget_stops_a_long_search() {
        // Without a depth bound this search runs for many minutes; stateright's own timeout
        // alone would not stop it.
        for mode in [Mode::Dfs, Mode::Bfs] {
            let mut c = crate::defaults("raft", "faithful").unwrap();
            c.depth = None;
            c.mode = mode;
            c.threads = 1;
            c.timeout_secs = Some(1.0);
            let r = crate::check(c).unwrap();
            assert_eq!(r.stopped_by, "time budget", "{mode:?}");
            assert!(!r.exhaustive);
            assert!(r.seconds < 20.0, "{mode:?}: {} s", r.seconds);
            assert!(!r.has_counterexample());
        }
    }
}
