//! A server node: one executor, one openraft `Raft` per group the node belongs to, durable log
//! stores that survive crashes.

use crate::net::{Body, NetFactory, OrMsg, PeerMsg, RedirectReason, Shared};
use crate::rt::{ExecStats, Executor};
use crate::store::{Cmd, KvConfig, LogStore, SmState, StateMachine, TC};
use crate::{OrTimer, ReadMode};
use openraft::alias::{SnapshotOf, WatchReceiverOf};
use openraft::errors::{
    ClientWriteError, ForwardReason, ForwardToLeader, LinearizableReadError, RaftError,
};
use openraft::metrics::RaftServerMetrics;
use openraft::{EmptyNode, Raft, ReadPolicy, ServerState};
use openraft_rt::WatchReceiver;
use quorumlab_kv::{Layout, Leadership, Op, Outcome, Request, Wire};
use quorumlab_sim::{Ctx, Nanos};
use rand::RngCore;
use stateright::actor::Id;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub type OrRaft = Raft<TC, StateMachine>;

struct GroupRt {
    raft: OrRaft,
    sm: Arc<Mutex<SmState>>,
    metrics: WatchReceiverOf<TC, RaftServerMetrics<TC>>,
}

type Rafts = Arc<Mutex<BTreeMap<u32, GroupRt>>>;

/// What exists only while the node is up.
struct Live {
    // Field order matters: the executor (and with it every task) is dropped first.
    exec: Box<Executor>,
    shared: Arc<Shared>,
    rafts: Rafts,
}

/// Settings shared by every server of a cluster.
#[derive(Debug)]
pub struct ServerConfig {
    pub raft: Arc<openraft::Config>,
    pub read: ReadMode,
    pub layout: Arc<Layout>,
}

pub struct ServerProc {
    me: u64,
    cfg: Arc<ServerConfig>,
    /// Groups on this node: (group, members).
    groups: Vec<(u32, Vec<u64>)>,
    /// Durable per-group vote and log (survive crashes).
    durable: BTreeMap<u32, LogStore>,
    incarnation: u64,
    live: Option<Live>,
    /// The deadline the simulator's wake timer is armed for (local ns).
    armed: Option<Nanos>,
    /// Executor counters of previous incarnations.
    past: ExecStats,
}

impl ServerProc {
    pub fn new(me: u64, cfg: Arc<ServerConfig>) -> Self {
        let groups: Vec<(u32, Vec<u64>)> = cfg
            .layout
            .groups_on(Id::from(me as usize))
            .into_iter()
            .map(|g| {
                let m = cfg.layout.groups[g]
                    .iter()
                    .map(|&i| usize::from(i) as u64)
                    .collect();
                (g as u32, m)
            })
            .collect();
        let durable = groups
            .iter()
            .map(|(g, _)| (*g, LogStore::default()))
            .collect();
        ServerProc {
            me,
            cfg,
            groups,
            durable,
            incarnation: 0,
            live: None,
            armed: None,
            past: ExecStats::default(),
        }
    }

    pub fn is_up(&self) -> bool {
        self.live.is_some()
    }

    /// Executor counters over every incarnation.
    pub fn exec_stats(&self) -> ExecStats {
        let mut s = self.past;
        if let Some(l) = &self.live {
            let c = l.exec.stats();
            s.spawned += c.spawned;
            s.polls += c.polls;
            s.timers_fired += c.timers_fired;
            s.panics += c.panics;
        }
        s
    }

    /// The durable log store of `group` on this node.
    pub fn log_store(&self, group: u32) -> Option<&LogStore> {
        self.durable.get(&group)
    }

    /// The state machine contents of `group` on this node (while it is up).
    pub fn state_machine(&self, group: u32) -> Option<Arc<Mutex<SmState>>> {
        let l = self.live.as_ref()?;
        let r = l.rafts.lock().expect("rafts");
        r.get(&group).map(|g| g.sm.clone())
    }

    pub fn leadership(&self) -> Vec<Leadership> {
        let Some(l) = &self.live else {
            return Vec::new();
        };
        let rafts = l.rafts.lock().expect("rafts");
        rafts
            .iter()
            .filter_map(|(g, rt)| {
                let m = rt.metrics.borrow_watched();
                (m.state == ServerState::Leader).then(|| Leadership {
                    group: *g as usize,
                    term: m.vote.leader_id.term,
                })
            })
            .collect()
    }

