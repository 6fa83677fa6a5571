//! Durable storage for an actor's `Save`: the whole storage value, written alternately to two
//! slot files (`storage.0`, `storage.1`), each `QLS2` + sequence number (u64 LE) + body length
//! (u64 LE) + CRC-32 of (sequence, length, body) (u32 LE) + body. A save overwrites the older
//! slot and (with fsync on) `fdatasync`s it before returning, so the newer slot is never touched
//! while being replaced: a write torn by a crash fails its checksum and recovery falls back to
//! the other slot, which holds the previous complete save. Recovery takes the valid slot with the
//! highest sequence number.
//!
//! Why two slots rather than write-temp-then-rename: rename over an existing file makes ext4
//! (`auto_da_alloc`) start writeback on every save even with fsync off, and an atomic rename
//! also needs a directory fsync per save; the slots need neither, with the same guarantee.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"QLS2";
const HEAD: usize = 24;

pub struct DurableFile {
    paths: [PathBuf; 2],
    files: [File; 2],
    /// The append-only log of incremental records since the newest snapshot slot.
    wal: File,
    wal_path: PathBuf,
    /// Valid length of the log, and size of the newest snapshot (for the compaction policy).
    wal_len: u64,
    snap_len: u64,
    /// The slot holding the newest snapshot (the next snapshot goes to the other one).
    snap_slot: usize,
    fsync: bool,
    /// Sequence number of the newest save on disk.
    seq: u64,
    /// Number of saves and bytes written, for the node's stats.
    pub saves: u64,
    pub bytes: u64,
}

fn crc(seq: u64, len: u64, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(&len.to_le_bytes());
    h.update(body);
    h.finalize()
}

/// The (sequence, body) of a slot file if it holds a complete save.
fn parse(data: &[u8]) -> Option<(u64, &[u8])> {
    if data.len() < HEAD || &data[..4] != MAGIC {
        return None;
    }
    let seq = u64::from_le_bytes(data[4..12].try_into().unwrap());
    let len = u64::from_le_bytes(data[12..20].try_into().unwrap());
    let sum = u32::from_le_bytes(data[20..24].try_into().unwrap());
    let body = data.get(HEAD..HEAD.checked_add(usize::try_from(len).ok()?)?)?;
    (crc(seq, len, body) == sum).then_some((seq, body))
}

