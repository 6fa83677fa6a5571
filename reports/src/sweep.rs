//! Sweeps: a grid of runs (parameter values × protocols × seeds), aggregated over seeds with
//! the mean and a 95% confidence interval; shards and their merge.
//!
//! A sweep directory holds `runs/…` (one run directory per grid point), one
//! `shard-I-of-N.json` per slice that ran there, and, once every slice is in (or after
//! `quorumlab merge`), `sweep.json`, `sweep.csv`, `aggregate.csv` and `report.html`.

use crate::csv::{self, Csv};
use crate::html::{self, esc, figure, table};
use crate::plots::{self, SweepLine};
use crate::stats::{aggregate, Aggregate};
use crate::style;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// Version of the shard and sweep file formats.
pub const FORMAT: u32 = 1;

/// A swept parameter: a dotted spec path and its values (TOML literals, as given).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Axis {
    pub path: String,
    pub values: Vec<String>,
}

/// What a sweep runs. Two shards belong to the same sweep when their definitions are equal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepDef {
    pub spec_name: String,
    /// SHA-256 of the resolved base spec (TOML, fixed overrides applied).
    pub spec_sha256: String,
    /// `--set` overrides with a single value (applied to every run).
    pub fixed: Vec<String>,
    pub axes: Vec<Axis>,
    pub protocols: Vec<String>,
    pub seeds: Vec<u64>,
}

/// One run of the grid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridPoint {
    pub index: usize,
    /// Index of the combination of axis values.
    pub combo: usize,
    /// (path, value) per axis, in axis order.
    pub params: Vec<(String, String)>,
    pub protocol: String,
    pub seed: u64,
}

impl SweepDef {
    /// A short identifier of the definition (hex of a SHA-256 prefix).
    pub fn id(&self) -> String {
        let j = serde_json::to_string(self).expect("definition serializes");
        format!("{:x}", Sha256::digest(j.as_bytes()))[..16].to_string()
    }

    /// Every combination of axis values, the first axis varying slowest.
    pub fn combos(&self) -> Vec<Vec<(String, String)>> {
        let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
        for a in &self.axes {
            let mut next = Vec::with_capacity(out.len() * a.values.len());
            for c in &out {
                for v in &a.values {
                    let mut c = c.clone();
                    c.push((a.path.clone(), v.clone()));
                    next.push(c);
                }
            }
            out = next;
        }
        out
    }

    /// Every grid point: combinations × protocols × seeds, in that nesting order.
    pub fn points(&self) -> Vec<GridPoint> {
        let mut out = Vec::new();
        for (ci, c) in self.combos().into_iter().enumerate() {
            for p in &self.protocols {
                for &seed in &self.seeds {
                    out.push(GridPoint {
                        index: out.len(),
                        combo: ci,
                        params: c.clone(),
                        protocol: p.clone(),
                        seed,
                    });
                }
            }
        }
        out
    }
}

/// SHA-256 (hex) of a resolved spec's TOML, for [`SweepDef::spec_sha256`].
pub fn spec_sha256(spec_toml: &str) -> String {
    format!("{:x}", Sha256::digest(spec_toml.as_bytes()))
}

/// Whether point `index` belongs to shard `i` (1-based) of `n`.
pub fn in_shard(index: usize, i: usize, n: usize) -> bool {
    n <= 1 || index % n == i - 1
}

/// A file-system-friendly name for a combination of parameter values.
pub fn combo_slug(combo: usize, params: &[(String, String)]) -> String {
    let mut s = String::new();
    for (k, (p, v)) in params.iter().enumerate() {
        if k > 0 {
            s.push(',');
        }
        let leaf = p.rsplit('.').next().unwrap_or(p);
        s.push_str(leaf);
        s.push('=');
        s.push_str(v);
    }
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._=,-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if clean.is_empty() {
        format!("p{combo:03}")
    } else {
        format!("p{combo:03}_{clean}")
    }
}

/// The run directory of a point, relative to the sweep directory.
pub fn run_dir(p: &GridPoint) -> String {
    format!(
        "runs/{}/{}-seed{}",
        combo_slug(p.combo, &p.params),
        p.protocol,
        p.seed
    )
}

