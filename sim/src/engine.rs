//! The discrete-event engine: one queue ordered by `(time, seq)`, processes, timers in each
//! node's local clock, crashes, pauses and the network emulator.

use crate::net::{Fate, NetStats, Network};
use crate::{Message, Nanos, Seeds, Stream, DRIVER_INDEX};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use stateright::actor::Id;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Debug;

/// A command a process issues while handling an event.
#[derive(Clone, Debug)]
pub enum Cmd<M, T> {
    Send(Id, M),
    /// Set (or reset) a timer to fire after this many nanoseconds of the node's *local* clock.
    SetTimer(T, Nanos),
    CancelTimer(T),
}

/// What a process sees while it handles one event.
pub struct Ctx<'a, M, T> {
    id: Id,
    local_now: Nanos,
    rng: &'a mut ChaCha8Rng,
    cmds: &'a mut Vec<Cmd<M, T>>,
}

impl<M, T> Ctx<'_, M, T> {
    /// This process's id.
    pub fn id(&self) -> Id {
        self.id
    }
    /// The node's local clock (drifts with its clock rate; starts at 0).
    pub fn local_now(&self) -> Nanos {
        self.local_now
    }
    /// The node's own seeded random stream.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        self.rng
    }
    pub fn send(&mut self, to: Id, msg: M) {
        self.cmds.push(Cmd::Send(to, msg));
    }
    pub fn set_timer(&mut self, timer: T, after_local: Nanos) {
        self.cmds.push(Cmd::SetTimer(timer, after_local));
    }
    pub fn cancel_timer(&mut self, timer: T) {
        self.cmds.push(Cmd::CancelTimer(timer));
    }
}

/// A simulated process: a server node, a client, or anything else that talks over the network.
pub trait Process {
    type Msg: Message;
    type Timer: Clone + Debug + Ord;
    /// Boot (and re-boot after a crash): volatile state is built from durable state.
    fn start(&mut self, cx: &mut Ctx<'_, Self::Msg, Self::Timer>);
    fn on_msg(&mut self, cx: &mut Ctx<'_, Self::Msg, Self::Timer>, src: Id, msg: Self::Msg);
    fn on_timer(&mut self, cx: &mut Ctx<'_, Self::Msg, Self::Timer>, timer: Self::Timer);
    /// The process crashed: drop all volatile state. With `lose_unsynced`, the most recent durable
    /// write is lost as well (it had not been fsynced).
    fn crash(&mut self, lose_unsynced: bool);
}

enum Ev<M, T> {
    Deliver {
        from: usize,
        to: usize,
        msg: M,
        sent: Nanos,
        /// Already through the network (it waited in a paused process's buffer).
        arrived: bool,
    },
    Timer {
        node: usize,
        timer: T,
        gen: u64,
    },
}

struct Item<M, T> {
    time: Nanos,
    seq: u64,
    ev: Ev<M, T>,
}

impl<M, T> PartialEq for Item<M, T> {
    fn eq(&self, o: &Self) -> bool {
        self.time == o.time && self.seq == o.seq
    }
}
impl<M, T> Eq for Item<M, T> {}
impl<M, T> PartialOrd for Item<M, T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<M, T> Ord for Item<M, T> {
    // BinaryHeap is a max-heap: reverse so the earliest (time, seq) pops first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.time, o.seq).cmp(&(self.time, self.seq))
    }
}

struct Node<T> {
    up: bool,
    rate: f64,
    base_real: Nanos,
    base_local: Nanos,
    paused_until: Nanos,
    /// Active timers: the generation that may fire and the local deadline.
    timers: BTreeMap<T, (u64, Nanos)>,
    next_gen: u64,
    rng: ChaCha8Rng,
}

impl<T> Node<T> {
    fn local(&self, real: Nanos) -> Nanos {
        let dt = real.saturating_sub(self.base_real);
        if self.rate == 1.0 {
            self.base_local + dt
        } else {
            self.base_local + (dt as f64 * self.rate).round() as Nanos
        }
    }
    /// The first real time at which the local clock reads at least `local`.
    fn real(&self, local: Nanos) -> Nanos {
        let dl = local.saturating_sub(self.base_local);
        if self.rate == 1.0 {
            self.base_real + dl
        } else {
            self.base_real + (dl as f64 / self.rate).ceil() as Nanos
        }
    }
}

/// Why [`Sim::run_until`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStop {
    /// Virtual time reached the limit.
    Limit,
    /// A process sent something to the driver; time is at that event.
    Outbox,
}

/// Engine counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SimStats {
    pub events: u64,
    pub timers_fired: u64,
}

