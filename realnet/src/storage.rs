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
        if fsync {
            File::open(dir)?.sync_all()?;
        }
        let mut f = DurableFile {
            paths,
            files,
            fsync,
            seq: 0,
            saves: 0,
            bytes: 0,
        };
        if let Some((seq, _)) = f.newest()? {
            f.seq = seq;
        }
        Ok(f)
    }

    fn newest(&self) -> io::Result<Option<(u64, Vec<u8>)>> {
        let mut best: Option<(u64, Vec<u8>)> = None;
        let mut garbage = false;
        for p in &self.paths {
            let data = fs::read(p)?;
            match parse(&data) {
                Some((seq, body)) => {
                    if best.as_ref().is_none_or(|b| seq > b.0) {
                        best = Some((seq, body.to_vec()));
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
        Ok(self.newest()?.map(|(_, b)| b))
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
        let f = &mut self.files[(seq % 2) as usize];
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&buf)?;
        f.set_len(buf.len() as u64)?;
        if self.fsync {
            f.sync_data()?;
        }
        self.seq = seq;
        self.saves += 1;
        self.bytes += buf.len() as u64;
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
        // Tear the newest slot (seq 3 lives in storage.1): recovery falls back to seq 2.
        let p = d.path().join("storage.1");
        let mut bytes = fs::read(&p).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(&p, bytes).unwrap();
        assert_eq!(f.load().unwrap().unwrap(), b"world!");
        // Both slots corrupt: an error, not an empty state.
        fs::write(d.path().join("storage.0"), b"garbage").unwrap();
        assert!(f.load().is_err());
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
