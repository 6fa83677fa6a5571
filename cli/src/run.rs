//! `quorumlab run` and `quorumlab check`.

use crate::progress::Progress;
use crate::CliError;
use quorumlab_reports::summary::{history_bytes, summarize};
use quorumlab_reports::Summary;
use quorumlab_workloads::{run_named, RunOptions, RunOutput, Spec};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The experiment spec (TOML). Without it: the built-in default experiment.
    pub spec: Option<PathBuf>,
    /// The protocol to run (see `quorumlab protocols`).
    #[arg(long, short, default_value = "raft")]
    pub protocol: String,
    /// The master seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The run directory (default: runs/PROTOCOL-seedN).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override any spec value: --set workload.clients=10 --set network.loss=0.01
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub sets: Vec<String>,
    /// Reduced scale: apply the spec's own `quick` overrides (shorter durations; every check
    /// and expectation still runs).
    #[arg(long)]
    pub quick: bool,
}

/// Reads the spec named on the command line (or the default), with overrides.
pub fn load_spec(path: Option<&Path>, sets: &[String]) -> Result<Spec, CliError> {
    load_spec_quick(path, sets, false)
}

/// Reads a spec; with `quick`, the spec's own `quick` overrides come first and the command
/// line's `--set`s after them (so they win).
pub fn load_spec_quick(
    path: Option<&Path>,
    sets: &[String],
    quick: bool,
) -> Result<Spec, CliError> {
    let (text, name) = match path {
        None => (
            quorumlab_workloads::DEFAULT_SPEC.to_string(),
            "<default spec>".to_string(),
        ),
        Some(p) => (
            fs::read_to_string(p)
                .map_err(|e| CliError::BadInput(format!("{}: {e}", p.display())))?,
            p.display().to_string(),
        ),
    };
    let bad = |e: quorumlab_workloads::SpecError| CliError::BadInput(e.to_string());
    let spec = Spec::parse(&text, &name, sets).map_err(bad)?;
    if !quick || spec.quick.is_empty() {
        return Ok(spec);
    }
    let all: Vec<String> = spec.quick.iter().chain(sets).cloned().collect();
    Spec::parse(&text, &name, &all).map_err(bad)
}

/// Evaluates the spec's expectations for one protocol's summary; prints each verdict.
/// Returns whether all held.
pub fn check_expectations(spec: &Spec, summary: &Summary) -> bool {
    let value = serde_json::to_value(summary).expect("summary serializes");
    let outcomes = quorumlab_workloads::evaluate(&spec.expect, &summary.protocol, &value);
    for o in &outcomes {
        println!("  expect {o}");
    }
    outcomes.iter().all(|o| o.holds)
}

/// Runs one protocol on a spec with a progress bar; returns the output and the wall time.
pub fn execute(spec: &Spec, protocol: &str, seed: u64) -> Result<(RunOutput, f64), CliError> {
    let mut bar = Progress::new(1000, protocol);
    let mut tick = |f: f64| bar.set((f * 1000.0) as u64);
    let started = Instant::now();
    let out = run_named(
        protocol,
        spec,
        seed,
        RunOptions {
            progress: Some(&mut tick),
            message_window: None,
        },
    )
    .map_err(CliError::BadInput)?;
    let wall = started.elapsed().as_secs_f64();
    bar.finish();
    Ok((out, wall))
}

fn io_err(path: &Path, e: std::io::Error) -> CliError {
    CliError::Failed(format!("{}: {e}", path.display()))
}

/// How long the linearizability check of a run may take before undecided keys are "unknown".
const CHECK_TIMEOUT_S: u64 = 120;

/// Writes a run directory: spec.toml, history.jsonl, summary.json (with the linearizability
/// verdict), check.json (+ violation.html), report.html and CSVs. Returns the summary.
pub fn write_run_dir(
    dir: &Path,
    spec: &Spec,
    out: &RunOutput,
    wall: f64,
) -> Result<Summary, CliError> {
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let spec_path = dir.join("spec.toml");
    fs::write(&spec_path, spec.to_toml()).map_err(|e| io_err(&spec_path, e))?;
    let bytes = history_bytes(out);
    let hist_path = dir.join("history.jsonl");
    fs::write(&hist_path, &bytes).map_err(|e| io_err(&hist_path, e))?;
    let mut summary = summarize(out, &bytes, wall);
    // The linearizability verdict of every run (check.json, and violation.html when violated).
    let check = quorumlab_checker::check_events(
        &out.history,
        &quorumlab_checker::CheckOptions::with_timeout(Some(std::time::Duration::from_secs(
            CHECK_TIMEOUT_S,
        ))),
    );
    summary.linearizable = check.to_summary_value();
    quorumlab_checker::write_artifacts(&check, dir).map_err(|e| io_err(dir, e))?;
    let sum_path = dir.join("summary.json");
    let json = serde_json::to_string_pretty(&summary).expect("summary serializes");
    fs::write(&sum_path, json + "\n").map_err(|e| io_err(&sum_path, e))?;
    // report.html and the CSV files; keep this last so that the report sees the final summary.
    quorumlab_reports::write_run_files(dir, spec, out, &summary).map_err(|e| io_err(dir, e))?;
    Ok(summary)
}

fn print_summary(dir: &Path, s: &Summary) {
    let all = &s.latency_us["all"];
    println!(
        "{}: seed {}, {:.1} s simulated in {:.2} s wall",
        s.protocol, s.seed, s.sim_seconds, s.wall_seconds
    );
    println!(
        "  ops: {} invoked, {} ok, {} fail, {} info; {:.1} ok/s; ok fraction {:.3}; longest gap {:.0} ms",
        s.ops.invoked,
        s.ops.ok,
        s.ops.fail,
        s.ops.info,
        s.throughput_ok_per_s,
        s.availability.ok_fraction,
        s.availability.longest_gap_ms
    );
    println!(
        "  latency (ok, us): p50 {} p99 {} p999 {} max {}; messages per ok op {:.2}",
        all.p50, all.p99, all.p999, all.max, s.messages.per_ok_op
    );
    println!("  linearizable: {}", s.linearizable);
    println!("  wrote {}", dir.display());
}

pub fn run_command(args: &RunArgs) -> Result<ExitCode, CliError> {
    let spec = load_spec_quick(args.spec.as_deref(), &args.sets, args.quick)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{}-seed{}", args.protocol, args.seed)));
    let (out, wall) = execute(&spec, &args.protocol, args.seed)?;
    let summary = write_run_dir(&dir, &spec, &out, wall)?;
    print_summary(&dir, &summary);
    if check_expectations(&spec, &summary) {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: an expectation of the experiment failed (see above)");
        Ok(ExitCode::from(1))
    }
}

pub fn check_command(
    history: &Path,
    format: Option<&str>,
    out: Option<&Path>,
    timeout: Option<f64>,
) -> Result<ExitCode, CliError> {
    let format = match format {
        None => None,
        Some("jsonl") => Some(quorumlab_checker::Format::Jsonl),
        Some("edn") => Some(quorumlab_checker::Format::Edn),
        Some(other) => return Err(CliError::BadInput(format!("unknown --format {other:?}"))),
    };
    let timeout = match timeout {
        Some(t) if !(t.is_finite() && t > 0.0) => {
            return Err(CliError::BadInput(format!(
                "--timeout must be > 0 seconds, got {t}"
            )))
        }
        t => t.map(std::time::Duration::from_secs_f64),
    };
    let code = quorumlab_checker::run_check_cli(history, format, out, timeout);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
