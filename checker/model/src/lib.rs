//! `quorumlab-model`: exhaustive exploration of the `raft` and `ensemble` actors with stateright
//! 0.31 — the same actor code that runs in the simulator's experiments.
//!
//! * [`harness`]: a stateright [`Model`](stateright::Model) built from a protocol's server actor
//!   plus the generic KV client actors, with deliberate network semantics, server-only crashes,
//!   boundaries and an optional warm start.
//! * [`history`]: invocations and returns recorded from the clients' messages, checked by
//!   stateright's `LinearizabilityTester` against a KV sequential spec.
//! * Properties: `election safety`, `linearizable`, `durability` (always) and `progress`
//!   (sometimes).
//! * [`run`]: BFS, DFS or random simulation, threads, depth/state/time limits, symmetry
//!   reduction where sound; a JSON-ready [`Report`].
//! * [`trace`]: counterexamples as numbered steps and as an SVG sequence diagram.
//! * [`zoo`]: every seeded bug with the configuration that shows it; [`lease`]: the timed
//!   simulator side of the lease teaching case; [`bench`]: our harness against our
//!   re-implementation of stateright's Paxos example (same protocol and state space).
//!
//! See docs/model-checking.md.

pub mod bench;
pub mod config;
pub mod ensemble;
pub mod harness;
pub mod history;
pub mod lease;
pub mod raft;
pub mod run;
pub mod trace;
pub mod zoo;

pub use config::{parse_script, Mode, ModelCfg, NetKind};
pub use ensemble::EnsembleProto;
pub use harness::{KvModel, Proto};
pub use raft::RaftProto;
pub use run::{PropertyReport, Report};

use stateright::Model;

/// The protocols this crate can check.
pub const PROTOCOLS: &[&str] = &["raft", "ensemble"];

/// The variants of `protocol`, faithful first.
pub fn variants(protocol: &str) -> Result<&'static [&'static str], String> {
    match protocol {
        "raft" => Ok(RaftProto::variants()),
        "ensemble" => Ok(EnsembleProto::variants()),
        _ => Err(format!(
            "unknown protocol {protocol:?} for the model checker (expected raft or ensemble)"
        )),
    }
}

/// The configuration `quorumlab model PROTOCOL --variant VARIANT` starts from.
pub fn defaults(protocol: &str, variant: &str) -> Result<ModelCfg, String> {
    match protocol {
        "raft" => RaftProto::defaults(variant),
        "ensemble" => EnsembleProto::defaults(variant),
        _ => Err(variants(protocol).unwrap_err()),
    }
}

/// Runs one check.
pub fn check(cfg: ModelCfg) -> Result<Report, String> {
    match cfg.protocol.as_str() {
        "raft" => run::check(KvModel::<RaftProto>::new(cfg)?),
        "ensemble" => run::check(KvModel::<EnsembleProto>::new(cfg)?),
        p => Err(variants(p).unwrap_err()),
    }
}

/// Serves stateright's Explorer for the model on `addr`, which must be a loopback address
/// (blocks while serving).
pub fn explore(cfg: ModelCfg, addr: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<std::net::SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("--explore {addr:?}: {e}"))?
        .collect();
    if addrs.is_empty() || !addrs.iter().all(|a| a.ip().is_loopback()) {
        return Err(format!(
            "--explore {addr:?}: the Explorer is served on loopback addresses only (e.g. localhost:3000)"
        ));
    }
    std::net::TcpListener::bind(&addrs[..]).map_err(|e| format!("--explore {addr:?}: {e}"))?;
    fn serve<P: Proto>(m: KvModel<P>, addrs: Vec<std::net::SocketAddr>) -> Result<(), String> {
        let threads = m.cfg.threads;
        eprintln!(
            "serving stateright's Explorer on http://{} (Ctrl-C to stop)",
            addrs[0]
        );
        let _ = m.checker().threads(threads).serve(&addrs[..]);
        Ok(())
    }
    match cfg.protocol.as_str() {
        "raft" => serve(KvModel::<RaftProto>::new(cfg)?, addrs),
        "ensemble" => serve(KvModel::<EnsembleProto>::new(cfg)?, addrs),
        p => Err(variants(p).unwrap_err()),
    }
}