/// The figures of one finished run of the grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointResult {
    pub index: usize,
    pub params: BTreeMap<String, String>,
    pub protocol: String,
    pub seed: u64,
    /// Relative to the directory of the file that holds this result.
    pub run_dir: String,
    /// Headline figures by name (see `run_report::headline`); null when undefined.
    pub metrics: BTreeMap<String, Option<f64>>,
    pub linearizable: serde_json::Value,
    /// Wall-clock seconds the run took (the one non-deterministic field).
    pub wall_seconds: f64,
    /// Why the run failed, if it did.
    pub error: Option<String>,
}

impl PointResult {
    /// The result of a run from its summary.
    pub fn from_summary(p: &GridPoint, run_dir: String, s: &crate::Summary) -> Self {
        PointResult {
            index: p.index,
            params: p.params.iter().cloned().collect(),
            protocol: p.protocol.clone(),
            seed: p.seed,
            run_dir,
            metrics: crate::run_report::headline(s)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            linearizable: s.linearizable.clone(),
            wall_seconds: s.wall_seconds,
            error: None,
        }
    }

    /// A run that failed.
    pub fn failed(p: &GridPoint, run_dir: String, error: String) -> Self {
        PointResult {
            index: p.index,
            params: p.params.iter().cloned().collect(),
            protocol: p.protocol.clone(),
            seed: p.seed,
            run_dir,
            metrics: BTreeMap::new(),
            linearizable: serde_json::Value::Null,
            wall_seconds: 0.0,
            error: Some(error),
        }
    }
}

/// `shard-I-of-N.json`: the results of one slice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardFile {
    pub quorumlab_sweep_shard: u32,
    pub sweep_id: String,
    pub definition: SweepDef,
    pub shard_index: usize,
    pub shard_count: usize,
    /// The sweep's `--x` and `--metric`, the defaults of `quorumlab merge`.
    #[serde(default)]
    pub x_axis: Option<String>,
    #[serde(default)]
    pub metric: Option<String>,
    pub results: Vec<PointResult>,
}

impl ShardFile {
    pub fn file_name(i: usize, n: usize) -> String {
        format!("shard-{i}-of-{n}.json")
    }
}

/// Seeds of one (parameter combination, protocol) aggregated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AggregateRow {
    pub combo: usize,
    pub params: BTreeMap<String, String>,
    pub protocol: String,
    pub runs: usize,
    pub failed: usize,
    /// Runs checked linearizable / checked.
    pub linearizable: String,
    pub metrics: BTreeMap<String, Aggregate>,
}

/// `sweep.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepJson {
    pub quorumlab_sweep: u32,
    pub sweep_id: String,
    pub definition: SweepDef,
    pub x_axis: Option<String>,
    pub metric: String,
    pub points_total: usize,
    pub points_done: usize,
    pub missing: Vec<usize>,
    pub aggregates: Vec<AggregateRow>,
    pub results: Vec<PointResult>,
}

/// Aggregates results over seeds, per (combination, protocol), in grid order.
pub fn aggregate_results(def: &SweepDef, results: &[PointResult]) -> Vec<AggregateRow> {
    let mut rows = Vec::new();
    for (ci, combo) in def.combos().into_iter().enumerate() {
        let params: BTreeMap<String, String> = combo.into_iter().collect();
        for p in &def.protocols {
            let mine: Vec<&PointResult> = results
                .iter()
                .filter(|r| &r.protocol == p && r.params == params)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let ok: Vec<&&PointResult> = mine.iter().filter(|r| r.error.is_none()).collect();
            let mut names: Vec<&String> = ok.iter().flat_map(|r| r.metrics.keys()).collect();
            names.sort();
            names.dedup();
            let metrics = names
                .into_iter()
                .filter_map(|n| {
                    let xs: Vec<f64> = ok
                        .iter()
                        .filter_map(|r| r.metrics.get(n).copied().flatten())
                        .collect();
                    aggregate(&xs).map(|a| (n.clone(), a))
                })
                .collect();
            let checked = ok
                .iter()
                .filter(|r| matches!(r.linearizable, serde_json::Value::Bool(_)))
                .count();
            let yes = ok
                .iter()
                .filter(|r| r.linearizable == serde_json::Value::Bool(true))
                .count();
            rows.push(AggregateRow {
                combo: ci,
                params: params.clone(),
                protocol: p.clone(),
                runs: ok.len(),
                failed: mine.len() - ok.len(),
                linearizable: if checked == 0 {
                    "not checked".into()
                } else {
                    format!("{yes}/{checked}")
                },
                metrics,
            });
        }
    }
    rows
}

