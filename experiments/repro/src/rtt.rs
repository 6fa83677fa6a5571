//! `rtt`: round trips per operation for every protocol, op type and read mode, under constant
//! latency, against theory.
//!
//! Every link (server-server and client-server) has the same constant one-way latency d, so an
//! op's latency is an exact multiple of the round trip 2d. One closed-loop client, one op at a
//! time, so nothing queues. The client's own round trip to the leader is subtracted: what is
//! left is the protocol's quorum round trips. Two leader crashes force term/epoch changes, so
//! the first op on each key after a change (riak_ensemble's "not fresh" path) is measured too.

use crate::util::{base_spec, fmt, pct, sim_run, Files, Md};
use crate::{Error, Options, Produced};
use quorumlab_kv::history::EventType;
use quorumlab_reports::csv::{num, Csv};
use quorumlab_reports::pair_ops;
use quorumlab_reports::plots::hbars;
use quorumlab_reports::style::protocol_color;
use quorumlab_sim::Latency;
use quorumlab_workloads::spec::{Fault, FaultAt, Mix};
use quorumlab_workloads::Spec;
use rayon::prelude::*;
use std::collections::BTreeMap;

/// One-way latency of every link, ms.
const D_MS: f64 = 10.0;

struct Variant {
    label: &'static str,
    protocol: &'static str,
    set: fn(&mut Spec),
}

fn variants() -> Vec<Variant> {
    use quorumlab_openraft::ReadMode as O;
    use quorumlab_raft::ReadMode as R;
    vec![
        Variant {
            label: "single",
            protocol: "single",
            set: |_| {},
        },
        Variant {
            label: "ensemble, lease (trust_lease = true)",
            protocol: "ensemble",
            set: |s| s.protocol.ensemble.trust_lease = true,
        },
        Variant {
            label: "ensemble, no lease (trust_lease = false)",
            protocol: "ensemble",
            set: |s| s.protocol.ensemble.trust_lease = false,
        },
        Variant {
            label: "raft, read_mode = log",
            protocol: "raft",
            set: |s| s.protocol.raft.read_mode = R::Log,
        },
        Variant {
            label: "raft, read_mode = read_index",
            protocol: "raft",
            set: |s| s.protocol.raft.read_mode = R::ReadIndex,
        },
        Variant {
            label: "raft, read_mode = lease",
            protocol: "raft",
            set: |s| s.protocol.raft.read_mode = R::Lease,
        },
        Variant {
            label: "openraft, read_policy = log",
            protocol: "openraft",
            set: |s| s.protocol.openraft.read_policy = O::Log,
        },
        Variant {
            label: "openraft, read_policy = read_index",
            protocol: "openraft",
            set: |s| s.protocol.openraft.read_policy = O::ReadIndex,
        },
        Variant {
            label: "openraft, read_policy = lease_read",
            protocol: "openraft",
            set: |s| s.protocol.openraft.read_policy = O::LeaseRead,
        },
    ]
}

/// Theory: quorum round trips (after the client's own round trip) for (variant, op, phase).
fn theory(v: &Variant, f: &str, first: bool) -> &'static str {
    let lease = v.label.contains("lease") && !v.label.contains("no lease");
    match (v.protocol, f) {
        ("single", _) => "0 (no replication)",
        ("ensemble", "read") if first => {
            "2 (not fresh: quorum read, then rewrite); 1 if absent everywhere (nothing to rewrite)"
        }
        ("ensemble", "read") if lease => "0 (fresh, lease valid)",
        ("ensemble", "read") => "1 (check_epoch)",
        ("ensemble", "write" | "delete") => "1 (kover: stamp and write to a quorum)",
        ("ensemble", _) if first => {
            "3 (not fresh: read, rewrite, then the conditional write); 2 if absent everywhere"
        }
        ("ensemble", _) => "1 (fresh: check locally, write to a quorum)",
        (_, "read") if lease => "0 (lease)",
        (_, "read") => "1 (heartbeat round or log entry)",
        _ => "1 (append to a majority)",
    }
}

#[derive(Clone, Debug)]
struct Sample {
    f: String,
    first: bool,
    invoke_s: f64,
    latency_ms: f64,
}

impl Sample {
    /// Quorum round trips: latency in round trips minus the client's own.
    fn rtts(&self) -> f64 {
        self.latency_ms / (2.0 * D_MS) - 1.0
    }
}

