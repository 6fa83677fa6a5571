//! Running a check and reporting it (JSON-ready).

use crate::config::{format_script, Mode, ModelCfg};
use crate::harness::{Act, KvModel, Proto, St};
use crate::trace::{self, Step};
use serde::Serialize;
use stateright::{Checker, Expectation, HasDiscoveries, Model, Path, UniformChooser};
use std::time::{Duration, Instant};

/// The verdict on one property.
#[derive(Clone, Debug, Serialize)]
pub struct PropertyReport {
    pub name: &'static str,
    /// always | sometimes
    pub expectation: &'static str,
    /// `holds` (exhaustive, or an example was found for a `sometimes` property),
    /// `holds_within_bounds` (no counterexample, search not exhaustive), `counterexample`
    /// (an `always` property fails), `unknown` (no example within bounds), `violated` (an
    /// exhaustive search found no example of a `sometimes` property).
    pub status: &'static str,
    /// Why it fails, in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The counterexample (or example) as a list of actions, warm-up included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Vec<Step>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example_length: Option<usize>,
    /// The numbered list, ready to print.
    #[serde(skip)]
    pub trace_text: Option<String>,
    /// The message sequence diagram of the counterexample.
    #[serde(skip)]
    pub svg: Option<String>,
}

/// The result of one run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub protocol: String,
    pub variant: String,
    pub config: ModelCfg,
    pub script: String,
    pub mode: &'static str,
    pub threads: usize,
    pub states: usize,
    pub unique_states: usize,
    /// Steps of the longest schedule explored (after the start schedule).
    pub depth: usize,
    pub seconds: f64,
    pub states_per_second: f64,
    /// Every state within the model's boundary was explored (no depth, state-count or time
    /// limit cut the search short, and it did not stop at a counterexample).
    pub exhaustive: bool,
    /// What ended the search.
    pub stopped_by: &'static str,
    /// Length of the warm-up schedule the search started after (0: cold start).
    pub warmup_steps: usize,
    pub properties: Vec<PropertyReport>,
}

impl Report {
    pub fn has_counterexample(&self) -> bool {
        self.properties.iter().any(|p| p.status == "counterexample")
    }

    pub fn property(&self, name: &str) -> Option<&PropertyReport> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// A human-readable summary (the CLI's default output).
    pub fn text(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!("model: {}\n", self.config));
        s.push_str(&format!(
            "search: {} with {} thread(s){}{}{}\n",
            self.mode,
            self.threads,
            self.config
                .depth
                .map_or(String::new(), |d| format!(", depth ≤ {d}")),
            self.config
                .max_states
                .map_or(String::new(), |d| format!(", ~{d} states")),
            if self.config.symmetry {
                ", symmetry reduction"
            } else {
                ""
            }
        ));
        s.push_str(&format!(
            "explored: {} states ({} unique), depth {}, {:.2} s, {:.0} states/s; {} ({})\n",
            self.states,
            self.unique_states,
            self.depth,
            self.seconds,
            self.states_per_second,
            if self.exhaustive {
                "exhaustive"
            } else {
                "not exhaustive"
            },
            self.stopped_by
        ));
        for p in &self.properties {
            s.push_str(&format!(
                "  {:<16} {:<9} {}{}\n",
                p.name,
                p.expectation,
                p.status,
                p.reason
                    .as_ref()
                    .map_or(String::new(), |r| format!(": {r}"))
            ));
        }
        for p in &self.properties {
            if p.status == "counterexample" {
                if let Some(t) = &p.trace_text {
                    s.push_str(&format!("\ncounterexample to {}:\n{t}", p.name));
                }
            }
        }
        s
    }
}

fn reason<P: Proto>(m: &KvModel<P>, name: &str, last: &St<P>) -> Option<String> {
    match name {
        "election safety" => m.leader_conflict(last).map(|(l, a, b)| {
            format!(
                "n{a} and n{b} both lead group {} in term/epoch {}",
                l.group, l.term
            )
        }),
        "linearizable" => Some("the history of client operations has no linearization".into()),
        "durability" => m.durability_error(last),
        _ => None,
    }
}