/// A metric's label, unit and the factor from its stored unit to the displayed one.
pub fn metric_info(name: &str) -> (&'static str, &'static str, f64) {
    match name {
        "throughput_ok_per_s" => ("throughput", "ok ops/s", 1.0),
        "ok_fraction" => ("ok fraction", "answered / completed", 1.0),
        "longest_gap_ms" => ("longest gap without an answer", "ms", 1.0),
        "latency_p50_us" => ("p50 latency of ok ops", "ms", 1e-3),
        "latency_p90_us" => ("p90 latency of ok ops", "ms", 1e-3),
        "latency_p99_us" => ("p99 latency of ok ops", "ms", 1e-3),
        "latency_p999_us" => ("p99.9 latency of ok ops", "ms", 1e-3),
        "latency_max_us" => ("max latency of ok ops", "ms", 1e-3),
        "latency_mean_us" => ("mean latency of ok ops", "ms", 1e-3),
        "msgs_per_ok_op" => ("messages per ok op", "messages", 1.0),
        "bytes_per_ok_op" => ("bytes per ok op", "bytes", 1.0),
        "elections" => ("elections", "count", 1.0),
        "longest_leaderless_ms" => ("longest time without a leader", "ms", 1.0),
        "first_fault_to_first_ok_ms" => ("first fault → first ok op", "ms", 1.0),
        "first_fault_to_all_groups_ok_ms" => {
            ("first fault → ok in every affected group", "ms", 1.0)
        }
        "first_fault_heal_to_recovery_ms" => ("heal → full recovery", "ms", 1.0),
        "ops_invoked" => ("ops invoked", "ops", 1.0),
        "ops_ok" => ("ok ops", "ops", 1.0),
        "ops_fail" => ("failed ops", "ops", 1.0),
        "ops_info" => ("info (unknown) ops", "ops", 1.0),
        "linearizable" => ("linearizable runs", "fraction", 1.0),
        "worst_client_gap_ms" => ("worst client's longest gap", "ms", 1.0),
        "lost_adds" => ("acknowledged adds lost", "adds", 1.0),
        "acked_adds" => ("acknowledged adds", "adds", 1.0),
        "stale_set_reads" => ("stale set reads", "reads", 1.0),
        "set_convergence_ms" => ("set convergence after the final heal", "ms", 1.0),
        _ => ("", "", 1.0),
    }
}

/// Metric names a sweep can plot.
pub fn metric_names() -> Vec<&'static str> {
    [
        "throughput_ok_per_s",
        "ok_fraction",
        "longest_gap_ms",
        "latency_p50_us",
        "latency_p90_us",
        "latency_p99_us",
        "latency_p999_us",
        "latency_max_us",
        "latency_mean_us",
        "msgs_per_ok_op",
        "bytes_per_ok_op",
        "elections",
        "longest_leaderless_ms",
        "first_fault_to_first_ok_ms",
        "first_fault_to_all_groups_ok_ms",
        "first_fault_heal_to_recovery_ms",
        "ops_invoked",
        "ops_ok",
        "ops_fail",
        "ops_info",
        "linearizable",
        "worst_client_gap_ms",
        "lost_adds",
        "acked_adds",
        "stale_set_reads",
        "set_convergence_ms",
    ]
    .to_vec()
}

/// The figures a sweep report shows: the chosen metric first, then a standard set.
fn report_metrics(chosen: &str) -> Vec<String> {
    let mut v = vec![chosen.to_string()];
    for m in [
        "throughput_ok_per_s",
        "latency_p99_us",
        "ok_fraction",
        "longest_gap_ms",
        "msgs_per_ok_op",
        "first_fault_to_all_groups_ok_ms",
    ] {
        if !v.iter().any(|x| x == m) {
            v.push(m.to_string());
        }
    }
    v
}

fn as_numbers(values: &[String]) -> Option<Vec<f64>> {
    values
        .iter()
        .map(|v| v.trim().parse::<f64>().ok())
        .collect()
}

