//! The generic client: one op outstanding at a time, a client timeout that turns an unanswered
//! op into `info`, and a per-protocol [`ClientAdapter`] that knows where to send requests,
//! how to follow redirects and when to retry.

use crate::op::{Key, Op, Outcome, Request};
use stateright::actor::Id;
use std::fmt::Debug;
use std::hash::Hash;
use std::ops::Range;
use std::time::Duration;

/// What an adapter asks for while handling an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientCmd<M, T> {
    Send(Id, M),
    SetTimer(T, Range<Duration>),
    CancelTimer(T),
}

/// The commands an adapter emits.
#[derive(Clone, Debug)]
pub struct ClientOut<M, T>(pub Vec<ClientCmd<M, T>>);

impl<M, T> Default for ClientOut<M, T> {
    fn default() -> Self {
        ClientOut(Vec::new())
    }
}

impl<M, T> ClientOut<M, T> {
    pub fn send(&mut self, to: Id, msg: M) {
        self.0.push(ClientCmd::Send(to, msg));
    }
    pub fn set_timer(&mut self, timer: T, after: Range<Duration>) {
        self.0.push(ClientCmd::SetTimer(timer, after));
    }
    pub fn cancel_timer(&mut self, timer: T) {
        self.0.push(ClientCmd::CancelTimer(timer));
    }
}

/// The protocol-specific half of a client: node choice, redirects, retries.
///
/// The generic [`KvClient`] owns the call: it starts it, enforces the client timeout (→ `info`)
/// and reports the outcome. The adapter only moves messages. Replies to an earlier request (after
/// a timeout) must be recognised by request id and ignored.
pub trait ClientAdapter: Clone + Debug {
    /// The protocol's message type (shared with its servers).
    type Msg: Clone + Debug + Eq + Hash + Ord;
    type Timer: Clone + Debug + Eq + Hash + Ord;
    /// What the adapter remembers between calls (e.g. the known leader of each group).
    type State: Clone + Debug + Eq + Hash;

    fn init(&self, me: Id) -> Self::State;

    /// Start a call: send `req` somewhere.
    fn begin(&self, st: &mut Self::State, req: &Request, o: &mut ClientOut<Self::Msg, Self::Timer>);

    /// A message arrived; `call` is the outstanding request, if any. Return the outcome when
    /// `call` is complete.
    fn on_msg(
        &self,
        st: &mut Self::State,
        call: Option<&Request>,
        src: Id,
        msg: Self::Msg,
        o: &mut ClientOut<Self::Msg, Self::Timer>,
    ) -> Option<Outcome>;

    /// One of the adapter's timers fired (e.g. a retry back-off).
    fn on_timer(
        &self,
        st: &mut Self::State,
        call: Option<&Request>,
        timer: &Self::Timer,
        o: &mut ClientOut<Self::Msg, Self::Timer>,
    ) -> Option<Outcome> {
        let _ = (st, call, timer, o);
        None
    }
}

/// The client actor's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientState<S> {
    pub adapter: S,
    /// The outstanding request, if any.
    pub call: Option<Request>,
    /// Next position in the script (model checking only).
    pub next: usize,
}

/// A client: the generic half plus a protocol adapter.
#[derive(Clone, Debug)]
pub struct KvClient<C> {
    pub adapter: C,
    /// After this long without an answer the op completes as `info`.
    pub timeout: Duration,
    /// Ops the client issues by itself, one after another, from start (for the model checker;
    /// empty when a workload driver invokes ops).
    pub script: Vec<(Key, Op)>,
}

/// What the client asks its host actor to do besides the adapter's commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEffect<M, T> {
    Adapter(ClientCmd<M, T>),
    SetDeadline(Duration),
    CancelDeadline,
    /// Report the completion of request `id` to the driver.
    Done(Request, Outcome),
}

impl<C: ClientAdapter> KvClient<C> {
    pub fn new(adapter: C, timeout: Duration) -> Self {
        KvClient {
            adapter,
            timeout,
            script: Vec::new(),
        }
    }

    pub fn init(
        &self,
        me: Id,
        fx: &mut Vec<ClientEffect<C::Msg, C::Timer>>,
    ) -> ClientState<C::State> {
        let mut st = ClientState {
            adapter: self.adapter.init(me),
            call: None,
            next: 0,
        };
        self.next_scripted(me, &mut st, fx);
        st
    }

    fn next_scripted(
        &self,
        me: Id,
        st: &mut ClientState<C::State>,
        fx: &mut Vec<ClientEffect<C::Msg, C::Timer>>,
    ) {
        if let Some(&(key, op)) = self.script.get(st.next) {
            st.next += 1;
            let id = (u64::from(usize::from(me) as u32) << 32) | st.next as u64;
            self.invoke(st, Request { id, key, op }, fx);
        }
    }

    /// The driver invokes `req`. A second invocation while one is outstanding is ignored
    /// (a Jepsen process has at most one op in flight).
    pub fn invoke(
        &self,
        st: &mut ClientState<C::State>,
        req: Request,
        fx: &mut Vec<ClientEffect<C::Msg, C::Timer>>,
    ) {
        if st.call.is_some() {
            return;
        }
        st.call = Some(req);
        fx.push(ClientEffect::SetDeadline(self.timeout));
        let mut o = ClientOut::default();
        self.adapter.begin(&mut st.adapter, &req, &mut o);
        fx.extend(o.0.into_iter().map(ClientEffect::Adapter));
    }

    pub fn on_msg(
        &self,
        me: Id,
        st: &mut ClientState<C::State>,
        src: Id,
        msg: C::Msg,
        fx: &mut Vec<ClientEffect<C::Msg, C::Timer>>,
    ) {
        let mut o = ClientOut::default();
        let done = self
            .adapter
            .on_msg(&mut st.adapter, st.call.as_ref(), src, msg, &mut o);
        fx.extend(o.0.into_iter().map(ClientEffect::Adapter));
        if let Some(outcome) = done {
            self.finish(me, st, outcome, fx);
        }
    }

    pub fn on_adapter_timer(
        &self,
        me: Id,
        st: &mut ClientState<C::State>,
        timer: &C::Timer,
        fx: &mut Vec<ClientEffect<C::Msg, C::Timer>>,
    ) {
        let mut o = ClientOut::default();
        let done = self
            .adapter
            .on_timer(&mut st.adapter, st.call.as_ref(), timer, &mut o);
        fx.extend(o.0.into_iter().map(ClientEffect::Adapter));
        if let Some(outcome) = done {
            self.finish(me, st, outcome, fx);
        }
    }

    /// The client timeout fired: the outcome is unknown.
    pub fn on_deadline(
        &self,
        me: Id,
        st: &mut ClientState<C::State>,
        fx: &mut Vec<ClientEffect<C::Msg, C::Timer>>,
    ) {
        self.finish(me, st, Outcome::Info, fx);
    }

    fn finish(
        &self,
        me: Id,
        st: &mut ClientState<C::State>,
        outcome: Outcome,
        fx: &mut Vec<ClientEffect<C::Msg, C::Timer>>,
    ) {
        let Some(req) = st.call.take() else {
            return;
        };
        fx.push(ClientEffect::CancelDeadline);
        fx.push(ClientEffect::Done(req, outcome));
        self.next_scripted(me, st, fx);
    }
}
