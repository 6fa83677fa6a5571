//! The Raft server actor: one per node, hosting a replica of every group placed on the node.

use crate::{Cmd, Entry, Index, Log, Msg, Params, ReadMode, Resp, Term, Variant};
use quorumlab_kv::{Key, KvMap, KvServer, Layout, Leadership, Outcome};
use stateright::actor::{Actor, Id, Out};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

/// Server timers; each carries its group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// Follower/candidate: start an election (randomized in the election timeout range).
    Election(u32),
    /// Leader: send the next heartbeat round.
    Heartbeat(u32),
    /// Follower: `election_timeout_min` has passed since the last AppendEntries from a leader
    /// (until then, RequestVotes for higher terms are disregarded: thesis §4.2.3).
    LeaderContact(u32),
    /// Leader: check that a majority acknowledged a recent round, else step down.
    CheckQuorum(u32),
    /// Leader: the lease earned by heartbeat round `round` of `term` ran out.
    Lease { g: u32, term: Term, round: u64 },
}

/// What a replica keeps durably: current term, vote and log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct GroupDurable {
    pub term: Term,
    pub voted_for: Option<Id>,
    pub log: Log,
}

/// A node's durable storage: one entry per group (`None` for groups not on the node).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Durable {
    pub groups: Vec<Option<GroupDurable>>,
}

/// A read waiting for ReadIndex confirmation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PendingRead {
    pub client: Id,
    pub id: u64,
    pub key: Key,
    /// Answer once `applied >= index` ...
    pub index: Index,
    /// ... and a majority acknowledged a broadcast round `>= round` (sent after the read arrived).
    pub round: u64,
}

/// Leader-only volatile state (indexed by position in the group's member list).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lead {
    pub next: Vec<Index>,
    pub matched: Vec<Index>,
    /// Highest broadcast round each member acknowledged in this term (own entry: `round`).
    pub acked: Vec<u64>,
    /// Number of the latest broadcast round of this term.
    pub round: u64,
    /// Index of this term's no-op entry: reads wait until it is applied.
    pub term_start: Index,
    pub reads: Vec<PendingRead>,
    /// Highest round whose lease timer has fired (leases of rounds up to it are over).
    pub lease_expired: u64,
    /// Round a majority must have acknowledged by the next quorum check.
    pub check_round: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Follower,
    Candidate { votes: Vec<bool> },
    Leader(Box<Lead>),
}

/// One Raft replica of group `group`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Replica {
    pub group: u32,
    /// This node's position in the group's member list.
    pub me: usize,
    /// Durable: term, vote, log.
    pub d: GroupDurable,
    pub role: Role,
    /// The leader this replica knows of in its term.
    pub leader: Option<Id>,
    pub commit: Index,
    pub applied: Index,
    /// The state machine: rebuilt from the log (by re-applying) after a restart.
    pub kv: KvMap,
    /// Heard from a current leader less than `election_timeout_min` ago.
    pub leader_contact: bool,
}

impl Replica {
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }
    pub fn term(&self) -> Term {
        self.d.term
    }
    pub fn log(&self) -> &Log {
        &self.d.log
    }
}

/// A server node's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    pub me: Id,
    /// Indexed by group; `None` for groups with no replica on this node.
    pub groups: Vec<Option<Replica>>,
}

/// The Raft server actor. Configuration only; all state is in [`State`].
#[derive(Clone, Debug)]
pub struct Server {
    pub layout: Layout,
    pub params: Params,
    read_mode: ReadMode,
}

/// Commands produced while handling one event: saves come first, then the rest, so that a node
/// never answers before what the answer depends on is durable.
struct Fx {
    o: Out<Server>,
    dirty: bool,
}

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

fn exactly(d: Duration) -> Range<Duration> {
    d..d
}

impl Server {
    pub fn new(layout: Layout, params: Params) -> Self {
        let read_mode = params.effective_read_mode();
        Server {
            layout,
            params,
            read_mode,
        }
    }

    fn members(&self, g: u32) -> &[Id] {
        &self.layout.groups[g as usize]
    }

    fn majority(&self, g: u32) -> usize {
        self.members(g).len() / 2 + 1
    }

    fn election_range(&self) -> Range<Duration> {
        ms(self.params.election_timeout_min_ms)..ms(self.params.election_timeout_max_ms)
    }

    fn lease_mode(&self) -> bool {
        self.read_mode == ReadMode::Lease
    }

