//! `lease-drift`: the share of seeds with a linearizability violation as a function of the
//! leader's clock-rate error, for ensemble (faithful, lease_pr49) and raft (bounded and
//! unbounded lease; read_index as the control).
//!
//! The scenario that makes a stale lease read observable: at T the leader's clock starts to
//! run at `rate` × real time (a slow clock stretches its lease in real time), and the leader
//! is cut off from the other servers together with one client, c0; the other clients stay
//! with the majority. The majority elects a new leader and keeps writing; c0 can only reach
//! the old leader and keeps reading from it. A read the old leader serves after the majority
//! has acknowledged a newer write is a linearizability violation. The leader at T is found
//! by a probe run of the same spec and seed without faults (a run is a pure function of spec
//! and seed, so the two agree up to T).

use crate::util::{base_spec, check, fmt, sim_run, verdict_name, Files, Md};
use crate::{Error, Options, Produced};
use quorumlab_checker::Verdict;
use quorumlab_reports::csv::{num, Csv};
use quorumlab_reports::plots::{sweep_lines, SweepLine};
use quorumlab_reports::style::category_color;
use quorumlab_sim::Latency;
use quorumlab_workloads::spec::{Fault, FaultAt, Mix};
use quorumlab_workloads::Spec;
use rayon::prelude::*;

const T_S: f64 = 6.0;
const HEAL_S: f64 = 18.0;
const END_S: f64 = 20.0;

struct Variant {
    label: &'static str,
    protocol: &'static str,
    /// The clock rate below which a stale read becomes possible, by the protocol's own
    /// arithmetic (None: never / always).
    bound: &'static str,
    set: fn(&mut Spec),
}

fn variants() -> Vec<Variant> {
    use quorumlab_ensemble::Variant as E;
    use quorumlab_raft::{ReadMode as R, Variant as V};
    vec![
        Variant {
            label: "ensemble faithful (tick 500, lease 750, follower_timeout 3000)",
            protocol: "ensemble",
            bound: "lease / follower_timeout = 0.25 (the election delay adds margin)",
            set: |s| {
                s.protocol.ensemble.trust_lease = true;
                s.protocol.ensemble.variant = E::Faithful;
            },
        },
        Variant {
            label: "ensemble lease_pr49 (lease = tick·2/3 = 333, follower_timeout 1333)",
            protocol: "ensemble",
            bound: "lease / follower_timeout = 0.25",
            set: |s| {
                s.protocol.ensemble.trust_lease = true;
                s.protocol.ensemble.variant = E::LeasePr49;
            },
        },
        Variant {
            label: "raft lease, bounded (lease 120, vote refusal 150)",
            protocol: "raft",
            bound: "lease / election_timeout_min = 0.8",
            set: |s| {
                s.protocol.raft.read_mode = R::Lease;
                s.protocol.raft.variant = V::Faithful;
            },
        },
        Variant {
            label: "raft unbounded_lease",
            protocol: "raft",
            bound: "none: unsafe at any rate",
            set: |s| s.protocol.raft.variant = V::UnboundedLease,
        },
        Variant {
            label: "raft read_index (control, no lease)",
            protocol: "raft",
            bound: "none needed: safe at any rate",
            set: |s| {
                s.protocol.raft.read_mode = R::ReadIndex;
                s.protocol.raft.variant = V::Faithful;
            },
        },
    ]
}

fn spec(v: &Variant) -> Spec {
    let mut s = base_spec("reproduce lease-drift");
    s.cluster.nodes = 5;
    s.cluster.replicas = 5;
    s.network.latency = Latency::Normal {
        mean_ms: 1.0,
        sd_ms: 0.2,
    };
    s.workload.clients = 5;
    s.workload.keys = 2;
    s.workload.think_ms = 5.0;
    s.workload.mix = Mix {
        read: 70.0,
        write: 30.0,
        cas: 0.0,
        create: 0.0,
        delete: 0.0,
        add: 0.0,
    };
    s.workload.timeout_ms = 200.0;
    s.workload.warmup_s = 1.0;
    s.workload.duration_s = END_S - 1.0;
    (v.set)(&mut s);
    s
}

