//! The model's auxiliary history: what the clients invoked and what came back, in the order the
//! model checker interleaved it, plus the verdicts the properties read.
//!
//! * Invocations are recorded from a client's first outgoing request with a new id
//!   (`record_msg_out`), returns from the client's completion message (`Wire::Done`, addressed to
//!   the driver id, which the harness removes from the network right after recording it).
//! * `info` outcomes (client timeout, `Unknown` answers) are not returns: the op stays in flight
//!   forever, exactly how Jepsen treats an indeterminate op.
//! * Every op is its own "thread" of stateright's [`LinearizabilityTester`] (thread id = request
//!   id). Real-time order is kept by the tester; a client's next op starts after the previous one
//!   returned, and after an `info` the earlier op may still linearize later, as it should.
//! * Verdicts are computed once, when a return is recorded (an invocation can never make a
//!   linearizable history non-linearizable), and cached, so checking a property is O(1).

use quorumlab_kv::{Datum, FailKind, Key, KvMap, Op, Outcome, Request, Value};
use stateright::actor::Id;
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

/// The sequential specification: a map of independent keys with the KV contract's operations
/// (read / write / cas / create / delete on registers, add on sets).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KvSpec(pub KvMap);

impl SequentialSpec for KvSpec {
    type Op = (Key, Op);
    type Ret = Outcome;

    fn invoke(&mut self, (key, op): &(Key, Op)) -> Outcome {
        Request {
            id: 0,
            key: *key,
            op: *op,
        }
        .apply_to(&mut self.0)
        .0
    }

    fn is_valid_step(&mut self, op: &(Key, Op), ret: &Outcome) -> bool {
        match ret {
            // Definitely not applied: consistent with any state, changes nothing.
            Outcome::Fail(FailKind::NotApplied) => true,
            // Never recorded as a return; accept without effect to be safe.
            Outcome::Info => true,
            _ => &self.invoke(op) == ret,
        }
    }
}

/// One client operation in the history.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HOp {
    pub id: u64,
    pub client: Id,
    pub key: Key,
    pub op: Op,
    /// Logical time of the invocation.
    pub inv: u32,
    /// Logical time and outcome of the completion (`Info` included), if any.
    pub ret: Option<(u32, Outcome)>,
}

impl HOp {
    fn ok_at(&self) -> Option<u32> {
        match &self.ret {
            Some((t, Outcome::Ok(_))) => Some(*t),
            _ => None,
        }
    }
    fn failed(&self) -> bool {
        matches!(self.ret, Some((_, Outcome::Fail(_))))
    }
}

/// The value a mutation leaves behind if it takes effect.
pub fn written_value(op: &Op) -> Option<Option<Value>> {
    match *op {
        Op::Read | Op::Add(_) => None,
        Op::Write(v) | Op::Create(v) => Some(Some(v)),
        Op::Cas { new, .. } => Some(Some(new)),
        Op::Delete => Some(None),
    }
}

/// The history kept in the model state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Hist {
    pub ops: Vec<HOp>,
    pub clock: u32,
    /// Ops that returned (ok or fail).
    pub returned: u16,
    /// Cached: the history so far is linearizable.
    pub not_linearizable: bool,
    /// Cached: index (in `ops`) of an ok read that missed an acknowledged mutation.
    pub lost_ack: Option<u16>,
    /// Server reboots so far (auxiliary, bounds crashes per run).
    pub reboots: u8,
}

impl Hist {
    pub fn linearizable(&self) -> bool {
        !self.not_linearizable
    }

    pub fn op(&self, id: u64) -> Option<&HOp> {
        self.ops.iter().find(|o| o.id == id)
    }

    /// Records an invocation (ignored if the id is already known: a retry).
    pub fn invoke(&self, client: Id, req: &Request) -> Option<Hist> {
        if self.ops.iter().any(|o| o.id == req.id) {
            return None;
        }
        let mut h = self.clone();
        h.ops.push(HOp {
            id: req.id,
            client,
            key: req.key,
            op: req.op,
            inv: h.clock,
            ret: None,
        });
        h.clock += 1;
        Some(h)
    }