    // ---------------------------------------------------------------- roles

    /// Adopts `term` (if higher) and becomes a follower, answering what a leader had pending.
    fn become_follower(&self, r: &mut Replica, fx: &mut Fx, term: Term, leader: Option<Id>) {
        if term > r.d.term {
            r.d.term = term;
            r.d.voted_for = None;
            fx.dirty = true;
        }
        let g = r.group;
        match std::mem::replace(&mut r.role, Role::Follower) {
            Role::Leader(lead) => {
                fx.o.cancel_timer(Timer::Heartbeat(g));
                fx.o.cancel_timer(Timer::CheckQuorum(g));
                fx.o.set_timer(Timer::Election(g), self.election_range());
                // Appended but not applied: the fate is unknown (a later leader may commit it).
                let from = r.applied.max(lead.term_start - 1) + 1;
                for i in from..=r.d.log.last_index() {
                    if let Some(Entry {
                        cmd: Cmd::Kv { client, req },
                        ..
                    }) = r.d.log.get(i)
                    {
                        fx.o.send(
                            *client,
                            Msg::ClientResp {
                                id: req.id,
                                resp: Resp::Unknown,
                            },
                        );
                    }
                }
                // Reads have no effect: the client may retry them anywhere.
                for rd in lead.reads {
                    fx.o.send(
                        rd.client,
                        Msg::ClientResp {
                            id: rd.id,
                            resp: Resp::Redirect(leader),
                        },
                    );
                }
            }
            Role::Candidate { .. } | Role::Follower => {}
        }
        r.leader = leader;
    }

    fn start_election(&self, me: Id, r: &mut Replica, fx: &mut Fx) {
        let g = r.group;
        r.d.term += 1;
        r.d.voted_for = Some(me);
        fx.dirty = true;
        r.leader = None;
        let n = self.members(g).len();
        let mut votes = vec![false; n];
        votes[r.me] = true;
        r.role = Role::Candidate { votes };
        fx.o.set_timer(Timer::Election(g), self.election_range());
        if n == 1 {
            self.become_leader(me, r, fx);
            return;
        }
        let msg = Msg::Vote {
            g,
            term: r.d.term,
            last_index: r.d.log.last_index(),
            last_term: r.d.log.last_term(),
        };
        for (p, &peer) in self.members(g).iter().enumerate() {
            if p != r.me {
                fx.o.send(peer, msg.clone());
            }
        }
    }

    fn become_leader(&self, me: Id, r: &mut Replica, fx: &mut Fx) {
        let g = r.group;
        let n = self.members(g).len();
        fx.o.cancel_timer(Timer::Election(g));
        // The no-op of this term (§8): once it commits, the leader knows every committed entry.
        r.d.log.push(Entry {
            term: r.d.term,
            cmd: Cmd::Noop,
        });
        fx.dirty = true;
        let last = r.d.log.last_index();
        let mut matched = vec![0; n];
        matched[r.me] = last;
        r.role = Role::Leader(Box::new(Lead {
            // The no-op is sent right away with the first round.
            next: vec![last; n],
            matched,
            acked: vec![0; n],
            round: 0,
            term_start: last,
            reads: Vec::new(),
            lease_expired: 0,
            check_round: 1,
        }));
        r.leader = Some(me);
        fx.o.set_timer(Timer::Heartbeat(g), exactly(ms(self.params.heartbeat_ms)));
        if self.params.check_quorum && n > 1 {
            fx.o.set_timer(
                Timer::CheckQuorum(g),
                exactly(ms(self.params.election_timeout_max_ms)),
            );
        }
        self.broadcast(r, fx);
        self.maybe_commit(r, fx);
    }

    // ---------------------------------------------------------------- leader: replication

    /// A new round: AppendEntries (with whatever each follower lacks) to every peer.
    fn broadcast(&self, r: &mut Replica, fx: &mut Fx) {
        let g = r.group;
        let term = r.d.term;
        let Role::Leader(lead) = &mut r.role else {
            return;
        };
        lead.round += 1;
        let round = lead.round;
        lead.acked[r.me] = round;
        if self.lease_mode() {
            fx.o.set_timer(
                Timer::Lease { g, term, round },
                exactly(ms(self.params.lease_ms)),
            );
        }
        for p in 0..self.members(g).len() {
            if p != r.me {
                self.send_append(r, p, fx);
            }
        }
    }