#[derive(Clone, Debug)]
struct Run {
    variant: usize,
    rate: f64,
    seed: u64,
    leader: Option<usize>,
    verdict: Option<Verdict>,
}

/// The leader of group 0 at T in a fault-free run.
fn probe(v: &Variant, seed: u64) -> Result<Option<usize>, Error> {
    let mut s = spec(v);
    s.workload.duration_s = T_S;
    let out = sim_run(v.protocol, &s, seed)?;
    let t = (T_S * 1e9) as u64;
    Ok(out
        .leaders
        .iter()
        .rfind(|l| l.group == 0 && l.time_ns <= t)
        .and_then(|l| l.leader))
}

fn one(v: &Variant, vi: usize, rate: f64, seed: u64, leader: Option<usize>) -> Result<Run, Error> {
    let Some(l) = leader else {
        return Ok(Run {
            variant: vi,
            rate,
            seed,
            leader,
            verdict: None,
        });
    };
    let mut s = spec(v);
    let others: Vec<String> = (0..5)
        .filter(|&i| i != l)
        .map(|i| format!("n{i}"))
        .collect();
    let mut majority = others.clone();
    majority.extend((1..5).map(|c| format!("c{c}")));
    s.faults = vec![
        FaultAt {
            at_s: T_S,
            fault: Fault::ClockRate {
                node: format!("n{l}"),
                rate,
            },
        },
        FaultAt {
            at_s: T_S,
            fault: Fault::Partition {
                groups: vec![vec![format!("n{l}"), "c0".into()], majority],
            },
        },
        FaultAt {
            at_s: HEAL_S,
            fault: Fault::Heal,
        },
    ];
    let out = sim_run(v.protocol, &s, seed)?;
    Ok(Run {
        variant: vi,
        rate,
        seed,
        leader,
        verdict: Some(check(&out, 60)),
    })
}

