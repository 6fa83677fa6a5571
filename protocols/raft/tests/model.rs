//! The same `Server` actor under stateright's model checker: a smoke test that the actor fits
//! `ActorModel` (message/timer ordering, thread safety, crash/recover through `Out::save`),
//! that faithful Raft keeps election safety in a bounded search, and that the
//! `volatile_vote` variant is caught. The full model-checking harness lives in `checker/`.

use quorumlab_kv::Layout;
use quorumlab_raft::{Params, Server, Variant};
use stateright::actor::{ActorModel, ActorModelState, Network};
use stateright::{Checker, Expectation, Model};
use std::time::Duration;

fn model(variant: Variant) -> ActorModel<Server, (), ()> {
    let layout = Layout::new(3, 0, 3, 1, 1).unwrap();
    let params = Params {
        variant,
        check_quorum: false,
        ..Params::default()
    };
    let server = Server::new(layout, params);
    ActorModel::new((), ())
        .actors((0..3).map(|_| server.clone()))
        .init_network(Network::new_unordered_nonduplicating([]))
        .max_crashes(1)
        .property(Expectation::Always, "election safety", election_safety)
        .within_boundary(first_term_only)
}

/// Keeps the search to term 1 (one round of elections), which is where a forgotten vote first
/// shows.
fn first_term_only(_: &(), s: &ActorModelState<Server, ()>) -> bool {
    s.actor_states
        .iter()
        .all(|st| st.groups.iter().flatten().all(|r| r.term() <= 1))
}

/// No two replicas lead the same group in the same term.
fn election_safety(_: &ActorModel<Server, (), ()>, s: &ActorModelState<Server, ()>) -> bool {
    let mut leaders = Vec::new();
    for st in &s.actor_states {
        for r in st.groups.iter().flatten() {
            if r.is_leader() {
                if leaders.contains(&(r.group, r.term())) {
                    return false;
                }
                leaders.push((r.group, r.term()));
            }
        }
    }
    true
}

#[test]
fn faithful_raft_keeps_election_safety_in_a_time_bounded_search() {
    let checker = model(Variant::Faithful)
        .checker()
        .threads(2)
        .timeout(Duration::from_secs(10))
        .spawn_bfs()
        .join();
    checker.assert_no_discovery("election safety");
    // Bounded by the 10 s budget, not necessarily exhaustive.
    println!(
        "faithful: {} unique states searched, no counterexample",
        checker.unique_state_count()
    );
}

#[test]
fn volatile_vote_is_caught_by_the_model_checker() {
    let checker = model(Variant::VolatileVote)
        .checker()
        .threads(2)
        .timeout(Duration::from_secs(60))
        .spawn_bfs()
        .join();
    let path = checker
        .discovery("election safety")
        .expect("two leaders in one term after a restart that forgot the vote");
    println!(
        "volatile_vote: counterexample of {} steps after {} states",
        path.into_actions().len(),
        checker.unique_state_count()
    );
}
