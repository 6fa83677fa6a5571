//! The client adapter: what a Riak application does with a Riak client.
//!
//! * Routing: the first node of the key's preference list (then its fallbacks), or the
//!   client's own node (then the next nodes on the ring), skipping nodes that recently did not
//!   answer. Without an answer after `client_retry`, the same step goes to the next node.
//! * `read`: one get.
//! * `add`: one request; the coordinator does the statebox update.
//! * `write` and `delete`: fetch, then put with the fetched causal context (what riak
//!   recommends with `allow_mult = true`, so a write supersedes what was read instead of
//!   piling up siblings). With `allow_mult = false` the context is meaningless and the put is
//!   blind (no fetch).
//! * `cas` and `create` are *not* atomic: fetch, compare on the client, then put with the
//!   fetched context — a client-side read-then-write, exactly as a Riak user would write it
//!   without strong consistency. Two clients can both see the precondition hold and both
//!   write.

use crate::msg::{Msg, PutVal, Reply, Retry};
use crate::object::VV;
use crate::params::{Cfg, Routing};
use quorumlab_kv::{ClientAdapter, ClientOut, Datum, FailKind, Key, Op, Outcome, Request};
use stateright::actor::Id;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Adapter {
    pub cfg: Arc<Cfg>,
}

/// The step of a call in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    Get,
    Put { ctx: VV, val: PutVal },
    Add(u64),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallSt {
    pub id: u64,
    pub key: Key,
    pub step: Step,
    /// Nodes to try, in order.
    pub order: Vec<Id>,
    /// Index in `order` of the node asked last.
    pub attempt: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AdapterState {
    pub me: Id,
    pub call: Option<CallSt>,
    /// Nodes that did not answer, with the call number when that happened (forgotten after
    /// 32 calls).
    pub suspect: BTreeMap<Id, u32>,
    pub calls: u32,
}

const FORGET_AFTER: u32 = 32;

impl Adapter {
    fn order(&self, st: &AdapterState, key: Key) -> Vec<Id> {
        let nodes = self.cfg.nodes;
        let all: Vec<Id> = match self.cfg.routing {
            Routing::Preflist => self.cfg.ring_order(key),
            Routing::Local => {
                let start = usize::from(st.me) % nodes.max(1);
                (0..nodes).map(|i| Id::from((start + i) % nodes)).collect()
            }
        };
        let fresh = |id: &Id| {
            st.suspect
                .get(id)
                .is_none_or(|&at| st.calls.wrapping_sub(at) > FORGET_AFTER)
        };
        let (mut good, bad): (Vec<Id>, Vec<Id>) = all.into_iter().partition(fresh);
        good.extend(bad);
        good
    }

    fn step_msg(call: &CallSt) -> Msg {
        match &call.step {
            Step::Get => Msg::Get {
                id: call.id,
                key: call.key,
            },
            Step::Put { ctx, val } => Msg::Put {
                id: call.id,
                key: call.key,
                ctx: ctx.clone(),
                val: *val,
            },
            Step::Add(e) => Msg::Add {
                id: call.id,
                key: call.key,
                elem: *e,
            },
        }
    }

    /// Sends the call's step to `order[attempt]` and arms its retry timer.
    fn send(&self, call: &CallSt, o: &mut ClientOut<Msg, Retry>) {
        if let Some(&to) = call.order.get(call.attempt as usize) {
            o.send(to, Self::step_msg(call));
            let d = self.cfg.client_retry;
            o.set_timer(
                Retry {
                    id: call.id,
                    attempt: call.attempt,
                },
                d..d,
            );
        }
    }

    fn cancel(call: &CallSt, o: &mut ClientOut<Msg, Retry>) {
        o.cancel_timer(Retry {
            id: call.id,
            attempt: call.attempt,
        });
    }

    /// Moves on to the next node; `None` when there is none (the caller decides).
    fn next(&self, call: &mut CallSt, o: &mut ClientOut<Msg, Retry>) -> bool {
        Self::cancel(call, o);
        call.attempt += 1;
        if (call.attempt as usize) < call.order.len() {
            self.send(call, o);
            true
        } else {
            false
        }
    }

    /// The fetched value is in: what to do next for `op`.
    fn after_get(op: &Op, datum: Option<Datum>, ctx: VV) -> Result<Step, Outcome> {
        match *op {
            Op::Read | Op::Add(_) => Err(Outcome::Ok(datum)),
            Op::Write(v) => Ok(Step::Put {
                ctx,
                val: PutVal::Reg(v),
            }),
            Op::Delete => Ok(Step::Put {
                ctx,
                val: PutVal::Tomb,
            }),
            Op::Cas { expected, new } => {
                if datum == Some(Datum::Reg(expected)) {
                    Ok(Step::Put {
                        ctx,
                        val: PutVal::Reg(new),
                    })
                } else {
                    Err(Outcome::Fail(FailKind::Precondition))
                }
            }
            Op::Create(v) => {
                if datum.is_none() {
                    Ok(Step::Put {
                        ctx,
                        val: PutVal::Reg(v),
                    })
                } else {
                    Err(Outcome::Fail(FailKind::Precondition))
                }
            }
        }
    }
}

impl ClientAdapter for Adapter {
    type Msg = Msg;
    type Timer = Retry;
    type State = AdapterState;

    fn init(&self, me: Id) -> AdapterState {
        AdapterState {
            me,
            call: None,
            suspect: BTreeMap::new(),
            calls: 0,
        }
    }

    fn begin(&self, st: &mut AdapterState, req: &Request, o: &mut ClientOut<Msg, Retry>) {
        st.calls = st.calls.wrapping_add(1);
        let step = match req.op {
            Op::Add(e) => Step::Add(e),
            Op::Write(v) if self.cfg.lww => Step::Put {
                ctx: VV::default(),
                val: PutVal::Reg(v),
            },
            Op::Delete if self.cfg.lww => Step::Put {
                ctx: VV::default(),
                val: PutVal::Tomb,
            },
            _ => Step::Get,
        };
        let call = CallSt {
            id: req.id,
            key: req.key,
            step,
            order: self.order(st, req.key),
            attempt: 0,
        };
        self.send(&call, o);
        st.call = Some(call);
    }

    fn on_msg(
        &self,
        st: &mut AdapterState,
        req: Option<&Request>,
        src: Id,
        msg: Msg,
        o: &mut ClientOut<Msg, Retry>,
    ) -> Option<Outcome> {
        st.suspect.remove(&src);
        let req = req?;
        let call = st.call.as_mut().filter(|c| c.id == req.id)?;
        let outcome = match msg {
            Msg::GetOk { id, datum, ctx } if id == call.id && call.step == Step::Get => {
                match Self::after_get(&req.op, datum, ctx) {
                    Err(out) => Some(out),
                    Ok(step) => {
                        Self::cancel(call, o);
                        call.step = step;
                        // Put through the node that just answered.
                        call.order.retain(|&n| n != src);
                        call.order.insert(0, src);
                        call.attempt = 0;
                        self.send(call, o);
                        None
                    }
                }
            }
            Msg::GetFail { id } if id == call.id && call.step == Step::Get => {
                if self.next(call, o) {
                    None
                } else {
                    Some(Outcome::Fail(FailKind::NotApplied))
                }
            }
            Msg::Done { id, reply } if id == call.id && call.step != Step::Get => match reply {
                Reply::Ok => Some(Outcome::Ok(None)),
                Reply::Timeout => Some(Outcome::Info),
                Reply::Precondition => Some(Outcome::Fail(FailKind::Precondition)),
                Reply::Unavailable => {
                    if self.next(call, o) {
                        None
                    } else {
                        Some(Outcome::Fail(FailKind::NotApplied))
                    }
                }
            },
            _ => None,
        };
        if outcome.is_some() {
            if let Some(c) = st.call.take() {
                Self::cancel(&c, o);
            }
        }
        outcome
    }

    fn on_timer(
        &self,
        st: &mut AdapterState,
        req: Option<&Request>,
        timer: &Retry,
        o: &mut ClientOut<Msg, Retry>,
    ) -> Option<Outcome> {
        let req = req?;
        let calls = st.calls;
        let call = st
            .call
            .as_mut()
            .filter(|c| c.id == req.id && c.id == timer.id && c.attempt == timer.attempt)?;
        if let Some(&to) = call.order.get(call.attempt as usize) {
            st.suspect.insert(to, calls);
        }
        if !self.next(call, o) && call.step == Step::Get {
            // Nobody answered the fetch: nothing was written.
            st.call = None;
            return Some(Outcome::Fail(FailKind::NotApplied));
        }
        None
    }
}
