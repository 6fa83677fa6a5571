//! `quorumlab node`, `quorumlab load`, `quorumlab real`: the protocols as real processes over
//! TCP (see docs/real-mode.md).

use crate::run::{load_spec_quick, write_run_dir};
use crate::CliError;
use quorumlab_kv::history::Event;
use quorumlab_kv::Key;
use quorumlab_realnet::control::{admin, run_schedule, FaultLog, LocalCluster, NodeControl};
use quorumlab_realnet::host::Stats;
use quorumlab_realnet::load::{run_load, LoadResult};
use quorumlab_realnet::node::{layout, run_node, NodeOptions};
use quorumlab_realnet::openraft::node::run_openraft_node;
use quorumlab_realnet::openraft::OpenraftReal;
use quorumlab_realnet::{ClusterFile, EnsembleReal, EventualReal, RaftReal, SingleReal};
use quorumlab_sim::{KindStats, NetStats, SimStats};
use quorumlab_workloads::{RunOutput, Spec};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    /// The protocol (single | raft | ensemble | openraft | eventual).
    #[arg(long, short)]
    pub protocol: String,
    /// This node's index in CLUSTER.toml's [[nodes]] (n0 is 0).
    #[arg(long)]
    pub id: usize,
    /// The cluster file (addresses and secret).
    #[arg(long)]
    pub cluster: PathBuf,
    /// The data directory (durable state, admin socket).
    #[arg(long)]
    pub data: PathBuf,
    /// The experiment spec whose cluster shape and protocol parameters to use (default: the
    /// built-in one); cluster.nodes comes from CLUSTER.toml.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub sets: Vec<String>,
    /// Do not fsync saves (faster; a machine crash can lose acknowledged writes).
    #[arg(long)]
    pub no_fsync: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// The experiment spec (default: the built-in one).
    pub spec: Option<PathBuf>,
    #[arg(long)]
    pub cluster: PathBuf,
    #[arg(long, short)]
    pub protocol: String,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub sets: Vec<String>,
    #[arg(long)]
    pub quick: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RealArgs {
    /// The experiment spec (default: the built-in one).
    pub spec: Option<PathBuf>,
    #[arg(long, short, default_value = "raft")]
    pub protocol: String,
    /// Number of node processes (overrides cluster.nodes; replicas are capped at it).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// The run directory (default: runs/real-PROTOCOL-seedN).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub sets: Vec<String>,
    #[arg(long)]
    pub quick: bool,
    /// Do not fsync saves.
    #[arg(long)]
    pub no_fsync: bool,
    /// Each node in its own network namespace (veth links to a bridge, `tc netem` link models,
    /// nftables partitions); needs root.
    #[arg(long)]
    pub netns: bool,
    /// Also simulate the same spec (same nodes, seed and faults) into OUT/sim and write
    /// OUT/sim-vs-real.json with both runs' headline figures side by side.
    #[arg(long)]
    pub with_sim: bool,
}

fn bad(m: impl Into<String>) -> CliError {
    CliError::BadInput(m.into())
}
fn failed(m: impl Into<String>) -> CliError {
    CliError::Failed(m.into())
}

fn check_protocol(p: &str) -> Result<(), CliError> {
    if quorumlab_realnet::PROTOCOLS.contains(&p) {
        Ok(())
    } else {
        Err(bad(format!(
            "protocol {p:?} does not run in real mode yet (available: {})",
            quorumlab_realnet::PROTOCOLS.join(", ")
        )))
    }
}

/// The spec with `cluster.nodes = nodes` (replicas capped).
fn spec_for(
    path: Option<&Path>,
    sets: &[String],
    quick: bool,
    nodes: usize,
) -> Result<Spec, CliError> {
    let first = load_spec_quick(path, sets, quick)?;
    let mut all = sets.to_vec();
    all.push(format!("cluster.nodes={nodes}"));
    all.push(format!(
        "cluster.replicas={}",
        first.cluster.replicas.min(nodes)
    ));
    load_spec_quick(path, &all, quick)
}

