//! Real-network mode on loopback: node processes over TCP, real time, real SIGKILL.
//! Short runs (a few seconds each); see docs/real-mode.md.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ql(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_quorumlab"))
        .args(args)
        .output()
        .expect("run quorumlab")
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// Ok completions after `t_ns` in the history.
fn oks_after(dir: &Path, t_ns: u64) -> usize {
    std::fs::read_to_string(dir.join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["type"] == "ok" && e["time"].as_u64().unwrap() > t_ns)
        .count()
}

fn real(protocol: &str, dir: &Path, extra: &[&str]) -> serde_json::Value {
    let d = dir.display().to_string();
    let mut args = vec![
        "real",
        "--protocol",
        protocol,
        "--nodes",
        "3",
        "--out",
        &d,
        "--set",
        "workload.warmup_s=0.5",
        "--set",
        "workload.duration_s=3.5",
        "--set",
        "workload.timeout_ms=500",
    ];
    args.extend_from_slice(extra);
    let o = ql(&args);
    assert!(o.status.success(), "{}", text(&o));
    for f in ["spec.toml", "history.jsonl", "summary.json", "report.html"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    summary(dir)
}

#[test]
fn three_nodes_serve_reads_and_writes_linearizably() {
    for p in ["single", "raft", "ensemble", "openraft", "eventual"] {
        let dir = tempfile::tempdir().unwrap();
        let s = real(p, dir.path(), &["--set", "faults=[]"]);
        assert!(s["ops"]["ok"].as_u64().unwrap() > 50, "{p}: {s}");
        if p != "eventual" {
            // eventual is not linearizable by design (last writer wins, sloppy quorums).
            assert_eq!(s["linearizable"], true, "{p}");
        }
    }
}

#[test]
fn raft_and_openraft_survive_sigkill_of_their_leader() {
    for p in ["raft", "openraft"] {
        let dir = tempfile::tempdir().unwrap();
        let s = real(
            p,
            dir.path(),
            &[
                "--set",
                r#"faults=[{ at_s = 1.5, fault = { kind = "crash", node = "leader" } }]"#,
            ],
        );
        let h = std::fs::read_to_string(dir.path().join("history.jsonl")).unwrap();
        assert!(h.contains("(SIGKILL)"), "{p}: the crash was applied");
        assert_eq!(s["linearizable"], true, "{p}");
        // The remaining two nodes elect a leader and keep serving.
        assert!(oks_after(dir.path(), 3_000_000_000) > 10, "{p}: {s}");
    }
}

#[test]
fn kill_9_of_every_node_during_writes_loses_no_acknowledged_write() {
    // Every node is SIGKILLed mid-stream and restarted from its data directory; reads after
    // the restart must see every acknowledged write (else the history is not linearizable).
    for p in ["single", "raft", "openraft"] {
        let dir = tempfile::tempdir().unwrap();
        let faults = r#"faults=[
            { at_s = 1.5, fault = { kind = "crash", node = "n0" } },
            { at_s = 1.5, fault = { kind = "crash", node = "n1" } },
            { at_s = 1.5, fault = { kind = "crash", node = "n2" } },
            { at_s = 1.8, fault = { kind = "restart", node = "n0" } },
            { at_s = 1.8, fault = { kind = "restart", node = "n1" } },
            { at_s = 1.8, fault = { kind = "restart", node = "n2" } }]"#;
        let s = real(
            p,
            dir.path(),
            &[
                "--set",
                faults,
                "--set",
                "workload.keys=4",
                "--set",
                "workload.mix={ read = 50, write = 40, cas = 10, create = 0, delete = 0 }",
            ],
        );
        let h = std::fs::read_to_string(dir.path().join("history.jsonl")).unwrap();
        assert_eq!(h.matches("(SIGKILL)").count(), 3, "{p}");
        assert_eq!(
            s["linearizable"], true,
            "{p}: an acknowledged write was lost"
        );
        assert!(
            oks_after(dir.path(), 2_500_000_000) > 10,
            "{p}: serves after restart: {s}"
        );
    }
}

