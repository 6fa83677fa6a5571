//! The report of one run: `report.html` (self-contained, figures inline as SVG) and the CSV
//! files beside `summary.json`.

use crate::csv::{self, Csv};
use crate::html::{self, esc, figure, num, table};
use crate::metrics::{endpoint_name, RunMetrics};
use crate::ops::pair_ops;
use crate::plots::{self, TimeAxis};
use crate::seqdiag;
use crate::style;
use crate::summary::Summary;
use quorumlab_workloads::{RunOutput, Spec};
use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// The headline figures of a summary, by stable name (used in CSV files and sweeps).
pub fn headline(s: &Summary) -> Vec<(&'static str, Option<f64>)> {
    let all = s.latency_us.get("all").cloned().unwrap_or_default();
    let lat = |v: u64| (all.count > 0).then_some(v as f64);
    let first = s.unavailability.first();
    let sets = s.sets.as_ref();
    vec![
        ("throughput_ok_per_s", Some(s.throughput_ok_per_s)),
        ("ok_fraction", Some(s.availability.ok_fraction)),
        ("longest_gap_ms", Some(s.availability.longest_gap_ms)),
        (
            "worst_client_gap_ms",
            Some(s.availability.worst_client_gap_ms),
        ),
        ("latency_p50_us", lat(all.p50)),
        ("latency_p90_us", lat(all.p90)),
        ("latency_p99_us", lat(all.p99)),
        ("latency_p999_us", lat(all.p999)),
        ("latency_max_us", lat(all.max)),
        ("latency_mean_us", (all.count > 0).then_some(all.mean)),
        ("msgs_per_ok_op", Some(s.messages.per_ok_op)),
        ("bytes_per_ok_op", Some(s.messages.bytes_per_ok_op)),
        ("elections", Some(s.leadership.elections as f64)),
        (
            "longest_leaderless_ms",
            Some(s.leadership.longest_leaderless_ms),
        ),
        (
            "first_fault_to_first_ok_ms",
            first.and_then(|u| u.to_first_ok_ms),
        ),
        (
            "first_fault_to_all_groups_ok_ms",
            first.and_then(|u| u.to_all_groups_ok_ms),
        ),
        (
            "first_fault_heal_to_recovery_ms",
            first.and_then(|u| u.heal_to_recovery_ms),
        ),
        ("ops_invoked", Some(s.ops.invoked as f64)),
        ("ops_ok", Some(s.ops.ok as f64)),
        ("ops_fail", Some(s.ops.fail as f64)),
        ("ops_info", Some(s.ops.info as f64)),
        (
            "linearizable",
            match s.linearizable {
                serde_json::Value::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
                _ => None,
            },
        ),
        ("lost_adds", sets.map(|x| x.counts.lost as f64)),
        ("acked_adds", sets.map(|x| x.counts.acknowledged as f64)),
        ("stale_set_reads", sets.map(|x| x.counts.stale_reads as f64)),
        (
            "set_convergence_ms",
            sets.and_then(|x| x.convergence_ns)
                .map(|ns| ns as f64 / 1e6),
        ),
    ]
}

/// summary.csv: one row with the headline figures.
pub fn summary_csv(s: &Summary) -> String {
    let h = headline(s);
    let mut head = vec!["protocol".to_string(), "seed".to_string()];
    head.extend(h.iter().map(|(k, _)| k.to_string()));
    head.push("linearizable_verdict".into());
    let mut c = Csv::new(&head);
    let mut row = vec![s.protocol.clone(), s.seed.to_string()];
    row.extend(h.iter().map(|(_, v)| csv::opt(*v)));
    row.push(html::verdict_text(&s.linearizable));
    c.row(&row);
    c.into_string()
}

