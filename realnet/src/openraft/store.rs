//! openraft's durable state on disk, and its (volatile) state machine.
//!
//! The vote and the log of one group live in the same checksummed storage as the other
//! protocols' ([`crate::storage::DurableFile`]): every change is a postcard [`Rec`] appended to
//! `storage.wal` (length, CRC-32, sequence number, body), and when the log file outgrows twice the
//! last snapshot the whole state ([`Snap`]) is written to a snapshot slot and the log emptied.
//! Recovery replays the records after the newest valid snapshot, stopping at the first torn one.
//!
//! Durability follows openraft's contract: `save_vote` returns once the vote is on disk;
//! `append` writes the entries at once and hands openraft's `IOFlushed` callback to a sync thread
//! that `fdatasync`s the log and then completes every callback queued meanwhile (group commit:
//! one fsync covers all appends written before it). openraft counts the leader's own entry
//! towards the commit quorum only after that callback, so nothing is acknowledged to a client
//! before it is on the leader's disk (and a majority's). Truncations and purges are written
//! before the appends that follow them and become durable with them.
//!
//! The state machine is the simulated protocol's ([`quorumlab_openraft::store::StateMachine`]),
//! volatile: on start openraft re-applies the log up to the durable committed index, then further
//! entries as they commit (no snapshots: `SnapshotPolicy::Never`).

use super::{Vote, TT};
use crate::storage::DurableFile;
use openraft::alias::{EntryOf, LogIdOf};
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogReader};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

pub type Entry = EntryOf<TT>;
pub type LogId = LogIdOf<TT>;

/// One change of the durable state.
#[derive(Serialize, Deserialize)]
enum Rec {
    Vote(Vote),
    /// Entries appended (each replaces any entry at its index and everything after it was
    /// truncated before, so replaying is inserting).
    Append(Vec<Entry>),
    /// Entries after this index removed (`None`: all).
    TruncateAfter(Option<u64>),
    Purge(LogId),
    Committed(Option<LogId>),
}

/// The whole durable state (a snapshot slot).
#[derive(Default, Serialize, Deserialize)]
struct Snap {
    vote: Option<Vote>,
    committed: Option<LogId>,
    purged: Option<LogId>,
    entries: Vec<Entry>,
}

struct Disk {
    file: DurableFile,
    vote: Option<Vote>,
    log: BTreeMap<u64, Entry>,
    committed: Option<LogId>,
    purged: Option<LogId>,
    fsync: bool,
    /// Counters for the node's stats.
    writes: u64,
    bytes: u64,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl Disk {
    fn apply(&mut self, r: Rec) {
        match r {
            Rec::Vote(v) => self.vote = Some(v),
            Rec::Append(es) => {
                for e in es {
                    self.log.insert(e.log_id.index, e);
                }
            }
            Rec::TruncateAfter(i) => {
                self.log.split_off(&i.map_or(0, |i| i + 1));
            }
            Rec::Purge(l) => {
                self.log = self.log.split_off(&(l.index + 1));
                self.purged = Some(l);
            }
            Rec::Committed(c) => self.committed = c,
        }
    }

    /// Writes `r` (durable at once if `sync`), then applies it; compacts when the log is long.
    fn write(&mut self, r: Rec, sync: bool) -> io::Result<()> {
        let body = postcard::to_stdvec(&r).map_err(|e| bad(&e.to_string()))?;
        self.apply(r);
        self.writes += 1;
        if self.file.wants_snapshot() {
            let snap = Snap {
                vote: self.vote,
                committed: self.committed,
                purged: self.purged,
                entries: self.log.values().cloned().collect(),
            };
            let b = postcard::to_stdvec(&snap).map_err(|e| bad(&e.to_string()))?;
            self.bytes += b.len() as u64;
            // Durable on return (fsync on): covers this record and every earlier one.
            return self.file.save(&b);
        }
        self.bytes += body.len() as u64;
        self.file.append_unsynced(&body)?;
        if sync && self.fsync {
            self.file.sync_log()?;
        }
        Ok(())
    }
}

/// The log store of one group on one node.
#[derive(Clone)]
pub struct LogStore {
    disk: Arc<Mutex<Disk>>,
    /// Queue of the sync thread (`None`: fsync off, callbacks complete at once).
    sync: Option<mpsc::Sender<IOFlushed<TT>>>,
}

impl fmt::Debug for LogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogStore")
    }
}