pub fn run(opts: &Options) -> Result<Produced, Error> {
    let vs = variants();
    let rates: Vec<f64> = if opts.quick {
        vec![1.0, 0.5, 0.1]
    } else {
        vec![
            1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05,
        ]
    };
    let seeds: u64 = if opts.quick { 2 } else { 20 };
    type Probe = Result<((usize, u64), Option<usize>), Error>;
    let probes: Vec<Probe> = (0..vs.len())
        .flat_map(|vi| (1..=seeds).map(move |s| (vi, s)))
        .collect::<Vec<_>>()
        .par_iter()
        .map(|&(vi, s)| probe(&vs[vi], s).map(|l| ((vi, s), l)))
        .collect();
    let probes: std::collections::BTreeMap<(usize, u64), Option<usize>> =
        probes.into_iter().collect::<Result<_, _>>()?;
    let mut jobs = Vec::new();
    for vi in 0..vs.len() {
        for &r in &rates {
            for s in 1..=seeds {
                jobs.push((vi, r, s));
            }
        }
    }
    let runs: Vec<Result<Run, Error>> = jobs
        .par_iter()
        .map(|&(vi, r, s)| one(&vs[vi], vi, r, s, probes[&(vi, s)]))
        .collect();
    let runs: Vec<Run> = runs.into_iter().collect::<Result<_, _>>()?;
    let mut files = Files::new(opts);

    let mut csv = Csv::new(&[
        "variant",
        "protocol",
        "clock_rate",
        "seed",
        "old_leader",
        "verdict",
    ]);
    for r in &runs {
        csv.row(&[
            vs[r.variant].label.to_string(),
            vs[r.variant].protocol.to_string(),
            num(r.rate),
            r.seed.to_string(),
            r.leader.map(|l| format!("n{l}")).unwrap_or_default(),
            r.verdict
                .as_ref()
                .map(|v| verdict_name(v).to_string())
                .unwrap_or("no leader at T".into()),
        ]);
    }
    files.write("lease-drift.csv", &csv.into_string())?;

    // Share of seeds with a violation, per variant and rate.
    let share = |vi: usize, rate: f64| -> (usize, usize, usize) {
        let rs: Vec<&Run> = runs
            .iter()
            .filter(|r| r.variant == vi && r.rate == rate && r.verdict.is_some())
            .collect();
        let bad = rs
            .iter()
            .filter(|r| r.verdict == Some(Verdict::NotLinearizable))
            .count();
        let unknown = rs
            .iter()
            .filter(|r| r.verdict == Some(Verdict::Unknown))
            .count();
        (bad, unknown, rs.len())
    };
    let mut lines = Vec::new();
    let mut rows = Vec::new();
    let mut headline = Vec::new();
    for (vi, v) in vs.iter().enumerate() {
        let mut pts = Vec::new();
        let mut row = vec![v.label.to_string(), v.bound.to_string()];
        let mut first_bad: Option<f64> = None;
        for &r in &rates {
            let (bad, unknown, n) = share(vi, r);
            let p = if n > 0 {
                bad as f64 / n as f64
            } else {
                f64::NAN
            };
            let ci = if n > 0 {
                1.96 * (p * (1.0 - p) / n as f64).sqrt()
            } else {
                0.0
            };
            if p.is_finite() {
                pts.push((r, p, ci));
            }
            if bad > 0 && first_bad.is_none() {
                first_bad = Some(r);
            }
            row.push(format!(
                "{bad}/{n}{}",
                if unknown > 0 {
                    format!(" (+{unknown} unknown)")
                } else {
                    String::new()
                }
            ));
        }
        headline.push(format!(
            "{:<68} first violation at rate {}",
            v.label,
            first_bad.map(|r| fmt(r, 2)).unwrap_or("none".into())
        ));
        rows.push(row);
        lines.push(SweepLine {
            label: v.label.to_string(),
            color: category_color(vi),
            points: pts,
        });
    }
    let svg = sweep_lines(
        "Share of seeds with a linearizability violation vs the old leader's clock rate",
        "clock rate of the old leader (× real time; log scale)",
        "share of seeds not linearizable",
        &lines,
        None,
        true,
    );
    files.write("lease-drift.svg", &svg)?;

    let mut md = Md::new("Reproduction `lease-drift`: leases against clock-rate error");
    md.command(
        opts,
        &format!("{seeds} seeds per (variant, rate), {} rates", rates.len()),
    );
    md.h2("Claims");
    md.p(
        "* riak_ensemble (`riak_ensemble_lease.erl`, the reference notes): the lease is safe \
          if clock *rates* differ by less than the margin between `lease_duration` and \
          `follower_timeout` (≈ 4× with the defaults: 750 ms vs 3 s); process pauses are not \
          covered. The historic default of PR #49 (lease = tick·2/3) is described as a source \
          of stale reads.\n\
          * Raft (Ongaro's thesis §6.4.1): lease reads are safe if the leader's lease is shorter \
          than the time the followers refuse to elect another leader, allowing for the clock \
          drift bound; here 120 ms against 150 ms, i.e. rates down to 0.8×. Without a bound \
          (`unbounded_lease`) a deposed leader serves stale reads whatever the clocks do.",
    );
    md.h2("Setup");
    md.p(&format!(
        "5 servers, 1 ms links, 5 clients on 2 keys (70% reads, 30% writes, 5 ms think time, \
         200 ms client timeout). At {T_S} s the leader's clock starts running at the given rate, \
         and the leader is partitioned from the other servers together with client c0 (c1..c4 \
         stay with the majority); heal at {HEAL_S} s, end at {END_S} s. The leader at {T_S} s is \
         found by a fault-free probe run of the same spec and seed. Verdict: the \
         linearizability checker on the whole history. Protocol parameters are the defaults \
         (riak_ensemble's and the raft crate's); nothing was tuned."
    ));
    md.h2("Result: seeds not linearizable / seeds run, per clock rate of the old leader");
    let mut header = vec![
        "variant".to_string(),
        "safe above (by its arithmetic)".to_string(),
    ];
    header.extend(rates.iter().map(|r| format!("×{}", fmt(*r, 2))));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    md.table(&header, &rows);
    md.img("violations against clock rate", "lease-drift.svg");
    md.p(
        "Data: `lease-drift.csv` (variant, rate, seed, the old leader, the verdict). A \
          violation needs a read served by the old leader after the new leader acknowledged a \
          write, so the share also depends on the workload; what matters is where it departs \
          from zero.",
    );
    let mdp = files.write("lease-drift.md", &md.text)?;
    Ok(Produced {
        markdown: mdp,
        files: files.written,
        headline,
    })
}
