//! From events to operations: pairs each invocation with its process's next completion,
//! applies the outcome rules, and groups the ops by key.
//!
//! Rules (see docs/checker.md):
//! * events of the `nemesis` process are ignored;
//! * `ok` ops are checked; `info` ops and invocations never completed may take effect at any
//!   point after their invocation, or never (an `info` read constrains nothing and is dropped);
//! * a `fail` of a cas or create carrying `"error":"precondition"` is kept as an observation:
//!   at some instant within the op the precondition was false; every other `fail` is dropped
//!   (it did not take effect and observed nothing we rely on).

use crate::search::FxMap;
use crate::CheckError;
use quorumlab_kv::history::{Event, EventType, ProcessId};
use serde_json::Value as Json;

/// The operation, by its `f` (aliases `get` = read, `put` = write).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Fun {
    Read,
    Write,
    Cas,
    Create,
    Delete,
    Append,
    Add,
}

impl Fun {
    pub(crate) fn parse(f: &str) -> Option<Fun> {
        Some(match f {
            "read" | "get" => Fun::Read,
            "write" | "put" => Fun::Write,
            "cas" => Fun::Cas,
            "create" => Fun::Create,
            "delete" => Fun::Delete,
            "append" => Fun::Append,
            "add" => Fun::Add,
            _ => return None,
        })
    }
}

/// What the checker knows about an op's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Took effect within its interval; reads observed `output`.
    Ok,
    /// May take effect at any point after its invocation, or never.
    Info,
    /// A cas/create whose precondition was false at some instant within its interval; no effect.
    PreconditionFailed,
}

static NULL: Json = Json::Null;

/// One operation of the history, borrowing from the events.
#[derive(Clone, Debug)]
pub(crate) struct RawOp<'a> {
    pub fun: Fun,
    pub f: &'a str,
    pub process: &'a ProcessId,
    pub outcome: Outcome,
    /// Invocation argument: write/create/append value, cas `[expected, new]`.
    pub input: &'a Json,
    /// Value returned by an `ok` read (null = absent).
    pub output: &'a Json,
    pub call: u64,
    pub ret: Option<u64>,
    pub call_pos: usize,
    pub ret_pos: Option<usize>,
    pub call_index: u64,
    pub ret_index: Option<u64>,
}

/// All ops of one key, in invocation order.
#[derive(Debug)]
pub(crate) struct KeyOps<'a> {
    pub key: Option<&'a str>,
    pub ops: Vec<RawOp<'a>>,
}

/// Counts of what was read and what was dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryStats {
    /// Events in the history (including nemesis events).
    pub events: usize,
    /// Client operations (invocations).
    pub invocations: usize,
    /// Operations checked (after dropping the ones below).
    pub ops: usize,
    /// `info` operations and invocations never completed (may or may not have taken effect).
    pub info: usize,
    /// `fail` operations dropped (definitely not applied, observed nothing).
    pub fail_dropped: usize,
    /// cas/create `fail`s with `"error":"precondition"`, kept as observations.
    pub precondition_failed: usize,
    /// `info` reads dropped (they constrain nothing).
    pub info_reads_dropped: usize,
    /// `info` adds dropped because no read ever returned their element (taken as never
    /// applied, which every read agrees with).
    #[serde(default)]
    pub info_adds_dropped: usize,
    /// Events of the nemesis process (ignored).
    pub nemesis_events: usize,
}

pub(crate) struct Prepared<'a> {
    pub keys: Vec<KeyOps<'a>>,
    pub stats: HistoryStats,
}

/// Where an event is: its line when known, else its position.
pub(crate) struct Locator<'l> {
    pub lines: Option<&'l [usize]>,
}

impl Locator<'_> {
    pub(crate) fn err(&self, pos: usize, ev: &Event, msg: String) -> CheckError {
        match self.lines.and_then(|l| l.get(pos)) {
            Some(&line) => CheckError::Malformed { line, msg },
            None => CheckError::InvalidEvent {
                position: pos,
                index: ev.index,
                msg,
            },
        }
    }
    fn describe(&self, pos: usize) -> String {
        match self.lines.and_then(|l| l.get(pos)) {
            Some(line) => format!("line {line}"),
            None => format!("event {pos}"),
        }
    }
}

