//! Small hand-written histories with known answers.

use quorumlab_checker::{
    check_events, check_history, parse_history, CheckOptions, CheckReport, Format, Verdict,
};
use quorumlab_kv::history::{Event, EventType, ProcessId};
use serde_json::{json, Value as Json};
use std::time::Duration;

/// A history under construction: ops given as intervals, events emitted in time order
/// (invocations first on equal times).
#[derive(Default)]
struct H {
    ev: Vec<(u64, u8, usize, Event)>,
}

const NEVER: u64 = u64::MAX;

impl H {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        t: u64,
        p: u64,
        kind: EventType,
        f: &str,
        key: Option<&str>,
        v: Json,
        err: Option<&str>,
    ) {
        let n = self.ev.len();
        self.ev.push((
            t,
            if kind == EventType::Invoke { 0 } else { 1 },
            n,
            Event {
                index: 0,
                time: t,
                process: ProcessId::Client(p),
                kind,
                f: f.into(),
                key: key.map(str::to_string),
                value: v,
                error: err.map(str::to_string),
            },
        ));
    }
    /// An op on key `k`: invoked at `t0` with `arg`, completed at `t1` (NEVER = never) with
    /// `kind` and value `out`.
    #[allow(clippy::too_many_arguments)]
    fn opk(
        mut self,
        k: &str,
        p: u64,
        f: &str,
        arg: Json,
        t0: u64,
        t1: u64,
        kind: EventType,
        out: Json,
        err: Option<&str>,
    ) -> H {
        self.push(t0, p, EventType::Invoke, f, Some(k), arg, None);
        if t1 != NEVER {
            self.push(t1, p, kind, f, Some(k), out, err);
        }
        self
    }
    fn ok(self, p: u64, f: &str, v: Json, t0: u64, t1: u64) -> H {
        let arg = if f == "read" { Json::Null } else { v.clone() };
        self.opk("x", p, f, arg, t0, t1, EventType::Ok, v, None)
    }
    fn read(self, p: u64, v: Json, t0: u64, t1: u64) -> H {
        self.ok(p, "read", v, t0, t1)
    }
    fn write(self, p: u64, v: i64, t0: u64, t1: u64) -> H {
        self.ok(p, "write", json!(v), t0, t1)
    }
    fn info(self, p: u64, f: &str, v: Json, t0: u64, t1: u64) -> H {
        self.opk("x", p, f, v.clone(), t0, t1, EventType::Info, v, None)
    }
    fn fail(self, p: u64, f: &str, v: Json, t0: u64, t1: u64, err: Option<&str>) -> H {
        self.opk("x", p, f, v.clone(), t0, t1, EventType::Fail, v, err)
    }
    fn events(&self) -> Vec<Event> {
        let mut ev = self.ev.clone();
        ev.sort_by_key(|e| (e.0, e.1, e.2));
        ev.into_iter()
            .enumerate()
            .map(|(i, mut e)| {
                e.3.index = i as u64;
                e.3
            })
            .collect()
    }
    fn check(&self) -> CheckReport {
        let r = check_events(&self.events(), &CheckOptions::default());
        assert_eq!(r.error, None);
        r
    }
    fn verdict(&self) -> Verdict {
        self.check().verdict
    }
}

use Verdict::{Linearizable as LIN, NotLinearizable as NOT};

#[test]
fn empty_history_is_linearizable() {
    assert_eq!(H::default().verdict(), LIN);
}

#[test]
fn stale_read() {
    let h = H::default()
        .write(0, 1, 0, 10)
        .write(1, 2, 20, 30)
        .read(0, json!(1), 40, 50);
    let r = h.check();
    assert_eq!(r.verdict, NOT);
    let v = &r.violations[0];
    let f = &v.ops[v.failing_op.unwrap()];
    assert_eq!(f.f, "read");
    assert_eq!(f.value, json!(1));
    assert_eq!(v.linearization.len(), 2);
    assert_eq!(v.value_before_failing_op, json!(2));
    assert_eq!(v.values_after, vec![json!(1), json!(2)]);
    let text = r.explain();
    assert!(text.contains("not linearizable"), "{text}");
    assert!(text.contains("read -> 1"), "{text}");
    assert_eq!(r.to_summary_value(), json!(false));
    assert_eq!(r.exit_code(), 1);
}

