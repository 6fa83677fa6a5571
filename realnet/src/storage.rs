//! Durable storage for an actor's `Save`: the whole storage value in one file, replaced
//! atomically (write a temporary file, fsync it, rename over the old one, fsync the directory).
//! The file is `QLST` + body length (u64 LE) + CRC-32 of the body (u32 LE) + body, so a torn or
//! corrupted file is detected on recovery instead of being trusted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"QLST";

pub struct DurableFile {
    path: PathBuf,
    tmp: PathBuf,
    dir: PathBuf,
    fsync: bool,
    /// Number of saves and bytes written, for the node's stats.
    pub saves: u64,
    pub bytes: u64,
}

impl DurableFile {
    pub fn new(dir: &Path, fsync: bool) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(DurableFile {
            path: dir.join("storage.bin"),
            tmp: dir.join("storage.bin.tmp"),
            dir: dir.to_path_buf(),
            fsync,
            saves: 0,
            bytes: 0,
        })
    }

    /// The body of the last completed save, if any. A corrupt file is an error.
    pub fn load(&self) -> io::Result<Option<Vec<u8>>> {
        let data = match fs::read(&self.path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let bad = |m: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {m}", self.path.display()),
            )
        };
        if data.len() < 16 || &data[..4] != MAGIC {
            return Err(bad("not a storage file"));
        }
        let len = u64::from_le_bytes(data[4..12].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(data[12..16].try_into().unwrap());
        let body = &data[16..];
        if body.len() != len {
            return Err(bad("truncated"));
        }
        if crc32fast::hash(body) != crc {
            return Err(bad("checksum mismatch"));
        }
        Ok(Some(body.to_vec()))
    }

    /// Replaces the stored value with `body`; durable on return when fsync is on.
    pub fn save(&mut self, body: &[u8]) -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.tmp)?;
        let mut head = Vec::with_capacity(16);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&(body.len() as u64).to_le_bytes());
        head.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        f.write_all(&head)?;
        f.write_all(body)?;
        if self.fsync {
            f.sync_data()?;
        }
        drop(f);
        fs::rename(&self.tmp, &self.path)?;
        if self.fsync {
            File::open(&self.dir)?.sync_all()?;
        }
        self.saves += 1;
        self.bytes += body.len() as u64 + 16;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_and_detect_corruption() {
        let d = tempfile::tempdir().unwrap();
        let mut f = DurableFile::new(d.path(), true).unwrap();
        assert_eq!(f.load().unwrap(), None);
        f.save(b"hello").unwrap();
        f.save(b"world!").unwrap();
        assert_eq!(f.load().unwrap().unwrap(), b"world!");
        let p = d.path().join("storage.bin");
        let mut bytes = fs::read(&p).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(&p, bytes).unwrap();
        assert!(f.load().is_err());
    }
}