/// The time axis of a run's figures.
pub fn time_axis(m: &RunMetrics, kind_only_labels: bool) -> TimeAxis {
    let span_s = m.span_ns as f64 / 1e9;
    TimeAxis {
        span_s,
        measure_from_s: m.measure_from_ns as f64 / 1e9,
        measure_to_s: m.measure_to_ns as f64 / 1e9,
        faults: m
            .faults
            .iter()
            .map(|f| {
                (
                    f.start_ns as f64 / 1e9,
                    // A fault never undone lasts past the end of every figure.
                    f.end_ns.map(|e| e as f64 / 1e9).unwrap_or(f64::INFINITY),
                    if kind_only_labels {
                        f.kind.clone()
                    } else {
                        f.label.clone()
                    },
                )
            })
            .collect(),
    }
}

/// The width of bucket `b` inside the run, in seconds (the last one may be cut short).
fn bucket_width_s(m: &RunMetrics, b: &crate::metrics::Bucket) -> f64 {
    (m.bucket_ns.min(m.span_ns.saturating_sub(b.start_ns))) as f64 / 1e9
}

/// Per bucket: completions by outcome, for the stacked bars.
pub fn outcome_buckets(m: &RunMetrics) -> Vec<plots::BarBucket> {
    m.timeline
        .iter()
        .map(|b| plots::BarBucket {
            start_s: b.start_ns as f64 / 1e9,
            width_s: bucket_width_s(m, b),
            ok: b.ok,
            fail_precondition: b.fail_precondition,
            fail_other: b.fail - b.fail_precondition,
            info: b.info,
        })
        .collect()
}

/// Whether a bucket is wide enough to plot as a rate (the last may be a sliver).
fn full_enough(m: &RunMetrics, b: &crate::metrics::Bucket) -> bool {
    bucket_width_s(m, b) * 1e9 >= m.bucket_ns as f64 * 0.5
}

/// (bucket center s, ok share) per bucket.
pub fn share_series(m: &RunMetrics) -> Vec<(f64, Option<f64>)> {
    m.timeline
        .iter()
        .map(|b| {
            let w = bucket_width_s(m, b);
            (
                b.start_ns as f64 / 1e9 + w / 2.0,
                b.ok_share().filter(|_| full_enough(m, b)),
            )
        })
        .collect()
}

/// (bucket center s, ok ops/s) per bucket.
pub fn ok_rate_series(m: &RunMetrics) -> Vec<(f64, Option<f64>)> {
    m.timeline
        .iter()
        .map(|b| {
            let w = bucket_width_s(m, b);
            (
                b.start_ns as f64 / 1e9 + w / 2.0,
                full_enough(m, b).then(|| b.ok as f64 / w),
            )
        })
        .collect()
}

/// The unavailability table of one run.
pub fn unavailability_table(s: &Summary, groups: usize) -> String {
    if s.unavailability.is_empty() {
        return plots::note("No faults in this run.");
    }
    let rows: Vec<Vec<String>> = s
        .unavailability
        .iter()
        .map(|u| {
            vec![
                esc(&u.fault),
                format!("{:.3}", u.start_s),
                u.end_s
                    .map(|e| format!("{e:.3}"))
                    .unwrap_or_else(|| "not healed".into()),
                if u.affected_groups.len() == groups {
                    format!("all {groups} ({} keys)", u.affected_keys)
                } else {
                    format!(
                        "{} of {groups} ({} keys)",
                        u.affected_groups.len(),
                        u.affected_keys
                    )
                },
                html::opt_num(u.to_first_ok_ms, "none in run"),
                html::opt_num(u.to_all_groups_ok_ms, "not all"),
                html::opt_num(u.heal_to_recovery_ms, "–"),
            ]
        })
        .collect();
    table(
        &[
            "fault",
            "start (s)",
            "end (s)",
            "affected groups",
            "to first ok (ms)",
            "to all groups ok (ms)",
            "end → full recovery (ms)",
        ],
        &rows,
    )
}

