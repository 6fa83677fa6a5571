//! The client adapter: riak's router, reduced to what a client can learn by itself.
//!
//! * A key goes to its ensemble (`Layout::group_of`), to the member believed to lead it:
//!   initially the first member of the preference list.
//! * Any member may be asked: a follower forwards the request to its leader (as riak's
//!   followers do), and the leader answers the client directly, so every answer teaches the
//!   client who leads (the answer's source).
//! * A peer that neither leads nor follows answers `redirect` (riak: `nack`, which the router
//!   turns into `timeout`) with its best guess; the client retries after a short back-off,
//!   at the guess or at the next member of the preference list. Nothing was executed, so the
//!   retry is safe.
//! * A call that got no answer at all (the generic client's timeout turned it into `info`)
//!   makes the next call of that ensemble start at the next member.
//! * Replies whose request id is not the outstanding call are ignored.

use crate::msg::{Ens, KvReply, Msg};
use quorumlab_kv::{ClientAdapter, ClientOut, FailKind, Layout, Op, Outcome, Request};
use stateright::actor::Id;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Adapter {
    pub layout: Arc<Layout>,
    pub backoff: Duration,
}

/// The last request sent, and whether anyone answered it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Attempt {
    pub id: u64,
    pub ens: Ens,
    pub to: Id,
    pub answered: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AdapterState {
    /// The believed leader of each ensemble.
    pub leaders: BTreeMap<Ens, Id>,
    pub last: Option<Attempt>,
}

/// Retry the call with this request id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Retry(pub u64);

/// riak's client replies on the KV contract: a failed precondition is `fail` (and an
/// observation); a refusal before anything was written is `fail`; a `timeout` — a quorum
/// failure after writes may have been sent — is `info`.
pub fn outcome(op: &Op, reply: KvReply) -> Outcome {
    match reply {
        KvReply::Ok(v) => Outcome::Ok(if matches!(op, Op::Read) { v } else { None }),
        KvReply::Precondition => Outcome::Fail(FailKind::Precondition),
        KvReply::Failed | KvReply::Unavailable => Outcome::Fail(FailKind::NotApplied),
        KvReply::Timeout => Outcome::Info,
    }
}

impl Adapter {
    fn members(&self, ens: Ens) -> &[Id] {
        self.layout
            .groups
            .get(ens as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The member after `after` in the preference list (wrapping).
    fn next_member(&self, ens: Ens, after: Id) -> Option<Id> {
        let m = self.members(ens);
        let i = m.iter().position(|&x| x == after)?;
        m.get((i + 1) % m.len()).copied()
    }

    fn target(&self, st: &AdapterState, ens: Ens) -> Option<Id> {
        st.leaders
            .get(&ens)
            .copied()
            .or_else(|| self.members(ens).first().copied())
    }

    fn send(&self, st: &mut AdapterState, req: &Request, o: &mut ClientOut<Msg, Retry>) {
        let ens = self.layout.group_of(req.key) as Ens;
        let Some(to) = self.target(st, ens) else {
            return;
        };
        st.last = Some(Attempt {
            id: req.id,
            ens,
            to,
            answered: false,
        });
        o.send(to, Msg::ClientReq { ens, req: *req });
    }
}

impl ClientAdapter for Adapter {
    type Msg = Msg;
    type Timer = Retry;
    type State = AdapterState;

    fn init(&self, _me: Id) -> AdapterState {
        AdapterState {
            leaders: BTreeMap::new(),
            last: None,
        }
    }

    fn begin(&self, st: &mut AdapterState, req: &Request, o: &mut ClientOut<Msg, Retry>) {
        if let Some(a) = st.last {
            if !a.answered {
                if let Some(n) = self.next_member(a.ens, a.to) {
                    st.leaders.insert(a.ens, n);
                }
            }
        }
        self.send(st, req, o);
    }

    fn on_msg(
        &self,
        st: &mut AdapterState,
        call: Option<&Request>,
        src: Id,
        msg: Msg,
        o: &mut ClientOut<Msg, Retry>,
    ) -> Option<Outcome> {
        let req = call?;
        match msg {
            Msg::ClientResp { id, reply } if id == req.id => {
                let ens = self.layout.group_of(req.key) as Ens;
                st.leaders.insert(ens, src);
                if let Some(a) = &mut st.last {
                    a.answered = true;
                }
                Some(outcome(&req.op, reply))
            }
            Msg::Redirect { id, leader } if id == req.id => {
                let ens = self.layout.group_of(req.key) as Ens;
                if let Some(a) = &mut st.last {
                    a.answered = true;
                }
                let next = match leader {
                    Some(l) if l != src && self.members(ens).contains(&l) => Some(l),
                    _ => self.next_member(ens, src),
                };
                if let Some(n) = next {
                    st.leaders.insert(ens, n);
                }
                o.set_timer(Retry(id), self.backoff..self.backoff * 2);
                None
            }
            _ => None,
        }
    }

    fn on_timer(
        &self,
        st: &mut AdapterState,
        call: Option<&Request>,
        timer: &Retry,
        o: &mut ClientOut<Msg, Retry>,
    ) -> Option<Outcome> {
        if let Some(req) = call {
            if req.id == timer.0 {
                self.send(st, req, o);
            }
        }
        None
    }
}
