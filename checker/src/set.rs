//! The set checker, after Jepsen's `set` / `set-full` checkers: for every set-valued key (a key
//! with `add` operations), compare the adds with the reads.
//!
//! * The **final read** of a key is its last `ok` read (by completion time); with the workload's
//!   final-reads phase it comes after the final heal and a quiet period.
//! * **lost**: an acknowledged add (`ok`) whose element is missing from the final read.
//! * **unexpected**: an element some read returned that no add of that key had been invoked
//!   with before the read completed.
//! * **recovered**: an element in the final read whose add was not acknowledged (`info`, never
//!   completed, or `fail`); `failed_present` counts the `fail` ones among them, which is a
//!   violation (a `fail` promises the add did not happen).
//! * **stale reads**: `ok` reads that miss an element whose add was acknowledged before the
//!   read was invoked (what a linearizable set never does; eventual consistency does, for a
//!   while).
//! * **convergence**: with a `final-heal` nemesis event in the history, per key, the time from
//!   the heal until the first read of the final run of reads that all return the final value
//!   (so every client, and every coordinator they use, agrees from then on).
//!
//! Verdict: `valid` (nothing lost, nothing unexpected, no failed add present), `invalid`, or
//! `unknown` (a key with acknowledged adds was never read).

use quorumlab_kv::history::{Event, EventType, ProcessId};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What happened to one add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AddState {
    Ok,
    Fail,
    /// info, or never completed.
    Unknown,
}

#[derive(Clone, Debug)]
struct Add {
    elem: u64,
    invoke: u64,
    ack: Option<u64>,
    state: AddState,
}

#[derive(Clone, Debug)]
struct Read {
    invoke: u64,
    complete: u64,
    elems: BTreeSet<u64>,
}

/// One lost add, for the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostAdd {
    pub key: String,
    pub element: u64,
    /// When the add was acknowledged (ns).
    pub acked_ns: u64,
}

/// The counts the checker reports, per key and in total (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SetCounts {
    /// Adds invoked.
    pub attempted: usize,
    /// Adds acknowledged (`ok`).
    pub acknowledged: usize,
    pub lost: usize,
    pub unexpected: usize,
    pub recovered: usize,
    pub failed_present: usize,
    /// `ok` reads.
    pub reads: usize,
    pub stale_reads: usize,
}

impl SetCounts {
    fn add(&mut self, o: &SetCounts) {
        self.attempted += o.attempted;
        self.acknowledged += o.acknowledged;
        self.lost += o.lost;
        self.unexpected += o.unexpected;
        self.recovered += o.recovered;
        self.failed_present += o.failed_present;
        self.reads += o.reads;
        self.stale_reads += o.stale_reads;
    }
}

/// Per key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetKeyResult {
    pub key: String,
    #[serde(flatten)]
    pub counts: SetCounts,
    /// Elements in the final read (`None`: never read).
    pub final_size: Option<usize>,
    /// ns from the final heal until every later read agreed on the final value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convergence_ns: Option<u64>,
}

/// The set checker's result over every set-valued key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetReport {
    /// `valid`, `invalid` or `unknown`.
    pub verdict: String,
    pub keys: usize,
    #[serde(flatten)]
    pub counts: SetCounts,
    /// Keys with acknowledged adds and no ok read.
    pub unread_keys: usize,
    /// Time of the final heal (ns), when the history has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heal_ns: Option<u64>,
    /// The slowest key's convergence after the final heal (ns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convergence_ns: Option<u64>,
    /// Keys whose reads after the heal never settled on one value (fewer than two agreeing
    /// reads at the end).
    pub unconverged_keys: usize,
    /// The first lost adds (at most 20).
    pub lost_examples: Vec<LostAdd>,
    pub per_key: Vec<SetKeyResult>,
}

fn elems_of(v: &Json) -> Option<BTreeSet<u64>> {
    match v {
        Json::Null => Some(BTreeSet::new()),
        Json::Array(a) => a.iter().map(Json::as_u64).collect(),
        _ => None,
    }
}

/// Keys in natural order (`k2` before `k10`).
fn natural(k: &str) -> (String, u64, String) {
    let digits = k.trim_start_matches(|c: char| !c.is_ascii_digit());
    let prefix = &k[..k.len() - digits.len()];
    let n: String = digits.chars().take_while(char::is_ascii_digit).collect();
    (
        prefix.to_string(),
        n.parse().unwrap_or(0),
        digits[n.len()..].to_string(),
    )
}

