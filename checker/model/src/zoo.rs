//! The bug zoo: every variant of every protocol with the configuration that shows it, and what
//! the model checker is expected to find there. Variants whose flaw only exists in time (leases)
//! are shown in the timed simulator instead ([`crate::lease`]).

use crate::config::ModelCfg;
use crate::lease::{self, LeaseRun};
use serde::Serialize;

/// What a zoo entry expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "property")]
pub enum Expect {
    /// The model checker finds a counterexample to this property.
    Caught(&'static str),
    /// No counterexample (the faithful protocol, as a control).
    Holds,
    /// Not a flaw the untimed model can show: see the simulator runs.
    TimeOnly,
}

/// One entry.
#[derive(Clone, Debug)]
pub struct Entry {
    pub protocol: &'static str,
    pub variant: &'static str,
    /// A short label for the configuration.
    pub label: &'static str,
    pub flaw: &'static str,
    pub expect: Expect,
    /// Takes more than ~10 s or ~2 GB: run by the full zoo test only.
    pub heavy: bool,
    pub cfg: fn() -> ModelCfg,
}

fn d(p: &str, v: &str) -> ModelCfg {
    crate::defaults(p, v).expect("known variant")
}

/// The schedule that makes n0 lead epoch 1 with n1's acknowledgement only: n1 has adopted
/// epoch 1 in memory (prefollow → following), n2 has not heard of it yet.
pub const PREFOLLOW_WINDOW: &[&str] = &[
    "deliver n0 → n1: probe",
    "deliver n1 → n0: probe",
    "deliver n1 → n0: reply",
    "deliver n0 → n1: reply",
    "timeout n0: State",
    "deliver n0 → n1: prepare",
    "deliver n1 → n0: reply",
    "deliver n0 → n1: new_epoch",
    "deliver n1 → n0: reply",
];

/// The open question's configuration: faithful riak_ensemble, no clients, one crash, epochs up
/// to 1, starting from the prefollow window; the search chooses when (and whom) to crash.
pub fn open_question() -> ModelCfg {
    let mut c = d("ensemble", "faithful");
    c.clients = 0;
    c.script.clear();
    c.crashes = 1;
    c.max_term = 1;
    c.max_rounds = 4;
    c.warmup = false;
    c.depth = None;
    c.prefix = PREFOLLOW_WINDOW.iter().map(|s| s.to_string()).collect();
    c.timeout_secs = Some(300.0);
    c
}

/// The open question with the crash of n1 given as well (the search finds the rest).
pub fn open_question_after_crash() -> ModelCfg {
    let mut c = open_question();
    c.prefix.push("reboot n1".into());
    c
}

/// Every entry, raft first.
pub fn entries() -> Vec<Entry> {
    vec![
        Entry {
            protocol: "raft",
            variant: "faithful",
            label: "default",
            flaw: "none (control)",
            expect: Expect::Holds,
            heavy: false,
            cfg: || d("raft", "faithful"),
        },
        Entry {
            protocol: "raft",
            variant: "volatile_vote",
            label: "default",
            flaw: "term and vote not restored after a restart: a server votes twice in one term",
            expect: Expect::Caught("election safety"),
            heavy: false,
            cfg: || d("raft", "volatile_vote"),
        },
        Entry {
            protocol: "raft",
            variant: "commit_prior_term",
            label: "default",
            flaw: "a leader counts replicas of an earlier term's entry as a commit (Figure 8)",
            expect: Expect::Caught("durability"),
            heavy: false,
            cfg: || d("raft", "commit_prior_term"),
        },
        Entry {
            protocol: "raft",
            variant: "unbounded_lease",
            label: "default (lease reads)",
            flaw: "lease reads without the clock bound",
            expect: Expect::TimeOnly,
            heavy: false,
            cfg: || d("raft", "unbounded_lease"),
        },
        Entry {
            protocol: "raft",
            variant: "faithful",
            label: "--lease, same schedule (teaching case)",
            flaw: "none: lease reads are safe only under bounded clock drift",
            expect: Expect::Caught("linearizable"),
            heavy: false,
            cfg: || {
                let mut c = d("raft", "unbounded_lease");
                c.variant = "faithful".into();
                c
            },
        },
        Entry {
            protocol: "raft",
            variant: "faithful",
            label: "read_index, same schedule (control)",
            flaw: "none (control for the teaching case)",
            expect: Expect::Holds,
            heavy: false,
            cfg: || {
                let mut c = d("raft", "unbounded_lease");
                c.variant = "faithful".into();
                c.lease_reads = false;
                c
            },
        },
        Entry {
            protocol: "ensemble",
            variant: "faithful",
            label: "default",
            flaw: "none (control)",
            expect: Expect::Holds,
            heavy: false,
            cfg: || d("ensemble", "faithful"),
        },
        Entry {
            protocol: "ensemble",
            variant: "faithful",
            label: "prefollow window, then n1 crashes (open question)",
            flaw: "a new epoch is adopted in memory only until the first commit",
            expect: Expect::Caught("election safety"),
            heavy: false,
            cfg: open_question_after_crash,
        },
        Entry {
            protocol: "ensemble",
            variant: "faithful",
            label: "prefollow window, crash searched (open question)",
            flaw: "a new epoch is adopted in memory only until the first commit",
            expect: Expect::Caught("election safety"),
            heavy: true,
            cfg: open_question,
        },
        Entry {
            protocol: "ensemble",
            variant: "lease_pr49",
            label: "default",
            flaw: "lease = tick·2/3 (before PR #49)",
            expect: Expect::TimeOnly,
            heavy: false,
            cfg: || d("ensemble", "lease_pr49"),
        },
        Entry {
            protocol: "ensemble",
            variant: "volatile_fact",
            label: "default (n1, n2 reboot)",
            flaw: "the fact (epoch, leader) is never saved",
            expect: Expect::Caught("election safety"),
            heavy: false,
            cfg: || d("ensemble", "volatile_fact"),
        },
        Entry {
            protocol: "ensemble",
            variant: "faithful",
            label: "n1, n2 reboot (control)",
            flaw: "none (control for volatile_fact)",
            expect: Expect::Holds,
            heavy: false,
            cfg: || {
                let mut c = d("ensemble", "volatile_fact");
                c.variant = "faithful".into();
                c.depth = Some(14);
                c
            },
        },
        Entry {
            protocol: "ensemble",
            variant: "volatile_fact",
            label: "reboots searched",
            flaw: "the fact (epoch, leader) is never saved",
            expect: Expect::Caught("election safety"),
            heavy: true,
            cfg: || {
                let mut c = d("ensemble", "volatile_fact");
                c.prefix.clear();
                c
            },
        },
        Entry {
            protocol: "ensemble",
            variant: "skip_rewrite",
            label: "default (given 39-step start)",
            flaw: "a read of a non-fresh key answers from a quorum without rewriting it",
            expect: Expect::Caught("linearizable"),
            heavy: false,
            cfg: || d("ensemble", "skip_rewrite"),
        },
        Entry {
            protocol: "ensemble",
            variant: "faithful",
            label: "same start as skip_rewrite (control)",
            flaw: "none (control for skip_rewrite)",
            expect: Expect::Holds,
            heavy: false,
            cfg: || {
                let mut c = d("ensemble", "skip_rewrite");
                c.variant = "faithful".into();
                c.depth = Some(10);
                c
            },
        },
    ]
}

/// The result of one entry.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub protocol: &'static str,
    pub variant: &'static str,
    pub label: &'static str,
    pub flaw: &'static str,
    pub expect: Expect,
    pub config: String,
    /// Properties with a counterexample.
    pub found: Vec<&'static str>,
    /// Length of the first counterexample (start schedule included) and of its searched part.
    pub trace_steps: Option<usize>,
    pub searched_steps: Option<usize>,
    pub states: usize,
    pub unique_states: usize,
    pub seconds: f64,
    pub exhaustive: bool,
    /// Whether the finding matches the expectation.
    pub as_expected: bool,
}

