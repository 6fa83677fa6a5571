//! The openraft type configuration, the durable log store (vote + log, survives crashes) and the
//! KV state machine (volatile, rebuilt by replaying the committed log after a restart).

use crate::rt::SimRt;
use futures::StreamExt;
use openraft::alias::{
    LeaderIdOf, LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf, VoteOf,
};
use openraft::storage::{EntryResponder, IOFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    EmptyNode, EntryPayload, LogState, RaftLogReader, RaftSnapshotBuilder, RaftTypeConfig,
};
use quorumlab_kv::{KvMap, Outcome, Request};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};

/// A command in the log: a client's request (the client endpoint is kept for de-duplication).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cmd {
    pub client: u64,
    pub req: Request,
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "c{}:{}:{:?}:{}",
            self.client, self.req.id, self.req.op, self.req.key
        )
    }
}

openraft::declare_raft_types!(
    /// quorumlab's openraft type configuration: standard Raft leader ids (one leader per term),
    /// node ids = simulator endpoint numbers, no node addresses, the simulator-clock runtime.
    pub TC:
        D = Cmd,
        R = Outcome,
        Node = openraft::EmptyNode,
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>,
        AsyncRuntime = SimRt,
);

pub type Entry = openraft::alias::EntryOf<TC>;
pub type LogId = LogIdOf<TC>;
pub type Vote = VoteOf<TC>;

/// The undo record of the most recent durable write (for crashes that lose un-synced writes).
#[derive(Debug, Clone)]
enum Undo {
    Vote(Option<Vote>),
    /// Entries from this index on were appended by the last write; entries they replaced.
    Append(u64, Vec<Entry>),
    /// Entries removed by the last truncation.
    Truncate(Vec<Entry>),
}

/// What a node keeps on disk for one group.
#[derive(Debug, Default)]
pub struct Durable {
    vote: Option<Vote>,
    log: BTreeMap<u64, Entry>,
    committed: Option<LogId>,
    purged: Option<LogId>,
    undo: Option<Undo>,
    /// Durable writes so far (vote saves, appends, truncations).
    pub writes: u64,
}

impl Durable {
    /// Loses the most recent durable write (it had not reached the disk).
    pub fn lose_last_write(&mut self) {
        match self.undo.take() {
            Some(Undo::Vote(v)) => self.vote = v,
            Some(Undo::Append(from, replaced)) => {
                self.log.split_off(&from);
                for e in replaced {
                    self.log.insert(e.log_id.index, e);
                }
            }
            Some(Undo::Truncate(removed)) => {
                for e in removed {
                    self.log.insert(e.log_id.index, e);
                }
            }
            None => {}
        }
        // A committed marker beyond the log would make recovery apply entries that are gone.
        if let Some(c) = &self.committed {
            let last = self.log.last_key_value().map(|(_, e)| e.log_id);
            if last.as_ref().is_none_or(|l| l.index < c.index) {
                self.committed = last;
            }
        }
    }

    pub fn last_index(&self) -> Option<u64> {
        self.log.last_key_value().map(|(i, _)| *i)
    }
}

/// The log store handed to openraft: a handle on the node's durable state for one group.
#[derive(Clone, Debug, Default)]
pub struct LogStore {
    pub durable: Arc<Mutex<Durable>>,
}

impl LogStore {
    fn d(&self) -> MutexGuard<'_, Durable> {
        self.durable.lock().expect("durable")
    }
}

impl RaftLogReader<TC> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(self.d().log.range(range).map(|(_, e)| e.clone()).collect())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.d().vote)
    }
}

impl RaftLogStorage<TC> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TC>, io::Error> {
        let d = self.d();
        let last = d
            .log
            .last_key_value()
            .map(|(_, e)| e.log_id)
            .or_else(|| d.purged);
        Ok(LogState {
            last_purged_log_id: d.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let mut d = self.d();
        let prev = d.vote.replace(*vote);
        d.undo = Some(Undo::Vote(prev));
        d.writes += 1;
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.d().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.d().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TC>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        {
            let mut d = self.d();
            let mut from = None;
            let mut replaced = Vec::new();
            for e in entries {
                let i = e.log_id.index;
                from.get_or_insert(i);
                if let Some(old) = d.log.insert(i, e) {
                    replaced.push(old);
                }
            }
            if let Some(from) = from {
                d.undo = Some(Undo::Append(from, replaced));
                d.writes += 1;
            }
        }
        callback.io_completed(Ok(()));
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let mut d = self.d();
        let from = last_log_id.map(|l| l.index + 1).unwrap_or(0);
        let removed: Vec<Entry> = d.log.split_off(&from).into_values().collect();
        if !removed.is_empty() {
            d.undo = Some(Undo::Truncate(removed));
            d.writes += 1;
        }
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let mut d = self.d();
        let keep = d.log.split_off(&(log_id.index + 1));
        d.log = keep;
        d.purged = Some(log_id);
        Ok(())
    }
}

/// The replicated map plus the last request applied for each client (de-duplication of
/// retried requests: a retry of an applied request gets the first outcome back).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvData {
    pub kv: KvMap,
    pub last: BTreeMap<u64, (u64, Outcome)>,
}

