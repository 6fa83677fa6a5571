//! Every protocol the driver can run, by name. Adding a protocol = one entry here and one field
//! in `spec::ProtocolParams`.

use crate::driver::{run, RunOptions, RunOutput};
use crate::spec::Spec;
use quorumlab_kv::KvProtocol;

/// (name, one-line description) of every protocol, in the order `quorumlab protocols` lists them.
pub fn protocols() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            quorumlab_single::Single::NAME,
            quorumlab_single::Single::ABOUT,
        ),
        (quorumlab_raft::Raft::NAME, quorumlab_raft::Raft::ABOUT),
        (
            quorumlab_ensemble::Ensemble::NAME,
            quorumlab_ensemble::Ensemble::ABOUT,
        ),
        (
            quorumlab_openraft::Openraft::NAME,
            quorumlab_openraft::Openraft::ABOUT,
        ),
        (
            quorumlab_eventual::Eventual::NAME,
            quorumlab_eventual::Eventual::ABOUT,
        ),
    ]
}

/// Runs `spec` under the protocol called `name`.
pub fn run_named(
    name: &str,
    spec: &Spec,
    seed: u64,
    opts: RunOptions<'_>,
) -> Result<RunOutput, String> {
    match name {
        "single" => run::<quorumlab_single::Single>(spec, &spec.protocol.single, seed, opts),
        "raft" => run::<quorumlab_raft::Raft>(spec, &spec.protocol.raft, seed, opts),
        "ensemble" => {
            run::<quorumlab_ensemble::Ensemble>(spec, &spec.protocol.ensemble, seed, opts)
        }
        "openraft" => {
            run::<quorumlab_openraft::Openraft>(spec, &spec.protocol.openraft, seed, opts)
        }
        "eventual" => {
            run::<quorumlab_eventual::Eventual>(spec, &spec.protocol.eventual, seed, opts)
        }
        other => Err(format!(
            "unknown protocol {other:?}; known: {}",
            protocols()
                .iter()
                .map(|p| p.0)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