fn proc_name(p: &ProcessId) -> String {
    match p {
        ProcessId::Client(n) => n.to_string(),
        ProcessId::Named(s) => s.clone(),
    }
}

struct Pending {
    pos: usize,
    fun: Fun,
}

pub(crate) fn prepare<'a>(
    events: &'a [Event],
    loc: &Locator<'_>,
) -> Result<Prepared<'a>, CheckError> {
    let mut stats = HistoryStats {
        events: events.len(),
        ..Default::default()
    };
    let mut pending: FxMap<&'a ProcessId, Pending> = FxMap::default();
    // (invoke position, completion position or None)
    let mut pairs: Vec<(usize, Fun, Option<usize>)> = Vec::with_capacity(events.len() / 2 + 1);
    for (pos, ev) in events.iter().enumerate() {
        if ev.process.is_nemesis() {
            stats.nemesis_events += 1;
            continue;
        }
        match ev.kind {
            EventType::Invoke => {
                let Some(fun) = Fun::parse(&ev.f) else {
                    return Err(loc.err(
                        pos,
                        ev,
                        format!(
                            "unsupported operation f={:?} (the KV model knows read, write, cas, \
                             create, delete, append, add; get and put are aliases)",
                            ev.f
                        ),
                    ));
                };
                if let Some(prev) = pending.get(&ev.process) {
                    return Err(loc.err(
                        pos,
                        ev,
                        format!(
                            "process {} invokes {} while its {} invoked at {} has not completed",
                            proc_name(&ev.process),
                            ev.f,
                            events[prev.pos].f,
                            loc.describe(prev.pos)
                        ),
                    ));
                }
                stats.invocations += 1;
                pending.insert(&ev.process, Pending { pos, fun });
            }
            EventType::Ok | EventType::Fail | EventType::Info => {
                let Some(p) = pending.remove(&ev.process) else {
                    return Err(loc.err(
                        pos,
                        ev,
                        format!(
                            "process {} completes {} ({}) without a pending invocation",
                            proc_name(&ev.process),
                            ev.f,
                            ev.kind.name()
                        ),
                    ));
                };
                let inv = &events[p.pos];
                if inv.f != ev.f {
                    return Err(loc.err(
                        pos,
                        ev,
                        format!(
                            "process {} completes {} but invoked {} at {}",
                            proc_name(&ev.process),
                            ev.f,
                            inv.f,
                            loc.describe(p.pos)
                        ),
                    ));
                }
                if let (Some(a), Some(b)) = (&inv.key, &ev.key) {
                    if a != b {
                        return Err(loc.err(
                            pos,
                            ev,
                            format!(
                                "completion is for key {b:?} but the invocation at {} is for key {a:?}",
                                loc.describe(p.pos)
                            ),
                        ));
                    }
                }
                if ev.time < inv.time {
                    return Err(loc.err(
                        pos,
                        ev,
                        format!(
                            "completes at time {} before its invocation at time {} ({})",
                            ev.time,
                            inv.time,
                            loc.describe(p.pos)
                        ),
                    ));
                }
                pairs.push((p.pos, p.fun, Some(pos)));
            }
        }
    }
    for p in pending.into_values() {
        pairs.push((p.pos, p.fun, None));
    }
    pairs.sort_unstable_by_key(|p| p.0);

    let mut by_key: FxMap<Option<&'a str>, Vec<RawOp<'a>>> = FxMap::default();
    for (ipos, fun, cpos) in pairs {
        let inv = &events[ipos];
        let comp = cpos.map(|c| &events[c]);
        let kind = comp.map_or(EventType::Info, |c| c.kind);
        let outcome = match kind {
            EventType::Ok => Outcome::Ok,
            EventType::Info | EventType::Invoke => Outcome::Info,
            EventType::Fail => {
                let pre = comp.and_then(|c| c.error.as_deref()) == Some("precondition");
                if pre && matches!(fun, Fun::Cas | Fun::Create) {
                    stats.precondition_failed += 1;
                    Outcome::PreconditionFailed
                } else {
                    stats.fail_dropped += 1;
                    continue;
                }
            }
        };
        if outcome == Outcome::Info {
            stats.info += 1;
            if fun == Fun::Read {
                stats.info_reads_dropped += 1;
                continue;
            }
        }
        // the argument: the invocation's value, or the completion's if the invocation has none
        let input = match (&inv.value, comp) {
            (Json::Null, Some(c)) if fun != Fun::Read => &c.value,
            (v, _) => v,
        };
        if fun == Fun::Cas && !matches!(input, Json::Array(a) if a.len() == 2) {
            return Err(loc.err(
                ipos,
                inv,
                format!("cas value must be [expected, new], found {input}"),
            ));
        }
        if fun == Fun::Add && input.as_u64().is_none() {
            return Err(loc.err(
                ipos,
                inv,
                format!("add value must be a non-negative integer (a set element), found {input}"),
            ));
        }
        let output = match (fun, outcome, comp) {
            (Fun::Read, Outcome::Ok, Some(c)) => &c.value,
            _ => &NULL,
        };
        let key = inv
            .key
            .as_deref()
            .or_else(|| comp.and_then(|c| c.key.as_deref()));
        by_key.entry(key).or_default().push(RawOp {
            fun,
            f: &inv.f,
            process: &inv.process,
            outcome,
            input,
            output,
            call: inv.time,
            ret: if outcome == Outcome::Info {
                None
            } else {
                comp.map(|c| c.time)
            },
            call_pos: ipos,
            ret_pos: if outcome == Outcome::Info { None } else { cpos },
            call_index: inv.index,
            ret_index: comp.map(|c| c.index),
        });
        stats.ops += 1;
    }
    let mut keys: Vec<KeyOps<'a>> = by_key
        .into_iter()
        .map(|(key, mut ops)| {
            stats.info_adds_dropped += drop_unobserved_info_adds(&mut ops);
            ops.sort_by_key(|o| (o.call, o.call_pos));
            KeyOps { key, ops }
        })
        .collect();
    stats.ops -= stats.info_adds_dropped;
    keys.sort_by(|a, b| natural_cmp_opt(a.key, b.key));
    Ok(Prepared { keys, stats })
}

