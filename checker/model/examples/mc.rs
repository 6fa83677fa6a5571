//! Ad-hoc runs: `cargo run --release -p quorumlab-model --example mc -- raft faithful depth=12 crashes=1 ...`
use quorumlab_model::*;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a[0] == "lease" {
        for r in quorumlab_model::lease::all().unwrap() {
            println!("{r:?}");
        }
        return;
    }
    let mut c = defaults(&a[0], &a[1]).unwrap();
    let mut svg = None;
    for kv in &a[2..] {
        let (k, v) = kv.split_once('=').unwrap();
        match k {
            "peers" => c.peers = v.parse().unwrap(),
            "clients" => {
                c.clients = v.parse().unwrap();
                c.script.clear()
            }
            "ops" => {
                c.ops = v.parse().unwrap();
                c.script.clear()
            }
            "keys" => c.keys = v.parse().unwrap(),
            "script" => c.script = parse_script(v).unwrap(),
            "crashes" => c.crashes = v.parse().unwrap(),
            "down" => c.crash_down = v.parse().unwrap(),
            "lossy" => c.lossy = v.parse().unwrap(),
            "network" => c.network = v.parse().unwrap(),
            "lease" => c.lease_reads = v.parse().unwrap(),
            "timeouts" => c.client_timeouts = v.parse().unwrap(),
            "max_term" => c.max_term = v.parse().unwrap(),
            "max_rounds" => c.max_rounds = v.parse().unwrap(),
            "max_entries" => c.max_entries = v.parse().unwrap(),
            "warmup" => c.warmup = v.parse().unwrap(),
            "mode" => c.mode = v.parse().unwrap(),
            "threads" => c.threads = v.parse().unwrap(),
            "depth" => {
                c.depth = if v == "none" {
                    None
                } else {
                    Some(v.parse().unwrap())
                }
            }
            "states" => {
                c.max_states = if v == "none" {
                    None
                } else {
                    Some(v.parse().unwrap())
                }
            }
            "timeout" => c.timeout_secs = Some(v.parse().unwrap()),
            "symmetry" => c.symmetry = v.parse().unwrap(),
            "seed" => c.seed = v.parse().unwrap(),
            "svg" => svg = Some(v.to_string()),
            "prefix" => {
                c.prefix = v
                    .split('|')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            }
            _ => panic!("unknown {k}"),
        }
    }
    if let Ok(f) = std::env::var("FOLLOW") {
        let pats: Vec<&str> = f.split('|').map(str::trim).collect();
        follow(c.clone(), &pats);
        return;
    }
    if std::env::var("SHOW").is_ok() {
        show(c.clone());
    }
    let r = check(c).unwrap();
    println!("{}", r.text());
    if let Some(path) = svg {
        for p in &r.properties {
            if let Some(s) = &p.svg {
                std::fs::write(format!("{path}-{}.svg", p.name.replace(' ', "_")), s).unwrap();
            }
        }
    }
}

fn show(c: ModelCfg) {
    use stateright::Model;
    macro_rules! go {
        ($p:ty) => {{
            let m = KvModel::<$p>::new(c).unwrap();
            let init = m.init_states().pop().unwrap();
            let path = stateright::Path::from_actions(&m, init.clone(), &[]).unwrap();
            let (full, last) = m.full_steps(path);
            println!(
                "{}",
                quorumlab_model::trace::text(&quorumlab_model::trace::steps(&m, &full, &last))
            );
            let mut acts = Vec::new();
            m.actions(&init, &mut acts);
            for a in acts {
                println!("  enabled: {}", m.format_action(&a));
            }
        }};
    }
    match c.protocol.as_str() {
        "raft" => go!(RaftProto),
        _ => go!(EnsembleProto),
    }
}

#[allow(dead_code)]
pub fn follow(c: ModelCfg, pats: &[&str]) {
    macro_rules! go {
        ($p:ty) => {{
            let m = KvModel::<$p>::new(c).unwrap();
            match m.follow(pats) {
                Ok(path) => {
                    let (full, last) = m.full_steps(path);
                    println!(
                        "{}",
                        quorumlab_model::trace::text(&quorumlab_model::trace::steps(
                            &m, &full, &last
                        ))
                    );
                }
                Err(e) => println!("{e}"),
            }
        }};
    }
    match c.protocol.as_str() {
        "raft" => go!(RaftProto),
        _ => go!(EnsembleProto),
    }
}
