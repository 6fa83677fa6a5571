//! CLUSTER.toml: where each node listens and the secret that authenticates peers and clients.
//!
//! ```toml
//! secret = "a long random string"
//! [[nodes]]
//! addr = "10.0.0.1:7400"        # where others connect (node ids are the order: n0, n1, ...)
//! # listen = "0.0.0.0:7400"     # optional bind address (default: addr)
//! ```

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub secret: String,
    pub nodes: Vec<NodeAddr>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAddr {
    pub addr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

impl ClusterFile {
    pub fn read(path: &Path) -> Result<ClusterFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let c: ClusterFile =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if c.secret.len() < 8 {
            return Err(format!(
                "{}: secret must be at least 8 characters",
                path.display()
            ));
        }
        if c.nodes.is_empty() {
            return Err(format!("{}: no [[nodes]]", path.display()));
        }
        for n in &c.nodes {
            n.addr
                .parse::<SocketAddr>()
                .map_err(|e| format!("{}: node addr {:?}: {e}", path.display(), n.addr))?;
        }
        Ok(c)
    }

    pub fn addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].addr.parse().expect("checked on read")
    }

    pub fn listen(&self, i: usize) -> Result<SocketAddr, String> {
        let n = &self.nodes[i];
        n.listen
            .as_deref()
            .unwrap_or(&n.addr)
            .parse()
            .map_err(|e| format!("listen address of n{i}: {e}"))
    }

    /// A loopback cluster of `n` nodes on free ports.
    pub fn loopback(n: usize, secret: String) -> std::io::Result<ClusterFile> {
        let mut held = Vec::new();
        let mut nodes = Vec::new();
        for _ in 0..n {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            nodes.push(NodeAddr {
                addr: l.local_addr()?.to_string(),
                listen: None,
            });
            held.push(l);
        }
        Ok(ClusterFile { secret, nodes })
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("cluster serializes")
    }
}
