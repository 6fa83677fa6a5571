//! Unit tests: parameters, single-peer state-machine steps driven directly through the
//! `Actor` interface, and a bounded stateright model-checking smoke test.

use crate::*;
use quorumlab_kv::{Datum, Key, Layout, Op};
use stateright::actor::{Actor, Command, Id, Out};
use std::borrow::Cow;

#[test]
fn defaults_are_riaks() {
    let p = Params::default();
    assert_eq!(
        (p.tick_ms, p.lease(), p.follower_timeout()),
        (500, 750, 3000)
    );
    assert_eq!(
        (p.peer_timeout(), p.notfound_read_delay_ms, p.trust_lease),
        (500, 1, true)
    );
    let old = Params {
        variant: Variant::LeasePr49,
        ..Params::default()
    };
    assert_eq!((old.lease(), old.follower_timeout()), (333, 1332));
}

#[test]
fn params_parse_and_check() {
    let p: Params = serde_json::from_str(r#"{"tick_ms": 100, "variant": "skip_rewrite"}"#).unwrap();
    assert_eq!(
        (p.tick_ms, p.lease(), p.variant),
        (100, 150, Variant::SkipRewrite)
    );
    let e = serde_json::from_str::<Params>(r#"{"tick": 100}"#).unwrap_err();
    assert!(e.to_string().contains("unknown field"), "{e}");
    let e = serde_json::from_str::<Params>(r#"{"variant": "fast"}"#).unwrap_err();
    assert!(e.to_string().contains("unknown variant"), "{e}");
    let bad = |p: Params| p.check().unwrap_err();
    assert!(bad(Params {
        tick_ms: 0,
        ..Params::default()
    })
    .contains("protocol.ensemble.tick_ms"));
    assert!(bad(Params {
        peer_workers: 0,
        ..Params::default()
    })
    .contains("peer_workers"));
    assert!(bad(Params {
        lease_ms: Some(0),
        ..Params::default()
    })
    .contains("follower_timeout_ms"));
    assert!(bad(Params {
        lease_ms: Some(100),
        variant: Variant::LeasePr49,
        ..Params::default()
    })
    .contains("lease_ms"));
    assert!(Params {
        lease_ms: Some(0),
        follower_timeout_ms: Some(1000),
        ..Params::default()
    }
    .check()
    .is_ok());
}

// ---------------------------------------------------------------- one node, driven by hand

type Cmd = Command<Msg, Timer, (), NodeDurable>;

struct One {
    s: Server,
    st: NodeSt,
    me: Id,
}

fn one(variant: Variant) -> (One, Vec<Cmd>) {
    let layout = Layout::new(3, 0, 3, 1, 10).unwrap();
    let params = Params {
        variant,
        ..Params::default()
    };
    let s = Ensemble::server(&layout, &params);
    let me = Id::from(0);
    let mut o = Out::new();
    let st = s.on_start(me, &None, &mut o);
    (One { s, st, me }, o.into_iter().collect())
}

impl One {
    fn deliver(&mut self, src: usize, m: Msg) -> Vec<Cmd> {
        let mut o = Out::new();
        let mut cow = Cow::Owned(std::mem::replace(&mut self.st, empty()));
        self.s.on_msg(self.me, &mut cow, Id::from(src), m, &mut o);
        self.st = cow.into_owned();
        o.into_iter().collect()
    }
    fn fire(&mut self, t: Timer) -> Vec<Cmd> {
        let mut o = Out::new();
        let mut cow = Cow::Owned(std::mem::replace(&mut self.st, empty()));
        self.s.on_timeout(self.me, &mut cow, &t, &mut o);
        self.st = cow.into_owned();
        o.into_iter().collect()
    }
    fn peer(&self) -> &Peer {
        &self.st.peers[0]
    }
}

fn empty() -> NodeSt {
    NodeSt {
        boot: 0,
        next_req: 0,
        icpt: Intercepts::default(),
        peers: Vec::new(),
    }
}

/// The request id of the message of kind `f` sent to `to`.
fn sent_req(cmds: &[Cmd], to: usize, f: impl Fn(&Msg) -> Option<u64>) -> u64 {
    cmds.iter()
        .find_map(|c| match c {
            Command::Send(d, m) if *d == Id::from(to) => f(m),
            _ => None,
        })
        .expect("sent")
}

fn replies_to(cmds: &[Cmd], to: usize) -> Vec<Body> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Send(d, Msg::Reply { body, .. }) if *d == Id::from(to) => Some(body.clone()),
            _ => None,
        })
        .collect()
}

