//! What one model-checking run explores and how.

use quorumlab_kv::{Key, Op};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// Network semantics of the model, chosen deliberately per run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetKind {
    /// Messages race each other, each is delivered at most once (UDP without duplication).
    Unordered,
    /// FIFO per directed pair of actors (TCP, Erlang distribution).
    Ordered,
    /// Messages race and may be delivered again and again (stateright's default).
    Duplicating,
}

impl NetKind {
    pub fn name(&self) -> &'static str {
        match self {
            NetKind::Unordered => "unordered",
            NetKind::Ordered => "ordered",
            NetKind::Duplicating => "duplicating",
        }
    }
}

impl FromStr for NetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "unordered" | "unordered_nonduplicating" => Ok(NetKind::Unordered),
            "ordered" => Ok(NetKind::Ordered),
            "duplicating" | "unordered_duplicating" => Ok(NetKind::Duplicating),
            _ => Err(format!(
                "unknown network {s:?} (expected unordered, ordered or duplicating)"
            )),
        }
    }
}

/// How the state space is searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Bfs,
    Dfs,
    /// stateright's random simulation: repeated random walks from the initial state.
    Simulate,
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Bfs => "bfs",
            Mode::Dfs => "dfs",
            Mode::Simulate => "simulate",
        }
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bfs" => Ok(Mode::Bfs),
            "dfs" => Ok(Mode::Dfs),
            "simulate" | "sim" | "simulation" => Ok(Mode::Simulate),
            _ => Err(format!(
                "unknown mode {s:?} (expected bfs, dfs or simulate)"
            )),
        }
    }
}

/// One run: the system (protocol, variant, actors, faults, network), the bounds of the state
/// space, and the search.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelCfg {
    pub protocol: String,
    pub variant: String,
    /// Servers; one group (Raft group / ensemble) replicated on all of them.
    pub peers: usize,
    pub clients: usize,
    pub keys: u32,
    /// Ops per client (when no explicit script is given).
    pub ops: usize,
    /// The ops each client issues, one after another.
    pub script: Vec<Vec<(Key, Op)>>,
    /// Server crashes (clients never crash). By default a crash is a reboot: the server loses
    /// its volatile state and restarts from its durable storage in the same step, and `crashes`
    /// bounds the number of reboots in a run. With `crash_down`, stateright's own semantics:
    /// up to `crashes` servers are down at the same time and each restarts at any later step.
    pub crashes: usize,
    pub crash_down: bool,
    pub lossy: bool,
    pub network: NetKind,
    /// Lease reads: raft `read_mode = "lease"`, ensemble `trust_lease = true`. Off by default:
    /// timers have no durations in the model checker, so leases cannot be modelled soundly.
    pub lease_reads: bool,
    /// Clients may time out (an op ends as `info`; the client moves on). Off by default: an
    /// unanswered op then simply stays in flight, which is the same for safety and much smaller.
    pub client_timeouts: bool,
    /// Boundary: highest term (raft) / epoch (ensemble) explored.
    pub max_term: u64,
    /// Boundary: raft heartbeat rounds per leader and term; ensemble quorum requests per peer
    /// incarnation.
    pub max_rounds: u64,
    /// Raft: most entries per AppendEntries.
    pub max_entries: usize,
    /// Start from a state where node 0 leads (reached by the shortest server-only schedule),
    /// instead of from the cold start. Shortens counterexamples; alternative first elections are
    /// then not explored.
    pub warmup: bool,
    /// A schedule to follow before the search starts (after the warm-up, if any): action texts
    /// as printed in traces (each step takes the first enabled action containing the text).
    /// The search then explores everything that can happen after it.
    pub prefix: Vec<String>,
    // ---- the search
    pub mode: Mode,
    pub threads: usize,
    pub depth: Option<usize>,
    pub max_states: Option<usize>,
    /// Wall-clock budget in seconds.
    pub timeout_secs: Option<f64>,
    pub symmetry: bool,
    pub seed: u64,
}

impl ModelCfg {
    /// A neutral base; protocols override it with their defaults.
    pub fn base(protocol: &str, variant: &str) -> ModelCfg {
        ModelCfg {
            protocol: protocol.into(),
            variant: variant.into(),
            peers: 3,
            clients: 2,
            keys: 1,
            ops: 1,
            script: Vec::new(),
            crashes: 0,
            crash_down: false,
            lossy: false,
            network: NetKind::Unordered,
            lease_reads: false,
            client_timeouts: false,
            max_term: 2,
            max_rounds: 3,
            max_entries: 64,
            warmup: false,
            prefix: Vec::new(),
            mode: Mode::Bfs,
            threads: 2,
            depth: None,
            max_states: None,
            timeout_secs: Some(120.0),
            symmetry: false,
            seed: 0,
        }
    }

    /// Fills `script` from `clients`, `ops` and `keys` if it is empty.
    pub fn resolve_script(&mut self) {
        if self.script.is_empty() {
            self.script = generated_script(self.clients, self.ops, self.keys);
        }
        self.clients = self.script.len();
        self.ops = self.script.iter().map(Vec::len).max().unwrap_or(0);
    }

