//! The experiment spec (TOML): cluster, network, workload, protocol parameters and faults.
//!
//! Unknown keys are errors; every error names the file, the line (when the key is in the file)
//! and the key. `--set path.to.key=value` overrides any value before the spec is read.

use quorumlab_sim::Latency;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The built-in default experiment.
pub const DEFAULT_SPEC: &str = include_str!("../../experiments/default.toml");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub cluster: Cluster,
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default)]
    pub workload: Workload,
    #[serde(default)]
    pub protocol: ProtocolParams,
    #[serde(default)]
    pub faults: Vec<FaultAt>,
    /// Random fault generators (Jepsen's combined nemesis).
    #[serde(default)]
    pub nemesis: Vec<NemesisGen>,
    /// Assertions on summary figures (checked by the CLI).
    #[serde(default)]
    pub expect: Vec<Expectation>,
    /// Overrides (`path=value`, as for `--set`) applied by `--quick`: a reduced scale for CI
    /// that shortens durations but keeps every check.
    #[serde(default)]
    pub quick: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cluster {
    pub nodes: usize,
    /// Replicas per group (n).
    pub replicas: usize,
    /// Number of groups: ensembles (ring partitions) or Raft groups (G).
    pub groups: usize,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            nodes: 5,
            replicas: 5,
            groups: 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// TCP-like: no reordering on a link.
    #[default]
    Fifo,
    /// UDP-like: messages on a link may overtake each other.
    Unordered,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSpec {
    /// One-way latency of every link (unless a region model or a link override says otherwise).
    pub latency: Latency,
    /// One-way latency between clients and servers, if different.
    pub client_latency: Option<Latency>,
    pub loss: f64,
    pub duplicate: f64,
    pub delivery: Delivery,
    /// Per-link overrides, applied in order.
    pub links: Vec<LinkOverride>,
    pub regions: Option<Regions>,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            latency: Latency::Constant { ms: 1.0 },
            client_latency: None,
            loss: 0.0,
            duplicate: 0.0,
            delivery: Delivery::Fifo,
            links: Vec::new(),
            regions: None,
        }
    }
}

/// Overrides for the links from every endpoint in `from` to every endpoint in `to`
/// (and back, unless `one_way`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkOverride {
    pub from: Vec<String>,
    pub to: Vec<String>,
    #[serde(default)]
    pub one_way: bool,
    pub latency: Option<Latency>,
    pub loss: Option<f64>,
    pub duplicate: Option<f64>,
    pub delivery: Option<Delivery>,
}

/// A region model: endpoints placed in named regions, an RTT matrix between regions, jitter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regions {
    pub names: Vec<String>,
    /// Round-trip times in ms, `rtt_ms[i][j]` between region i and j (one-way = half).
    pub rtt_ms: Vec<Vec<f64>>,
    /// Standard deviation of the normal jitter added to each one-way latency, in ms.
    #[serde(default)]
    pub jitter_ms: f64,
    /// Region of each node, by name (`nodes[i]` for node i).
    pub nodes: Vec<String>,
    /// Region of each client; a single entry places every client there.
    pub clients: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Each client invokes its next op when the previous one completes (plus think time).
    #[default]
    Closed,
    /// Poisson arrivals at `rate` ops/s, each given to an idle client (skipped if none is idle).
    Open,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyDist {
    Uniform,
    /// Zipf with exponent `s` over the keys (key 0 is the hottest).
    Zipfian {
        s: f64,
    },
    /// `fraction` of the keys receive `share` of the ops.
    Hotspot {
        fraction: f64,
        share: f64,
    },
    /// Keys in round-robin order.
    Sequential,
}

/// Op mix in percent (any non-negative weights; they need not add up to 100). A `mix` table
/// lists the ops it wants: a weight it leaves out is 0 (`mix = { read = 70, write = 30 }` has
/// no cas). Without a `mix` table the workload uses [`Mix::default`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    #[serde(default)]
    pub read: f64,
    #[serde(default)]
    pub write: f64,
    #[serde(default)]
    pub cas: f64,
    #[serde(default)]
    pub create: f64,
    #[serde(default)]
    pub delete: f64,
    /// add an element to a set-valued key (`workload.set_keys` of them); with
    /// `pattern = "friends"`, the weight of `add_friend` (two adds).
    #[serde(default)]
    pub add: f64,
}

