//! Which protocols run over real networks, and how their messages and durable storage are
//! encoded (postcard: compact, varint integers, serde-driven).
//!
//! The protocol crates' message types derive serde and are encoded as they are. Storage is
//! encoded as the real types too, in a layout of this crate's choosing where the in-memory one is
//! an optimization (raft: a snapshot is the increment from empty storage; ensemble: each peer's
//! trie of keys as a flat list of records).

use quorumlab_kv::{ClientAdapter, ClientConfig, KvNode, KvProtocol, KvServer, Layout};
use quorumlab_sim::ActorProcess;
use quorumlab_workloads::Spec;
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id};
use std::time::Duration;

/// The protocol message type of `R`.
pub type PMsg<R> = <<R as RealProtocol>::S as Actor>::Msg;
/// The durable storage type of `R`.
pub type PStore<R> = <<R as RealProtocol>::S as Actor>::Storage;

/// The actors of a real cluster (one per endpoint).
pub type Endpoints<R> = Vec<KvNode<<R as RealProtocol>::S, <R as RealProtocol>::C>>;

/// A protocol that can run as real processes.
pub trait RealProtocol: 'static {
    const NAME: &'static str;
    type S: KvServer<Msg: Send + 'static> + Clone;
    type C: ClientAdapter<Msg = PMsg<Self>, State: PartialEq>;

    /// One actor per endpoint (servers `0..nodes`, then clients), built as the simulator does.
    fn endpoints(spec: &Spec, layout: &Layout) -> Result<Endpoints<Self>, String>;
    fn enc_msg(m: &PMsg<Self>) -> Vec<u8>;
    fn dec_msg(b: &[u8]) -> Option<PMsg<Self>>;
    fn enc_storage(s: &PStore<Self>) -> Vec<u8>;
    fn dec_storage(b: &[u8]) -> Option<PStore<Self>>;

    /// Whether saves can be written as increments ([`Self::delta`]) to an append-only log.
    const INCREMENTAL: bool = false;
    /// An increment that turns `prev` (the last saved storage) into `new`; `None`: write a full
    /// snapshot instead.
    fn delta(_prev: &PStore<Self>, _new: &PStore<Self>) -> Option<Vec<u8>> {
        None
    }
    /// Applies an increment made by [`Self::delta`]; `None` if it does not fit `base`.
    fn apply_delta(_base: &mut PStore<Self>, _rec: &[u8]) -> Option<()> {
        None
    }
    /// Called before each handler of an actor (eventual's servers read a clock).
    fn before(_actor: &KvNode<Self::S, Self::C>) {}
}

/// The actors `P::build` makes, taken out of their simulator wrappers.
fn build<P, S, C>(
    layout: &Layout,
    params: &P::Params,
    timeout_ms: f64,
) -> Result<Vec<KvNode<S, C>>, String>
where
    P: KvProtocol<Proc = ActorProcess<KvNode<S, C>>>,
    S: KvServer + Clone,
    C: ClientAdapter<Msg = S::Msg>,
    C::State: PartialEq,
{
    P::check(params, layout)?;
    let client = ClientConfig {
        timeout: Duration::from_secs_f64(timeout_ms.max(1.0) / 1000.0),
    };
    Ok(P::build(layout, params, &client)
        .iter()
        .map(|p| p.actor().clone())
        .collect())
}

fn enc<T: Serialize>(t: &T) -> Vec<u8> {
    postcard::to_stdvec(t).expect("postcard encodes plain data")
}
fn dec<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Option<T> {
    postcard::from_bytes(b).ok()
}

// ---------------------------------------------------------------------------------------------
// single

pub struct SingleReal;

impl RealProtocol for SingleReal {
    const NAME: &'static str = "single";
    type S = quorumlab_single::Server;
    type C = quorumlab_single::Adapter;

