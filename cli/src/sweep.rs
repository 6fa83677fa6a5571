//! `quorumlab sweep` (a grid of runs in parallel, aggregated over seeds) and `quorumlab merge`
//! (combines the slices of a sharded sweep).

use crate::compare::{parse_protocols, pool, SharedProgress};
use crate::run::{load_spec, write_run_dir};
use crate::CliError;
use quorumlab_reports::sweep::{
    self, in_shard, merge_shards, read_shards, run_dir, sweep_json, write_shard, write_sweep, Axis,
    PointResult, ShardFile, SweepDef,
};
use quorumlab_workloads::{run_named, RunOptions, Spec};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct SweepArgs {
    /// The experiment spec (TOML). Without it: the built-in default experiment.
    pub spec: Option<PathBuf>,
    /// A swept parameter and its values: --set workload.clients=1,5,10. Values are TOML
    /// literals (commas inside [..], {..} or quotes do not split). With one value, an override
    /// applied to every run. Repeat for a grid.
    #[arg(long = "set", value_name = "PATH=V1,V2,...")]
    pub sets: Vec<String>,
    /// Comma-separated protocols (default: every protocol in `quorumlab protocols`).
    #[arg(long, value_name = "P1,P2,...")]
    pub protocols: Option<String>,
    /// Seeds: `1..20` is 1 through 20 inclusive; also `7` or `1,2,5`.
    #[arg(long, default_value = "1..10")]
    pub seeds: String,
    /// The sweep directory (default: sweeps/SPECNAME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Runs at a time (rayon threads).
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Run only slice I of N (1-based: 1/4 … 4/4) of the grid, e.g. one per machine or batch
    /// job; then combine the slices with `quorumlab merge DIR...`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// The metric plotted first (see summary.csv columns), e.g. latency_p99_us.
    #[arg(long, default_value = "throughput_ok_per_s")]
    pub metric: String,
    /// The parameter on the x axis (default: the first swept one).
    #[arg(long, value_name = "PATH")]
    pub x: Option<String>,
    /// Keep every run's history.jsonl, report.html, ops.csv and msglog.csv (by default a
    /// sweep keeps only the small files of each run: spec, summary, CSVs, violation page).
    #[arg(long)]
    pub keep_runs: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct MergeArgs {
    /// Sweep directories (or shard-I-of-N.json files) holding the slices.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to write the merged sweep.json and report (default: the first directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The metric plotted first (default: the sweep's own `--metric`).
    #[arg(long)]
    pub metric: Option<String>,
    /// The parameter on the x axis (default: the sweep's own `--x`, else the first swept one).
    #[arg(long, value_name = "PATH")]
    pub x: Option<String>,
}

/// Splits `v1,v2,...` at top-level commas (not inside brackets, braces or quotes).
pub fn split_values(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut cur = String::new();
    for c in s.chars() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                cur.push(c);
            }
            None => match c {
                '"' | '\'' => {
                    quote = Some(c);
                    cur.push(c);
                }
                '[' | '{' => {
                    depth += 1;
                    cur.push(c);
                }
                ']' | '}' => {
                    depth -= 1;
                    cur.push(c);
                }
                ',' if depth == 0 => out.push(std::mem::take(&mut cur).trim().to_string()),
                c => cur.push(c),
            },
        }
    }
    out.push(cur.trim().to_string());
    out
}

/// Parses `1..20` (inclusive), `1..=20`, `7` or `1,2,5`.
pub fn parse_seeds(s: &str) -> Result<Vec<u64>, CliError> {
    let bad = || {
        CliError::BadInput(format!(
            "--seeds {s:?}: expected A..B (inclusive), a number, or a comma-separated list"
        ))
    };
    let s = s.trim();
    if let Some((a, b)) = s.split_once("..") {
        let b = b.strip_prefix('=').unwrap_or(b);
        let (a, b): (u64, u64) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if b < a {
            return Err(bad());
        }
        if b - a >= 100_000 {
            return Err(CliError::BadInput(format!("--seeds {s}: too many seeds")));
        }
        return Ok((a..=b).collect());
    }
    let mut v: Vec<u64> = Vec::new();
    for x in s.split(',') {
        let x: u64 = x.trim().parse().map_err(|_| bad())?;
        if !v.contains(&x) {
            v.push(x);
        }
    }
    if v.is_empty() {
        return Err(bad());
    }
    Ok(v)
}