pub fn node_command(a: &NodeArgs) -> Result<ExitCode, CliError> {
    check_protocol(&a.protocol)?;
    let cluster = ClusterFile::read(&a.cluster).map_err(bad)?;
    let spec = spec_for(a.spec.as_deref(), &a.sets, false, cluster.nodes.len())?;
    let opts = NodeOptions {
        id: a.id,
        data: &a.data,
        fsync: !a.no_fsync,
        seed: a.seed,
    };
    let r = match a.protocol.as_str() {
        "single" => run_node::<SingleReal>(&spec, &cluster, &opts),
        "ensemble" => run_node::<EnsembleReal>(&spec, &cluster, &opts),
        "openraft" => run_openraft_node(&spec, &cluster, &opts),
        "eventual" => run_node::<EventualReal>(&spec, &cluster, &opts),
        _ => run_node::<RaftReal>(&spec, &cluster, &opts),
    };
    r.map_err(failed)?;
    Ok(ExitCode::SUCCESS)
}

fn load_dispatch(
    protocol: &str,
    spec: &Spec,
    cluster: &ClusterFile,
    seed: u64,
    start: Instant,
) -> Result<LoadResult, String> {
    match protocol {
        "single" => run_load::<SingleReal>(spec, cluster, seed, start),
        "ensemble" => run_load::<EnsembleReal>(spec, cluster, seed, start),
        "openraft" => run_load::<OpenraftReal>(spec, cluster, seed, start),
        "eventual" => run_load::<EventualReal>(spec, cluster, seed, start),
        _ => run_load::<RaftReal>(spec, cluster, seed, start),
    }
}

/// The RunOutput of a real run, for the same reports as a simulated one.
fn output(
    protocol: &str,
    spec: &Spec,
    seed: u64,
    nodes: usize,
    load: LoadResult,
    faults: FaultLog,
    stats: &[Option<Stats>],
) -> Result<RunOutput, CliError> {
    let mut history: Vec<Event> = load.history;
    history.extend(faults.events);
    history.sort_by_key(|e| e.time); // stable: same-time events keep their order
    for (i, e) in history.iter_mut().enumerate() {
        e.index = i as u64;
    }
    let layout = layout(spec, nodes).map_err(bad)?;
    let mut total = KindStats::default();
    for s in stats
        .iter()
        .flatten()
        .chain(std::iter::once(&load.client_stats))
    {
        total.sent += s.sent;
        total.delivered += s.delivered;
        total.dropped += s.dropped;
        total.bytes += s.sent_bytes;
    }
    let net = NetStats {
        total,
        by_kind: Vec::new(),
    };
    Ok(RunOutput {
        protocol: protocol.to_string(),
        seed,
        end_ns: history.last().map(|e| e.time).unwrap_or(0).max(load.end_ns),
        history,
        measure_from_ns: load.measure_from_ns,
        measure_to_ns: load.measure_to_ns,
        net: net.clone(),
        net_window: net,
        sim: SimStats::default(),
        faults: faults.faults,
        leaders: faults.leaders,
        messages: Vec::new(),
        key_groups: (0..spec.workload.keys)
            .map(|k| layout.group_of(Key(k)))
            .collect(),
        layout,
        skipped_arrivals: load.skipped_arrivals,
        protocol_counters: Default::default(),
    })
}

fn print_summary(dir: &Path, s: &quorumlab_reports::Summary, wall: f64) {
    let all = &s.latency_us["all"];
    println!("{} (real, {} s wall):", s.protocol, wall.round());
    println!(
        "  ops: {} invoked, {} ok, {} fail, {} info; {:.1} ok/s; ok fraction {:.3}; longest gap {:.0} ms",
        s.ops.invoked, s.ops.ok, s.ops.fail, s.ops.info, s.throughput_ok_per_s, s.availability.ok_fraction, s.availability.longest_gap_ms
    );
    println!(
        "  latency (ok, us): p50 {} p99 {} p999 {} max {}",
        all.p50, all.p99, all.p999, all.max
    );
    println!("  linearizable: {}", s.linearizable);
    println!("  wrote {}", dir.display());
}

