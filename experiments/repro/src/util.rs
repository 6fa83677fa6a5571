//! Shared helpers: specs, runs, checks, files, markdown.

use crate::{Error, Options};
use quorumlab_checker::{check_events, CheckOptions, Verdict};
use quorumlab_workloads::{run_named, RunOptions, RunOutput, Spec};
use std::path::PathBuf;
use std::time::Duration;

/// The spec every reproduction starts from: all defaults (5 nodes, one group), no faults.
pub fn base_spec(name: &str) -> Spec {
    let mut s = Spec::parse("", name, &[]).expect("the empty spec is valid");
    s.name = name.to_string();
    s
}

/// Runs `spec` under `protocol` with `seed` (the spec is validated first).
pub fn sim_run(protocol: &str, spec: &Spec, seed: u64) -> Result<RunOutput, Error> {
    spec.validate()
        .map_err(|(k, m)| Error::Run(format!("{}: `{k}`: {m}", spec.name)))?;
    run_named(protocol, spec, seed, RunOptions::default())
        .map_err(|e| Error::Run(format!("{} ({protocol}, seed {seed}): {e}", spec.name)))
}

/// The linearizability verdict of a run's history.
pub fn check(out: &RunOutput, budget_s: u64) -> Verdict {
    check_events(
        &out.history,
        &CheckOptions::with_timeout(Some(Duration::from_secs(budget_s))),
    )
    .verdict
}

pub fn verdict_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable => "not linearizable",
        _ => "unknown",
    }
}

/// Files written by one reproduction, under its output directory.
pub struct Files<'a> {
    pub opts: &'a Options,
    pub written: Vec<PathBuf>,
}

impl<'a> Files<'a> {
    pub fn new(opts: &'a Options) -> Self {
        Files {
            opts,
            written: Vec::new(),
        }
    }

    pub fn write(&mut self, name: &str, contents: &str) -> Result<PathBuf, Error> {
        let p = self.opts.out.join(name);
        std::fs::write(&p, contents).map_err(|e| Error::Io {
            path: p.clone(),
            source: e,
        })?;
        self.written.push(p.clone());
        Ok(p)
    }
}

/// A markdown document built line by line.
#[derive(Default)]
pub struct Md {
    pub text: String,
}

impl Md {
    pub fn new(title: &str) -> Self {
        let mut m = Md::default();
        m.text.push_str(&format!("# {title}\n\n"));
        m
    }
    pub fn h2(&mut self, s: &str) {
        self.text.push_str(&format!("## {s}\n\n"));
    }
    pub fn p(&mut self, s: &str) {
        self.text.push_str(s.trim_end());
        self.text.push_str("\n\n");
    }
    pub fn table<S: AsRef<str>>(&mut self, header: &[&str], rows: &[Vec<S>]) {
        let esc = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        self.text.push_str(&format!(
            "| {} |\n|{}\n",
            header.join(" | "),
            "---|".repeat(header.len())
        ));
        for r in rows {
            let cells: Vec<String> = r.iter().map(|c| esc(c.as_ref())).collect();
            self.text.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        self.text.push('\n');
    }
    pub fn img(&mut self, alt: &str, file: &str) {
        self.text.push_str(&format!("![{alt}]({file})\n\n"));
    }
    /// The standard header of every reproduction: command and scale.
    pub fn command(&mut self, opts: &Options, scale: &str) {
        self.p(&format!(
            "Produced by `{}` ({}). Every figure below comes from simulator runs made by that \
             command; nothing is copied from the source except the claims.",
            opts.command,
            if opts.quick {
                format!("**quick scale**: {scale}; the figures are not meant to be read")
            } else {
                format!("full scale: {scale}")
            }
        ));
    }
}

/// The q-quantile (0..=1) of sorted values (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// A number with up to `d` decimals, trailing zeros cut.
pub fn fmt(x: f64, d: usize) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let s = format!("{x:.d$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

pub fn pct(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    format!("{}%", fmt(x * 100.0, 1))
}
