//! Op generation: the op mix, key distributions, and unique written values.

use crate::spec::{KeyDist, Mix, Pattern, Workload};
use quorumlab_kv::{Datum, Key, Op, Outcome, Request};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Picks keys according to a distribution.
#[derive(Clone, Debug)]
pub enum KeySampler {
    Uniform(u32),
    /// Cumulative weights of keys 0..n (key 0 hottest).
    Table(Vec<f64>),
    Hotspot {
        hot: u32,
        keys: u32,
        share: f64,
    },
    Sequential {
        keys: u32,
        next: u32,
    },
}

impl KeySampler {
    pub fn new(dist: &KeyDist, keys: u32) -> Self {
        match *dist {
            KeyDist::Uniform => KeySampler::Uniform(keys),
            KeyDist::Zipfian { s } => {
                let mut acc = 0.0;
                let cdf = (0..keys)
                    .map(|k| {
                        acc += 1.0 / ((k + 1) as f64).powf(s);
                        acc
                    })
                    .collect::<Vec<_>>();
                let total = acc;
                KeySampler::Table(cdf.into_iter().map(|c| c / total).collect())
            }
            KeyDist::Hotspot { fraction, share } => KeySampler::Hotspot {
                hot: ((keys as f64 * fraction).ceil() as u32).clamp(1, keys),
                keys,
                share,
            },
            KeyDist::Sequential => KeySampler::Sequential { keys, next: 0 },
        }
    }

    pub fn sample(&mut self, rng: &mut ChaCha8Rng) -> Key {
        Key(match self {
            KeySampler::Uniform(n) => rng.random_range(0..*n),
            KeySampler::Table(cdf) => {
                let u: f64 = rng.random();
                (cdf.partition_point(|&c| c < u) as u32).min(cdf.len() as u32 - 1)
            }
            KeySampler::Hotspot { hot, keys, share } => {
                if *hot >= *keys || rng.random::<f64>() < *share {
                    rng.random_range(0..*hot)
                } else {
                    rng.random_range(*hot..*keys)
                }
            }
            KeySampler::Sequential { keys, next } => {
                let k = *next;
                *next = (*next + 1) % *keys;
                k
            }
        })
    }
}

/// Generates requests. Written values (and added elements) are unique across the run (so
/// unique per key), which is what makes histories checkable.
///
/// Keys: with `set_keys = s`, keys `0..s` are sets and `s..keys` registers. A key is drawn
/// from the distribution over all keys; when the op does not fit the key's kind, the key is
/// folded into the right range (`k mod s` for an add, `s + k mod (keys - s)` for a register
/// mutation), which keeps the distribution's skew within each range.
#[derive(Clone, Debug)]
pub struct OpGen {
    keys: KeySampler,
    /// Cumulative weights of read, write, cas, create, delete, add.
    mix: [f64; 6],
    pattern: Pattern,
    set_keys: u32,
    next_value: u64,
    next_id: u64,
    /// The last value each key was seen to hold (from an ok read or write): cas uses it as the
    /// expected value so that some cas ops succeed.
    last_known: Vec<Option<u64>>,
    /// Preload: keys not yet written by the load phase.
    preload_next: Option<u32>,
    n_keys: u32,
    /// Friends: the second add of an `add_friend`, per client, issued as that client's next op.
    pending: Vec<Option<(Key, Op)>>,
}

impl OpGen {
    pub fn new(w: &Workload) -> Self {
        let Mix {
            read,
            write,
            cas,
            create,
            delete,
            add,
        } = w.mix;
        let mut acc = 0.0;
        let mut mix = [0.0; 6];
        for (i, v) in [read, write, cas, create, delete, add]
            .into_iter()
            .enumerate()
        {
            acc += v;
            mix[i] = acc;
        }
        let set_keys = match w.pattern {
            Pattern::Kv => w.set_keys,
            Pattern::Friends => w.keys,
        };
        OpGen {
            keys: KeySampler::new(&w.distribution, w.keys),
            mix,
            pattern: w.pattern,
            set_keys,
            next_value: 1,
            next_id: 1,
            last_known: vec![None; w.keys as usize],
            preload_next: (w.preload && set_keys < w.keys).then_some(set_keys),
            n_keys: w.keys,
            pending: Vec::new(),
        }
    }