/// Checks the set-valued keys of a history. `None` when the history has no `add`.
pub fn check_sets(events: &[Event]) -> Option<SetReport> {
    let heal_ns = events
        .iter()
        .rev()
        .find(|e| e.process.is_nemesis() && e.f == "final-heal")
        .map(|e| e.time);
    // Pair invocations with completions per process.
    let mut open: HashMap<&ProcessId, &Event> = HashMap::new();
    let mut adds: BTreeMap<&str, Vec<Add>> = BTreeMap::new();
    let mut reads: BTreeMap<&str, Vec<Read>> = BTreeMap::new();
    for e in events {
        if e.process.is_nemesis() {
            continue;
        }
        match e.kind {
            EventType::Invoke => {
                if let (Some(k), "add") = (e.key.as_deref(), e.f.as_str()) {
                    if let Some(elem) = e.value.as_u64() {
                        adds.entry(k).or_default().push(Add {
                            elem,
                            invoke: e.time,
                            ack: None,
                            state: AddState::Unknown,
                        });
                    }
                }
                open.insert(&e.process, e);
            }
            _ => {
                let Some(inv) = open.remove(&e.process) else {
                    continue;
                };
                let Some(k) = inv.key.as_deref() else {
                    continue;
                };
                match inv.f.as_str() {
                    "add" => {
                        if let Some(a) = adds
                            .get_mut(k)
                            .and_then(|v| v.iter_mut().rev().find(|a| a.invoke == inv.time))
                        {
                            a.state = match e.kind {
                                EventType::Ok => AddState::Ok,
                                EventType::Fail => AddState::Fail,
                                _ => AddState::Unknown,
                            };
                            if a.state == AddState::Ok {
                                a.ack = Some(e.time);
                            }
                        }
                    }
                    "read" | "get" if e.kind == EventType::Ok => {
                        if let Some(elems) = elems_of(&e.value) {
                            reads.entry(k).or_default().push(Read {
                                invoke: inv.time,
                                complete: e.time,
                                elems,
                            });
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    if adds.is_empty() {
        return None;
    }
    let mut keys: Vec<&str> = adds.keys().copied().collect();
    keys.sort_by_key(|k| natural(k));
    let mut r = SetReport {
        verdict: String::new(),
        keys: keys.len(),
        counts: SetCounts::default(),
        unread_keys: 0,
        heal_ns,
        convergence_ns: None,
        unconverged_keys: 0,
        lost_examples: Vec::new(),
        per_key: Vec::new(),
    };
    for k in keys {
        let ka = &adds[k];
        let mut kr: Vec<Read> = reads.remove(k).unwrap_or_default();
        kr.sort_by_key(|x| (x.complete, x.invoke));
        let mut res = SetKeyResult {
            key: k.to_string(),
            counts: SetCounts {
                attempted: ka.len(),
                acknowledged: ka.iter().filter(|a| a.state == AddState::Ok).count(),
                reads: kr.len(),
                ..SetCounts::default()
            },
            final_size: kr.last().map(|x| x.elems.len()),
            convergence_ns: None,
        };
        // Per element: its first invocation and its first acknowledgement. A read is stale
        // when it holds fewer of the elements acknowledged before it began than there are;
        // an element is unexpected when no add of it had been invoked by the read's end. Each
        // read costs its own size, so the whole check is linear in the history.
        let mut first_invoke: HashMap<u64, u64> = HashMap::new();
        let mut first_ack: HashMap<u64, u64> = HashMap::new();
        for a in ka {
            let t = first_invoke.entry(a.elem).or_insert(a.invoke);
            *t = (*t).min(a.invoke);
            if let Some(ack) = a.ack {
                let t = first_ack.entry(a.elem).or_insert(ack);
                *t = (*t).min(ack);
            }
        }
        let mut ack_times: Vec<u64> = first_ack.values().copied().collect();
        ack_times.sort_unstable();
        let mut unexpected: BTreeSet<u64> = BTreeSet::new();
        for read in &kr {
            let acked_before = ack_times.partition_point(|&t| t < read.invoke);
            let held = read
                .elems
                .iter()
                .filter(|e| first_ack.get(e).is_some_and(|&t| t < read.invoke))
                .count();
            if held < acked_before {
                res.counts.stale_reads += 1;
            }
            unexpected.extend(
                read.elems
                    .iter()
                    .filter(|e| first_invoke.get(e).is_none_or(|&t| t > read.complete)),
            );
        }
        res.counts.unexpected = unexpected.len();
        match kr.last() {
            None => {
                if res.counts.acknowledged > 0 {
                    r.unread_keys += 1;
                }
            }
            Some(fin) => {
                let mut seen_lost = BTreeSet::new();
                for a in ka {
                    let present = fin.elems.contains(&a.elem);
                    match a.state {
                        AddState::Ok if !present && seen_lost.insert(a.elem) => {
                            res.counts.lost += 1;
                            if r.lost_examples.len() < 20 {
                                r.lost_examples.push(LostAdd {
                                    key: k.to_string(),
                                    element: a.elem,
                                    acked_ns: a.ack.unwrap_or(0),
                                });
                            }
                        }
                        _ => {}
                    }
                }
                // An element may be added several times (friends): it is recovered only if no
                // add of it was acknowledged.
                let failed: BTreeSet<u64> = ka
                    .iter()
                    .filter(|a| a.state == AddState::Fail)
                    .map(|a| a.elem)
                    .collect();
                let unknown: BTreeSet<u64> = ka
                    .iter()
                    .filter(|a| a.state == AddState::Unknown)
                    .map(|a| a.elem)
                    .collect();
                for e in &fin.elems {
                    if first_ack.contains_key(e) {
                        continue;
                    }
                    if unknown.contains(e) || failed.contains(e) {
                        res.counts.recovered += 1;
                    }
                    if failed.contains(e) && !unknown.contains(e) {
                        res.counts.failed_present += 1;
                    }
                }
                if let Some(h) = heal_ns {
                    let after: Vec<&Read> = kr.iter().filter(|x| x.invoke >= h).collect();
                    let agree = after
                        .iter()
                        .rev()
                        .take_while(|x| x.elems == fin.elems)
                        .count();
                    if agree >= 2 {
                        let first = after[after.len() - agree];
                        res.convergence_ns = Some(first.complete.saturating_sub(h));
                    } else {
                        r.unconverged_keys += 1;
                    }
                }
            }
        }
        r.counts.add(&res.counts);
        r.convergence_ns = r.convergence_ns.max(res.convergence_ns);
        r.per_key.push(res);
    }
    let c = &r.counts;
    r.verdict = if c.lost > 0 || c.unexpected > 0 || c.failed_present > 0 {
        "invalid"
    } else if r.unread_keys > 0 {
        "unknown"
    } else {
        "valid"
    }
    .to_string();
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(time: u64, p: u64, kind: EventType, f: &str, key: &str, value: Json) -> Event {
        Event {
            index: 0,
            time,
            process: ProcessId::Client(p),
            kind,
            f: f.into(),
            key: Some(key.into()),
            value,
            error: None,
        }
    }

    fn add(h: &mut Vec<Event>, p: u64, k: &str, e: u64, t0: u64, t1: u64, kind: EventType) {
        h.push(ev(t0, p, EventType::Invoke, "add", k, json!(e)));
        h.push(ev(t1, p, kind, "add", k, json!(e)));
    }

    fn read(h: &mut Vec<Event>, p: u64, k: &str, v: Json, t0: u64, t1: u64) {
        h.push(ev(t0, p, EventType::Invoke, "read", k, Json::Null));
        h.push(ev(t1, p, EventType::Ok, "read", k, v));
    }

    #[test]
    fn no_adds_no_report() {
        let mut h = Vec::new();
        read(&mut h, 0, "k0", json!(1), 0, 1);
        assert!(check_sets(&h).is_none());
    }

    #[test]
    fn lost_unexpected_recovered_stale() {
        let mut h = Vec::new();
        add(&mut h, 0, "k0", 1, 0, 10, EventType::Ok);
        add(&mut h, 0, "k0", 2, 20, 30, EventType::Ok);
        add(&mut h, 1, "k0", 3, 20, 30, EventType::Info);
        add(&mut h, 1, "k0", 4, 40, 50, EventType::Fail);
        read(&mut h, 2, "k0", json!([1]), 35, 36); // stale: misses 2
        read(&mut h, 2, "k0", json!([1, 3, 4, 9]), 60, 70); // final: 2 lost, 9 unexpected
        let r = check_sets(&h).unwrap();
        assert_eq!(r.verdict, "invalid");
        assert_eq!((r.counts.attempted, r.counts.acknowledged), (4, 2));
        assert_eq!(r.counts.lost, 1);
        assert_eq!(r.lost_examples[0].element, 2);
        assert_eq!(r.counts.unexpected, 1);
        assert_eq!(r.counts.recovered, 2);
        assert_eq!(r.counts.failed_present, 1);
        assert_eq!(r.counts.stale_reads, 2);
    }

    #[test]
    fn valid_with_convergence_after_heal() {
        let mut h = Vec::new();
        add(&mut h, 0, "k1", 1, 0, 10, EventType::Ok);
        add(&mut h, 1, "k1", 2, 0, 10, EventType::Ok);
        h.push(Event::nemesis(
            100,
            EventType::Info,
            "final-heal",
            json!({"description": "x"}),
        ));
        read(&mut h, 2, "k1", json!([1]), 110, 120); // not yet converged
        read(&mut h, 3, "k1", json!([1, 2]), 200, 210);
        read(&mut h, 2, "k1", json!([1, 2]), 300, 310);
        let r = check_sets(&h).unwrap();
        assert_eq!(r.verdict, "valid");
        assert_eq!(r.counts.lost, 0);
        assert_eq!(r.heal_ns, Some(100));
        assert_eq!(r.convergence_ns, Some(110));
        assert_eq!(r.unconverged_keys, 0);
    }

    #[test]
    fn unread_key_is_unknown() {
        let mut h = Vec::new();
        add(&mut h, 0, "k0", 1, 0, 10, EventType::Ok);
        assert_eq!(check_sets(&h).unwrap().verdict, "unknown");
    }
}
