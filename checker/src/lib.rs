//! quorumlab's linearizability checker.
//!
//! Tells whether what clients observed could have come from a single copy of the data: a KV
//! map with read / write / cas / create / delete / append, checked key by key
//! (P-compositionality) with Wing & Gong's search and Lowe's memoization, as in Porcupine.
//!
//! * [`read_history`] / [`parse_history`]: quorumlab JSONL and Jepsen / Knossos EDN;
//! * [`check_events`] / [`check_history`]: the check, keys in parallel, within a budget;
//! * [`CheckReport`]: verdicts, per-key results, violations, [`CheckReport::explain`],
//!   [`CheckReport::to_summary_value`];
//! * [`write_artifacts`]: `check.json` and, for a violation, `violation.html`;
//! * [`run_check_cli`]: the whole `quorumlab check` command.
//!
//! The rules (info ops, failed preconditions, dropped fails, null = absent, append) are in
//! docs/checker.md.

mod edn;
pub mod gen;
mod html;
mod input;
mod model;
mod prepare;
mod report;
mod search;
pub mod set;

pub use edn::{Edn, EdnError};
pub use input::{
    detect_format, parse_edn, parse_history, parse_jsonl, read_history, Format, History,
};
pub use prepare::HistoryStats;
pub use report::{CheckReport, KeyResult, OpOutcome, OpView, Verdict, Violation};
pub use set::{check_sets, SetCounts, SetKeyResult, SetReport};

use model::Model;
use prepare::{KeyOps, Locator, Prepared};
use quorumlab_kv::history::Event;
use rayon::prelude::*;
use search::{Budget, Found, SOp, Stats};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a history cannot be checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Bad syntax or an inconsistent history, at a 1-based line of the file.
    #[error("line {line}: {msg}")]
    Malformed { line: usize, msg: String },
    /// An inconsistent in-memory history (no line numbers): the event's position and index.
    #[error("event {position} (index {index}): {msg}")]
    InvalidEvent {
        position: usize,
        index: u64,
        msg: String,
    },
    #[error("{0}")]
    UnknownFormat(String),
}

/// How far to go.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Budget for the whole check; keys not decided by then are `unknown`.
    pub timeout: Option<Duration>,
    /// Budget for all search caches together (split evenly among the keys checked at the same
    /// time); a key whose cache outgrows its share is `unknown`. Default 4 GiB.
    pub memory_limit: Option<usize>,
    /// Worker threads for checking keys in parallel; `None` = rayon's global pool (one per
    /// core).
    pub threads: Option<usize>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            timeout: None,
            memory_limit: Some(4 << 30),
            threads: None,
        }
    }
}

impl CheckOptions {
    pub fn with_timeout(timeout: Option<Duration>) -> Self {
        CheckOptions {
            timeout,
            ..Default::default()
        }
    }
}

/// Checks a history of events (e.g. a simulated run's). Never fails: a history that cannot
/// be interpreted (a completion without invocation, an unknown `f`, …) gives an `unknown`
/// report whose `error` says why.
pub fn check_events(events: &[Event], opts: &CheckOptions) -> CheckReport {
    let start = Instant::now();
    match prepare::prepare(events, &Locator { lines: None }) {
        Ok(p) => check_prepared(p, opts, start),
        Err(e) => {
            let mut r = CheckReport::from_error(
                e.to_string(),
                HistoryStats {
                    events: events.len(),
                    ..Default::default()
                },
            );
            r.elapsed = start.elapsed();
            r
        }
    }
}

/// Checks a parsed history; an inconsistent history is an error naming its line.
pub fn check_history(h: &History, opts: &CheckOptions) -> Result<CheckReport, CheckError> {
    let start = Instant::now();
    let p = prepare::prepare(
        &h.events,
        &Locator {
            lines: Some(&h.lines),
        },
    )?;
    Ok(check_prepared(p, opts, start))
}

