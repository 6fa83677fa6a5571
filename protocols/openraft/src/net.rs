//! Messages and openraft's network: every RPC openraft makes becomes a simulator message through
//! the network emulator (counted, delayed, lost, partitioned like everyone else's), and its reply
//! comes back as another message matched by RPC id.

use crate::rt::SimRt;
use crate::store::{KvData, Vote, TC};
use openraft::alias::{SnapshotMetaOf, SnapshotOf};
use openraft::errors::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout as RpcTimeout,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{AnyError, AsyncRuntime, RPCTypes, RaftNetworkFactory, RaftNetworkV2};
use quorumlab_kv::{Outcome, Request};
use quorumlab_sim::Message;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;

/// Bytes of one log entry on the wire (log id + command), for cost accounting.
const ENTRY_BYTES: usize = 48;

/// The body of a server-to-server message.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Body {
    Vote(VoteRequest<TC>),
    PreVote(VoteRequest<TC>),
    VoteResp(VoteResponse<TC>),
    Append(AppendEntriesRequest<TC>),
    AppendResp(AppendEntriesResponse<TC>),
    Snapshot(Vote, SnapshotMetaOf<TC>, KvData),
    SnapshotResp(SnapshotResponse<TC>),
}

impl Body {
    fn rank(&self) -> u8 {
        match self {
            Body::Vote(_) => 0,
            Body::PreVote(_) => 1,
            Body::VoteResp(_) => 2,
            Body::Append(_) => 3,
            Body::AppendResp(_) => 4,
            Body::Snapshot(..) => 5,
            Body::SnapshotResp(_) => 6,
        }
    }
    pub fn is_reply(&self) -> bool {
        matches!(
            self,
            Body::VoteResp(_) | Body::AppendResp(_) | Body::SnapshotResp(_)
        )
    }
}

/// A server-to-server message: an openraft RPC request or reply of one group.
///
/// Equality, order and hash look only at `(group, rpc, kind)`: RPC ids are unique per sender, so
/// this identifies a message within a run. (The client adapter contract asks for `Eq + Ord +
/// Hash` for the model checker; openraft's payloads have none of them, and this protocol is not
/// model-checked.)
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerMsg {
    pub group: u32,
    pub rpc: u64,
    pub body: Body,
}

impl PeerMsg {
    fn key(&self) -> (u32, u64, u8) {
        (self.group, self.rpc, self.body.rank())
    }
}
impl PartialEq for PeerMsg {
    fn eq(&self, o: &Self) -> bool {
        self.key() == o.key()
    }
}
impl Eq for PeerMsg {}
impl PartialOrd for PeerMsg {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for PeerMsg {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key().cmp(&o.key())
    }
}
impl Hash for PeerMsg {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.key().hash(h)
    }
}

/// Why a server sent a client elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RedirectReason {
    /// Not the leader (the hint, if any, names who is).
    NotLeader,
    /// The leader's quorum lease is not (yet) valid: retry the same node shortly.
    LeaseExpired,
    /// The leader is handing over leadership.
    Transfer,
    /// The entry was discarded on a leader change, or the leader could not reach a quorum:
    /// unknown whether it will commit; retrying is safe (the state machine de-duplicates).
    Retry,
}

/// Every message of an openraft cluster (servers and clients).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OrMsg {
    Peer(PeerMsg),
    /// A client request (the client is the sender).
    ClientReq(Request),
    ClientResp {
        id: u64,
        outcome: Outcome,
    },
    Redirect {
        id: u64,
        leader: Option<u64>,
        reason: RedirectReason,
    },
}

impl Message for OrMsg {
    fn kind(&self) -> &'static str {
        match self {
            OrMsg::Peer(p) => match &p.body {
                Body::Vote(_) => "vote",
                Body::PreVote(_) => "pre_vote",
                Body::VoteResp(_) => "vote_resp",
                Body::Append(_) => "append",
                Body::AppendResp(_) => "append_resp",
                Body::Snapshot(..) => "snapshot",
                Body::SnapshotResp(_) => "snapshot_resp",
            },
            OrMsg::ClientReq(_) => "client_req",
            OrMsg::ClientResp { .. } => "client_resp",
            OrMsg::Redirect { .. } => "redirect",
        }
    }

    fn approx_bytes(&self) -> usize {
        // Header: group + rpc id (12) + vote (term, node, committed: 17).
        match self {
            OrMsg::Peer(p) => match &p.body {
                Body::Vote(_) | Body::PreVote(_) => 12 + 17 + 16,
                Body::VoteResp(_) => 12 + 17 + 16 + 1,
                Body::Append(a) => 12 + 17 + 16 + 16 + a.entries.len() * ENTRY_BYTES,
                Body::AppendResp(_) => 12 + 17,
                Body::Snapshot(_, _, d) => 12 + 17 + 64 + d.kv.len() * 12 + d.last.len() * 24,
                Body::SnapshotResp(_) => 12 + 17,
            },
            OrMsg::ClientReq(_) => 40,
            OrMsg::ClientResp { .. } => 24,
            OrMsg::Redirect { .. } => 24,
        }
    }
}

struct Inner {
    next_rpc: u64,
    pending: BTreeMap<u64, oneshot::Sender<Body>>,
    outbox: Vec<(u64, OrMsg)>,
}

/// One node incarnation's link to the simulator: the messages its tasks want sent, and the RPCs
/// waiting for a reply.
pub struct Shared {
    pub me: u64,
    inner: Mutex<Inner>,
}

