//! One real openraft node: a tokio current-thread runtime hosting one openraft `Raft` per group
//! the node belongs to, the TCP listener and the admin socket (same commands as the other
//! protocols' nodes: `ping`, `leadership`, `stats`, `cut_out`, `cut_in`, `heal`).

use super::net::{decode, is_node, NetFactory, NodeNet};
use super::store::LogStore;
use super::{OrWire, RpcBody, TT};
use crate::cluster::ClusterFile;
use crate::host::{admin_command, Event};
use crate::node::{layout, node_count, node_runtime, open_sockets, NodeOptions};
use openraft::alias::SnapshotOf;
use openraft::{EmptyNode, Raft, ServerState};
use openraft_rt::WatchReceiver;
use quorumlab_kv::{Leadership, Request};
use quorumlab_openraft::net::{OrMsg, RedirectReason};
use quorumlab_openraft::server::answer_client;
use quorumlab_openraft::store::{SmState, StateMachine};
use quorumlab_openraft::ReadMode;
use quorumlab_workloads::Spec;
use stateright::actor::Id;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

pub type OrRaft = Raft<TT, StateMachine>;

struct Group {
    raft: OrRaft,
    sm: Arc<Mutex<SmState>>,
    store: LogStore,
}

/// Runs openraft node `opts.id` until killed.
pub fn run_openraft_node(
    spec: &Spec,
    cluster: &ClusterFile,
    opts: &NodeOptions<'_>,
) -> Result<(), String> {
    let n = node_count(cluster, opts)?;
    let params = &spec.protocol.openraft;
    params.validate()?;
    let config = Arc::new(params.raft_config()?);
    let read = params.read_policy;
    let layout = Arc::new(layout(spec, n)?);
    let me = opts.id as u64;
    let addrs: Vec<_> = (0..n).map(|i| cluster.addr(i)).collect();
    let listen = cluster.listen(opts.id)?;
    let rt = node_runtime()?;
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event<OrWire>>();
        let net = NodeNet::new(opts.id as u32, addrs, cluster.secret.clone(), tx.clone());
        let mut groups: BTreeMap<u32, Group> = BTreeMap::new();
        for g in layout.groups_on(Id::from(opts.id)) {
            let members: Vec<u64> = layout.groups[g]
                .iter()
                .map(|&i| usize::from(i) as u64)
                .collect();
            let dir = opts.data.join(format!("g{g}"));
            let store =
                LogStore::open(&dir, opts.fsync).map_err(|e| format!("{}: {e}", dir.display()))?;
            let fresh = store.is_empty();
            eprintln!(
                "group {g}: recovered log up to index {:?}",
                store.last_index()
            );
            let sm = StateMachine::default();
            let smstate = sm.state.clone();
            let factory = NetFactory {
                net: net.clone(),
                group: g as u32,
            };
            let raft = Raft::new(me, config.clone(), factory, store.clone(), sm)
                .await
                .map_err(|e| format!("openraft: {e}"))?;
            if fresh && members.first() == Some(&me) {
                let m: BTreeMap<u64, EmptyNode> =
                    members.iter().map(|&i| (i, EmptyNode {})).collect();
                let r = raft.clone();
                tokio::spawn(async move {
                    let _ = r.initialize(m).await;
                });
            }
            groups.insert(
                g as u32,
                Group {
                    raft,
                    sm: smstate,
                    store,
                },
            );
        }
        open_sockets(listen, cluster, opts, &tx, decode, net.shared.clone()).await?;
        eprintln!("node n{} (openraft) listening on {listen}", opts.id);
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::Net { from, msg, .. } => {
                    if is_node(&net, from) && !net.admit(from) {
                        continue;
                    }
                    on_frame(&net, &groups, &layout, read, from, msg);
                }
                Event::Route { id, tx } => net.route(id, tx),
                Event::Admin { cmd, reply } => {
                    let _ = reply.send(admin(&net, &groups, &cmd));
                }
            }
        }
        Ok(())
    })
}