fn check_prepared(p: Prepared<'_>, opts: &CheckOptions, start: Instant) -> CheckReport {
    let deadline = opts.timeout.map(|t| start + t);
    let run = |threads: usize| -> Vec<(KeyResult, Option<Violation>)> {
        let budget = Budget {
            deadline,
            max_cache_bytes: opts.memory_limit.unwrap_or(usize::MAX) / threads.max(1),
        };
        // biggest keys first, so that one long key does not start last
        let mut order: Vec<usize> = (0..p.keys.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(p.keys[i].ops.len()));
        let mut out: Vec<(usize, (KeyResult, Option<Violation>))> = order
            .par_iter()
            .with_max_len(1)
            .map(|&i| (i, check_key(&p.keys[i], &budget)))
            .collect();
        out.sort_unstable_by_key(|x| x.0);
        out.into_iter().map(|x| x.1).collect()
    };
    let results = match opts.threads {
        Some(n) => match rayon::ThreadPoolBuilder::new().num_threads(n).build() {
            Ok(pool) => pool.install(|| run(n)),
            Err(_) => run(rayon::current_num_threads()),
        },
        None => run(rayon::current_num_threads()),
    };
    let mut report = CheckReport {
        verdict: Verdict::Linearizable,
        error: None,
        keys: results.len(),
        linearizable_keys: 0,
        not_linearizable_keys: 0,
        unknown_keys: 0,
        history: p.stats,
        results: Vec::with_capacity(results.len()),
        violations: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for (r, v) in results {
        match r.verdict {
            Verdict::Linearizable => report.linearizable_keys += 1,
            Verdict::NotLinearizable => report.not_linearizable_keys += 1,
            Verdict::Unknown => report.unknown_keys += 1,
        }
        report.results.push(r);
        report.violations.extend(v);
    }
    report.verdict = if report.not_linearizable_keys > 0 {
        Verdict::NotLinearizable
    } else if report.unknown_keys > 0 {
        Verdict::Unknown
    } else {
        Verdict::Linearizable
    };
    report.elapsed = start.elapsed();
    report
}

fn check_key(k: &KeyOps<'_>, budget: &Budget) -> (KeyResult, Option<Violation>) {
    let mut result = KeyResult {
        key: k.key.map(str::to_string),
        verdict: Verdict::Unknown,
        ops: k.ops.len(),
        steps: 0,
        cache_entries: 0,
        reason: None,
    };
    if budget.deadline.is_some_and(|d| Instant::now() >= d) {
        result.reason = Some("time budget exhausted before this key was checked".into());
        return (result, None);
    }
    let mut model = Model::new();
    let sops: Vec<SOp> = k
        .ops
        .iter()
        .map(|o| SOp {
            kind: model.kind_of(o),
            call: (o.call, o.call_pos),
            ret: o.ret.zip(o.ret_pos),
        })
        .collect();
    let kinds: Vec<model::Kind> = sops.iter().map(|o| o.kind).collect();
    let mut stats = Stats::default();
    let mut reason = None;
    let must: Vec<bool> = sops.iter().map(|o| o.ret.is_some()).collect();
    let found = match model.impossible_observation(&kinds, &must) {
        Some(op) => {
            reason = Some(format!(
                "it observed {}, a value no operation on this key could have produced",
                match model.to_json(match kinds[op] {
                    model::Kind::Read(x) | model::Kind::Cas(x, _) => x,
                    _ => model::ABSENT,
                }) {
                    serde_json::Value::Null => "nothing".to_string(),
                    v => v.to_string(),
                }
            ));
            Found::NotLinearizable {
                linearization: Vec::new(),
                failing: op as u32,
            }
        }
        None => search::check(&sops, &mut model, budget, &mut stats),
    };
    result.steps = stats.steps;
    result.cache_entries = stats.cache_entries;
    match found {
        Found::Linearizable => {
            result.verdict = Verdict::Linearizable;
            (result, None)
        }
        Found::Unknown(why) => {
            result.reason = Some(why);
            (result, None)
        }
        Found::NotLinearizable {
            linearization,
            failing,
        } => {
            result.verdict = Verdict::NotLinearizable;
            let mut state = model::ABSENT;
            let mut values_after = Vec::with_capacity(linearization.len());
            for &op in &linearization {
                state = model.step(state, sops[op as usize].kind).unwrap_or(state);
                values_after.push(model.to_json(state));
            }
            let ops = k
                .ops
                .iter()
                .enumerate()
                .map(|(id, o)| OpView {
                    id,
                    process: o.process.clone(),
                    f: o.f.to_string(),
                    value: if o.fun == prepare::Fun::Read {
                        o.output.clone()
                    } else {
                        o.input.clone()
                    },
                    outcome: match o.outcome {
                        prepare::Outcome::Ok => OpOutcome::Ok,
                        prepare::Outcome::Info => OpOutcome::Info,
                        prepare::Outcome::PreconditionFailed => OpOutcome::PreconditionFailed,
                    },
                    invoke_time: o.call,
                    complete_time: o.ret,
                    invoke_index: o.call_index,
                    complete_index: o.ret_index,
                })
                .collect();
            let v = Violation {
                key: result.key.clone(),
                ops,
                failing_op: (failing != u32::MAX).then_some(failing as usize),
                reason,
                linearization: linearization.iter().map(|&x| x as usize).collect(),
                values_after,
                value_before_failing_op: model.to_json(state),
            };
            (result, Some(v))
        }
    }
}

/// Writes `check.json` and, when a key is not linearizable, `violation.html` into `dir`
/// (created if needed). Returns the paths written.
pub fn write_artifacts(report: &CheckReport, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    let json = dir.join("check.json");
    let mut text = report.to_json_string();
    text.push('\n');
    std::fs::write(&json, text)?;
    out.push(json);
    if !report.violations.is_empty() {
        let page = dir.join("violation.html");
        std::fs::write(&page, html::violation_page(report))?;
        out.push(page);
    }
    Ok(out)
}

/// The self-contained HTML page for a report's violations (what `violation.html` holds).
pub fn violation_html(report: &CheckReport) -> String {
    html::violation_page(report)
}

/// The whole `quorumlab check HISTORY [--format jsonl|edn] [--out DIR] [--timeout S]`
/// command: reads and checks the history, prints the explanation to stdout, writes the
/// artifacts to `out`, prints any error as one line to stderr, and returns the exit code:
/// 0 linearizable, 1 not linearizable, 2 bad input (or artifacts that cannot be written),
/// 3 unknown.
pub fn run_check_cli(
    path: &Path,
    format: Option<Format>,
    out: Option<&Path>,
    timeout: Option<Duration>,
) -> i32 {
    let start = Instant::now();
    let history = match read_history(path, format) {
        Ok(h) => h,
        Err(e @ CheckError::Io { .. }) => {
            eprintln!("error: {e}");
            return 2;
        }
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return 2;
        }
    };
    let opts = CheckOptions::with_timeout(timeout.map(|t| t.saturating_sub(start.elapsed())));
    let mut report = match check_history(&history, &opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return 2;
        }
    };
    drop(history);
    report.elapsed = start.elapsed();
    print!("{}", report.explain());
    if let Some(dir) = out {
        match write_artifacts(&report, dir) {
            Ok(paths) => {
                for p in paths {
                    println!("wrote {}", p.display());
                }
            }
            Err(e) => {
                eprintln!("error: cannot write results to {}: {e}", dir.display());
                return 2;
            }
        }
    }
    report.exit_code()
}