/// Drops the `info` adds whose element no `ok` read of the key returned. Such an add may be
/// taken to have never happened: every read is consistent with its absence, and adds commute
/// with each other, so removing it cannot turn a linearizable history into a non-linearizable
/// one (nor the reverse: any linearization without it is one with it never applied). Each
/// info add otherwise doubles the states the search must tell apart (applied or not, and
/// when), which no cache can merge.
fn drop_unobserved_info_adds(ops: &mut Vec<RawOp<'_>>) -> usize {
    if !ops
        .iter()
        .any(|o| o.fun == Fun::Add && o.outcome == Outcome::Info)
    {
        return 0;
    }
    let seen: std::collections::HashSet<u64> = ops
        .iter()
        .filter(|o| o.fun == Fun::Read && o.outcome == Outcome::Ok)
        .filter_map(|o| o.output.as_array())
        .flatten()
        .filter_map(Json::as_u64)
        .collect();
    let before = ops.len();
    ops.retain(|o| {
        !(o.fun == Fun::Add
            && o.outcome == Outcome::Info
            && o.input.as_u64().is_some_and(|e| !seen.contains(&e)))
    });
    before - ops.len()
}

fn natural_cmp_opt(a: Option<&str>, b: Option<&str>) -> std::cmp::Ordering {
    match (a, b) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(a), Some(b)) => natural_cmp(a, b),
    }
}

/// Orders "k2" before "k10": digit runs compare as numbers.
pub(crate) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let da = trim_zeros(&a[si..i]);
            let db = trim_zeros(&b[sj..j]);
            let o = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j)).then_with(|| a.cmp(b))
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|&&c| c == b'0').count();
    &d[n.min(d.len().saturating_sub(1))..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec!["k10", "k2", "k1", "a", "k", "k2x"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, vec!["a", "k", "k1", "k2", "k2x", "k10"]);
    }
}