/// Parses `I/N` (1 ≤ I ≤ N).
pub fn parse_shard(s: &str) -> Result<(usize, usize), CliError> {
    let bad = || {
        CliError::BadInput(format!(
            "--shard {s:?}: expected I/N with 1 <= I <= N (slices are numbered from 1)"
        ))
    };
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

fn check_metric(m: &str) -> Result<(), CliError> {
    if sweep::metric_names().contains(&m) {
        Ok(())
    } else {
        Err(CliError::BadInput(format!(
            "unknown metric {m:?}; known: {}",
            sweep::metric_names().join(", ")
        )))
    }
}

fn check_x(x: Option<&str>, axes: &[Axis]) -> Result<(), CliError> {
    match x {
        Some(x) if !axes.iter().any(|a| a.path == x) => Err(CliError::BadInput(format!(
            "--x {x}: not a swept parameter (swept: {})",
            if axes.is_empty() {
                "none".to_string()
            } else {
                axes.iter()
                    .map(|a| a.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ))),
        _ => Ok(()),
    }
}

/// Removes the bulky files of a run directory.
fn prune(dir: &Path) {
    for f in ["history.jsonl", "report.html", "ops.csv", "msglog.csv"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
}

pub fn sweep_command(args: &SweepArgs) -> Result<ExitCode, CliError> {
    let protos = parse_protocols(args.protocols.as_deref())?;
    let seeds = parse_seeds(&args.seeds)?;
    check_metric(&args.metric)?;
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    let (si, sn) = shard.unwrap_or((1, 1));
    let mut fixed = Vec::new();
    let mut axes: Vec<Axis> = Vec::new();
    for s in &args.sets {
        let (path, values) = s.split_once('=').ok_or_else(|| {
            CliError::BadInput(format!("--set {s:?}: expected path.to.key=v1,v2,..."))
        })?;
        let path = path.trim().to_string();
        let values = split_values(values);
        if values.iter().any(|v| v.is_empty()) {
            return Err(CliError::BadInput(format!("--set {s:?}: an empty value")));
        }
        if axes.iter().any(|a| a.path == path) {
            return Err(CliError::BadInput(format!("--set {path}: given twice")));
        }
        if values.len() == 1 {
            fixed.push(format!("{path}={}", values[0]));
        } else {
            axes.push(Axis { path, values });
        }
    }
    check_x(args.x.as_deref(), &axes)?;
    let base = load_spec(args.spec.as_deref(), &fixed)?;
    let def = SweepDef {
        spec_name: base.name.clone(),
        spec_sha256: sweep::spec_sha256(&base.to_toml()),
        fixed: fixed.clone(),
        axes,
        protocols: protos,
        seeds,
    };
    // Resolve (and so check) the spec of every combination before running anything.
    let specs: Vec<Spec> = def
        .combos()
        .iter()
        .map(|c| {
            let mut sets = fixed.clone();
            sets.extend(c.iter().map(|(p, v)| format!("{p}={v}")));
            load_spec(args.spec.as_deref(), &sets).map_err(|e| match e {
                CliError::BadInput(m) => CliError::BadInput(format!(
                    "{m} (with {})",
                    c.iter()
                        .map(|(p, v)| format!("{p}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                other => other,
            })
        })
        .collect::<Result<_, _>>()?;
    let name = if def.spec_name.is_empty() {
        "experiment".to_string()
    } else {
        def.spec_name.clone()
    };
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("sweeps/{name}")));
    let points: Vec<_> = def
        .points()
        .into_iter()
        .filter(|p| in_shard(p.index, si, sn))
        .collect();
    eprintln!(
        "sweep: {} runs{} ({} combinations × {} protocols × {} seeds), {} at a time",
        points.len(),
        if sn > 1 {
            format!(" in slice {si}/{sn} of {}", def.points().len())
        } else {
            String::new()
        },
        def.combos().len(),
        def.protocols.len(),
        def.seeds.len(),
        args.jobs.max(1)
    );
    let progress = SharedProgress::new(points.len(), "sweep");
    let results: Vec<PointResult> = pool(args.jobs)?.install(|| {
        points
            .par_iter()
            .map(|p| {
                let rel = run_dir(p);
                let mut tracker = progress.tracker();
                let mut tick = |f: f64| tracker.set(f);
                let started = Instant::now();
                let out = run_named(
                    &p.protocol,
                    &specs[p.combo],
                    p.seed,
                    RunOptions {
                        progress: Some(&mut tick),
                        message_window: None,
                    },
                );
                let wall = started.elapsed().as_secs_f64();
                tracker.finish();
                match out {
                    Err(e) => PointResult::failed(p, rel, e),
                    Ok(out) => {
                        let path = dir.join(&rel);
                        match write_run_dir(&path, &specs[p.combo], &out, wall) {
                            Ok(s) => {
                                if !args.keep_runs {
                                    prune(&path);
                                }
                                PointResult::from_summary(p, rel, &s)
                            }
                            Err(CliError::BadInput(m) | CliError::Failed(m)) => {
                                PointResult::failed(p, rel, m)
                            }
                        }
                    }
                }
            })
            .collect()
    });
    progress.finish();
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    let shard_file = ShardFile {
        quorumlab_sweep_shard: sweep::FORMAT,
        sweep_id: def.id(),
        definition: def.clone(),
        shard_index: si,
        shard_count: sn,
        x_axis: args.x.clone(),
        metric: Some(args.metric.clone()),
        results: results.clone(),
    };
    let path = write_shard(&dir, &shard_file)
        .map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
    if sn > 1 {
        println!(
            "wrote slice {si}/{sn}: {} ({} runs{}); when every slice is done: quorumlab merge {}",
            path.display(),
            results.len(),
            if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            },
            dir.display()
        );
    } else {
        let sj = sweep_json(&def, results, &args.metric, args.x.as_deref());
        write_sweep(&dir, &sj).map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
        print_aggregates(&sj);
        println!("wrote {}", dir.join("report.html").display());
    }
    if failed > 0 {
        return Err(CliError::Failed(format!(
            "{failed} run(s) failed; see {} (field \"error\")",
            path.display()
        )));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_aggregates(sj: &sweep::SweepJson) {
    let (label, unit, scale) = sweep::metric_info(&sj.metric);
    println!("{} ({unit}): mean ± 95% CI over seeds", label);
    for a in &sj.aggregates {
        let params: Vec<String> = sj
            .definition
            .axes
            .iter()
            .map(|ax| {
                format!(
                    "{}={}",
                    ax.path,
                    a.params.get(&ax.path).cloned().unwrap_or_default()
                )
            })
            .collect();
        let v = a
            .metrics
            .get(&sj.metric)
            .map(|g| format!("{:.3} ± {:.3} (n={})", g.mean * scale, g.ci95 * scale, g.n))
            .unwrap_or_else(|| "–".into());
        println!("  {:<40} {:<10} {v}", params.join(" "), a.protocol);
    }
}

pub fn merge_command(args: &MergeArgs) -> Result<ExitCode, CliError> {
    let out = args.out.clone().unwrap_or_else(|| {
        let d = &args.dirs[0];
        if d.is_file() {
            d.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            d.clone()
        }
    });
    let mut shards = Vec::new();
    for d in &args.dirs {
        shards.extend(read_shards(d).map_err(|e| CliError::BadInput(e.to_string()))?);
    }
    let (def, results, notes) =
        merge_shards(&shards, &out).map_err(|e| CliError::BadInput(e.to_string()))?;
    let first = &shards[0].1;
    let metric = args
        .metric
        .clone()
        .or_else(|| first.metric.clone())
        .unwrap_or_else(|| "throughput_ok_per_s".to_string());
    check_metric(&metric)?;
    let x = args.x.clone().or_else(|| first.x_axis.clone());
    check_x(x.as_deref(), &def.axes)?;
    for n in &notes {
        eprintln!("note: {n}");
    }
    let sj = sweep_json(&def, results, &metric, x.as_deref());
    write_sweep(&out, &sj).map_err(|e| CliError::Failed(format!("{}: {e}", out.display())))?;
    print_aggregates(&sj);
    println!(
        "merged {} shard file(s): {} of {} runs{}; wrote {}",
        shards.len(),
        sj.points_done,
        sj.points_total,
        if sj.missing.is_empty() {
            String::new()
        } else {
            format!(" ({} missing)", sj.missing.len())
        },
        out.join("report.html").display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_at_top_level_only() {
        assert_eq!(split_values("1,5,10"), vec!["1", "5", "10"]);
        assert_eq!(
            split_values("[1,2],{ kind = \"a,b\" },\"x,y\""),
            vec!["[1,2]", "{ kind = \"a,b\" }", "\"x,y\""]
        );
    }

    #[test]
    fn seeds_and_shards() {
        assert_eq!(parse_seeds("1..20").unwrap().len(), 20);
        assert_eq!(parse_seeds("3..=5").unwrap(), vec![3, 4, 5]);
        assert_eq!(parse_seeds("7").unwrap(), vec![7]);
        assert_eq!(parse_seeds("1,2,2,5").unwrap(), vec![1, 2, 5]);
        assert!(parse_seeds("5..1").is_err());
        assert!(parse_seeds("x").is_err());
        assert_eq!(parse_shard("2/4").unwrap(), (2, 4));
        assert!(parse_shard("0/4").is_err());
        assert!(parse_shard("5/4").is_err());
    }
}