fn spec(quick: bool) -> Spec {
    let mut s = base_spec("reproduce rtt");
    s.cluster.nodes = 5;
    s.cluster.replicas = 5;
    s.network.latency = Latency::Constant { ms: D_MS };
    s.workload.clients = 1;
    s.workload.think_ms = 30.0;
    s.workload.keys = 30;
    s.workload.mix = Mix {
        read: 20.0,
        write: 20.0,
        cas: 20.0,
        create: 20.0,
        delete: 20.0,
        add: 0.0,
    };
    s.workload.warmup_s = 5.0;
    s.workload.duration_s = if quick { 35.0 } else { 75.0 };
    s.workload.timeout_ms = 2000.0;
    // Two leader crashes (each crashed server restarts later; restarting an up server is a
    // no-op, so every server is named): each forces a new term/epoch.
    let mut faults = Vec::new();
    let crashes: &[(f64, f64)] = if quick {
        &[(15.0, 27.0)]
    } else {
        &[(20.0, 32.0), (50.0, 62.0)]
    };
    for &(c, r) in crashes {
        faults.push(FaultAt {
            at_s: c,
            fault: Fault::Crash {
                node: "leader".into(),
                lose_unsynced: false,
            },
        });
        for n in 0..5 {
            faults.push(FaultAt {
                at_s: r,
                fault: Fault::Restart {
                    node: format!("n{n}"),
                },
            });
        }
    }
    s.faults = faults;
    s
}

/// Runs one variant and classifies its ok ops.
fn measure(v: &Variant, quick: bool) -> Result<Vec<Sample>, Error> {
    let mut s = spec(quick);
    (v.set)(&mut s);
    let out = sim_run(v.protocol, &s, 1)?;
    // Times at which a leader (new term/epoch) was established.
    let changes: Vec<u64> = out
        .leaders
        .iter()
        .filter(|l| l.leader.is_some())
        .map(|l| l.time_ns)
        .collect();
    let crashes: Vec<u64> = out
        .faults
        .iter()
        .filter(|f| f.kind == "crash")
        .map(|f| f.time_ns)
        .collect();
    let mut ops = pair_ops(&out.history);
    ops.sort_by_key(|o| o.invoke_ns);
    let mut last_ok: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen_change: Option<u64> = None;
    let mut samples = Vec::new();
    for o in &ops {
        let change = changes.iter().copied().filter(|&c| c <= o.invoke_ns).max();
        // The first op after a leader change also carries the client's search for the new
        // leader (redirects, a timeout on the old one): not a protocol round trip.
        let client_first = change.is_some() && change != seen_change;
        seen_change = change;
        // During a failover (crash .. next leader) nothing is measured.
        let in_failover = crashes
            .iter()
            .any(|&c| o.invoke_ns >= c && change.is_none_or(|ch| ch < c));
        let key = o.key.clone().unwrap_or_default();
        let first = match (change, last_ok.get(&key)) {
            (Some(ch), Some(&t)) => t < ch,
            (_, None) => true,
            (None, Some(_)) => false,
        };
        // Any definite answer (ok, or a fail such as a false precondition) went through the
        // leader's read/rewrite path, so the key is fresh afterwards.
        if matches!(o.outcome, Some(EventType::Ok | EventType::Fail)) {
            if let Some(c) = o.complete_ns {
                last_ok.insert(key.clone(), c);
            }
        }
        let measured = o.invoke_ns >= out.measure_from_ns && o.invoke_ns < out.measure_to_ns;
        let lat = o.latency_ns().map(|l| l as f64 / 1e6);
        if !measured || client_first || in_failover || o.outcome != Some(EventType::Ok) {
            continue;
        }
        let Some(latency_ms) = lat else { continue };
        if latency_ms > 20.0 * 2.0 * D_MS {
            continue;
        }
        samples.push(Sample {
            f: o.f.clone(),
            first,
            invoke_s: o.invoke_ns as f64 / 1e9,
            latency_ms,
        });
    }
    Ok(samples)
}

/// "1 (97%), 3 (3%)" over rounded round trips; and the median.
fn describe(xs: &[f64]) -> (String, f64) {
    if xs.is_empty() {
        return ("no ops".into(), f64::NAN);
    }
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for x in xs {
        *counts.entry(x.round() as i64).or_default() += 1;
    }
    let n = xs.len() as f64;
    let parts: Vec<String> = counts
        .iter()
        .map(|(k, c)| format!("{k} ({})", pct(*c as f64 / n)))
        .collect();
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let med = crate::util::quantile(&s, 0.5);
    (format!("{} of {}", parts.join(", "), xs.len()), med)
}

