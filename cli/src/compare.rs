//! `quorumlab compare`: the same workload and fault schedule under several protocols.

use crate::progress::Progress;
use crate::run::{load_spec_quick, write_run_dir};
use crate::CliError;
use quorumlab_reports::compare::{write_compare, CompareRun};
use quorumlab_reports::RunMetrics;
use quorumlab_workloads::{protocols, run_named, RunOptions};
use rayon::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// The experiment spec (TOML). Without it: the built-in default experiment.
    pub spec: Option<PathBuf>,
    /// Comma-separated protocols (default: every protocol in `quorumlab protocols`).
    #[arg(long, value_name = "P1,P2,...")]
    pub protocols: Option<String>,
    /// The master seed (the same for every protocol).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The output directory (default: compare/SPECNAME-seedN).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override any spec value: --set workload.clients=10
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub sets: Vec<String>,
    /// Runs at a time.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Reduced scale: apply the spec's own `quick` overrides (every expectation still runs).
    #[arg(long)]
    pub quick: bool,
    /// `sim,real`: run each protocol in the simulator and as real processes, and overlay the
    /// two (see docs/real-mode.md). Default: the simulator only.
    #[arg(long, value_name = "sim,real")]
    pub engines: Option<String>,
    /// Real engine: node processes (cluster.nodes is set to this for both engines).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Real engine: nodes in network namespaces with the spec's link model as `tc netem`
    /// (needs root). Without it the real links are loopback and the simulator's latency is set to
    /// `--loopback-ms`.
    #[arg(long)]
    pub netns: bool,
    /// One-way latency (ms) the simulator uses for loopback links (without `--netns`).
    #[arg(long, default_value_t = 0.05)]
    pub loopback_ms: f64,
    /// Real engine: do not fsync saves.
    #[arg(long)]
    pub no_fsync: bool,
}

/// A progress bar shared by parallel runs: each run reports its fraction done, the bar shows
/// the sum.
pub struct SharedProgress {
    bar: Mutex<Progress>,
    units: AtomicU64,
}

/// Progress units per run.
pub const UNITS: u64 = 1000;

impl SharedProgress {
    pub fn new(runs: usize, what: &str) -> Self {
        SharedProgress {
            bar: Mutex::new(Progress::new(runs as u64 * UNITS, what)),
            units: AtomicU64::new(0),
        }
    }

    pub fn add(&self, units: u64) {
        let now = self.units.fetch_add(units, Ordering::Relaxed) + units;
        if let Ok(mut b) = self.bar.lock() {
            b.set(now);
        }
    }

    /// A per-run tracker: call with the run's fraction done; `finish` adds what is left.
    pub fn tracker(&self) -> RunTracker<'_> {
        RunTracker {
            shared: self,
            done: 0,
        }
    }

    pub fn finish(&self) {
        if let Ok(b) = self.bar.lock() {
            b.finish();
        }
    }
}

pub struct RunTracker<'a> {
    shared: &'a SharedProgress,
    done: u64,
}

impl RunTracker<'_> {
    pub fn set(&mut self, fraction: f64) {
        let u = ((fraction.clamp(0.0, 1.0)) * UNITS as f64) as u64;
        if u > self.done {
            self.shared.add(u - self.done);
            self.done = u;
        }
    }

    pub fn finish(&mut self) {
        self.set(1.0);
    }
}

/// Parses a comma-separated protocol list against the registry (exit 2 on unknown names).
pub fn parse_protocols(list: Option<&str>) -> Result<Vec<String>, CliError> {
    let known: Vec<&str> = protocols().iter().map(|p| p.0).collect();
    let Some(list) = list else {
        return Ok(known.iter().map(|s| s.to_string()).collect());
    };
    let mut out: Vec<String> = Vec::new();
    for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if !known.contains(&p) {
            return Err(CliError::BadInput(format!(
                "unknown protocol {p:?}; known: {}",
                known.join(", ")
            )));
        }
        if out.iter().any(|x| x == p) {
            return Err(CliError::BadInput(format!(
                "protocol {p:?} is listed twice"
            )));
        }
        out.push(p.to_string());
    }
    if out.is_empty() {
        return Err(CliError::BadInput("--protocols names no protocol".into()));
    }
    Ok(out)
}

/// A rayon pool with `jobs` threads.
pub fn pool(jobs: usize) -> Result<rayon::ThreadPool, CliError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start worker threads: {e}")))
}

pub fn compare_command(args: &CompareArgs) -> Result<ExitCode, CliError> {
    if let Some(e) = args.engines.as_deref() {
        match e.replace(' ', "").as_str() {
            "sim,real" | "real,sim" => return crate::real::compare_engines(args),
            "sim" => {}
            other => {
                return Err(CliError::BadInput(format!(
                    "--engines {other:?}: use sim,real (or sim)"
                )))
            }
        }
    }
    let protos = parse_protocols(args.protocols.as_deref())?;
    let spec = load_spec_quick(args.spec.as_deref(), &args.sets, args.quick)?;
    let name = spec.display_name().to_string();
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("compare/{name}-seed{}", args.seed)));
    let progress = SharedProgress::new(protos.len(), "compare");
    let results: Vec<Result<CompareRun, CliError>> = pool(args.jobs)?.install(|| {
        protos
            .par_iter()
            .map(|p| {
                let mut tracker = progress.tracker();
                let mut tick = |f: f64| tracker.set(f);
                let started = Instant::now();
                let out = run_named(
                    p,
                    &spec,
                    args.seed,
                    RunOptions {
                        progress: Some(&mut tick),
                        message_window: None,
                    },
                )
                .map_err(|e| CliError::BadInput(format!("{p}: {e}")));
                let wall = started.elapsed().as_secs_f64();
                tracker.finish();
                let out = out?;
                let summary = write_run_dir(&dir.join(p), &spec, &out, wall)?;
                Ok(CompareRun {
                    protocol: p.clone(),
                    dir: p.clone(),
                    summary,
                    metrics: RunMetrics::compute(&out),
                })
            })
            .collect()
    });
    progress.finish();
    let runs: Vec<CompareRun> = results.into_iter().collect::<Result<_, _>>()?;
    write_compare(&dir, &spec, args.seed, &runs)
        .map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
    println!(
        "{:<10} {:>10} {:>9} {:>9} {:>9} {:>8} {:>10} {:>8}  linearizable",
        "protocol", "ok ops/s", "p50 ms", "p99 ms", "p999 ms", "ok frac", "gap ms", "msgs/op"
    );
    for r in &runs {
        let s = &r.summary;
        let all = s.latency_us.get("all").cloned().unwrap_or_default();
        println!(
            "{:<10} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>8.3} {:>10.0} {:>8.2}  {}",
            r.protocol,
            s.throughput_ok_per_s,
            all.p50 as f64 / 1e3,
            all.p99 as f64 / 1e3,
            all.p999 as f64 / 1e3,
            s.availability.ok_fraction,
            s.availability.longest_gap_ms,
            s.messages.per_ok_op,
            s.linearizable
        );
    }
    println!("wrote {}", dir.join("report.html").display());
    // The experiment's expectations, per protocol: print each verdict, exit 1 if one fails.
    let mut all_hold = true;
    for r in &runs {
        all_hold &= crate::run::check_expectations(&spec, &r.summary);
    }
    if !all_hold {
        eprintln!("error: an expectation of the experiment failed (see above)");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
