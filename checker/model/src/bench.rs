//! Benchmark: states per second of our harness against a reference model of the size of
//! stateright's own `paxos` example, in the same process and run, with the same checker settings.
//!
//! The reference is our own compact single-decree Paxos, written for this comparison: it
//! re-implements the protocol of stateright 0.31's `examples/paxos.rs` — the same messages, the
//! same server state, the same clients (stateright's `RegisterActor`: one put, then one get),
//! the same unordered non-duplicating network and the same `LinearizabilityTester` over a
//! register — so that its state space is the example's. The test below checks that: with two
//! clients it has exactly the 16,668 unique states that the example asserts for itself.
//!
//! Protocol, per server: a client's `Put` makes the server a proposer for a fresh ballot
//! (phase 1a to its peers, counting its own promise); on a majority of promises it proposes the
//! value of the highest ballot any promise reported, else the client's (phase 2a, counting its
//! own acceptance); on a majority of acceptances the value is chosen: the proposer tells its
//! peers and acknowledges the put of the proposal's client. A server answers `Get` only once it
//! knows the chosen value. Each server takes on at most one client request.

use serde::Serialize;
use stateright::actor::register::{RegisterActor, RegisterMsg};
use stateright::actor::{majority, model_peers, Actor, ActorModel, Id, Network, Out};
use stateright::semantics::register::Register;
use stateright::semantics::LinearizabilityTester;
use stateright::{Checker, Expectation, Model};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Register values, as stateright's `RegisterActor` clients write them (`'A'`, `'B'`, …).
type Value = char;
/// Request ids of `RegisterActor` clients.
type ReqId = u64;

/// A ballot: round first, then the proposing server to break ties.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ballot {
    round: u32,
    by: Id,
}

/// What is being decided: a client's put (request id, the client, the value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Proposal {
    req: ReqId,
    client: Id,
    value: Value,
}

/// An acceptance: the proposal an acceptor took, under which ballot. Ordered by ballot first,
/// so the highest of a set of acceptances is the one a proposer must adopt.
type Vote = (Ballot, Proposal);

/// Messages between servers (Lamport's phase names).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// 1a: "promise to ignore ballots below this one".
    Propose(Ballot),
    /// 1b: the promise, with the sender's last acceptance, if any.
    Promise(Ballot, Option<Vote>),
    /// 2a: "accept this proposal under this ballot".
    Accept(Ballot, Proposal),
    /// 2b: the acceptance.
    Accepted(Ballot),
    /// The proposal is chosen.
    Chosen(Ballot, Proposal),
}

type Msg = RegisterMsg<ReqId, Value, Phase>;

/// The acceptor's side of a server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Acceptor {
    /// The highest ballot this server has seen. It is also the ballot of the server's own
    /// proposal while that is current: a higher ballot from a peer supersedes it, and answers
    /// for the superseded ballot are then ignored.
    promised: Ballot,
    /// The last proposal accepted, under which ballot.
    accepted: Option<Vote>,
}

/// The proposer's side of a server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Proposer {
    /// The proposal driven: the client's put, replaced in phase 2 by the one adopted.
    driving: Option<Proposal>,
    /// Phase 1 answers for the current ballot, by server (own promise included).
    promises: BTreeMap<Id, Option<Vote>>,
    /// Phase 2 acceptances for the current ballot (own included).
    acceptances: BTreeSet<Id>,
}

/// One server's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PaxosState {
    acceptor: Acceptor,
    proposer: Proposer,
    /// This server knows the chosen value (it is `acceptor.accepted`).
    learned: bool,
}

impl PaxosState {
    /// The chosen value, once learned.
    fn chosen(&self) -> Option<Value> {
        if !self.learned {
            return None;
        }
        let (_, p) = self.acceptor.accepted.expect("a learned value is accepted");
        Some(p.value)
    }
}

/// A single-decree Paxos server among `peers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaxosServer {
    peers: Vec<Id>,
}

impl PaxosServer {
    /// Votes needed: a majority of all servers (the peers and this one).
    fn quorum(&self) -> usize {
        majority(self.peers.len() + 1)
    }

