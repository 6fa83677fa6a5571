//! Generates histories that are linearizable by construction, for tests and benchmarks: a
//! sequential in-memory KV applies each op at a random instant inside its real-time interval
//! (clients overlap at random), exactly the way a single copy would. Deterministic in the seed.

use quorumlab_kv::history::{Event, EventType, ProcessId};
use serde_json::{json, Value as Json};
use std::collections::HashMap;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    pub ops: usize,
    pub keys: usize,
    pub clients: usize,
    pub seed: u64,
    /// Share of ops whose completion is `info` (each then took effect, possibly well after the
    /// client gave up, or never, at random).
    pub info_rate: f64,
    /// Share of mutations that `fail` without taking effect (no `error`).
    pub fail_rate: f64,
    /// Use `append` (string values) instead of integer writes, cas and create.
    pub append: bool,
    /// Sets instead: half reads (returning the sorted set), half adds of unique elements.
    pub sets: bool,
}

impl GenConfig {
    pub fn new(ops: usize, keys: usize, clients: usize, seed: u64) -> GenConfig {
        GenConfig {
            ops,
            keys,
            clients,
            seed,
            info_rate: 0.0,
            fail_rate: 0.0,
            append: false,
            sets: false,
        }
    }
}

/// A small deterministic RNG (splitmix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x6A09_E667_F3BC_C909)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum F {
    Read,
    Write,
    Cas,
    Create,
    Delete,
    Append,
    Add,
}

struct GOp {
    process: u64,
    start: u64,
    end: u64,
    lp: u64,
    f: F,
    key: usize,
    info: bool,
    not_applied: bool,
    input: Json,
    output: Json,
    kind: EventType,
    error: Option<String>,
}

/// A value that no op ever writes (reads of it can never be linearized).
pub const NEVER_WRITTEN: u64 = 999_999_999_999_999;

/// Generates a linearizable history (events sorted by time, invocations first on ties).
pub fn generate(cfg: &GenConfig) -> Vec<Event> {
    let mut rng = Rng::new(cfg.seed);
    let clients = cfg.clients.max(1);
    let keys = cfg.keys.max(1);
    let mut t = vec![0u64; clients];
    let mut ops: Vec<GOp> = Vec::with_capacity(cfg.ops);
    for i in 0..cfg.ops {
        let c = i % clients;
        let start = t[c] + rng.range(1, 50_000);
        let dur = rng.range(1_000, 400_000);
        let end = start + dur;
        t[c] = end;
        let r = rng.range(0, 99);
        let f = if cfg.sets {
            if r < 50 {
                F::Read
            } else {
                F::Add
            }
        } else if cfg.append {
            match r {
                0..=44 => F::Read,
                45..=89 => F::Append,
                90..=94 => F::Write,
                _ => F::Delete,
            }
        } else {
            match r {
                0..=49 => F::Read,
                50..=79 => F::Write,
                80..=89 => F::Cas,
                90..=94 => F::Create,
                _ => F::Delete,
            }
        };
        let info = rng.chance(cfg.info_rate);
        let not_applied = !info && f != F::Read && rng.chance(cfg.fail_rate);
        // an info op takes effect somewhere after its invocation, maybe long after the client
        // gave up; half of them never do
        let lp = if info {
            start + rng.range(0, 4 * dur)
        } else {
            rng.range(start, end)
        };
        let info_never = info && rng.chance(0.5);
        ops.push(GOp {
            process: c as u64,
            start,
            end,
            lp,
            f,
            key: rng.range(0, keys as u64 - 1) as usize,
            info,
            not_applied: not_applied || info_never,
            input: Json::Null,
            output: Json::Null,
            kind: EventType::Ok,
            error: None,
        });
    }
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].lp, i));
    let mut store: HashMap<usize, Json> = HashMap::new();
    let mut next: u64 = 1;
    for i in order {
        let o = &mut ops[i];
        let cur = store.get(&o.key).cloned();
        let applies = !o.not_applied;
        match o.f {
            F::Read => {
                o.output = cur.unwrap_or(Json::Null);
            }
            F::Write => {
                o.input = json!(next);
                next += 1;
                if applies {
                    store.insert(o.key, o.input.clone());
                }
            }
            F::Append => {
                o.input = json!(format!("{next},"));
                next += 1;
                if applies {
                    let s = match &cur {
                        Some(Json::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => String::new(),
                    };
                    store.insert(o.key, json!(format!("{s}{}", o.input.as_str().unwrap())));
                }
            }
            F::Cas => {
                let expected = match &cur {
                    Some(v) if rng.chance(0.6) => v.clone(),
                    _ => json!(next + 1_000_000_000_000),
                };
                o.input = json!([expected, next]);
                let holds = cur.as_ref() == Some(&expected);
                if applies && holds {
                    store.insert(o.key, json!(next));
                } else if !holds && !o.info && !o.not_applied {
                    o.kind = EventType::Fail;
                    o.error = Some("precondition".into());
                }
                next += 1;
            }
            F::Create => {
                o.input = json!(next);
                let holds = cur.is_none();
                if applies && holds {
                    store.insert(o.key, json!(next));
                } else if !holds && !o.info && !o.not_applied {
                    o.kind = EventType::Fail;
                    o.error = Some("precondition".into());
                }
                next += 1;
            }
            F::Delete => {
                if applies {
                    store.remove(&o.key);
                }
            }
            F::Add => {
                o.input = json!(next);
                next += 1;
                if applies {
                    let mut set: Vec<u64> = match &cur {
                        Some(Json::Array(a)) => a.iter().filter_map(Json::as_u64).collect(),
                        _ => Vec::new(),
                    };
                    set.push(o.input.as_u64().expect("integer element"));
                    set.sort_unstable();
                    store.insert(o.key, json!(set));
                }
            }
        }
        if o.info {
            o.kind = EventType::Info;
        } else if o.not_applied {
            o.kind = EventType::Fail;
            o.error = None;
        }
    }
    let name = |f: F| match f {
        F::Read => "read",
        F::Write => "write",
        F::Cas => "cas",
        F::Create => "create",
        F::Delete => "delete",
        F::Append => "append",
        F::Add => "add",
    };
    // (time, 0 = invoke first on ties, op) -> event
    let mut evs: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
    for (i, o) in ops.iter().enumerate() {
        evs.push((o.start, 0, i));
        evs.push((o.end, 1, i));
    }
    evs.sort_unstable();
    evs.into_iter()
        .enumerate()
        .map(|(index, (time, what, i))| {
            let o = &ops[i];
            let (kind, value, error) = if what == 0 {
                (EventType::Invoke, o.input.clone(), None)
            } else if o.f == F::Read {
                (o.kind, o.output.clone(), None)
            } else {
                (o.kind, o.input.clone(), o.error.clone())
            };
            Event {
                index: index as u64,
                time,
                process: ProcessId::Client(o.process),
                kind,
                f: name(o.f).to_string(),
                key: Some(format!("k{}", o.key)),
                value,
                error,
            }
        })
        .collect()
}

/// Changes the value returned by the `n`-th (mod count) `ok` read to [`NEVER_WRITTEN`] (a
/// string for string values); returns false if there is no `ok` read.
pub fn corrupt_read(events: &mut [Event], n: usize) -> bool {
    let reads: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.f == "read" && e.kind == EventType::Ok)
        .map(|(i, _)| i)
        .collect();
    if reads.is_empty() {
        return false;
    }
    let i = reads[n % reads.len()];
    events[i].value = match events[i].value {
        Json::String(_) => json!("#never#"),
        _ => json!(NEVER_WRITTEN),
    };
    true
}