fn saves(cmds: &[Cmd]) -> Vec<&NodeDurable> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Save(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// Boots node 0 and answers its probe from node 1 with a leaderless fact: election.
fn in_election(variant: Variant) -> One {
    let (mut n, cmds) = one(variant);
    assert_eq!(n.peer().role, Role::Probe);
    let req = sent_req(&cmds, 1, |m| match m {
        Msg::Probe { req, .. } => Some(*req),
        _ => None,
    });
    n.deliver(
        1,
        Msg::Reply {
            ens: 0,
            req,
            body: Body::Fact(Fact::default()),
        },
    );
    assert_eq!(n.peer().role, Role::Election);
    n
}

#[test]
fn prefollow_nacks_rival_candidates() {
    let mut n = in_election(Variant::Faithful);
    // Node 1 prepares epoch 1: accepted (reply with the fact), prefollow.
    let c = n.deliver(
        1,
        Msg::Prepare {
            ens: 0,
            req: 7,
            epoch: 1,
        },
    );
    assert_eq!(replies_to(&c, 1), vec![Body::Fact(Fact::default())]);
    assert_eq!(
        (n.peer().role, n.peer().prelim),
        (Role::Prefollow, Some((Id::from(1), 1)))
    );
    // Node 2 prepares the same epoch: nack.
    let c = n.deliver(
        2,
        Msg::Prepare {
            ens: 0,
            req: 8,
            epoch: 1,
        },
    );
    assert_eq!(replies_to(&c, 2), vec![Body::Nack]);
    // Node 1's new_epoch: ok, following (not ready), epoch adopted in memory only.
    let c = n.deliver(
        1,
        Msg::NewEpoch {
            ens: 0,
            req: 9,
            epoch: 1,
        },
    );
    assert_eq!(replies_to(&c, 1), vec![Body::Ok]);
    let p = n.peer();
    assert_eq!(
        (p.role, p.fact.epoch, p.fact.leader, p.ready),
        (Role::Following, 1, Some(Id::from(1)), false)
    );
    assert!(
        saves(&c).is_empty(),
        "the new epoch is not saved before the first commit"
    );
    // Following: prepares are nacked; gets are refused until the first commit.
    let c = n.deliver(
        2,
        Msg::Prepare {
            ens: 0,
            req: 10,
            epoch: 2,
        },
    );
    assert_eq!(replies_to(&c, 2), vec![Body::Nack]);
    let c = n.deliver(
        1,
        Msg::Get {
            ens: 0,
            req: 11,
            key: Key(1),
            epoch: 1,
        },
    );
    assert_eq!(replies_to(&c, 1), vec![Body::Nack]);
}

#[test]
fn election_ignores_stale_prepares_and_follows_commits() {
    let mut n = in_election(Variant::Faithful);
    let c = n.deliver(
        1,
        Msg::Prepare {
            ens: 0,
            req: 7,
            epoch: 0,
        },
    );
    assert!(replies_to(&c, 1).is_empty(), "not above our epoch: ignored");
    assert_eq!(n.peer().role, Role::Election);
    let f = Fact {
        epoch: 3,
        seq: 1,
        leader: Some(Id::from(2)),
    };
    let c = n.deliver(
        2,
        Msg::Commit {
            ens: 0,
            req: 8,
            fact: f,
        },
    );
    assert_eq!(replies_to(&c, 2), vec![Body::Ok]);
    assert_eq!(
        (n.peer().role, n.peer().fact, n.peer().ready),
        (Role::Following, f, true)
    );
    assert_eq!(saves(&c).len(), 1, "epoch and leader changed: saved");
}

#[test]
fn fact_is_saved_only_when_more_than_seq_changes() {
    let mut n = in_election(Variant::Faithful);
    let mut f = Fact {
        epoch: 1,
        seq: 1,
        leader: Some(Id::from(1)),
    };
    let c = n.deliver(
        1,
        Msg::Commit {
            ens: 0,
            req: 1,
            fact: f,
        },
    );
    assert_eq!(saves(&c).len(), 1);
    for s in 2..10 {
        f.seq = s;
        let c = n.deliver(
            1,
            Msg::Commit {
                ens: 0,
                req: s,
                fact: f,
            },
        );
        assert_eq!(replies_to(&c, 1), vec![Body::Ok]);
        assert!(saves(&c).is_empty(), "seq only: not saved");
    }
    assert_eq!(
        n.peer().dur.fact.map(|f| f.seq),
        Some(1),
        "the saved fact keeps its old seq"
    );
    // An older epoch is ignored.
    let c = n.deliver(
        2,
        Msg::Commit {
            ens: 0,
            req: 20,
            fact: Fact {
                epoch: 0,
                seq: 99,
                leader: Some(Id::from(2)),
            },
        },
    );
    assert!(replies_to(&c, 2).is_empty());
    // check_epoch: ok for our leader and epoch only.
    let c = n.deliver(
        1,
        Msg::CheckEpoch {
            ens: 0,
            req: 21,
            epoch: 1,
        },
    );
    assert_eq!(replies_to(&c, 1), vec![Body::Ok]);
    let c = n.deliver(
        2,
        Msg::CheckEpoch {
            ens: 0,
            req: 22,
            epoch: 1,
        },
    );
    assert_eq!(replies_to(&c, 2), vec![Body::Nack]);
    // K/V from the leader: served; from anyone else: nack.
    let obj = Obj {
        value: Some(Datum::Reg(5)),
        version: Version { epoch: 1, seq: 10 },
    };
    let c = n.deliver(
        1,
        Msg::Put {
            ens: 0,
            req: 23,
            key: Key(3),
            obj: obj.clone(),
            epoch: 1,
        },
    );
    assert_eq!(replies_to(&c, 1), vec![Body::Obj(Some(obj))]);
    assert_eq!(saves(&c).len(), 1, "the backend is durable");
    let c = n.deliver(
        2,
        Msg::Get {
            ens: 0,
            req: 24,
            key: Key(3),
            epoch: 1,
        },
    );
    assert_eq!(replies_to(&c, 2), vec![Body::Nack]);
    // Follower timeout: abandon and probe.
    n.fire(Timer::State(0));
    assert_eq!(
        (n.peer().role, n.peer().abandoned),
        (Role::Probe, Some((1, 9)))
    );
}

#[test]
fn volatile_fact_never_saves_the_fact() {
    let mut n = in_election(Variant::VolatileFact);
    let f = Fact {
        epoch: 4,
        seq: 1,
        leader: Some(Id::from(1)),
    };
    n.deliver(
        1,
        Msg::Commit {
            ens: 0,
            req: 1,
            fact: f,
        },
    );
    assert_eq!(n.peer().fact, f);
    assert_eq!(n.peer().dur.fact, None);
}

#[test]
fn followers_forward_and_others_redirect() {
    let mut n = in_election(Variant::Faithful);
    let req = quorumlab_kv::Request {
        id: 5,
        key: Key(1),
        op: Op::Read,
    };
    let c = n.deliver(9, Msg::ClientReq { ens: 0, req });
    assert!(
        matches!(&c[..], [Command::Send(to, Msg::Redirect { id: 5, leader: None })] if *to == Id::from(9))
    );
    let f = Fact {
        epoch: 1,
        seq: 1,
        leader: Some(Id::from(2)),
    };
    n.deliver(
        2,
        Msg::Commit {
            ens: 0,
            req: 1,
            fact: f,
        },
    );
    let c = n.deliver(9, Msg::ClientReq { ens: 0, req });
    assert!(
        matches!(&c[..], [Command::Send(to, Msg::Forward { client, .. })] if *to == Id::from(2) && *client == Id::from(9))
    );
}

// ---------------------------------------------------------------- model checking

#[test]
fn model_checker_explores_elections_without_panics() {
    use quorumlab_kv::{KvClient, KvNode, NodeState};
    use stateright::actor::{ActorModel, Network};
    use stateright::{Checker, Expectation, Model};
    use std::time::Duration;

    let layout = Layout::new(3, 1, 3, 1, 4).unwrap();
    let params = Params::default();
    let server = Ensemble::server(&layout, &params);
    let mut client = KvClient::new(Ensemble::adapter(&layout, &params), Duration::from_secs(1));
    client.script = vec![(Key(1), Op::Write(1)), (Key(1), Op::Read)];
    let actors: Vec<Node> = (0..3)
        .map(|_| KvNode::Server(server.clone()))
        .chain([KvNode::Client(client)])
        .collect();
    let model = ActorModel::<Node, (), ()>::new((), ())
        .actors(actors)
        .init_network(Network::new_unordered_nonduplicating([]))
        .property(Expectation::Always, "one leader per epoch", |_, s| {
            let mut seen = std::collections::BTreeMap::new();
            for (i, st) in s.actor_states.iter().enumerate() {
                if let NodeState::Server(Some(n)) = &**st {
                    for p in n.peers.iter().filter(|p| p.is_leading()) {
                        if *seen.entry(p.fact.epoch).or_insert(i) != i {
                            return false;
                        }
                    }
                }
            }
            true
        });
    let checker = model
        .checker()
        .threads(1)
        .target_state_count(20_000)
        .timeout(Duration::from_secs(60))
        .spawn_bfs()
        .join();
    assert!(checker.unique_state_count() > 1000);
    checker.assert_no_discovery("one leader per epoch");
}

/// Exploratory (ignored): can stateright find two leaders of one epoch with one crash?
/// `cargo test --release -p quorumlab-ensemble --lib -- --ignored --nocapture mc_`
#[test]
#[ignore]
fn mc_two_leaders_with_one_crash() {
    use quorumlab_kv::{KvNode, NodeState};
    use stateright::actor::{ActorModel, Network};
    use stateright::{Checker, Expectation, Model};
    use std::time::Duration;

    let layout = Layout::new(3, 0, 3, 1, 4).unwrap();
    let server = Ensemble::server(&layout, &Params::default());
    let actors: Vec<Node> = (0..3).map(|_| KvNode::Server(server.clone())).collect();
    let model = ActorModel::<Node, (), ()>::new((), ())
        .actors(actors)
        .init_network(Network::new_unordered_nonduplicating([]))
        .max_crashes(1)
        .property(Expectation::Always, "one leader per epoch", |_, s| {
            let mut seen = std::collections::BTreeMap::new();
            for (i, st) in s.actor_states.iter().enumerate() {
                if let NodeState::Server(Some(n)) = &**st {
                    for p in n.peers.iter().filter(|p| p.is_leading()) {
                        if *seen.entry(p.fact.epoch).or_insert(i) != i {
                            return false;
                        }
                    }
                }
            }
            true
        });
    let secs = std::env::var("MC_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    fn report<M: Model>(checker: impl Checker<M>)
    where
        M::Action: std::fmt::Debug + Clone + PartialEq,
        M::State: std::fmt::Debug + Clone + PartialEq,
    {
        println!("states: {}", checker.unique_state_count());
        match checker.discovery("one leader per epoch") {
            Some(path) => {
                let actions = path.into_actions();
                println!("counterexample, {} steps:", actions.len());
                for a in actions {
                    println!("  {a:?}");
                }
            }
            None => println!("no counterexample within the budget"),
        }
    }
    let builder = model
        .checker()
        .threads(2)
        .timeout(Duration::from_secs(secs));
    if std::env::var("MC_SIM").is_ok() {
        report(
            builder
                .target_max_depth(60)
                .spawn_simulation(1, stateright::UniformChooser)
                .join(),
        );
    } else {
        report(builder.target_max_depth(26).spawn_dfs().join());
    }
}
