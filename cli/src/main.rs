//! `quorumlab`: run experiments, check histories, compare protocols.

mod compare;
mod model;
mod progress;
mod real;
mod reproduce;
mod run;
mod sweep;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// A workbench for comparing consensus and replication protocols in a deterministic simulator.
#[derive(Parser, Debug)]
#[command(name = "quorumlab", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run one experiment under one protocol and write its run directory.
    Run(run::RunArgs),
    /// Run one experiment under several protocols (same workload, faults and seed) and write
    /// a comparison report.
    Compare(compare::CompareArgs),
    /// Run a grid of parameter values × protocols × seeds in parallel; aggregate over seeds.
    Sweep(sweep::SweepArgs),
    /// Combine the slices of a sharded sweep (`sweep --shard I/N`) into one report.
    Merge(sweep::MergeArgs),
    /// Run one node of a real cluster as this process (see docs/real-mode.md).
    Node(real::NodeArgs),
    /// Run a spec's workload in real time against a running cluster; write the run directory.
    Load(real::LoadArgs),
    /// Start N node processes on loopback, run the workload and faults, write the run directory.
    Real(real::RealArgs),
    /// Reproduce a published claim: CSV, plots and a markdown table beside the claim
    /// (`reproduce list` names them).
    Reproduce(reproduce::ReproduceArgs),
    /// Model-check the raft or ensemble actors with stateright (exhaustive BFS/DFS, random
    /// simulation, Explorer); `model zoo` runs the bug zoo (see docs/model-checking.md).
    Model(model::ModelArgs),
    /// Print a spec to start from.
    Spec {
        #[command(subcommand)]
        which: SpecCmd,
    },
    /// List the protocols, one line each.
    Protocols,
    /// Check a history for linearizability (exit 0 linearizable, 1 not, 2 bad input, 3 unknown).
    Check {
        /// history.jsonl (DESIGN.md format) or a Jepsen/Knossos EDN history.
        history: PathBuf,
        /// Input format; guessed from the content when omitted.
        #[arg(long, value_parser = ["jsonl", "edn"])]
        format: Option<String>,
        /// Write check.json (and violation.html when there is one) here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Give up after this many seconds; undecided keys are "unknown".
        #[arg(long)]
        timeout: Option<f64>,
    },
}

#[derive(Subcommand, Debug)]
enum SpecCmd {
    /// The built-in default experiment.
    Default,
}

/// Errors with the exit code they map to: 2 for bad input, 1 for everything else.
#[derive(Debug)]
pub enum CliError {
    BadInput(String),
    Failed(String),
}

impl CliError {
    fn report(&self) -> ExitCode {
        match self {
            CliError::BadInput(m) => {
                eprintln!("error: {m}");
                ExitCode::from(2)
            }
            CliError::Failed(m) => {
                eprintln!("error: {m}");
                ExitCode::from(1)
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run(args) => run::run_command(&args),
        Cmd::Compare(args) => compare::compare_command(&args),
        Cmd::Sweep(args) => sweep::sweep_command(&args),
        Cmd::Merge(args) => sweep::merge_command(&args),
        Cmd::Node(args) => real::node_command(&args),
        Cmd::Load(args) => real::load_command(&args),
        Cmd::Real(args) => real::real_command(&args),
        Cmd::Reproduce(args) => reproduce::reproduce_command(&args),
        Cmd::Model(args) => model::model_command(&args),
        Cmd::Spec {
            which: SpecCmd::Default,
        } => {
            print!("{}", quorumlab_workloads::DEFAULT_SPEC);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Protocols => {
            for (name, about) in quorumlab_workloads::protocols() {
                println!("{name:<10} {about}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Check {
            history,
            format,
            out,
            timeout,
        } => run::check_command(&history, format.as_deref(), out.as_deref(), timeout),
    };
    match result {
        Ok(code) => code,
        Err(e) => e.report(),
    }
}