/// How to place numeric x values: a log axis when they are positive and span 50× or more; as
/// equally spaced categories when they are unevenly spaced (e.g. 0, 0.001, 0.01, 0.1), so that
/// no two crowd each other; otherwise a linear axis. Returns the values (`None`: categorical)
/// and whether the axis is logarithmic.
pub fn x_scale(values: Option<Vec<f64>>) -> (Option<Vec<f64>>, bool) {
    let Some(v) = values else {
        return (None, false);
    };
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if lo > 0.0 && hi / lo >= 50.0 {
        return (Some(v), true);
    }
    let mut sorted = v.clone();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    let gaps: Vec<f64> = sorted.windows(2).map(|w| w[1] - w[0]).collect();
    let (gmin, gmax) = (
        gaps.iter().copied().fold(f64::INFINITY, f64::min),
        gaps.iter().copied().fold(0.0, f64::max),
    );
    if gaps.len() >= 2 && gmax > 10.0 * gmin {
        (None, false)
    } else {
        (Some(v), false)
    }
}

/// Builds the full sweep record from a definition and the results at hand.
pub fn sweep_json(
    def: &SweepDef,
    mut results: Vec<PointResult>,
    metric: &str,
    x_axis: Option<&str>,
) -> SweepJson {
    results.sort_by_key(|r| r.index);
    results.dedup_by_key(|r| r.index);
    let total = def.points().len();
    let have: std::collections::BTreeSet<usize> = results.iter().map(|r| r.index).collect();
    SweepJson {
        quorumlab_sweep: FORMAT,
        sweep_id: def.id(),
        definition: def.clone(),
        x_axis: x_axis
            .map(str::to_string)
            .or_else(|| def.axes.first().map(|a| a.path.clone())),
        metric: metric.to_string(),
        points_total: total,
        points_done: results.len(),
        missing: (0..total).filter(|i| !have.contains(i)).collect(),
        aggregates: aggregate_results(def, &results),
        results,
    }
}

/// sweep.csv: one row per run.
pub fn results_csv(sj: &SweepJson) -> String {
    let axes: Vec<&str> = sj.definition.axes.iter().map(|a| a.path.as_str()).collect();
    let names = metric_names();
    let mut head: Vec<String> = vec!["point".into()];
    head.extend(axes.iter().map(|s| s.to_string()));
    head.extend(["protocol", "seed", "run_dir", "error", "wall_seconds"].map(String::from));
    head.extend(names.iter().map(|s| s.to_string()));
    let mut c = Csv::new(&head);
    for r in &sj.results {
        let mut row = vec![r.index.to_string()];
        row.extend(
            axes.iter()
                .map(|a| r.params.get(*a).cloned().unwrap_or_default()),
        );
        row.push(r.protocol.clone());
        row.push(r.seed.to_string());
        row.push(r.run_dir.clone());
        row.push(r.error.clone().unwrap_or_default());
        row.push(csv::num(r.wall_seconds));
        row.extend(
            names
                .iter()
                .map(|n| csv::opt(r.metrics.get(*n).copied().flatten())),
        );
        c.row(&row);
    }
    c.into_string()
}

/// aggregate.csv: one row per (combination, protocol): n, mean, sd, ci95 of every metric.
pub fn aggregate_csv(sj: &SweepJson) -> String {
    let axes: Vec<&str> = sj.definition.axes.iter().map(|a| a.path.as_str()).collect();
    let names = metric_names();
    let mut head: Vec<String> = axes.iter().map(|s| s.to_string()).collect();
    head.extend(["protocol", "runs", "failed", "linearizable"].map(String::from));
    for n in &names {
        for s in ["mean", "sd", "ci95", "n"] {
            head.push(format!("{n}_{s}"));
        }
    }
    let mut c = Csv::new(&head);
    for a in &sj.aggregates {
        let mut row: Vec<String> = axes
            .iter()
            .map(|p| a.params.get(*p).cloned().unwrap_or_default())
            .collect();
        row.push(a.protocol.clone());
        row.push(a.runs.to_string());
        row.push(a.failed.to_string());
        row.push(a.linearizable.clone());
        for n in &names {
            match a.metrics.get(*n) {
                Some(g) => {
                    row.push(csv::num(g.mean));
                    row.push(csv::num(g.sd));
                    row.push(csv::num(g.ci95));
                    row.push(g.n.to_string());
                }
                None => row.extend(std::iter::repeat_n(String::new(), 4)),
            }
        }
        c.row(&row);
    }
    c.into_string()
}

