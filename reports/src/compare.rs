//! A comparison: several protocols under one workload and one fault schedule, side by side.
//! Writes `compare.json`, `compare.csv`, `unavailability.csv` and `report.html`.

use crate::csv::{self, Csv};
use crate::html::{self, esc, figure, num, table};
use crate::metrics::RunMetrics;
use crate::plots::{self, Title};
use crate::run_report::{self, headline};
use crate::style;
use crate::summary::Summary;
use quorumlab_workloads::Spec;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// One protocol's run in a comparison.
#[derive(Clone, Debug)]
pub struct CompareRun {
    pub protocol: String,
    /// The run directory, relative to the comparison's directory.
    pub dir: String,
    pub summary: Summary,
    pub metrics: RunMetrics,
}

#[derive(Serialize)]
struct CompareEntry<'a> {
    protocol: &'a str,
    dir: &'a str,
    summary: &'a Summary,
}

#[derive(Serialize)]
struct CompareJson<'a> {
    quorumlab_compare: u32,
    spec: &'a str,
    seed: u64,
    protocols: Vec<&'a str>,
    runs: Vec<CompareEntry<'a>>,
}

/// compare.json: the spec name, seed and every run's summary (deterministic apart from each
/// summary's `wall_seconds`).
pub fn compare_json(spec: &Spec, seed: u64, runs: &[CompareRun]) -> String {
    let j = CompareJson {
        quorumlab_compare: 1,
        spec: &spec.name,
        seed,
        protocols: runs.iter().map(|r| r.protocol.as_str()).collect(),
        runs: runs
            .iter()
            .map(|r| CompareEntry {
                protocol: &r.protocol,
                dir: &r.dir,
                summary: &r.summary,
            })
            .collect(),
    };
    serde_json::to_string_pretty(&j).expect("compare serializes") + "\n"
}

/// compare.csv: one row per protocol with the headline figures.
pub fn compare_csv(runs: &[CompareRun]) -> String {
    let names: Vec<&str> = runs
        .first()
        .map(|r| headline(&r.summary).iter().map(|(k, _)| *k).collect())
        .unwrap_or_default();
    let mut head: Vec<String> = vec!["protocol".into(), "seed".into(), "run_dir".into()];
    head.extend(names.iter().map(|s| s.to_string()));
    head.push("linearizable_verdict".into());
    head.push("set_verdict".into());
    let mut c = Csv::new(&head);
    for r in runs {
        let mut row = vec![
            r.protocol.clone(),
            r.summary.seed.to_string(),
            r.dir.clone(),
        ];
        row.extend(headline(&r.summary).iter().map(|(_, v)| csv::opt(*v)));
        row.push(html::verdict_text(&r.summary.linearizable));
        row.push(
            r.summary
                .sets
                .as_ref()
                .map_or(String::new(), |x| x.verdict.clone()),
        );
        c.row(&row);
    }
    c.into_string()
}

fn violation_href(dir: &Path, r: &CompareRun) -> Option<String> {
    let href = format!("{}/violation.html", r.dir);
    (r.summary.linearizable == serde_json::Value::Bool(false)
        || dir.join(&r.dir).join("violation.html").exists())
    .then_some(href)
}