/// Runs the check described by `m.cfg`.
pub fn check<P: Proto>(m: KvModel<P>) -> Result<Report, String> {
    let cfg = m.cfg.clone();
    let warmup_steps = m.warmup.len();
    let symmetry = if cfg.symmetry {
        Some(P::symmetry(&cfg)?)
    } else {
        None
    };
    let mut b = m
        .checker()
        .threads(cfg.threads)
        .finish_when(HasDiscoveries::AnyFailures);
    if let Some(d) = cfg.depth {
        // stateright counts the initial state as depth 1 and neither checks nor expands a state
        // at the target depth: to check every schedule of up to `d` steps, aim at `d + 2`.
        b = b.target_max_depth(d + 2);
    }
    if let Some(n) = cfg.max_states {
        b = b.target_state_count(n);
    }
    if let Some(t) = cfg.timeout_secs {
        b = b.timeout(Duration::from_secs_f64(t));
    }
    if let Some(f) = symmetry {
        b = b.symmetry_fn(f);
    }
    let start = Instant::now();
    Ok(match cfg.mode {
        Mode::Bfs => finish(b.spawn_bfs().join(), &cfg, start, warmup_steps),
        Mode::Dfs => finish(b.spawn_dfs().join(), &cfg, start, warmup_steps),
        Mode::Simulate => finish(
            b.spawn_simulation(cfg.seed, UniformChooser).join(),
            &cfg,
            start,
            warmup_steps,
        ),
    })
}

fn finish<P: Proto, C: Checker<KvModel<P>>>(
    c: C,
    cfg: &ModelCfg,
    start: Instant,
    warmup_steps: usize,
) -> Report {
    let seconds = start.elapsed().as_secs_f64();
    let m = c.model();
    let discoveries = c.discoveries();
    let failures = discoveries
        .keys()
        .any(|k| m.property(k).expectation != Expectation::Sometimes);
    let raw_depth = c.max_depth();
    let unique = c.unique_state_count();
    let depth_cut = cfg.depth.is_some_and(|d| raw_depth >= d + 2);
    // Steps of the longest schedule explored (the initial state is stateright's depth 1).
    let depth = match cfg.depth {
        Some(d) => raw_depth.saturating_sub(1).min(d),
        None => raw_depth.saturating_sub(1),
    };
    let states_cut = cfg.max_states.is_some_and(|n| unique >= n);
    let time_cut = cfg.timeout_secs.is_some_and(|t| seconds >= t * 0.98);
    let stopped_by = if failures {
        "counterexample found"
    } else if cfg.mode == Mode::Simulate {
        if time_cut {
            "time budget (random walks)"
        } else {
            "random walks ended"
        }
    } else if time_cut {
        "time budget"
    } else if states_cut {
        "state-count target"
    } else if depth_cut {
        "depth bound"
    } else {
        "state space exhausted"
    };
    let exhaustive = stopped_by == "state space exhausted";
    let mut properties = Vec::new();
    for p in m.properties() {
        let found: Option<Path<St<P>, Act<P>>> = discoveries.get(p.name).cloned();
        let mut r = PropertyReport {
            name: p.name,
            expectation: match p.expectation {
                Expectation::Always => "always",
                Expectation::Sometimes => "sometimes",
                Expectation::Eventually => "eventually",
            },
            status: "holds",
            reason: None,
            counterexample: None,
            example_length: None,
            trace_text: None,
            svg: None,
        };
        match (p.expectation, found) {
            (Expectation::Sometimes, Some(path)) => {
                r.example_length = Some(path.into_actions().len() + warmup_steps);
            }
            (Expectation::Sometimes, None) => {
                r.status = if exhaustive { "violated" } else { "unknown" };
                r.reason = Some(if exhaustive {
                    "no reachable state has a completed operation".into()
                } else {
                    "no example found within the bounds".into()
                });
            }
            (_, Some(path)) => {
                let (full, last) = m.full_steps(path);
                let steps = trace::steps(m, &full, &last);
                r.status = "counterexample";
                r.reason = reason(m, p.name, &last);
                r.trace_text = Some(trace::text_with(m, &steps));
                r.svg = Some(trace::svg(m, &full, &last));
                r.counterexample = Some(steps);
            }
            (_, None) => {
                r.status = if exhaustive {
                    "holds"
                } else {
                    "holds_within_bounds"
                };
            }
        }
        properties.push(r);
    }
    Report {
        protocol: cfg.protocol.clone(),
        variant: cfg.variant.clone(),
        config: cfg.clone(),
        script: format_script(&cfg.script),
        mode: cfg.mode.name(),
        threads: cfg.threads,
        states: c.state_count(),
        unique_states: unique,
        depth,
        seconds,
        states_per_second: if seconds > 0.0 {
            c.state_count() as f64 / seconds
        } else {
            0.0
        },
        exhaustive,
        stopped_by,
        warmup_steps,
        properties,
    }
}