/// The figures of one metric: x = the x axis, one panel per combination of the other axes,
/// one line per protocol.
fn metric_figures(sj: &SweepJson, metric: &str) -> String {
    let def = &sj.definition;
    let (label, unit, scale) = metric_info(metric);
    let label = if label.is_empty() { metric } else { label };
    let y_desc = if unit.is_empty() {
        label.to_string()
    } else {
        format!("{label} ({unit})")
    };
    let x_axis = sj
        .x_axis
        .as_ref()
        .and_then(|x| def.axes.iter().find(|a| &a.path == x));
    let others: Vec<&Axis> = def
        .axes
        .iter()
        .filter(|a| Some(&a.path) != x_axis.map(|x| &x.path))
        .collect();
    // Combinations of the other axes.
    let mut panels: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for a in &others {
        let mut next = Vec::new();
        for c in &panels {
            for v in &a.values {
                let mut c = c.clone();
                c.push((a.path.clone(), v.clone()));
                next.push(c);
            }
        }
        panels = next;
    }
    let (xs_num, cats): (Option<Vec<f64>>, Vec<String>) = match x_axis {
        Some(x) => (as_numbers(&x.values), x.values.clone()),
        None => (None, vec!["(all runs)".to_string()]),
    };
    let (xs_num, log_x) = x_scale(xs_num);
    // Every panel's lines first, so that the panels share one y range.
    let mut figs: Vec<(String, Vec<SweepLine>)> = Vec::new();
    for panel in panels {
        let mut lines = Vec::new();
        for p in &def.protocols {
            let mut pts = Vec::new();
            for (xi, xv) in cats.iter().enumerate() {
                let row = sj.aggregates.iter().find(|a| {
                    &a.protocol == p
                        && panel.iter().all(|(k, v)| a.params.get(k) == Some(v))
                        && x_axis.is_none_or(|x| a.params.get(&x.path) == Some(xv))
                });
                if let Some(g) = row.and_then(|r| r.metrics.get(metric)) {
                    let x = match &xs_num {
                        Some(v) => v[xi],
                        None => xi as f64,
                    };
                    pts.push((x, g.mean * scale, g.ci95 * scale));
                }
            }
            if !pts.is_empty() {
                lines.push(SweepLine {
                    label: p.clone(),
                    color: style::protocol_color(p),
                    points: pts,
                });
            }
        }
        let suffix = if panel.is_empty() {
            String::new()
        } else {
            format!(
                " · {}",
                panel
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let title = match x_axis {
            Some(x) => format!("{label} vs {}{suffix}", x.path),
            None => format!("{label}{suffix}"),
        };
        figs.push((title, lines));
    }
    let all: Vec<SweepLine> = figs.iter().flat_map(|f| f.1.iter().cloned()).collect();
    let axes = plots::SweepAxes {
        x_desc: x_axis.map(|x| x.path.clone()).unwrap_or_default(),
        y_desc,
        categories: if xs_num.is_some() {
            None
        } else {
            Some(cats.clone())
        },
        log_x,
        x_ticks: xs_num.clone().unwrap_or_default(),
        y_range: plots::sweep_y_range(&all),
    };
    let mut out = String::new();
    for (title, lines) in figs {
        out += &figure(&plots::sweep_figure(title, &lines, &axes));
    }
    out
}

/// The sweep page.
pub fn sweep_html(sj: &SweepJson) -> String {
    let def = &sj.definition;
    let mut b = String::new();
    let name = if def.spec_name.is_empty() {
        "experiment"
    } else {
        &def.spec_name
    };
    let _ = writeln!(b, "<h1>Sweep · {}</h1>", esc(name));
    let axes: Vec<String> = def
        .axes
        .iter()
        .map(|a| {
            format!(
                "<code>{}</code> ∈ {{{}}}",
                esc(&a.path),
                esc(&a.values.join(", "))
            )
        })
        .collect();
    let tags: Vec<String> = def
        .protocols
        .iter()
        .map(|p| html::protocol_tag(p))
        .collect();
    let seeds = match (def.seeds.first(), def.seeds.last()) {
        (Some(a), Some(z)) if def.seeds.len() > 1 => {
            format!("{} seeds ({a}…{z})", def.seeds.len())
        }
        (Some(a), _) => format!("seed {a}"),
        _ => "no seeds".into(),
    };
    let _ = writeln!(
        b,
        "<p class=\"sub\">{}; protocols {}; {}. {} of {} runs present{}. Fixed overrides: {}. \
         Files: <a href=\"sweep.json\">sweep.json</a>, <a href=\"sweep.csv\">sweep.csv</a> (one \
         row per run), <a href=\"aggregate.csv\">aggregate.csv</a> (mean, sd, 95% CI).</p>",
        if axes.is_empty() {
            "no swept parameter".to_string()
        } else {
            axes.join("; ")
        },
        tags.join(" &nbsp; "),
        seeds,
        sj.points_done,
        sj.points_total,
        if sj.missing.is_empty() {
            String::new()
        } else {
            format!(
                " — <span class=\"bad\">{} missing</span> (shards not merged yet?)",
                sj.missing.len()
            )
        },
        if def.fixed.is_empty() {
            "none".to_string()
        } else {
            def.fixed
                .iter()
                .map(|f| format!("<code>{}</code>", esc(f)))
                .collect::<Vec<_>>()
                .join(" ")
        }
    );
    let failed: usize = sj.aggregates.iter().map(|a| a.failed).sum();
    if failed > 0 {
        let first = sj
            .results
            .iter()
            .find_map(|r| r.error.as_ref().map(|e| (r, e)));
        if let Some((r, e)) = first {
            let _ = writeln!(
                b,
                "<p class=\"bad\">{failed} run(s) failed, e.g. {} seed {}: {}</p>",
                esc(&r.protocol),
                r.seed,
                esc(e)
            );
        }
    }
    b += "<p class=\"how\">Each point is the mean over seeds; whiskers show the 95% confidence \
          interval of the mean (Student's t). Points of different protocols at the same x are \
          drawn a few pixels apart so that whiskers do not hide each other.</p>\n";
    for m in report_metrics(&sj.metric) {
        let (label, _, _) = metric_info(&m);
        let label = if label.is_empty() { m.as_str() } else { label };
        let mut cs = label.chars();
        let cap: String = cs
            .next()
            .map(|c| c.to_uppercase().chain(cs).collect())
            .unwrap_or_default();
        let _ = writeln!(b, "<h2>{}</h2>", esc(&cap));
        b += &metric_figures(sj, &m);
    }

    // Table.
    b += "<h2>Aggregates</h2>\n";
    let shown = report_metrics(&sj.metric);
    let mut head: Vec<String> = def.axes.iter().map(|a| esc(&a.path)).collect();
    head.extend(["protocol".to_string(), "runs".to_string()]);
    for m in &shown {
        let (label, unit, _) = metric_info(m);
        head.push(format!(
            "{} ({})",
            esc(if label.is_empty() { m } else { label }),
            esc(unit)
        ));
    }
    head.push("linearizable".into());
    let mut rows = Vec::new();
    for a in &sj.aggregates {
        let mut row: Vec<String> = def
            .axes
            .iter()
            .map(|ax| esc(a.params.get(&ax.path).map(String::as_str).unwrap_or("")))
            .collect();
        row.push(html::protocol_tag(&a.protocol));
        row.push(if a.failed > 0 {
            format!("{} (+{} failed)", a.runs, a.failed)
        } else {
            a.runs.to_string()
        });
        for m in &shown {
            let (_, _, scale) = metric_info(m);
            row.push(match a.metrics.get(m) {
                Some(g) if g.n > 1 => format!(
                    "{} ± {}",
                    html::num(g.mean * scale),
                    html::num(g.ci95 * scale)
                ),
                Some(g) => html::num(g.mean * scale),
                None => "–".into(),
            });
        }
        row.push(esc(&a.linearizable));
        rows.push(row);
    }
    let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
    b += &table(&head_refs, &rows);
    html::page(&format!("quorumlab sweep: {name}"), &b)
}

/// Writes sweep.json, sweep.csv, aggregate.csv and report.html into `dir`.
pub fn write_sweep(dir: &Path, sj: &SweepJson) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(sj).expect("sweep serializes") + "\n";
    std::fs::write(dir.join("sweep.json"), json)?;
    std::fs::write(dir.join("sweep.csv"), results_csv(sj))?;
    std::fs::write(dir.join("aggregate.csv"), aggregate_csv(sj))?;
    std::fs::write(dir.join("report.html"), sweep_html(sj))
}

/// Writes a shard file into `dir`; returns its path.
pub fn write_shard(dir: &Path, shard: &ShardFile) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(ShardFile::file_name(shard.shard_index, shard.shard_count));
    let json = serde_json::to_string_pretty(shard).expect("shard serializes") + "\n";
    std::fs::write(&path, json)?;
    Ok(path)
}

