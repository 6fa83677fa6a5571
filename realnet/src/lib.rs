//! quorumlab's real-network mode: the protocols' own actors as processes over TCP.
//!
//! * [`host`]: the real-time host (tokio current-thread): timers, TCP transport, durable saves,
//!   the in-process fault layer and the admin socket.
//! * [`frame`]: length-delimited frames, size limit, cluster-secret hello.
//! * [`codec`]: which protocols run for real ([`RealProtocol`]) and their postcard encodings.
//! * [`storage`]: checksummed, atomically replaced, fsynced storage file.
//! * [`node`], [`load`]: a node process; the real-time workload driver.
//! * [`control`]: the fault schedule against processes; the local cluster launcher.
//! * [`openraft`]: the openraft crate on tokio: TCP `RaftNetworkV2`, log on disk.
//! * [`netns`]: `--netns`: namespaces, veth links, `tc netem`, nftables cuts.
//! * [`cluster`]: the cluster file (`CLUSTER.toml`).

pub mod cluster;
pub mod codec;
pub mod control;
pub mod frame;
pub mod host;
pub mod load;
pub mod netns;
pub mod node;
pub mod openraft;
pub mod storage;

pub use cluster::ClusterFile;
pub use codec::{EnsembleReal, EventualReal, RaftReal, RealProtocol, SingleReal};

/// The protocols that run in real mode.
pub const PROTOCOLS: &[&str] = &["single", "raft", "ensemble", "openraft", "eventual"];
