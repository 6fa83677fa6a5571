//! Length-delimited frames over TCP and the cluster-secret handshake.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes. A length above
//! [`MAX_FRAME`] (or zero) is a protocol error: the connection is closed. The first frame of
//! every connection is a hello: the magic `QLAB`, a version byte and the cluster secret. A
//! connection whose hello is wrong, late or missing is closed before anything reaches the node.
//! Data frames carry `from: u32 LE`, `to: u32 LE` and the message, encoded with postcard.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest accepted frame (bytes).
pub const MAX_FRAME: usize = 16 << 20;
const MAGIC: &[u8; 4] = b"QLAB";
const VERSION: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes (limit {MAX_FRAME})")]
    Size(usize),
    #[error("bad handshake")]
    Handshake,
    #[error("malformed frame")]
    Malformed,
}

/// Reads one frame; `Ok(None)` on a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> Result<Option<()>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let n = u32::from_be_bytes(len) as usize;
    if n == 0 || n > MAX_FRAME {
        return Err(FrameError::Size(n));
    }
    buf.clear();
    buf.resize(n, 0);
    r.read_exact(buf).await?;
    Ok(Some(()))
}

/// Appends a frame (length prefix + payload) to `out`.
pub fn put_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// A data frame's payload: header then body.
pub fn data_payload(from: u32, to: u32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + body.len());
    v.extend_from_slice(&((8 + body.len()) as u32).to_be_bytes());
    v.extend_from_slice(&from.to_le_bytes());
    v.extend_from_slice(&to.to_le_bytes());
    v.extend_from_slice(body);
    v
}

/// Splits a data frame into (from, to, body).
pub fn split_data(frame: &[u8]) -> Result<(u32, u32, &[u8]), FrameError> {
    if frame.len() < 9 {
        return Err(FrameError::Malformed);
    }
    let from = u32::from_le_bytes(frame[0..4].try_into().unwrap());
    let to = u32::from_le_bytes(frame[4..8].try_into().unwrap());
    Ok((from, to, &frame[8..]))
}

/// The hello frame (with its length prefix).
pub fn hello(secret: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(5 + secret.len());
    p.extend_from_slice(MAGIC);
    p.push(VERSION);
    p.extend_from_slice(secret.as_bytes());
    let mut out = Vec::new();
    put_frame(&mut out, &p);
    out
}

/// Constant-time comparison (no early exit on the first differing byte).
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads and checks the hello of an incoming connection.
pub async fn accept_hello<R: AsyncRead + Unpin>(r: &mut R, secret: &str) -> Result<(), FrameError> {
    let mut buf = Vec::new();
    match read_frame(r, &mut buf).await? {
        Some(()) => {}
        None => return Err(FrameError::Handshake),
    }
    if buf.len() < 5
        || &buf[..4] != MAGIC
        || buf[4] != VERSION
        || !same(&buf[5..], secret.as_bytes())
    {
        return Err(FrameError::Handshake);
    }
    Ok(())
}

/// Writes the hello of an outgoing connection.
pub async fn send_hello<W: AsyncWrite + Unpin>(w: &mut W, secret: &str) -> std::io::Result<()> {
    w.write_all(&hello(secret)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn frames_round_trip_and_limits_hold() {
        let mut bytes = Vec::new();
        put_frame(&mut bytes, b"abc");
        bytes.extend_from_slice(&((MAX_FRAME + 1) as u32).to_be_bytes());
        let mut r = &bytes[..];
        let mut buf = Vec::new();
        assert!(read_frame(&mut r, &mut buf).await.unwrap().is_some());
        assert_eq!(buf, b"abc");
        assert!(matches!(
            read_frame(&mut r, &mut buf).await,
            Err(FrameError::Size(_))
        ));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn hello_needs_the_secret() {
        let h = hello("s3cret");
        assert!(accept_hello(&mut &h[..], "s3cret").await.is_ok());
        assert!(accept_hello(&mut &h[..], "other").await.is_err());
        assert!(accept_hello(&mut &b"\x00\x00\x00\x03abc"[..], "s3cret")
            .await
            .is_err());
    }
}
