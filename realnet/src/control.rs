//! Faults against real processes, from the same schedule as in simulation, and the local
//! cluster launcher.
//!
//! | spec fault | real mode |
//! |---|---|
//! | `crash` | SIGKILL (`lose_unsynced` has no extra effect: every acknowledged save was fsynced) |
//! | `restart` | start the process again from its data directory |
//! | `pause` | SIGSTOP, SIGCONT after `for_ms` |
//! | `partition`, `one_way`, `isolate`, `isolate_leader`, `halves`, `bridge`, `ring`, `heal` | the nodes' in-process drop layer, set over their admin sockets; with `--netns`, nftables drop rules in the nodes' namespaces (server-to-server links only; client links are never cut) |
//! | `clock_rate` | not applied (simulation only), logged as skipped |
//!
//! `[[nemesis]]` generators run as in simulation: the same code
//! ([`quorumlab_workloads::driver::nemesis_start`] / [`nemesis_end`]) draws each fault from the
//! same random stream, at wall-clock offsets.

use crate::host::Stats;
use quorumlab_kv::history::{Event, EventType};
use quorumlab_kv::Leadership;
use quorumlab_workloads::driver::{bridge_cuts, nemesis_end, nemesis_start, ring_cuts};
use quorumlab_workloads::spec::Fault;
use quorumlab_workloads::{FaultRecord, LeaderChange, Spec};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What the fault schedule needs from whoever runs the node processes.
pub trait NodeControl: Send {
    fn nodes(&self) -> usize;
    /// SIGKILL and reap.
    fn kill(&mut self, i: usize);
    /// Start the node's process (from its data directory).
    fn start(&mut self, i: usize) -> Result<(), String>;
    /// SIGSTOP (`true`) or SIGCONT (`false`).
    fn signal(&mut self, i: usize, stop: bool);
    fn admin_path(&self, i: usize) -> PathBuf;
    /// Whether link cuts are kernel rules (`--netns`) rather than the nodes' drop layer.
    fn kernel_cuts(&self) -> bool {
        false
    }
    /// Installs the whole cut matrix as kernel rules (with [`Self::kernel_cuts`]).
    fn set_kernel_cuts(&mut self, _cuts: &BTreeSet<(usize, usize)>) -> Result<(), String> {
        Ok(())
    }
}

/// One admin command; `None` if the node does not answer within `timeout`.
pub fn admin(path: &Path, cmd: &str, timeout: Duration) -> Option<String> {
    let mut s = UnixStream::connect(path).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    s.write_all(format!("{cmd}\n").as_bytes()).ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    (!line.is_empty()).then(|| line.trim_end().to_string())
}