impl Mix {
    /// Weight of the register mutations (write, cas, create, delete).
    pub fn register_mutations(&self) -> f64 {
        self.write + self.cas + self.create + self.delete
    }
}

/// What the ops mean.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// Independent keys: registers, and `set_keys` set-valued keys for `add`.
    #[default]
    Kv,
    /// The friend graph of Bob Ippolito's statebox article: `keys / 2` users; user `u`'s
    /// "following" set is key `2u`, its "followers" set key `2u + 1`. `add_friend(a, b)` (weight
    /// `mix.add`) is two adds by the same client, one after the other: `b` to `a`'s following,
    /// then `a` to `b`'s followers. Reads read any key.
    Friends,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            read: 50.0,
            write: 30.0,
            cas: 10.0,
            create: 5.0,
            delete: 5.0,
            add: 0.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    pub clients: usize,
    pub mode: Mode,
    /// Closed loop: pause between a completion and the next invocation.
    pub think_ms: f64,
    /// Open loop: arrivals per second.
    pub rate: f64,
    pub keys: u32,
    /// Keys `k0 .. k{set_keys-1}` are set-valued (`add` and `read` only); the rest are
    /// registers. Only with `pattern = "kv"`.
    pub set_keys: u32,
    pub pattern: Pattern,
    pub distribution: KeyDist,
    pub mix: Mix,
    /// Bytes of a value (for cost accounting).
    pub value_size: usize,
    /// Before the measured phase: write every key once (a load phase, as in YCSB).
    pub preload: bool,
    /// Ops in the first `warmup_s` seconds are in the history but not in the figures.
    pub warmup_s: f64,
    /// Measured phase, after the warm-up.
    pub duration_s: f64,
    /// Client timeout: an op unanswered this long completes as `info`.
    pub timeout_ms: f64,
    /// After the measured phase (Jepsen's final generator): heal every fault (links healed,
    /// crashed nodes restarted, clocks reset), then for `quiet_s` seconds read every
    /// set-valued key round-robin from every client, every `final_read_every_ms`. The set
    /// checker uses these reads for lost adds and convergence. Default: on iff the run has
    /// set-valued keys.
    pub final_reads: Option<bool>,
    pub quiet_s: f64,
    pub final_read_every_ms: f64,
}

impl Workload {
    /// Number of set-valued keys (`k0 .. k{n-1}`).
    pub fn set_key_count(&self) -> u32 {
        match self.pattern {
            Pattern::Kv => self.set_keys,
            Pattern::Friends => self.keys,
        }
    }

    /// Whether the run ends with a final-reads phase.
    pub fn final_reads_on(&self) -> bool {
        self.final_reads.unwrap_or(self.set_key_count() > 0) && self.set_key_count() > 0
    }
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            clients: 5,
            mode: Mode::Closed,
            think_ms: 10.0,
            rate: 100.0,
            keys: 20,
            set_keys: 0,
            pattern: Pattern::Kv,
            distribution: KeyDist::Uniform,
            mix: Mix::default(),
            value_size: 16,
            preload: false,
            warmup_s: 1.0,
            duration_s: 30.0,
            timeout_ms: 1000.0,
            final_reads: None,
            quiet_s: 5.0,
            final_read_every_ms: 100.0,
        }
    }
}

/// Each protocol's own parameters, under `[protocol.NAME]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProtocolParams {
    pub single: quorumlab_single::Params,
    pub raft: quorumlab_raft::Params,
    pub ensemble: quorumlab_ensemble::Params,
    pub openraft: quorumlab_openraft::Params,
    pub eventual: quorumlab_eventual::Params,
}

/// A fault at a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultAt {
    pub at_s: f64,
    pub fault: Fault,
}