fn cards(s: &Summary, violation: Option<&str>) -> String {
    let all = s.latency_us.get("all").cloned().unwrap_or_default();
    let card = |v: String, k: &str| {
        format!("<div class=\"card\"><div class=\"v\">{v}</div><div class=\"k\">{k}</div></div>")
    };
    let mut c = String::from("<div class=\"cards\">");
    c += &card(num(s.throughput_ok_per_s), "ok ops/s");
    c += &card(html::us(all.p50), "p50 latency (ok)");
    c += &card(html::us(all.p99), "p99 latency (ok)");
    c += &card(html::us(all.p999), "p99.9 latency (ok)");
    c += &card(
        format!("{:.1}%", s.availability.ok_fraction * 100.0),
        "answered / completed",
    );
    c += &card(
        html::ms(s.availability.longest_gap_ms),
        "longest gap without ok",
    );
    c += &card(num(s.messages.per_ok_op), "messages per ok op");
    c += &card(html::verdict(&s.linearizable, violation), "linearizability");
    if let Some(sets) = &s.sets {
        c += &card(html::set_verdict(sets), "set checker: lost adds");
        c += &card(
            sets.convergence_ns
                .map_or("–".into(), |ns| html::ms(ns as f64 / 1e6)),
            "convergence after the final heal",
        );
        c += &card(
            format!("{} of {}", sets.counts.stale_reads, sets.counts.reads),
            "stale set reads",
        );
    }
    c.push_str("</div>\n");
    c
}