/// One message in the optional message log (for sequence diagrams).
#[derive(Clone, Debug, Serialize)]
pub struct MsgRecord {
    pub from: usize,
    pub to: usize,
    pub kind: &'static str,
    pub sent: Nanos,
    /// `None` when the message was dropped.
    pub delivered: Option<Nanos>,
}

/// The simulator.
pub struct Sim<P: Process> {
    now: Nanos,
    seq: u64,
    queue: BinaryHeap<Item<P::Msg, P::Timer>>,
    procs: Vec<P>,
    nodes: Vec<Node<P::Timer>>,
    net: Network,
    outbox: Vec<(Id, P::Msg)>,
    cmds: Vec<Cmd<P::Msg, P::Timer>>,
    stats: SimStats,
    log_window: Option<(Nanos, Nanos)>,
    log: Vec<MsgRecord>,
}

impl<P: Process> Sim<P> {
    /// A simulator over `procs` (process `i` is network endpoint `i`). Nothing runs until
    /// [`start_all`](Self::start_all).
    pub fn new(procs: Vec<P>, net: Network, seeds: Seeds) -> Self {
        assert_eq!(
            procs.len(),
            net.endpoints(),
            "one network endpoint per process"
        );
        let nodes = (0..procs.len())
            .map(|i| Node {
                up: true,
                rate: 1.0,
                base_real: 0,
                base_local: 0,
                paused_until: 0,
                timers: BTreeMap::new(),
                next_gen: 0,
                rng: seeds.rng(Stream::Node(i as u64)),
            })
            .collect();
        Sim {
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            procs,
            nodes,
            net,
            outbox: Vec::new(),
            cmds: Vec::new(),
            stats: SimStats::default(),
            log_window: None,
            log: Vec::new(),
        }
    }

    /// Boots every process, in id order.
    pub fn start_all(&mut self) {
        for i in 0..self.procs.len() {
            self.with_ctx(i, |p, cx| p.start(cx));
        }
    }