fn on_frame(
    net: &Arc<NodeNet>,
    groups: &BTreeMap<u32, Group>,
    layout: &quorumlab_kv::Layout,
    read: ReadMode,
    from: u32,
    msg: OrWire,
) {
    match msg {
        OrWire::Rpc { rpc, body, .. } if body.is_reply() => net.complete(rpc, body),
        OrWire::Rpc { group, rpc, body } => {
            if let Some(g) = groups.get(&group) {
                tokio::spawn(serve_peer(
                    g.raft.clone(),
                    net.clone(),
                    from,
                    group,
                    rpc,
                    body,
                ));
            }
        }
        OrWire::Kv(OrMsg::ClientReq(req)) => {
            let group = layout.group_of(req.key) as u32;
            match groups.get(&group) {
                Some(g) => {
                    tokio::spawn(serve_client(
                        g.raft.clone(),
                        g.sm.clone(),
                        net.clone(),
                        read,
                        from,
                        req,
                    ));
                }
                None => net.send(
                    from,
                    &OrWire::Kv(OrMsg::Redirect {
                        id: req.id,
                        leader: None,
                        reason: RedirectReason::NotLeader,
                    }),
                ),
            }
        }
        OrWire::Kv(_) => {}
    }
}

fn admin(net: &NodeNet, groups: &BTreeMap<u32, Group>, cmd: &str) -> String {
    let (verb, ids) = admin_command(cmd);
    match verb {
        "ping" => "pong".into(),
        "leadership" => {
            let v: Vec<Leadership> = groups
                .iter()
                .filter_map(|(g, rt)| {
                    let m = rt.raft.server_metrics();
                    let m = m.borrow_watched();
                    (m.state == ServerState::Leader).then(|| Leadership {
                        group: *g as usize,
                        term: m.vote.leader_id.term,
                    })
                })
                .collect();
            serde_json::to_string(&v).unwrap()
        }
        "cut_out" => {
            net.set_cuts(Some(ids), None);
            "ok".into()
        }
        "cut_in" => {
            net.set_cuts(None, Some(ids));
            "ok".into()
        }
        "heal" => {
            net.set_cuts(Some(HashSet::new()), Some(HashSet::new()));
            "ok".into()
        }
        "stats" => {
            let mut s = net.stats();
            for g in groups.values() {
                let (w, b) = g.store.counters();
                s.saves += w;
                s.save_bytes += b;
            }
            s.rejected_conns = net.shared.rejected_conns.load(Ordering::Relaxed);
            s.rejected_frames = net.shared.rejected_frames.load(Ordering::Relaxed);
            serde_json::to_string(&s).unwrap()
        }
        _ => format!("error: unknown command {verb:?}"),
    }
}

async fn serve_peer(
    raft: OrRaft,
    net: Arc<NodeNet>,
    src: u32,
    group: u32,
    rpc: u64,
    body: RpcBody,
) {
    let reply = match body {
        RpcBody::Append(r) => raft.append_entries(r).await.ok().map(RpcBody::AppendResp),
        RpcBody::Vote(r) => raft.vote(r).await.ok().map(RpcBody::VoteResp),
        RpcBody::PreVote(r) => raft.pre_vote(r).await.ok().map(RpcBody::VoteResp),
        RpcBody::Snapshot(vote, meta, data) => raft
            .install_full_snapshot(
                vote,
                SnapshotOf::<TT, _> {
                    meta,
                    snapshot: data,
                },
            )
            .await
            .ok()
            .map(RpcBody::SnapshotResp),
        RpcBody::VoteResp(_) | RpcBody::AppendResp(_) | RpcBody::SnapshotResp(_) => None,
    };
    if let Some(body) = reply {
        net.send(src, &OrWire::Rpc { group, rpc, body });
    }
}

/// A client request, served as the simulated protocol's server does (the same code).
async fn serve_client(
    raft: OrRaft,
    sm: Arc<Mutex<SmState>>,
    net: Arc<NodeNet>,
    read: ReadMode,
    src: u32,
    req: Request,
) {
    if let Some(msg) = answer_client(&raft, &sm, read, src as u64, req).await {
        net.send(src, &OrWire::Kv(msg));
    }
}