    pub fn start(&mut self, cx: &mut Ctx<'_, Wire<OrMsg>, OrTimer>) {
        self.incarnation += 1;
        let seed = cx.rng().next_u64();
        let exec = Box::new(Executor::new(cx.local_now(), seed));
        let shared = Shared::new(self.me, self.incarnation << 40);
        let rafts: Rafts = Arc::new(Mutex::new(BTreeMap::new()));
        for (g, members) in &self.groups {
            let store = self.durable[g].clone();
            let fresh = store.durable.lock().expect("durable").writes == 0;
            let init = fresh && self.incarnation == 1 && members.first() == Some(&self.me);
            let me = self.me;
            let group = *g;
            let members = members.clone();
            let net = NetFactory {
                shared: shared.clone(),
                group,
            };
            let config = self.cfg.raft.clone();
            let rafts = rafts.clone();
            exec.spawn(async move {
                let sm = StateMachine::default();
                let smstate = sm.state.clone();
                let raft = match Raft::new(me, config, net, store, sm).await {
                    Ok(r) => r,
                    Err(_) => return,
                };
                let metrics = raft.server_metrics();
                rafts.lock().expect("rafts").insert(
                    group,
                    GroupRt {
                        raft: raft.clone(),
                        sm: smstate,
                        metrics,
                    },
                );
                if init {
                    let m: BTreeMap<u64, EmptyNode> =
                        members.iter().map(|&i| (i, EmptyNode {})).collect();
                    let _ = raft.initialize(m).await;
                }
            });
        }
        self.live = Some(Live {
            exec,
            shared,
            rafts,
        });
        self.armed = None;
        self.pump(cx, cx.local_now());
    }

    pub fn crash(&mut self) {
        if let Some(l) = self.live.take() {
            let s = l.exec.stats();
            self.past.spawned += s.spawned;
            self.past.polls += s.polls;
            self.past.timers_fired += s.timers_fired;
            self.past.panics += s.panics;
            {
                let _g = l.exec.enter();
                l.exec.shutdown();
            }
            // Drop the Raft handles (and everything they hold) before the executor.
            l.rafts.lock().expect("rafts").clear();
            drop(l);
        }
        self.armed = None;
    }

    /// Lose the most recent durable write of every group (a crash before fsync).
    pub fn lose_unsynced(&mut self) {
        for s in self.durable.values() {
            s.durable.lock().expect("durable").lose_last_write();
        }
    }

    pub fn on_wake(&mut self, cx: &mut Ctx<'_, Wire<OrMsg>, OrTimer>) {
        // The simulator converts local deadlines to real time and back with rounding; the
        // deadline we were woken for has arrived even if the local clock reads a hair earlier.
        let now = cx.local_now().max(self.armed.unwrap_or(0));
        self.armed = None;
        self.pump(cx, now);
    }

    pub fn on_msg(&mut self, cx: &mut Ctx<'_, Wire<OrMsg>, OrTimer>, src: Id, msg: OrMsg) {
        let Some(l) = &self.live else {
            return;
        };
        let src = usize::from(src) as u64;
        match msg {
            OrMsg::Peer(p) if p.body.is_reply() => l.shared.complete(p.rpc, p.body),
            OrMsg::Peer(p) => {
                let raft = l
                    .rafts
                    .lock()
                    .expect("rafts")
                    .get(&p.group)
                    .map(|g| g.raft.clone());
                let Some(raft) = raft else {
                    return;
                };
                let shared = l.shared.clone();
                let _g = l.exec.enter();
                l.exec.spawn(serve_peer(raft, shared, src, p));
            }
            OrMsg::ClientReq(req) => {
                let group = self.cfg.layout.group_of(req.key) as u32;
                let rt = l
                    .rafts
                    .lock()
                    .expect("rafts")
                    .get(&group)
                    .map(|g| (g.raft.clone(), g.sm.clone()));
                match rt {
                    Some((raft, sm)) => {
                        let shared = l.shared.clone();
                        let read = self.cfg.read;
                        let _g = l.exec.enter();
                        l.exec.spawn(serve_client(raft, sm, shared, read, src, req));
                    }
                    None => cx.send(
                        Id::from(src as usize),
                        Wire::Peer(OrMsg::Redirect {
                            id: req.id,
                            leader: None,
                            reason: RedirectReason::NotLeader,
                        }),
                    ),
                }
            }
            OrMsg::ClientResp { .. } | OrMsg::Redirect { .. } => {}
        }
        self.pump(cx, cx.local_now());
    }