fn admin(sock: &Path, cmd: &str) -> String {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line
}

/// Whether the peer closed the connection (reads EOF or an error within 2 s).
fn closed(mut s: TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut b = [0u8; 16];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn garbage_oversized_and_unauthenticated_frames_are_rejected() {
    // The actor host and openraft's own node loop share the listener; check both.
    for p in ["single", "openraft"] {
        frames_rejected(p);
    }
}

fn frames_rejected(protocol: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let cluster = dir.path().join("cluster.toml");
    let secret = "test-secret-0123456789";
    std::fs::write(
        &cluster,
        format!("secret = \"{secret}\"\n[[nodes]]\naddr = \"{addr}\"\n"),
    )
    .unwrap();
    let data = dir.path().join("n0");
    let _node = Kill(
        Command::new(env!("CARGO_BIN_EXE_quorumlab"))
            .args(["node", "--protocol", protocol, "--id", "0", "--cluster"])
            .arg(&cluster)
            .arg("--data")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let sock = data.join("admin.sock");
    let t = Instant::now();
    while !(sock.exists() && TcpStream::connect(&addr).is_ok()) {
        assert!(t.elapsed() < Duration::from_secs(10), "node did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let hello = |s: &str| {
        let mut p = b"QLAB\x01".to_vec();
        p.extend_from_slice(s.as_bytes());
        let mut f = (p.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(&p);
        f
    };
    // 1. Garbage instead of a hello.
    let mut c = TcpStream::connect(&addr).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(closed(c));
    // 2. A hello with the wrong secret.
    let mut c = TcpStream::connect(&addr).unwrap();
    c.write_all(&hello("wrong-secret-000000")).unwrap();
    assert!(closed(c));
    // 3. Authenticated, then an oversized frame.
    let mut c = TcpStream::connect(&addr).unwrap();
    c.write_all(&hello(secret)).unwrap();
    c.write_all(&u32::MAX.to_be_bytes()).unwrap();
    assert!(closed(c));
    // 4. Authenticated, then a frame that does not decode.
    let mut c = TcpStream::connect(&addr).unwrap();
    c.write_all(&hello(secret)).unwrap();
    c.write_all(&[0, 0, 0, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])
        .unwrap();
    assert!(closed(c));
    let stats: serde_json::Value = serde_json::from_str(&admin(&sock, "stats")).unwrap();
    assert!(stats["rejected_conns"].as_u64().unwrap() >= 2, "{stats}");
    assert!(stats["rejected_frames"].as_u64().unwrap() >= 2, "{stats}");
    // The node is unharmed: a real client load still gets served.
    let out = dir.path().join("load");
    let o = ql(&[
        "load",
        "--cluster",
        cluster.to_str().unwrap(),
        "--protocol",
        protocol,
        "--out",
        out.to_str().unwrap(),
        "--set",
        "workload.warmup_s=0",
        "--set",
        "workload.duration_s=1",
        "--set",
        "faults=[]",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let s = summary(&out);
    assert!(s["ops"]["ok"].as_u64().unwrap() > 10, "{s}");
    assert_eq!(s["linearizable"], true);
}

#[test]
fn raft_partition_and_pause_through_the_drop_layer_and_signals() {
    // The leader is isolated by the nodes' drop layer, healed, then a node is SIGSTOPped.
    let dir = tempfile::tempdir().unwrap();
    let faults = r#"faults=[
        { at_s = 1.0, fault = { kind = "isolate_leader", group = 0 } },
        { at_s = 2.2, fault = { kind = "heal" } },
        { at_s = 2.5, fault = { kind = "pause", node = "n1", for_ms = 500.0 } }]"#;
    let s = real("raft", dir.path(), &["--set", faults]);
    let h = std::fs::read_to_string(dir.path().join("history.jsonl")).unwrap();
    assert!(
        h.contains("isolate leader of group 0"),
        "the isolation was applied"
    );
    assert!(
        h.contains("(SIGSTOP)") && h.contains("(SIGCONT)"),
        "the pause was applied"
    );
    assert_eq!(s["linearizable"], true);
    // A new leader on the majority side serves during the isolation.
    let oks_during = std::fs::read_to_string(dir.path().join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| {
            let t = e["time"].as_u64().unwrap();
            e["type"] == "ok" && t > 1_800_000_000 && t < 2_200_000_000
        })
        .count();
    assert!(oks_during > 5, "{s}");
    assert!(oks_after(dir.path(), 3_200_000_000) > 10, "{s}");
}

#[test]
fn nemesis_generators_run_in_real_mode() {
    // A crash generator: every 1 s a random node is SIGKILLed and restarted 0.4 s later.
    let dir = tempfile::tempdir().unwrap();
    let s = real(
        "raft",
        dir.path(),
        &[
            "--set",
            "faults=[]",
            "--set",
            "nemesis=[{ kind = \"crash\", every_s = 1.0, duration_s = 0.4 }]",
        ],
    );
    let h = std::fs::read_to_string(dir.path().join("history.jsonl")).unwrap();
    assert!(
        h.matches("(SIGKILL)").count() >= 2,
        "crashes were generated"
    );
    assert!(h.contains("\"f\":\"restart\""), "and ended by restarts");
    assert_eq!(s["linearizable"], true);
}

/// `--netns` needs root (namespaces, veth, nftables): run where the test runs as root with `ip`,
/// `tc` and `nft` installed, skipped (with a note) elsewhere.
#[test]
fn netns_partition_by_nftables() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc_geteuid() } == 0;
    let nft = Command::new("nft").arg("--version").output().is_ok();
    if !root || !nft {
        eprintln!("skipped: --netns needs root and nft");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let faults = r#"faults=[
        { at_s = 1.0, fault = { kind = "isolate_leader", group = 0 } },
        { at_s = 2.5, fault = { kind = "heal" } }]"#;
    let s = real(
        "raft",
        dir.path(),
        &["--netns", "--set", faults, "--set", "network.loss=0.001"],
    );
    let c = std::fs::read_to_string(dir.path().join("nodes/cluster.toml")).unwrap();
    assert!(c.contains("10.77."), "nodes are in namespaces: {c}");
    assert_eq!(s["linearizable"], true);
    assert!(
        s["leadership"]["elections"].as_u64().unwrap() >= 2,
        "isolating the leader by nftables forced an election: {s}"
    );
    assert!(oks_after(dir.path(), 3_000_000_000) > 10, "{s}");
    // The namespaces are gone afterwards (names are `ql<tag>n<i>`).
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let ns = String::from_utf8_lossy(&ns.stdout);
    assert!(!ns.lines().any(|l| l.starts_with("ql")), "left over: {ns}");
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[test]
fn compare_engines_overlays_sim_and_real() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let o = ql(&[
        "compare",
        "--engines",
        "sim,real",
        "--protocols",
        "single,openraft",
        "--out",
        &d,
        "--set",
        "workload.warmup_s=0.5",
        "--set",
        "workload.duration_s=2",
        "--set",
        "faults=[]",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("engines.json")).unwrap())
            .unwrap();
    for (i, p) in ["single", "openraft"].iter().enumerate() {
        let e = &j["protocols"][i];
        assert_eq!(e["protocol"], *p);
        for engine in ["sim", "real"] {
            assert!(
                e[engine]["ok_per_s"].as_f64().unwrap() > 10.0,
                "{p} {engine}: {e}"
            );
            assert_eq!(e[engine]["linearizable"], true, "{p} {engine}");
            assert!(dir.path().join(p).join(engine).join("report.html").exists());
        }
    }
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("openraft: latency CDF of ok ops, sim vs real"));
    assert!(html.contains("single: availability (ok / completed), sim vs real"));
}
