//! `[protocol.eventual]`: the parameters, with Riak's defaults where Riak has one, and the
//! resolved configuration the actors run with.

use quorumlab_kv::{Key, Layout};
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::time::Duration;

/// Where a client sends a request first.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// The key's preference list in order, then its fallbacks (a smart client).
    #[default]
    Preflist,
    /// The client's own node (client `i` → node `i mod nodes`), then the next nodes on the ring
    /// (a client behind a node-local load balancer, as in a Jepsen test).
    Local,
}

/// `[protocol.eventual]`. Durations in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// `n_val`: replicas per key (the preference list's primaries).
    pub n: usize,
    /// Replies a read waits for (the coordinator's own copy counts).
    pub r: usize,
    /// Acknowledgements a write waits for (the coordinator's own copy counts).
    pub w: usize,
    /// `ring_creation_size`: partitions of the consistent-hash ring; partition `p` is owned by
    /// node `p mod nodes`, a key's preference list is the next `n` distinct nodes from its
    /// partition (the placement of `quorumlab_kv::Layout`).
    pub ring_size: usize,
    /// `allow_mult`: keep concurrent writes as siblings (true) or resolve them by
    /// last-write-wins on the coordinators' clocks (false).
    pub allow_mult: bool,
    /// Sloppy quorum: replace primaries that do not answer by the next nodes on the ring
    /// (fallbacks), which keep the write as a hint for the primary.
    pub sloppy_quorum: bool,
    /// A replica that has not answered a coordinator this long is suspected down (the
    /// coordinator turns to a fallback, if `sloppy_quorum`).
    pub sloppy_timeout_ms: u64,
    /// The coordinator gives up on a request after this long (the client sees `info` for a
    /// write, `fail` for a read or an add that never wrote).
    pub request_timeout_ms: u64,
    /// Hinted handoff: every this often, each node offers the fallback copies it holds to
    /// their primaries (and drops a copy once every primary has it).
    pub handoff_interval_ms: u64,
    /// After a read, push the merged object to replicas that answered with an older one.
    pub read_repair: bool,
    /// statebox `max_queue`: queued operations kept per statebox.
    pub max_queue: usize,
    /// statebox `expire_ms`: queued operations older than this (relative to the statebox's
    /// last modification) are dropped.
    pub expire_ms: u64,
    pub client_routing: Routing,
    /// Client adapter: without an answer after this long, try the next node.
    pub client_retry_ms: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            n: 3,
            r: 2,
            w: 2,
            ring_size: 64,
            allow_mult: true,
            sloppy_quorum: true,
            sloppy_timeout_ms: 100,
            request_timeout_ms: 800,
            handoff_interval_ms: 1000,
            read_repair: true,
            max_queue: 16,
            expire_ms: 300_000,
            client_routing: Routing::Preflist,
            client_retry_ms: 300,
        }
    }
}

impl Params {
    /// Rejects impossible values; the message names the key.
    pub fn check(&self, nodes: usize) -> Result<(), String> {
        let k = "protocol.eventual";
        if self.n == 0 || self.n > nodes {
            return Err(format!(
                "{k}.n must be between 1 and cluster.nodes ({nodes}), got {}",
                self.n
            ));
        }
        if self.r == 0 || self.r > self.n {
            return Err(format!(
                "{k}.r must be between 1 and n ({}), got {}",
                self.n, self.r
            ));
        }
        if self.w == 0 || self.w > self.n {
            return Err(format!(
                "{k}.w must be between 1 and n ({}), got {}",
                self.n, self.w
            ));
        }
        if self.ring_size == 0 || self.ring_size > 1 << 16 {
            return Err(format!(
                "{k}.ring_size must be between 1 and 65536, got {}",
                self.ring_size
            ));
        }
        if self.max_queue == 0 {
            return Err(format!("{k}.max_queue must be >= 1"));
        }
        for (name, v) in [
            ("sloppy_timeout_ms", self.sloppy_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("handoff_interval_ms", self.handoff_interval_ms),
            ("client_retry_ms", self.client_retry_ms),
        ] {
            if v == 0 {
                return Err(format!("{k}.{name} must be > 0"));
            }
            if v > 24 * 3600 * 1000 {
                return Err(format!("{k}.{name} must be at most one day"));
            }
        }
        Ok(())
    }
}

/// The resolved configuration every node shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cfg {
    pub nodes: usize,
    pub n: usize,
    pub r: usize,
    pub w: usize,
    /// The ring: `ring.groups[p]` is partition `p`'s preference list.
    pub ring: Layout,
    pub lww: bool,
    pub sloppy: bool,
    pub sloppy_timeout: Duration,
    pub request_timeout: Duration,
    pub handoff_interval: Duration,
    pub read_repair: bool,
    pub max_queue: usize,
    pub expire_ns: u64,
    pub routing: Routing,
    pub client_retry: Duration,
}

impl Cfg {
    pub fn new(p: &Params, layout: &Layout) -> Cfg {
        let ms = Duration::from_millis;
        let n = p.n.clamp(1, layout.nodes.max(1));
        let ring = Layout::new(
            layout.nodes,
            layout.clients,
            n,
            p.ring_size.max(1),
            layout.keys,
        )
        .expect("checked layout");
        Cfg {
            nodes: layout.nodes,
            n,
            r: p.r.clamp(1, n),
            w: p.w.clamp(1, n),
            ring,
            lww: !p.allow_mult,
            sloppy: p.sloppy_quorum,
            sloppy_timeout: ms(p.sloppy_timeout_ms),
            request_timeout: ms(p.request_timeout_ms),
            handoff_interval: ms(p.handoff_interval_ms),
            read_repair: p.read_repair,
            max_queue: p.max_queue.max(1),
            expire_ns: p.expire_ms.saturating_mul(1_000_000),
            routing: p.client_routing,
            client_retry: ms(p.client_retry_ms),
        }
    }

    /// The key's primaries, in preference-list order.
    pub fn primaries(&self, key: Key) -> &[Id] {
        self.ring.replicas_of(key)
    }

    /// Every node in ring order from the key's partition: the primaries, then the fallbacks.
    pub fn ring_order(&self, key: Key) -> Vec<Id> {
        let p = self.ring.group_of(key);
        (0..self.nodes)
            .map(|i| Id::from((p + i) % self.nodes))
            .collect()
    }

    pub fn is_primary(&self, key: Key, node: Id) -> bool {
        self.primaries(key).contains(&node)
    }
}