#[test]
fn read_concurrent_with_write_may_see_either_value() {
    for v in [json!(1), json!(2)] {
        let h = H::default()
            .write(0, 1, 0, 10)
            .write(1, 2, 20, 50)
            .read(2, v, 30, 40);
        assert_eq!(h.verdict(), LIN);
    }
}

#[test]
fn reads_of_absent_and_never_written_values() {
    assert_eq!(H::default().read(0, Json::Null, 0, 1).verdict(), LIN);
    assert_eq!(H::default().read(0, json!(7), 0, 1).verdict(), NOT);
    let h = H::default().write(0, 1, 0, 10).read(1, Json::Null, 20, 30);
    assert_eq!(
        h.verdict(),
        NOT,
        "null means absent, and the key was written"
    );
    let h = H::default().write(0, 1, 0, 30).read(1, Json::Null, 10, 20);
    assert_eq!(h.verdict(), LIN, "the write may not have happened yet");
}

#[test]
fn lost_write() {
    // two concurrent writes; later reads flip back to the first value
    let h = H::default()
        .write(0, 1, 0, 10)
        .write(1, 2, 0, 10)
        .read(2, json!(1), 20, 30)
        .read(2, json!(2), 40, 50)
        .read(2, json!(1), 60, 70);
    assert_eq!(h.verdict(), NOT);
    // a write acknowledged, then never seen although nothing overwrote it
    let h = H::default()
        .write(0, 1, 0, 10)
        .write(1, 2, 20, 30)
        .read(2, json!(1), 40, 50);
    assert_eq!(h.verdict(), NOT);
}

#[test]
fn delete_makes_absent() {
    let h = H::default()
        .write(0, 1, 0, 10)
        .ok(1, "delete", Json::Null, 20, 30)
        .read(2, Json::Null, 40, 50);
    assert_eq!(h.verdict(), LIN);
    let h = H::default()
        .write(0, 1, 0, 10)
        .ok(1, "delete", Json::Null, 20, 30)
        .read(2, json!(1), 40, 50);
    assert_eq!(h.verdict(), NOT);
}

#[test]
fn cas_anomalies() {
    // cas succeeds although the value was never its expected value
    let h = H::default()
        .write(0, 1, 0, 10)
        .ok(1, "cas", json!([5, 6]), 20, 30);
    assert_eq!(h.verdict(), NOT);
    // a good cas
    let h = H::default()
        .write(0, 1, 0, 10)
        .ok(1, "cas", json!([1, 2]), 20, 30)
        .read(2, json!(2), 40, 50);
    assert_eq!(h.verdict(), LIN);
    // two concurrent cas from the same expected value cannot both succeed
    let h = H::default()
        .write(0, 0, 0, 5)
        .ok(1, "cas", json!([0, 1]), 10, 20)
        .ok(2, "cas", json!([0, 2]), 15, 25);
    assert_eq!(h.verdict(), NOT);
    // ... unless one of them chains on the other
    let h = H::default()
        .write(0, 0, 0, 5)
        .ok(1, "cas", json!([0, 1]), 10, 20)
        .ok(2, "cas", json!([1, 2]), 15, 25)
        .read(0, json!(2), 30, 40);
    assert_eq!(h.verdict(), LIN);
    // cas from absent (expected null)
    let h = H::default()
        .ok(1, "cas", json!([null, 3]), 0, 10)
        .read(0, json!(3), 20, 30);
    assert_eq!(h.verdict(), LIN);
}