impl KvData {
    /// Applies one command, deterministically on every replica.
    pub fn apply(&mut self, cmd: &Cmd) -> Outcome {
        if let Some((id, out)) = self.last.get(&cmd.client) {
            if cmd.req.id == *id {
                return out.clone(); // a retry of the request already applied
            }
            if cmd.req.id < *id {
                return Outcome::Info; // an old retry overtaken by a newer request: ignored
            }
        }
        let (out, _) = cmd.req.apply_to(&mut self.kv);
        self.last.insert(cmd.client, (cmd.req.id, out.clone()));
        out
    }
}

/// The openraft type configurations the KV state machine and the client handling serve: those
/// with [`TC`]'s data, ids and log entries, whatever their runtime ([`TC`] here, the tokio one in
/// real mode; each implements this marker). Their log ids, memberships and snapshot metadata
/// are the same types as [`TC`]'s.
pub trait KvConfig:
    RaftTypeConfig<
    D = Cmd,
    R = Outcome,
    NodeId = u64,
    Node = EmptyNode,
    LeaderId = LeaderIdOf<TC>,
    Entry = Entry,
>
{
}

impl KvConfig for TC {}

/// State machine contents, shared between openraft's state-machine worker and the node (which
/// reads it for ReadIndex / lease reads once openraft says the read is linearizable).
#[derive(Debug, Default)]
pub struct SmState {
    pub data: KvData,
    pub applied: Option<LogId>,
    pub membership: StoredMembershipOf<TC>,
    pub snapshot: Option<(SnapshotMetaOf<TC>, KvData)>,
    pub snapshot_seq: u64,
}

/// The KV state machine, for any [`KvConfig`] (one implementation for the simulator's and the
/// real-mode runtime).
#[derive(Clone, Debug, Default)]
pub struct StateMachine {
    pub state: Arc<Mutex<SmState>>,
}

impl StateMachine {
    fn s(&self) -> MutexGuard<'_, SmState> {
        self.state.lock().expect("sm")
    }
}

impl<C: KvConfig> RaftSnapshotBuilder<C> for StateMachine {
    type SnapshotData = KvData;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<C, KvData>, io::Error> {
        let mut s = self.s();
        s.snapshot_seq += 1;
        let meta = SnapshotMetaOf::<C> {
            last_log_id: s.applied,
            last_membership: s.membership.clone(),
        };
        let data = s.data.clone();
        s.snapshot = Some((meta.clone(), data.clone()));
        Ok(SnapshotOf::<C, KvData> {
            meta,
            snapshot: data,
        })
    }
}

impl<C: KvConfig> RaftStateMachine<C> for StateMachine {
    type SnapshotData = KvData;
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<C>>, StoredMembershipOf<C>), io::Error> {
        let s = self.s();
        Ok((s.applied, s.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures::Stream<Item = Result<EntryResponder<C>, io::Error>> + Unpin + Send,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let out = {
                let mut s = self.s();
                s.applied = Some(entry.log_id);
                match &entry.payload {
                    EntryPayload::Blank => Outcome::Ok(None),
                    EntryPayload::Normal(cmd) => s.data.apply(cmd),
                    EntryPayload::Membership(m) => {
                        s.membership = StoredMembershipOf::<C>::new(Some(entry.log_id), m.clone());
                        Outcome::Ok(None)
                    }
                }
            };
            if let Some(r) = responder {
                r.send(out);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<C>,
        snapshot: KvData,
    ) -> Result<(), io::Error> {
        let mut s = self.s();
        s.data = snapshot.clone();
        s.applied = meta.last_log_id;
        s.membership = meta.last_membership.clone();
        s.snapshot = Some((meta.clone(), snapshot));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<C, KvData>>, io::Error> {
        Ok(self
            .s()
            .snapshot
            .clone()
            .map(|(meta, data)| SnapshotOf::<C, KvData> {
                meta,
                snapshot: data,
            }))
    }
}
