//! `quorumlab model`: model-check the raft or ensemble actors with stateright
//! (see docs/model-checking.md).

use crate::CliError;
use clap::Args;
use quorumlab_model::{self as model, Mode, ModelCfg, NetKind};
use std::path::PathBuf;
use std::process::ExitCode;

/// `quorumlab model PROTOCOL [options]`.
///
/// PROTOCOL is `raft` or `ensemble`; `zoo` runs the bug zoo, `bench` the benchmark against a
/// re-implementation of stateright's Paxos example, `lease` the simulator side of the lease
/// teaching case.
/// Every option defaults to the configuration chosen for the variant (the smallest one known to
/// show its bug). Exit status: 0 no counterexample, 1 counterexample, 2 bad input.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// raft | ensemble (or zoo | bench | lease).
    pub protocol: String,
    /// Protocol variant: faithful (default) or a seeded bug (raft: volatile_vote,
    /// commit_prior_term, unbounded_lease; ensemble: lease_pr49, skip_rewrite, volatile_fact).
    #[arg(long)]
    pub variant: Option<String>,
    /// Servers (one group replicated on all of them).
    #[arg(long)]
    pub peers: Option<usize>,
    /// Clients (each runs a script of --ops operations).
    #[arg(long)]
    pub clients: Option<usize>,
    /// Keys the generated scripts use.
    #[arg(long)]
    pub keys: Option<u32>,
    /// Operations per client.
    #[arg(long)]
    pub ops: Option<usize>,
    /// Explicit client scripts: clients separated by `;`, ops by `,`: w<v>, r, c<e>:<n>, n<v>
    /// (create), d (delete), a<e> (add e to a set), optionally prefixed by k<key>. — e.g.
    /// "w1,r; k1.n5; k2.a7"
    #[arg(long)]
    pub script: Option<String>,
    /// Server crashes per run (each a reboot: crash and restart from durable storage at once).
    #[arg(long)]
    pub crashes: Option<usize>,
    /// stateright's crash semantics instead: up to --crashes servers down at the same time,
    /// each restarting at any later step.
    #[arg(long)]
    pub crash_down: bool,
    /// The network may lose any message.
    #[arg(long)]
    pub lossy: bool,
    /// unordered (each message delivered at most once, in any order) | ordered (FIFO per pair)
    /// | duplicating (any message may be delivered again).
    #[arg(long)]
    pub network: Option<String>,
    /// Enable lease reads (raft read_mode = lease, ensemble trust_lease): the teaching case.
    #[arg(long)]
    pub lease: bool,
    /// Let clients time out (an op then ends as info and the client moves on).
    #[arg(long)]
    pub client_timeouts: bool,
    /// Boundary: highest term (raft) / epoch (ensemble).
    #[arg(long)]
    pub max_term: Option<u64>,
    /// Boundary: raft broadcast rounds per leader and term; ensemble quorum requests per peer
    /// incarnation.
    #[arg(long)]
    pub max_rounds: Option<u64>,
    /// Raft: most entries per AppendEntries.
    #[arg(long)]
    pub max_entries: Option<usize>,
    /// Start from a state where n0 leads (reached by a fixed server-only schedule).
    #[arg(long, conflicts_with = "cold")]
    pub warm: bool,
    /// Start from the cold start (every server just booted).
    #[arg(long)]
    pub cold: bool,
    /// A schedule to follow before searching: action texts as printed in traces, separated by
    /// `|` (each step takes the first enabled action containing the text). "" for none.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Explore schedules of at most N steps (0: no depth bound).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Stop after about N states.
    #[arg(long)]
    pub max_states: Option<usize>,
    /// Checker threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// bfs | dfs | simulate (stateright's random walks).
    #[arg(long)]
    pub mode: Option<String>,
    /// Wall-clock budget in seconds (0: none).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Symmetry reduction (where sound: raft without clients; dfs or simulate).
    #[arg(long)]
    pub symmetry: bool,
    /// Seed of the random simulation.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Serve stateright's Explorer on this loopback address (e.g. localhost:3000) instead of
    /// checking.
    #[arg(long)]
    pub explore: Option<String>,
    /// Write report.json and, per counterexample, PROPERTY.txt and PROPERTY.svg here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// zoo: include the heavy entries (minutes, several GB).
    #[arg(long)]
    pub full: bool,
}