/// The comparison page. `dir` is where it is written (to find violation pages).
pub fn compare_html(dir: &Path, spec: &Spec, seed: u64, runs: &[CompareRun]) -> String {
    let mut b = String::new();
    let name = spec.display_name();
    let _ = writeln!(b, "<h1>Comparison · {} · seed {seed}</h1>", esc(name));
    let tags: Vec<String> = runs
        .iter()
        .map(|r| html::protocol_tag(&r.protocol))
        .collect();
    let _ = writeln!(
        b,
        "<p class=\"sub\">{} under the same workload, network and fault schedule ({} nodes, {} \
         group(s), {} clients). Files: <a href=\"compare.json\">compare.json</a>, \
         <a href=\"compare.csv\">compare.csv</a>, <a href=\"unavailability.csv\">unavailability.csv</a>; \
         each protocol's run directory has its own report.</p>",
        tags.join(" &nbsp; "),
        spec.cluster.nodes,
        spec.cluster.groups,
        spec.workload.clients
    );
    if !spec.description.is_empty() {
        let _ = writeln!(b, "<p class=\"how\">{}</p>", esc(spec.description.trim()));
    }
    b += "<nav><a href=\"#table\">summary</a><a href=\"#time\">over time</a>\
          <a href=\"#latency\">latency</a><a href=\"#stacked\">per protocol</a>\
          <a href=\"#unavail\">unavailability</a><a href=\"#groups\">per-group availability</a>\
          <a href=\"#leaders\">leadership</a><a href=\"#cost\">cost</a></nav>\n";
    if runs.is_empty() {
        b += &plots::note("No runs.");
        return html::page(&format!("quorumlab comparison: {name}"), &b);
    }

    // Summary table.
    b += "<h2 id=\"table\">Summary</h2>\n<p class=\"how\">Measured window only. Latencies are of \
          ok ops; the longest gap is the longest span with no ok completion; messages per ok op \
          count every message sent (client requests and replies included).</p>\n";
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let s = &r.summary;
            let all = s.latency_us.get("all").cloned().unwrap_or_default();
            vec![
                format!(
                    "{} <a href=\"{}/report.html\">report</a>",
                    html::protocol_tag(&r.protocol),
                    esc(&r.dir)
                ),
                num(s.throughput_ok_per_s),
                html::us(all.p50),
                html::us(all.p99),
                html::us(all.p999),
                format!("{:.1}%", s.availability.ok_fraction * 100.0),
                html::ms(s.availability.longest_gap_ms),
                html::ms(s.availability.worst_client_gap_ms),
                num(s.messages.per_ok_op),
                num(s.messages.bytes_per_ok_op),
                s.leadership.elections.to_string(),
                html::verdict(&s.linearizable, violation_href(dir, r).as_deref()),
                s.sets.as_ref().map_or("–".into(), html::set_verdict),
                s.sets
                    .as_ref()
                    .and_then(|x| x.convergence_ns)
                    .map_or("–".into(), |ns| html::ms(ns as f64 / 1e6)),
            ]
        })
        .collect();
    b += &table(
        &[
            "protocol",
            "ok ops/s",
            "p50",
            "p99",
            "p99.9",
            "ok fraction",
            "longest gap",
            "worst client's gap",
            "msgs/op",
            "bytes/op",
            "elections",
            "linearizable",
            "set: lost adds",
            "converged after heal",
        ],
        &rows,
    );

    // Over time, overlaid.
    let span_ns = runs.iter().map(|r| r.metrics.span_ns).max().unwrap_or(1);
    let axis_of = |r: &CompareRun, kind_only: bool| {
        let mut a = run_report::time_axis(&r.metrics, kind_only);
        a.span_s = span_ns as f64 / 1e9;
        a
    };
    // Fault labels name nodes when every protocol faulted the same ones (an isolated leader
    // differs between protocols: then only the kind).
    let mut shared_axis = axis_of(&runs[0], false);
    for (i, f) in shared_axis.faults.iter_mut().enumerate() {
        let same = runs.iter().all(|r| {
            r.metrics.faults.get(i).map(|w| &w.label)
                == runs[0].metrics.faults.get(i).map(|w| &w.label)
        });
        if !same {
            f.2 = runs[0].metrics.faults[i].kind.clone();
        }
    }
    b += "<h2 id=\"time\">Throughput and availability over time</h2>\n<p class=\"how\">All \
          protocols on one time axis; fault windows (from the shared schedule) shaded.</p>\n";
    let ok_rate: Vec<_> = runs
        .iter()
        .map(|r| {
            (
                r.protocol.clone(),
                style::protocol_color(&r.protocol),
                run_report::ok_rate_series(&r.metrics),
            )
        })
        .collect();
    let top = ok_rate
        .iter()
        .flat_map(|s| s.2.iter().filter_map(|p| p.1))
        .fold(0.0, f64::max)
        * 1.1;
    b += &figure(&plots::time_lines(
        format!(
            "ok completions per second ({} buckets)",
            html::ms(runs[0].metrics.bucket_ns as f64 / 1e6)
        ),
        "ok ops/s",
        &ok_rate,
        &shared_axis,
        (0.0, top.max(1.0)),
        false,
        230,
    ));
    let share: Vec<_> = runs
        .iter()
        .map(|r| {
            (
                r.protocol.clone(),
                style::protocol_color(&r.protocol),
                run_report::share_series(&r.metrics),
            )
        })
        .collect();
    b += &figure(&plots::time_lines(
        "Availability: share of completed ops answered (ok, or a false precondition)",
        "answered / completed",
        &share,
        &shared_axis,
        (0.0, 1.02),
        true,
        200,
    ));

    // Latency.
    b += "<h2 id=\"latency\">Latency</h2>\n";
    let series: Vec<plots::Series> = runs
        .iter()
        .map(|r| {
            (
                r.protocol.clone(),
                style::protocol_color(&r.protocol),
                r.metrics.cdf.get("all").cloned().unwrap_or_default(),
            )
        })
        .collect();
    b += &figure(&plots::cdf(
        "Latency CDF of ok ops (all op types)",
        &series,
        360,
    ));
    b += &figure(&plots::tail(
        "Latency tail: fraction of ok ops slower than a latency",
        &series,
        300,
    ));
    let ops: BTreeSet<&String> = runs
        .iter()
        .flat_map(|r| r.summary.latency_us.keys())
        .collect();
    let mut head: Vec<String> = vec!["op".into()];
    for r in runs {
        head.push(format!("{} p50", esc(&r.protocol)));
        head.push(format!("{} p99", esc(&r.protocol)));
    }
    let rows: Vec<Vec<String>> = ops
        .iter()
        .map(|f| {
            let mut row = vec![esc(f)];
            for r in runs {
                let p = r.summary.latency_us.get(*f).cloned().unwrap_or_default();
                row.push(html::us(p.p50));
                row.push(html::us(p.p99));
            }
            row
        })
        .collect();
    let head_refs: Vec<&str> = head.iter().map(|s| s.as_str()).collect();
    b += &table(&head_refs, &rows);

    // Stacked per protocol.
    b += "<h2 id=\"stacked\">Per protocol, on one time axis</h2>\n<p class=\"how\">Completions \
          by outcome (same vertical scale for every protocol), then each op's latency.</p>\n";
    let ymax = runs
        .iter()
        .flat_map(|r| {
            let full = r.metrics.bucket_ns as f64 / 1e9 * 0.5;
            run_report::outcome_buckets(&r.metrics)
                .into_iter()
                .filter(move |b| b.width_s >= full)
                .map(|b| b.total() as f64 / b.width_s.max(1e-9))
        })
        .fold(0.0, f64::max)
        * 1.15;
    for r in runs {
        b += &figure(&plots::outcome_bars(
            Title::tagged(
                format!("{}: completions per second by outcome", r.protocol),
                style::protocol_color(&r.protocol),
            ),
            &run_report::outcome_buckets(&r.metrics),
            &axis_of(r, false),
            Some(ymax.max(1.0)),
            170,
        ));
    }
    for r in runs {
        b += &figure(&plots::latency_scatter(
            Title::tagged(
                format!("{}: latency of each op over time", r.protocol),
                style::protocol_color(&r.protocol),
            ),
            &crate::metrics::downsample(&r.metrics.scatter, 2500),
            r.metrics.scatter_total,
            &axis_of(r, false),
            200,
        ));
    }

    // Unavailability.
    b += "<h2 id=\"unavail\">Unavailability per fault</h2>\n<p class=\"how\">Per fault: from the \
          fault to the first ok op (invoked after it) on an affected key, to an ok op in every \
          affected group, and from the fault's end (heal) to full recovery, in ms.</p>\n";
    let nfaults = runs
        .iter()
        .map(|r| r.summary.unavailability.len())
        .max()
        .unwrap_or(0);
    if nfaults == 0 {
        b += &plots::note("No faults in this experiment.");
    } else {
        let mut rows = Vec::new();
        for i in 0..nfaults {
            for r in runs {
                if let Some(u) = r.summary.unavailability.get(i) {
                    rows.push(vec![
                        format!("{} · {:.3} s", esc(&u.fault), u.start_s),
                        html::protocol_tag(&r.protocol),
                        format!("{} of {}", u.affected_groups.len(), r.metrics.groups),
                        html::opt_num(u.to_first_ok_ms, "none in run"),
                        html::opt_num(u.to_all_groups_ok_ms, "not all"),
                        html::opt_num(u.heal_to_recovery_ms, "–"),
                    ]);
                }
            }
        }
        b += &table(
            &[
                "fault",
                "protocol",
                "affected groups",
                "to first ok (ms)",
                "to all groups ok (ms)",
                "end → full recovery (ms)",
            ],
            &rows,
        );
    }

    // Per-group heatmaps.
    b += "<h2 id=\"groups\">Per-group availability</h2>\n<p class=\"how\">Share of ok ops per \
          group (row) and time bucket. One Raft group loses every key at once; per-key \
          ensembles can lose only the groups the fault touches.</p>\n";
    for r in runs {
        b += &figure(&plots::heatmap(
            Title::tagged(
                format!("{}: share of ok ops per group", r.protocol),
                style::protocol_color(&r.protocol),
            ),
            &r.metrics.heat,
            &axis_of(r, false),
        ));
    }

    // Leadership.
    b += "<h2 id=\"leaders\">Leadership</h2>\n";
    for r in runs {
        if r.metrics.has_leaders {
            b += &figure(&plots::leadership(
                Title::tagged(
                    format!("{}: leader of each group (tN = term/epoch)", r.protocol),
                    style::protocol_color(&r.protocol),
                ),
                &r.metrics.leaders,
                &r.metrics.elections,
                r.metrics.groups,
                r.metrics.nodes,
                &axis_of(r, false),
            ));
        } else {
            b += &plots::note(&format!("{}: reports no leaders.", r.protocol));
        }
    }

    // Cost.
    b += "<h2 id=\"cost\">Cost</h2>\n";
    let items = |f: &dyn Fn(&Summary) -> f64| -> Vec<(String, f64, plotters::style::RGBColor)> {
        runs.iter()
            .map(|r| {
                (
                    r.protocol.clone(),
                    f(&r.summary),
                    style::protocol_color(&r.protocol),
                )
            })
            .collect()
    };
    b += &figure(&plots::hbars(
        "Messages sent per ok op",
        "messages per ok op",
        &items(&|s| s.messages.per_ok_op),
        &|v| format!("{v:.2}"),
    ));
    b += &figure(&plots::hbars(
        "Bytes sent per ok op",
        "bytes per ok op",
        &items(&|s| s.messages.bytes_per_ok_op),
        &|v| format!("{v:.0}"),
    ));
    let mut rows = Vec::new();
    for r in runs {
        let ok = r.summary.ops.ok;
        let mut kinds: Vec<_> = r.summary.messages.by_kind.iter().collect();
        kinds.sort_by(|a, b| b.1.sent.cmp(&a.1.sent).then(a.0.cmp(b.0)));
        for (k, st) in kinds {
            rows.push(vec![
                html::protocol_tag(&r.protocol),
                esc(k),
                st.sent.to_string(),
                st.dropped.to_string(),
                if ok > 0 {
                    num(st.sent as f64 / ok as f64)
                } else {
                    "–".into()
                },
                if ok > 0 {
                    num(st.bytes as f64 / ok as f64)
                } else {
                    "–".into()
                },
            ]);
        }
    }
    b += &table(
        &[
            "protocol",
            "message kind",
            "sent",
            "dropped",
            "per ok op",
            "bytes per ok op",
        ],
        &rows,
    );
    html::page(&format!("quorumlab comparison: {name}"), &b)
}

/// Writes compare.json, compare.csv, unavailability.csv and report.html into `dir`.
pub fn write_compare(dir: &Path, spec: &Spec, seed: u64, runs: &[CompareRun]) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("compare.json"), compare_json(spec, seed, runs))?;
    std::fs::write(dir.join("compare.csv"), compare_csv(runs))?;
    let mut c = Csv::new(&[
        "protocol",
        "fault",
        "kind",
        "start_s",
        "end_s",
        "affected_groups",
        "affected_keys",
        "to_first_ok_ms",
        "to_all_groups_ok_ms",
        "heal_to_recovery_ms",
    ]);
    for r in runs {
        run_report::unavailability_rows(&mut c, &r.protocol, &r.summary);
    }
    std::fs::write(dir.join("unavailability.csv"), c.into_string())?;
    std::fs::write(dir.join("report.html"), compare_html(dir, spec, seed, runs))
}