impl DurableFile {
    pub fn new(dir: &Path, fsync: bool) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let paths = [dir.join("storage.0"), dir.join("storage.1")];
        let open = |p: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(p)
        };
        let files = [open(&paths[0])?, open(&paths[1])?];
        let wal_path = dir.join("storage.wal");
        let wal = open(&wal_path)?;
        if fsync {
            File::open(dir)?.sync_all()?;
        }
        let mut f = DurableFile {
            paths,
            files,
            wal,
            wal_path,
            wal_len: 0,
            snap_len: 0,
            snap_slot: 1,
            fsync,
            seq: 0,
            saves: 0,
            bytes: 0,
        };
        // Position after the newest snapshot and the valid prefix of the log.
        let (snap, recs, valid) = f.recover()?;
        if let Some((seq, body, slot)) = snap {
            f.seq = seq;
            f.snap_len = body.len() as u64;
            f.snap_slot = slot;
        }
        f.seq += recs.len() as u64;
        f.wal_len = valid;
        f.wal.set_len(valid)?;
        Ok(f)
    }

    /// The newest snapshot, the log records that follow it (in order), and the byte length of
    /// the log's valid prefix (a torn tail is cut off).
    #[allow(clippy::type_complexity)]
    fn recover(&self) -> io::Result<(Option<(u64, Vec<u8>, usize)>, Vec<Vec<u8>>, u64)> {
        let snap = self.newest()?;
        let base = snap.as_ref().map(|s| s.0).unwrap_or(0);
        let data = fs::read(&self.wal_path)?;
        let mut recs = Vec::new();
        let (mut off, mut valid, mut next) = (0usize, 0u64, base + 1);
        while data.len() >= off + 16 {
            let len = u32::from_le_bytes(data[off..off + 4].try_into().unwrap()) as usize;
            let sum = u32::from_le_bytes(data[off + 4..off + 8].try_into().unwrap());
            let seq = u64::from_le_bytes(data[off + 8..off + 16].try_into().unwrap());
            let Some(body) = data.get(off + 16..off + 16 + len) else {
                break;
            };
            if crc(seq, len as u64, body) != sum {
                break;
            }
            off += 16 + len;
            if seq <= base {
                valid = off as u64; // superseded by the snapshot
                continue;
            }
            if seq != next {
                break;
            }
            recs.push(body.to_vec());
            next += 1;
            valid = off as u64;
        }
        Ok((snap, recs, valid))
    }

    /// The newest snapshot and the incremental records after it.
    #[allow(clippy::type_complexity)]
    pub fn load_all(&self) -> io::Result<(Option<Vec<u8>>, Vec<Vec<u8>>)> {
        let (snap, recs, _) = self.recover()?;
        Ok((snap.map(|s| s.1), recs))
    }

    /// Whether the log has grown enough that the next save should be a full snapshot.
    pub fn wants_snapshot(&self) -> bool {
        self.wal_len > (2 * self.snap_len).max(1 << 20)
    }

    /// Appends an incremental record; durable on return when fsync is on.
    pub fn append(&mut self, rec: &[u8]) -> io::Result<()> {
        let seq = self.seq + 1;
        let len = rec.len() as u64;
        let mut buf = Vec::with_capacity(16 + rec.len());
        buf.extend_from_slice(&(rec.len() as u32).to_le_bytes());
        buf.extend_from_slice(&crc(seq, len, rec).to_le_bytes());
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend_from_slice(rec);
        self.wal.seek(SeekFrom::Start(self.wal_len))?;
        self.wal.write_all(&buf)?;
        if self.fsync {
            self.wal.sync_data()?;
        }
        self.wal_len += buf.len() as u64;
        self.seq = seq;
        self.saves += 1;
        self.bytes += buf.len() as u64;
        Ok(())
    }

    /// Appends an incremental record without syncing it; [`Self::sync_log`] (or an
    /// `fdatasync` on [`Self::log_handle`]) makes it and every earlier record durable.
    pub fn append_unsynced(&mut self, rec: &[u8]) -> io::Result<()> {
        let fsync = std::mem::replace(&mut self.fsync, false);
        let r = self.append(rec);
        self.fsync = fsync;
        r
    }

    /// `fdatasync`s the log (a no-op with fsync off).
    pub fn sync_log(&self) -> io::Result<()> {
        if self.fsync {
            self.wal.sync_data()?;
        }
        Ok(())
    }

    /// A second handle on the log file, for a thread that syncs it (group commit).
    pub fn log_handle(&self) -> io::Result<File> {
        self.wal.try_clone()
    }

    /// The newest complete snapshot: (sequence, body, slot).
    fn newest(&self) -> io::Result<Option<(u64, Vec<u8>, usize)>> {
        let mut best: Option<(u64, Vec<u8>, usize)> = None;
        let mut garbage = false;
        for (slot, p) in self.paths.iter().enumerate() {
            let data = fs::read(p)?;
            match parse(&data) {
                Some((seq, body)) => {
                    if best.as_ref().is_none_or(|b| seq > b.0) {
                        best = Some((seq, body.to_vec(), slot));
                    }
                }
                None => garbage |= !data.is_empty(),
            }
        }
        if best.is_none() && garbage {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: no slot holds a complete save (corrupt storage)",
                    self.paths[0].display()
                ),
            ));
        }
        Ok(best)
    }

    /// The body of the last completed save, if any. Storage with no valid slot but some data
    /// is an error (it is not trusted, and not silently treated as empty).
    pub fn load(&self) -> io::Result<Option<Vec<u8>>> {
        Ok(self.newest()?.map(|(_, b, _)| b))
    }

    /// Replaces the stored value with `body`; durable on return when fsync is on.
    pub fn save(&mut self, body: &[u8]) -> io::Result<()> {
        let seq = self.seq + 1;
        let len = body.len() as u64;
        let mut buf = Vec::with_capacity(HEAD + body.len());
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&crc(seq, len, body).to_le_bytes());
        buf.extend_from_slice(body);
        let slot = 1 - self.snap_slot;
        let f = &mut self.files[slot];
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&buf)?;
        f.set_len(buf.len() as u64)?;
        if self.fsync {
            f.sync_data()?;
        }
        self.seq = seq;
        self.saves += 1;
        self.bytes += buf.len() as u64;
        self.snap_len = len;
        self.snap_slot = slot;
        // Every log record now has a sequence number <= the snapshot's: recovery skips them
        // even if this truncation is lost.
        self.wal.set_len(0)?;
        self.wal_len = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_and_recover_from_a_torn_slot() {
        let d = tempfile::tempdir().unwrap();
        let mut f = DurableFile::new(d.path(), true).unwrap();
        assert_eq!(f.load().unwrap(), None);
        f.save(b"hello").unwrap();
        f.save(b"world!").unwrap();
        f.save(b"third").unwrap();
        drop(f);
        let f = DurableFile::new(d.path(), true).unwrap();
        assert_eq!(f.load().unwrap().unwrap(), b"third");
        // Tear the newest slot (seq 1, 2, 3 went to slots 0, 1, 0): recovery falls back to seq 2.
        let p = d.path().join("storage.0");
        let mut bytes = fs::read(&p).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(&p, bytes).unwrap();
        assert_eq!(f.load().unwrap().unwrap(), b"world!");
        // Both slots corrupt: an error, not an empty state.
        fs::write(d.path().join("storage.1"), b"garbage").unwrap();
        assert!(f.load().is_err());
    }

    #[test]
    fn log_records_follow_the_snapshot_and_a_torn_tail_is_dropped() {
        let d = tempfile::tempdir().unwrap();
        let mut f = DurableFile::new(d.path(), true).unwrap();
        f.save(b"snap").unwrap();
        f.append(b"r1").unwrap();
        f.append(b"r2").unwrap();
        drop(f);
        let mut f = DurableFile::new(d.path(), true).unwrap();
        assert_eq!(
            f.load_all().unwrap(),
            (Some(b"snap".to_vec()), vec![b"r1".to_vec(), b"r2".to_vec()])
        );
        f.append(b"r3").unwrap();
        drop(f);
        // Tear the last record: r1, r2 survive.
        let p = d.path().join("storage.wal");
        let mut bytes = fs::read(&p).unwrap();
        bytes.truncate(bytes.len() - 1);
        fs::write(&p, bytes).unwrap();
        let mut f = DurableFile::new(d.path(), true).unwrap();
        assert_eq!(
            f.load_all().unwrap().1,
            vec![b"r1".to_vec(), b"r2".to_vec()]
        );
        // A snapshot supersedes the log.
        f.save(b"snap2").unwrap();
        f.append(b"r4").unwrap();
        drop(f);
        let f = DurableFile::new(d.path(), true).unwrap();
        assert_eq!(
            f.load_all().unwrap(),
            (Some(b"snap2".to_vec()), vec![b"r4".to_vec()])
        );
    }

    #[test]
    fn continues_the_sequence_after_restart() {
        let d = tempfile::tempdir().unwrap();
        let mut f = DurableFile::new(d.path(), false).unwrap();
        f.save(b"a").unwrap();
        drop(f);
        let mut f = DurableFile::new(d.path(), false).unwrap();
        f.save(b"b").unwrap();
        drop(f);
        let f = DurableFile::new(d.path(), false).unwrap();
        assert_eq!(f.load().unwrap().unwrap(), b"b");
    }
}