/// Runs one entry.
pub fn run(e: &Entry) -> Result<Row, String> {
    let cfg = (e.cfg)();
    let config = cfg.to_string();
    let r = crate::check(cfg)?;
    let found: Vec<&'static str> = r
        .properties
        .iter()
        .filter(|p| p.status == "counterexample")
        .map(|p| p.name)
        .collect();
    let first = r.properties.iter().find_map(|p| p.counterexample.as_ref());
    let as_expected = match e.expect {
        Expect::Caught(p) => found.contains(&p),
        Expect::Holds => found.is_empty(),
        // The untimed model cannot tell: whatever it finds is expected.
        Expect::TimeOnly => true,
    };
    Ok(Row {
        protocol: e.protocol,
        variant: e.variant,
        label: e.label,
        flaw: e.flaw,
        expect: e.expect,
        config,
        found,
        trace_steps: first.map(Vec::len),
        searched_steps: first.map(|s| s.iter().filter(|x| !x.warmup).count()),
        states: r.states,
        unique_states: r.unique_states,
        seconds: r.seconds,
        exhaustive: r.exhaustive,
        as_expected,
    })
}

/// The simulator runs that show the time-only entries (and the faithful leases).
pub fn timed() -> Result<Vec<LeaseRun>, String> {
    lease::all()
}