pub fn run(opts: &Options) -> Result<Produced, Error> {
    let vs = variants();
    let results: Vec<Result<Vec<Sample>, Error>> =
        vs.par_iter().map(|v| measure(v, opts.quick)).collect();
    let results: Vec<Vec<Sample>> = results.into_iter().collect::<Result<_, _>>()?;
    let mut files = Files::new(opts);

    let mut csv = Csv::new(&[
        "variant",
        "protocol",
        "f",
        "phase",
        "invoke_s",
        "latency_ms",
        "quorum_round_trips",
    ]);
    for (v, ss) in vs.iter().zip(&results) {
        for s in ss {
            csv.row(&[
                v.label.to_string(),
                v.protocol.to_string(),
                s.f.clone(),
                if s.first {
                    "first_on_key_after_leader_change"
                } else {
                    "steady"
                }
                .to_string(),
                num(s.invoke_s),
                num(s.latency_ms),
                num(s.rtts()),
            ]);
        }
    }
    files.write("rtt.csv", &csv.into_string())?;

    let ops = ["read", "write", "cas", "create", "delete"];
    let mut rows = Vec::new();
    let mut bars = Vec::new();
    let mut headline = Vec::new();
    for (v, ss) in vs.iter().zip(&results) {
        for f in ops {
            let steady: Vec<f64> = ss
                .iter()
                .filter(|s| s.f == f && !s.first)
                .map(Sample::rtts)
                .collect();
            let first: Vec<f64> = ss
                .iter()
                .filter(|s| s.f == f && s.first)
                .map(Sample::rtts)
                .collect();
            let (sd, sm) = describe(&steady);
            let (fd, _) = describe(&first);
            rows.push(vec![
                v.label.to_string(),
                f.to_string(),
                fmt(sm, 2),
                sd,
                theory(v, f, false).to_string(),
                fd,
                theory(v, f, true).to_string(),
            ]);
            if sm.is_finite() {
                bars.push((format!("{} · {f}", v.label), sm, protocol_color(v.protocol)));
            }
            if matches!(f, "read" | "write") {
                headline.push(format!(
                    "{:<40} {f:<6} {} quorum round trips (median)",
                    v.label,
                    fmt(sm, 2)
                ));
            }
        }
    }
    let svg = hbars(
        "Quorum round trips per op (median, steady state; client round trip subtracted)",
        "quorum round trips",
        &bars,
        &|x| fmt(x, 2),
    );
    files.write("rtt.svg", &svg)?;

    let mut md = Md::new("Reproduction `rtt`: round trips per operation");
    md.command(
        opts,
        if opts.quick {
            "one crash, 35 s measured"
        } else {
            "two leader crashes, 75 s measured per variant"
        },
    );
    md.h2("Claims");
    md.p("* riak_ensemble (the reference notes and Basho's slides): **get: 0 round trips with a lease, up to 2 without; put: 1, up to 2** (the code suggests **3 for conditional puts after an epoch change**).\n\
* Paxos: **2 round trips per request** (prepare + accept); Multi-Paxos: **1 in the common case** (a stable leader skips the prepare phase). riak_ensemble is a Multi-Paxos: the prepare/new_epoch phase runs once per epoch, at election.\n\
* Raft (Ongaro & Ousterhout 2014): **one round trip per write** (AppendEntries to a majority); reads: a log entry or a ReadIndex heartbeat round (1), or a lease (0).");
    md.h2("Setup");
    md.p(&format!(
        "5 servers, one group (n = 5); every link, client links included, has a constant one-way \
         latency d = {D_MS} ms, so an op's latency is an exact multiple of the round trip 2d. One \
         closed-loop client (30 ms think time), 30 keys, ops read/write/cas/create/delete in equal \
         shares. The leader is crashed {} (and restarted 12 s later) to force new terms/epochs. \
         **Quorum round trips = latency / 2d − 1** (the client's own round trip to the leader). \
         Only `ok` ops count; ops invoked during a failover, and the client's first op after a \
         leader change (it has to find the new leader), are left out. *Steady* = the key was \
         already touched in the current term/epoch; *first* = the first op on the key after a \
         leader change (riak_ensemble: the object is not fresh).",
        if opts.quick {
            "once at 15 s"
        } else {
            "at 20 s and at 50 s"
        }
    ));
    md.h2("Result");
    md.table(
        &[
            "protocol / mode",
            "op",
            "steady: median",
            "steady: measured (rounded, share of ops)",
            "theory",
            "first op on a key after a leader change",
            "theory",
        ],
        &rows,
    );
    md.img("quorum round trips per op", "rtt.svg");
    md.h2("Reading it");
    md.p(
        "* Where measurement and theory agree to the round trip, the implementation takes the \
          documented path. Fractions (e.g. 1.05) come from riak_ensemble's 1 ms \
          `notfound_read_delay` and from waiting for a tick or heartbeat.\n\
          * riak_ensemble reads of keys that are absent everywhere stay *not fresh* (no object to \
          stamp), so they keep paying a quorum read; a read of a tombstone written in this epoch \
          is fresh.\n\
          * `rtt.csv` has every op (variant, f, phase, latency, round trips).",
    );
    let mdp = files.write("rtt.md", &md.text)?;
    Ok(Produced {
        markdown: mdp,
        files: files.written,
        headline,
    })
}
