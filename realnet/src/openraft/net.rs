//! openraft's `RaftNetworkV2` over TCP: each RPC is an [`OrWire::Rpc`] frame to the target node
//! on this node's outgoing connection to it, and its reply comes back as another frame matched by
//! RPC id (on the target's outgoing connection to us). A reply that does not come within
//! openraft's TTL is a timeout (frames to a peer that is down, cut or stopped are simply lost).

use super::{OrWire, RpcBody, Vote, TT};
use crate::frame::data_payload;
use crate::host::{outbound, Event, Shared, Stats};
use openraft::alias::SnapshotOf;
use openraft::errors::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout as RpcTimeout,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{AnyError, RPCTypes, RaftNetworkFactory, RaftNetworkV2};
use quorumlab_openraft::store::KvData;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

const QUEUE: usize = 8192;
type Tx = mpsc::Sender<Vec<u8>>;

#[derive(Default)]
struct St {
    peers: HashMap<u32, Tx>,
    routes: HashMap<u32, Tx>,
    cut_out: HashSet<u32>,
    cut_in: HashSet<u32>,
    next_rpc: u64,
    pending: HashMap<u64, oneshot::Sender<RpcBody>>,
    stats: Stats,
}

/// A node's connections, fault layer and pending RPCs.
pub struct NodeNet {
    pub me: u32,
    pub nodes: usize,
    addrs: Vec<SocketAddr>,
    secret: String,
    inbox: mpsc::UnboundedSender<Event<OrWire>>,
    pub shared: Arc<Shared>,
    st: Mutex<St>,
}

fn dec(b: &[u8]) -> Option<OrWire> {
    postcard::from_bytes(b).ok()
}

/// Decoder of incoming frames (for the accept loop).
pub fn decode(b: &[u8]) -> Option<OrWire> {
    dec(b)
}

impl NodeNet {
    pub fn new(
        me: u32,
        addrs: Vec<SocketAddr>,
        secret: String,
        inbox: mpsc::UnboundedSender<Event<OrWire>>,
    ) -> Arc<NodeNet> {
        // RPC ids must not repeat across incarnations of this node: a late reply to an RPC of a
        // previous life must not match a new one.
        let base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        Arc::new(NodeNet {
            me,
            nodes: addrs.len(),
            addrs,
            secret,
            inbox,
            shared: Arc::new(Shared::default()),
            st: Mutex::new(St {
                next_rpc: base,
                ..St::default()
            }),
        })
    }

    fn st(&self) -> MutexGuard<'_, St> {
        self.st.lock().expect("net")
    }

    /// Sends `m` to endpoint `to` (a node, or a client seen on an incoming connection).
    pub fn send(&self, to: u32, m: &OrWire) {
        let mut st = self.st();
        if (to as usize) < self.nodes && st.cut_out.contains(&to) {
            st.stats.dropped += 1;
            return;
        }
        let body = postcard::to_stdvec(m).expect("postcard encodes plain data");
        let frame = data_payload(self.me, to, &body);
        let tx = if (to as usize) < self.nodes {
            Some(match st.peers.get(&to) {
                Some(tx) => tx.clone(),
                None => {
                    let (tx, rx) = mpsc::channel(QUEUE);
                    tokio::spawn(outbound::<OrWire>(
                        self.addrs[to as usize],
                        self.secret.clone(),
                        rx,
                        self.inbox.clone(),
                        dec,
                        self.shared.clone(),
                    ));
                    st.peers.insert(to, tx.clone());
                    tx
                }
            })
        } else {
            st.routes.get(&to).cloned()
        };
        let len = frame.len() as u64;
        match tx.map(|tx| tx.try_send(frame)) {
            Some(Ok(())) => {
                st.stats.sent += 1;
                st.stats.sent_bytes += len;
            }
            _ => st.stats.dropped += 1,
        }
    }

    pub fn route(&self, id: u32, tx: Tx) {
        self.st().routes.insert(id, tx);
    }

    /// Whether a frame from `from` passes the fault layer (counted as delivered if so).
    pub fn admit(&self, from: u32) -> bool {
        let mut st = self.st();
        if st.cut_in.contains(&from) {
            st.stats.dropped += 1;
            false
        } else {
            st.stats.delivered += 1;
            true
        }
    }

    pub fn set_cuts(&self, out: Option<HashSet<u32>>, inn: Option<HashSet<u32>>) {
        let mut st = self.st();
        if let Some(o) = out {
            st.cut_out = o;
        }
        if let Some(i) = inn {
            st.cut_in = i;
        }
    }

    pub fn stats(&self) -> Stats {
        self.st().stats.clone()
    }

    /// A reply arrived: complete the waiting RPC (if it has not given up).
    pub fn complete(&self, rpc: u64, body: RpcBody) {
        if let Some(tx) = self.st().pending.remove(&rpc) {
            let _ = tx.send(body);
        }
    }

    /// Sends an RPC and waits for its reply for at most `ttl`.
    async fn call(&self, to: u32, group: u32, body: RpcBody, ttl: Duration) -> Option<RpcBody> {
        let (tx, rx) = oneshot::channel();
        let rpc = {
            let mut st = self.st();
            let rpc = st.next_rpc;
            st.next_rpc += 1;
            st.pending.insert(rpc, tx);
            rpc
        };
        struct Forget<'a>(&'a NodeNet, u64);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                self.0.st().pending.remove(&self.1);
            }
        }
        let _g = Forget(self, rpc);
        self.send(to, &OrWire::Rpc { group, rpc, body });
        match tokio::time::timeout(ttl, rx).await {
            Ok(Ok(b)) => Some(b),
            _ => None,
        }
    }
}

