//! Benchmark: states per second of our harness against stateright's own `paxos` example, in the
//! same process and run, with the same checker settings.
//!
//! The Paxos model below is stateright 0.31's `examples/paxos.rs` (MIT licence, © Jonathan
//! Nadal), reduced to its model: single-decree Paxos servers behind `RegisterActor` clients, a
//! `LinearizabilityTester` over a register, checked with BFS on an unordered non-duplicating
//! network. Only the command-line `main` was left out.

use serde::Serialize;
use stateright::actor::register::{RegisterActor, RegisterMsg, RegisterMsg::*};
use stateright::actor::{majority, model_peers, Actor, ActorModel, Id, Network, Out};
use stateright::semantics::register::Register;
use stateright::semantics::LinearizabilityTester;
use stateright::util::{HashableHashMap, HashableHashSet};
use stateright::{Checker, Expectation, Model};
use std::borrow::Cow;
use std::time::{Duration, Instant};

type Round = u32;
type Ballot = (Round, Id);
type Proposal = (RequestId, Id, Value);
type RequestId = u64;
type Value = char;

#[derive(Clone, Debug, Eq, Hash, PartialEq, PartialOrd, Ord)]
pub enum PaxosMsg {
    Prepare {
        ballot: Ballot,
    },
    Prepared {
        ballot: Ballot,
        last_accepted: Option<(Ballot, Proposal)>,
    },
    Accept {
        ballot: Ballot,
        proposal: Proposal,
    },
    Accepted {
        ballot: Ballot,
    },
    Decided {
        ballot: Ballot,
        proposal: Proposal,
    },
}
use PaxosMsg::*;

#[derive(Clone, Debug, Eq, Hash, PartialEq)]
pub struct PaxosState {
    ballot: Ballot,
    proposal: Option<Proposal>,
    prepares: HashableHashMap<Id, Option<(Ballot, Proposal)>>,
    accepts: HashableHashSet<Id>,
    accepted: Option<(Ballot, Proposal)>,
    is_decided: bool,
}

#[derive(Clone)]
pub struct PaxosActor {
    peer_ids: Vec<Id>,
}

impl Actor for PaxosActor {
    type Msg = RegisterMsg<RequestId, Value, PaxosMsg>;
    type State = PaxosState;
    type Timer = ();
    type Random = ();
    type Storage = ();

    fn name(&self) -> String {
        "Paxos Server".to_owned()
    }

    fn on_start(&self, _id: Id, _storage: &Option<()>, _o: &mut Out<Self>) -> PaxosState {
        PaxosState {
            ballot: (0, Id::from(0)),
            proposal: None,
            prepares: Default::default(),
            accepts: Default::default(),
            accepted: None,
            is_decided: false,
        }
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut Cow<PaxosState>,
        src: Id,
        msg: Self::Msg,
        o: &mut Out<Self>,
    ) {
        if state.is_decided {
            if let Get(request_id) = msg {
                let (_b, (_req_id, _src, value)) =
                    state.accepted.expect("decided but lacks accepted state");
                o.send(src, GetOk(request_id, value));
            };
            return;
        }
        match msg {
            Put(request_id, value) if state.proposal.is_none() => {
                let state = state.to_mut();
                state.proposal = Some((request_id, src, value));
                state.prepares = Default::default();
                state.accepts = Default::default();
                state.ballot = (state.ballot.0 + 1, id);
                state.prepares.insert(id, state.accepted);
                o.broadcast(
                    &self.peer_ids,
                    &Internal(Prepare {
                        ballot: state.ballot,
                    }),
                );
            }
            Internal(Prepare { ballot }) if state.ballot < ballot => {
                state.to_mut().ballot = ballot;
                o.send(
                    src,
                    Internal(Prepared {
                        ballot,
                        last_accepted: state.accepted,
                    }),
                );
            }
            Internal(Prepared {
                ballot,
                last_accepted,
            }) if ballot == state.ballot => {
                let state = state.to_mut();
                state.prepares.insert(src, last_accepted);
                if state.prepares.len() == majority(self.peer_ids.len() + 1) {
                    let proposal = state
                        .prepares
                        .values()
                        .max()
                        .unwrap()
                        .map(|(_b, p)| p)
                        .unwrap_or_else(|| state.proposal.expect("proposal expected"));
                    state.proposal = Some(proposal);
                    state.accepted = Some((ballot, proposal));
                    state.accepts.insert(id);
                    o.broadcast(&self.peer_ids, &Internal(Accept { ballot, proposal }));
                }
            }
            Internal(Accept { ballot, proposal }) if state.ballot <= ballot => {
                let state = state.to_mut();
                state.ballot = ballot;
                state.accepted = Some((ballot, proposal));
                o.send(src, Internal(Accepted { ballot }));
            }
            Internal(Accepted { ballot }) if ballot == state.ballot => {
                let state = state.to_mut();
                state.accepts.insert(src);
                if state.accepts.len() == majority(self.peer_ids.len() + 1) {
                    state.is_decided = true;
                    let proposal = state.proposal.expect("proposal expected");
                    o.broadcast(&self.peer_ids, &Internal(Decided { ballot, proposal }));
                    let (request_id, requester_id, _) = proposal;
                    o.send(requester_id, PutOk(request_id));
                }
            }
            Internal(Decided { ballot, proposal }) => {
                let state = state.to_mut();
                state.ballot = ballot;
                state.accepted = Some((ballot, proposal));
                state.is_decided = true;
            }
            _ => {}
        }
    }
}

pub type PaxosModel =
    ActorModel<RegisterActor<PaxosActor>, (), LinearizabilityTester<Id, Register<Value>>>;

/// stateright's Paxos example model: 3 servers, `clients` clients (one put and one get each).
pub fn paxos_model(clients: usize) -> PaxosModel {
    let servers = 3;
    ActorModel::new((), LinearizabilityTester::new(Register(Value::default())))
        .actors((0..servers).map(|i| {
            RegisterActor::Server(PaxosActor {
                peer_ids: model_peers(i, servers),
            })
        }))
        .actors((0..clients).map(|_| RegisterActor::Client {
            put_count: 1,
            server_count: servers,
        }))
        .init_network(Network::new_unordered_nonduplicating([]))
        .property(Expectation::Always, "linearizable", |_, state| {
            state.history.serialized_history().is_some()
        })
        .property(Expectation::Sometimes, "value chosen", |_, state| {
            for env in state.network.iter_deliverable() {
                if let RegisterMsg::GetOk(_req_id, value) = env.msg {
                    if *value != Value::default() {
                        return true;
                    }
                }
            }
            false
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

/// Exhaustive BFS of stateright's Paxos example with `clients` clients.
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
        model: format!("stateright examples/paxos.rs: 3 servers, {clients} clients"),
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
    fn vendored_paxos_matches_staterights_own_count() {
        // examples/paxos.rs asserts 16,668 unique states for 2 clients (BFS and DFS).
        let c = paxos_model(2).checker().spawn_bfs().join();
        c.assert_properties();
        assert_eq!(c.unique_state_count(), 16_668);
    }
}
