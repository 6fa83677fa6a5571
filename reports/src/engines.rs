//! Simulation versus real network (`quorumlab compare --engines sim,real`): per protocol, the
//! simulated run and the real run of the same spec overlaid: latency CDF, throughput and
//! availability over time, and the headline figures side by side. Writes `engines.json` and
//! `report.html`.

use crate::compare::CompareRun;
use crate::html::{self, esc, figure, table};
use crate::plots;
use crate::run_report;
use crate::style;
use plotters::style::RGBColor;
use quorumlab_workloads::Spec;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// One protocol under both engines.
pub struct EnginePair {
    pub protocol: String,
    pub sim: CompareRun,
    pub real: CompareRun,
}

/// The simulated run is drawn grey, the real one in the protocol's color.
const SIM: RGBColor = RGBColor(0x9a, 0x9a, 0x9a);

fn headline(r: &CompareRun) -> serde_json::Value {
    let s = &r.summary;
    let all = s.latency_us.get("all").cloned().unwrap_or_default();
    serde_json::json!({
        "dir": r.dir,
        "ok_per_s": s.throughput_ok_per_s,
        "p50_us": all.p50,
        "p99_us": all.p99,
        "p999_us": all.p999,
        "ok_fraction": s.availability.ok_fraction,
        "longest_gap_ms": s.availability.longest_gap_ms,
        "linearizable": s.linearizable,
    })
}

/// engines.json: per protocol, both runs' headline figures.
pub fn engines_json(spec: &Spec, seed: u64, pairs: &[EnginePair]) -> String {
    let v = serde_json::json!({
        "quorumlab_engines": 1,
        "spec": spec.name,
        "seed": seed,
        "protocols": pairs.iter().map(|p| serde_json::json!({
            "protocol": p.protocol,
            "sim": headline(&p.sim),
            "real": headline(&p.real),
        })).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&v).expect("json") + "\n"
}

/// The page.
pub fn engines_html(spec: &Spec, seed: u64, pairs: &[EnginePair], network: &str) -> String {
    let mut b = String::new();
    let name = spec.display_name();
    let _ = writeln!(
        b,
        "<h1>Simulation versus real network · {} · seed {seed}</h1>",
        esc(name)
    );
    let _ = writeln!(
        b,
        "<p class=\"sub\">The same spec, workload and fault schedule in the simulator (grey) and \
         as real processes over TCP (protocol color). Simulator network model: {}. Each run \
         directory (<code>P/sim</code>, <code>P/real</code>) has its own report; \
         <a href=\"engines.json\">engines.json</a> has the figures below. Real runs take \
         wall-clock time; their timelines start when the workload starts.</p>",
        esc(network)
    );
    let mut rows = Vec::new();
    for p in pairs {
        for (engine, r) in [("sim", &p.sim), ("real", &p.real)] {
            let s = &r.summary;
            let all = s.latency_us.get("all").cloned().unwrap_or_default();
            rows.push(vec![
                html::protocol_tag(&p.protocol),
                engine.to_string(),
                html::num(s.throughput_ok_per_s),
                html::us(all.p50),
                html::us(all.p99),
                html::us(all.p999),
                format!("{:.1}%", s.availability.ok_fraction * 100.0),
                html::ms(s.availability.longest_gap_ms),
                html::verdict(&s.linearizable, None),
                format!("<a href=\"{0}/report.html\">{0}</a>", esc(&r.dir)),
            ]);
        }
    }
    b += &table(
        &[
            "protocol",
            "engine",
            "ok ops/s",
            "p50",
            "p99",
            "p999",
            "ok share",
            "longest gap",
            "linearizable",
            "run",
        ],
        &rows,
    );
    for p in pairs {
        let color = style::protocol_color(&p.protocol);
        let _ = writeln!(
            b,
            "<h2 id=\"{0}\">{1}</h2>",
            esc(&p.protocol),
            html::protocol_tag(&p.protocol)
        );
        let runs = [("sim", SIM, &p.sim), ("real", color, &p.real)];
        let cdf: Vec<plots::Series> = runs
            .iter()
            .map(|(e, c, r)| {
                (
                    format!("{} {e}", p.protocol),
                    *c,
                    r.metrics.cdf.get("all").cloned().unwrap_or_default(),
                )
            })
            .collect();
        b += &figure(&plots::cdf(
            format!("{}: latency CDF of ok ops, sim vs real", p.protocol),
            &cdf,
            300,
        ));
        let span_ns = p.sim.metrics.span_ns.max(p.real.metrics.span_ns);
        let mut axis = run_report::time_axis(&p.sim.metrics, true);
        axis.span_s = span_ns as f64 / 1e9;
        let rate: Vec<_> = runs
            .iter()
            .map(|(e, c, r)| {
                (
                    format!("{} {e}", p.protocol),
                    *c,
                    run_report::ok_rate_series(&r.metrics),
                )
            })
            .collect();
        let top = rate
            .iter()
            .flat_map(|s| s.2.iter().filter_map(|x| x.1))
            .fold(0.0, f64::max)
            * 1.1;
        b += &figure(&plots::time_lines(
            format!("{}: ok completions per second, sim vs real", p.protocol),
            "ok ops/s",
            &rate,
            &axis,
            (0.0, top.max(1.0)),
            false,
            200,
        ));
        let share: Vec<_> = runs
            .iter()
            .map(|(e, c, r)| {
                (
                    format!("{} {e}", p.protocol),
                    *c,
                    run_report::share_series(&r.metrics),
                )
            })
            .collect();
        b += &figure(&plots::time_lines(
            format!("{}: availability (ok / completed), sim vs real", p.protocol),
            "ok / completed",
            &share,
            &axis,
            (0.0, 1.02),
            true,
            180,
        ));
    }
    html::page(&format!("sim vs real · {name}"), &b)
}

/// Writes engines.json and report.html into `dir`.
pub fn write_engines(
    dir: &Path,
    spec: &Spec,
    seed: u64,
    pairs: &[EnginePair],
    network: &str,
) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("engines.json"), engines_json(spec, seed, pairs))?;
    std::fs::write(
        dir.join("report.html"),
        engines_html(spec, seed, pairs, network),
    )
}