/// The report page of one run.
pub fn run_report_html(
    spec: &Spec,
    run: &RunOutput,
    s: &Summary,
    m: &RunMetrics,
    violation: Option<&str>,
) -> String {
    let mut b = String::new();
    let exp = spec.display_name();
    let title = format!("{} · {exp} · seed {}", s.protocol, s.seed);
    let _ = writeln!(
        b,
        "<h1>{} · {} · seed {}</h1>",
        html::protocol_tag(&s.protocol),
        esc(exp),
        s.seed
    );
    let _ = writeln!(
        b,
        "<p class=\"sub\">{} nodes, {} group(s) of {} replicas, {} clients; {:.1} s simulated, \
         figures over the measured window {:.1}–{:.1} s. Files: <a href=\"summary.json\">summary.json</a> \
         (<a href=\"summary.csv\">csv</a>), <a href=\"history.jsonl\">history.jsonl</a>, \
         <a href=\"spec.toml\">spec.toml</a>, CSV: <a href=\"ops.csv\">ops</a>, \
         <a href=\"timeline.csv\">timeline</a>, <a href=\"latency.csv\">latency</a>, \
         <a href=\"unavailability.csv\">unavailability</a>, <a href=\"groups.csv\">groups</a>, \
         <a href=\"leaders.csv\">leaders</a>, <a href=\"messages.csv\">messages</a>, \
         <a href=\"msglog.csv\">message log</a>, <a href=\"faults.csv\">faults</a>.</p>",
        run.layout.nodes,
        m.groups,
        run.layout.replicas,
        run.layout.clients,
        s.sim_seconds,
        m.measure_from_ns as f64 / 1e9,
        m.measure_to_ns as f64 / 1e9,
    );
    if !spec.description.is_empty() {
        let _ = writeln!(b, "<p class=\"how\">{}</p>", esc(spec.description.trim()));
    }
    b += &cards(s, violation);
    if !s.protocol_counters.is_empty() {
        let items: Vec<String> = s
            .protocol_counters
            .iter()
            .map(|(k, v)| format!("<code>{}</code> {v}", esc(k)))
            .collect();
        let _ = writeln!(
            b,
            "<p class=\"how\">Protocol counters at the end of the run (all servers): {}.</p>",
            items.join(", ")
        );
    }
    b += "<nav><a href=\"#lin\">linearizability</a><a href=\"#latency\">latency</a>\
          <a href=\"#throughput\">throughput &amp; availability</a><a href=\"#unavail\">unavailability</a>\
          <a href=\"#groups\">per-group availability</a><a href=\"#leaders\">leadership</a>\
          <a href=\"#cost\">cost</a><a href=\"#seq\">message diagram</a><a href=\"#faults\">faults</a></nav>\n";

    // Linearizability.
    let _ = writeln!(
        b,
        "<h2 id=\"lin\">Linearizability</h2><div class=\"verdict\">{}</div>\
         <p class=\"how\">Whether the ok/fail/info results clients saw are consistent with one \
         atomic register per key (info ops may or may not have taken effect).</p>",
        html::verdict(&s.linearizable, violation)
    );

    // Latency.
    let axis = time_axis(m, false);
    b += "<h2 id=\"latency\">Latency</h2>\n<p class=\"how\">Percentiles of ok ops invoked in the \
          measured window, per op type (hdrhistogram, 3 significant digits).</p>\n";
    let mut rows = Vec::new();
    for (f, p) in &s.latency_us {
        rows.push(vec![
            if f == "all" {
                "<b>all</b>".into()
            } else {
                esc(f)
            },
            p.count.to_string(),
            html::us(p.p50),
            html::us(p.p90),
            html::us(p.p99),
            html::us(p.p999),
            html::us(p.max),
            html::us(p.mean.round() as u64),
        ]);
    }
    b += &table(
        &["op", "ok ops", "p50", "p90", "p99", "p99.9", "max", "mean"],
        &rows,
    );
    let series: Vec<plots::Series> = m
        .cdf
        .iter()
        .filter(|(f, _)| f.as_str() != "all")
        .chain(m.cdf.iter().filter(|(f, _)| f.as_str() == "all"))
        .map(|(f, pts)| (f.clone(), style::op_color(f), pts.clone()))
        .collect();
    b += &figure(&plots::cdf(
        "Latency CDF of ok ops, per op type",
        &series,
        340,
    ));
    b += &figure(&plots::tail(
        "Latency tail: fraction of ok ops slower than a latency",
        &series,
        280,
    ));
    b += &figure(&plots::latency_scatter(
        "Latency of each op over time, by outcome",
        &m.scatter,
        m.scatter_total,
        &axis,
        300,
    ));

    // Throughput and availability.
    b += "<h2 id=\"throughput\">Throughput and availability over time</h2>\n<p class=\"how\">\
          Ops by completion time, per bucket, stacked by outcome; faults shaded and labelled. \
          Below: the share of completed ops answered in each bucket (ok, or a cas/create whose precondition was false) (the line breaks where \
          nothing completed).</p>\n";
    let bucket_label = html::ms(m.bucket_ns as f64 / 1e6);
    b += &figure(&plots::outcome_bars(
        format!("Completions per second by outcome ({bucket_label} buckets)"),
        &outcome_buckets(m),
        &axis,
        None,
        230,
    ));
    b += &figure(&plots::time_lines(
        "Availability: share of completed ops answered (ok, or a false precondition)",
        "answered / completed",
        &[("ok share".to_string(), style::OK, share_series(m))],
        &axis,
        (0.0, 1.02),
        true,
        170,
    ));

    // Unavailability.
    b += "<h2 id=\"unavail\">Unavailability per fault</h2>\n<p class=\"how\">Affected keys: those \
          of groups with a faulted node as a member (all keys when the fault names no server). \
          <i>To first ok</i>: from the fault to the completion of the first ok op, invoked after \
          the fault, on an affected key. <i>To all groups ok</i>: the same for the slowest \
          affected group. <i>End → full recovery</i>: from the heal (restart, end of pause) \
          until every affected group has completed an ok op.</p>\n";
    b += &unavailability_table(s, m.groups);

    // Per-group availability.
    b += "<h2 id=\"groups\">Per-group availability</h2>\n<p class=\"how\">Each row is a group \
          (a Raft group, an ensemble); each cell the share of ok ops among the ops on its keys \
          completed in that time bucket. A protocol with one group loses every key together; \
          per-key ensembles can lose only some groups.</p>\n";
    b += &figure(&plots::heatmap(
        format!(
            "Share of ok ops per group over time ({} buckets)",
            html::ms(m.heat.bucket_ns as f64 / 1e6)
        ),
        &m.heat,
        &axis,
    ));

    // Leadership.
    b += "<h2 id=\"leaders\">Leadership</h2>\n";
    if m.has_leaders {
        b += "<p class=\"how\">Who leads each group over time, labelled with the leader's term \
              (epoch); a tick marks each election. Sampled every 10 ms and at every fault.</p>\n";
        b += &figure(&plots::leadership(
            "Leader of each group over time",
            &m.leaders,
            &m.elections,
            m.groups,
            m.nodes,
            &axis,
        ));
    } else {
        b += &plots::note(
            "This protocol reports no leaders (leaderless, or no leader was ever elected).",
        );
    }

    // Cost.
    b += &cost_section(s);

    // Sequence diagram.
    b += "<h2 id=\"seq\">Message sequence diagram</h2>\n<p class=\"how\">Every message sent in a \
          short window around the first fault: arrows go from the sender's lifeline at the send \
          time to the receiver's at the delivery time. Hover an arrow for its kind and times.</p>\n";
    b += &figure(&seqdiag::sequence_diagram(
        &run.messages,
        &run.faults,
        &run.leaders,
        run.layout.nodes,
    ));

    // Faults.
    b += "<h2 id=\"faults\">Faults</h2>\n";
    if run.faults.is_empty() {
        b += &plots::note("No faults.");
    } else {
        let rows: Vec<Vec<String>> = run
            .faults
            .iter()
            .map(|f| {
                vec![
                    format!("{:.3}", f.time_ns as f64 / 1e9),
                    esc(&f.kind),
                    esc(&f.description),
                    f.nodes
                        .iter()
                        .map(|&n| endpoint_name(n, run.layout.nodes))
                        .collect::<Vec<_>>()
                        .join(" "),
                ]
            })
            .collect();
        b += &table(&["time (s)", "kind", "description", "nodes"], &rows);
    }
    html::page(&format!("quorumlab: {title}"), &b)
}