/// Why shards could not be merged.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeError(pub String);

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MergeError {}

/// Reads every `shard-*.json` in `dir` (or `dir` itself when it is a shard file).
pub fn read_shards(dir: &Path) -> Result<Vec<(PathBuf, ShardFile)>, MergeError> {
    let files: Vec<PathBuf> = if dir.is_file() {
        vec![dir.to_path_buf()]
    } else {
        let rd =
            std::fs::read_dir(dir).map_err(|e| MergeError(format!("{}: {e}", dir.display())))?;
        let mut v: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("shard-") && n.ends_with(".json"))
            })
            .collect();
        v.sort();
        v
    };
    if files.is_empty() {
        return Err(MergeError(format!(
            "{}: no shard-*.json file (is this a sweep directory?)",
            dir.display()
        )));
    }
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f)
                .map_err(|e| MergeError(format!("{}: {e}", f.display())))?;
            let s: ShardFile = serde_json::from_str(&text)
                .map_err(|e| MergeError(format!("{}: not a sweep shard: {e}", f.display())))?;
            if s.quorumlab_sweep_shard != FORMAT {
                return Err(MergeError(format!(
                    "{}: shard format {} (this quorumlab reads {FORMAT})",
                    f.display(),
                    s.quorumlab_sweep_shard
                )));
            }
            Ok((f, s))
        })
        .collect()
}