    /// Sends AppendEntries to member `p` from its `next` index (pipelined: `next` advances
    /// optimistically past what was sent; a rejection moves it back).
    fn send_append(&self, r: &mut Replica, p: usize, fx: &mut Fx) {
        let g = r.group;
        let Role::Leader(lead) = &mut r.role else {
            return;
        };
        let log = &r.d.log;
        let last = log.last_index();
        let next = lead.next[p].clamp(1, last + 1);
        let prev_index = next - 1;
        let prev_term = log.term(prev_index).expect("prev within the log");
        let to = last.min(prev_index + self.params.max_entries_per_append as u64);
        let entries = log.slice(next, to);
        lead.next[p] = to + 1;
        fx.o.send(
            self.members(g)[p],
            Msg::Append {
                g,
                term: r.d.term,
                prev_index,
                prev_term,
                entries,
                commit: r.commit,
                round: lead.round,
            },
        );
    }

    /// Sends new entries to every peer that has not been sent them yet.
    fn replicate(&self, r: &mut Replica, fx: &mut Fx) {
        let last = r.d.log.last_index();
        for p in 0..self.members(r.group).len() {
            if p == r.me {
                continue;
            }
            let behind = match &r.role {
                Role::Leader(lead) => lead.next[p] <= last,
                _ => return,
            };
            if behind {
                self.send_append(r, p, fx);
            }
        }
    }

    /// Advances the commit index to the highest index stored on a majority, if that entry is of
    /// the current term (Figure 8; the `commit_prior_term` variant drops that condition).
    fn maybe_commit(&self, r: &mut Replica, fx: &mut Fx) {
        let Role::Leader(lead) = &mut r.role else {
            return;
        };
        lead.matched[r.me] = r.d.log.last_index();
        let n = kth_largest(&lead.matched, self.majority(r.group));
        if n > r.commit
            && (self.params.variant == Variant::CommitPriorTerm
                || r.d.log.term(n) == Some(r.d.term))
        {
            r.commit = n;
            self.apply(r, fx);
        }
    }

    /// The highest round acknowledged by a majority (the leader counts its latest round).
    fn quorum_round(&self, r: &Replica) -> u64 {
        match &r.role {
            Role::Leader(lead) => kth_largest(&lead.acked, self.majority(r.group)),
            _ => 0,
        }
    }

    /// Whether a lease read may be served now.
    fn lease_valid(&self, r: &Replica) -> bool {
        let Role::Leader(lead) = &r.role else {
            return false;
        };
        if r.applied < lead.term_start {
            return false; // this term's no-op is not applied: committed state may be unknown
        }
        let q = self.quorum_round(r);
        if self.params.variant == Variant::UnboundedLease {
            q >= 1
        } else {
            q > lead.lease_expired
        }
    }

    // ---------------------------------------------------------------- state machine

    /// Applies committed entries in log order; the leader answers the clients of its own term.
    fn apply(&self, r: &mut Replica, fx: &mut Fx) {
        let leader_term = r.is_leader().then_some(r.d.term);
        while r.applied < r.commit {
            r.applied += 1;
            let e = r.d.log.get(r.applied).expect("commit <= last index");
            if let Cmd::Kv { client, req } = &e.cmd {
                let (outcome, _) = req.apply_to(&mut r.kv);
                if leader_term == Some(e.term) {
                    fx.o.send(
                        *client,
                        Msg::ClientResp {
                            id: req.id,
                            resp: Resp::Done(outcome),
                        },
                    );
                }
            }
        }
        self.serve_reads(r, fx);
    }

    /// Answers the ReadIndex reads whose round is confirmed and whose index is applied.
    fn serve_reads(&self, r: &mut Replica, fx: &mut Fx) {
        let q = self.quorum_round(r);
        let Role::Leader(lead) = &mut r.role else {
            return;
        };
        if lead.reads.is_empty() {
            return;
        }
        let (applied, kv) = (r.applied, &r.kv);
        lead.reads.retain(|rd| {
            if rd.round <= q && rd.index <= applied {
                fx.o.send(
                    rd.client,
                    Msg::ClientResp {
                        id: rd.id,
                        resp: Resp::Done(Outcome::Ok(kv.get(&rd.key).cloned())),
                    },
                );
                false
            } else {
                true
            }
        });
    }

    // ---------------------------------------------------------------- handlers