fn bad(m: impl Into<String>) -> CliError {
    CliError::BadInput(m.into())
}

/// The configuration: the variant's defaults overlaid with the options given.
fn config(a: &ModelArgs) -> Result<ModelCfg, CliError> {
    let variant = a.variant.as_deref().unwrap_or("faithful");
    let mut c = model::defaults(&a.protocol, variant).map_err(bad)?;
    if let Some(x) = a.peers {
        c.peers = x;
    }
    if a.clients.is_some() || a.ops.is_some() || a.keys.is_some() {
        c.script.clear();
    }
    if let Some(x) = a.clients {
        c.clients = x;
    }
    if let Some(x) = a.ops {
        c.ops = x;
    }
    if let Some(x) = a.keys {
        c.keys = x;
    }
    if let Some(s) = &a.script {
        c.script = model::parse_script(s).map_err(|e| bad(format!("--script: {e}")))?;
    }
    if let Some(x) = a.crashes {
        c.crashes = x;
    }
    if a.crash_down {
        c.crash_down = true;
    }
    if a.lossy {
        c.lossy = true;
    }
    if let Some(n) = &a.network {
        c.network = n
            .parse::<NetKind>()
            .map_err(|e| bad(format!("--network: {e}")))?;
    }
    if a.lease {
        c.lease_reads = true;
    }
    if a.client_timeouts {
        c.client_timeouts = true;
    }
    if let Some(x) = a.max_term {
        c.max_term = x;
    }
    if let Some(x) = a.max_rounds {
        c.max_rounds = x;
    }
    if let Some(x) = a.max_entries {
        c.max_entries = x;
    }
    if a.warm {
        c.warmup = true;
    }
    if a.cold {
        c.warmup = false;
        // A default start schedule presupposes the warm start.
        c.prefix.clear();
    }
    if let Some(p) = &a.prefix {
        c.prefix = p
            .split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
    }
    if let Some(d) = a.depth {
        c.depth = (d > 0).then_some(d);
    }
    if let Some(n) = a.max_states {
        c.max_states = (n > 0).then_some(n);
    }
    if let Some(t) = a.threads {
        c.threads = t;
    }
    if let Some(m) = &a.mode {
        c.mode = m.parse::<Mode>().map_err(|e| bad(format!("--mode: {e}")))?;
    }
    if let Some(t) = a.timeout {
        if !(t >= 0.0 && t.is_finite()) {
            return Err(bad("--timeout must be a number of seconds >= 0"));
        }
        c.timeout_secs = (t > 0.0).then_some(t);
    }
    if a.symmetry {
        c.symmetry = true;
    }
    if let Some(s) = a.seed {
        c.seed = s;
    }
    Ok(c)
}

fn write_out(dir: &PathBuf, r: &model::Report) -> Result<(), CliError> {
    let io = |e: std::io::Error| CliError::Failed(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let json = serde_json::to_string_pretty(r).map_err(|e| CliError::Failed(e.to_string()))?;
    std::fs::write(dir.join("report.json"), json).map_err(io)?;
    for p in &r.properties {
        let base = p.name.replace(' ', "_");
        if let Some(t) = &p.trace_text {
            std::fs::write(dir.join(format!("{base}.txt")), t).map_err(io)?;
        }
        if let Some(s) = &p.svg {
            std::fs::write(dir.join(format!("{base}.svg")), s).map_err(io)?;
        }
    }
    Ok(())
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v).map_err(|e| CliError::Failed(e.to_string()))?;
    println!("{s}");
    Ok(())
}

