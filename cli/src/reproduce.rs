//! `quorumlab reproduce NAME [--quick] --out DIR`: a reproduction of a published claim
//! (see docs/reproductions/ and the `quorumlab-repro` crate).

use crate::CliError;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct ReproduceArgs {
    /// Which reproduction: rtt, quorum-table, many-ensembles, failover, lease-drift (or
    /// `list`).
    pub name: String,
    /// Reduced scale: fewer trials and a smaller grid (checks that it runs; the figures are
    /// not meant to be read).
    #[arg(long)]
    pub quick: bool,
    /// The output directory (default: reproductions/NAME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Simulations at a time.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
}

pub fn reproduce_command(args: &ReproduceArgs) -> Result<ExitCode, CliError> {
    if args.name == "list" {
        for (n, about) in quorumlab_repro::NAMES {
            println!("{n:<16} {about}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !quorumlab_repro::NAMES.iter().any(|(n, _)| *n == args.name) {
        return Err(CliError::BadInput(format!(
            "unknown reproduction {:?}; known: {}",
            args.name,
            quorumlab_repro::NAMES
                .iter()
                .map(|n| n.0)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("reproductions/{}", args.name)));
    let command = format!(
        "quorumlab reproduce {}{} --out {}",
        args.name,
        if args.quick { " --quick" } else { "" },
        out.display()
    );
    let opts = quorumlab_repro::Options {
        quick: args.quick,
        out: out.clone(),
        jobs: args.jobs,
        command,
    };
    let started = Instant::now();
    let produced = quorumlab_repro::reproduce(&args.name, &opts).map_err(|e| match e {
        quorumlab_repro::Error::Unknown(..) => CliError::BadInput(e.to_string()),
        e => CliError::Failed(e.to_string()),
    })?;
    for line in &produced.headline {
        println!("  {line}");
    }
    println!(
        "{}: {} files in {} ({:.0} s wall); the table: {}",
        args.name,
        produced.files.len(),
        out.display(),
        started.elapsed().as_secs_f64(),
        produced.markdown.display()
    );
    Ok(ExitCode::SUCCESS)
}