    fn tell_peers(&self, o: &mut Out<Self>, m: Phase) {
        o.broadcast(&self.peers, &RegisterMsg::Internal(m));
    }

    /// A client's put: start a new ballot, above any seen, to get it chosen.
    fn start(&self, me: Id, st: &mut PaxosState, p: Proposal, o: &mut Out<Self>) {
        let ballot = Ballot {
            round: st.acceptor.promised.round + 1,
            by: me,
        };
        st.acceptor.promised = ballot;
        st.proposer = Proposer {
            driving: Some(p),
            promises: BTreeMap::from([(me, st.acceptor.accepted)]),
            acceptances: BTreeSet::new(),
        };
        self.tell_peers(o, Phase::Propose(ballot));
    }

    /// A promise for our current ballot; with a quorum, phase 2 starts.
    fn on_promise(
        &self,
        me: Id,
        st: &mut PaxosState,
        from: Id,
        b: Ballot,
        last: Option<Vote>,
        o: &mut Out<Self>,
    ) {
        st.proposer.promises.insert(from, last);
        if st.proposer.promises.len() != self.quorum() {
            return; // not yet, or phase 2 already started
        }
        // Adopt the proposal of the highest acceptance reported, or else our client's.
        let adopted = match st.proposer.promises.values().flatten().max() {
            Some(&(_, p)) => p,
            None => st.proposer.driving.expect("a proposer drives a proposal"),
        };
        st.proposer.driving = Some(adopted);
        st.acceptor.accepted = Some((b, adopted));
        st.proposer.acceptances.insert(me);
        self.tell_peers(o, Phase::Accept(b, adopted));
    }

    /// An acceptance for our current ballot; with a quorum, the proposal is chosen.
    fn on_accepted(&self, st: &mut PaxosState, from: Id, b: Ballot, o: &mut Out<Self>) {
        st.proposer.acceptances.insert(from);
        if st.proposer.acceptances.len() != self.quorum() {
            return;
        }
        st.learned = true;
        let p = st.proposer.driving.expect("a proposer drives a proposal");
        self.tell_peers(o, Phase::Chosen(b, p));
        o.send(p.client, RegisterMsg::PutOk(p.req));
    }
}

impl Actor for PaxosServer {
    type Msg = Msg;
    type State = PaxosState;
    type Timer = ();
    type Random = ();
    type Storage = ();

    fn name(&self) -> String {
        "Paxos server".into()
    }

    fn on_start(&self, _id: Id, _storage: &Option<()>, _o: &mut Out<Self>) -> PaxosState {
        PaxosState {
            acceptor: Acceptor {
                promised: Ballot::default(),
                accepted: None,
            },
            proposer: Proposer {
                driving: None,
                promises: BTreeMap::new(),
                acceptances: BTreeSet::new(),
            },
            learned: false,
        }
    }

    fn on_msg(&self, me: Id, st: &mut Cow<PaxosState>, from: Id, msg: Msg, o: &mut Out<Self>) {
        use Phase::*;
        use RegisterMsg::{Get, GetOk, Internal, Put};
        // Once the value is known, only reads are served; everything else is moot.
        if let Some(v) = st.chosen() {
            if let Get(req) = msg {
                o.send(from, GetOk(req, v));
            }
            return;
        }
        match msg {
            // One client request per server: later puts stay unanswered.
            Put(req, value) if st.proposer.driving.is_none() => {
                let p = Proposal {
                    req,
                    client: from,
                    value,
                };
                self.start(me, st.to_mut(), p, o);
            }
            Internal(Propose(b)) if b > st.acceptor.promised => {
                st.to_mut().acceptor.promised = b;
                o.send(from, Internal(Promise(b, st.acceptor.accepted)));
            }
            Internal(Promise(b, last)) if b == st.acceptor.promised => {
                self.on_promise(me, st.to_mut(), from, b, last, o);
            }
            Internal(Accept(b, p)) if b >= st.acceptor.promised => {
                let a = &mut st.to_mut().acceptor;
                a.promised = b;
                a.accepted = Some((b, p));
                o.send(from, Internal(Accepted(b)));
            }
            Internal(Accepted(b)) if b == st.acceptor.promised => {
                self.on_accepted(st.to_mut(), from, b, o);
            }
            Internal(Chosen(b, p)) => {
                let st = st.to_mut();
                st.acceptor.promised = b;
                st.acceptor.accepted = Some((b, p));
                st.learned = true;
            }
            _ => {} // stale ballots; reads before the value is known
        }
    }
}