pub fn load_command(a: &LoadArgs) -> Result<ExitCode, CliError> {
    check_protocol(&a.protocol)?;
    let cluster = ClusterFile::read(&a.cluster).map_err(bad)?;
    let n = cluster.nodes.len();
    let spec = spec_for(a.spec.as_deref(), &a.sets, a.quick, n)?;
    if !spec.faults.is_empty() {
        eprintln!("warning: `load` does not control the nodes; the spec's faults are not applied (use `real`)");
    }
    let start = Instant::now();
    let load = load_dispatch(&a.protocol, &spec, &cluster, a.seed, start).map_err(failed)?;
    let wall = start.elapsed().as_secs_f64();
    let out = output(
        &a.protocol,
        &spec,
        a.seed,
        n,
        load,
        FaultLog::default(),
        &[],
    )?;
    let summary = write_run_dir(&a.out, &spec, &out, wall)?;
    print_summary(&a.out, &summary, wall);
    Ok(ExitCode::SUCCESS)
}

fn secret() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut s = String::new();
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        h.write_u32(std::process::id());
        s.push_str(&format!("{:016x}", h.finish()));
    }
    s
}

pub fn real_command(a: &RealArgs) -> Result<ExitCode, CliError> {
    check_protocol(&a.protocol)?;
    if a.netns {
        quorumlab_realnet::netns::preflight().map_err(bad)?;
    }
    if a.nodes == 0 {
        return Err(bad("--nodes must be at least 1"));
    }
    let spec = spec_for(a.spec.as_deref(), &a.sets, a.quick, a.nodes)?;
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/real-{}-seed{}", a.protocol, a.seed)));
    let (_, summary, wall) = execute_real(a, &spec, &dir)?;
    print_summary(&dir, &summary, wall);
    if a.with_sim {
        with_sim(a, &spec, &dir, &summary)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One real run of `spec` (already shaped for `a.nodes`) into `dir`: launch the nodes, run the
/// workload and the fault schedule, stop everything, write the run directory.
pub fn execute_real(
    a: &RealArgs,
    spec: &Spec,
    dir: &Path,
) -> Result<(RunOutput, quorumlab_reports::Summary, f64), CliError> {
    let spec = spec.clone();
    let ndir = dir.join("nodes");
    if ndir.exists() {
        fs::remove_dir_all(&ndir).map_err(|e| failed(format!("{}: {e}", ndir.display())))?;
    }
    fs::create_dir_all(&ndir).map_err(|e| failed(format!("{}: {e}", ndir.display())))?;
    let netns = if a.netns {
        let ns = quorumlab_realnet::netns::Netns::create(&spec).map_err(failed)?;
        for n in &ns.notes {
            println!("  netns: {n}");
        }
        Some(ns)
    } else {
        None
    };
    let cluster = match &netns {
        Some(ns) => ClusterFile {
            secret: secret(),
            nodes: (0..a.nodes)
                .map(|i| quorumlab_realnet::cluster::NodeAddr {
                    addr: format!("{}:{}", ns.ip(i), quorumlab_realnet::netns::PORT),
                    listen: None,
                })
                .collect(),
        },
        None => ClusterFile::loopback(a.nodes, secret()).map_err(|e| failed(e.to_string()))?,
    };
    let cpath = ndir.join("cluster.toml");
    let spath = ndir.join("spec.toml");
    fs::write(&cpath, cluster.to_toml()).map_err(|e| failed(e.to_string()))?;
    fs::write(&spath, spec.to_toml()).map_err(|e| failed(e.to_string()))?;
    let exe = std::env::current_exe().map_err(|e| failed(e.to_string()))?;
    let mut args = Vec::new();
    let (mut data, mut logs) = (Vec::new(), Vec::new());
    for i in 0..a.nodes {
        let d = ndir.join(format!("n{i}"));
        let mut v: Vec<String> = vec![
            "node".into(),
            "--protocol".into(),
            a.protocol.clone(),
            "--id".into(),
            i.to_string(),
            "--cluster".into(),
            cpath.display().to_string(),
            "--data".into(),
            d.display().to_string(),
            "--spec".into(),
            spath.display().to_string(),
            "--seed".into(),
            a.seed.to_string(),
        ];
        if a.no_fsync {
            v.push("--no-fsync".into());
        }
        args.push(v);
        data.push(d);
        logs.push(ndir.join(format!("n{i}.log")));
    }
    let mut lc = LocalCluster::new(exe, args, data, logs);
    if let Some(ns) = netns {
        fs::write(ndir.join("netns.txt"), ns.notes.join("\n") + "\n")
            .map_err(|e| failed(e.to_string()))?;
        lc.netns = Some(ns);
    }
    lc.launch().map_err(failed)?;
    let groups = spec.cluster.groups;
    // Let a leader emerge before the clock starts (up to 5 s; leaderless protocols skip this).
    if a.protocol != "single" && a.protocol != "eventual" {
        let t = Instant::now();
        'wait: while t.elapsed() < Duration::from_secs(5) {
            for i in 0..a.nodes {
                if let Some(ans) =
                    admin(&lc.admin_path(i), "leadership", Duration::from_millis(200))
                {
                    if ans != "[]" {
                        break 'wait;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let start = Instant::now();
    let stop = AtomicBool::new(false);
    let (load, faults, stats) = std::thread::scope(|sc| {
        let (spec_r, stop_r) = (&spec, &stop);
        let ctl = sc.spawn(move || {
            let mut lc = lc;
            let f = run_schedule(spec_r, groups, a.seed, start, stop_r, &mut lc);
            (f, lc)
        });
        let load = load_dispatch(&a.protocol, &spec, &cluster, a.seed, start);
        stop.store(true, Ordering::Relaxed);
        let (f, lc) = ctl.join().expect("fault thread");
        let stats = lc.stats();
        drop(lc); // kills the nodes
        (load, f, stats)
    });
    let load = load.map_err(failed)?;
    let wall = start.elapsed().as_secs_f64();
    let out = output(&a.protocol, &spec, a.seed, a.nodes, load, faults, &stats)?;
    let summary = write_run_dir(dir, &spec, &out, wall)?;
    let rejected: u64 = stats
        .iter()
        .flatten()
        .map(|s| s.rejected_frames + s.rejected_conns)
        .sum();
    if rejected > 0 {
        println!("  nodes rejected {rejected} connections/frames");
    }
    Ok((out, summary, wall))
}

fn with_sim(
    a: &RealArgs,
    spec: &Spec,
    dir: &Path,
    summary: &quorumlab_reports::Summary,
) -> Result<(), CliError> {
    let summary = summary.clone();
    {
        let (sim_out, sim_wall) = crate::run::execute(spec, &a.protocol, a.seed)?;
        let sim_dir = dir.join("sim");
        let sim = write_run_dir(&sim_dir, spec, &sim_out, sim_wall)?;
        let pick = |s: &quorumlab_reports::Summary| {
            let all = &s.latency_us["all"];
            serde_json::json!({
                "ops": s.ops,
                "throughput_ok_per_s": s.throughput_ok_per_s,
                "latency_us_all": all,
                "ok_fraction": s.availability.ok_fraction,
                "longest_gap_ms": s.availability.longest_gap_ms,
                "linearizable": s.linearizable,
            })
        };
        let cmp = serde_json::json!({ "protocol": a.protocol, "sim": pick(&sim), "real": pick(&summary) });
        let path = dir.join("sim-vs-real.json");
        fs::write(&path, serde_json::to_string_pretty(&cmp).unwrap() + "\n")
            .map_err(|e| failed(format!("{}: {e}", path.display())))?;
        let (sa, ra) = (&sim.latency_us["all"], &summary.latency_us["all"]);
        println!("  sim vs real: ok/s {:.1} vs {:.1}; p50 us {} vs {}; p99 us {} vs {}; longest gap ms {:.0} vs {:.0}",
            sim.throughput_ok_per_s, summary.throughput_ok_per_s, sa.p50, ra.p50, sa.p99, ra.p99,
            sim.availability.longest_gap_ms, summary.availability.longest_gap_ms);
        println!("  wrote {} and {}", sim_dir.display(), path.display());
    }
    Ok(())
}

/// `quorumlab compare SPEC --engines sim,real`: each protocol in the simulator and as real
/// processes; one report overlays them per protocol.
pub fn compare_engines(args: &crate::compare::CompareArgs) -> Result<ExitCode, CliError> {
    use quorumlab_reports::compare::CompareRun;
    use quorumlab_reports::engines::{write_engines, EnginePair};
    use quorumlab_reports::RunMetrics;
    let protos: Vec<String> = match args.protocols.as_deref() {
        Some(l) => l
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        None => quorumlab_realnet::PROTOCOLS
            .iter()
            .map(|p| p.to_string())
            .collect(),
    };
    for p in &protos {
        check_protocol(p)?;
    }
    if args.nodes == 0 {
        return Err(bad("--nodes must be at least 1"));
    }
    if args.netns {
        quorumlab_realnet::netns::preflight().map_err(bad)?;
    }
    let spec = spec_for(args.spec.as_deref(), &args.sets, args.quick, args.nodes)?;
    let mut sim_spec = spec.clone();
    let netem = args.netns && quorumlab_realnet::netns::netem_available();
    if args.netns && !netem {
        println!(
            "  netns: this kernel has no sch_netem, so the real links get no added latency: \
             the simulator uses the loopback model (--loopback-ms) instead of the spec's"
        );
    }
    let network = if netem {
        format!(
            "the spec's own (applied to the real links by tc netem where the kernel has it): \
             latency {:?}, loss {}",
            spec.network.latency, spec.network.loss
        )
    } else {
        sim_spec.network.latency = quorumlab_sim::Latency::Constant {
            ms: args.loopback_ms,
        };
        sim_spec.network.client_latency = None;
        format!(
            "loopback: constant {} ms one way (the real links are {})",
            args.loopback_ms,
            if args.netns {
                "veth pairs without netem: this kernel has no sch_netem"
            } else {
                "loopback TCP"
            }
        )
    };
    let name = spec.display_name().to_string();
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("compare/{name}-sim-vs-real-seed{}", args.seed)));
    let mut pairs = Vec::new();
    for p in &protos {
        let ra = RealArgs {
            spec: args.spec.clone(),
            protocol: p.clone(),
            nodes: args.nodes,
            out: None,
            seed: args.seed,
            sets: args.sets.clone(),
            quick: args.quick,
            no_fsync: args.no_fsync,
            netns: args.netns,
            with_sim: false,
        };
        let rdir = dir.join(p).join("real");
        let (rout, rsum, _) = execute_real(&ra, &spec, &rdir)?;
        let (sout, swall) = crate::run::execute(&sim_spec, p, args.seed)?;
        let sdir = dir.join(p).join("sim");
        let ssum = write_run_dir(&sdir, &sim_spec, &sout, swall)?;
        pairs.push(EnginePair {
            protocol: p.clone(),
            sim: CompareRun {
                protocol: p.clone(),
                dir: format!("{p}/sim"),
                metrics: RunMetrics::compute(&sout),
                summary: ssum,
            },
            real: CompareRun {
                protocol: p.clone(),
                dir: format!("{p}/real"),
                metrics: RunMetrics::compute(&rout),
                summary: rsum,
            },
        });
    }
    write_engines(&dir, &spec, args.seed, &pairs, &network)
        .map_err(|e| failed(format!("{}: {e}", dir.display())))?;
    println!(
        "{:<10} {:<5} {:>10} {:>9} {:>9} {:>8} {:>10}  linearizable",
        "protocol", "eng", "ok ops/s", "p50 ms", "p99 ms", "ok frac", "gap ms"
    );
    for pr in &pairs {
        for (e, r) in [("sim", &pr.sim), ("real", &pr.real)] {
            let s = &r.summary;
            let all = s.latency_us.get("all").cloned().unwrap_or_default();
            println!(
                "{:<10} {:<5} {:>10.1} {:>9.3} {:>9.3} {:>8.3} {:>10.0}  {}",
                pr.protocol,
                e,
                s.throughput_ok_per_s,
                all.p50 as f64 / 1e3,
                all.p99 as f64 / 1e3,
                s.availability.ok_fraction,
                s.availability.longest_gap_ms,
                s.linearizable
            );
        }
    }
    println!("wrote {}", dir.join("report.html").display());
    Ok(ExitCode::SUCCESS)
}