/// The cost section: messages and bytes per ok op, by kind.
fn cost_section(s: &Summary) -> String {
    let mut b = String::from(
        "<h2 id=\"cost\">Cost</h2>\n<p class=\"how\">Messages sent in the measured window per \
         ok op, by message kind (client requests and replies included), and bytes per ok op.</p>\n",
    );
    let mut kinds: Vec<(&String, &quorumlab_sim::KindStats)> = s.messages.by_kind.iter().collect();
    kinds.sort_by(|a, b| b.1.sent.cmp(&a.1.sent).then(a.0.cmp(b.0)));
    let ok = s.ops.ok;
    let per = |x: u64| {
        if ok > 0 {
            x as f64 / ok as f64
        } else {
            f64::NAN
        }
    };
    let items: Vec<(String, f64, plotters::style::RGBColor)> = kinds
        .iter()
        .enumerate()
        .map(|(i, (k, st))| ((*k).clone(), per(st.sent), style::category_color(i)))
        .collect();
    if ok == 0 {
        b += &plots::note("No ok ops in the measured window: costs per ok op are undefined.");
    } else {
        b += &figure(&plots::hbars(
            format!(
                "Messages per ok op by kind (total {:.2}; {:.0} bytes per ok op)",
                s.messages.per_ok_op, s.messages.bytes_per_ok_op
            ),
            "messages sent per ok op",
            &items,
            &|v| format!("{v:.2}"),
        ));
    }
    let mut rows: Vec<Vec<String>> = kinds
        .iter()
        .map(|(k, st)| {
            vec![
                esc(k),
                st.sent.to_string(),
                st.delivered.to_string(),
                st.dropped.to_string(),
                st.duplicated.to_string(),
                num(st.bytes as f64),
                num(per(st.sent)),
                num(per(st.bytes)),
            ]
        })
        .collect();
    rows.push(vec![
        "<b>total</b>".into(),
        s.messages.sent.to_string(),
        s.messages.delivered.to_string(),
        s.messages.dropped.to_string(),
        s.messages.duplicated.to_string(),
        num(s.messages.bytes as f64),
        num(per(s.messages.sent)),
        num(per(s.messages.bytes)),
    ]);
    b += &table(
        &[
            "kind",
            "sent",
            "delivered",
            "dropped",
            "duplicated",
            "bytes",
            "per ok op",
            "bytes per ok op",
        ],
        &rows,
    );
    b
}