fn zoo(a: &ModelArgs) -> Result<ExitCode, CliError> {
    let mut rows = Vec::new();
    for e in model::zoo::entries() {
        if e.heavy && !a.full {
            continue;
        }
        if !a.json {
            eprintln!("zoo: {} {} ({}) ...", e.protocol, e.variant, e.label);
        }
        rows.push(model::zoo::run(&e).map_err(CliError::Failed)?);
    }
    let timed = model::zoo::timed().map_err(CliError::Failed)?;
    let ok = rows.iter().all(|r| r.as_expected);
    if a.json {
        print_json(&serde_json::json!({ "model_checker": rows, "simulator": timed }))?;
    } else {
        println!(
            "{:<9} {:<18} {:<48} {:<22} {:>6} {:>11} {:>8}  ok",
            "protocol", "variant", "configuration", "found", "steps", "states", "seconds"
        );
        for r in &rows {
            println!(
                "{:<9} {:<18} {:<48} {:<22} {:>6} {:>11} {:>8.2}  {}",
                r.protocol,
                r.variant,
                r.label,
                if r.found.is_empty() {
                    "-".to_string()
                } else {
                    r.found.join(", ")
                },
                r.trace_steps
                    .map_or("-".into(), |n| format!("{}", r.searched_steps.unwrap_or(n))),
                r.unique_states,
                r.seconds,
                if r.as_expected { "yes" } else { "NO" }
            );
        }
        println!("\nsimulator (timed) lease runs:");
        for t in &timed {
            println!(
                "  {:<9} clock rate {:<5} {:<72} read: {:<6} {}",
                t.protocol,
                t.leader_clock_rate,
                t.setting,
                t.read.as_deref().unwrap_or("none"),
                if t.stale { "STALE" } else { "ok" }
            );
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `quorumlab model bench`: states per second of our harness (the faithful raft and ensemble
/// defaults) against our Paxos re-implementation of the size of stateright's example, all in
/// one process, for 1 and 2 checker threads (or only `--threads N`). `--timeout S` is each
/// run's budget (default 120 s). Prints the load average before and after: on a shared machine
/// only figures from the same run compare.
fn bench(a: &ModelArgs) -> Result<ExitCode, CliError> {
    let threads: Vec<usize> = match a.threads {
        Some(t) => vec![t.max(1)],
        None => vec![1, 2],
    };
    let budget = std::time::Duration::from_secs_f64(a.timeout.unwrap_or(120.0).max(1.0));
    let load = || {
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into())
    };
    let load_before = load();
    let mut out = Vec::new();
    for &t in &threads {
        for clients in [2, 3] {
            out.push(model::bench::measure_paxos(clients, t, budget));
        }
        for (p, v) in [("raft", "faithful"), ("ensemble", "faithful")] {
            let mut c = model::defaults(p, v).map_err(bad)?;
            c.threads = t;
            c.timeout_secs = Some(budget.as_secs_f64());
            out.push(model::bench::measure_ours(c).map_err(CliError::Failed)?);
        }
    }
    let load_after = load();
    if a.json {
        print_json(&serde_json::json!({
            "load_average_before": load_before,
            "load_average_after": load_after,
            "runs": out,
        }))?;
    } else {
        println!("load average before: {load_before}");
        for m in &out {
            println!(
                "{:>2} thr {:>11} states {:>10} unique {:>8.2} s {:>9.0} states/s  {}{}",
                m.threads,
                m.states,
                m.unique_states,
                m.seconds,
                m.states_per_second,
                m.model,
                if m.exhaustive { " (exhaustive)" } else { "" }
            );
        }
        println!("load average after: {load_after}");
    }
    Ok(ExitCode::SUCCESS)
}

fn lease(a: &ModelArgs) -> Result<ExitCode, CliError> {
    let runs = model::lease::all().map_err(CliError::Failed)?;
    if a.json {
        print_json(&runs)?;
    } else {
        for t in &runs {
            println!(
                "{:<9} clock rate {:<5} {:<72} read: {:<6} {}",
                t.protocol,
                t.leader_clock_rate,
                t.setting,
                t.read.as_deref().unwrap_or("none"),
                if t.stale { "STALE" } else { "ok" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `quorumlab model`.
pub fn model_command(args: &ModelArgs) -> Result<ExitCode, CliError> {
    match args.protocol.as_str() {
        "zoo" => return zoo(args),
        "bench" => return bench(args),
        "lease" => return lease(args),
        _ => {}
    }
    let cfg = config(args)?;
    if let Some(addr) = &args.explore {
        model::explore(cfg, addr).map_err(bad)?;
        return Ok(ExitCode::SUCCESS);
    }
    let r = model::check(cfg).map_err(bad)?;
    if let Some(dir) = &args.out {
        write_out(dir, &r)?;
    }
    if args.json {
        print_json(&r)?;
    } else {
        print!("{}", r.text());
        if r.has_counterexample() && args.out.is_none() {
            println!("(--out DIR writes each counterexample as a numbered list and an SVG sequence diagram)");
        }
    }
    Ok(if r.has_counterexample() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