/// A fault. Node targets are `"n3"` (a node), `"c0"` (a client, where it makes sense),
/// `"leader"` (the current leader of group 0) or `"leader:G"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Cut every link between endpoints of different groups (unlisted endpoints keep theirs).
    Partition {
        groups: Vec<Vec<String>>,
    },
    /// Cut the links from every endpoint in `from` to every endpoint in `to`, one way.
    OneWay {
        from: Vec<String>,
        to: Vec<String>,
    },
    /// Cut a node from every other node (clients can still reach it).
    Isolate {
        node: String,
    },
    /// Cut the current leader of `group` from every other node.
    IsolateLeader {
        #[serde(default)]
        group: usize,
    },
    /// Nodes split into a random majority and minority (seeded).
    Halves,
    /// Jepsen's bridge: two halves joined by one node that sees both.
    Bridge,
    /// Jepsen's majorities ring: every node sees a majority, but no two the same one.
    Ring,
    /// Restore every link.
    Heal,
    Crash {
        node: String,
        #[serde(default)]
        lose_unsynced: bool,
    },
    Restart {
        node: String,
    },
    /// Set a node's clock rate (1.0 = real time).
    ClockRate {
        node: String,
        rate: f64,
    },
    /// Pause a node's process (GC pause, SIGSTOP) for `for_ms`.
    Pause {
        node: String,
        for_ms: f64,
    },
}

impl Fault {
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::OneWay { .. } => "one_way",
            Fault::Isolate { .. } => "isolate",
            Fault::IsolateLeader { .. } => "isolate_leader",
            Fault::Halves => "halves",
            Fault::Bridge => "bridge",
            Fault::Ring => "ring",
            Fault::Heal => "heal",
            Fault::Crash { .. } => "crash",
            Fault::Restart { .. } => "restart",
            Fault::ClockRate { .. } => "clock_rate",
            Fault::Pause { .. } => "pause",
        }
    }
}

/// The kinds of fault a random generator produces (each undone after `duration_s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NemesisKind {
    /// Random majority/minority halves, healed after the duration.
    Halves,
    /// Isolate a random node, healed after.
    Isolate,
    /// Isolate the leader of a random group, healed after.
    IsolateLeader,
    Bridge,
    Ring,
    /// Crash a random node, restarted after.
    Crash,
    /// Crash a random node losing its un-synced writes, restarted after.
    CrashLoseUnsynced,
    /// Pause a random node for the duration.
    Pause,
    /// Set a random node's clock rate to `rate`, back to 1.0 after.
    Clock,
}

/// A random fault generator: every `every_s` seconds from `start_s` until `stop_s`, one fault
/// of `kind` lasting `duration_s`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisGen {
    pub kind: NemesisKind,
    pub every_s: f64,
    pub duration_s: f64,
    #[serde(default)]
    pub start_s: f64,
    pub stop_s: Option<f64>,
    /// Clock rate for `kind = "clock"`.
    #[serde(default = "default_skew")]
    pub rate: f64,
}

fn default_skew() -> f64 {
    2.0
}

/// An assertion on a summary figure, e.g. `{ metric = "availability.ok_fraction", op = ">=", value = 0.5, protocols = ["raft"] }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// A dotted path into summary.json.
    pub metric: String,
    /// `==`, `!=`, `<`, `<=`, `>`, `>=`.
    pub op: String,
    pub value: toml::Value,
    /// Only for these protocols (all if empty).
    #[serde(default)]
    pub protocols: Vec<String>,
}

/// A spec that could not be read or makes no sense. Names the file, the line when known and
/// the key.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    pub file: String,
    pub line: Option<usize>,
    pub key: String,
    pub msg: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: ", self.file, l)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if self.key.is_empty() {
            write!(f, "{}", self.msg)
        } else {
            write!(f, "`{}`: {}", self.key, self.msg)
        }
    }
}

impl std::error::Error for SpecError {}

