//! `--netns`: each node in its own network namespace, joined to a bridge in the host namespace by
//! a veth pair; the load process (and the fault controller) stay in the host namespace and reach
//! the nodes through the bridge.
//!
//! * Links: the spec's network model ([`quorumlab_workloads::network::link_models`]) becomes, on
//!   each node's veth, an `htb` class per destination with a `tc netem` child (`delay`, jitter,
//!   `loss`) selected by a `u32` filter on the destination address: per ordered pair of nodes
//!   (and node → clients, with the model of the link to client `c0`).
//! * Partitions and one-way cuts: an nftables table `inet qlab` in each namespace; the cut
//!   `x -> y` (x cannot reach y) is a `drop` rule for `ip daddr y` in x's `output` chain. A
//!   partition is both directions; the whole cut matrix is rewritten on every change.
//! * If the kernel has no `sch_netem` (some VM kernels, such as the one these tests ran on),
//!   latency and jitter cannot be applied in the kernel: the run says so, and loss is applied by
//!   nftables instead (`numgen random mod 1000000 < p·10⁶ drop` in the same output chain).
//!
//! Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), `ip` (iproute2), `tc` and `nft`.

use quorumlab_sim::Latency;
use quorumlab_workloads::Spec;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// Port every node listens on inside its namespace.
pub const PORT: u16 = 7400;

/// The namespaces, veths and bridge of one run; removed on drop.
pub struct Netns {
    /// Run tag (names are `ql{tag}...`).
    pub tag: u32,
    pub subnet: u8,
    pub nodes: usize,
    /// Whether `tc netem` works on this kernel.
    pub netem: bool,
    /// Notes for the run log (what was and was not applied).
    pub notes: Vec<String>,
}

fn run(args: &[&str]) -> Result<(), String> {
    let o = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

fn nft(ns: &str, script: &str) -> Result<(), String> {
    use std::io::Write;
    let mut c = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e}"))?;
    c.stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())
        .map_err(|e| e.to_string())?;
    let o = c.wait_with_output().map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft in {ns}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// Checks that this process may create namespaces and that the tools are there.
pub fn preflight() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(
            "--netns needs root (network namespaces, veth links, tc and nftables): \
                    run as root, or without --netns (faults then go through the nodes' \
                    in-process drop layer)"
                .into(),
        );
    }
    for (tool, arg) in [("ip", "-V"), ("tc", "-V"), ("nft", "--version")] {
        let ok = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Err(format!(
                "--netns needs `{tool}` (Debian: apt-get install iproute2 nftables)"
            ));
        }
    }
    Ok(())
}

/// Whether this kernel has `sch_netem` (probed in a throw-away namespace; needs root).
pub fn netem_available() -> bool {
    let ns = format!("qlprobe{}", std::process::id());
    if run(&["ip", "netns", "add", &ns]).is_err() {
        return false;
    }
    let ok = run(&[
        "ip", "netns", "exec", &ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay",
        "0ms",
    ])
    .is_ok();
    let _ = run(&["ip", "netns", "del", &ns]);
    ok
}

/// netem arguments (`delay ... loss ...`) for a link model.
fn netem_args(lat: &Latency, loss: f64) -> Vec<String> {
    let ms = |x: f64| format!("{:.3}ms", x.max(0.0));
    let mut v = vec!["delay".to_string()];
    match *lat {
        Latency::Constant { ms: m } => v.push(ms(m)),
        Latency::Uniform { min_ms, max_ms } => {
            v.push(ms((min_ms + max_ms) / 2.0));
            v.push(ms((max_ms - min_ms) / 2.0));
        }
        Latency::Normal { mean_ms, sd_ms } => v.extend([
            ms(mean_ms),
            ms(sd_ms),
            "distribution".into(),
            "normal".into(),
        ]),
        // netem has no log-normal: normal with the same median and a spread of median·sigma.
        Latency::Lognormal { median_ms, sigma } => v.extend([
            ms(median_ms),
            ms(median_ms * sigma),
            "distribution".into(),
            "normal".into(),
        ]),
        Latency::Pareto { .. } => {
            let mean = lat.mean_ms();
            let min = match *lat {
                Latency::Pareto { min_ms, .. } => min_ms,
                _ => 0.0,
            };
            v.extend([
                ms(mean),
                ms(mean - min),
                "distribution".into(),
                "pareto".into(),
            ])
        }
    }
    if loss > 0.0 {
        v.push("loss".into());
        v.push(format!("{:.4}%", loss * 100.0));
    }
    v
}