/// The CSV files of a run, by file name.
pub fn run_csvs(run: &RunOutput, s: &Summary, m: &RunMetrics) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    out.push(("summary.csv", summary_csv(s)));

    let mut c = Csv::new(&[
        "process",
        "f",
        "key",
        "group",
        "invoke_ns",
        "complete_ns",
        "outcome",
        "error",
        "latency_us",
        "measured",
    ]);
    for o in pair_ops(&run.history) {
        let group = crate::metrics::key_group(o.key.as_deref(), &run.key_groups);
        c.row(&[
            o.process.to_string(),
            o.f.clone(),
            o.key.clone().unwrap_or_default(),
            group.map(|g| g.to_string()).unwrap_or_default(),
            o.invoke_ns.to_string(),
            o.complete_ns.map(|t| t.to_string()).unwrap_or_default(),
            match o.outcome {
                Some(quorumlab_kv::history::EventType::Ok) => "ok",
                Some(quorumlab_kv::history::EventType::Fail) => "fail",
                Some(quorumlab_kv::history::EventType::Info) => "info",
                _ => "",
            }
            .to_string(),
            o.error.clone().unwrap_or_default(),
            o.latency_ns()
                .map(|l| csv::num(l as f64 / 1000.0))
                .unwrap_or_default(),
            (o.invoke_ns >= run.measure_from_ns && o.invoke_ns < run.measure_to_ns).to_string(),
        ]);
    }
    out.push(("ops.csv", c.into_string()));

    let mut c = Csv::new(&[
        "bucket_start_s",
        "bucket_s",
        "ok",
        "fail",
        "fail_precondition",
        "info",
        "ok_share",
    ]);
    for bk in &m.timeline {
        c.row(&[
            csv::num(bk.start_ns as f64 / 1e9),
            csv::num(bucket_width_s(m, bk)),
            bk.ok.to_string(),
            bk.fail.to_string(),
            bk.fail_precondition.to_string(),
            bk.info.to_string(),
            csv::opt(bk.ok_share()),
        ]);
    }
    out.push(("timeline.csv", c.into_string()));

    let mut c = Csv::new(&[
        "f", "count", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us",
    ]);
    for (f, p) in &s.latency_us {
        c.row(&[
            f.clone(),
            p.count.to_string(),
            p.p50.to_string(),
            p.p90.to_string(),
            p.p99.to_string(),
            p.p999.to_string(),
            p.max.to_string(),
            csv::num(p.mean),
        ]);
    }
    out.push(("latency.csv", c.into_string()));

    out.push(("unavailability.csv", unavailability_csv(&s.protocol, s)));

    let mut c = Csv::new(&[
        "group",
        "bucket_start_s",
        "bucket_s",
        "ok",
        "completed",
        "ok_share",
    ]);
    for g in 0..m.heat.ok.len() {
        for bi in 0..m.heat.ok[g].len() {
            c.row(&[
                g.to_string(),
                csv::num(bi as f64 * m.heat.bucket_ns as f64 / 1e9),
                csv::num(m.heat.bucket_ns as f64 / 1e9),
                m.heat.ok[g][bi].to_string(),
                m.heat.completed[g][bi].to_string(),
                csv::opt(m.heat.share(g, bi)),
            ]);
        }
    }
    out.push(("groups.csv", c.into_string()));

    let mut c = Csv::new(&["time_s", "group", "leader", "term"]);
    for l in &run.leaders {
        c.row(&[
            csv::num(l.time_ns as f64 / 1e9),
            l.group.to_string(),
            l.leader
                .map(|n| endpoint_name(n, run.layout.nodes))
                .unwrap_or_default(),
            l.term.to_string(),
        ]);
    }
    out.push(("leaders.csv", c.into_string()));

    let mut c = Csv::new(&[
        "kind",
        "sent",
        "delivered",
        "dropped",
        "duplicated",
        "bytes",
        "per_ok_op",
        "bytes_per_ok_op",
    ]);
    let ok = s.ops.ok as f64;
    let per = |x: u64| {
        if ok > 0.0 {
            csv::num(x as f64 / ok)
        } else {
            String::new()
        }
    };
    for (k, st) in &s.messages.by_kind {
        c.row(&[
            k.clone(),
            st.sent.to_string(),
            st.delivered.to_string(),
            st.dropped.to_string(),
            st.duplicated.to_string(),
            st.bytes.to_string(),
            per(st.sent),
            per(st.bytes),
        ]);
    }
    out.push(("messages.csv", c.into_string()));

    let mut c = Csv::new(&["from", "to", "kind", "sent_ns", "delivered_ns"]);
    for msg in &run.messages {
        c.row(&[
            endpoint_name(msg.from, run.layout.nodes),
            endpoint_name(msg.to, run.layout.nodes),
            msg.kind.to_string(),
            msg.sent.to_string(),
            msg.delivered.map(|d| d.to_string()).unwrap_or_default(),
        ]);
    }
    out.push(("msglog.csv", c.into_string()));

    let mut c = Csv::new(&["start_s", "end_s", "kind", "label", "description"]);
    for f in &m.faults {
        c.row(&[
            csv::num(f.start_ns as f64 / 1e9),
            f.end_ns
                .map(|e| csv::num(e as f64 / 1e9))
                .unwrap_or_default(),
            f.kind.clone(),
            f.label.clone(),
            f.description.clone(),
        ]);
    }
    out.push(("faults.csv", c.into_string()));
    out
}

