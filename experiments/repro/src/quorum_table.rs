//! `quorum-table`: for n = 3, 5, 7, 9, 15 replicas and k of them unavailable, do strongly
//! consistent operations still succeed? Riak documents the number of allowable missing
//! replicas per n_val.

use crate::util::{base_spec, check, fmt, pct, sim_run, verdict_name, Files, Md};
use crate::{Error, Options, Produced};
use quorumlab_checker::Verdict;
use quorumlab_reports::csv::{num, Csv};
use quorumlab_reports::pair_ops;
use quorumlab_reports::plots::{sweep_lines, SweepLine};
use quorumlab_reports::style::category_color;
use quorumlab_sim::Latency;
use quorumlab_workloads::spec::{Fault, FaultAt};
use rayon::prelude::*;

/// Riak's documented allowable missing replicas per n_val.
fn riak_allowable(n: usize) -> usize {
    match n {
        3 => 1,
        5 => 2,
        7 => 3,
        9 => 4,
        15 => 7,
        _ => (n - 1) / 2,
    }
}

const CRASH_S: f64 = 8.0;
const WINDOW_FROM_S: f64 = 20.0;
const WINDOW_S: f64 = 10.0;

#[derive(Clone, Debug)]
struct Cell {
    protocol: &'static str,
    n: usize,
    k: usize,
    invoked: usize,
    answered: usize,
    verdict: Verdict,
}

impl Cell {
    fn share(&self) -> f64 {
        if self.invoked == 0 {
            0.0
        } else {
            self.answered as f64 / self.invoked as f64
        }
    }
    /// Strongly consistent operations "succeed": at least half the ops in the window got a
    /// definite answer (in practice it is all or nothing).
    fn available(&self) -> bool {
        self.share() >= 0.5
    }
}

fn one(protocol: &'static str, n: usize, k: usize) -> Result<Cell, Error> {
    let mut s = base_spec("reproduce quorum-table");
    s.cluster.nodes = n;
    s.cluster.replicas = n;
    s.cluster.groups = 1;
    s.network.latency = Latency::Normal {
        mean_ms: 1.0,
        sd_ms: 0.2,
    };
    s.workload.clients = 3;
    s.workload.keys = 10;
    s.workload.think_ms = 10.0;
    s.workload.timeout_ms = 1000.0;
    s.workload.warmup_s = WINDOW_FROM_S;
    s.workload.duration_s = WINDOW_S;
    // The first k servers crash together and stay down. (openraft always starts its leader on
    // n0, so for openraft the leader is among them whenever k >= 1.)
    s.faults = (0..k)
        .map(|i| FaultAt {
            at_s: CRASH_S,
            fault: Fault::Crash {
                node: format!("n{i}"),
                lose_unsynced: false,
            },
        })
        .collect();
    let out = sim_run(protocol, &s, 1)?;
    let ops: Vec<_> = pair_ops(&out.history)
        .into_iter()
        .filter(|o| o.invoke_ns >= out.measure_from_ns && o.invoke_ns < out.measure_to_ns)
        .collect();
    let answered = ops
        .iter()
        .filter(|o| o.is_ok() || o.is_precondition_fail())
        .count();
    Ok(Cell {
        protocol,
        n,
        k,
        invoked: ops.len(),
        answered,
        verdict: check(&out, 60),
    })
}

