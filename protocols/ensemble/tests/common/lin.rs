//! Linearizability of the test histories, by quorumlab's own checker (`quorumlab-checker`):
//! the calls are turned into a history of events in time order and checked per key.

use super::Call;
use quorumlab_checker::{check_events, CheckOptions, Verdict};
use quorumlab_kv::history::Event;

/// The calls as a history: invocations and completions in time order (an invocation before a
/// completion at the same instant); never-completed calls stay open. Every call is its own
/// process (a test client may start a call while an earlier one is still unanswered).
fn history(calls: &[Call]) -> Vec<Event> {
    let mut timed: Vec<(u64, bool, Event)> = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        let process = i as u64;
        timed.push((c.invoke, false, Event::invoke(c.invoke, process, &c.req)));
        if let Some((t, o)) = &c.done {
            timed.push((*t, true, Event::complete(*t, process, &c.req, o)));
        }
    }
    timed.sort_by_key(|(t, done, _)| (*t, *done));
    timed
        .into_iter()
        .enumerate()
        .map(|(i, (_, _, mut e))| {
            e.index = i as u64;
            e
        })
        .collect()
}

/// The keys found not linearizable (a check that cannot decide fails the test).
pub fn bad_keys(calls: &[Call]) -> Vec<u32> {
    let report = check_events(&history(calls), &CheckOptions::default());
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