/// unavailability.csv rows of one run (also used by comparisons).
pub fn unavailability_csv(label: &str, s: &Summary) -> String {
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
    unavailability_rows(&mut c, label, s);
    c.into_string()
}

pub(crate) fn unavailability_rows(c: &mut Csv, label: &str, s: &Summary) {
    for u in &s.unavailability {
        c.row(&[
            label.to_string(),
            u.fault.clone(),
            u.kind.clone(),
            csv::num(u.start_s),
            csv::opt(u.end_s),
            u.affected_groups.len().to_string(),
            u.affected_keys.to_string(),
            csv::opt(u.to_first_ok_ms),
            csv::opt(u.to_all_groups_ok_ms),
            csv::opt(u.heal_to_recovery_ms),
        ]);
    }
}

/// Writes `report.html` and the CSV files of a run into `dir` (which holds summary.json).
/// Links `violation.html` when the run is not linearizable or the file exists.
pub fn write_run_files(dir: &Path, spec: &Spec, run: &RunOutput, s: &Summary) -> io::Result<()> {
    let m = RunMetrics::compute(run);
    for (name, text) in run_csvs(run, s, &m) {
        std::fs::write(dir.join(name), text)?;
    }
    let violation = (s.linearizable == serde_json::Value::Bool(false)
        || dir.join("violation.html").exists())
    .then_some("violation.html");
    std::fs::write(
        dir.join("report.html"),
        run_report_html(spec, run, s, &m, violation),
    )
}