    fn value(&mut self) -> u64 {
        let v = self.next_value;
        self.next_value += 1;
        v
    }

    fn request(&mut self, key: Key, op: Op) -> Request {
        let id = self.next_id;
        self.next_id += 1;
        Request { id, key, op }
    }

    /// The next request of `client`.
    pub fn next_for(&mut self, client: usize, rng: &mut ChaCha8Rng) -> Request {
        if let Some((key, op)) = self.pending.get_mut(client).and_then(Option::take) {
            return self.request(key, op);
        }
        if let Some(k) = self.preload_next {
            self.preload_next = (k + 1 < self.n_keys).then_some(k + 1);
            let v = self.value();
            return self.request(Key(k), Op::Write(v));
        }
        let key = self.keys.sample(rng);
        let total = self.mix[5];
        let u = rng.random::<f64>() * total;
        let which = self.mix.iter().position(|&c| u < c).unwrap_or(0);
        if which == 5 && self.pattern == Pattern::Friends {
            return self.add_friend(client, rng);
        }
        let (s, n) = (self.set_keys, self.n_keys);
        let reg_key = Key(s + key.0 % (n - s).max(1));
        let op = match which {
            0 => return self.request(key, Op::Read),
            1 => Op::Write(self.value()),
            2 => {
                // Expect what we last saw; 0 is never written, so an unknown key's cas fails.
                let expected = self.last_known[reg_key.0 as usize].unwrap_or(0);
                Op::Cas {
                    expected,
                    new: self.value(),
                }
            }
            3 => Op::Create(self.value()),
            4 => Op::Delete,
            _ => {
                let e = self.value();
                return self.request(Key(key.0 % s.max(1)), Op::Add(e));
            }
        };
        self.request(reg_key, op)
    }

    /// A read of `key` (for the final reads).
    pub fn read_of(&mut self, key: Key) -> Request {
        self.request(key, Op::Read)
    }

    /// `add_friend(a, b)`: `b` joins `a`'s following now, `a` joins `b`'s followers next.
    fn add_friend(&mut self, client: usize, rng: &mut ChaCha8Rng) -> Request {
        let users = self.n_keys / 2;
        let a = rng.random_range(0..users);
        let b = (a + rng.random_range(1..users)) % users;
        if self.pending.len() <= client {
            self.pending.resize(client + 1, None);
        }
        self.pending[client] = Some((followers_key(b), Op::Add(a as u64)));
        self.request(following_key(a), Op::Add(b as u64))
    }

    /// Learns from a completion (for cas expectations).
    pub fn observe(&mut self, req: &Request, outcome: &Outcome) {
        if let Outcome::Ok(read) = outcome {
            let slot = &mut self.last_known[req.key.0 as usize];
            match req.op {
                Op::Read => *slot = read.as_ref().and_then(Datum::reg),
                Op::Write(v) | Op::Create(v) | Op::Cas { new: v, .. } => *slot = Some(v),
                Op::Delete => *slot = None,
                Op::Add(_) => {}
            }
        }
    }
}

/// Friends pattern: the key of user `u`'s "following" set.
pub fn following_key(u: u32) -> Key {
    Key(2 * u)
}