    /// Records a completion and recomputes the verdicts.
    pub fn complete(&self, req: &Request, outcome: Outcome) -> Option<Hist> {
        let i = self
            .ops
            .iter()
            .position(|o| o.id == req.id && o.ret.is_none())?;
        let mut h = self.clone();
        h.ops[i].ret = Some((h.clock, outcome.clone()));
        h.clock += 1;
        if outcome != Outcome::Info {
            h.returned += 1;
            if !h.not_linearizable {
                h.not_linearizable = !h.tester_verdict();
            }
            if h.lost_ack.is_none() && matches!(h.ops[i].op, Op::Read) {
                if let Outcome::Ok(v) = outcome {
                    if !h.read_explained(i, v.as_ref()) {
                        h.lost_ack = Some(i as u16);
                    }
                }
            }
        }
        Some(h)
    }

    /// Feeds the history to stateright's [`LinearizabilityTester`] in logical-time order.
    pub fn tester(&self) -> LinearizabilityTester<u64, KvSpec> {
        let mut events: Vec<(u32, bool, usize)> = Vec::new();
        for (i, o) in self.ops.iter().enumerate() {
            events.push((o.inv, true, i));
            if let Some((t, out)) = &o.ret {
                if *out != Outcome::Info {
                    events.push((*t, false, i));
                }
            }
        }
        events.sort_unstable();
        let mut t = LinearizabilityTester::new(KvSpec::default());
        for (_, inv, i) in events {
            let o = &self.ops[i];
            let r = if inv {
                t.on_invoke(o.id, (o.key, o.op)).map(|_| ())
            } else {
                let (_, out) = o.ret.clone().expect("returned");
                t.on_return(o.id, out).map(|_| ())
            };
            debug_assert!(r.is_ok(), "well-formed history");
        }
        t
    }

    fn tester_verdict(&self) -> bool {
        self.tester().serialized_history().is_some()
    }

    /// Durability as clients see it: an ok read `r` returned `v`. For every mutation of the key
    /// acknowledged before `r` was invoked, `v` must be explainable by that mutation or by one not
    /// known to precede it (ok, in flight or info; failed ops took no effect). For a set key:
    /// every add acknowledged before `r` was invoked is in the set read.
    fn read_explained(&self, r: usize, v: Option<&Datum>) -> bool {
        let read = &self.ops[r];
        let adds_acked_before = || {
            self.ops.iter().filter_map(|o| match o.op {
                Op::Add(e) if o.key == read.key && o.ok_at().is_some_and(|t| t < read.inv) => {
                    Some(e)
                }
                _ => None,
            })
        };
        if let Some(Datum::Set(set)) = v {
            return adds_acked_before().all(|e| set.contains(&e));
        }
        if adds_acked_before().next().is_some() {
            return false; // a set key read as absent or as a register
        }
        let v = v.and_then(Datum::reg);
        let mutations = || {
            self.ops
                .iter()
                .filter(|o| o.key == read.key && !matches!(o.op, Op::Read))
        };
        for m in mutations() {
            let Some(acked) = m.ok_at() else { continue };
            if acked >= read.inv {
                continue;
            }
            let explained = mutations().any(|x| {
                !x.failed()
                    && written_value(&x.op) == Some(v)
                    && x.ok_at().is_none_or(|t| t >= m.inv)
            });
            if !explained {
                return false;
            }
        }
        true
    }

    /// Completed non-info returns.
    pub fn completed(&self) -> usize {
        self.returned as usize
    }

