//! Property tests.
//!
//! * histories produced by a sequential in-memory KV with random real-time overlaps (and info
//!   ops, plain fails, failed preconditions, appends, or set adds) are always linearizable;
//! * changing one read's value to one never written makes them non-linearizable;
//! * on tiny random histories (up to 9 ops, not linearizable by construction), the checker agrees with an
//!   independent brute-force search over every order and every subset of info ops.

use proptest::prelude::*;
use quorumlab_checker::gen::{corrupt_read, generate, GenConfig};
use quorumlab_checker::{check_events, check_history, parse_jsonl, CheckOptions, Verdict};
use quorumlab_kv::history::{write_jsonl, Event, EventType, ProcessId};
use serde_json::{json, Value as Json};
use std::time::Duration;

fn opts() -> CheckOptions {
    CheckOptions {
        timeout: Some(Duration::from_secs(20)),
        memory_limit: Some(256 << 20),
        threads: Some(1),
    }
}

fn config() -> impl Strategy<Value = GenConfig> {
    (
        1usize..300,
        1usize..6,
        1usize..10,
        any::<u64>(),
        prop_oneof![Just(0.0f64), Just(0.05), Just(0.2)],
        prop_oneof![Just(0.0), Just(0.1)],
        0u8..3,
    )
        .prop_map(|(ops, keys, clients, seed, info, fail, kind)| {
            let (append, sets) = (kind == 1, kind == 2);
            // many info appends on one key are exponential for any Wing & Gong checker (each
            // may or may not have been applied, and every order gives another string): they
            // end as `unknown` within the budget (see docs/checker.md), so keep them few here
            let (ops, info) = if append {
                (ops.min(150), f64::min(info, 0.05))
            } else {
                (ops, info)
            };
            let mut c = GenConfig::new(ops, keys, clients, seed);
            c.info_rate = info;
            c.fail_rate = fail;
            c.append = append;
            c.sets = sets;
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn sequential_kv_histories_are_linearizable(cfg in config()) {
        let events = generate(&cfg);
        let r = check_events(&events, &opts());
        prop_assert_eq!(r.verdict, Verdict::Linearizable, "{}", r.explain());
        // the same through the JSONL text path
        let mut text = Vec::new();
        write_jsonl(&mut text, &events).unwrap();
        let h = parse_jsonl(std::str::from_utf8(&text).unwrap()).unwrap();
        let r2 = check_history(&h, &opts()).unwrap();
        prop_assert_eq!(r2.verdict, Verdict::Linearizable);
    }

    #[test]
    fn a_read_of_a_value_never_written_is_caught(cfg in config(), n in any::<usize>()) {
        let mut events = generate(&cfg);
        prop_assume!(corrupt_read(&mut events, n));
        let r = check_events(&events, &opts());
        prop_assert_eq!(r.verdict, Verdict::NotLinearizable);
        prop_assert_eq!(r.violations.len(), 1);
        let v = &r.violations[0];
        let f = &v.ops[v.failing_op.unwrap()];
        prop_assert_eq!(f.f.as_str(), "read");
    }
}

// ---------------------------------------------------------------------------------------------
// Brute force reference

#[derive(Clone, Debug)]
struct BOp {
    f: &'static str,
    arg: Json,
    out: Json,
    /// 0 ok, 1 info, 2 fail with precondition, 3 plain fail
    outcome: u8,
    call: u64,
    ret: u64,
}

fn text(v: &Option<Json>) -> String {
    match v {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(o) => o.to_string(),
    }
}

fn some(v: &Json) -> Option<Json> {
    (!v.is_null()).then(|| v.clone())
}

fn matches(state: &Option<Json>, e: &Json) -> bool {
    match e {
        Json::Null => state.is_none(),
        e => state.as_ref() == Some(e),
    }
}

/// The spec, written independently of the checker's model.
fn bf_step(state: &Option<Json>, op: &BOp) -> Option<Option<Json>> {
    let precondition_failed = op.outcome == 2;
    match op.f {
        "read" => {
            let ok = match &op.out {
                Json::Null => state.is_none(),
                Json::String(s) if s.is_empty() => {
                    state.is_none() || state.as_ref() == Some(&op.out)
                }
                o => state.as_ref() == Some(o),
            };
            ok.then(|| state.clone())
        }
        "write" => Some(some(&op.arg)),
        "delete" => Some(None),
        "append" => Some(Some(Json::String(text(state) + &text(&some(&op.arg))))),
        "cas" => {
            let (e, n) = (&op.arg[0], &op.arg[1]);
            if precondition_failed {
                (!matches(state, e)).then(|| state.clone())
            } else {
                matches(state, e).then(|| some(n))
            }
        }
        "create" => {
            if precondition_failed {
                state.is_some().then(|| state.clone())
            } else {
                state.is_none().then(|| some(&op.arg))
            }
        }
        _ => unreachable!(),
    }
}

/// Is there an order of the required ops plus any subset of the info ops, respecting real
/// time (an op that completed before another was invoked comes first), that the spec accepts?
fn brute_force(ops: &[BOp]) -> bool {
    // which ops take part: ok and precondition-failed are required; info optional (info reads
    // constrain nothing); plain fails never took effect
    let required: Vec<bool> = ops
        .iter()
        .map(|o| o.outcome == 0 || o.outcome == 2)
        .collect();
    let optional: Vec<bool> = ops
        .iter()
        .map(|o| o.outcome == 1 && o.f != "read")
        .collect();
    fn dfs(
        ops: &[BOp],
        req: &[bool],
        opt: &[bool],
        used: &mut Vec<bool>,
        state: &Option<Json>,
    ) -> bool {
        if (0..ops.len()).all(|i| !req[i] || used[i]) {
            return true;
        }
        for x in 0..ops.len() {
            if used[x] || !(req[x] || opt[x]) {
                continue;
            }
            // every required op that completed before x was invoked must be placed already
            let blocked =
                (0..ops.len()).any(|y| req[y] && !used[y] && y != x && ops[y].ret < ops[x].call);
            if blocked {
                continue;
            }
            if let Some(ns) = bf_step(state, &ops[x]) {
                used[x] = true;
                if dfs(ops, req, opt, used, &ns) {
                    return true;
                }
                used[x] = false;
            }
        }
        false
    }
    dfs(
        ops,
        &required,
        &optional,
        &mut vec![false; ops.len()],
        &None,
    )
}

const FS: [&str; 6] = ["read", "write", "cas", "create", "delete", "append"];

fn value(k: u8) -> Json {
    match k % 6 {
        0 => Json::Null,
        1 => json!(1),
        2 => json!(2),
        3 => json!("a"),
        4 => json!("1a"),
        _ => json!(""),
    }
}

/// Builds ops and their events. Times are event positions: each op gets distinct call and
/// return slots, so "completed before invoked" is unambiguous.
fn build(raw: &[(u8, u8, u8, u8, u8, u16)]) -> (Vec<BOp>, Vec<Event>) {
    let n = raw.len();
    // slots: order 2n endpoints by a random key, then each op's first endpoint is its call
    let mut ends: Vec<(u16, usize, usize)> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        ends.push((r.5 & 0xff, i, 0));
        ends.push((r.5 >> 8, i, 1));
    }
    ends.sort();
    let mut call = vec![u64::MAX; n];
    let mut ret = vec![u64::MAX; n];
    for (slot, &(_, i, _)) in ends.iter().enumerate() {
        if call[i] == u64::MAX {
            call[i] = slot as u64;
        } else {
            ret[i] = slot as u64;
        }
    }
    let mut ops = Vec::new();
    for (i, &(f, a, b, outcome, o, _)) in raw.iter().enumerate() {
        let f = FS[f as usize % FS.len()];
        let arg = match f {
            "read" | "delete" => Json::Null,
            "cas" => json!([value(a), value(b)]),
            "append" => [json!("a"), json!("b"), json!(1)][a as usize % 3].clone(),
            _ => value(a),
        };
        let outcome = match outcome % 10 {
            0..=5 => 0,
            6 | 7 => 1,
            8 if matches!(f, "cas" | "create") => 2,
            8 => 0,
            _ => 3,
        };
        ops.push(BOp {
            f,
            arg,
            out: if f == "read" { value(o) } else { Json::Null },
            outcome,
            call: call[i],
            ret: ret[i],
        });
    }
    let mut slots: Vec<(u64, usize, bool)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        slots.push((op.call, i, true));
        // some info ops never complete at all
        if !(op.outcome == 1 && op.ret % 2 == 0) {
            slots.push((op.ret, i, false));
        }
    }
    slots.sort();
    let events = slots
        .into_iter()
        .enumerate()
        .map(|(index, (t, i, is_call))| {
            let op = &ops[i];
            let (kind, value, error) = if is_call {
                (EventType::Invoke, op.arg.clone(), None)
            } else {
                match op.outcome {
                    0 => (
                        EventType::Ok,
                        if op.f == "read" {
                            op.out.clone()
                        } else {
                            op.arg.clone()
                        },
                        None,
                    ),
                    1 => (EventType::Info, op.arg.clone(), None),
                    2 => (
                        EventType::Fail,
                        op.arg.clone(),
                        Some("precondition".to_string()),
                    ),
                    _ => (EventType::Fail, op.arg.clone(), None),
                }
            };
            Event {
                index: index as u64,
                time: t,
                process: ProcessId::Client(i as u64),
                kind,
                f: op.f.to_string(),
                key: None,
                value,
                error,
            }
        })
        .collect();
    // info ops never completed have no return for the brute force either (ret = ∞ is the
    // same as any return: info ops never block)
    (ops, events)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_brute_force(raw in prop::collection::vec(
        (0u8..6, 0u8..6, 0u8..6, 0u8..10, 0u8..6, any::<u16>()), 1..=9))
    {
        let (ops, events) = build(&raw);
        let want = brute_force(&ops);
        let r = check_events(&events, &opts());
        prop_assert_eq!(r.error.as_deref(), None);
        let got = r.verdict == Verdict::Linearizable;
        prop_assert_eq!(got, want, "ops: {:#?}\nreport: {}", ops, r.explain());
        if !got {
            // the partial linearization is a valid prefix under the spec, and its values
            // are the ones reported
            let v = &r.violations[0];
            let mut state: Option<Json> = None;
            for (k, &id) in v.linearization.iter().enumerate() {
                let ev = &events[v.ops[id].invoke_index as usize];
                let ProcessId::Client(i) = ev.process else { unreachable!() };
                let next = bf_step(&state, &ops[i as usize]);
                prop_assert!(next.is_some(), "step {} of the partial linearization is invalid", k);
                state = next.unwrap();
                prop_assert_eq!(&state.clone().unwrap_or(Json::Null), &v.values_after[k]);
            }
            prop_assert!(v.failing_op.is_some());
        }
    }
}
