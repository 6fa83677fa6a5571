//! The history format (DESIGN.md, "History format"): JSON Lines, one event per line, in the
//! order they happened.
//!
//! ```json
//! {"index":0,"time":1250000,"process":3,"type":"invoke","f":"cas","key":"k7","value":[1,2]}
//! {"index":1,"time":3900000,"process":3,"type":"ok","f":"cas","key":"k7","value":[1,2]}
//! ```
//!
//! Values are kept as JSON so that histories from any source can be read; [`Event::from_op`]
//! and friends build events from the typed KV contract.

use crate::op::{Datum, FailKind, Op, Outcome, Request};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use std::io::{BufRead, Write};

/// `invoke | ok | fail | info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventType {
    pub fn name(&self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

/// A client process number, or a named process such as `"nemesis"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProcessId {
    Client(u64),
    Named(String),
}

impl ProcessId {
    pub fn nemesis() -> Self {
        ProcessId::Named("nemesis".into())
    }
    pub fn is_nemesis(&self) -> bool {
        matches!(self, ProcessId::Named(n) if n == "nemesis")
    }
}

/// One history event.
/// Unknown fields are ignored, so histories from other tools can carry their own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub index: u64,
    /// Virtual ns in simulations, monotonic ns in real runs.
    pub time: u64,
    pub process: ProcessId,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Json,
    /// `"precondition"` on a cas/create `fail` whose precondition was evaluated false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The JSON value of an op at invocation (and of a non-read `ok`): `write`/`create`/`add` → v,
/// `cas` → `[expected, new]`, `read`/`delete` → null.
pub fn op_value(op: &Op) -> Json {
    match *op {
        Op::Read | Op::Delete => Json::Null,
        Op::Write(v) | Op::Create(v) | Op::Add(v) => json!(v),
        Op::Cas { expected, new } => json!([expected, new]),
    }
}

/// The JSON value of a read: a number for a register, a sorted array for a set, null if absent.
pub fn datum_json(d: Option<&Datum>) -> Json {
    match d {
        None => Json::Null,
        Some(Datum::Reg(v)) => json!(v),
        Some(Datum::Set(s)) => json!(s.iter().collect::<Vec<_>>()),
    }
}

impl Event {
    /// The invocation of `req` by `process` at `time` (index filled by the recorder).
    pub fn invoke(time: u64, process: u64, req: &Request) -> Event {
        Event {
            index: 0,
            time,
            process: ProcessId::Client(process),
            kind: EventType::Invoke,
            f: req.op.f().into(),
            key: Some(req.key.to_string()),
            value: op_value(&req.op),
            error: None,
        }
    }

    /// The completion of `req` with `outcome`.
    pub fn complete(time: u64, process: u64, req: &Request, outcome: &Outcome) -> Event {
        let (kind, value, error) = match outcome {
            Outcome::Ok(read) => {
                let v = match req.op {
                    Op::Read => datum_json(read.as_ref()),
                    _ => op_value(&req.op),
                };
                (EventType::Ok, v, None)
            }
            Outcome::Fail(why) => (
                EventType::Fail,
                op_value(&req.op),
                match why {
                    FailKind::Precondition => Some("precondition".to_string()),
                    FailKind::NotApplied => None,
                },
            ),
            Outcome::Info => (EventType::Info, op_value(&req.op), None),
        };
        Event {
            index: 0,
            time,
            process: ProcessId::Client(process),
            kind,
            f: req.op.f().into(),
            key: Some(req.key.to_string()),
            value,
            error,
        }
    }

    /// A nemesis event (`f` names the fault, `value` describes it).
    pub fn nemesis(time: u64, kind: EventType, f: &str, value: Json) -> Event {
        Event {
            index: 0,
            time,
            process: ProcessId::nemesis(),
            kind,
            f: f.into(),
            key: None,
            value,
            error: None,
        }
    }
}

/// A history that could not be read: names the line (1-based) and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("line {line}: {msg}")]
    Malformed { line: usize, msg: String },
    #[error("reading history: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads a JSONL history. Blank lines are skipped.
pub fn read_jsonl(r: impl BufRead) -> Result<Vec<Event>, HistoryError> {
    let mut out = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let ev: Event = serde_json::from_str(&line).map_err(|e| HistoryError::Malformed {
            line: i + 1,
            msg: e.to_string(),
        })?;
        out.push(ev);
    }
    Ok(out)
}

/// Writes events as JSON Lines (one compact object per line).
pub fn write_jsonl(w: &mut impl Write, events: &[Event]) -> std::io::Result<()> {
    for e in events {
        serde_json::to_writer(&mut *w, e)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Key;

    #[test]
    fn round_trip_matches_design_example() {
        let req = Request {
            id: 1,
            key: Key(7),
            op: Op::Cas {
                expected: 1,
                new: 2,
            },
        };
        let mut e = Event::invoke(1_250_000, 3, &req);
        e.index = 0;
        let s = serde_json::to_string(&e).unwrap();
        assert_eq!(
            s,
            r#"{"index":0,"time":1250000,"process":3,"type":"invoke","f":"cas","key":"k7","value":[1,2]}"#
        );
        let back = read_jsonl(s.as_bytes()).unwrap();
        assert_eq!(back, vec![e]);
        let f = Event::complete(5, 3, &req, &Outcome::Fail(FailKind::Precondition));
        assert!(serde_json::to_string(&f)
            .unwrap()
            .contains(r#""error":"precondition""#));
    }

    #[test]
    fn malformed_line_is_named() {
        let text = "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n{\"index\":1,";
        match read_jsonl(text.as_bytes()) {
            Err(HistoryError::Malformed { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nemesis_process_reads_back() {
        let s =
            r#"{"index":0,"time":1,"process":"nemesis","type":"info","f":"partition","value":"x"}"#;
        let e = &read_jsonl(s.as_bytes()).unwrap()[0];
        assert!(e.process.is_nemesis());
    }
}
