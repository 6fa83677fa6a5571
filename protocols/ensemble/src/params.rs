//! The protocol's parameters in the experiment spec (`[protocol.ensemble]`), with riak's
//! defaults (`riak_ensemble_config.erl`), and the resolved configuration the actor runs with.

use quorumlab_kv::Layout;
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::time::Duration;

/// Which behaviour to run: riak_ensemble as written, or a variant that reproduces a known or
/// suspected flaw (see docs/protocols/ensemble.md).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// riak_ensemble `develop` as written.
    #[default]
    Faithful,
    /// The lease default before PR #49: `tick * 2/3` (shorter than the tick).
    LeasePr49,
    /// Serve a non-fresh object after the quorum read without rewriting it.
    SkipRewrite,
    /// Never save the fact durably.
    VolatileFact,
}

impl Variant {
    pub fn name(&self) -> &'static str {
        match self {
            Variant::Faithful => "faithful",
            Variant::LeasePr49 => "lease_pr49",
            Variant::SkipRewrite => "skip_rewrite",
            Variant::VolatileFact => "volatile_fact",
        }
    }
}

/// `[protocol.ensemble]`. Every field has riak's default; durations in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// `ensemble_tick`: the leader commits its fact to a quorum this often (heartbeat).
    pub tick_ms: u64,
    /// `lease_duration`; default `tick * 3/2` (`tick * 2/3` with `variant = "lease_pr49"`).
    pub lease_ms: Option<u64>,
    /// `follower_timeout`; default `lease * 4`.
    pub follower_timeout_ms: Option<u64>,
    /// `trust_lease`: answer a fresh get from the leader's copy while the lease is valid.
    pub trust_lease: bool,
    /// `notfound_read_delay`: after a quorum of a read whose tree says notfound, wait this
    /// long for the remaining replies.
    pub notfound_read_delay_ms: u64,
    /// How long a quorum collection waits. riak waits one `ensemble_tick` (of inactivity for
    /// the blocking collector; absolute for probe/prepare/new_epoch); default `tick_ms`.
    pub peer_timeout_ms: Option<u64>,
    /// `probe_delay`: the pause before probing again after a failed probe.
    pub probe_delay_ms: u64,
    /// `peer_workers`: K/V workers per leader; a key always goes to the same worker
    /// (by hash), and a worker runs one request at a time.
    pub peer_workers: u32,
    /// Client adapter: back-off before retrying after a redirect or refusal (uniform in
    /// `[b, 2b)`).
    pub retry_backoff_ms: u64,
    pub variant: Variant,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            tick_ms: 500,
            lease_ms: None,
            follower_timeout_ms: None,
            trust_lease: true,
            notfound_read_delay_ms: 1,
            peer_timeout_ms: None,
            probe_delay_ms: 1000,
            peer_workers: 1,
            retry_backoff_ms: 20,
            variant: Variant::Faithful,
        }
    }
}

impl Params {
    /// The lease in effect (ms).
    pub fn lease(&self) -> u64 {
        match (self.lease_ms, self.variant) {
            (Some(l), _) => l,
            (None, Variant::LeasePr49) => self.tick_ms * 2 / 3,
            (None, _) => self.tick_ms * 3 / 2,
        }
    }
    /// The follower timeout in effect (ms).
    pub fn follower_timeout(&self) -> u64 {
        self.follower_timeout_ms.unwrap_or(self.lease() * 4)
    }
    /// The quorum wait in effect (ms).
    pub fn peer_timeout(&self) -> u64 {
        self.peer_timeout_ms.unwrap_or(self.tick_ms)
    }

    /// Rejects impossible values; the message names the key.
    pub fn check(&self) -> Result<(), String> {
        let k = "protocol.ensemble";
        if self.tick_ms == 0 {
            return Err(format!("{k}.tick_ms must be > 0"));
        }
        if self.follower_timeout_ms == Some(0) {
            return Err(format!("{k}.follower_timeout_ms must be > 0"));
        }
        if self.follower_timeout() == 0 {
            return Err(format!(
                "{k}.follower_timeout_ms must be > 0 (the default is lease * 4, and the lease is 0)"
            ));
        }
        if self.peer_timeout_ms == Some(0) {
            return Err(format!("{k}.peer_timeout_ms must be > 0"));
        }
        if self.probe_delay_ms == 0 {
            return Err(format!("{k}.probe_delay_ms must be > 0"));
        }
        if self.peer_workers == 0 {
            return Err(format!("{k}.peer_workers must be >= 1"));
        }
        if self.retry_backoff_ms == 0 {
            return Err(format!("{k}.retry_backoff_ms must be > 0"));
        }
        if self.variant == Variant::LeasePr49 && self.lease_ms.is_some() {
            return Err(format!(
                "{k}.lease_ms cannot be set together with variant = \"lease_pr49\" (the variant is the old default lease, tick * 2/3)"
            ));
        }
        let big = 24 * 3600 * 1000;
        for (name, v) in [
            ("tick_ms", Some(self.tick_ms)),
            ("lease_ms", self.lease_ms),
            ("follower_timeout_ms", self.follower_timeout_ms),
            ("notfound_read_delay_ms", Some(self.notfound_read_delay_ms)),
            ("peer_timeout_ms", self.peer_timeout_ms),
            ("probe_delay_ms", Some(self.probe_delay_ms)),
            ("retry_backoff_ms", Some(self.retry_backoff_ms)),
        ] {
            if v.is_some_and(|v| v > big) {
                return Err(format!("{k}.{name} must be at most one day ({big} ms)"));
            }
        }
        Ok(())
    }
}

/// The resolved configuration every server shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cfg {
    pub tick: Duration,
    pub lease: Duration,
    pub follower_timeout: Duration,
    pub prefollow_timeout: Duration,
    pub probe_delay: Duration,
    pub peer_timeout: Duration,
    pub notfound_read_delay: Duration,
    pub trust_lease: bool,
    pub workers: u32,
    pub variant: Variant,
    /// Members of each ensemble, in preference-list order (its one view).
    pub groups: Vec<Vec<Id>>,
}

impl Cfg {
    pub fn new(params: &Params, layout: &Layout) -> Cfg {
        let ms = Duration::from_millis;
        Cfg {
            tick: ms(params.tick_ms),
            lease: ms(params.lease()),
            follower_timeout: ms(params.follower_timeout()),
            prefollow_timeout: ms(params.tick_ms * 2),
            probe_delay: ms(params.probe_delay_ms),
            peer_timeout: ms(params.peer_timeout()),
            notfound_read_delay: ms(params.notfound_read_delay_ms),
            trust_lease: params.trust_lease,
            workers: params.peer_workers.max(1),
            variant: params.variant,
            groups: layout.groups.clone(),
        }
    }
}