/// Finds the 1-based line where a dotted key path is written, if it is in the text.
/// Understands `[table]` / `[[array]]` headers, `key = ...` lines and `faults[i]` indices.
pub fn locate(text: &str, path: &str) -> Option<usize> {
    let parts: Vec<&str> = path.split('.').collect();
    // Split "faults[2]" into ("faults", Some(2)).
    let split = |p: &str| -> (String, Option<usize>) {
        match p.find('[') {
            Some(i) => (p[..i].to_string(), p[i + 1..p.len() - 1].parse().ok()),
            None => (p.to_string(), None),
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    // Try the longest table prefix first.
    for cut in (0..=parts.len()).rev() {
        let (table, leaf) = (&parts[..cut], &parts[cut..]);
        let mut header = String::new();
        let mut index = None;
        for (i, p) in table.iter().enumerate() {
            let (name, ix) = split(p);
            if i > 0 {
                header.push('.');
            }
            header.push_str(&name);
            if ix.is_some() {
                index = ix;
            }
        }
        let mut start = 0;
        if !table.is_empty() {
            let single = format!("[{header}]");
            let array = format!("[[{header}]]");
            let mut seen = 0;
            let found = lines.iter().position(|l| {
                let t = l.trim();
                if t == single {
                    return true;
                }
                if t == array {
                    seen += 1;
                    return index.is_none_or(|ix| seen == ix + 1);
                }
                false
            });
            match found {
                Some(p) => start = p + 1,
                None => continue,
            }
        }
        let (leaf0, _) = split(leaf.first().copied().unwrap_or(""));
        if leaf0.is_empty() {
            return Some(start);
        }
        for (i, l) in lines.iter().enumerate().skip(start) {
            let t = l.trim_start();
            if t.starts_with('[') && i >= start && !table.is_empty() {
                break;
            }
            if let Some(rest) = t.strip_prefix(leaf0.as_str()) {
                if rest.trim_start().starts_with('=') {
                    return Some(i + 1);
                }
            }
        }
        if !table.is_empty() {
            return Some(start);
        }
    }
    None
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Applies `path.to.key=value` overrides to a TOML table. The value is read as TOML
/// (`3`, `1.5`, `true`, `"x"`, `[1,2]`, `{ kind = "uniform" }`), or as a plain string if that fails.
pub fn apply_overrides(table: &mut toml::Table, sets: &[String]) -> Result<(), SpecError> {
    for s in sets {
        let err = |msg: String| SpecError {
            file: "--set".into(),
            line: None,
            key: s.clone(),
            msg,
        };
        let (path, raw) = s
            .split_once('=')
            .ok_or_else(|| err("expected path.to.key=value".into()))?;
        let path = path.trim();
        let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
            Ok(mut t) => t.remove("v").expect("parsed v"),
            Err(_) => toml::Value::String(raw.trim().to_string()),
        };
        let parts: Vec<&str> = path.split('.').collect();
        let mut cur = &mut *table;
        for p in &parts[..parts.len() - 1] {
            let entry = cur
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cur = match entry {
                toml::Value::Table(t) => t,
                _ => return Err(err(format!("`{p}` is not a table"))),
            };
        }
        cur.insert(parts[parts.len() - 1].to_string(), value);
    }
    Ok(())
}

impl Spec {
    /// Reads a spec from TOML text; `file` names it in errors. Overrides are applied first.
    pub fn parse(text: &str, file: &str, sets: &[String]) -> Result<Spec, SpecError> {
        // First pass on the text itself, so that errors carry line numbers.
        let spec: Spec = toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            let key = msg
                .split('`')
                .nth(1)
                .filter(|_| msg.starts_with("unknown field") || msg.starts_with("missing field"))
                .unwrap_or("")
                .to_string();
            SpecError {
                file: file.into(),
                line: e.span().map(|s| line_of_offset(text, s.start)),
                key,
                msg,
            }
        })?;
        let spec = if sets.is_empty() {
            spec
        } else {
            let mut table: toml::Table = toml::from_str(text).expect("parsed above");
            apply_overrides(&mut table, sets)?;
            let t = toml::to_string(&table).map_err(|e| SpecError {
                file: "--set".into(),
                line: None,
                key: String::new(),
                msg: e.to_string(),
            })?;
            toml::from_str(&t).map_err(|e| SpecError {
                file: "--set".into(),
                line: None,
                key: sets.join(" "),
                msg: e.message().to_string(),
            })?
        };
        spec.validate().map_err(|(key, msg)| SpecError {
            file: file.into(),
            line: locate(text, &key),
            key,
            msg,
        })?;
        Ok(spec)
    }

    /// The built-in default experiment, with overrides.
    pub fn default_with(sets: &[String]) -> Result<Spec, SpecError> {
        Spec::parse(DEFAULT_SPEC, "<default spec>", sets)
    }

    /// The spec as TOML (the resolved spec written into each run directory).
    /// The spec's name for titles and default directories (`experiment` when unnamed).
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            "experiment"
        } else {
            &self.name
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# could not render spec: {e}\n"))
    }

    /// Endpoint names: `n0..` for nodes, `c0..` for clients.
    pub fn endpoint(&self, name: &str) -> Option<usize> {
        let (prefix, num) = name.split_at(1.min(name.len()));
        let i: usize = num.parse().ok()?;
        match prefix {
            "n" if i < self.cluster.nodes => Some(i),
            "c" if i < self.workload.clients => Some(self.cluster.nodes + i),
            _ => None,
        }
    }

    fn check_endpoint(
        &self,
        key: &str,
        name: &str,
        nodes_only: bool,
    ) -> Result<(), (String, String)> {
        if name == "leader"
            || name
                .strip_prefix("leader:")
                .is_some_and(|g| g.parse::<usize>().is_ok_and(|g| g < self.cluster.groups))
        {
            return Ok(());
        }
        match self.endpoint(name) {
            Some(i) if !nodes_only || i < self.cluster.nodes => Ok(()),
            _ => Err((
                key.to_string(),
                format!(
                    "no {} named {name:?} (nodes are n0..n{}{}; or \"leader\", \"leader:G\")",
                    if nodes_only { "node" } else { "endpoint" },
                    self.cluster.nodes.saturating_sub(1),
                    if nodes_only || self.workload.clients == 0 {
                        String::new()
                    } else {
                        format!(", clients c0..c{}", self.workload.clients - 1)
                    }
                ),
            )),
        }
    }

    /// Checks values that parse but make no sense. Returns (key path, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let e = |k: &str, m: String| Err((k.to_string(), m));
        let c = &self.cluster;
        if c.nodes == 0 {
            return e("cluster.nodes", "must be at least 1".into());
        }
        if c.replicas == 0 || c.replicas > c.nodes {
            return e(
                "cluster.replicas",
                format!(
                    "must be between 1 and cluster.nodes ({}), got {}",
                    c.nodes, c.replicas
                ),
            );
        }
        if c.groups == 0 {
            return e("cluster.groups", "must be at least 1".into());
        }
        let w = &self.workload;
        if w.clients == 0 {
            return e("workload.clients", "must be at least 1".into());
        }
        if w.keys == 0 {
            return e("workload.keys", "must be at least 1".into());
        }
        let pos = |k: &str, v: f64| -> Result<(), (String, String)> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                e(k, format!("must be a finite number >= 0, got {v}"))
            }
        };
        pos("workload.think_ms", w.think_ms)?;
        pos("workload.warmup_s", w.warmup_s)?;
        pos("workload.duration_s", w.duration_s)?;
        pos("workload.quiet_s", w.quiet_s)?;
        if !(w.final_read_every_ms.is_finite() && w.final_read_every_ms > 0.0) {
            return e(
                "workload.final_read_every_ms",
                format!("must be > 0, got {}", w.final_read_every_ms),
            );
        }
        if w.final_reads == Some(true) && w.set_key_count() == 0 {
            return e(
                "workload.final_reads",
                "final reads read the set-valued keys, and this workload has none (set_keys = 0)"
                    .into(),
            );
        }
        if w.duration_s <= 0.0 {
            return e("workload.duration_s", "must be > 0".into());
        }
        if !(w.timeout_ms.is_finite() && w.timeout_ms > 0.0) {
            return e(
                "workload.timeout_ms",
                format!("must be > 0, got {}", w.timeout_ms),
            );
        }
        if w.mode == Mode::Open && !(w.rate.is_finite() && w.rate > 0.0) {
            return e(
                "workload.rate",
                format!("open loop needs a rate > 0, got {}", w.rate),
            );
        }
        let m = &w.mix;
        for (k, v) in [
            ("workload.mix.read", m.read),
            ("workload.mix.write", m.write),
            ("workload.mix.cas", m.cas),
            ("workload.mix.create", m.create),
            ("workload.mix.delete", m.delete),
            ("workload.mix.add", m.add),
        ] {
            pos(k, v)?;
        }
        if m.read + m.register_mutations() + m.add <= 0.0 {
            return e("workload.mix", "at least one op needs a weight > 0".into());
        }
        match w.pattern {
            Pattern::Kv => {
                if w.set_keys > w.keys {
                    return e(
                        "workload.set_keys",
                        format!(
                            "must be at most workload.keys ({}), got {}",
                            w.keys, w.set_keys
                        ),
                    );
                }
                if m.add > 0.0 && w.set_keys == 0 {
                    return e(
                        "workload.set_keys",
                        "workload.mix.add > 0 needs set-valued keys: set workload.set_keys >= 1"
                            .into(),
                    );
                }
                if m.register_mutations() > 0.0 && w.set_keys == w.keys {
                    return e(
                        "workload.set_keys",
                        "every key is a set, but the mix has write/cas/create/delete: lower \
                         set_keys or set those weights to 0"
                            .into(),
                    );
                }
            }
            Pattern::Friends => {
                if w.keys < 4 || w.keys % 2 == 1 {
                    return e(
                        "workload.keys",
                        format!(
                            "pattern \"friends\" needs an even number of keys >= 4 (2 per user), got {}",
                            w.keys
                        ),
                    );
                }
                if m.register_mutations() > 0.0 {
                    return e(
                        "workload.mix",
                        "pattern \"friends\" has only add (add_friend) and read".into(),
                    );
                }
                if w.set_keys != 0 {
                    return e(
                        "workload.set_keys",
                        "pattern \"friends\": every key is a set; leave set_keys out".into(),
                    );
                }
                if w.preload {
                    return e(
                        "workload.preload",
                        "pattern \"friends\" has no registers to preload".into(),
                    );
                }
            }
        }
        match w.distribution {
            KeyDist::Zipfian { s } if !(s.is_finite() && s >= 0.0) => {
                return e("workload.distribution.s", format!("must be >= 0, got {s}"))
            }
            KeyDist::Hotspot { fraction, share }
                if !(fraction > 0.0 && fraction <= 1.0 && (0.0..=1.0).contains(&share)) =>
            {
                return e(
                    "workload.distribution",
                    format!("hotspot needs 0 < fraction <= 1 and 0 <= share <= 1, got {fraction}, {share}"),
                )
            }
            _ => {}
        }
        let n = &self.network;
        n.latency.validate().or_else(|m| e("network.latency", m))?;
        if let Some(l) = &n.client_latency {
            l.validate().or_else(|m| e("network.client_latency", m))?;
        }
        for (k, v) in [("network.loss", n.loss), ("network.duplicate", n.duplicate)] {
            if !(0.0..=1.0).contains(&v) {
                return e(k, format!("must be a probability in [0, 1], got {v}"));
            }
        }
        for (i, l) in n.links.iter().enumerate() {
            let k = format!("network.links[{i}]");
            for name in l.from.iter().chain(&l.to) {
                self.check_endpoint(&k, name, false)?;
            }
            if let Some(lat) = &l.latency {
                lat.validate().or_else(|m| e(&k, m))?;
            }
            for p in [l.loss, l.duplicate].into_iter().flatten() {
                if !(0.0..=1.0).contains(&p) {
                    return e(&k, format!("loss and duplicate must be in [0, 1], got {p}"));
                }
            }
        }
        if let Some(r) = &n.regions {
            let k = "network.regions";
            let nr = r.names.len();
            if nr == 0 {
                return e(k, "needs at least one region name".into());
            }
            if r.rtt_ms.len() != nr || r.rtt_ms.iter().any(|row| row.len() != nr) {
                return e(k, format!("rtt_ms must be a {nr}x{nr} matrix"));
            }
            if r.rtt_ms
                .iter()
                .flatten()
                .any(|v| !(v.is_finite() && *v >= 0.0))
            {
                return e(k, "rtt_ms entries must be >= 0".into());
            }
            pos("network.regions.jitter_ms", r.jitter_ms)?;
            if r.nodes.len() != c.nodes {
                return e(
                    k,
                    format!(
                        "nodes lists {} regions, the cluster has {} nodes",
                        r.nodes.len(),
                        c.nodes
                    ),
                );
            }
            if r.clients.len() != 1 && r.clients.len() != w.clients {
                return e(
                    k,
                    format!(
                        "clients needs 1 region or one per client ({}), got {}",
                        w.clients,
                        r.clients.len()
                    ),
                );
            }
            for name in r.nodes.iter().chain(&r.clients) {
                if !r.names.contains(name) {
                    return e(
                        k,
                        format!("unknown region {name:?} (regions: {:?})", r.names),
                    );
                }
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            let k = format!("faults[{i}]");
            pos(&format!("{k}.at_s"), f.at_s)?;
            match &f.fault {
                Fault::Partition { groups } => {
                    for name in groups.iter().flatten() {
                        self.check_endpoint(&k, name, false)?;
                    }
                }
                Fault::OneWay { from, to } => {
                    for name in from.iter().chain(to) {
                        self.check_endpoint(&k, name, false)?;
                    }
                }
                Fault::Isolate { node }
                | Fault::Crash { node, .. }
                | Fault::Restart { node }
                | Fault::Pause { node, .. } => self.check_endpoint(&k, node, true)?,
                Fault::ClockRate { node, rate } => {
                    self.check_endpoint(&k, node, true)?;
                    if !(rate.is_finite() && *rate > 0.0) {
                        return e(&k, format!("clock rate must be > 0, got {rate}"));
                    }
                }
                Fault::IsolateLeader { group } if *group >= c.groups => {
                    return e(
                        &k,
                        format!(
                            "group {group} does not exist (cluster.groups = {})",
                            c.groups
                        ),
                    )
                }
                _ => {}
            }
            if let Fault::Pause { for_ms, .. } = &f.fault {
                pos(&k, *for_ms)?;
            }
        }
        for (i, g) in self.nemesis.iter().enumerate() {
            let k = format!("nemesis[{i}]");
            if !(g.every_s.is_finite() && g.every_s > 0.0) {
                return e(&k, format!("every_s must be > 0, got {}", g.every_s));
            }
            pos(&k, g.duration_s)?;
            pos(&k, g.start_s)?;
            if !(g.rate.is_finite() && g.rate > 0.0) {
                return e(&k, format!("rate must be > 0, got {}", g.rate));
            }
        }
        for (i, x) in self.expect.iter().enumerate() {
            if !["==", "!=", "<", "<=", ">", ">="].contains(&x.op.as_str()) {
                return e(
                    &format!("expect[{i}].op"),
                    format!("unknown comparison {:?}", x.op),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_parses() {
        let s = Spec::default_with(&[]).unwrap();
        assert_eq!(s.cluster.nodes, 5);
        assert_eq!(s.faults.len(), 2);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = Spec::parse(
            "[cluster]\nnodes = 5\nthis_key_does_not_exist = 1\n",
            "x.toml",
            &[],
        )
        .unwrap_err();
        assert_eq!(e.file, "x.toml");
        assert_eq!(e.line, Some(3));
        assert_eq!(e.key, "this_key_does_not_exist");
        let top = Spec::parse("cluster = 5\n", "y.toml", &[]).unwrap_err();
        assert_eq!(top.line, Some(1));
    }

    #[test]
    fn wrong_type_is_an_error() {
        let e = Spec::parse("[workload]\nclients = \"five\"\n", "x.toml", &[]).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn fault_naming_missing_node_names_its_line() {
        let text = "[[faults]]\nat_s = 1\nfault = { kind = \"heal\" }\n\n[[faults]]\nat_s = 2\nfault = { kind = \"crash\", node = \"n9\" }\n";
        let e = Spec::parse(text, "f.toml", &[]).unwrap_err();
        assert_eq!(e.key, "faults[1]");
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.msg.contains("n9"));
    }

    #[test]
    fn overrides_apply_and_are_checked() {
        let s =
            Spec::default_with(&["workload.clients=9".into(), "cluster.groups=4".into()]).unwrap();
        assert_eq!(s.workload.clients, 9);
        assert_eq!(s.cluster.groups, 4);
        let s = Spec::default_with(&["network.latency={ kind = \"constant\", ms = 3 }".into()])
            .unwrap();
        assert_eq!(s.network.latency, Latency::Constant { ms: 3.0 });
        let e = Spec::default_with(&["cluster.replicas=9".into()]).unwrap_err();
        assert_eq!(e.key, "cluster.replicas");
        assert!(Spec::default_with(&["workload.bogus=1".into()]).is_err());
    }

    #[test]
    fn resolved_spec_round_trips() {
        let s = Spec::default_with(&[]).unwrap();
        let again = Spec::parse(&s.to_toml(), "resolved", &[]).unwrap();
        assert_eq!(s, again);
    }
}
