//! The timed side of the lease teaching case.
//!
//! In the model checker a timer can fire at any moment, so a lease (a promise that no other
//! leader can exist for a while) cannot protect anything: with lease reads enabled the checker
//! finds a stale read at once, for the faithful protocols too. The lease is safe only because of
//! *time*: followers wait longer before electing a new leader than the old leader keeps trusting
//! its lease, measured on clocks whose rates differ by a bounded factor.
//!
//! This module runs the same actors in the deterministic, timed simulator: an old leader is cut
//! off together with one client, the majority elects a new leader and accepts a write, and the
//! cut-off client reads from the old leader. With real clocks the faithful lease has run out
//! (no stale read); if the old leader's clock runs slow enough (drift beyond the bound) it is
//! still trusted and the read is stale; the seeded `unbounded_lease` bug is stale even with
//! perfect clocks.

use quorumlab_kv::{KvProtocol, Layout, Op, Outcome};
use quorumlab_sim::{Latency, LinkModel, MS};
use quorumlab_testkit::Cluster;
use serde::Serialize;
use std::time::Duration;

/// A small simulated cluster of protocol `K`: `nodes` servers in one group, `clients`
/// clients, 2 ms links, client timeout 2 s.
fn cluster<K: KvProtocol>(
    params: &K::Params,
    nodes: usize,
    clients: usize,
    seed: u64,
) -> Result<Cluster<K>, String> {
    let layout = Layout::new(nodes, clients, nodes, 1, 16)?;
    let link = LinkModel {
        latency: Latency::Constant { ms: 2.0 },
        ..LinkModel::default()
    };
    Cluster::try_start(layout, params.clone(), link, Duration::from_secs(2), seed)
}

/// Runs until group 0 has a leader other than `not` (checking every 10 ms), up to `limit_ms`.
fn wait_new_leader<K: KvProtocol>(
    c: &mut Cluster<K>,
    not: Option<usize>,
    limit_ms: u64,
) -> Option<usize> {
    let end = c.now() + limit_ms * MS;
    while c.now() < end {
        if let Some((l, _)) = c.leader(0) {
            if Some(l) != not {
                return Some(l);
            }
        }
        c.run_for(10 * MS);
    }
    None
}

/// Client `client` repeats `op` on key 1 until it is ok (an attempt waits for its answer;
/// attempts 20 ms apart), up to `limit_ms`.
fn call_until_ok<K: KvProtocol>(
    c: &mut Cluster<K>,
    client: usize,
    op: Op,
    limit_ms: u64,
) -> Option<Outcome> {
    let end = c.now() + limit_ms * MS;
    while c.now() < end {
        let left = (end - c.now()) / MS;
        match c.call(client, 1, op, left.max(1) * MS) {
            Some((o @ Outcome::Ok(_), _)) => return Some(o),
            _ => c.run_for(20 * MS),
        }
    }
    None
}

/// One run of the scenario.
#[derive(Clone, Debug, Serialize)]
pub struct LeaseRun {
    pub protocol: &'static str,
    pub setting: String,
    /// Clock rate of the old leader (1.0 = real time; 0.5 = runs at half speed).
    pub leader_clock_rate: f64,
    /// What the cut-off client's read returned (`None`: no answer).
    pub read: Option<String>,
    /// The read returned the value from before the majority's acknowledged write.
    pub stale: bool,
}

/// The scenario, generic over the protocol: write 1, read it, slow the leader's clock,
/// cut the leader off with client 0, let the majority elect a leader and write 2 (client 1),
/// then client 0 reads.
fn scenario<K: KvProtocol>(
    protocol: &'static str,
    setting: String,
    params: &K::Params,
    rate: f64,
    seed: u64,
) -> Result<LeaseRun, String> {
    let mut c = cluster::<K>(params, 3, 2, seed)?;
    let old = wait_new_leader(&mut c, None, 30_000).ok_or("no leader")?;
    if call_until_ok(&mut c, 0, Op::Write(1), 20_000) != Some(Outcome::Ok(None)) {
        return Err("the first write did not complete".into());
    }
    if call_until_ok(&mut c, 0, Op::Read, 20_000) != Some(Outcome::read_reg(Some(1))) {
        return Err("the first read did not return 1".into());
    }
    let old = c.leader(0).map_or(old, |(l, _)| l);
    c.sim.set_clock_rate(old, rate);
    let rest: Vec<usize> = (0..3).filter(|&i| i != old).chain([3 + 1]).collect();
    let now = c.sim.now();
    c.sim.network_mut().partition(&[vec![old, 3], rest], now);
    wait_new_leader(&mut c, Some(old), 60_000).ok_or("the majority elected no leader")?;
    if call_until_ok(&mut c, 1, Op::Write(2), 30_000) != Some(Outcome::Ok(None)) {
        return Err("the majority's write did not complete".into());
    }
    let o = c.call(0, 1, Op::Read, 3_000 * MS).map(|(o, _)| o);
    Ok(LeaseRun {
        protocol,
        setting,
        leader_clock_rate: rate,
        read: o.as_ref().map(crate::trace::outcome_text),
        stale: o == Some(Outcome::read_reg(Some(1))),
    })
}

/// Raft with lease reads (`faithful` or `unbounded_lease`), the old leader's clock at `rate`.
pub fn raft(variant: &str, rate: f64) -> Result<LeaseRun, String> {
    use quorumlab_raft::{Params, Raft, ReadMode, Variant};
    let v = match variant {
        "faithful" => Variant::Faithful,
        "unbounded_lease" => Variant::UnboundedLease,
        _ => return Err(format!("no raft lease scenario for {variant:?}")),
    };
    let params = Params {
        read_mode: ReadMode::Lease,
        variant: v,
        check_quorum: false,
        ..Params::default()
    };
    scenario::<Raft>(
        "raft",
        format!(
            "{variant}, read_mode = lease, lease {} ms, election timeout {}..{} ms",
            params.lease_ms, params.election_timeout_min_ms, params.election_timeout_max_ms
        ),
        &params,
        rate,
        5,
    )
}

/// riak_ensemble with trusted leases (`faithful` or `lease_pr49`), the old leader's clock at
/// `rate`.
pub fn ensemble(variant: &str, rate: f64) -> Result<LeaseRun, String> {
    use quorumlab_ensemble::{Ensemble, Params, Variant};
    let v = match variant {
        "faithful" => Variant::Faithful,
        "lease_pr49" => Variant::LeasePr49,
        _ => return Err(format!("no ensemble lease scenario for {variant:?}")),
    };
    let params = Params {
        variant: v,
        trust_lease: true,
        ..Params::default()
    };
    scenario::<Ensemble>(
        "ensemble",
        format!(
            "{variant}, trust_lease, tick {} ms, lease {} ms, follower timeout {} ms",
            params.tick_ms,
            params.lease(),
            params.follower_timeout()
        ),
        &params,
        rate,
        51,
    )
}

/// Every run of the teaching case: the faithful leases with real and with slow clocks, and the
/// seeded lease bugs with real clocks.
pub fn all() -> Result<Vec<LeaseRun>, String> {
    Ok(vec![
        raft("faithful", 1.0)?,
        raft("faithful", 0.9)?,
        raft("faithful", 0.1)?,
        raft("unbounded_lease", 1.0)?,
        ensemble("faithful", 1.0)?,
        ensemble("faithful", 0.5)?,
        ensemble("faithful", 0.02)?,
        ensemble("lease_pr49", 1.0)?,
    ])
}