    /// Runs the executor to quiescence at `now`, sends what the tasks queued and re-arms the
    /// wake timer.
    fn pump(&mut self, cx: &mut Ctx<'_, Wire<OrMsg>, OrTimer>, now: Nanos) {
        let Some(l) = &self.live else {
            return;
        };
        let next = {
            let _g = l.exec.enter();
            l.exec.advance_to(now);
            l.exec.run_until_stalled()
        };
        for (to, m) in l.shared.take_outbox() {
            cx.send(Id::from(to as usize), Wire::Peer(m));
        }
        let t = l.exec.now();
        if next != self.armed {
            match next {
                Some(d) => cx.set_timer(OrTimer::Wake, d.saturating_sub(t)),
                None => cx.cancel_timer(OrTimer::Wake),
            }
            self.armed = next;
        }
    }
}

async fn serve_peer(raft: OrRaft, shared: Arc<Shared>, src: u64, p: PeerMsg) {
    let reply = match p.body {
        Body::Append(r) => raft.append_entries(r).await.ok().map(Body::AppendResp),
        Body::Vote(r) => raft.vote(r).await.ok().map(Body::VoteResp),
        Body::PreVote(r) => raft.pre_vote(r).await.ok().map(Body::VoteResp),
        Body::Snapshot(vote, meta, data) => raft
            .install_full_snapshot(
                vote,
                SnapshotOf::<TC, _> {
                    meta,
                    snapshot: data,
                },
            )
            .await
            .ok()
            .map(Body::SnapshotResp),
        Body::VoteResp(_) | Body::AppendResp(_) | Body::SnapshotResp(_) => None,
    };
    if let Some(body) = reply {
        shared.send(
            src,
            OrMsg::Peer(PeerMsg {
                group: p.group,
                rpc: p.rpc,
                body,
            }),
        );
    }
}

fn redirect<C: KvConfig>(f: &ForwardToLeader<C>) -> (Option<u64>, RedirectReason) {
    let reason = match f.reason {
        ForwardReason::NotLeader => RedirectReason::NotLeader,
        ForwardReason::LeaseExpired => RedirectReason::LeaseExpired,
        ForwardReason::LeadershipTransfer => RedirectReason::Transfer,
    };
    (f.leader_id, reason)
}

/// Serves client `client`'s request on a node's Raft of the request's group, for any runtime
/// (the simulator's here, tokio in real mode): a read under `read` (after openraft confirms it is
/// linearizable, from the state machine `sm`) or a log entry, and the answer for the client: the
/// outcome, or a redirect. `None`: openraft stopped (fatal error), no answer.
pub async fn answer_client<C: KvConfig>(
    raft: &Raft<C, StateMachine>,
    sm: &Mutex<SmState>,
    read: ReadMode,
    client: u64,
    req: Request,
) -> Option<OrMsg> {
    let policy = match (req.op, read) {
        (Op::Read, ReadMode::ReadIndex) => Some(ReadPolicy::ReadIndex),
        (Op::Read, ReadMode::LeaseRead) => Some(ReadPolicy::LeaseRead),
        _ => None,
    };
    let answer: Result<Outcome, (Option<u64>, RedirectReason)> = match policy {
        Some(policy) => match raft.ensure_linearizable(policy).await {
            Ok(_) => {
                let v = sm.lock().expect("sm").data.kv.get(&req.key).cloned();
                Ok(Outcome::Ok(v))
            }
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => {
                Err(redirect(&f))
            }
            Err(RaftError::APIError(_)) => Err((None, RedirectReason::Retry)),
            Err(RaftError::Fatal(_)) => return None,
        },
        None => match raft.client_write(Cmd { client, req }).await {
            Ok(resp) => Ok(resp.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(redirect(&f)),
            Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(f))) => {
                Err((f.leader_id, RedirectReason::Retry))
            }
            Err(RaftError::APIError(_)) => Err((None, RedirectReason::Retry)),
            Err(RaftError::Fatal(_)) => return None,
        },
    };
    Some(match answer {
        Ok(outcome) => OrMsg::ClientResp {
            id: req.id,
            outcome,
        },
        Err((leader, reason)) => OrMsg::Redirect {
            id: req.id,
            leader,
            reason,
        },
    })
}

async fn serve_client(
    raft: OrRaft,
    sm: Arc<Mutex<SmState>>,
    shared: Arc<Shared>,
    read: ReadMode,
    src: u64,
    req: Request,
) {
    if let Some(msg) = answer_client(&raft, &sm, read, src, req).await {
        shared.send(src, msg);
    }
}
