//! One node as a process: its server actor, its TCP listener, its admin socket, its data
//! directory.

use crate::cluster::ClusterFile;
use crate::codec::RealProtocol;
use crate::host::{accept_loop, admin_loop, Forever, Host};
use crate::storage::DurableFile;
use quorumlab_kv::{KvNode, Layout};
use quorumlab_workloads::Spec;
use stateright::actor::Id;
use std::path::Path;

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

/// Runs node `opts.id` until killed.
pub fn run_node<R: RealProtocol>(
    spec: &Spec,
    cluster: &ClusterFile,
    opts: &NodeOptions<'_>,
) -> Result<(), String> {
    let n = cluster.nodes.len();
    if opts.id >= n {
        return Err(format!("--id {} but the cluster has {n} nodes", opts.id));
    }
    let layout = layout(spec, n)?;
    let actor = R::endpoints(spec, &layout)?.swap_remove(opts.id);
    if !matches!(actor, KvNode::Server(_)) {
        return Err("endpoint is not a server".into());
    }
    let store = DurableFile::new(opts.data, opts.fsync)
        .map_err(|e| format!("{}: {e}", opts.data.display()))?;
    let addrs = (0..n).map(|i| cluster.addr(i)).collect();
    let listen = cluster.listen(opts.id)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
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
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("bind {listen}: {e}"))?;
        tokio::spawn(accept_loop(
            listener,
            cluster.secret.clone(),
            tx.clone(),
            R::dec_msg,
            n,
            host.shared(),
        ));
        let sock = opts.data.join("admin.sock");
        admin_loop(&sock, tx.clone())
            .await
            .map_err(|e| format!("{}: {e}", sock.display()))?;
        host.start()?;
        eprintln!("node n{} ({}) listening on {listen}", opts.id, R::NAME);
        host.run(&mut rx, &mut Forever).await;
        Ok(())
    })
}
