//! The Raft client adapter: remembers the known leader of each group, sends there (or to the
//! next replica of the key's group, rotating), follows redirects, and retries after a short
//! back-off while the generic client's timeout has not fired.
//!
//! A request is re-sent only after a server said it did not append it (a redirect), so a write
//! is never applied twice. A request that got no answer at all ends as `info` at the client
//! timeout; the next call to that group then suspects the silent node and tries another replica.

use crate::{Msg, Resp};
use quorumlab_kv::{ClientAdapter, ClientOut, Layout, Outcome, Request};
use stateright::actor::Id;
use std::ops::Range;
use std::time::Duration;

/// Immediate redirects followed in a row before backing off (guards against stale hints that
/// point at each other).
const MAX_HOPS: u32 = 3;

/// The adapter's timer: retry request `id` after a back-off.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RetryTimer(pub u64);

#[derive(Clone, Debug)]
pub struct Adapter {
    layout: Layout,
    backoff: Range<Duration>,
}

/// What a client remembers between calls.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AdapterState {
    /// Known leader per group.
    pub leaders: Vec<Option<Id>>,
    /// Rotation position per group (used when no leader is known).
    pub rot: Vec<u32>,
    /// The outstanding attempt: request id, group, node it was last sent to, and whether that
    /// node answered.
    pub sent: Option<(u64, u32, Id, bool)>,
    /// Redirects followed in a row for the current call.
    pub hops: u32,
}

impl Adapter {
    pub fn new(layout: &Layout, backoff_min: Duration, backoff_max: Duration) -> Self {
        Adapter {
            layout: layout.clone(),
            backoff: backoff_min..backoff_max.max(backoff_min),
        }
    }

    fn target(&self, st: &AdapterState, g: usize) -> Id {
        st.leaders[g].unwrap_or_else(|| {
            let m = &self.layout.groups[g];
            m[st.rot[g] as usize % m.len()]
        })
    }

    fn send(
        &self,
        st: &mut AdapterState,
        req: &Request,
        to: Id,
        o: &mut ClientOut<Msg, RetryTimer>,
    ) {
        let g = self.layout.group_of(req.key) as u32;
        st.sent = Some((req.id, g, to, false));
        o.send(to, Msg::ClientReq(*req));
    }

    /// Forget `bad` as leader of `g` and move the rotation past it.
    fn skip(&self, st: &mut AdapterState, g: usize, bad: Id) {
        if st.leaders[g] == Some(bad) {
            st.leaders[g] = None;
        }
        let m = &self.layout.groups[g];
        st.rot[g] = st.rot[g].wrapping_add(1);
        if m.len() > 1 && m[st.rot[g] as usize % m.len()] == bad {
            st.rot[g] = st.rot[g].wrapping_add(1);
        }
    }
}

impl ClientAdapter for Adapter {
    type Msg = Msg;
    type Timer = RetryTimer;
    type State = AdapterState;

    fn init(&self, me: Id) -> AdapterState {
        let g = self.layout.groups.len();
        // Clients start at different replicas so that a leaderless start spreads load.
        let start = usize::from(me) as u32;
        AdapterState {
            leaders: vec![None; g],
            rot: vec![start; g],
            sent: None,
            hops: 0,
        }
    }

    fn begin(&self, st: &mut AdapterState, req: &Request, o: &mut ClientOut<Msg, RetryTimer>) {
        // The previous call got no answer at all from where it was sent: suspect that node.
        if let Some((_, g, to, false)) = st.sent {
            self.skip(st, g as usize, to);
        }
        st.hops = 0;
        let g = self.layout.group_of(req.key);
        let to = self.target(st, g);
        self.send(st, req, to, o);
    }

    fn on_msg(
        &self,
        st: &mut AdapterState,
        call: Option<&Request>,
        src: Id,
        msg: Msg,
        o: &mut ClientOut<Msg, RetryTimer>,
    ) -> Option<Outcome> {
        let Msg::ClientResp { id, resp } = msg else {
            return None;
        };
        let req = call.filter(|r| r.id == id)?;
        let g = self.layout.group_of(req.key);
        if let Some((sid, _, to, answered)) = &mut st.sent {
            if *sid == id && *to == src {
                *answered = true;
            }
        }
        match resp {
            Resp::Done(outcome) => {
                st.leaders[g] = Some(src);
                Some(outcome)
            }
            Resp::Unknown => {
                self.skip(st, g, src);
                Some(Outcome::Info)
            }
            Resp::Redirect(hint) => {
                st.hops += 1;
                match hint {
                    Some(l) if l != src && st.hops <= MAX_HOPS => {
                        st.leaders[g] = Some(l);
                        self.send(st, req, l, o);
                    }
                    _ => {
                        self.skip(st, g, src);
                        st.hops = 0;
                        o.set_timer(RetryTimer(id), self.backoff.clone());
                    }
                }
                None
            }
        }
    }

    fn on_timer(
        &self,
        st: &mut AdapterState,
        call: Option<&Request>,
        timer: &RetryTimer,
        o: &mut ClientOut<Msg, RetryTimer>,
    ) -> Option<Outcome> {
        let req = call.filter(|r| r.id == timer.0)?;
        let to = self.target(st, self.layout.group_of(req.key));
        self.send(st, req, to, o);
        None
    }
}
