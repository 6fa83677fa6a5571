//! The client adapter: send each request to the known leader of its key's group, follow
//! `ForwardToLeader` hints, back off and retry on `LeaseExpired` (a fresh leader whose quorum has
//! not acknowledged it yet) and when no leader is known, and re-send to another member when a
//! node stays silent. Retries are safe: the state machine de-duplicates by (client, request id).

use crate::net::{OrMsg, RedirectReason};
use quorumlab_kv::{ClientAdapter, ClientOut, Layout, Outcome, Request};
use stateright::actor::Id;
use std::sync::Arc;
use std::time::Duration;

/// Immediate re-sends to a hinted leader before backing off (stops redirect ping-pong).
const MAX_HOPS: u32 = 3;

#[derive(Clone, Debug)]
pub struct Adapter {
    pub layout: Arc<Layout>,
    /// Back-off before a retry.
    pub retry: (Duration, Duration),
    /// Silence after which the request is sent to another member.
    pub resend: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AdState {
    /// The leader each group last told us about (or answered as).
    pub leaders: Vec<Option<u64>>,
    /// Round-robin position per group, for when no leader is known.
    rr: Vec<usize>,
    target: u64,
    hops: u32,
    /// The target the silence timer ([`AdTimer::Resend`]) runs for: it is re-armed only when the
    /// target changes, so a node that keeps answering "retry later" (an isolated leader whose
    /// lease expired) is abandoned after `resend` just like a silent one.
    resend_for: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AdTimer {
    /// Back-off over: re-send request `id` to the current target.
    Retry(u64),
    /// No answer to request `id` for a while: try another member.
    Resend(u64),
}

type Out = ClientOut<OrMsg, AdTimer>;

impl Adapter {
    fn members(&self, g: usize) -> &[Id] {
        &self.layout.groups[g]
    }

    /// The next member of group `g` in round-robin order, avoiding `not` when possible.
    fn rotate(&self, st: &mut AdState, g: usize, not: Option<u64>) -> u64 {
        let m = self.members(g);
        for _ in 0..m.len() {
            st.rr[g] = (st.rr[g] + 1) % m.len();
            let c = usize::from(m[st.rr[g]]) as u64;
            if Some(c) != not {
                return c;
            }
        }
        usize::from(m[st.rr[g]]) as u64
    }

    fn send(&self, st: &mut AdState, req: &Request, o: &mut Out) {
        o.send(Id::from(st.target as usize), OrMsg::ClientReq(*req));
        if st.resend_for != Some(st.target) {
            st.resend_for = Some(st.target);
            o.set_timer(AdTimer::Resend(req.id), self.resend..self.resend);
        }
    }

    fn back_off(&self, req: &Request, o: &mut Out) {
        o.set_timer(AdTimer::Retry(req.id), self.retry.0..self.retry.1);
    }
}

impl ClientAdapter for Adapter {
    type Msg = OrMsg;
    type Timer = AdTimer;
    type State = AdState;

    fn init(&self, me: Id) -> AdState {
        let g = self.layout.groups.len();
        // Spread clients over members until they learn the leaders.
        let start = usize::from(me);
        AdState {
            leaders: vec![None; g],
            rr: (0..g)
                .map(|i| start % self.layout.groups[i].len())
                .collect(),
            target: 0,
            hops: 0,
            resend_for: None,
        }
    }

    fn begin(&self, st: &mut AdState, req: &Request, o: &mut Out) {
        let g = self.layout.group_of(req.key);
        st.hops = 0;
        st.resend_for = None;
        st.target = match st.leaders[g] {
            Some(l) => l,
            None => usize::from(self.members(g)[st.rr[g]]) as u64,
        };
        self.send(st, req, o);
    }

    fn on_msg(
        &self,
        st: &mut AdState,
        call: Option<&Request>,
        src: Id,
        msg: OrMsg,
        o: &mut Out,
    ) -> Option<Outcome> {
        let req = call?;
        let g = self.layout.group_of(req.key);
        let src = usize::from(src) as u64;
        match msg {
            OrMsg::ClientResp { id, outcome } if id == req.id => {
                st.leaders[g] = Some(src);
                o.cancel_timer(AdTimer::Resend(id));
                o.cancel_timer(AdTimer::Retry(id));
                Some(outcome)
            }
            OrMsg::Redirect { id, leader, reason } if id == req.id => {
                match reason {
                    RedirectReason::NotLeader | RedirectReason::Transfer => match leader {
                        Some(l) if l != src && st.hops < MAX_HOPS => {
                            st.leaders[g] = Some(l);
                            st.hops += 1;
                            st.target = l;
                            self.send(st, req, o);
                        }
                        Some(l) => {
                            st.leaders[g] = Some(l);
                            st.target = l;
                            self.back_off(req, o);
                        }
                        None => {
                            st.leaders[g] = None;
                            st.target = self.rotate(st, g, Some(src));
                            self.back_off(req, o);
                        }
                    },
                    RedirectReason::LeaseExpired => {
                        st.leaders[g] = Some(src);
                        st.target = src;
                        self.back_off(req, o);
                    }
                    RedirectReason::Retry => {
                        st.target = leader.unwrap_or(src);
                        st.leaders[g] = Some(st.target);
                        self.back_off(req, o);
                    }
                }
                None
            }
            _ => None,
        }
    }

    fn on_timer(
        &self,
        st: &mut AdState,
        call: Option<&Request>,
        timer: &AdTimer,
        o: &mut Out,
    ) -> Option<Outcome> {
        let req = call?;
        match *timer {
            AdTimer::Retry(id) if id == req.id => {
                st.hops = 0;
                self.send(st, req, o);
            }
            AdTimer::Resend(id) if id == req.id => {
                let g = self.layout.group_of(req.key);
                st.leaders[g] = None;
                st.target = self.rotate(st, g, Some(st.target));
                st.hops = 0;
                st.resend_for = None;
                o.cancel_timer(AdTimer::Retry(id));
                self.send(st, req, o);
            }
            _ => {}
        }
        None
    }
}
