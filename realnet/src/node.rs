//! One node as a process: its server actor, its TCP listener, its admin socket, its data
//! directory.

use crate::cluster::ClusterFile;
use crate::codec::RealProtocol;
use crate::host::{accept_loop, admin_loop, Event, Forever, Host, Shared};
use crate::storage::DurableFile;
use quorumlab_kv::{KvNode, Layout};
use quorumlab_workloads::Spec;
use stateright::actor::Id;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The layout of a real cluster: `spec`'s shape with the cluster file's node count.
pub fn layout(spec: &Spec, nodes: usize) -> Result<Layout, String> {
    let c = &spec.cluster;
    Layout::new(
        nodes,
        spec.workload.clients,
        c.replicas.min(nodes),
        c.groups,
        spec.workload.keys,
    )
}

pub struct NodeOptions<'a> {
    pub id: usize,
    pub data: &'a Path,
    pub fsync: bool,
    pub seed: u64,
}

/// The cluster's node count, once `opts.id` is checked to be one of them.
pub fn node_count(cluster: &ClusterFile, opts: &NodeOptions<'_>) -> Result<usize, String> {
    let n = cluster.nodes.len();
    if opts.id >= n {
        return Err(format!("--id {} but the cluster has {n} nodes", opts.id));
    }
    Ok(n)
}

/// The single-threaded tokio runtime of a node process.
pub fn node_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// Opens node `opts.id`'s sockets: its TCP listener on `listen` (frames from the connections it
/// accepts, decoded by `dec`, arrive on `inbox`) and its admin socket in its data directory.
pub async fn open_sockets<M: Send + 'static>(
    listen: SocketAddr,
    cluster: &ClusterFile,
    opts: &NodeOptions<'_>,
    inbox: &mpsc::UnboundedSender<Event<M>>,
    dec: fn(&[u8]) -> Option<M>,
    shared: Arc<Shared>,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("bind {listen}: {e}"))?;
    tokio::spawn(accept_loop(
        listener,
        cluster.secret.clone(),
        inbox.clone(),
        dec,
        cluster.nodes.len(),
        shared,
    ));
    let sock = opts.data.join("admin.sock");
    admin_loop(&sock, inbox.clone())
        .await
        .map_err(|e| format!("{}: {e}", sock.display()))
}

/// Runs node `opts.id` until killed.
pub fn run_node<R: RealProtocol>(
    spec: &Spec,
    cluster: &ClusterFile,
    opts: &NodeOptions<'_>,
) -> Result<(), String> {
    let n = node_count(cluster, opts)?;
    let layout = layout(spec, n)?;
    let actor = R::endpoints(spec, &layout)?.swap_remove(opts.id);
    if !matches!(actor, KvNode::Server(_)) {
        return Err("endpoint is not a server".into());
    }
    let store = DurableFile::new(opts.data, opts.fsync)
        .map_err(|e| format!("{}: {e}", opts.data.display()))?;
    let addrs = (0..n).map(|i| cluster.addr(i)).collect();
    let listen = cluster.listen(opts.id)?;
    let rt = node_runtime()?;
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let seed = opts.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ opts.id as u64;
        let mut host = Host::<R>::new(
            addrs,
            cluster.secret.clone(),
            vec![(Id::from(opts.id), actor)],
            Some(store),
            seed,
            tx.clone(),
        );
        open_sockets(listen, cluster, opts, &tx, R::dec_msg, host.shared()).await?;
        host.start()?;
        eprintln!("node n{} ({}) listening on {listen}", opts.id, R::NAME);
        host.run(&mut rx, &mut Forever).await;
        Ok(())
    })
}
