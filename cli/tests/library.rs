//! The scenario library (`experiments/*.toml`) at quick scale: every experiment runs under
//! every protocol (`quorumlab compare SPEC --quick`), and every expectation it carries must
//! hold. `--quick` applies each spec's own `quick` overrides: shorter durations, the same
//! faults and the same checks.

use std::path::{Path, PathBuf};
use std::process::Command;

fn experiments() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("experiments/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

fn name(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

/// Each experiment opens with a comment saying what it teaches and what to look for, and (the
/// built-in default aside) carries expectations and quick overrides.
#[test]
fn every_experiment_is_documented_and_checkable() {
    let all = experiments();
    assert!(all.len() >= 13, "the library has {} experiments", all.len());
    for p in &all {
        let text = std::fs::read_to_string(p).unwrap();
        let n = name(p);
        assert!(text.starts_with('#'), "{n}: must open with a comment");
        let header: String = text
            .lines()
            .take_while(|l| l.starts_with('#') || l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n")
            .to_lowercase();
        assert!(
            header.contains("what it teaches"),
            "{n}: header lacks 'What it teaches'"
        );
        assert!(
            header.contains("look for"),
            "{n}: header lacks what to look for"
        );
        if n != "default" {
            assert!(text.contains("[[expect]]"), "{n}: no expectations");
            assert!(text.contains("\nquick = ["), "{n}: no quick overrides");
        }
    }
}

/// The whole library at quick scale, every protocol: all expectations hold.
#[test]
fn library_passes_its_expectations_at_quick_scale() {
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for p in experiments() {
        let n = name(&p);
        let out = tmp.path().join(&n);
        let o = Command::new(env!("CARGO_BIN_EXE_quorumlab"))
            .arg("compare")
            .arg(&p)
            .args(["--quick", "--seed", "1", "--out"])
            .arg(&out)
            .output()
            .expect("run quorumlab");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let holds = text.matches("expect holds").count();
        eprintln!("{n}: exit {:?}, {holds} expectations hold", o.status.code());
        if !o.status.success() {
            let failed: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("FAILED") || l.starts_with("error"))
                .collect();
            failures.push(format!("{n}:\n  {}", failed.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "experiments whose expectations failed at quick scale (seed 1):\n{}",
        failures.join("\n")
    );
}

/// Every reproduction runs end to end at quick scale and writes its markdown table, CSV and
/// plots (the full-scale outputs are committed under docs/reproductions/).
#[test]
fn reproductions_run_at_quick_scale() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "rtt",
        "quorum-table",
        "lease-drift",
        "failover",
        "many-ensembles",
    ] {
        let out = tmp.path().join(name);
        let o = Command::new(env!("CARGO_BIN_EXE_quorumlab"))
            .args(["reproduce", name, "--quick", "--out"])
            .arg(&out)
            .output()
            .expect("run quorumlab");
        assert!(
            o.status.success(),
            "reproduce {name} --quick failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let md = std::fs::read_to_string(out.join(format!("{name}.md"))).expect("markdown");
        assert!(
            md.contains("quorumlab reproduce"),
            "{name}: no command line"
        );
        assert!(md.contains("\n|---|"), "{name}: no table");
        assert!(out.join(format!("{name}.csv")).exists(), "{name}: no CSV");
        let svgs = std::fs::read_dir(&out)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "svg")
            })
            .count();
        assert!(svgs >= 1, "{name}: no plot");
    }
}