#[test]
fn precondition_failure_is_an_observation() {
    // the value was 1 throughout the cas, yet its precondition (value == 1) "was false"
    let h =
        H::default()
            .write(0, 1, 0, 10)
            .fail(1, "cas", json!([1, 2]), 20, 30, Some("precondition"));
    let r = h.check();
    assert_eq!(r.verdict, NOT);
    assert_eq!(r.history.precondition_failed, 1);
    // a fail without the precondition error is only "not applied": dropped
    let h = H::default()
        .write(0, 1, 0, 10)
        .fail(1, "cas", json!([1, 2]), 20, 30, None);
    let r = h.check();
    assert_eq!(r.verdict, LIN);
    assert_eq!(r.history.fail_dropped, 1);
    // the precondition may have been false at some instant within the op
    let h = H::default()
        .write(0, 1, 0, 10)
        .write(2, 3, 15, 40)
        .fail(1, "cas", json!([1, 2]), 20, 30, Some("precondition"))
        .read(0, json!(1), 21, 22);
    assert_eq!(h.verdict(), LIN);
    // create that failed its precondition on an absent key
    let h = H::default().fail(1, "create", json!(5), 0, 10, Some("precondition"));
    assert_eq!(h.verdict(), NOT);
    let h =
        H::default()
            .write(0, 1, 0, 10)
            .fail(1, "create", json!(5), 20, 30, Some("precondition"));
    assert_eq!(h.verdict(), LIN);
    // create concurrent with a delete: present at some instant within it
    let h = H::default()
        .write(0, 1, 0, 10)
        .ok(2, "delete", Json::Null, 15, 40)
        .fail(1, "create", json!(5), 20, 30, Some("precondition"));
    assert_eq!(h.verdict(), LIN);
    // a failed write carrying "precondition" is still just dropped
    let h = H::default()
        .write(0, 1, 0, 10)
        .fail(1, "write", json!(9), 20, 30, Some("precondition"))
        .read(0, json!(1), 40, 50);
    assert_eq!(h.verdict(), LIN);
    // a failed (not applied) write must not be observed
    let h = H::default()
        .write(0, 1, 0, 10)
        .fail(1, "write", json!(9), 20, 30, None)
        .read(0, json!(9), 40, 50);
    assert_eq!(h.verdict(), NOT);
}

#[test]
fn create_semantics() {
    let h = H::default()
        .ok(0, "create", json!(1), 0, 10)
        .read(1, json!(1), 20, 30);
    assert_eq!(h.verdict(), LIN);
    let h = H::default()
        .write(0, 1, 0, 10)
        .ok(1, "create", json!(2), 20, 30);
    assert_eq!(h.verdict(), NOT, "create succeeded on a present key");
}

#[test]
fn info_ops_may_take_effect() {
    // an info write seen later: it took effect
    let h = H::default()
        .write(0, 1, 0, 10)
        .info(1, "write", json!(2), 20, 30)
        .read(0, json!(2), 100, 110);
    assert_eq!(h.verdict(), LIN);
    // ... even long after the client gave up (after its info completion)
    let h = H::default()
        .write(0, 1, 0, 10)
        .info(1, "write", json!(2), 20, 30)
        .read(0, json!(1), 40, 50)
        .read(0, json!(2), 60, 70);
    assert_eq!(h.verdict(), LIN);
    // an invocation that never completes behaves the same
    let h = H::default()
        .write(0, 1, 0, 10)
        .info(1, "write", json!(2), 20, NEVER)
        .read(0, json!(1), 40, 50)
        .read(0, json!(2), 60, 70);
    assert_eq!(h.verdict(), LIN);
    // an info cas took effect
    let h = H::default()
        .write(0, 1, 0, 10)
        .info(1, "cas", json!([1, 2]), 20, 30)
        .read(0, json!(2), 40, 50);
    assert_eq!(h.verdict(), LIN);
}

#[test]
fn info_ops_may_never_take_effect() {
    let h = H::default()
        .write(0, 1, 0, 10)
        .info(1, "write", json!(2), 20, 30)
        .read(0, json!(1), 100, 110);
    assert_eq!(h.verdict(), LIN);
    let h = H::default()
        .write(0, 1, 0, 10)
        .info(1, "delete", Json::Null, 20, 30)
        .read(0, json!(1), 100, 110);
    assert_eq!(h.verdict(), LIN);
}

#[test]
fn info_ops_must_not_take_effect_before_invocation_or_twice() {
    // seen before it was invoked
    let h = H::default()
        .read(0, json!(2), 0, 5)
        .info(1, "write", json!(2), 10, 20);
    assert_eq!(h.verdict(), NOT);
    // an info cas whose expected value never held cannot have taken effect
    let h = H::default()
        .write(0, 1, 0, 10)
        .info(1, "cas", json!([7, 2]), 20, 30)
        .read(0, json!(2), 40, 50);
    assert_eq!(h.verdict(), NOT);
    // an info write takes effect at most once
    let h = H::default()
        .write(0, 1, 0, 10)
        .info(1, "write", json!(2), 20, 30)
        .read(0, json!(2), 40, 50)
        .write(2, 3, 60, 70)
        .read(0, json!(2), 80, 90);
    assert_eq!(h.verdict(), NOT);
    let h = H::default()
        .info(1, "append", json!("x"), 0, 10)
        .read(0, json!("x"), 20, 30)
        .read(0, json!("xx"), 40, 50);
    assert_eq!(h.verdict(), NOT);
    // an info read constrains nothing
    let h = H::default()
        .write(0, 1, 0, 10)
        .info(1, "read", json!(99), 20, 30);
    let r = h.check();
    assert_eq!(r.verdict, LIN);
    assert_eq!(r.history.info_reads_dropped, 1);
}

