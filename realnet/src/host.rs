//! The real-time host: runs `KvNode` actors (one server in a node process, many clients in a
//! load process) on a tokio current-thread runtime, as stateright's runtime would:
//! `Send` goes over TCP (or to a co-hosted actor), `SetTimer` samples its range with a seeded
//! RNG and arms a tokio deadline, `Save` is made durable before any later command runs (so a
//! reply that follows a save never overtakes it), `ChooseRandom` picks with the seeded RNG.
//!
//! The event loop owns every actor and all protocol state; socket tasks only move bytes and
//! decode frames. A local fault layer drops messages to (`cut_out`) or from (`cut_in`) chosen
//! endpoints; it is driven over the admin socket.

use crate::codec::{PMsg, PStore, RealProtocol};
use crate::frame::{accept_hello, data_payload, read_frame, send_hello, split_data};
use crate::storage::DurableFile;
use quorumlab_kv::{KvNode, KvServer, NodeState, Outcome, Request, Wire};
use quorumlab_sim::driver;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stateright::actor::{Actor, Command, Id, Out};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Frames queued per connection before new ones are dropped (a slow or stopped peer must not
/// grow memory without bound; the protocols tolerate loss).
const QUEUE: usize = 8192;

type A<R> = KvNode<<R as RealProtocol>::S, <R as RealProtocol>::C>;
type ATimer<R> = <A<R> as Actor>::Timer;
type AState<R> = <A<R> as Actor>::State;
type Tx = mpsc::Sender<Vec<u8>>;

/// What the socket tasks hand to the event loop.
pub enum Event<M> {
    Net {
        from: u32,
        to: u32,
        msg: M,
    },
    /// A client endpoint was seen on an incoming connection: replies to it go there.
    Route {
        id: u32,
        tx: Tx,
    },
    Admin {
        cmd: String,
        reply: oneshot::Sender<String>,
    },
}

/// Counters shared with the socket tasks.
#[derive(Default)]
pub struct Shared {
    pub rejected_conns: AtomicU64,
    pub rejected_frames: AtomicU64,
    pub received: AtomicU64,
}

/// The loop's counters.
#[derive(Default, Clone, Debug, serde::Serialize)]
pub struct Stats {
    pub sent: u64,
    pub sent_bytes: u64,
    pub dropped: u64,
    pub delivered: u64,
    pub saves: u64,
    pub save_bytes: u64,
    pub rejected_conns: u64,
    pub rejected_frames: u64,
}

/// A driver plugged into the loop (the workload in a load process).
pub trait Hook<R: RealProtocol> {
    /// The next instant the hook wants to be called at.
    fn next(&self) -> Option<Instant>;
    fn fire(&mut self, host: &mut Host<R>);
    fn done(&mut self, host: &mut Host<R>, client: u32, req: Request, outcome: Outcome);
    fn finished(&self) -> bool;
}

/// A hook that never ends (a node process).
pub struct Forever;
impl<R: RealProtocol> Hook<R> for Forever {
    fn next(&self) -> Option<Instant> {
        None
    }
    fn fire(&mut self, _: &mut Host<R>) {}
    fn done(&mut self, _: &mut Host<R>, _: u32, _: Request, _: Outcome) {}
    fn finished(&self) -> bool {
        false
    }
}

struct Local<R: RealProtocol> {
    id: Id,
    actor: A<R>,
    state: Option<AState<R>>,
}

pub struct Host<R: RealProtocol> {
    nodes: usize,
    addrs: Vec<SocketAddr>,
    secret: String,
    locals: Vec<Local<R>>,
    index: HashMap<u32, usize>,
    timers: BTreeMap<(Instant, u64), (usize, ATimer<R>)>,
    timer_at: HashMap<(usize, ATimer<R>), (Instant, u64)>,
    seq: u64,
    rng: ChaCha8Rng,
    store: Option<DurableFile>,
    /// The last saved storage (for incremental saves).
    saved: Option<PStore<R>>,
    peers: HashMap<u32, Tx>,
    routes: HashMap<u32, Tx>,
    inbox: mpsc::UnboundedSender<Event<PMsg<R>>>,
    local_q: VecDeque<(usize, Id, Wire<PMsg<R>>)>,
    done: Vec<(u32, Request, Outcome)>,
    cut_out: HashSet<u32>,
    cut_in: HashSet<u32>,
    shared: Arc<Shared>,
    pub stats: Stats,
}

impl<R: RealProtocol> Host<R>
where
    PMsg<R>: Send,
{
    /// A host for the endpoints `ids` (their actors from `R::endpoints`). `store`: the durable
    /// file of a server (its content is recovered by `start`).
    pub fn new(
        addrs: Vec<SocketAddr>,
        secret: String,
        actors: Vec<(Id, A<R>)>,
        store: Option<DurableFile>,
        seed: u64,
        inbox: mpsc::UnboundedSender<Event<PMsg<R>>>,
    ) -> Self {
        let index = actors
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (usize::from(*id) as u32, i))
            .collect();
        Host {
            nodes: addrs.len(),
            addrs,
            secret,
            locals: actors
                .into_iter()
                .map(|(id, actor)| Local {
                    id,
                    actor,
                    state: None,
                })
                .collect(),
            index,
            timers: BTreeMap::new(),
            timer_at: HashMap::new(),
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            store,
            saved: None,
            peers: HashMap::new(),
            routes: HashMap::new(),
            inbox,
            local_q: VecDeque::new(),
            done: Vec::new(),
            cut_out: HashSet::new(),
            cut_in: HashSet::new(),
            shared: Arc::new(Shared::default()),
            stats: Stats::default(),
        }
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Starts every hosted actor (servers from their recovered storage).
    pub fn start(&mut self) -> Result<(), String> {
        let storage: Option<PStore<R>> = match &self.store {
            None => None,
            Some(f) => {
                let (snap, recs) = f.load_all().map_err(|e| e.to_string())?;
                eprintln!(
                    "recovered: snapshot of {} bytes, {} log records",
                    snap.as_ref().map_or(0, |s| s.len()),
                    recs.len()
                );
                let bad = "the stored state does not decode (another protocol's data directory?)";
                match snap {
                    None if recs.is_empty() => None,
                    None => return Err(bad.into()),
                    Some(b) => {
                        let mut s = R::dec_storage(&b).ok_or(bad)?;
                        for r in &recs {
                            R::apply_delta(&mut s, r).ok_or(bad)?;
                        }
                        Some(s)
                    }
                }
            }
        };
        if R::INCREMENTAL {
            self.saved = storage.clone();
        }
        for li in 0..self.locals.len() {
            let mut out = Out::new();
            let l = &self.locals[li];
            R::before(&l.actor);
            let st = l.actor.on_start(l.id, &storage, &mut out);
            self.locals[li].state = Some(st);
            self.apply(li, out);
        }
        Ok(())
    }

    /// Hands `req` to the client endpoint `client` (as the simulator's driver does).
    pub fn invoke(&mut self, client: u32, req: Request) {
        if let Some(&li) = self.index.get(&client) {
            self.local_q.push_back((li, driver(), Wire::Invoke(req)));
        }
    }

    /// The groups the hosted server leads, by its own state.
    pub fn leadership(&self) -> Vec<quorumlab_kv::Leadership> {
        let mut v = Vec::new();
        for l in &self.locals {
            if let (KvNode::Server(s), Some(NodeState::Server(Some(st)))) = (&l.actor, &l.state) {
                v.extend(s.leadership(st));
            }
        }
        v
    }

    fn with_state(
        &mut self,
        li: usize,
        f: impl FnOnce(&A<R>, Id, &mut Cow<AState<R>>, &mut Out<A<R>>),
    ) {
        let Some(st) = self.locals[li].state.take() else {
            return;
        };
        let mut cow = Cow::Owned(st);
        let mut out = Out::new();
        R::before(&self.locals[li].actor);
        f(
            &self.locals[li].actor,
            self.locals[li].id,
            &mut cow,
            &mut out,
        );
        self.locals[li].state = Some(cow.into_owned());
        self.apply(li, out);
    }

    fn apply(&mut self, li: usize, out: Out<A<R>>) {
        let mut randoms = Vec::new();
        for cmd in out {
            match cmd {
                Command::Send(to, m) => self.send(li, to, m),
                Command::SetTimer(t, range) => {
                    let (lo, hi) = (range.start, range.end);
                    let d = if hi > lo {
                        Duration::from_nanos(
                            self.rng
                                .random_range(lo.as_nanos() as u64..hi.as_nanos() as u64),
                        )
                    } else {
                        lo
                    };
                    let key = (li, t);
                    if let Some(old) = self.timer_at.remove(&key) {
                        self.timers.remove(&old);
                    }
                    self.seq += 1;
                    let at = (Instant::now() + d, self.seq);
                    self.timers.insert(at, key.clone());
                    self.timer_at.insert(key, at);
                }
                Command::CancelTimer(t) => {
                    if let Some(old) = self.timer_at.remove(&(li, t)) {
                        self.timers.remove(&old);
                    }
                }
                Command::Save(s) => {
                    if let Some(f) = self.store.as_mut() {
                        let delta = match &self.saved {
                            Some(prev) if R::INCREMENTAL && !f.wants_snapshot() => {
                                R::delta(prev, &s)
                            }
                            _ => None,
                        };
                        let (body, r) = match delta {
                            Some(rec) => {
                                let r = f.append(&rec);
                                (rec, r)
                            }
                            None => {
                                let body = R::enc_storage(&s);
                                let r = f.save(&body);
                                (body, r)
                            }
                        };
                        if R::INCREMENTAL {
                            self.saved = Some(s);
                        }
                        if let Err(e) = r {
                            // A node that cannot persist must not acknowledge anything more.
                            eprintln!("fatal: saving state: {e}");
                            std::process::exit(3);
                        }
                        self.stats.saves += 1;
                        self.stats.save_bytes += body.len() as u64;
                    }
                }
                Command::ChooseRandom(k, choices) => randoms.push((k, choices)),
            }
        }
        for (_, choices) in randoms {
            if !choices.is_empty() {
                let pick = choices[self.rng.random_range(0..choices.len())].clone();
                self.with_state(li, |a, id, st, o| a.on_random(id, st, &pick, o));
            }
        }
    }

    fn send(&mut self, li: usize, to: Id, m: Wire<PMsg<R>>) {
        let from = usize::from(self.locals[li].id) as u32;
        if to == driver() {
            if let Wire::Done(req, outcome) = m {
                self.done.push((from, req, outcome));
            }
            return;
        }
        let Wire::Peer(pm) = m else { return };
        let to32 = usize::from(to) as u32;
        if let Some(&lj) = self.index.get(&to32) {
            self.local_q
                .push_back((lj, self.locals[li].id, Wire::Peer(pm)));
            return;
        }
        if self.cut_out.contains(&to32) {
            self.stats.dropped += 1;
            return;
        }
        let frame = data_payload(from, to32, &R::enc_msg(&pm));
        let tx = if (to32 as usize) < self.nodes {
            Some(self.peer(to32))
        } else {
            self.routes.get(&to32).cloned()
        };
        let len = frame.len() as u64;
        match tx.map(|tx| tx.try_send(frame)) {
            Some(Ok(())) => {
                self.stats.sent += 1;
                self.stats.sent_bytes += len;
            }
            _ => self.stats.dropped += 1,
        }
    }

    /// The outgoing connection to server `to`, created on first use; it reconnects by itself.
    fn peer(&mut self, to: u32) -> Tx {
        if let Some(tx) = self.peers.get(&to) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let addr = self.addrs[to as usize];
        tokio::spawn(outbound::<PMsg<R>>(
            addr,
            self.secret.clone(),
            rx,
            self.inbox.clone(),
            R::dec_msg,
            self.shared.clone(),
        ));
        self.peers.insert(to, tx.clone());
        tx
    }

    fn on_event(&mut self, ev: Event<PMsg<R>>) {
        match ev {
            Event::Net { from, to, msg } => {
                if self.cut_in.contains(&from) {
                    self.stats.dropped += 1;
                    return;
                }
                if let Some(&li) = self.index.get(&to) {
                    self.stats.delivered += 1;
                    self.with_state(li, |a, id, st, o| {
                        a.on_msg(id, st, Id::from(from as usize), Wire::Peer(msg), o)
                    });
                }
            }
            Event::Route { id, tx } => {
                self.routes.insert(id, tx);
            }
            Event::Admin { cmd, reply } => {
                let _ = reply.send(self.admin(&cmd));
            }
        }
    }

    fn admin(&mut self, cmd: &str) -> String {
        let (verb, ids) = admin_command(cmd);
        match verb {
            "ping" => "pong".into(),
            "leadership" => serde_json::to_string(&self.leadership()).unwrap(),
            "cut_out" => {
                self.cut_out = ids;
                "ok".into()
            }
            "cut_in" => {
                self.cut_in = ids;
                "ok".into()
            }
            "heal" => {
                self.cut_out.clear();
                self.cut_in.clear();
                "ok".into()
            }
            "stats" => {
                let mut s = self.stats.clone();
                s.rejected_conns = self.shared.rejected_conns.load(Ordering::Relaxed);
                s.rejected_frames = self.shared.rejected_frames.load(Ordering::Relaxed);
                serde_json::to_string(&s).unwrap()
            }
            _ => format!("error: unknown command {verb:?}"),
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some((&k, _)) = self.timers.first_key_value() {
            if k.0 > now {
                break;
            }
            let (li, t) = self.timers.remove(&k).unwrap();
            self.timer_at.remove(&(li, t.clone()));
            self.with_state(li, |a, id, st, o| a.on_timeout(id, st, &t, o));
        }
    }

    fn drain_local(&mut self, hook: &mut dyn Hook<R>) {
        loop {
            if let Some((li, src, m)) = self.local_q.pop_front() {
                self.with_state(li, |a, id, st, o| a.on_msg(id, st, src, m, o));
                continue;
            }
            if !self.done.is_empty() {
                for (c, req, out) in std::mem::take(&mut self.done) {
                    hook.done(self, c, req, out);
                }
                continue;
            }
            break;
        }
    }

    /// Runs until the hook is finished (forever for a node).
    pub async fn run(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Event<PMsg<R>>>,
        hook: &mut dyn Hook<R>,
    ) {
        loop {
            self.drain_local(hook);
            if hook.finished() {
                return;
            }
            // Work that is due now runs now: tokio's timer wheel has a 1 ms granularity, so
            // sleeping until "now" would add up to a millisecond to every op in a closed loop
            // with no think time.
            let now = Instant::now();
            if hook.next().is_some_and(|t| t <= now) {
                hook.fire(self);
                continue;
            }
            if self
                .timers
                .first_key_value()
                .is_some_and(|(k, _)| k.0 <= now)
            {
                self.fire_timers();
                continue;
            }
            let t = self.timers.first_key_value().map(|(k, _)| k.0);
            let deadline = match (t, hook.next()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                biased;
                ev = rx.recv() => {
                    let Some(ev) = ev else { return };
                    self.on_event(ev);
                    let mut n = 0;
                    while let Ok(ev) = rx.try_recv() {
                        self.on_event(ev);
                        n += 1;
                        if n == 256 { break; }
                    }
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or(far)) => {}
            }
            self.fire_timers();
            if hook.next().is_some_and(|t| t <= Instant::now()) {
                hook.fire(self);
            }
        }
    }
}

/// An outgoing connection: connect (retrying), hello, then write queued frames and read replies.
pub(crate) async fn outbound<M: Send + 'static>(
    addr: SocketAddr,
    secret: String,
    mut rx: mpsc::Receiver<Vec<u8>>,
    inbox: mpsc::UnboundedSender<Event<M>>,
    dec: fn(&[u8]) -> Option<M>,
    shared: Arc<Shared>,
) {
    loop {
        let Ok(stream) = TcpStream::connect(addr).await else {
            if inbox.is_closed() {
                return;
            }
            // Frames queued for a peer that is down are stale by the time it is back.
            while rx.try_recv().is_ok() {}
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (rd, mut wr) = stream.into_split();
        if send_hello(&mut wr, &secret).await.is_err() {
            continue;
        }
        let reader = tokio::spawn(reader_loop(
            rd,
            inbox.clone(),
            dec,
            None,
            usize::MAX,
            shared.clone(),
        ));
        if !write_loop(&mut wr, &mut rx).await {
            reader.abort();
            return;
        }
        reader.abort();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes frames as they come, batching whatever is queued. Returns false when the queue is
/// closed (the host is gone), true when the connection broke.
async fn write_loop(
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    rx: &mut mpsc::Receiver<Vec<u8>>,
) -> bool {
    loop {
        let Some(mut buf) = rx.recv().await else {
            return false;
        };
        while buf.len() < (256 << 10) {
            match rx.try_recv() {
                Ok(more) => buf.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if wr.write_all(&buf).await.is_err() {
            return true;
        }
    }
}

/// Reads data frames and hands them to the loop. A frame that is oversized, too short or does
/// not decode closes the connection; the node carries on.
async fn reader_loop<M: Send + 'static>(
    mut rd: OwnedReadHalf,
    inbox: mpsc::UnboundedSender<Event<M>>,
    dec: fn(&[u8]) -> Option<M>,
    route: Option<Tx>,
    nodes: usize,
    shared: Arc<Shared>,
) {
    let mut buf = Vec::new();
    let mut seen = HashSet::new();
    loop {
        match read_frame(&mut rd, &mut buf).await {
            Ok(Some(())) => {}
            Ok(None) => return,
            Err(_) => {
                shared.rejected_frames.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let Ok((from, to, body)) = split_data(&buf) else {
            shared.rejected_frames.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(msg) = dec(body) else {
            shared.rejected_frames.fetch_add(1, Ordering::Relaxed);
            return;
        };
        shared.received.fetch_add(1, Ordering::Relaxed);
        if let Some(tx) = &route {
            if from as usize >= nodes && seen.insert(from) {
                let _ = inbox.send(Event::Route {
                    id: from,
                    tx: tx.clone(),
                });
            }
        }
        if inbox.send(Event::Net { from, to, msg }).is_err() {
            return;
        }
    }
}

/// Accepts connections: a hello with the cluster secret within 5 s, then frames.
pub async fn accept_loop<M: Send + 'static>(
    listener: TcpListener,
    secret: String,
    inbox: mpsc::UnboundedSender<Event<M>>,
    dec: fn(&[u8]) -> Option<M>,
    nodes: usize,
    shared: Arc<Shared>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (secret, inbox, shared) = (secret.clone(), inbox.clone(), shared.clone());
        tokio::spawn(async move {
            let (mut rd, mut wr) = stream.into_split();
            match tokio::time::timeout(Duration::from_secs(5), accept_hello(&mut rd, &secret)).await
            {
                Ok(Ok(())) => {}
                _ => {
                    shared.rejected_conns.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            let (tx, mut rx) = mpsc::channel(QUEUE);
            let writer = tokio::spawn(async move {
                write_loop(&mut wr, &mut rx).await;
            });
            reader_loop(rd, inbox, dec, Some(tx), nodes, shared).await;
            writer.abort();
        });
    }
}

/// An admin command: its verb, and its argument read as endpoint ids (`cut_out 1,2`).
pub fn admin_command(cmd: &str) -> (&str, HashSet<u32>) {
    let (verb, arg) = cmd.trim().split_once(' ').unwrap_or((cmd.trim(), ""));
    let ids = arg
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    (verb, ids)
}

/// Serves the admin socket (one command per line, one answer per line).
pub async fn admin_loop<M: Send + 'static>(
    path: &Path,
    inbox: mpsc::UnboundedSender<Event<M>>,
) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path)?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let inbox = inbox.clone();
            tokio::spawn(async move {
                let (rd, mut wr) = stream.into_split();
                let mut lines = BufReader::new(rd).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let (tx, rx) = oneshot::channel();
                    if inbox
                        .send(Event::Admin {
                            cmd: line,
                            reply: tx,
                        })
                        .is_err()
                    {
                        return;
                    }
                    let Ok(ans) = rx.await else { return };
                    if wr.write_all(format!("{ans}\n").as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(())
}