/// Waits until node `i` answers its admin socket.
pub fn wait_ready(ctl: &dyn NodeControl, i: usize, within: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < within {
        if admin(&ctl.admin_path(i), "ping", Duration::from_millis(200)).as_deref() == Some("pong")
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Up {
    Running,
    Paused,
    Down,
}

/// Everything the fault thread observed.
#[derive(Default)]
pub struct FaultLog {
    pub faults: Vec<FaultRecord>,
    pub events: Vec<Event>,
    pub leaders: Vec<LeaderChange>,
}

struct Schedule<'a> {
    spec: &'a Spec,
    ctl: &'a mut dyn NodeControl,
    start: Instant,
    groups: usize,
    state: Vec<Up>,
    cuts: BTreeSet<(usize, usize)>,
    current: Vec<(Option<usize>, u64)>,
    frng: ChaCha8Rng,
    log: FaultLog,
}

impl Schedule<'_> {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
    fn name(&self, i: usize) -> String {
        let n = self.ctl.nodes();
        if i < n {
            format!("n{i}")
        } else {
            format!("c{}", i - n)
        }
    }
    fn log_fault(&mut self, kind: &str, description: String, nodes: Vec<usize>, ends: bool) {
        let now = self.now();
        let names: Vec<String> = nodes.iter().map(|&i| self.name(i)).collect();
        self.log.events.push(Event::nemesis(
            now,
            EventType::Info,
            kind,
            json!({ "description": description, "nodes": names }),
        ));
        self.log.faults.push(FaultRecord {
            time_ns: now,
            kind: kind.into(),
            description,
            nodes,
            ends,
        });
    }

    fn observe(&mut self) -> Vec<(Option<usize>, u64)> {
        let mut best: Vec<(Option<usize>, u64)> = vec![(None, 0); self.groups];
        for i in 0..self.ctl.nodes() {
            if self.state[i] != Up::Running {
                continue;
            }
            let Some(ans) = admin(
                &self.ctl.admin_path(i),
                "leadership",
                Duration::from_millis(200),
            ) else {
                continue;
            };
            let Ok(ls) = serde_json::from_str::<Vec<Leadership>>(&ans) else {
                continue;
            };
            for l in ls {
                if l.group < best.len() && (best[l.group].0.is_none() || l.term > best[l.group].1) {
                    best[l.group] = (Some(i), l.term);
                }
            }
        }
        let now = self.now();
        for (g, &(leader, term)) in best.iter().enumerate() {
            if self.current[g] != (leader, term) {
                self.current[g] = (leader, term);
                self.log.leaders.push(LeaderChange {
                    time_ns: now,
                    group: g,
                    leader,
                    term,
                });
            }
        }
        best
    }

    fn target(&mut self, name: &str) -> Option<usize> {
        if name == "leader" || name.starts_with("leader:") {
            let g = name
                .strip_prefix("leader:")
                .and_then(|g| g.parse().ok())
                .unwrap_or(0);
            return self.observe().get(g).and_then(|x| x.0);
        }
        self.spec.endpoint(name).filter(|&i| i < self.ctl.nodes())
    }

    /// Pushes node `i`'s rows of the cut matrix to it.
    fn push_cuts(&mut self, i: usize) {
        if self.ctl.kernel_cuts() {
            return; // kernel rules outlive the process: nothing to push to a restarted node
        }
        if self.state[i] != Up::Running {
            return;
        }
        let out: Vec<String> = self
            .cuts
            .iter()
            .filter(|c| c.0 == i)
            .map(|c| c.1.to_string())
            .collect();
        let inn: Vec<String> = self
            .cuts
            .iter()
            .filter(|c| c.1 == i)
            .map(|c| c.0.to_string())
            .collect();
        let p = self.ctl.admin_path(i);
        let t = Duration::from_millis(500);
        let ok = admin(&p, &format!("cut_out {}", out.join(",")), t).is_some()
            && admin(&p, &format!("cut_in {}", inn.join(",")), t).is_some();
        if !ok {
            eprintln!("warning: n{i} did not take its link cuts");
        }
    }
    fn push_all(&mut self) {
        if self.ctl.kernel_cuts() {
            let cuts = self.cuts.clone();
            if let Err(e) = self.ctl.set_kernel_cuts(&cuts) {
                eprintln!("warning: nftables: {e}");
            }
            return;
        }
        for i in 0..self.ctl.nodes() {
            self.push_cuts(i);
        }
    }
    fn isolate(&mut self, node: usize) {
        for j in 0..self.ctl.nodes() {
            if j != node {
                self.cuts.insert((node, j));
                self.cuts.insert((j, node));
            }
        }
    }
    fn servers_shuffled(&mut self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.ctl.nodes()).collect();
        v.shuffle(&mut self.frng);
        v
    }

    /// Applies `fault`; returns a pause end (node, at ns) if it was a pause.
    fn apply(&mut self, fault: &Fault) -> Option<(usize, u64)> {
        let kind = fault.name();
        let n = self.ctl.nodes();
        let mut resume = None;
        match fault {
            Fault::Partition { groups } => {
                let comps: Vec<Vec<usize>> = groups
                    .iter()
                    .map(|g| {
                        g.iter()
                            .filter_map(|x| self.spec.endpoint(x))
                            .filter(|&i| i < n)
                            .collect()
                    })
                    .collect();
                for (a, ca) in comps.iter().enumerate() {
                    for (b, cb) in comps.iter().enumerate() {
                        if a != b {
                            for &x in ca {
                                for &y in cb {
                                    self.cuts.insert((x, y));
                                }
                            }
                        }
                    }
                }
                self.push_all();
                let minority = comps
                    .iter()
                    .min_by_key(|c| c.len())
                    .cloned()
                    .unwrap_or_default();
                self.log_fault(
                    kind,
                    format!("partition {groups:?} (server links only)"),
                    minority,
                    false,
                );
            }
            Fault::OneWay { from, to } => {
                let f: Vec<usize> = from
                    .iter()
                    .filter_map(|x| self.spec.endpoint(x))
                    .filter(|&i| i < n)
                    .collect();
                let t: Vec<usize> = to
                    .iter()
                    .filter_map(|x| self.spec.endpoint(x))
                    .filter(|&i| i < n)
                    .collect();
                for &a in &f {
                    for &b in &t {
                        self.cuts.insert((a, b));
                    }
                }
                self.push_all();
                self.log_fault(kind, format!("cut {from:?} -> {to:?}"), f, false);
            }
            Fault::Isolate { node } => match self.target(node) {
                Some(i) => {
                    self.isolate(i);
                    self.push_all();
                    self.log_fault(kind, format!("isolate {}", self.name(i)), vec![i], false);
                }
                None => self.log_fault(
                    kind,
                    format!("isolate {node}: no such node now"),
                    vec![],
                    false,
                ),
            },
            Fault::IsolateLeader { group } => {
                let leaders = self.observe();
                let (i, d) = match leaders.get(*group).and_then(|x| x.0) {
                    Some(i) => (
                        i,
                        format!("isolate leader of group {group}: {}", self.name(i)),
                    ),
                    None => {
                        let i = *group % n;
                        (
                            i,
                            format!("group {group} has no leader; isolate {}", self.name(i)),
                        )
                    }
                };
                self.isolate(i);
                self.push_all();
                self.log_fault(kind, d, vec![i], false);
            }
            Fault::Halves => {
                let v = self.servers_shuffled();
                let (minority, majority) = v.split_at(v.len() / 2);
                for &a in minority {
                    for &b in majority {
                        self.cuts.insert((a, b));
                        self.cuts.insert((b, a));
                    }
                }
                self.push_all();
                let names: Vec<String> = minority.iter().map(|&i| self.name(i)).collect();
                self.log_fault(
                    kind,
                    format!("halves: minority {names:?}"),
                    minority.to_vec(),
                    false,
                );
            }
            Fault::Bridge => {
                let v = self.servers_shuffled();
                self.cuts.extend(bridge_cuts(&v));
                self.push_all();
                let mid = v[v.len() / 2];
                self.log_fault(
                    kind,
                    format!("bridge through {}", self.name(mid)),
                    vec![mid],
                    false,
                );
            }
            Fault::Ring => {
                let v = self.servers_shuffled();
                let (cuts, d) = ring_cuts(&v);
                self.cuts.extend(cuts);
                self.push_all();
                let order: Vec<String> = v.iter().map(|&i| self.name(i)).collect();
                self.log_fault(
                    kind,
                    format!("majorities ring {order:?}, each sees ±{d}"),
                    vec![],
                    false,
                );
            }
            Fault::Heal => {
                self.cuts.clear();
                self.push_all();
                self.log_fault(kind, "heal all links".into(), vec![], true);
            }
            Fault::Crash { node, .. } => match self.target(node) {
                Some(i) => {
                    self.ctl.kill(i);
                    self.state[i] = Up::Down;
                    self.log_fault(
                        kind,
                        format!("crash {} (SIGKILL)", self.name(i)),
                        vec![i],
                        false,
                    );
                }
                None => self.log_fault(
                    kind,
                    format!("crash {node}: no such node now"),
                    vec![],
                    false,
                ),
            },
            Fault::Restart { node } => match self.target(node) {
                Some(i) if self.state[i] == Up::Down => {
                    let at = self.now();
                    let r = self.ctl.start(i);
                    let ready = r.is_ok() && wait_ready(&*self.ctl, i, Duration::from_secs(5));
                    self.state[i] = Up::Running;
                    self.push_cuts(i);
                    let d = match r {
                        Err(e) => format!("restart {}: {e}", self.name(i)),
                        Ok(()) if ready => format!(
                            "restart {} (ready after {} ms)",
                            self.name(i),
                            (self.now() - at) / 1_000_000
                        ),
                        Ok(()) => format!("restart {} (not ready after 5 s)", self.name(i)),
                    };
                    self.log_fault(kind, d, vec![i], true);
                }
                Some(i) => self.log_fault(
                    kind,
                    format!("restart {}: it is not down", self.name(i)),
                    vec![i],
                    true,
                ),
                None => self.log_fault(kind, format!("restart {node}: no such node"), vec![], true),
            },
            Fault::ClockRate { node, rate } => {
                self.log_fault(
                    kind,
                    format!("clock of {node} at {rate}x: skipped (clock drift is simulation-only)"),
                    vec![],
                    *rate == 1.0,
                );
            }
            Fault::Pause { node, for_ms } => match self.target(node) {
                Some(i) if self.state[i] == Up::Running => {
                    self.ctl.signal(i, true);
                    self.state[i] = Up::Paused;
                    resume = Some((i, self.now() + (*for_ms * 1e6) as u64));
                    self.log_fault(
                        kind,
                        format!("pause {} for {for_ms} ms (SIGSTOP)", self.name(i)),
                        vec![i],
                        false,
                    );
                }
                _ => self.log_fault(
                    kind,
                    format!("pause {node}: no running node"),
                    vec![],
                    false,
                ),
            },
        }
        resume
    }
}