/// Three concurrent writes seen by a reader, in every order.
#[test]
fn concurrent_ops_in_every_order() {
    let perms = [
        [1, 2, 3],
        [1, 3, 2],
        [2, 1, 3],
        [2, 3, 1],
        [3, 1, 2],
        [3, 2, 1],
    ];
    for p in perms {
        let h = H::default()
            .write(0, 1, 0, 100)
            .write(1, 2, 0, 100)
            .write(2, 3, 0, 100)
            .read(3, json!(p[0]), 10, 20)
            .read(3, json!(p[1]), 30, 40)
            .read(3, json!(p[2]), 50, 60)
            .read(4, json!(p[2]), 200, 210);
        assert_eq!(h.verdict(), LIN, "order {p:?}");
        // the final value must be the last one seen
        let h = H::default()
            .write(0, 1, 0, 100)
            .write(1, 2, 0, 100)
            .write(2, 3, 0, 100)
            .read(3, json!(p[0]), 10, 20)
            .read(3, json!(p[1]), 30, 40)
            .read(3, json!(p[2]), 50, 60)
            .read(4, json!(p[0]), 200, 210);
        assert_eq!(h.verdict(), NOT, "order {p:?} then back to {}", p[0]);
    }
    // a value cannot come back without a new write
    let h = H::default()
        .write(0, 1, 0, 100)
        .write(1, 2, 0, 100)
        .read(3, json!(1), 10, 20)
        .read(3, json!(2), 30, 40)
        .read(3, json!(1), 50, 60);
    assert_eq!(h.verdict(), NOT);
    // reads by different processes that overlap may see different values
    let h = H::default()
        .write(0, 1, 0, 10)
        .write(1, 2, 20, 80)
        .read(2, json!(2), 30, 70)
        .read(3, json!(1), 40, 60);
    assert_eq!(h.verdict(), LIN);
    // but not in an order contradicting real time
    let h = H::default()
        .write(0, 1, 0, 10)
        .write(1, 2, 20, 80)
        .read(2, json!(2), 30, 40)
        .read(3, json!(1), 50, 60);
    assert_eq!(h.verdict(), NOT);
}

#[test]
fn equal_times_are_ordered_as_recorded() {
    let line = |i: u64, t: u64, p: u64, ty: &str, f: &str, v: &str| {
        format!(
            "{{\"index\":{i},\"time\":{t},\"process\":{p},\"type\":\"{ty}\",\"f\":\"{f}\",\"value\":{v}}}\n"
        )
    };
    let check = |text: String| {
        let h = parse_history(&text, None).unwrap();
        check_history(&h, &CheckOptions::default()).unwrap().verdict
    };
    // write 2 completes at 10, then (same instant, recorded after) the read is invoked:
    // the write precedes the read
    let text = line(0, 0, 0, "invoke", "write", "2")
        + &line(1, 10, 0, "ok", "write", "2")
        + &line(2, 10, 1, "invoke", "read", "null")
        + &line(3, 20, 1, "ok", "read", "null");
    assert_eq!(check(text), NOT);
    // recorded the other way round, they are concurrent
    let text = line(0, 0, 0, "invoke", "write", "2")
        + &line(1, 10, 1, "invoke", "read", "null")
        + &line(2, 10, 0, "ok", "write", "2")
        + &line(3, 20, 1, "ok", "read", "null");
    assert_eq!(check(text), LIN);
}