/// `to` relative to the directory `from` (both made absolute); falls back to `to` as given.
pub fn relative(from: &Path, to: &Path) -> String {
    let abs = |p: &Path| -> Option<PathBuf> {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().ok()?.join(p)
        };
        // Normalize `.` and `..` lexically (the target may not exist).
        let mut out = PathBuf::new();
        for c in p.components() {
            match c {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::CurDir => {}
                c => out.push(c),
            }
        }
        Some(out)
    };
    let (Some(f), Some(t)) = (abs(from), abs(to)) else {
        return to.display().to_string();
    };
    let fc: Vec<_> = f.components().collect();
    let tc: Vec<_> = t.components().collect();
    let common = fc.iter().zip(&tc).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); fc.len() - common];
    parts.extend(
        tc[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// Merges shards (each with the directory it was read from) for output into `out`: checks
/// that they belong to one sweep, rewrites run directories relative to `out`, and drops
/// duplicate points. Returns the definition, the results, and notes (e.g. duplicates).
pub fn merge_shards(
    shards: &[(PathBuf, ShardFile)],
    out: &Path,
) -> Result<(SweepDef, Vec<PointResult>, Vec<String>), MergeError> {
    let Some((first_path, first)) = shards.first() else {
        return Err(MergeError("nothing to merge".into()));
    };
    let mut notes = Vec::new();
    let mut results: BTreeMap<usize, PointResult> = BTreeMap::new();
    for (path, s) in shards {
        if s.definition != first.definition || s.sweep_id != first.sweep_id {
            return Err(MergeError(format!(
                "{} belongs to a different sweep than {} (spec, parameters, protocols or seeds \
                 differ)",
                path.display(),
                first_path.display()
            )));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        for r in &s.results {
            let mut r = r.clone();
            r.run_dir = relative(out, &base.join(&r.run_dir));
            match results.entry(r.index) {
                std::collections::btree_map::Entry::Occupied(_) => notes.push(format!(
                    "point {} appears twice (again in {}); kept the first",
                    r.index,
                    path.display()
                )),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(r);
                }
            }
        }
    }
    Ok((
        first.definition.clone(),
        results.into_values().collect(),
        notes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> SweepDef {
        SweepDef {
            spec_name: "t".into(),
            spec_sha256: "x".into(),
            fixed: vec![],
            axes: vec![
                Axis {
                    path: "workload.clients".into(),
                    values: vec!["1".into(), "2".into()],
                },
                Axis {
                    path: "network.delivery".into(),
                    values: vec!["\"fifo\"".into(), "\"unordered\"".into()],
                },
            ],
            protocols: vec!["single".into(), "raft".into()],
            seeds: vec![1, 2, 3],
        }
    }

    #[test]
    fn grid_order_and_shards() {
        let d = def();
        let pts = d.points();
        assert_eq!(pts.len(), 2 * 2 * 2 * 3);
        assert_eq!(pts[0].params[0], ("workload.clients".into(), "1".into()));
        assert_eq!(pts[0].protocol, "single");
        assert_eq!(pts[3].protocol, "raft");
        assert_eq!(pts[6].params[1].1, "\"unordered\"");
        // Shards partition the grid.
        let n = 4;
        let mut count = vec![0; pts.len()];
        for i in 1..=n {
            for p in &pts {
                if in_shard(p.index, i, n) {
                    count[p.index] += 1;
                }
            }
        }
        assert!(count.iter().all(|&c| c == 1));
        assert_eq!(
            run_dir(&pts[6]),
            "runs/p001_clients=1,delivery=_unordered_/single-seed1"
        );
    }

    fn result(p: &GridPoint, x: f64) -> PointResult {
        PointResult {
            index: p.index,
            params: p.params.iter().cloned().collect(),
            protocol: p.protocol.clone(),
            seed: p.seed,
            run_dir: run_dir(p),
            metrics: [("throughput_ok_per_s".to_string(), Some(x))]
                .into_iter()
                .collect(),
            linearizable: serde_json::Value::Bool(true),
            wall_seconds: 0.1,
            error: None,
        }
    }

    #[test]
    fn aggregates_by_hand() {
        let d = def();
        let pts = d.points();
        // Seeds 1..3 of the first (combo, protocol): values 10, 20, 30.
        let rs: Vec<PointResult> = pts[..3]
            .iter()
            .zip([10.0, 20.0, 30.0])
            .map(|(p, x)| result(p, x))
            .collect();
        let sj = sweep_json(&d, rs, "throughput_ok_per_s", None);
        assert_eq!(sj.points_done, 3);
        assert_eq!(sj.missing.len(), 21);
        assert_eq!(sj.aggregates.len(), 1);
        let a = &sj.aggregates[0].metrics["throughput_ok_per_s"];
        assert_eq!(a.n, 3);
        assert!((a.mean - 20.0).abs() < 1e-12);
        assert!((a.sd - 10.0).abs() < 1e-12);
        assert!((a.ci95 - 4.303 * 10.0 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(sj.aggregates[0].linearizable, "3/3");
        let html = sweep_html(&sj);
        assert!(html.contains("21 missing"));
        assert!(aggregate_csv(&sj).lines().count() == 2);
    }

    #[test]
    fn x_scales() {
        assert_eq!(
            x_scale(Some(vec![1.0, 5.0, 10.0])),
            (Some(vec![1.0, 5.0, 10.0]), false)
        );
        assert!(x_scale(Some(vec![1.0, 10.0, 100.0])).1);
        assert_eq!(x_scale(Some(vec![0.0, 0.001, 0.01, 0.1])), (None, false));
        assert_eq!(x_scale(None), (None, false));
    }

    #[test]
    fn merge_checks_identity_and_rewrites_dirs() {
        let d = def();
        let pts = d.points();
        let mk = |i: usize, n: usize| ShardFile {
            quorumlab_sweep_shard: FORMAT,
            sweep_id: d.id(),
            definition: d.clone(),
            shard_index: i,
            shard_count: n,
            x_axis: None,
            metric: None,
            results: pts
                .iter()
                .filter(|p| in_shard(p.index, i, n))
                .map(|p| result(p, p.index as f64))
                .collect(),
        };
        let shards = vec![
            (PathBuf::from("/x/a/shard-1-of-2.json"), mk(1, 2)),
            (PathBuf::from("/x/b/shard-2-of-2.json"), mk(2, 2)),
        ];
        let (def2, rs, notes) = merge_shards(&shards, Path::new("/x/a")).unwrap();
        assert_eq!(def2, d);
        assert_eq!(rs.len(), pts.len());
        assert!(notes.is_empty());
        assert!(rs[0].run_dir.starts_with("runs/"));
        assert!(rs[1].run_dir.starts_with("../b/runs/"), "{}", rs[1].run_dir);
        let mut other = mk(2, 2);
        other.definition.seeds = vec![1];
        other.sweep_id = other.definition.id();
        let bad = vec![
            shards[0].clone(),
            (PathBuf::from("/x/c/shard-2-of-2.json"), other),
        ];
        assert!(merge_shards(&bad, Path::new("/x")).is_err());
    }
}