    fn on_client(&self, r: &mut Replica, fx: &mut Fx, src: Id, req: quorumlab_kv::Request) {
        if !r.is_leader() {
            fx.o.send(
                src,
                Msg::ClientResp {
                    id: req.id,
                    resp: Resp::Redirect(r.leader),
                },
            );
            return;
        }
        let is_read = matches!(req.op, quorumlab_kv::Op::Read);
        if is_read && self.read_mode != ReadMode::Log {
            if self.read_mode == ReadMode::Lease && self.lease_valid(r) {
                fx.o.send(
                    src,
                    Msg::ClientResp {
                        id: req.id,
                        resp: Resp::Done(Outcome::Ok(r.kv.get(&req.key).cloned())),
                    },
                );
                return;
            }
            // ReadIndex: record the commit index, confirm leadership with a fresh round.
            let commit = r.commit;
            if let Role::Leader(lead) = &mut r.role {
                lead.reads.push(PendingRead {
                    client: src,
                    id: req.id,
                    key: req.key,
                    index: commit.max(lead.term_start),
                    round: lead.round + 1,
                });
            }
            self.broadcast(r, fx);
            self.serve_reads(r, fx);
            return;
        }
        r.d.log.push(Entry {
            term: r.d.term,
            cmd: Cmd::Kv { client: src, req },
        });
        fx.dirty = true;
        self.replicate(r, fx);
        self.maybe_commit(r, fx);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append(
        &self,
        r: &mut Replica,
        fx: &mut Fx,
        src: Id,
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
        round: u64,
    ) {
        let g = r.group;
        if term < r.d.term {
            fx.o.send(
                src,
                Msg::AppendAck {
                    g,
                    term: r.d.term,
                    success: false,
                    index: 0,
                    conflict_term: None,
                    round,
                },
            );
            return;
        }
        if term > r.d.term || !matches!(r.role, Role::Follower) {
            self.become_follower(r, fx, term, Some(src));
        }
        r.leader = Some(src);
        r.leader_contact = true;
        fx.o.set_timer(
            Timer::LeaderContact(g),
            exactly(ms(self.params.election_timeout_min_ms)),
        );
        fx.o.set_timer(Timer::Election(g), self.election_range());

        let log = &mut r.d.log;
        let last = log.last_index();
        if prev_index > last {
            return self.reject(fx, src, g, term, last + 1, None, round);
        }
        let t = log.term(prev_index).expect("prev_index <= last");
        if t != prev_term {
            let first = log.first_index_of_term_at(prev_index);
            return self.reject(fx, src, g, term, first, Some(t), round);
        }
        let last_new = prev_index + entries.len() as u64;
        for (i, e) in entries.into_iter().enumerate() {
            let idx = prev_index + 1 + i as u64;
            match log.term(idx) {
                Some(t) if t == e.term => continue,
                Some(_) => {
                    log.truncate(idx - 1);
                    if idx <= r.commit {
                        // Only reachable in the buggy variants: a committed entry is replaced.
                        // Rebuild the state machine so the replica stays self-consistent.
                        r.commit = idx - 1;
                        r.applied = 0;
                        r.kv.clear();
                    }
                    log.push(e);
                    fx.dirty = true;
                }
                None => {
                    log.push(e);
                    fx.dirty = true;
                }
            }
        }
        let new_commit = leader_commit.min(last_new);
        if new_commit > r.commit {
            r.commit = new_commit;
        }
        if r.applied < r.commit {
            self.apply(r, fx);
        }
        fx.o.send(
            src,
            Msg::AppendAck {
                g,
                term,
                success: true,
                index: last_new,
                conflict_term: None,
                round,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn reject(
        &self,
        fx: &mut Fx,
        src: Id,
        g: u32,
        term: Term,
        index: Index,
        conflict_term: Option<Term>,
        round: u64,
    ) {
        fx.o.send(
            src,
            Msg::AppendAck {
                g,
                term,
                success: false,
                index,
                conflict_term,
                round,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append_ack(
        &self,
        r: &mut Replica,
        fx: &mut Fx,
        src: Id,
        term: Term,
        success: bool,
        index: Index,
        conflict_term: Option<Term>,
        round: u64,
    ) {
        if term > r.d.term {
            self.become_follower(r, fx, term, None);
            return;
        }
        if term < r.d.term {
            return;
        }
        let Some(p) = self.members(r.group).iter().position(|&m| m == src) else {
            return;
        };
        let last = r.d.log.last_index();
        let Role::Leader(lead) = &mut r.role else {
            return;
        };
        lead.acked[p] = lead.acked[p].max(round);
        if success {
            lead.matched[p] = lead.matched[p].max(index);
            lead.next[p] = lead.next[p].max(index + 1);
            let resend = lead.next[p] <= last;
            self.maybe_commit(r, fx);
            if resend {
                self.send_append(r, p, fx);
            }
        } else {
            // Fast backtracking: skip the follower's whole conflicting term at once.
            let next = match conflict_term {
                Some(t) => r.d.log.last_index_of_term(t).map_or(index, |i| i + 1),
                None => index,
            };
            lead.next[p] = next.max(lead.matched[p] + 1).min(last + 1);
            self.send_append(r, p, fx);
        }
        self.serve_reads(r, fx);
    }

    fn on_vote(
        &self,
        r: &mut Replica,
        fx: &mut Fx,
        src: Id,
        term: Term,
        last_index: Index,
        last_term: Term,
    ) {
        if term > r.d.term && (r.leader_contact || r.is_leader()) {
            // Leader stickiness (thesis §4.2.3): a current leader is known; ignore the request
            // without adopting its term. Lease reads rely on this.
            return;
        }
        if term > r.d.term {
            self.become_follower(r, fx, term, None);
        }
        let up_to_date = (last_term, last_index) >= (r.d.log.last_term(), r.d.log.last_index());
        let granted = term == r.d.term
            && r.d.voted_for.is_none_or(|v| v == src)
            && up_to_date
            && !r.is_leader();
        if granted {
            r.d.voted_for = Some(src);
            fx.dirty = true;
            fx.o.set_timer(Timer::Election(r.group), self.election_range());
        }
        fx.o.send(
            src,
            Msg::VoteAck {
                g: r.group,
                term: r.d.term,
                granted,
            },
        );
    }

    fn on_vote_ack(
        &self,
        me: Id,
        r: &mut Replica,
        fx: &mut Fx,
        src: Id,
        term: Term,
        granted: bool,
    ) {
        if term > r.d.term {
            self.become_follower(r, fx, term, None);
            return;
        }
        if term < r.d.term || !granted {
            return;
        }
        let Some(p) = self.members(r.group).iter().position(|&m| m == src) else {
            return;
        };
        let won = match &mut r.role {
            Role::Candidate { votes } => {
                votes[p] = true;
                votes.iter().filter(|&&v| v).count() >= self.majority(r.group)
            }
            _ => false,
        };
        if won {
            self.become_leader(me, r, fx);
        }
    }

    fn on_timer(&self, me: Id, r: &mut Replica, fx: &mut Fx, timer: &Timer) {
        let g = r.group;
        match *timer {
            Timer::Election(_) => {
                if !r.is_leader() {
                    self.start_election(me, r, fx);
                }
            }
            Timer::Heartbeat(_) => {
                if r.is_leader() {
                    self.broadcast(r, fx);
                    fx.o.set_timer(Timer::Heartbeat(g), exactly(ms(self.params.heartbeat_ms)));
                }
            }
            Timer::LeaderContact(_) => r.leader_contact = false,
            Timer::CheckQuorum(_) => {
                let q = self.quorum_round(r);
                let Role::Leader(lead) = &mut r.role else {
                    return;
                };
                if q >= lead.check_round {
                    lead.check_round = lead.round + 1;
                    fx.o.set_timer(
                        Timer::CheckQuorum(g),
                        exactly(ms(self.params.election_timeout_max_ms)),
                    );
                } else {
                    let term = r.d.term;
                    self.become_follower(r, fx, term, None);
                }
            }
            Timer::Lease { term, round, .. } => {
                if term == r.d.term {
                    if let Role::Leader(lead) = &mut r.role {
                        lead.lease_expired = lead.lease_expired.max(round);
                    }
                }
            }
        }
    }

    fn durable(state: &State) -> Durable {
        Durable {
            groups: state
                .groups
                .iter()
                .map(|r| r.as_ref().map(|r| r.d.clone()))
                .collect(),
        }
    }

    /// Runs `f` on the replica of group `g` (if this node hosts it), then emits the save (if
    /// durable state changed) followed by the other commands.
    fn with_replica(
        &self,
        state: &mut Cow<State>,
        g: usize,
        o: &mut Out<Self>,
        f: impl FnOnce(Id, &mut Replica, &mut Fx),
    ) {
        if !matches!(state.groups.get(g), Some(Some(_))) {
            return;
        }
        let st = state.to_mut();
        let me = st.me;
        let mut fx = Fx {
            o: Out::new(),
            dirty: false,
        };
        f(me, st.groups[g].as_mut().expect("checked"), &mut fx);
        if fx.dirty {
            o.save(Self::durable(st));
        }
        o.append(&mut fx.o);
    }
}

/// The `k`-th largest value (1-based) of `xs` (`k <= xs.len()`).
fn kth_largest(xs: &[u64], k: usize) -> u64 {
    let mut buf = [0u64; 16];
    if xs.len() <= buf.len() {
        let b = &mut buf[..xs.len()];
        b.copy_from_slice(xs);
        b.sort_unstable_by(|a, b| b.cmp(a));
        b[k - 1]
    } else {
        let mut v = xs.to_vec();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v[k - 1]
    }
}

impl Actor for Server {
    type Msg = Msg;
    type Timer = Timer;
    type State = State;
    type Storage = Durable;
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<Durable>, o: &mut Out<Self>) -> State {
        let groups = self
            .layout
            .groups
            .iter()
            .enumerate()
            .map(|(g, members)| {
                let me = members.iter().position(|&m| m == id)?;
                let mut d = storage
                    .as_ref()
                    .and_then(|s| s.groups.get(g).cloned().flatten())
                    .unwrap_or_default();
                if self.params.variant == Variant::VolatileVote {
                    d.term = 0;
                    d.voted_for = None;
                }
                let g = g as u32;
                o.set_timer(Timer::Election(g), self.election_range());
                // After a (re)start, assume a leader may have been heard just before: disregard
                // RequestVotes for one minimum election timeout (keeps leases safe across a
                // follower's restart).
                o.set_timer(
                    Timer::LeaderContact(g),
                    exactly(ms(self.params.election_timeout_min_ms)),
                );
                Some(Replica {
                    group: g,
                    me,
                    d,
                    role: Role::Follower,
                    leader: None,
                    commit: 0,
                    applied: 0,
                    kv: BTreeMap::new(),
                    leader_contact: true,
                })
            })
            .collect();
        State { me: id, groups }
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<State>, src: Id, msg: Msg, o: &mut Out<Self>) {
        match msg {
            Msg::Append {
                g,
                term,
                prev_index,
                prev_term,
                entries,
                commit,
                round,
            } => self.with_replica(state, g as usize, o, |_, r, fx| {
                self.on_append(
                    r, fx, src, term, prev_index, prev_term, entries, commit, round,
                )
            }),
            Msg::AppendAck {
                g,
                term,
                success,
                index,
                conflict_term,
                round,
            } => self.with_replica(state, g as usize, o, |_, r, fx| {
                self.on_append_ack(r, fx, src, term, success, index, conflict_term, round)
            }),
            Msg::Vote {
                g,
                term,
                last_index,
                last_term,
            } => self.with_replica(state, g as usize, o, |_, r, fx| {
                self.on_vote(r, fx, src, term, last_index, last_term)
            }),
            Msg::VoteAck { g, term, granted } => {
                self.with_replica(state, g as usize, o, |me, r, fx| {
                    self.on_vote_ack(me, r, fx, src, term, granted)
                })
            }
            Msg::ClientReq(req) => {
                let g = self.layout.group_of(req.key);
                if !matches!(state.groups.get(g), Some(Some(_))) {
                    o.send(
                        src,
                        Msg::ClientResp {
                            id: req.id,
                            resp: Resp::Redirect(None),
                        },
                    );
                    return;
                }
                self.with_replica(state, g, o, |_, r, fx| self.on_client(r, fx, src, req))
            }
            Msg::ClientResp { .. } => {}
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<State>, timer: &Timer, o: &mut Out<Self>) {
        let g = match *timer {
            Timer::Election(g)
            | Timer::Heartbeat(g)
            | Timer::LeaderContact(g)
            | Timer::CheckQuorum(g)
            | Timer::Lease { g, .. } => g,
        };
        self.with_replica(state, g as usize, o, |me, r, fx| {
            self.on_timer(me, r, fx, timer)
        });
    }

    fn name(&self) -> String {
        "raft".into()
    }
}

impl KvServer for Server {
    fn leadership(&self, state: &State) -> Vec<Leadership> {
        state
            .groups
            .iter()
            .flatten()
            .filter(|r| r.is_leader())
            .map(|r| Leadership {
                group: r.group as usize,
                term: r.d.term,
            })
            .collect()
    }
}