/// Friends pattern: the key of user `u`'s "followers" set.
pub fn followers_key(u: u32) -> Key {
    Key(2 * u + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorumlab_sim::{Seeds, Stream};

    fn rng() -> ChaCha8Rng {
        Seeds::new(1).rng(Stream::Workload)
    }

    #[test]
    fn zipf_prefers_low_keys() {
        let mut s = KeySampler::new(&KeyDist::Zipfian { s: 1.2 }, 100);
        let mut r = rng();
        let hits0 = (0..10_000).filter(|_| s.sample(&mut r).0 == 0).count();
        let hits50 = (0..10_000).filter(|_| s.sample(&mut r).0 == 50).count();
        assert!(hits0 > 20 * hits50.max(1), "{hits0} vs {hits50}");
    }

    #[test]
    fn hotspot_share() {
        let mut s = KeySampler::new(
            &KeyDist::Hotspot {
                fraction: 0.1,
                share: 0.9,
            },
            100,
        );
        let mut r = rng();
        let hot = (0..20_000).filter(|_| s.sample(&mut r).0 < 10).count();
        assert!((hot as f64 / 20_000.0 - 0.9).abs() < 0.02, "{hot}");
    }

    #[test]
    fn sequential_cycles() {
        let mut s = KeySampler::new(&KeyDist::Sequential, 3);
        let mut r = rng();
        let ks: Vec<u32> = (0..5).map(|_| s.sample(&mut r).0).collect();
        assert_eq!(ks, vec![0, 1, 2, 0, 1]);
    }

    #[test]
    fn values_are_unique_and_mix_respected() {
        let w = Workload {
            mix: Mix {
                read: 0.0,
                write: 1.0,
                cas: 0.0,
                create: 0.0,
                delete: 0.0,
                add: 0.0,
            },
            ..Workload::default()
        };
        let mut g = OpGen::new(&w);
        let mut r = rng();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            match g.next_for(0, &mut r).op {
                Op::Write(v) => assert!(seen.insert(v)),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn preload_writes_every_key_first() {
        let w = Workload {
            keys: 4,
            preload: true,
            ..Workload::default()
        };
        let mut g = OpGen::new(&w);
        let mut r = rng();
        let first: Vec<(u32, bool)> = (0..4)
            .map(|_| {
                let q = g.next_for(0, &mut r);
                (q.key.0, matches!(q.op, Op::Write(_)))
            })
            .collect();
        assert_eq!(first, vec![(0, true), (1, true), (2, true), (3, true)]);
    }

    #[test]
    fn adds_go_to_set_keys_and_register_ops_elsewhere() {
        let w = Workload {
            keys: 10,
            set_keys: 3,
            mix: Mix {
                read: 20.0,
                write: 20.0,
                cas: 20.0,
                create: 10.0,
                delete: 10.0,
                add: 20.0,
            },
            ..Workload::default()
        };
        let mut g = OpGen::new(&w);
        let mut r = rng();
        let (mut adds, mut regs, mut set_reads) = (0, 0, 0);
        let mut elems = std::collections::BTreeSet::new();
        for _ in 0..5000 {
            let q = g.next_for(0, &mut r);
            match q.op {
                Op::Add(e) => {
                    assert!(q.key.0 < 3, "{q:?}");
                    assert!(elems.insert(e), "elements are unique");
                    adds += 1;
                }
                Op::Read => set_reads += usize::from(q.key.0 < 3),
                _ => {
                    assert!(q.key.0 >= 3, "{q:?}");
                    regs += 1;
                }
            }
        }
        assert!(
            adds > 800 && regs > 2500 && set_reads > 100,
            "{adds} {regs} {set_reads}"
        );
    }

    #[test]
    fn friends_pairs_come_from_the_same_client_in_order() {
        let w = Workload {
            keys: 8,
            pattern: Pattern::Friends,
            mix: Mix {
                read: 0.0,
                write: 0.0,
                cas: 0.0,
                create: 0.0,
                delete: 0.0,
                add: 1.0,
            },
            ..Workload::default()
        };
        let mut g = OpGen::new(&w);
        let mut r = rng();
        for _ in 0..200 {
            // two clients interleaved: each gets its own pair
            let a0 = g.next_for(0, &mut r);
            let a1 = g.next_for(1, &mut r);
            let b0 = g.next_for(0, &mut r);
            let b1 = g.next_for(1, &mut r);
            for (first, second) in [(a0, b0), (a1, b1)] {
                let (Op::Add(b), Op::Add(a)) = (first.op, second.op) else {
                    panic!("{first:?} {second:?}")
                };
                assert_eq!(first.key, following_key(a as u32), "b joins a's following");
                assert_eq!(second.key, followers_key(b as u32), "a joins b's followers");
                assert_ne!(a, b);
                assert!(a < 4 && b < 4);
            }
        }
    }
}