    fn endpoints(spec: &Spec, layout: &Layout) -> Result<Endpoints<Self>, String> {
        build::<quorumlab_single::Single, _, _>(
            layout,
            &spec.protocol.single,
            spec.workload.timeout_ms,
        )
    }
    fn enc_msg(m: &quorumlab_single::Msg) -> Vec<u8> {
        enc(m)
    }
    fn dec_msg(b: &[u8]) -> Option<quorumlab_single::Msg> {
        dec(b)
    }
    fn enc_storage(s: &PStore<Self>) -> Vec<u8> {
        enc(s)
    }
    fn dec_storage(b: &[u8]) -> Option<PStore<Self>> {
        dec(b)
    }
}

// ---------------------------------------------------------------------------------------------
// raft

pub struct RaftReal;

/// A raft save as an increment: per group, term and vote, the log prefix kept, entries appended.
/// A snapshot is the increment from empty storage.
#[derive(Serialize, Deserialize)]
struct GroupDelta {
    term: u64,
    voted_for: Option<Id>,
    keep: u64,
    entries: Vec<quorumlab_raft::Entry>,
}
#[derive(Serialize, Deserialize)]
struct Delta {
    groups: Vec<Option<GroupDelta>>,
}

fn raft_apply(base: &mut quorumlab_raft::Durable, d: Delta) -> Option<()> {
    if d.groups.len() != base.groups.len() {
        return None;
    }
    for (g, d) in base.groups.iter_mut().zip(d.groups) {
        match (g, d) {
            (None, None) => {}
            (Some(g), Some(d)) => {
                if d.keep > g.log.last_index() {
                    return None;
                }
                g.term = d.term;
                g.voted_for = d.voted_for;
                g.log.truncate(d.keep);
                for e in d.entries {
                    g.log.push(e);
                }
            }
            _ => return None,
        }
    }
    Some(())
}

impl RealProtocol for RaftReal {
    const NAME: &'static str = "raft";
    type S = quorumlab_raft::Server;
    type C = quorumlab_raft::Adapter;
    const INCREMENTAL: bool = true;

    fn delta(prev: &quorumlab_raft::Durable, new: &quorumlab_raft::Durable) -> Option<Vec<u8>> {
        if prev.groups.len() != new.groups.len() {
            return None;
        }
        let mut groups = Vec::with_capacity(new.groups.len());
        for (p, n) in prev.groups.iter().zip(&new.groups) {
            groups.push(match (p, n) {
                (None, None) => None,
                (Some(p), Some(n)) => {
                    let d = n.log.first_difference(&p.log);
                    Some(GroupDelta {
                        term: n.term,
                        voted_for: n.voted_for,
                        keep: d - 1,
                        entries: n.log.slice(d, n.log.last_index()),
                    })
                }
                _ => return None,
            });
        }
        Some(enc(&Delta { groups }))
    }

    fn apply_delta(base: &mut quorumlab_raft::Durable, rec: &[u8]) -> Option<()> {
        raft_apply(base, dec(rec)?)
    }