    pub fn now(&self) -> Nanos {
        self.now
    }
    pub fn processes(&self) -> &[P] {
        &self.procs
    }
    pub fn process(&self, id: usize) -> &P {
        &self.procs[id]
    }
    pub fn process_mut(&mut self, id: usize) -> &mut P {
        &mut self.procs[id]
    }
    pub fn is_up(&self, id: usize) -> bool {
        self.nodes[id].up
    }
    pub fn network(&self) -> &Network {
        &self.net
    }
    pub fn network_mut(&mut self) -> &mut Network {
        &mut self.net
    }
    pub fn net_stats(&self) -> &NetStats {
        &self.net.stats
    }
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }
    /// The local clock of node `id` now.
    pub fn local_now(&self, id: usize) -> Nanos {
        self.nodes[id].local(self.now)
    }
    /// Number of pending events.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Records every message sent within `[from, to]` (virtual time) for sequence diagrams.
    pub fn log_messages(&mut self, from: Nanos, to: Nanos) {
        self.log_window = Some((from, to));
    }
    pub fn message_log(&self) -> &[MsgRecord] {
        &self.log
    }

    /// Messages that processes sent to the driver since the last call.
    pub fn take_outbox(&mut self) -> Vec<(Id, P::Msg)> {
        std::mem::take(&mut self.outbox)
    }

    /// Delivers `msg` from the driver to process `to` now, outside the network (not counted).
    pub fn inject(&mut self, to: usize, msg: P::Msg) {
        let ev = Ev::Deliver {
            from: DRIVER_INDEX,
            to,
            msg,
            sent: self.now,
            arrived: true,
        };
        self.push(self.now, ev);
    }

    fn push(&mut self, time: Nanos, ev: Ev<P::Msg, P::Timer>) {
        self.seq += 1;
        self.queue.push(Item {
            time,
            seq: self.seq,
            ev,
        });
    }

    /// Processes events until virtual time would pass `limit` (then `now = limit`), or until a
    /// process has sent something to the driver.
    pub fn run_until(&mut self, limit: Nanos) -> RunStop {
        loop {
            if !self.outbox.is_empty() {
                return RunStop::Outbox;
            }
            match self.queue.peek() {
                Some(it) if it.time <= limit => {
                    let it = self.queue.pop().expect("peeked");
                    self.now = it.time;
                    self.dispatch(it.ev);
                }
                _ => {
                    self.now = self.now.max(limit);
                    return RunStop::Limit;
                }
            }
        }
    }

    /// Processes exactly one event; `false` if there was none.
    pub fn step(&mut self) -> bool {
        match self.queue.pop() {
            Some(it) => {
                self.now = it.time;
                self.dispatch(it.ev);
                true
            }
            None => false,
        }
    }

    fn dispatch(&mut self, ev: Ev<P::Msg, P::Timer>) {
        self.stats.events += 1;
        match ev {
            Ev::Deliver {
                from,
                to,
                msg,
                sent,
                arrived,
            } => {
                let kind = msg.kind();
                if !arrived && !self.net.survives(from, to, sent) {
                    self.net.stats.on_drop(kind);
                    self.record(from, to, kind, sent, None);
                    return;
                }
                if !self.nodes[to].up {
                    if from != DRIVER_INDEX {
                        self.net.stats.on_drop(kind);
                        self.record(from, to, kind, sent, None);
                    }
                    return;
                }
                if self.nodes[to].paused_until > self.now {
                    let until = self.nodes[to].paused_until;
                    let ev = Ev::Deliver {
                        from,
                        to,
                        msg,
                        sent,
                        arrived: true,
                    };
                    self.push(until, ev);
                    return;
                }
                if from != DRIVER_INDEX {
                    self.net.stats.on_deliver(kind);
                    self.record(from, to, kind, sent, Some(self.now));
                }
                let src = Id::from(from);
                self.with_ctx(to, |p, cx| p.on_msg(cx, src, msg));
            }
            Ev::Timer { node, timer, gen } => {
                let n = &self.nodes[node];
                if !n.up || n.timers.get(&timer).map(|t| t.0) != Some(gen) {
                    return; // cancelled, reset, or the node crashed since
                }
                if n.paused_until > self.now {
                    let until = n.paused_until;
                    self.push(until, Ev::Timer { node, timer, gen });
                    return;
                }
                self.nodes[node].timers.remove(&timer);
                self.stats.timers_fired += 1;
                self.with_ctx(node, |p, cx| p.on_timer(cx, timer));
            }
        }
    }

    fn record(
        &mut self,
        from: usize,
        to: usize,
        kind: &'static str,
        sent: Nanos,
        d: Option<Nanos>,
    ) {
        if let Some((a, b)) = self.log_window {
            if sent >= a && sent <= b && from != DRIVER_INDEX {
                self.log.push(MsgRecord {
                    from,
                    to,
                    kind,
                    sent,
                    delivered: d,
                });
            }
        }
    }

    /// Runs `f` on process `i` with a context, then applies what it asked for.
    fn with_ctx(&mut self, i: usize, f: impl FnOnce(&mut P, &mut Ctx<'_, P::Msg, P::Timer>)) {
        let mut cmds = std::mem::take(&mut self.cmds);
        let local_now = self.nodes[i].local(self.now);
        {
            let mut cx = Ctx {
                id: Id::from(i),
                local_now,
                rng: &mut self.nodes[i].rng,
                cmds: &mut cmds,
            };
            f(&mut self.procs[i], &mut cx);
        }
        for cmd in cmds.drain(..) {
            self.apply(i, local_now, cmd);
        }
        self.cmds = cmds;
    }

    fn apply(&mut self, i: usize, local_now: Nanos, cmd: Cmd<P::Msg, P::Timer>) {
        match cmd {
            Cmd::Send(to, msg) => {
                let to = usize::from(to);
                if to == DRIVER_INDEX {
                    self.outbox.push((Id::from(i), msg));
                    return;
                }
                let kind = msg.kind();
                if to >= self.procs.len() {
                    // Addressed to nobody: count it as sent and lost.
                    self.net.stats.on_send(kind, msg.approx_bytes());
                    self.net.stats.on_drop(kind);
                    return;
                }
                match self.net.send(i, to, self.now, kind, msg.approx_bytes()) {
                    Fate::Dropped => self.record(i, to, kind, self.now, None),
                    Fate::Deliver { at, dup } => {
                        let sent = self.now;
                        if let Some(d) = dup {
                            let copy = msg.clone();
                            self.push(
                                d,
                                Ev::Deliver {
                                    from: i,
                                    to,
                                    msg: copy,
                                    sent,
                                    arrived: false,
                                },
                            );
                        }
                        self.push(
                            at,
                            Ev::Deliver {
                                from: i,
                                to,
                                msg,
                                sent,
                                arrived: false,
                            },
                        );
                    }
                }
            }
            Cmd::SetTimer(timer, after) => {
                let n = &mut self.nodes[i];
                n.next_gen += 1;
                let gen = n.next_gen;
                let deadline = local_now.saturating_add(after);
                let at = n.real(deadline).max(self.now);
                n.timers.insert(timer.clone(), (gen, deadline));
                self.push(
                    at,
                    Ev::Timer {
                        node: i,
                        timer,
                        gen,
                    },
                );
            }
            Cmd::CancelTimer(timer) => {
                self.nodes[i].timers.remove(&timer);
            }
        }
    }

    // ---- faults ----

    /// Crashes process `id`: volatile state and timers are lost; messages that arrive while it is
    /// down are dropped. With `lose_unsynced`, its last durable write is lost too.
    pub fn crash(&mut self, id: usize, lose_unsynced: bool) {
        if !self.nodes[id].up {
            return;
        }
        let n = &mut self.nodes[id];
        n.up = false;
        n.timers.clear();
        n.paused_until = 0;
        self.procs[id].crash(lose_unsynced);
    }

    /// Restarts a crashed process from its durable state.
    pub fn restart(&mut self, id: usize) {
        if self.nodes[id].up {
            return;
        }
        self.nodes[id].up = true;
        self.with_ctx(id, |p, cx| p.start(cx));
    }

    /// Sets the rate of node `id`'s clock (1.0 = real time; 1.5 = runs 50% fast, so its timers
    /// fire 1.5x early in real terms). Pending timers keep their local deadlines.
    pub fn set_clock_rate(&mut self, id: usize, rate: f64) {
        assert!(rate.is_finite() && rate > 0.0, "clock rate must be > 0");
        let now = self.now;
        let n = &mut self.nodes[id];
        n.base_local = n.local(now);
        n.base_real = now;
        n.rate = rate;
        // Re-arm pending timers at their new real deadlines, in timer order (deterministic).
        let rearm: Vec<(P::Timer, Nanos)> = n
            .timers
            .iter()
            .map(|(t, &(_, dl))| (t.clone(), dl))
            .collect();
        for (t, dl) in rearm {
            let n = &mut self.nodes[id];
            n.next_gen += 1;
            let gen = n.next_gen;
            let at = n.real(dl).max(now);
            n.timers.insert(t.clone(), (gen, dl));
            self.push(
                at,
                Ev::Timer {
                    node: id,
                    timer: t,
                    gen,
                },
            );
        }
    }

    pub fn clock_rate(&self, id: usize) -> f64 {
        self.nodes[id].rate
    }

    /// Pauses process `id` for `dur`: it handles nothing until then; messages wait for it, and
    /// its timers fire late (a GC pause or SIGSTOP).
    pub fn pause(&mut self, id: usize, dur: Nanos) {
        let n = &mut self.nodes[id];
        n.paused_until = n.paused_until.max(self.now + dur);
    }

    pub fn is_paused(&self, id: usize) -> bool {
        self.nodes[id].paused_until > self.now
    }
}
