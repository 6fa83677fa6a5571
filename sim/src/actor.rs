//! Hosting a `stateright::actor::Actor` unchanged in the simulator.
//!
//! Commands are interpreted as stateright's own runtime would: `Send` goes through the network
//! emulator, `SetTimer` samples a duration uniformly from its range with the node's seeded
//! stream, `Save` replaces the node's durable storage, `ChooseRandom` picks one of the choices
//! with the node's stream and calls `on_random` right after (at the same virtual instant).

use crate::engine::{Ctx, Process};
use crate::{nanos, Message, Nanos};
use rand::Rng;
use stateright::actor::{Actor, Command, Id, Out};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Debug;

/// The timers of a hosted actor: its own, plus the instant wake-up that resolves a random choice.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActorTimer<T> {
    Actor(T),
    Random(String),
}

/// An actor hosted in the simulator, with its durable storage.
pub struct ActorProcess<A: Actor> {
    actor: A,
    state: Option<A::State>,
    /// The durable storage (what survives a crash).
    storage: Option<A::Storage>,
    /// The storage before the latest save: what survives a crash that loses un-synced writes.
    synced: Option<A::Storage>,
    randoms: BTreeMap<String, Vec<A::Random>>,
}

impl<A: Actor> ActorProcess<A> {
    pub fn new(actor: A) -> Self {
        ActorProcess {
            actor,
            state: None,
            storage: None,
            synced: None,
            randoms: BTreeMap::new(),
        }
    }
    pub fn actor(&self) -> &A {
        &self.actor
    }
    /// The actor's state; `None` while it is down.
    pub fn state(&self) -> Option<&A::State> {
        self.state.as_ref()
    }
    /// The durable storage as of now.
    pub fn storage(&self) -> Option<&A::Storage> {
        self.storage.as_ref()
    }

    fn apply(&mut self, out: Out<A>, cx: &mut Ctx<'_, A::Msg, ActorTimer<A::Timer>>)
    where
        A::Msg: Message,
        A::Timer: Ord,
    {
        for cmd in out {
            match cmd {
                Command::Send(to, m) => cx.send(to, m),
                Command::SetTimer(t, range) => {
                    let (lo, hi) = (nanos(range.start), nanos(range.end));
                    let d: Nanos = if hi > lo {
                        cx.rng().random_range(lo..hi)
                    } else {
                        lo
                    };
                    cx.set_timer(ActorTimer::Actor(t), d);
                }
                Command::CancelTimer(t) => cx.cancel_timer(ActorTimer::Actor(t)),
                Command::Save(s) => {
                    self.synced = self.storage.replace(s);
                }
                Command::ChooseRandom(key, choices) => {
                    if choices.is_empty() {
                        self.randoms.remove(&key);
                        cx.cancel_timer(ActorTimer::Random(key));
                    } else {
                        self.randoms.insert(key.clone(), choices);
                        cx.set_timer(ActorTimer::Random(key), 0);
                    }
                }
            }
        }
    }

    fn handle(
        &mut self,
        cx: &mut Ctx<'_, A::Msg, ActorTimer<A::Timer>>,
        f: impl FnOnce(&A, Id, &mut Cow<A::State>, &mut Out<A>),
    ) where
        A::Msg: Message,
        A::Timer: Ord,
    {
        let Some(state) = self.state.take() else {
            return;
        };
        // Owned Cow: the handler mutates in place, no clone of the node state.
        let mut cow: Cow<A::State> = Cow::Owned(state);
        let mut out = Out::new();
        f(&self.actor, cx.id(), &mut cow, &mut out);
        self.state = Some(cow.into_owned());
        self.apply(out, cx);
    }
}

impl<A> Process for ActorProcess<A>
where
    A: Actor,
    A::Msg: Message,
    A::Timer: Ord,
{
    type Msg = A::Msg;
    type Timer = ActorTimer<A::Timer>;

    fn start(&mut self, cx: &mut Ctx<'_, A::Msg, Self::Timer>) {
        let mut out = Out::new();
        let state = self.actor.on_start(cx.id(), &self.storage, &mut out);
        self.state = Some(state);
        self.apply(out, cx);
    }

    fn on_msg(&mut self, cx: &mut Ctx<'_, A::Msg, Self::Timer>, src: Id, msg: A::Msg) {
        self.handle(cx, |a, id, st, o| a.on_msg(id, st, src, msg, o));
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, A::Msg, Self::Timer>, timer: Self::Timer) {
        match timer {
            ActorTimer::Actor(t) => self.handle(cx, |a, id, st, o| a.on_timeout(id, st, &t, o)),
            ActorTimer::Random(key) => {
                let Some(choices) = self.randoms.remove(&key) else {
                    return;
                };
                let pick = choices[cx.rng().random_range(0..choices.len())].clone();
                self.handle(cx, |a, id, st, o| a.on_random(id, st, &pick, o));
            }
        }
    }

    fn crash(&mut self, lose_unsynced: bool) {
        self.state = None;
        self.randoms.clear();
        if lose_unsynced {
            self.storage = self.synced.clone();
        }
    }
}