    /// A one-line description of a lost acknowledged write, if any.
    pub fn lost_ack_text(&self) -> Option<String> {
        let r = &self.ops[self.lost_ack? as usize];
        let v = match &r.ret {
            Some((_, Outcome::Ok(v))) => v.clone(),
            _ => None,
        };
        Some(format!(
            "read of {} (#{}.{}) returned {}, missing a mutation acknowledged before the read began",
            r.key,
            r.id >> 32,
            r.id & 0xffff_ffff,
            v.map_or("absent".to_string(), |v| v.to_string())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: u64, key: u32, op: Op) -> Request {
        Request {
            id,
            key: Key(key),
            op,
        }
    }

    #[test]
    fn stale_read_after_ack_is_not_linearizable_and_loses_the_write() {
        let (a, b) = (Id::from(3), Id::from(4));
        let h = Hist::default();
        let h = h.invoke(a, &req(1, 0, Op::Write(1))).unwrap();
        let h = h
            .complete(&req(1, 0, Op::Write(1)), Outcome::Ok(None))
            .unwrap();
        let h = h.invoke(b, &req(2, 0, Op::Read)).unwrap();
        assert!(
            h.invoke(b, &req(2, 0, Op::Read)).is_none(),
            "retries ignored"
        );
        let h = h.complete(&req(2, 0, Op::Read), Outcome::Ok(None)).unwrap();
        assert!(!h.linearizable());
        assert!(h.lost_ack.is_some());
    }

    #[test]
    fn info_write_may_or_may_not_apply() {
        let (a, b) = (Id::from(3), Id::from(4));
        let w = req(1, 0, Op::Write(1));
        let h = Hist::default().invoke(a, &w).unwrap();
        let h = h.complete(&w, Outcome::Info).unwrap();
        for v in [None, Some(1)] {
            let r = req(2, 0, Op::Read);
            let h2 = h
                .invoke(b, &r)
                .unwrap()
                .complete(&r, Outcome::read_reg(v))
                .unwrap();
            assert!(h2.linearizable(), "{v:?}");
            assert!(h2.lost_ack.is_none());
        }
        // but it cannot flip back: 1 then absent
        let r1 = req(2, 0, Op::Read);
        let r2 = req(3, 0, Op::Read);
        let h3 = h
            .invoke(b, &r1)
            .unwrap()
            .complete(&r1, Outcome::read_reg(Some(1)))
            .unwrap()
            .invoke(b, &r2)
            .unwrap()
            .complete(&r2, Outcome::Ok(None))
            .unwrap();
        assert!(!h3.linearizable());
    }

    #[test]
    fn cas_and_create_preconditions() {
        let a = Id::from(3);
        let ops = [
            (req(1, 0, Op::Create(5)), Outcome::Ok(None)),
            (
                req(2, 0, Op::Create(6)),
                Outcome::Fail(FailKind::Precondition),
            ),
            (
                req(
                    3,
                    0,
                    Op::Cas {
                        expected: 5,
                        new: 7,
                    },
                ),
                Outcome::Ok(None),
            ),
            (req(4, 0, Op::Read), Outcome::read_reg(Some(7))),
            (req(5, 0, Op::Delete), Outcome::Ok(None)),
            (req(6, 0, Op::Write(9)), Outcome::Fail(FailKind::NotApplied)),
            (req(7, 0, Op::Read), Outcome::Ok(None)),
        ];
        let mut h = Hist::default();
        for (r, o) in ops {
            h = h.invoke(a, &r).unwrap().complete(&r, o).unwrap();
        }
        assert!(h.linearizable());
        assert_eq!(h.completed(), 7);
        let bad = req(8, 0, Op::Create(1));
        let h = h
            .invoke(a, &bad)
            .unwrap()
            .complete(&bad, Outcome::Fail(FailKind::Precondition))
            .unwrap();
        assert!(!h.linearizable(), "create cannot fail on an absent key");
    }

    #[test]
    fn a_read_missing_an_acknowledged_add_loses_it() {
        let (a, b) = (Id::from(3), Id::from(4));
        let add = |id, e| req(id, 0, Op::Add(e));
        let h = Hist::default().invoke(a, &add(1, 7)).unwrap();
        let h = h.complete(&add(1, 7), Outcome::Ok(None)).unwrap();
        let h = h.invoke(a, &add(2, 8)).unwrap();
        // a read concurrent with the second add may miss it, not the first
        let r = req(3, 0, Op::Read);
        let ok = h
            .invoke(b, &r)
            .unwrap()
            .complete(&r, Outcome::Ok(Some(Datum::set_of([7]))))
            .unwrap();
        assert!(ok.linearizable() && ok.lost_ack.is_none());
        let lost = h
            .invoke(b, &r)
            .unwrap()
            .complete(&r, Outcome::Ok(None))
            .unwrap();
        assert!(!lost.linearizable());
        assert!(lost.lost_ack.is_some(), "{:?}", lost.lost_ack_text());
    }
}