impl Netns {
    pub fn ns(&self, i: usize) -> String {
        format!("ql{}n{i}", self.tag)
    }
    fn bridge(&self) -> String {
        format!("ql{}br", self.tag)
    }
    fn veth(&self, i: usize) -> String {
        format!("ql{}v{i}", self.tag)
    }
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, i as u8 + 1)
    }
    pub fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, 254)
    }

    /// Creates the bridge, one namespace and veth per node, the link models and the (empty)
    /// nftables tables. `spec.cluster.nodes` must be the node count.
    pub fn create(spec: &Spec) -> Result<Netns, String> {
        preflight()?;
        let nodes = spec.cluster.nodes;
        if nodes > 250 {
            return Err("--netns supports at most 250 nodes".into());
        }
        let tag = std::process::id() % 10_000;
        // A 10.77.X.0/24 no interface of the host namespace uses (another run's bridge).
        let used = Command::new("ip")
            .args(["-4", "-o", "addr", "show"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let subnet = (0..250u32)
            .map(|k| ((tag + k) % 250 + 1) as u8)
            .find(|x| !used.contains(&format!(" 10.77.{x}.")))
            .ok_or("no free 10.77.X.0/24 subnet for --netns")?;
        let mut n = Netns {
            tag,
            subnet,
            nodes,
            netem: false,
            notes: Vec::new(),
        };
        n.cleanup(); // leftovers of an earlier run with the same tag
        n.setup(spec).inspect_err(|_| n.cleanup())?;
        Ok(n)
    }

    fn setup(&mut self, spec: &Spec) -> Result<(), String> {
        let br = self.bridge();
        run(&["ip", "link", "add", &br, "type", "bridge"])?;
        let host = format!("{}/24", self.host_ip());
        run(&["ip", "addr", "add", &host, "dev", &br])?;
        run(&["ip", "link", "set", &br, "up"])?;
        for i in 0..self.nodes {
            let (ns, v) = (self.ns(i), self.veth(i));
            let peer = format!("{v}p");
            run(&["ip", "netns", "add", &ns])?;
            run(&[
                "ip", "link", "add", &v, "type", "veth", "peer", "name", &peer,
            ])?;
            run(&["ip", "link", "set", &peer, "netns", &ns])?;
            run(&["ip", "-n", &ns, "link", "set", &peer, "name", "eth0"])?;
            let a = format!("{}/24", self.ip(i));
            run(&["ip", "-n", &ns, "addr", "add", &a, "dev", "eth0"])?;
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
            run(&["ip", "link", "set", &v, "master", &br])?;
            run(&["ip", "link", "set", &v, "up"])?;
            nft(
                &ns,
                "table inet qlab {\n chain output { type filter hook output priority 0; }\n \
                 chain cuts { }\n chain loss { }\n}\n\
                 add rule inet qlab output jump cuts\nadd rule inet qlab output jump loss\n",
            )?;
        }
        self.links(spec)
    }

    /// The spec's link models on the veths (netem), or loss by nftables without netem.
    fn links(&mut self, spec: &Spec) -> Result<(), String> {
        let models = quorumlab_workloads::network::link_models(spec);
        let n = self.nodes;
        let all = n + spec.workload.clients;
        // Probe netem once.
        let probe = self.ns(0);
        self.netem = run(&[
            "ip", "netns", "exec", &probe, "tc", "qdisc", "add", "dev", "lo", "root", "netem",
            "delay", "0ms",
        ])
        .is_ok();
        if self.netem {
            let _ = run(&[
                "ip", "netns", "exec", &probe, "tc", "qdisc", "del", "dev", "lo", "root",
            ]);
        } else {
            self.notes.push(
                "this kernel has no sch_netem: link latency and jitter are NOT applied \
                 (loss is, by nftables)"
                    .into(),
            );
        }
        for a in 0..n {
            let ns = self.ns(a);
            // Destinations: every other node, then the host (clients) as one destination.
            let mut dests: Vec<(Ipv4Addr, usize)> = (0..n)
                .filter(|&b| b != a)
                .map(|b| (self.ip(b), b))
                .collect();
            if all > n {
                dests.push((self.host_ip(), n));
            }
            if self.netem {
                let tc = |args: &[&str]| -> Result<(), String> {
                    let mut v = vec!["ip", "netns", "exec", &ns, "tc"];
                    v.extend_from_slice(args);
                    run(&v)
                };
                tc(&[
                    "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb", "default", "999",
                ])?;
                tc(&[
                    "class", "add", "dev", "eth0", "parent", "1:", "classid", "1:999", "htb",
                    "rate", "10gbit",
                ])?;
                for (k, (ip, b)) in dests.iter().enumerate() {
                    let m = &models[a * all + b];
                    let class = format!("1:{}", k + 1);
                    let handle = format!("{}:", k + 10);
                    tc(&[
                        "class", "add", "dev", "eth0", "parent", "1:", "classid", &class, "htb",
                        "rate", "10gbit",
                    ])?;
                    let mut q: Vec<String> = [
                        "qdisc", "add", "dev", "eth0", "parent", &class, "handle", &handle, "netem",
                    ]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                    q.extend(netem_args(&m.latency, m.loss));
                    let q: Vec<&str> = q.iter().map(|s| s.as_str()).collect();
                    tc(&q)?;
                    let dst = format!("{ip}/32");
                    tc(&[
                        "filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip", "prio",
                        "1", "u32", "match", "ip", "dst", &dst, "flowid", &class,
                    ])?;
                }
            } else {
                let mut script = String::from("flush chain inet qlab loss\n");
                for (ip, b) in &dests {
                    let p = models[a * all + b].loss;
                    if p > 0.0 {
                        script.push_str(&format!(
                            "add rule inet qlab loss ip daddr {ip} numgen random mod 1000000 < {} drop\n",
                            (p * 1e6).round() as u64
                        ));
                    }
                }
                nft(&ns, &script)?;
            }
        }
        if self.netem {
            self.notes.push(format!(
                "tc netem on every node's veth: {} per-destination link models",
                n * (all.min(n + 1) - 1)
            ));
        }
        Ok(())
    }

    /// Installs the cut matrix: `(x, y)` means x's packets to y are dropped.
    pub fn set_cuts(&self, cuts: &BTreeSet<(usize, usize)>) -> Result<(), String> {
        for x in 0..self.nodes {
            let mut script = String::from("flush chain inet qlab cuts\n");
            let to: Vec<String> = cuts
                .iter()
                .filter(|c| c.0 == x && c.1 < self.nodes)
                .map(|c| self.ip(c.1).to_string())
                .collect();
            if !to.is_empty() {
                script.push_str(&format!(
                    "add rule inet qlab cuts ip daddr {{ {} }} drop\n",
                    to.join(", ")
                ));
            }
            nft(&self.ns(x), &script)?;
        }
        Ok(())
    }

    /// Removes the namespaces (and with them the veths) and the bridge.
    pub fn cleanup(&self) {
        for i in 0..self.nodes {
            let _ = run(&["ip", "netns", "del", &self.ns(i)]);
            let _ = run(&["ip", "link", "del", &self.veth(i)]);
        }
        let _ = run(&["ip", "link", "del", &self.bridge()]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.cleanup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netem_arguments_follow_the_latency_model() {
        assert_eq!(
            netem_args(&Latency::Constant { ms: 0.5 }, 0.0).join(" "),
            "delay 0.500ms"
        );
        assert_eq!(
            netem_args(
                &Latency::Normal {
                    mean_ms: 2.0,
                    sd_ms: 0.5
                },
                0.01
            )
            .join(" "),
            "delay 2.000ms 0.500ms distribution normal loss 1.0000%"
        );
        assert_eq!(
            netem_args(
                &Latency::Uniform {
                    min_ms: 1.0,
                    max_ms: 3.0
                },
                0.0
            )
            .join(" "),
            "delay 2.000ms 1.000ms"
        );
    }
}