/// openraft's network factory for one group on one node.
pub struct NetFactory {
    pub net: Arc<NodeNet>,
    pub group: u32,
}

impl RaftNetworkFactory<TT> for NetFactory {
    type Network = Net;

    async fn new_client(&mut self, target: u64, _node: &openraft::EmptyNode) -> Net {
        Net {
            net: self.net.clone(),
            group: self.group,
            target,
        }
    }
}

/// openraft's connection to one peer.
pub struct Net {
    net: Arc<NodeNet>,
    group: u32,
    target: u64,
}

impl Net {
    async fn call(&self, body: RpcBody, ttl: Duration) -> Option<RpcBody> {
        self.net
            .call(self.target as u32, self.group, body, ttl)
            .await
    }
    fn timeout(&self, action: RPCTypes, ttl: Duration) -> RpcTimeout<TT> {
        RpcTimeout {
            action,
            id: self.net.me as u64,
            target: self.target,
            timeout: ttl,
        }
    }
}

fn unexpected() -> NetworkError<TT> {
    NetworkError::new(&AnyError::error("unexpected reply kind"))
}

impl RaftNetworkV2<TT> for Net {
    type SnapshotData = KvData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TT>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TT>, RPCError<TT>> {
        let ttl = option.hard_ttl();
        match self.call(RpcBody::Append(rpc), ttl).await {
            Some(RpcBody::AppendResp(r)) => Ok(r),
            Some(_) => Err(RPCError::Network(unexpected())),
            None => Err(RPCError::Timeout(
                self.timeout(RPCTypes::AppendEntries, ttl),
            )),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TT>,
        option: RPCOption,
    ) -> Result<VoteResponse<TT>, RPCError<TT>> {
        let ttl = option.hard_ttl();
        match self.call(RpcBody::Vote(rpc), ttl).await {
            Some(RpcBody::VoteResp(r)) => Ok(r),
            Some(_) => Err(RPCError::Network(unexpected())),
            None => Err(RPCError::Timeout(self.timeout(RPCTypes::Vote, ttl))),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TT>,
        option: RPCOption,
    ) -> Result<VoteResponse<TT>, RPCError<TT>> {
        let ttl = option.hard_ttl();
        match self.call(RpcBody::PreVote(rpc), ttl).await {
            Some(RpcBody::VoteResp(r)) => Ok(r),
            Some(_) => Err(RPCError::Network(unexpected())),
            None => Err(RPCError::Timeout(self.timeout(RPCTypes::Vote, ttl))),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: SnapshotOf<TT, KvData>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TT>, StreamingError<TT>> {
        let ttl = option.hard_ttl();
        let body = RpcBody::Snapshot(vote, snapshot.meta, snapshot.snapshot);
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            r = self.call(body, ttl) => match r {
                Some(RpcBody::SnapshotResp(r)) => Ok(r),
                Some(_) => Err(StreamingError::Network(unexpected())),
                None => Err(StreamingError::Timeout(
                    self.timeout(RPCTypes::InstallSnapshot, ttl),
                )),
            },
        }
    }
}

/// Whether `from` is a node (not a client).
pub fn is_node(net: &NodeNet, from: u32) -> bool {
    (from as usize) < net.nodes
}