#[test]
fn append_semantics() {
    let h = H::default()
        .ok(0, "append", json!("a"), 0, 10)
        .ok(0, "append", json!("b"), 20, 30)
        .read(1, json!("ab"), 40, 50);
    assert_eq!(h.verdict(), LIN);
    let h = H::default()
        .ok(0, "append", json!("a"), 0, 10)
        .ok(0, "append", json!("b"), 20, 30)
        .read(1, json!("ba"), 40, 50);
    assert_eq!(h.verdict(), NOT);
    let h = H::default()
        .ok(0, "append", json!("a"), 0, 30)
        .ok(1, "append", json!("b"), 0, 30)
        .read(2, json!("ba"), 40, 50);
    assert_eq!(h.verdict(), LIN);
    // absent counts as empty: "" and null both read an absent key
    let h = H::default()
        .read(0, json!(""), 0, 10)
        .read(0, Json::Null, 20, 30);
    assert_eq!(h.verdict(), LIN);
    let h = H::default()
        .ok(0, "append", json!("a"), 0, 10)
        .ok(0, "delete", Json::Null, 20, 30)
        .ok(0, "append", json!("c"), 40, 50)
        .read(1, json!("c"), 60, 70);
    assert_eq!(h.verdict(), LIN);
}

#[test]
fn keys_are_checked_independently() {
    let h = H::default()
        .opk(
            "k1",
            0,
            "write",
            json!(1),
            0,
            10,
            EventType::Ok,
            json!(1),
            None,
        )
        .opk(
            "k2",
            1,
            "write",
            json!(1),
            0,
            10,
            EventType::Ok,
            json!(1),
            None,
        )
        .opk(
            "k1",
            0,
            "read",
            Json::Null,
            20,
            30,
            EventType::Ok,
            json!(1),
            None,
        )
        // k2 read 2: never written on k2 (it was written... nowhere)
        .opk(
            "k2",
            1,
            "read",
            Json::Null,
            20,
            30,
            EventType::Ok,
            json!(2),
            None,
        )
        .opk(
            "k10",
            2,
            "read",
            Json::Null,
            20,
            30,
            EventType::Ok,
            Json::Null,
            None,
        );
    let r = h.check();
    assert_eq!(r.verdict, NOT);
    assert_eq!(r.keys, 3);
    let keys: Vec<_> = r.results.iter().map(|k| k.key.clone().unwrap()).collect();
    assert_eq!(keys, ["k1", "k2", "k10"]);
    let verdicts: Vec<_> = r.results.iter().map(|k| k.verdict).collect();
    assert_eq!(verdicts, [LIN, NOT, LIN]);
    assert_eq!(r.violations.len(), 1);
    assert_eq!(r.violations[0].key.as_deref(), Some("k2"));
}

#[test]
fn nemesis_events_are_ignored() {
    let mut ev = H::default()
        .write(0, 1, 0, 10)
        .read(1, json!(1), 20, 30)
        .events();
    ev.insert(
        1,
        Event {
            index: 99,
            time: 5,
            process: ProcessId::nemesis(),
            kind: EventType::Info,
            f: "partition".into(),
            key: None,
            value: json!({"majority": [1, 2]}),
            error: None,
        },
    );
    let r = check_events(&ev, &CheckOptions::default());
    assert_eq!(r.verdict, LIN);
    assert_eq!(r.history.nemesis_events, 1);
}

/// A value written first, then 40 concurrent writes, then a read of the first value: not
/// linearizable, but the search must rule out every order of the writes (2^40 configurations)
/// to know it.
fn hard_history() -> Vec<Event> {
    let mut h = H::default().write(99, 999, 0, 1);
    for p in 0..40 {
        h = h.write(p, p as i64, 10 + p, 1_000 + p);
    }
    h.read(100, json!(999), 2_000, 2_010).events()
}

#[test]
fn budgets_give_unknown_not_hangs() {
    let ev = hard_history();
    let r = check_events(
        &ev,
        &CheckOptions {
            timeout: Some(Duration::from_millis(200)),
            ..Default::default()
        },
    );
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.explain());
    assert_eq!(r.to_summary_value(), json!("unknown"));
    assert_eq!(r.exit_code(), 3);
    assert!(r.results[0].reason.as_deref().unwrap().contains("time"));
    assert!(r.explain().starts_with("unknown"));
    let r = check_events(
        &ev,
        &CheckOptions {
            memory_limit: Some(1 << 20),
            ..Default::default()
        },
    );
    assert_eq!(r.verdict, Verdict::Unknown);
    assert!(r.results[0].reason.as_deref().unwrap().contains("memory"));
    let r = check_events(
        &ev,
        &CheckOptions {
            timeout: Some(Duration::ZERO),
            ..Default::default()
        },
    );
    assert_eq!(r.verdict, Verdict::Unknown);
}

