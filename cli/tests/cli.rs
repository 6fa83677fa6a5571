//! The command line end to end: run directories, determinism, clean errors for bad input.

use std::path::Path;
use std::process::Command;

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

#[test]
fn run_writes_a_deterministic_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [&a, &b] {
        let o = ql(&[
            "run",
            "--protocol",
            "single",
            "--seed",
            "5",
            "--set",
            "workload.duration_s=20",
            "--out",
            d.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    for f in ["spec.toml", "history.jsonl", "summary.json"] {
        assert!(a.join(f).exists(), "{f} missing");
    }
    let h = |d: &Path| std::fs::read(d.join("history.jsonl")).unwrap();
    assert_eq!(h(&a), h(&b));
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("summary.json")).unwrap()).unwrap();
    for k in [
        "protocol",
        "seed",
        "sim_seconds",
        "wall_seconds",
        "ops",
        "throughput_ok_per_s",
        "latency_us",
        "availability",
        "messages",
        "faults",
        "history_sha256",
        "linearizable",
    ] {
        assert!(s.get(k).is_some(), "summary lacks {k}");
    }
    assert_eq!(s["protocol"], "single");
    assert!(s["ops"]["ok"].as_u64().unwrap() > 0);
    assert!(s["latency_us"]["all"]["p99"].as_u64().unwrap() > 0);
    // The resolved spec reproduces the run.
    let c = dir.path().join("c");
    let o = ql(&[
        "run",
        a.join("spec.toml").to_str().unwrap(),
        "--protocol",
        "single",
        "--seed",
        "5",
        "--out",
        c.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(h(&a), h(&c));
}

#[test]
fn bad_spec_is_one_clear_error_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[cluster]\nnodes = 5\nthis_key_does_not_exist = 1\n").unwrap();
    let o = ql(&[
        "run",
        bad.to_str().unwrap(),
        "--protocol",
        "single",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(t.contains("bad.toml:3"), "{t}");
    assert!(t.contains("this_key_does_not_exist"), "{t}");
    assert!(!t.contains("panicked"), "{t}");

    std::fs::write(
        &bad,
        "[[faults]]\nat_s = 1\nfault = { kind = \"crash\", node = \"n7\" }\n",
    )
    .unwrap();
    let o = ql(&["run", bad.to_str().unwrap(), "--protocol", "single"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("n7"), "{}", text(&o));

    let o = ql(&["run", "--protocol", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("unknown protocol"), "{}", text(&o));

    let o = ql(&[
        "run",
        "--protocol",
        "single",
        "--set",
        "workload.clients=-1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    let o = ql(&["run", "/no/such/spec.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn spec_default_and_protocols_print() {
    let o = ql(&["spec", "default"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("isolate_leader"));
    let o = ql(&["protocols"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("single"));
}
