//! Checker benchmark: check time and peak memory on generated histories.
//!
//! ```text
//! cargo run --release -p quorumlab-checker --example checker_bench            # the table
//! cargo run --release -p quorumlab-checker --example checker_bench -- gen OPS KEYS CLIENTS SEED [INFO_RATE] > h.jsonl
//! cargo run --release -p quorumlab-checker --example checker_bench -- check FILE [edn|jsonl] [OUT_DIR] [TIMEOUT_S]
//! cargo run --release -p quorumlab-checker --example checker_bench -- phases FILE   # parse vs check
//! ```
//!
//! `check` runs exactly what `quorumlab check` runs ([`run_check_cli`]: read the file, check,
//! print) in a fresh process, and then reports its wall time and peak resident memory (VmHWM)
//! on stderr. The table mode generates each history into a temporary file and runs `check`
//! on it as a child process, so every figure includes reading the file and nothing else.

use quorumlab_checker::gen::{generate, GenConfig};
use quorumlab_checker::{run_check_cli, Format};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn write_history(cfg: &GenConfig, path: &Path) {
    let events = generate(cfg);
    let f = std::fs::File::create(path).expect("create history file");
    let mut w = BufWriter::new(f);
    quorumlab_kv::history::write_jsonl(&mut w, &events).expect("write history");
    w.flush().expect("flush");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") => {
            let n = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
            let mut cfg = GenConfig::new(
                n(1, 100_000) as usize,
                n(2, 1000) as usize,
                n(3, 50) as usize,
                n(4, 1),
            );
            cfg.info_rate = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(0.0);
            let events = generate(&cfg);
            let stdout = std::io::stdout();
            let mut w = BufWriter::new(stdout.lock());
            quorumlab_kv::history::write_jsonl(&mut w, &events).expect("write");
        }
        Some("phases") => {
            // read+parse and check timed separately, best of 5
            let path = PathBuf::from(args.get(1).expect("phases FILE"));
            let (mut best_parse, mut best_check) = (f64::MAX, f64::MAX);
            for _ in 0..5 {
                let t = Instant::now();
                let h = quorumlab_checker::read_history(&path, None).expect("history");
                let parse = t.elapsed().as_secs_f64();
                let t = Instant::now();
                let r = quorumlab_checker::check_history(&h, &Default::default()).expect("check");
                let check = t.elapsed().as_secs_f64();
                best_parse = best_parse.min(parse);
                best_check = best_check.min(check);
                eprintln!("{:?} parse {parse:.3}s check {check:.3}s", r.verdict);
            }
            println!("best: read+parse {best_parse:.3}s, check {best_check:.3}s");
        }
        Some("check") => {
            let path = PathBuf::from(args.get(1).expect("check FILE"));
            let format = args.get(2).and_then(|f| f.parse::<Format>().ok());
            let out = args.get(3).filter(|s| !s.is_empty()).map(PathBuf::from);
            let timeout = args
                .get(4)
                .and_then(|s| s.parse::<f64>().ok())
                .map(Duration::from_secs_f64);
            let t = Instant::now();
            let code = run_check_cli(&path, format, out.as_deref(), timeout);
            let ms = t.elapsed().as_secs_f64() * 1e3;
            eprintln!("BENCH exit={code} ms={ms:.1} peak_kib={}", peak_rss_kib());
            std::process::exit(code);
        }
        _ => table(),
    }
}

fn table() {
    let me = std::env::current_exe().expect("current exe");
    let dir = std::env::temp_dir().join(format!("qlcheck-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("checker benchmark: {cores} cores; each figure = best of 3 runs of a fresh process");
    println!(
        "| ops | keys | clients | info | file MB | check time (s) | peak memory (MiB) | verdict |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---|");
    // (ops, keys, clients, info rate); keys prefixed by `s` below are set histories
    let cases: &[(usize, usize, usize, f64)] = &[
        (10_000, 1000, 10, 0.0),
        (10_000, 1000, 100, 0.0),
        (100_000, 1000, 10, 0.0),
        (100_000, 1000, 50, 0.0),
        (100_000, 1000, 100, 0.0),
        (100_000, 1000, 100, 0.05),
        (1_000_000, 1000, 10, 0.0),
        (1_000_000, 1000, 100, 0.0),
        (1_000_000, 1000, 100, 0.05),
        // contention: few keys, many clients
        (100_000, 10, 100, 0.0),
        (100_000, 1, 10, 0.0),
        (100_000, 1, 10, 0.01),
    ];
    let set_cases: &[(usize, usize, usize, f64)] = &[
        (100_000, 1000, 10, 0.0),
        (100_000, 100, 50, 0.0),
        (100_000, 100, 50, 0.05),
        (20_000, 10, 10, 0.0),
    ];
    let all = cases
        .iter()
        .map(|&c| (c, false))
        .chain(set_cases.iter().map(|&c| (c, true)));
    for ((ops, keys, clients, info), sets) in all {
        let mut cfg = GenConfig::new(ops, keys, clients, 7);
        cfg.info_rate = info;
        cfg.fail_rate = 0.02;
        cfg.sets = sets;
        let path = dir.join(format!("h-{ops}-{keys}-{clients}-{info}-{sets}.jsonl"));
        write_history(&cfg, &path);
        let mb = std::fs::metadata(&path).map_or(0.0, |m| m.len() as f64 / 1e6);
        let mut best: Option<(f64, u64, i32)> = None;
        for _ in 0..3 {
            let out = Command::new(&me)
                .arg("check")
                .arg(&path)
                .output()
                .expect("run child");
            let err = String::from_utf8_lossy(&out.stderr);
            let line = err.lines().find(|l| l.starts_with("BENCH")).unwrap_or("");
            let field = |k: &str| -> f64 {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(k))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN)
            };
            let (ms, kib, code) = (
                field("ms="),
                field("peak_kib=") as u64,
                field("exit=") as i32,
            );
            if best.is_none_or(|b| ms < b.0) {
                best = Some((ms, kib, code));
            }
        }
        let (ms, kib, code) = best.expect("three runs");
        let verdict = match code {
            0 => "linearizable",
            1 => "NOT linearizable",
            3 => "unknown",
            _ => "error",
        };
        println!(
            "| {ops} | {keys}{} | {clients} | {:.0}% | {mb:.1} | {:.3} | {:.0} | {verdict} |",
            if sets { " sets" } else { "" },
            info * 100.0,
            ms / 1e3,
            kib as f64 / 1024.0
        );
        let _ = std::fs::remove_file(&path);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
