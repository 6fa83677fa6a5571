//! Which protocols run over real networks, and how their messages and durable storage are
//! encoded (postcard: compact, varint integers, serde-driven).
//!
//! The protocol crates' message and storage types do not derive serde, so each protocol gets a
//! mirror of its wire types here, with conversions. Ids travel as `u64`.

use quorumlab_kv::{
    ClientAdapter, ClientConfig, KvNode, KvProtocol, KvServer, Layout, Outcome, Request,
};
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

fn id(x: u64) -> Id {
    Id::from(x as usize)
}
fn raw(i: Id) -> u64 {
    usize::from(i) as u64
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

#[derive(Serialize, Deserialize)]
enum SingleMsg {
    Req(Request),
    Resp(u64, Outcome),
}

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
        use quorumlab_single::Msg as M;
        enc(&match *m {
            M::Req(r) => SingleMsg::Req(r),
            M::Resp(i, o) => SingleMsg::Resp(i, o),
        })
    }
    fn dec_msg(b: &[u8]) -> Option<quorumlab_single::Msg> {
        use quorumlab_single::Msg as M;
        Some(match dec::<SingleMsg>(b)? {
            SingleMsg::Req(r) => M::Req(r),
            SingleMsg::Resp(i, o) => M::Resp(i, o),
        })
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

mod raft_wire {
    use super::*;
    use quorumlab_raft as r;

    #[derive(Serialize, Deserialize)]
    pub enum Cmd {
        Noop,
        Kv { client: u64, req: Request },
    }
    #[derive(Serialize, Deserialize)]
    pub struct Entry {
        pub term: u64,
        pub cmd: Cmd,
    }
    #[derive(Serialize, Deserialize)]
    pub enum Resp {
        Done(Outcome),
        Redirect(Option<u64>),
        Unknown,
    }
    #[derive(Serialize, Deserialize)]
    pub enum Msg {
        Append {
            g: u32,
            term: u64,
            prev_index: u64,
            prev_term: u64,
            entries: Vec<Entry>,
            commit: u64,
            round: u64,
        },
        AppendAck {
            g: u32,
            term: u64,
            success: bool,
            index: u64,
            conflict_term: Option<u64>,
            round: u64,
        },
        Vote {
            g: u32,
            term: u64,
            last_index: u64,
            last_term: u64,
        },
        VoteAck {
            g: u32,
            term: u64,
            granted: bool,
        },
        ClientReq(Request),
        ClientResp {
            id: u64,
            resp: Resp,
        },
    }
    #[derive(Serialize, Deserialize)]
    pub struct Group {
        pub term: u64,
        pub voted_for: Option<u64>,
        pub log: Vec<Entry>,
    }
    #[derive(Serialize, Deserialize)]
    pub struct Durable {
        pub groups: Vec<Option<Group>>,
    }
    /// A save as an increment: per group, term and vote, the log prefix kept, entries appended.
    #[derive(Serialize, Deserialize)]
    pub struct GroupDelta {
        pub term: u64,
        pub voted_for: Option<u64>,
        pub keep: u64,
        pub entries: Vec<Entry>,
    }
    #[derive(Serialize, Deserialize)]
    pub struct Delta {
        pub groups: Vec<Option<GroupDelta>>,
    }

    pub fn entry_out(e: &r::Entry) -> Entry {
        Entry {
            term: e.term,
            cmd: match e.cmd {
                r::Cmd::Noop => Cmd::Noop,
                r::Cmd::Kv { client, req } => Cmd::Kv {
                    client: raw(client),
                    req,
                },
            },
        }
    }
    pub fn entry_in(e: Entry) -> r::Entry {
        r::Entry {
            term: e.term,
            cmd: match e.cmd {
                Cmd::Noop => r::Cmd::Noop,
                Cmd::Kv { client, req } => r::Cmd::Kv {
                    client: id(client),
                    req,
                },
            },
        }
    }
    pub fn msg_out(m: &r::Msg) -> Msg {
        match m {
            r::Msg::Append {
                g,
                term,
                prev_index,
                prev_term,
                entries,
                commit,
                round,
            } => Msg::Append {
                g: *g,
                term: *term,
                prev_index: *prev_index,
                prev_term: *prev_term,
                entries: entries.iter().map(entry_out).collect(),
                commit: *commit,
                round: *round,
            },
            r::Msg::AppendAck {
                g,
                term,
                success,
                index,
                conflict_term,
                round,
            } => Msg::AppendAck {
                g: *g,
                term: *term,
                success: *success,
                index: *index,
                conflict_term: *conflict_term,
                round: *round,
            },
            r::Msg::Vote {
                g,
                term,
                last_index,
                last_term,
            } => Msg::Vote {
                g: *g,
                term: *term,
                last_index: *last_index,
                last_term: *last_term,
            },
            r::Msg::VoteAck { g, term, granted } => Msg::VoteAck {
                g: *g,
                term: *term,
                granted: *granted,
            },
            r::Msg::ClientReq(q) => Msg::ClientReq(*q),
            r::Msg::ClientResp { id, resp } => Msg::ClientResp {
                id: *id,
                resp: match *resp {
                    r::Resp::Done(o) => Resp::Done(o),
                    r::Resp::Redirect(l) => Resp::Redirect(l.map(raw)),
                    r::Resp::Unknown => Resp::Unknown,
                },
            },
        }
    }
    pub fn msg_in(m: Msg) -> r::Msg {
        match m {
            Msg::Append {
                g,
                term,
                prev_index,
                prev_term,
                entries,
                commit,
                round,
            } => r::Msg::Append {
                g,
                term,
                prev_index,
                prev_term,
                entries: entries.into_iter().map(entry_in).collect(),
                commit,
                round,
            },
            Msg::AppendAck {
                g,
                term,
                success,
                index,
                conflict_term,
                round,
            } => r::Msg::AppendAck {
                g,
                term,
                success,
                index,
                conflict_term,
                round,
            },
            Msg::Vote {
                g,
                term,
                last_index,
                last_term,
            } => r::Msg::Vote {
                g,
                term,
                last_index,
                last_term,
            },
            Msg::VoteAck { g, term, granted } => r::Msg::VoteAck { g, term, granted },
            Msg::ClientReq(q) => r::Msg::ClientReq(q),
            Msg::ClientResp { id: i, resp } => r::Msg::ClientResp {
                id: i,
                resp: match resp {
                    Resp::Done(o) => r::Resp::Done(o),
                    Resp::Redirect(l) => r::Resp::Redirect(l.map(id)),
                    Resp::Unknown => r::Resp::Unknown,
                },
            },
        }
    }
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
                    Some(raft_wire::GroupDelta {
                        term: n.term,
                        voted_for: n.voted_for.map(raw),
                        keep: d - 1,
                        entries: n
                            .log
                            .slice(d, n.log.last_index())
                            .iter()
                            .map(raft_wire::entry_out)
                            .collect(),
                    })
                }
                _ => return None,
            });
        }
        Some(enc(&raft_wire::Delta { groups }))
    }

    fn apply_delta(base: &mut quorumlab_raft::Durable, rec: &[u8]) -> Option<()> {
        let d: raft_wire::Delta = dec(rec)?;
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
                    g.voted_for = d.voted_for.map(id);
                    g.log.truncate(d.keep);
                    for e in d.entries {
                        g.log.push(raft_wire::entry_in(e));
                    }
                }
                _ => return None,
            }
        }
        Some(())
    }

    fn endpoints(spec: &Spec, layout: &Layout) -> Result<Endpoints<Self>, String> {
        build::<quorumlab_raft::Raft, _, _>(layout, &spec.protocol.raft, spec.workload.timeout_ms)
    }
    fn enc_msg(m: &quorumlab_raft::Msg) -> Vec<u8> {
        enc(&raft_wire::msg_out(m))
    }
    fn dec_msg(b: &[u8]) -> Option<quorumlab_raft::Msg> {
        dec(b).map(raft_wire::msg_in)
    }
    fn enc_storage(s: &quorumlab_raft::Durable) -> Vec<u8> {
        let d = raft_wire::Durable {
            groups: s
                .groups
                .iter()
                .map(|g| {
                    g.as_ref().map(|g| raft_wire::Group {
                        term: g.term,
                        voted_for: g.voted_for.map(raw),
                        log: g.log.iter().map(raft_wire::entry_out).collect(),
                    })
                })
                .collect(),
        };
        enc(&d)
    }
    fn dec_storage(b: &[u8]) -> Option<quorumlab_raft::Durable> {
        let d: raft_wire::Durable = dec(b)?;
        Some(quorumlab_raft::Durable {
            groups: d
                .groups
                .into_iter()
                .map(|g| {
                    g.map(|g| {
                        let mut log = quorumlab_raft::Log::new();
                        for e in g.log {
                            log.push(raft_wire::entry_in(e));
                        }
                        quorumlab_raft::GroupDurable {
                            term: g.term,
                            voted_for: g.voted_for.map(id),
                            log,
                        }
                    })
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorumlab_kv::{Key, Op};

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
}

// ---------------------------------------------------------------------------------------------
// ensemble (serde remote derives: the mirror types are checked field by field by the compiler)

pub struct EnsembleReal;

mod ensemble_wire {
    use quorumlab_ensemble as e;
    use quorumlab_kv::{Key, Request, Value};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use stateright::actor::Id;
    use std::sync::Arc;

    #[derive(Serialize, Deserialize)]
    #[serde(remote = "e::Version")]
    pub struct VersionDef {
        epoch: u64,
        seq: u64,
    }
    #[derive(Serialize, Deserialize)]
    #[serde(remote = "e::Fact")]
    pub struct FactDef {
        epoch: u64,
        seq: u64,
        leader: Option<Id>,
    }
    #[derive(Serialize, Deserialize)]
    #[serde(remote = "e::Obj")]
    pub struct ObjDef {
        value: Option<Value>,
        #[serde(with = "VersionDef")]
        version: e::Version,
    }
    #[derive(Serialize, Deserialize)]
    pub struct ObjW(#[serde(with = "ObjDef")] pub e::Obj);
    #[derive(Serialize, Deserialize)]
    pub struct FactW(#[serde(with = "FactDef")] pub e::Fact);
    #[derive(Serialize, Deserialize)]
    pub struct VersionW(#[serde(with = "VersionDef")] pub e::Version);

    mod opt_obj {
        use super::*;
        pub fn serialize<S: Serializer>(o: &Option<e::Obj>, s: S) -> Result<S::Ok, S::Error> {
            o.map(ObjW).serialize(s)
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<e::Obj>, D::Error> {
            Ok(Option::<ObjW>::deserialize(d)?.map(|w| w.0))
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(remote = "e::Body")]
    pub enum BodyDef {
        Fact(#[serde(with = "FactDef")] e::Fact),
        Ok,
        Obj(#[serde(with = "opt_obj")] Option<e::Obj>),
        Nack,
    }
    #[derive(Serialize, Deserialize)]
    #[serde(remote = "e::KvReply")]
    pub enum KvReplyDef {
        Ok(Option<Value>),
        Precondition,
        Failed,
        Timeout,
        Unavailable,
    }
    #[derive(Serialize, Deserialize)]
    #[serde(remote = "e::Intercept")]
    pub enum InterceptDef {
        CheckEpochFalse(bool),
        DropPuts(bool),
        TrustLease(Option<bool>),
        LeaseMs(Option<u64>),
        NotfoundDelayMs(Option<u64>),
    }
    #[derive(Serialize, Deserialize)]
    #[serde(remote = "e::Msg")]
    pub enum MsgDef {
        Probe {
            ens: u32,
            req: u64,
        },
        Prepare {
            ens: u32,
            req: u64,
            epoch: u64,
        },
        NewEpoch {
            ens: u32,
            req: u64,
            epoch: u64,
        },
        Commit {
            ens: u32,
            req: u64,
            #[serde(with = "FactDef")]
            fact: e::Fact,
        },
        Get {
            ens: u32,
            req: u64,
            key: Key,
            epoch: u64,
        },
        Put {
            ens: u32,
            req: u64,
            key: Key,
            #[serde(with = "ObjDef")]
            obj: e::Obj,
            epoch: u64,
        },
        CheckEpoch {
            ens: u32,
            req: u64,
            epoch: u64,
        },
        UpdateHash {
            ens: u32,
            key: Key,
            #[serde(with = "VersionDef")]
            version: e::Version,
        },
        Reply {
            ens: u32,
            req: u64,
            #[serde(with = "BodyDef")]
            body: e::Body,
        },
        ClientReq {
            ens: u32,
            req: Request,
        },
        Forward {
            ens: u32,
            client: Id,
            req: Request,
        },
        ClientResp {
            id: u64,
            #[serde(with = "KvReplyDef")]
            reply: e::KvReply,
        },
        Redirect {
            id: u64,
            leader: Option<Id>,
        },
        Intercept(#[serde(with = "InterceptDef")] e::Intercept),
    }
    #[derive(Serialize, Deserialize)]
    pub struct MsgW(#[serde(with = "MsgDef")] pub e::Msg);

    #[derive(Serialize, Deserialize)]
    pub struct Peer {
        ens: u32,
        fact: Option<FactW>,
        data: Vec<(Key, Option<ObjW>, Option<VersionW>)>,
    }
    #[derive(Serialize, Deserialize)]
    pub struct Durable {
        boot: u64,
        peers: Vec<Peer>,
    }

    pub fn storage_out(s: &e::NodeDurable) -> Durable {
        Durable {
            boot: s.boot,
            peers: s
                .peers
                .iter()
                .map(|p| Peer {
                    ens: p.ens,
                    fact: p.fact.map(FactW),
                    data: p
                        .data
                        .iter()
                        .map(|(k, r)| (k, r.obj.map(ObjW), r.known.map(VersionW)))
                        .collect(),
                })
                .collect(),
        }
    }
    pub fn storage_in(d: Durable) -> e::NodeDurable {
        e::NodeDurable {
            boot: d.boot,
            peers: d
                .peers
                .into_iter()
                .map(|p| {
                    let mut pd = e::PeerDurable::new(p.ens);
                    pd.fact = p.fact.map(|f| f.0);
                    for (k, obj, known) in p.data {
                        if let Some(o) = obj {
                            pd.data.put_obj(k, o.0);
                        }
                        if let Some(v) = known {
                            pd.data.set_known(k, v.0);
                        }
                    }
                    Arc::new(pd)
                })
                .collect(),
        }
    }
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
        enc(&ensemble_wire::MsgW(m.clone()))
    }
    fn dec_msg(b: &[u8]) -> Option<quorumlab_ensemble::Msg> {
        dec::<ensemble_wire::MsgW>(b).map(|w| w.0)
    }
    fn enc_storage(s: &quorumlab_ensemble::NodeDurable) -> Vec<u8> {
        enc(&ensemble_wire::storage_out(s))
    }
    fn dec_storage(b: &[u8]) -> Option<quorumlab_ensemble::NodeDurable> {
        dec(b).map(ensemble_wire::storage_in)
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