impl LogStore {
    /// Opens (recovering) the storage in `dir`.
    pub fn open(dir: &Path, fsync: bool) -> io::Result<LogStore> {
        let file = DurableFile::new(dir, fsync)?;
        let (snap, recs) = file.load_all()?;
        let s: Snap = match snap {
            Some(b) => postcard::from_bytes(&b).map_err(|_| bad("snapshot does not decode"))?,
            None => Snap::default(),
        };
        let mut d = Disk {
            vote: s.vote,
            committed: s.committed,
            purged: s.purged,
            log: s.entries.into_iter().map(|e| (e.log_id.index, e)).collect(),
            file,
            fsync,
            writes: 0,
            bytes: 0,
        };
        for r in &recs {
            let r: Rec = postcard::from_bytes(r)
                .map_err(|_| bad("log record does not decode (another protocol's data?)"))?;
            d.apply(r);
        }
        let sync = if fsync {
            let f: File = d.file.log_handle()?;
            let (tx, rx) = mpsc::channel::<IOFlushed<TT>>();
            std::thread::Builder::new()
                .name("wal-sync".into())
                .spawn(move || sync_thread(f, rx))?;
            Some(tx)
        } else {
            None
        };
        Ok(LogStore {
            disk: Arc::new(Mutex::new(d)),
            sync,
        })
    }

    fn d(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().expect("disk")
    }

    /// Whether nothing was ever stored (a fresh node).
    pub fn is_empty(&self) -> bool {
        let d = self.d();
        d.vote.is_none() && d.log.is_empty() && d.purged.is_none()
    }

    /// (records written, bytes written) since start.
    pub fn counters(&self) -> (u64, u64) {
        let d = self.d();
        (d.writes, d.bytes)
    }

    /// Index of the last log entry.
    pub fn last_index(&self) -> Option<u64> {
        self.d().log.last_key_value().map(|(i, _)| *i)
    }

    fn fatal(e: io::Error) -> io::Error {
        // A node that cannot persist must not acknowledge anything more.
        eprintln!("fatal: writing the log: {e}");
        std::process::exit(3);
    }
}

/// Group commit: wait for callbacks, fsync once for all of them, complete them in order.
fn sync_thread(f: File, rx: mpsc::Receiver<IOFlushed<TT>>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        if let Err(e) = f.sync_data() {
            LogStore::fatal(e);
        }
        for cb in batch {
            cb.io_completed(Ok(()));
        }
    }
}

impl RaftLogReader<TT> for LogStore {
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

impl RaftLogStorage<TT> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TT>, io::Error> {
        let d = self.d();
        let last = d.log.last_key_value().map(|(_, e)| e.log_id).or(d.purged);
        Ok(LogState {
            last_purged_log_id: d.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.d().write(Rec::Vote(*vote), true).map_err(Self::fatal)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.d()
            .write(Rec::Committed(committed), false)
            .map_err(Self::fatal)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.d().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TT>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let es: Vec<Entry> = entries.into_iter().collect();
        if !es.is_empty() {
            self.d()
                .write(Rec::Append(es), false)
                .map_err(Self::fatal)?;
        }
        match &self.sync {
            Some(tx) => {
                if let Err(mpsc::SendError(cb)) = tx.send(callback) {
                    cb.io_completed(Err(bad("sync thread gone")));
                }
            }
            None => callback.io_completed(Ok(())),
        }
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        self.d()
            .write(Rec::TruncateAfter(last_log_id.map(|l| l.index)), false)
            .map_err(Self::fatal)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.d()
            .write(Rec::Purge(log_id), false)
            .map_err(Self::fatal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::EntryPayload;
    use quorumlab_kv::{Key, Op, Request};
    use quorumlab_openraft::store::Cmd;

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            log_id: LogId::new(term.into(), index),
            payload: EntryPayload::Normal(Cmd {
                client: 7,
                req: Request {
                    id: index,
                    key: Key(1),
                    op: Op::Write(index),
                },
            }),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn log_survives_reopen_with_truncation_and_compaction() {
        let d = tempfile::tempdir().unwrap();
        {
            let s = LogStore::open(d.path(), false).unwrap();
            let mut w = s.d();
            w.write(Rec::Vote(Vote::new(3, 1)), true).unwrap();
            w.write(Rec::Append((1..=5).map(|i| entry(1, i)).collect()), false)
                .unwrap();
            w.write(Rec::TruncateAfter(Some(3)), false).unwrap();
            w.write(Rec::Append(vec![entry(2, 4)]), false).unwrap();
        }
        let s = LogStore::open(d.path(), false).unwrap();
        {
            let w = s.d();
            assert_eq!(w.vote, Some(Vote::new(3, 1)));
            assert_eq!(w.log.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3, 4]);
            assert_eq!(w.log[&4].log_id, LogId::new(2u64.into(), 4));
        }
        // Enough records to force snapshots; the state is the same after reopening.
        {
            let mut w = s.d();
            for i in 5..20_000 {
                w.write(Rec::Append(vec![entry(2, i)]), false).unwrap();
            }
        }
        drop(s);
        let s = LogStore::open(d.path(), false).unwrap();
        assert_eq!(s.last_index(), Some(19_999));
        assert_eq!(s.d().log.len(), 19_999);
    }
}