    /// Rejects impossible settings with one clear message.
    pub fn validate(&self) -> Result<(), String> {
        if self.peers == 0 || self.peers > 7 {
            return Err(format!(
                "--peers must be between 1 and 7, got {}",
                self.peers
            ));
        }
        if self.keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        if self.crash_down && self.crashes > self.peers {
            return Err(format!(
                "--crashes ({}) cannot exceed --peers ({}) with --crash-down",
                self.crashes, self.peers
            ));
        }
        if self.crashes > 255 {
            return Err("--crashes must be at most 255".into());
        }
        if self.threads == 0 {
            return Err("--threads must be at least 1".into());
        }
        if self.symmetry && self.mode == Mode::Bfs {
            return Err("--symmetry needs --mode dfs or simulate (stateright's BFS checker does not reduce symmetry)".into());
        }
        if self.max_entries == 0 {
            return Err("max entries per append must be at least 1".into());
        }
        Ok(())
    }
}

/// The default workload: client `c`'s `j`-th op works on key `(c + j) mod keys` and cycles
/// through write, read, cas, create, delete starting at position `c` (so with two clients and one
/// op each: one write and one read of the same key). Written values are unique.
pub fn generated_script(clients: usize, ops: usize, keys: u32) -> Vec<Vec<(Key, Op)>> {
    let mut last: std::collections::BTreeMap<u32, u64> = Default::default();
    let mut out = vec![Vec::new(); clients];
    for j in 0..ops {
        for (c, script) in out.iter_mut().enumerate() {
            let k = ((c + j) % keys as usize) as u32;
            let v = (c as u64 + 1) * 10 + j as u64 + 1;
            let op = match (c + j) % 5 {
                0 => Op::Write(v),
                1 => Op::Read,
                2 => Op::Cas {
                    expected: last.get(&k).copied().unwrap_or(11),
                    new: v,
                },
                3 => Op::Create(v),
                _ => Op::Delete,
            };
            if let Some(w) = crate::history::written_value(&op).flatten() {
                last.insert(k, w);
            }
            script.push((Key(k), op));
        }
    }
    out
}

/// Parses a script: clients separated by `;`, ops by `,`. An op is `w<v>` (write), `r` (read),
/// `c<expected>:<new>` (cas), `n<v>` (create), `d` (delete), `a<e>` (add to a set), optionally
/// prefixed by `k<key>.`
/// (key 0 otherwise). Example: `"w1,r; k1.n5,d"`.
pub fn parse_script(s: &str) -> Result<Vec<Vec<(Key, Op)>>, String> {
    let mut out = Vec::new();
    for client in s.split(';') {
        let mut ops = Vec::new();
        for item in client.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let (key, op) = match item.strip_prefix('k') {
                Some(rest) => {
                    let (k, op) = rest
                        .split_once('.')
                        .ok_or_else(|| format!("script op {item:?}: expected k<key>.<op>"))?;
                    let k: u32 = k
                        .parse()
                        .map_err(|_| format!("script op {item:?}: bad key {k:?}"))?;
                    (k, op)
                }
                None => (0, item),
            };
            let num = |x: &str| -> Result<u64, String> {
                x.parse()
                    .map_err(|_| format!("script op {item:?}: bad number {x:?}"))
            };
            let op = match op.split_at(1) {
                ("r", "") => Op::Read,
                ("d", "") => Op::Delete,
                ("w", v) => Op::Write(num(v)?),
                ("n", v) => Op::Create(num(v)?),
                ("a", v) => Op::Add(num(v)?),
                ("c", v) => {
                    let (e, n) = v
                        .split_once(':')
                        .ok_or_else(|| format!("script op {item:?}: cas is c<expected>:<new>"))?;
                    Op::Cas {
                        expected: num(e)?,
                        new: num(n)?,
                    }
                }
                _ => {
                    return Err(format!(
                        "script op {item:?}: expected w<v>, r, c<e>:<n>, n<v>, d or a<e>"
                    ))
                }
            };
            ops.push((Key(key), op));
        }
        out.push(ops);
    }
    if out.iter().all(Vec::is_empty) {
        return Err("the script has no ops".into());
    }
    Ok(out)
}

/// Renders a script back in the syntax of [`parse_script`].
pub fn format_script(script: &[Vec<(Key, Op)>]) -> String {
    script
        .iter()
        .map(|ops| {
            ops.iter()
                .map(|(k, op)| {
                    let o = match op {
                        Op::Read => "r".to_string(),
                        Op::Delete => "d".to_string(),
                        Op::Write(v) => format!("w{v}"),
                        Op::Create(v) => format!("n{v}"),
                        Op::Add(e) => format!("a{e}"),
                        Op::Cas { expected, new } => format!("c{expected}:{new}"),
                    };
                    if k.0 == 0 {
                        o
                    } else {
                        format!("k{}.{o}", k.0)
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl fmt::Display for ModelCfg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} peers, script [{}], {} {}, {}{} network, max term {}, max rounds {}{}{}",
            self.protocol,
            self.variant,
            self.peers,
            format_script(&self.script),
            if self.crash_down {
                "servers down at once"
            } else {
                "crashes"
            },
            self.crashes,
            if self.lossy { "lossy " } else { "" },
            self.network.name(),
            self.max_term,
            self.max_rounds,
            if self.lease_reads {
                ", lease reads"
            } else {
                ""
            },
            if self.warmup { ", warm start" } else { "" },
        )?;
        if !self.prefix.is_empty() {
            write!(f, ", after a given {}-step schedule", self.prefix.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_round_trip() {
        let s = parse_script("w1,r; k1.n5,d,c1:2").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(format_script(&s), "w1,r; k1.n5,d,c1:2");
        assert!(parse_script("x").is_err());
        assert!(parse_script("c1").is_err());
    }

    #[test]
    fn default_workload_is_a_write_and_a_read() {
        let s = generated_script(2, 1, 1);
        assert_eq!(
            s,
            vec![vec![(Key(0), Op::Write(11))], vec![(Key(0), Op::Read)]]
        );
    }
}
