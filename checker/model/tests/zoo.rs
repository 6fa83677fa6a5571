//! The bug zoo: every variant of raft and ensemble is caught by the model checker with its
//! default configuration, or (lease variants) shown in the timed simulator; the faithful
//! protocols hold in the same configurations. `cargo test --release -p quorumlab-model --test zoo
//! -- --ignored` also runs the heavy entries (minutes, several GB).

use quorumlab_model::zoo::{self, Expect};

fn run(heavy: bool) {
    for e in zoo::entries().into_iter().filter(|e| e.heavy == heavy) {
        let row = zoo::run(&e).unwrap_or_else(|err| panic!("{} {}: {err}", e.protocol, e.variant));
        println!(
            "{} {} ({}): found {:?} in {:?} steps, {} unique states, {:.2} s",
            row.protocol,
            row.variant,
            row.label,
            row.found,
            row.searched_steps,
            row.unique_states,
            row.seconds
        );
        assert!(
            row.as_expected,
            "{} {} ({}): expected {:?}, found {:?}",
            e.protocol, e.variant, e.label, e.expect, row.found
        );
        if let Expect::Caught(_) = e.expect {
            assert!(row.trace_steps.is_some(), "a counterexample trace");
        }
    }
}

#[test]
fn zoo_light_entries_are_found_as_expected() {
    run(false);
}

#[test]
#[ignore = "minutes and several GB: run with --ignored"]
fn zoo_heavy_entries_are_found_as_expected() {
    run(true);
}

/// The lease teaching case, timed side: the faithful leases are safe with real clocks and with
/// drift inside the bound, and serve a stale read when the old leader's clock is far too slow;
/// `unbounded_lease` is stale with real clocks; `lease_pr49` is not a safety bug here.
#[test]
fn leases_are_safe_only_under_bounded_drift() {
    use quorumlab_model::lease;
    let stale = |r: Result<lease::LeaseRun, String>| r.expect("scenario runs").stale;
    assert!(!stale(lease::raft("faithful", 1.0)));
    assert!(!stale(lease::raft("faithful", 0.9)));
    assert!(stale(lease::raft("faithful", 0.1)));
    assert!(stale(lease::raft("unbounded_lease", 1.0)));
    assert!(!stale(lease::ensemble("faithful", 1.0)));
    assert!(stale(lease::ensemble("faithful", 0.02)));
    assert!(!stale(lease::ensemble("lease_pr49", 1.0)));
}

/// The worked counterexample of docs/model-checking.md replays as a path of the model.
#[test]
fn documented_schedule_replays() {
    use quorumlab_model::{defaults, KvModel, RaftProto};
    let m = KvModel::<RaftProto>::new(defaults("raft", "volatile_vote").unwrap()).unwrap();
    let path = m
        .follow(&[
            "timeout n0: Election",
            "timeout n1: Election",
            "timeout n2: LeaderContact",
            "deliver n0 → n2: vote?",
            "deliver n2 → n0: vote",
            "reboot n2",
            "timeout n2: LeaderContact",
            "deliver n1 → n2: vote?",
            "deliver n2 → n1: vote",
        ])
        .expect("the schedule is a path of the model");
    assert!(m.leader_conflict(path.last_state()).is_some());
}

/// Sets in the model: raft and ensemble with concurrent adds (and a read) keep every property
/// within a small depth bound, and raft finds an example of progress.
#[test]
fn adds_hold_in_both_protocols() {
    for protocol in ["raft", "ensemble"] {
        let mut cfg = quorumlab_model::defaults(protocol, "faithful").unwrap();
        cfg.script = quorumlab_model::config::parse_script("a1,r; a2").unwrap();
        cfg.depth = Some(7);
        let r = quorumlab_model::check(cfg).unwrap();
        assert!(
            r.unique_states > 1000,
            "{protocol}: {} states",
            r.unique_states
        );
        for p in &r.properties {
            assert!(
                p.status != "counterexample" && p.status != "violated",
                "{protocol}: {} {}: {:?}",
                p.name,
                p.status,
                p.reason
            );
        }
    }
}