    fn endpoints(spec: &Spec, layout: &Layout) -> Result<Endpoints<Self>, String> {
        build::<quorumlab_raft::Raft, _, _>(layout, &spec.protocol.raft, spec.workload.timeout_ms)
    }
    fn enc_msg(m: &quorumlab_raft::Msg) -> Vec<u8> {
        enc(m)
    }
    fn dec_msg(b: &[u8]) -> Option<quorumlab_raft::Msg> {
        dec(b)
    }
    fn enc_storage(s: &quorumlab_raft::Durable) -> Vec<u8> {
        let d = Delta {
            groups: s
                .groups
                .iter()
                .map(|g| {
                    g.as_ref().map(|g| GroupDelta {
                        term: g.term,
                        voted_for: g.voted_for,
                        keep: 0,
                        entries: g.log.iter().cloned().collect(),
                    })
                })
                .collect(),
        };
        enc(&d)
    }
    fn dec_storage(b: &[u8]) -> Option<quorumlab_raft::Durable> {
        let d: Delta = dec(b)?;
        let mut s = quorumlab_raft::Durable {
            groups: d
                .groups
                .iter()
                .map(|g| {
                    g.as_ref().map(|_| quorumlab_raft::GroupDurable {
                        term: 0,
                        voted_for: None,
                        log: quorumlab_raft::Log::new(),
                    })
                })
                .collect(),
        };
        raft_apply(&mut s, d)?;
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorumlab_kv::{Key, Op, Request};

    #[test]
    fn raft_messages_round_trip() {
        let m = quorumlab_raft::Msg::Append {
            g: 0,
            term: 3,
            prev_index: 4,
            prev_term: 2,
            entries: vec![quorumlab_raft::Entry {
                term: 3,
                cmd: quorumlab_raft::Cmd::Kv {
                    client: Id::from(7),
                    req: Request {
                        id: 9,
                        key: Key(1),
                        op: Op::Write(5),
                    },
                },
            }],
            commit: 4,
            round: 11,
        };
        let b = RaftReal::enc_msg(&m);
        assert_eq!(RaftReal::dec_msg(&b), Some(m));
        assert_eq!(RaftReal::dec_msg(&[0xff, 0xff, 0xff]), None);
    }

    #[test]
    fn raft_increments_rebuild_the_storage() {
        use quorumlab_raft::{Cmd, Durable, Entry, GroupDurable, Log};
        let e = |term| Entry {
            term,
            cmd: Cmd::Noop,
        };
        let mut log = Log::new();
        for t in [1, 1, 2] {
            log.push(e(t));
        }
        let a = Durable {
            groups: vec![
                Some(GroupDurable {
                    term: 2,
                    voted_for: None,
                    log: log.clone(),
                }),
                None,
            ],
        };
        // The follower drops entry 3 and appends two of term 3, with a new term and vote.
        let mut log2 = log.clone();
        log2.truncate(2);
        log2.push(e(3));
        log2.push(e(3));
        let b = Durable {
            groups: vec![
                Some(GroupDurable {
                    term: 3,
                    voted_for: Some(Id::from(1)),
                    log: log2,
                }),
                None,
            ],
        };
        let rec = RaftReal::delta(&a, &b).unwrap();
        let mut c = RaftReal::dec_storage(&RaftReal::enc_storage(&a)).unwrap();
        RaftReal::apply_delta(&mut c, &rec).unwrap();
        assert_eq!(c, b);
    }

    #[test]
    fn ensemble_storage_round_trips() {
        use quorumlab_ensemble::{Fact, NodeDurable, Obj, PeerDurable, Version};
        let mut p = PeerDurable::new(3);
        p.fact = Some(Fact {
            epoch: 2,
            seq: 5,
            leader: Some(Id::from(1)),
        });
        let v = Version { epoch: 2, seq: 4 };
        p.data.put_obj(
            Key(7),
            Obj {
                value: Some(quorumlab_kv::Datum::Reg(9)),
                version: v,
            },
        );
        p.data.set_known(Key(8), v);
        let s = NodeDurable {
            boot: 4,
            peers: vec![std::sync::Arc::new(p)],
        };
        let back = EnsembleReal::dec_storage(&EnsembleReal::enc_storage(&s)).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn eventual_increments_rebuild_the_storage() {
        use quorumlab_eventual::{Durable, Obj, Stored};
        use std::sync::Arc;
        let st = |n: u64| {
            Arc::new(Stored {
                obj: Obj::default(),
                hints: [Id::from(n as usize)].into_iter().collect(),
            })
        };
        let mut a = Durable::default();
        a.data.insert(Key(1), st(1));
        a.data.insert(Key(2), st(2));
        let mut b = a.clone();
        b.boots = 1;
        b.data.remove(&Key(1));
        b.data.insert(Key(3), st(3));
        b.data.insert(Key(2), st(4));
        let rec = EventualReal::delta(&a, &b).unwrap();
        let mut c = EventualReal::dec_storage(&EventualReal::enc_storage(&a)).unwrap();
        EventualReal::apply_delta(&mut c, &rec).unwrap();
        assert_eq!(c, b);
    }
}

// ---------------------------------------------------------------------------------------------
// ensemble

pub struct EnsembleReal;

/// An ensemble node's storage on disk: per hosted peer, its fact and its records as a flat list
/// (the in-memory trie is an optimization of the simulator's saves).
#[derive(Serialize, Deserialize)]
struct EnsPeer {
    ens: u32,
    fact: Option<quorumlab_ensemble::Fact>,
    data: Vec<(quorumlab_kv::Key, quorumlab_ensemble::Rec)>,
}
#[derive(Serialize, Deserialize)]
struct EnsDurable {
    boot: u64,
    peers: Vec<EnsPeer>,
}

impl RealProtocol for EnsembleReal {
    const NAME: &'static str = "ensemble";
    type S = quorumlab_ensemble::Server;
    type C = quorumlab_ensemble::Adapter;

    fn endpoints(spec: &Spec, layout: &Layout) -> Result<Endpoints<Self>, String> {
        build::<quorumlab_ensemble::Ensemble, _, _>(
            layout,
            &spec.protocol.ensemble,
            spec.workload.timeout_ms,
        )
    }
    fn enc_msg(m: &quorumlab_ensemble::Msg) -> Vec<u8> {
        enc(m)
    }
    fn dec_msg(b: &[u8]) -> Option<quorumlab_ensemble::Msg> {
        dec(b)
    }
    fn enc_storage(s: &quorumlab_ensemble::NodeDurable) -> Vec<u8> {
        enc(&EnsDurable {
            boot: s.boot,
            peers: s
                .peers
                .iter()
                .map(|p| EnsPeer {
                    ens: p.ens,
                    fact: p.fact,
                    data: p.data.iter().collect(),
                })
                .collect(),
        })
    }
    fn dec_storage(b: &[u8]) -> Option<quorumlab_ensemble::NodeDurable> {
        let d: EnsDurable = dec(b)?;
        Some(quorumlab_ensemble::NodeDurable {
            boot: d.boot,
            peers: d
                .peers
                .into_iter()
                .map(|p| {
                    let mut pd = quorumlab_ensemble::PeerDurable::new(p.ens);
                    pd.fact = p.fact;
                    for (k, r) in p.data {
                        if let Some(o) = r.obj {
                            pd.data.put_obj(k, o);
                        }
                        if let Some(v) = r.known {
                            pd.data.set_known(k, v);
                        }
                    }
                    std::sync::Arc::new(pd)
                })
                .collect(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// eventual

pub struct EventualReal;

/// An eventual node's storage on disk: its counters and each stored copy (object, hints).
#[derive(Serialize, Deserialize)]
struct EvDurable {
    boots: u64,
    next_epoch: u64,
    data: Vec<(
        quorumlab_kv::Key,
        quorumlab_eventual::Obj,
        std::collections::BTreeSet<Id>,
    )>,
}

/// An eventual save as an increment: the counters, the copies whose `Arc` changed since the last
/// save, and the keys dropped (saves are then proportional to what changed, not to the map).
#[derive(Serialize, Deserialize)]
struct EvDelta {
    boots: u64,
    next_epoch: u64,
    put: Vec<(
        quorumlab_kv::Key,
        quorumlab_eventual::Obj,
        std::collections::BTreeSet<Id>,
    )>,
    removed: Vec<quorumlab_kv::Key>,
}

impl RealProtocol for EventualReal {
    const NAME: &'static str = "eventual";
    type S = quorumlab_eventual::Server;
    type C = quorumlab_eventual::Adapter;
    const INCREMENTAL: bool = true;

    fn delta(
        prev: &quorumlab_eventual::Durable,
        new: &quorumlab_eventual::Durable,
    ) -> Option<Vec<u8>> {
        let put = new
            .data
            .iter()
            .filter(|(k, st)| {
                prev.data
                    .get(k)
                    .is_none_or(|p| !std::sync::Arc::ptr_eq(p, st))
            })
            .map(|(k, st)| (*k, st.obj.clone(), st.hints.clone()))
            .collect();
        let removed = prev
            .data
            .keys()
            .filter(|k| !new.data.contains_key(k))
            .copied()
            .collect();
        Some(enc(&EvDelta {
            boots: new.boots,
            next_epoch: new.next_epoch,
            put,
            removed,
        }))
    }

    fn apply_delta(base: &mut quorumlab_eventual::Durable, rec: &[u8]) -> Option<()> {
        let d: EvDelta = dec(rec)?;
        base.boots = d.boots;
        base.next_epoch = d.next_epoch;
        for k in d.removed {
            base.data.remove(&k);
        }
        for (k, obj, hints) in d.put {
            base.data.insert(
                k,
                std::sync::Arc::new(quorumlab_eventual::Stored { obj, hints }),
            );
        }
        Some(())
    }

    fn endpoints(spec: &Spec, layout: &Layout) -> Result<Endpoints<Self>, String> {
        use quorumlab_eventual::{Adapter, Clock, Eventual, Server};
        let params = &spec.protocol.eventual;
        Eventual::check(params, layout)?;
        let cfg = Eventual::cfg(layout, params);
        let timeout = Duration::from_secs_f64(spec.workload.timeout_ms.max(1.0) / 1000.0);
        let servers = (0..layout.nodes).map(|_| {
            KvNode::Server(Server {
                cfg: cfg.clone(),
                clock: Clock::default(),
            })
        });
        let adapter = Adapter { cfg: cfg.clone() };
        let clients = (0..layout.clients)
            .map(|_| KvNode::Client(quorumlab_kv::KvClient::new(adapter.clone(), timeout)));
        Ok(servers.chain(clients).collect())
    }
    /// The server's clock (its LWW and statebox timestamps) is the machine's: nanoseconds since
    /// the Unix epoch, so nodes on different machines compare real clocks, skew included.
    fn before(actor: &KvNode<Self::S, Self::C>) {
        if let KvNode::Server(s) = actor {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64;
            s.clock.set(now);
        }
    }
    fn enc_msg(m: &quorumlab_eventual::Msg) -> Vec<u8> {
        enc(m)
    }
    fn dec_msg(b: &[u8]) -> Option<quorumlab_eventual::Msg> {
        dec(b)
    }
    fn enc_storage(s: &quorumlab_eventual::Durable) -> Vec<u8> {
        enc(&EvDurable {
            boots: s.boots,
            next_epoch: s.next_epoch,
            data: s
                .data
                .iter()
                .map(|(k, st)| (*k, st.obj.clone(), st.hints.clone()))
                .collect(),
        })
    }
    fn dec_storage(b: &[u8]) -> Option<quorumlab_eventual::Durable> {
        let d: EvDurable = dec(b)?;
        Some(quorumlab_eventual::Durable {
            boots: d.boots,
            next_epoch: d.next_epoch,
            data: d
                .data
                .into_iter()
                .map(|(k, obj, hints)| {
                    (
                        k,
                        std::sync::Arc::new(quorumlab_eventual::Stored { obj, hints }),
                    )
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod dump {
    use super::*;
    #[test]
    #[ignore]
    fn dump_raft_dir() {
        let dir = std::env::var("DUMP_DIR").unwrap();
        let f = crate::storage::DurableFile::new(std::path::Path::new(&dir), false).unwrap();
        let (snap, recs) = f.load_all().unwrap();
        let mut s = RaftReal::dec_storage(&snap.unwrap()).unwrap();
        let g = s.groups[0].as_ref().unwrap();
        eprintln!("snapshot: term {} log {}", g.term, g.log.last_index());
        eprintln!("records: {}", recs.len());
        for r in &recs {
            RaftReal::apply_delta(&mut s, r).unwrap();
        }
        let g = s.groups[0].as_ref().unwrap();
        eprintln!("after: term {} log {}", g.term, g.log.last_index());
    }
}
