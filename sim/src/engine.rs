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

enum Ev<M> {
    Deliver {
        from: usize,
        to: usize,
        msg: M,
        sent: Nanos,
        /// Already through the network (it waited in a paused process's buffer).
        arrived: bool,
    },
}

/// A message queue entry: small and `Copy`, so heap operations move 24 bytes; the message
/// itself waits in a slab.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Item {
    time: Nanos,
    seq: u64,
    slot: u32,
}

impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
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
    /// Active timers: their key in the timer queue and their local deadline.
    timers: BTreeMap<T, ((Nanos, u64), Nanos)>,
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

/// The next thing to happen.
enum Next<M, T> {
    Msg(Ev<M>),
    /// A timer of a node fires (with its local deadline, kept if a pause defers it).
    Timer(usize, T, Nanos),
}

/// The next thing to happen and when.
type Due<P> = (Nanos, Next<<P as Process>::Msg, <P as Process>::Timer>);

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
    queue: BinaryHeap<Item>,
    slab: Vec<Option<Ev<P::Msg>>>,
    free: Vec<u32>,
    /// Live timers only, ordered by (time, seq) from the same sequence as messages: a cancelled
    /// or reset timer is removed at once instead of lingering in the heap.
    timer_q: BTreeMap<(Nanos, u64), (usize, P::Timer)>,
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
                rng: seeds.rng(Stream::Node(i as u64)),
            })
            .collect();
        Sim {
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            timer_q: BTreeMap::new(),
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
        self.queue.len() + self.timer_q.len()
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

    fn push(&mut self, time: Nanos, ev: Ev<P::Msg>) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = Some(ev);
                i
            }
            None => {
                self.slab.push(Some(ev));
                (self.slab.len() - 1) as u32
            }
        };
        self.queue.push(Item {
            time,
            seq: self.seq,
            slot,
        });
    }

    /// The (time, seq) of the next event, message or timer.
    fn peek_key(&self) -> Option<(Nanos, u64)> {
        let m = self.queue.peek().map(|i| (i.time, i.seq));
        let t = self.timer_q.first_key_value().map(|(k, _)| *k);
        match (m, t) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn pop(&mut self) -> Option<Due<P>> {
        let m = self.queue.peek().map(|i| (i.time, i.seq));
        let t = self.timer_q.first_key_value().map(|(k, _)| *k);
        let timer_first = match (m, t) {
            (None, None) => return None,
            (Some(a), Some(b)) => b < a,
            (None, Some(_)) => true,
            (Some(_), None) => false,
        };
        if timer_first {
            let ((time, _), (node, timer)) = self.timer_q.pop_first().expect("peeked");
            let (_, deadline) = self.nodes[node]
                .timers
                .remove(&timer)
                .expect("a queued timer is registered with its node");
            Some((time, Next::Timer(node, timer, deadline)))
        } else {
            let it = self.queue.pop().expect("peeked");
            let ev = self.slab[it.slot as usize]
                .take()
                .expect("queued event present");
            self.free.push(it.slot);
            Some((it.time, Next::Msg(ev)))
        }
    }

    /// Arms (or re-arms) `timer` of `node` to fire at real time `at` (local deadline `deadline`).
    fn arm(&mut self, node: usize, timer: P::Timer, deadline: Nanos, at: Nanos) {
        self.seq += 1;
        let key = (at, self.seq);
        if let Some((old, _)) = self.nodes[node]
            .timers
            .insert(timer.clone(), (key, deadline))
        {
            self.timer_q.remove(&old);
        }
        self.timer_q.insert(key, (node, timer));
    }

    fn disarm(&mut self, node: usize, timer: &P::Timer) {
        if let Some((key, _)) = self.nodes[node].timers.remove(timer) {
            self.timer_q.remove(&key);
        }
    }

    /// Processes events until virtual time would pass `limit` (then `now = limit`), or until a
    /// process has sent something to the driver.
    pub fn run_until(&mut self, limit: Nanos) -> RunStop {
        loop {
            if !self.outbox.is_empty() {
                return RunStop::Outbox;
            }
            match self.peek_key() {
                Some((t, _)) if t <= limit => {
                    let (time, ev) = self.pop().expect("peeked");
                    self.now = time;
                    self.dispatch(ev);
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
        match self.pop() {
            Some((time, ev)) => {
                self.now = time;
                self.dispatch(ev);
                true
            }
            None => false,
        }
    }

    fn dispatch(&mut self, next: Next<P::Msg, P::Timer>) {
        self.stats.events += 1;
        match next {
            Next::Timer(node, timer, deadline) => {
                let n = &self.nodes[node];
                if n.paused_until > self.now {
                    let until = n.paused_until;
                    self.arm(node, timer, deadline, until);
                    return;
                }
                self.stats.timers_fired += 1;
                self.with_ctx(node, |p, cx| p.on_timer(cx, timer));
            }
            Next::Msg(ev) => self.deliver(ev),
        }
    }

    fn deliver(&mut self, ev: Ev<P::Msg>) {
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
                let deadline = local_now.saturating_add(after);
                let at = self.nodes[i].real(deadline).max(self.now);
                self.arm(i, timer, deadline, at);
            }
            Cmd::CancelTimer(timer) => self.disarm(i, &timer),
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
        n.paused_until = 0;
        for (_, (key, _)) in std::mem::take(&mut n.timers) {
            self.timer_q.remove(&key);
        }
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
            let at = self.nodes[id].real(dl).max(now);
            self.arm(id, t, dl, at);
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
