//! Reproductions: each sets up an experiment the way a source describes it (the Raft paper,
//! the Riak documentation, riak_ensemble's code), runs it in the simulator, and writes CSV,
//! SVG plots and a markdown table that puts the measurement beside the claim, with the command
//! that produced it. Parameters are those of the source, never tuned toward its numbers.
//!
//! `quorumlab reproduce NAME [--quick] --out DIR` calls [`reproduce`].

pub mod failover;
pub mod lease_drift;
pub mod many_ensembles;
pub mod quorum_table;
pub mod rtt;
mod util;

pub use util::Md;

use std::path::PathBuf;

/// How to run a reproduction.
#[derive(Clone, Debug)]
pub struct Options {
    /// Reduced scale (fewer trials, smaller grids): checks that it runs, not the figures.
    pub quick: bool,
    /// The output directory (created).
    pub out: PathBuf,
    /// Worker threads.
    pub jobs: usize,
    /// The command line that produced the output, written into the markdown.
    pub command: String,
}

/// What a reproduction wrote.
#[derive(Clone, Debug)]
pub struct Produced {
    /// The markdown report (`DIR/NAME.md`).
    pub markdown: PathBuf,
    /// Every file written.
    pub files: Vec<PathBuf>,
    /// A few lines for the terminal: the headline results.
    pub headline: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown reproduction {0:?}; known: {1}")]
    Unknown(String, String),
    #[error("{0}")]
    Run(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Every reproduction: (name, what it reproduces).
pub const NAMES: &[(&str, &str)] = &[
    (
        "rtt",
        "round trips per operation, per protocol, op type and read mode, against theory",
    ),
    (
        "quorum-table",
        "Riak's table of allowable missing replicas (n = 3, 5, 7, 9, 15)",
    ),
    (
        "many-ensembles",
        "the Riak docs' argument for many ensembles on a large cluster (50 nodes, n = 5)",
    ),
    (
        "failover",
        "the Raft paper's leader-election experiment (Figure 16), and ensemble's analogue",
    ),
    (
        "lease-drift",
        "stale reads as a function of the leader's clock-rate error",
    ),
];

/// Runs the reproduction `name`.
pub fn reproduce(name: &str, opts: &Options) -> Result<Produced, Error> {
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::Io {
        path: opts.out.clone(),
        source: e,
    })?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .map_err(|e| Error::Run(format!("cannot start worker threads: {e}")))?;
    pool.install(|| match name {
        "rtt" => rtt::run(opts),
        "quorum-table" => quorum_table::run(opts),
        "many-ensembles" => many_ensembles::run(opts),
        "failover" => failover::run(opts),
        "lease-drift" => lease_drift::run(opts),
        other => Err(Error::Unknown(
            other.to_string(),
            NAMES.iter().map(|n| n.0).collect::<Vec<_>>().join(", "),
        )),
    })
}