impl Shared {
    /// `rpc_base` must differ between incarnations of a node, so that a late reply to an RPC of
    /// a previous life never matches a new one.
    pub fn new(me: u64, rpc_base: u64) -> Arc<Self> {
        Arc::new(Shared {
            me,
            inner: Mutex::new(Inner {
                next_rpc: rpc_base,
                pending: BTreeMap::new(),
                outbox: Vec::new(),
            }),
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("net shared")
    }

    /// Queues a message for the simulator.
    pub fn send(&self, to: u64, msg: OrMsg) {
        self.inner().outbox.push((to, msg));
    }

    /// Messages queued since the last call.
    pub fn take_outbox(&self) -> Vec<(u64, OrMsg)> {
        std::mem::take(&mut self.inner().outbox)
    }

    /// A reply arrived: complete the waiting RPC (if it has not given up).
    pub fn complete(&self, rpc: u64, body: Body) {
        let tx = self.inner().pending.remove(&rpc);
        if let Some(tx) = tx {
            let _ = tx.send(body);
        }
    }

    fn start(&self, to: u64, group: u32, body: Body) -> (u64, oneshot::Receiver<Body>) {
        let (tx, rx) = oneshot::channel();
        let mut i = self.inner();
        let rpc = i.next_rpc;
        i.next_rpc += 1;
        i.pending.insert(rpc, tx);
        i.outbox
            .push((to, OrMsg::Peer(PeerMsg { group, rpc, body })));
        (rpc, rx)
    }

    fn forget(&self, rpc: u64) {
        self.inner().pending.remove(&rpc);
    }
}

/// Removes a pending RPC when its caller gives up (timeout or cancellation).
struct PendingGuard<'a> {
    shared: &'a Shared,
    rpc: u64,
}
impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.forget(self.rpc);
    }
}

/// openraft's network factory for one group on one node.
pub struct NetFactory {
    pub shared: Arc<Shared>,
    pub group: u32,
}

impl RaftNetworkFactory<TC> for NetFactory {
    type Network = Net;

    async fn new_client(&mut self, target: u64, _node: &openraft::EmptyNode) -> Net {
        Net {
            shared: self.shared.clone(),
            group: self.group,
            target,
        }
    }
}

/// A connection to one peer: each RPC is a request message and a reply message.
pub struct Net {
    shared: Arc<Shared>,
    group: u32,
    target: u64,
}

impl Net {
    /// Sends `body` and waits for the reply for at most `ttl` of virtual time.
    async fn call(&self, body: Body, ttl: Duration) -> Option<Body> {
        let (rpc, rx) = self.shared.start(self.target, self.group, body);
        let _guard = PendingGuard {
            shared: &self.shared,
            rpc,
        };
        match SimRt::timeout(ttl, rx).await {
            Ok(Ok(b)) => Some(b),
            _ => None,
        }
    }

    fn timeout(&self, action: RPCTypes, ttl: Duration) -> RpcTimeout<TC> {
        RpcTimeout {
            action,
            id: self.shared.me,
            target: self.target,
            timeout: ttl,
        }
    }
}

fn unexpected() -> NetworkError<TC> {
    NetworkError::new(&AnyError::error("unexpected reply kind"))
}

impl RaftNetworkV2<TC> for Net {
    type SnapshotData = KvData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TC>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TC>, RPCError<TC>> {
        let ttl = option.hard_ttl();
        match self.call(Body::Append(rpc), ttl).await {
            Some(Body::AppendResp(r)) => Ok(r),
            Some(_) => Err(RPCError::Network(unexpected())),
            None => Err(RPCError::Timeout(
                self.timeout(RPCTypes::AppendEntries, ttl),
            )),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TC>,
        option: RPCOption,
    ) -> Result<VoteResponse<TC>, RPCError<TC>> {
        let ttl = option.hard_ttl();
        match self.call(Body::Vote(rpc), ttl).await {
            Some(Body::VoteResp(r)) => Ok(r),
            Some(_) => Err(RPCError::Network(unexpected())),
            None => Err(RPCError::Timeout(self.timeout(RPCTypes::Vote, ttl))),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TC>,
        option: RPCOption,
    ) -> Result<VoteResponse<TC>, RPCError<TC>> {
        let ttl = option.hard_ttl();
        match self.call(Body::PreVote(rpc), ttl).await {
            Some(Body::VoteResp(r)) => Ok(r),
            Some(_) => Err(RPCError::Network(unexpected())),
            None => Err(RPCError::Timeout(self.timeout(RPCTypes::Vote, ttl))),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: SnapshotOf<TC, KvData>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TC>, StreamingError<TC>> {
        let ttl = option.hard_ttl();
        let body = Body::Snapshot(vote, snapshot.meta, snapshot.snapshot);
        let call = self.call(body, ttl);
        match SimRt::select2(cancel, call).await {
            openraft_rt::Select2::First(closed) => Err(StreamingError::Closed(closed)),
            openraft_rt::Select2::Second(Some(Body::SnapshotResp(r))) => Ok(r),
            openraft_rt::Select2::Second(Some(_)) => Err(StreamingError::Network(unexpected())),
            openraft_rt::Select2::Second(None) => Err(StreamingError::Timeout(
                self.timeout(RPCTypes::InstallSnapshot, ttl),
            )),
        }
    }
}