/// Runs `spec.faults` against the nodes until `stop`, sampling leadership every 50 ms.
pub fn run_schedule(
    spec: &Spec,
    groups: usize,
    seed: u64,
    start: Instant,
    stop: &AtomicBool,
    ctl: &mut dyn NodeControl,
) -> FaultLog {
    let n = ctl.nodes();
    let mut s = Schedule {
        spec,
        ctl,
        start,
        groups,
        state: vec![Up::Running; n],
        cuts: BTreeSet::new(),
        current: vec![(None, 0); groups],
        frng: quorumlab_sim::Seeds::new(seed).rng(quorumlab_sim::Stream::Faults),
        log: FaultLog::default(),
    };
    let mut pending: Vec<(u64, usize)> = spec
        .faults
        .iter()
        .enumerate()
        .map(|(i, f)| ((f.at_s * 1e9) as u64, i))
        .collect();
    pending.sort();
    let mut pending = std::collections::VecDeque::from(pending);
    let mut resumes: Vec<(usize, u64)> = Vec::new();
    let secs = |x: f64| (x * 1e9) as u64;
    // [[nemesis]] generators: next firing per generator; ends of their faults (at, gen, target).
    let mut gen_next: Vec<Option<u64>> = spec
        .nemesis
        .iter()
        .map(|g| Some(secs(g.start_s + g.every_s)))
        .collect();
    let mut gen_ends: Vec<(u64, usize, usize)> = Vec::new();
    let mut next_sample = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let now = s.now();
        if let Some(&(t, i)) = pending.front() {
            if t <= now {
                pending.pop_front();
                if let Some(r) = s.apply(&spec.faults[i].fault) {
                    resumes.push(r);
                }
                s.observe();
                continue;
            }
        }
        if let Some(k) = gen_ends.iter().position(|&(t, _, _)| t <= now) {
            let (_, g, target) = gen_ends.remove(k);
            if let Some(f) = nemesis_end(&spec.nemesis[g], target) {
                if let Some(r) = s.apply(&f) {
                    resumes.push(r);
                }
                s.observe();
            }
            continue;
        }
        if let Some(g) = (0..gen_next.len()).find(|&g| gen_next[g].is_some_and(|t| t <= now)) {
            let gen = &spec.nemesis[g];
            let at = gen_next[g].unwrap_or(now);
            let (fault, target) = nemesis_start(gen, n, groups, &mut s.frng);
            if let Some(r) = s.apply(&fault) {
                resumes.push(r);
            }
            s.observe();
            gen_ends.push((at + secs(gen.duration_s), g, target));
            let next = at + secs(gen.every_s);
            gen_next[g] = gen.stop_s.is_none_or(|x| next <= secs(x)).then_some(next);
            continue;
        }
        if let Some(k) = resumes.iter().position(|&(_, t)| t <= now) {
            let (i, _) = resumes.remove(k);
            if s.state[i] == Up::Paused {
                s.ctl.signal(i, false);
                s.state[i] = Up::Running;
                s.push_cuts(i);
                let d = format!("resume {} (SIGCONT)", s.name(i));
                s.log_fault("pause", d, vec![i], true);
            }
            continue;
        }
        if now >= next_sample {
            s.observe();
            next_sample = now + 50_000_000;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for (i, _) in resumes {
        s.ctl.signal(i, false);
    }
    s.log
}

/// Node processes on this machine: `EXE node ...` per node, logs next to the data directories.
pub struct LocalCluster {
    pub exe: PathBuf,
    /// Arguments of node `i` (after `EXE`).
    pub args: Vec<Vec<String>>,
    pub data: Vec<PathBuf>,
    pub logs: Vec<PathBuf>,
    children: Vec<Option<Child>>,
    /// `--netns`: node `i` runs in namespace `ns(i)`; cuts are nftables rules.
    pub netns: Option<crate::netns::Netns>,
}

impl LocalCluster {
    pub fn new(
        exe: PathBuf,
        args: Vec<Vec<String>>,
        data: Vec<PathBuf>,
        logs: Vec<PathBuf>,
    ) -> Self {
        let n = args.len();
        LocalCluster {
            exe,
            args,
            data,
            logs,
            children: (0..n).map(|_| None).collect(),
            netns: None,
        }
    }

    /// Starts every node and waits until each answers its admin socket.
    pub fn launch(&mut self) -> Result<(), String> {
        for i in 0..self.args.len() {
            self.start(i)?;
        }
        for i in 0..self.args.len() {
            if !wait_ready(self, i, Duration::from_secs(10)) {
                return Err(format!(
                    "node n{i} did not come up (see {})",
                    self.logs[i].display()
                ));
            }
        }
        Ok(())
    }

    /// Summed counters of the running nodes.
    pub fn stats(&self) -> Vec<Option<Stats>> {
        (0..self.args.len())
            .map(|i| {
                admin(&self.admin_path(i), "stats", Duration::from_millis(500))
                    .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                    .map(|v| Stats {
                        sent: v["sent"].as_u64().unwrap_or(0),
                        sent_bytes: v["sent_bytes"].as_u64().unwrap_or(0),
                        dropped: v["dropped"].as_u64().unwrap_or(0),
                        delivered: v["delivered"].as_u64().unwrap_or(0),
                        saves: v["saves"].as_u64().unwrap_or(0),
                        save_bytes: v["save_bytes"].as_u64().unwrap_or(0),
                        rejected_conns: v["rejected_conns"].as_u64().unwrap_or(0),
                        rejected_frames: v["rejected_frames"].as_u64().unwrap_or(0),
                    })
            })
            .collect()
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children[i].as_ref().map(|c| c.id())
    }

    pub fn shutdown(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl NodeControl for LocalCluster {
    fn nodes(&self) -> usize {
        self.args.len()
    }
    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    fn start(&mut self, i: usize) -> Result<(), String> {
        self.kill(i);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.logs[i])
            .map_err(|e| format!("{}: {e}", self.logs[i].display()))?;
        let mut cmd = match &self.netns {
            // `ip netns exec` execs the node in place: the pid we signal is the node's.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns.ns(i)]).arg(&self.exe);
                c
            }
            None => Command::new(&self.exe),
        };
        let child = cmd
            .args(&self.args[i])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{}: {e}", self.exe.display()))?;
        self.children[i] = Some(child);
        Ok(())
    }
    fn signal(&mut self, i: usize, stop: bool) {
        if let Some(c) = &self.children[i] {
            let sig = if stop { libc::SIGSTOP } else { libc::SIGCONT };
            // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }
    fn admin_path(&self, i: usize) -> PathBuf {
        self.data[i].join("admin.sock")
    }
    fn kernel_cuts(&self) -> bool {
        self.netns.is_some()
    }
    fn set_kernel_cuts(&mut self, cuts: &BTreeSet<(usize, usize)>) -> Result<(), String> {
        match &self.netns {
            Some(ns) => ns.set_cuts(cuts),
            None => Ok(()),
        }
    }
}