pub type PaxosModel =
    ActorModel<RegisterActor<PaxosServer>, (), LinearizabilityTester<Id, Register<Value>>>;

/// The reference model: 3 Paxos servers and `clients` `RegisterActor` clients (one put and one
/// get each) on an unordered non-duplicating network; properties `linearizable` (always) and
/// `value chosen` (sometimes: some get returns a written value).
pub fn paxos_model(clients: usize) -> PaxosModel {
    const SERVERS: usize = 3;
    let servers = (0..SERVERS).map(|i| {
        RegisterActor::Server(PaxosServer {
            peers: model_peers(i, SERVERS),
        })
    });
    let clients = (0..clients).map(|_| RegisterActor::Client {
        put_count: 1,
        server_count: SERVERS,
    });
    ActorModel::new((), LinearizabilityTester::new(Register(Value::default())))
        .actors(servers)
        .actors(clients)
        .init_network(Network::new_unordered_nonduplicating([]))
        .property(Expectation::Always, "linearizable", |_, s| {
            s.history.serialized_history().is_some()
        })
        .property(Expectation::Sometimes, "value chosen", |_, s| {
            s.network
                .iter_deliverable()
                .any(|e| matches!(e.msg, RegisterMsg::GetOk(_, v) if *v != Value::default()))
        })
        .record_msg_in(RegisterMsg::record_returns)
        .record_msg_out(RegisterMsg::record_invocations)
}

/// One measured run.
#[derive(Clone, Debug, Serialize)]
pub struct Measure {
    pub model: String,
    pub threads: usize,
    pub states: usize,
    pub unique_states: usize,
    pub depth: usize,
    pub seconds: f64,
    pub states_per_second: f64,
    pub exhaustive: bool,
}

/// Exhaustive BFS of the reference Paxos model with `clients` clients.
pub fn measure_paxos(clients: usize, threads: usize, budget: Duration) -> Measure {
    let t = Instant::now();
    let c = paxos_model(clients)
        .checker()
        .threads(threads)
        .timeout(budget)
        .spawn_bfs()
        .join();
    let seconds = t.elapsed().as_secs_f64();
    Measure {
        model: format!(
            "Paxos (our re-implementation of stateright's example): 3 servers, {clients} clients"
        ),
        threads,
        states: c.state_count(),
        unique_states: c.unique_state_count(),
        depth: c.max_depth(),
        seconds,
        states_per_second: c.state_count() as f64 / seconds.max(1e-9),
        exhaustive: c.is_done() && seconds < budget.as_secs_f64() * 0.98,
    }
}

/// One run of our harness, as a [`Measure`].
pub fn measure_ours(cfg: crate::ModelCfg) -> Result<Measure, String> {
    let depth = cfg.depth;
    let r = crate::check(cfg)?;
    Ok(Measure {
        model: format!(
            "quorumlab {}{}",
            r.config,
            depth.map_or(String::new(), |d| format!(", depth ≤ {d}"))
        ),
        threads: r.threads,
        states: r.states,
        unique_states: r.unique_states,
        depth: r.depth,
        seconds: r.seconds,
        states_per_second: r.states_per_second,
        exhaustive: r.exhaustive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paxos_has_the_size_of_staterights_example() {
        // stateright's examples/paxos.rs asserts 16,668 unique states for 2 clients.
        let c = paxos_model(2).checker().spawn_bfs().join();
        c.assert_properties();
        assert_eq!(c.unique_state_count(), 16_668);
        let d = paxos_model(2).checker().spawn_dfs().join();
        assert_eq!(d.unique_state_count(), 16_668);
    }
}