#[test]
fn malformed_histories_name_the_line() {
    let cases = [
        // completion without invocation
        (
            "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":null}\n",
            1,
        ),
        // a second invocation while the first is pending
        (
            "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\n\
             {\"index\":1,\"time\":2,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n",
            3,
        ),
        // unknown operation
        (
            "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"incr\",\"value\":1}\n",
            1,
        ),
        // cas without [expected, new]
        (
            "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"cas\",\"value\":1}\n\
             {\"index\":1,\"time\":2,\"process\":0,\"type\":\"ok\",\"f\":\"cas\",\"value\":1}\n",
            1,
        ),
        // completion of another f
        (
            "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
             {\"index\":1,\"time\":2,\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n",
            2,
        ),
        // completes before invoked
        (
            "{\"index\":0,\"time\":5,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
             {\"index\":1,\"time\":2,\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n",
            2,
        ),
        // bad JSON
        ("{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\"\n", 1),
        // EDN: missing :f
        ("{:type :invoke, :process 0}\n", 1),
    ];
    for (text, want) in cases {
        let res =
            parse_history(text, None).and_then(|h| check_history(&h, &CheckOptions::default()));
        match res {
            Err(quorumlab_checker::CheckError::Malformed { line, msg }) => {
                assert_eq!(line, want, "{text}: {msg}")
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    // the in-memory API does not fail: it says unknown and why
    let h = parse_history(cases[0].0, Some(Format::Jsonl)).unwrap();
    let r = check_events(&h.events, &CheckOptions::default());
    assert_eq!(r.verdict, Verdict::Unknown);
    assert!(r
        .error
        .as_deref()
        .unwrap()
        .contains("without a pending invocation"));
    assert!(r.explain().contains("cannot be checked"));
}

#[test]
fn edn_histories() {
    let check = |text: &str| {
        let h = parse_history(text, None).unwrap();
        check_history(&h, &CheckOptions::default()).unwrap()
    };
    // Jepsen history.edn layout, stale read
    let bad = "{:type :invoke, :f :write, :value 1, :process 0, :time 0, :index 0}\n\
               {:type :ok, :f :write, :value 1, :process 0, :time 10, :index 1}\n\
               {:type :invoke, :f :write, :value 2, :process 1, :time 20, :index 2}\n\
               {:type :ok, :f :write, :value 2, :process 1, :time 30, :index 3}\n\
               {:type :invoke, :f :read, :value nil, :process 0, :time 40, :index 4}\n\
               {:type :ok, :f :read, :value 1, :process 0, :time 50, :index 5}\n";
    assert_eq!(check(bad).verdict, NOT);
    // independent keys, an info read on another key
    let good = "{:type :invoke, :f :write, :value [:a 1], :process 0, :time 0, :index 0}\n\
                {:type :invoke, :f :cas, :value [:a [1 2]], :process 1, :time 5, :index 1}\n\
                {:type :ok, :f :write, :value [:a 1], :process 0, :time 10, :index 2}\n\
                {:type :ok, :f :cas, :value [:a [1 2]], :process 1, :time 15, :index 3}\n\
                {:type :invoke, :f :read, :value [:a nil], :process 0, :time 20, :index 4}\n\
                {:type :ok, :f :read, :value [:a 2], :process 0, :time 30, :index 5}\n\
                {:type :invoke, :f :read, :value [:b nil], :process 2, :time 31, :index 6}\n\
                {:type :info, :f :read, :value [:b nil], :process 2, :time 40, :index 7}\n";
    let r = check(good);
    assert_eq!(r.verdict, LIN, "{}", r.explain());
    assert_eq!(r.keys, 1, "the info read on :b is dropped");
    // Knossos test-data layout: one vector, no times, comments, :error maps, nemesis,
    // a failed cas (dropped: EDN fails are never observations)
    let knossos = ";; cas register\n[{:process 0, :type :invoke, :f :write, :value 1}\n\
                   {:process 0, :type :ok, :f :write, :value 1}\n\
                   {:process :nemesis, :type :info, :f :start, :value nil}\n\
                   {:process 1, :type :invoke, :f :cas, :value [1 2]}\n\
                   {:process 1, :type :fail, :f :cas, :value [1 2], :error {:type :precondition, :msg \"x\"}}\n\
                   {:process 2, :type :invoke, :f :read, :value nil}\n\
                   {:process 2, :type :ok, :f :read, :value 1} ; still 1\n]";
    let r = check(knossos);
    assert_eq!(r.verdict, LIN, "{}", r.explain());
    assert_eq!(r.history.fail_dropped, 1);
    assert_eq!(r.history.nemesis_events, 1);
    let knossos_bad = knossos.replace(":value 1} ; still 1", ":value 2} ; never written");
    assert_eq!(check(&knossos_bad).verdict, NOT);
    // lists work as well as vectors
    let listed = "({:process 0, :type :invoke, :f :read, :value nil}\n {:process 0, :type :ok, :f :read, :value 3})";
    assert_eq!(check(listed).verdict, NOT);
    // string and keyword values
    let strs = "{:process 0, :type :invoke, :f :write, :value \"a\"}\n\
                {:process 0, :type :ok, :f :write, :value \"a\"}\n\
                {:process 0, :type :invoke, :f :write, :value :b}\n\
                {:process 0, :type :ok, :f :write, :value :b}\n\
                {:process 1, :type :invoke, :f :read, :value nil}\n\
                {:process 1, :type :ok, :f :read, :value :b}\n";
    assert_eq!(check(strs).verdict, LIN);
    // ... and the value it replaced is stale
    let stale = strs.replace(
        "{:process 1, :type :ok, :f :read, :value :b}",
        "{:process 1, :type :ok, :f :read, :value \"a\"}",
    );
    assert_eq!(check(&stale).verdict, NOT);
}

// ---------------------------------------------------------------- sets (add)

#[test]
fn concurrent_adds_commute() {
    let h = H::default()
        .ok(0, "add", json!(1), 0, 10)
        .ok(1, "add", json!(2), 0, 10)
        .read(2, json!([1, 2]), 20, 30)
        .read(3, Json::Null, 0, 5);
    assert_eq!(h.verdict(), LIN);
    // a read during the adds may see either element alone
    let h = H::default()
        .ok(0, "add", json!(1), 0, 10)
        .ok(1, "add", json!(2), 0, 10)
        .read(2, json!([2]), 1, 9);
    assert_eq!(h.verdict(), LIN);
}

#[test]
fn lost_add_is_not_linearizable() {
    let h = H::default()
        .ok(0, "add", json!(1), 0, 10)
        .ok(1, "add", json!(2), 20, 30)
        .read(2, json!([2]), 40, 50);
    assert_eq!(h.verdict(), NOT);
}

#[test]
fn an_element_never_added_is_not_linearizable() {
    let h = H::default()
        .ok(0, "add", json!(1), 0, 10)
        .read(1, json!([1, 3]), 20, 30);
    assert_eq!(h.verdict(), NOT);
}

#[test]
fn info_add_may_appear_later_or_never() {
    let base = H::default().info(0, "add", json!(7), 0, 10);
    assert_eq!(base.read(1, json!([7]), 100, 110).verdict(), LIN);
    let h = H::default()
        .info(0, "add", json!(7), 0, 10)
        .read(1, Json::Null, 100, 110)
        .read(2, json!([7]), 200, 210);
    assert_eq!(h.verdict(), LIN);
    // once seen, it cannot disappear
    let h = H::default()
        .info(0, "add", json!(7), 0, 10)
        .read(1, json!([7]), 100, 110)
        .read(2, Json::Null, 200, 210);
    assert_eq!(h.verdict(), NOT);
}

#[test]
fn many_concurrent_adds_stay_cheap() {
    // 40 concurrent adds then one read of all: orders commute, the cache merges them.
    let mut h = H::default();
    for i in 0..40u64 {
        h = h.ok(i, "add", json!(i), 0, 10);
    }
    let all: Vec<u64> = (0..40).collect();
    let h = h.read(99, json!(all), 20, 30);
    assert_eq!(h.verdict(), LIN);
}

#[test]
fn add_needs_an_integer_element() {
    let text = "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"add\",\"key\":\"s\",\"value\":\"x\"}\n\
                {\"index\":1,\"time\":2,\"process\":0,\"type\":\"ok\",\"f\":\"add\",\"key\":\"s\",\"value\":\"x\"}\n";
    match parse_history(text, None).and_then(|h| check_history(&h, &CheckOptions::default())) {
        Err(quorumlab_checker::CheckError::Malformed { line, msg }) => {
            assert_eq!(line, 1);
            assert!(msg.contains("add value"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}