pub fn run(opts: &Options) -> Result<Produced, Error> {
    let ns: &[usize] = if opts.quick {
        &[3, 5]
    } else {
        &[3, 5, 7, 9, 15]
    };
    let protocols: &[&'static str] = if opts.quick {
        &["ensemble", "raft"]
    } else {
        &["ensemble", "raft", "openraft"]
    };
    let mut jobs = Vec::new();
    for &p in protocols {
        for &n in ns {
            for k in 0..=n.min(n / 2 + 2) {
                jobs.push((p, n, k));
            }
        }
    }
    let cells: Vec<Result<Cell, Error>> = jobs.par_iter().map(|&(p, n, k)| one(p, n, k)).collect();
    let cells: Vec<Cell> = cells.into_iter().collect::<Result<_, _>>()?;
    let mut files = Files::new(opts);

    let mut csv = Csv::new(&[
        "protocol",
        "n",
        "k_unavailable",
        "ops_invoked",
        "ops_answered",
        "answered_share",
        "available",
        "linearizable",
    ]);
    for c in &cells {
        csv.row(&[
            c.protocol.to_string(),
            c.n.to_string(),
            c.k.to_string(),
            c.invoked.to_string(),
            c.answered.to_string(),
            num(c.share()),
            c.available().to_string(),
            verdict_name(&c.verdict).to_string(),
        ]);
    }
    files.write("quorum-table.csv", &csv.into_string())?;

    // Per protocol: answered share against k, one line per n.
    for &p in protocols {
        let lines: Vec<SweepLine> = ns
            .iter()
            .enumerate()
            .map(|(i, &n)| SweepLine {
                label: format!("n = {n}"),
                color: category_color(i),
                points: cells
                    .iter()
                    .filter(|c| c.protocol == p && c.n == n)
                    .map(|c| (c.k as f64, c.share(), 0.0))
                    .collect(),
            })
            .collect();
        let svg = sweep_lines(
            format!("{p}: share of ops answered with k replicas down"),
            "k = replicas unavailable",
            "share of ops answered (ok or definite fail)",
            &lines,
            None,
            false,
        );
        files.write(&format!("quorum-table-{p}.svg"), &svg)?;
    }

    let max_ok = |p: &str, n: usize| -> String {
        let cs: Vec<&Cell> = cells
            .iter()
            .filter(|c| c.protocol == p && c.n == n)
            .collect();
        // The largest k up to which every smaller k also worked.
        let mut best: Option<usize> = None;
        for c in &cs {
            if c.available() && best.map_or(c.k == 0, |b| c.k == b + 1) {
                best = Some(c.k);
            }
        }
        match best {
            Some(b) => b.to_string(),
            None => "none".into(),
        }
    };
    let mut rows = Vec::new();
    let mut headline = Vec::new();
    for &n in ns {
        let mut r = vec![
            n.to_string(),
            (n / 2 + 1).to_string(),
            riak_allowable(n).to_string(),
        ];
        for &p in protocols {
            r.push(max_ok(p, n));
        }
        headline.push(format!(
            "n = {n:<2}: Riak allows {} missing; measured {}",
            riak_allowable(n),
            protocols
                .iter()
                .map(|p| format!("{p} {}", max_ok(p, n)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        rows.push(r);
    }
    let mut detail = Vec::new();
    for &n in ns {
        for k in 0..=n.min(n / 2 + 2) {
            let mut r = vec![n.to_string(), k.to_string()];
            for &p in protocols {
                let c = cells
                    .iter()
                    .find(|c| c.protocol == p && c.n == n && c.k == k)
                    .expect("every cell ran");
                r.push(format!(
                    "{} {} of {} ({}){}",
                    if c.available() { "✓" } else { "✗" },
                    c.answered,
                    c.invoked,
                    pct(c.share()),
                    if c.verdict == Verdict::Linearizable {
                        String::new()
                    } else {
                        format!(", {}", verdict_name(&c.verdict))
                    }
                ));
            }
            detail.push(r);
        }
    }
    let lin_all = cells.iter().all(|c| c.verdict == Verdict::Linearizable);

    let mut md = Md::new("Reproduction `quorum-table`: allowable missing replicas");
    md.command(
        opts,
        &format!(
            "n in {ns:?}, k = 0 .. n/2 + 2, protocols {}",
            protocols.join(", ")
        ),
    );
    md.h2("Claim");
    md.p(
        "The Riak documentation (strong consistency, \"fault tolerance\"): a strongly consistent \
          operation needs a quorum of the key's n_val replicas, `quorum = n/2 + 1`, so the \
          number of replicas that may be missing is: **n_val 3 → 1, 5 → 2, 7 → 3, 9 → 4, \
          15 → 7**.",
    );
    md.h2("Setup");
    md.p(&format!(
        "One group of n replicas on n servers (1 ms ± 0.2 ms links), 3 closed-loop clients on 10 \
         keys, a mixed read/write/cas/create/delete workload. At {CRASH_S} s the servers n0 .. \
         n(k−1) crash together and stay down; after a settling time (failover, including \
         riak_ensemble's follower timeout and election delay) the ops invoked from {WINDOW_FROM_S} \
         s to {} s are counted. *Answered* = `ok`, or `fail` with a false precondition (a \
         definite, strongly consistent answer); *available* = at least half the ops answered (in \
         practice the share is ~100% or 0%). Every run's history was also checked for \
         linearizability: {}.",
        WINDOW_FROM_S + WINDOW_S,
        if lin_all {
            "all linearizable"
        } else {
            "see the detail table"
        }
    ));
    md.h2("Result");
    let mut header = vec!["n", "quorum", "Riak: allowable missing"];
    let labels: Vec<String> = protocols.iter().map(|p| format!("measured: {p}")).collect();
    header.extend(labels.iter().map(String::as_str));
    md.table(&header, &rows);
    md.p(
        "*measured* = the largest k for which operations still succeed (and did for every \
          smaller k).",
    );
    md.h2("Detail: ops answered in the window, per k");
    let mut dh = vec!["n", "k down"];
    dh.extend(protocols.iter().copied());
    md.table(&dh, &detail);
    for &p in protocols {
        md.img(
            &format!("{p}: answered share against k"),
            &format!("quorum-table-{p}.svg"),
        );
    }
    md.p(&format!(
        "Data: `quorum-table.csv`. Scale note: one seed per cell; the outcome is a step from \
         ~100% to 0% exactly at k = n − quorum + 1, so more seeds would not move it. {}",
        fmt(cells.len() as f64, 0) + " simulator runs."
    ));
    let mdp = files.write("quorum-table.md", &md.text)?;
    Ok(Produced {
        markdown: mdp,
        files: files.written,
        headline,
    })
}
