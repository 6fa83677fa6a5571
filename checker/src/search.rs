//! Wing & Gong's search with Lowe's memoization, as in Porcupine, for the ops of one key.
//!
//! The history is a doubly linked list of call and return entries in real-time order. The
//! search walks it from the head: at a call entry it tries to linearize the op now (the model
//! accepts it and the pair (set of linearized ops, state) was never seen before), lifting the
//! op's entries out of the list and restarting from the head; at a return entry whose op is not
//! linearized yet it backtracks. `info` ops have no return entry: they may be linearized at any
//! point after their call, or stay pending forever. The history is linearizable as soon as no
//! return entry is left.
//!
//! Info ops are where the search blows up (every pending one may or may not have been applied
//! yet), so they are only linearized where they can matter, which loses no linearization: in
//! any valid linearization, an applied info op `I` (state `s0` before it, `v` after) that is
//! immediately followed by a blind write or delete can be removed (the state after the write
//! is the same); if it is followed by an observer (read, failed precondition) that is also
//! valid in `s0`, the two can be swapped (an info op has no completion, so moving it later
//! never breaks real-time order); at the very end it can be removed. Repeating this yields a
//! linearization in which each applied info op is immediately followed by a cas, create or
//! append (whose effect depends on `v`), or by an observer that is valid in `v` and not in
//! `s0`. So right after linearizing an info op, the search only tries such ops. Because this
//! restricts the next step, the cache key then also holds `s0`; a configuration explored
//! without restriction covers the restricted one, never the reverse.
//!
//! The cache key is the linearized set as a bitset plus the model state, hashed with Zobrist
//! hashing (updated in O(1) per step). Only the window of words between the first word that is
//! not all ones and the last non-zero word is stored, so the cache stays small on long
//! histories: ops are numbered in invocation order, and the linearized set is almost a prefix.

use crate::model::{Kind, Model, ABSENT};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

const NONE: u32 = u32::MAX;
const RESTRICT_SALT: u64 = 0xA5A5_0000_5A5A_0000;

/// One op of a key, ready for the search.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SOp {
    pub kind: Kind,
    pub call: (u64, usize),
    /// `None` for ops that may take effect any time after their call, or never.
    pub ret: Option<(u64, usize)>,
}

pub(crate) struct Budget {
    pub deadline: Option<Instant>,
    pub max_cache_bytes: usize,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Stats {
    pub steps: u64,
    pub cache_entries: usize,
    pub cache_bytes: usize,
}

pub(crate) enum Found {
    Linearizable,
    /// The longest partial linearization (op ids in order) and the op whose return was reached
    /// at its end without any way to linearize it.
    NotLinearizable {
        linearization: Vec<u32>,
        failing: u32,
    },
    Unknown(String),
}

#[inline]
fn mix(mut x: u64) -> u64 {
    // splitmix64 finalizer
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A fast non-cryptographic hasher (the Fx hash of rustc) for internal maps of small keys.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);
impl FxHasher {
    #[inline]
    fn add(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}
impl Hasher for FxHasher {
    #[inline]
    fn finish(&self) -> u64 {
        // spread the entropy into the high bits the hash table uses for its control bytes
        mix(self.0)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut it = bytes.chunks_exact(8);
        for c in &mut it {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = it.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64)
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64)
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i)
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64)
    }
}

/// A `HashMap` with [`FxHasher`].
pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Passes a pre-computed 64-bit hash through.
#[derive(Default)]
struct IdHasher(u64);
impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

/// The set of visited (linearized set, state) pairs. Bitset windows live in one arena.
struct Cache {
    heads: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    state: Vec<u32>,
    /// The state before the info op just linearized (restricted next step), or NONE.
    restr: Vec<u32>,
    lo: Vec<u32>,
    off: Vec<u32>,
    len: Vec<u32>,
    next: Vec<u32>,
    words: Vec<u64>,
}

/// Approximate bytes per cache entry besides its words (entry arrays + hash table slot).
const ENTRY_BYTES: usize = 6 * 4 + 16;

impl Cache {
    fn new() -> Cache {
        Cache {
            heads: HashMap::default(),
            state: Vec::new(),
            restr: Vec::new(),
            lo: Vec::new(),
            off: Vec::new(),
            len: Vec::new(),
            next: Vec::new(),
            words: Vec::new(),
        }
    }

    fn bytes(&self) -> usize {
        self.words.len() * 8 + self.state.len() * ENTRY_BYTES
    }

    fn find(&self, h: u64, state: u32, restr: u32, lo: u32, win: &[u64], extra: &[u64]) -> bool {
        let mut e = self.heads.get(&h).copied().unwrap_or(NONE);
        let n = win.len() + extra.len();
        while e != NONE {
            let i = e as usize;
            if self.state[i] == state
                && self.restr[i] == restr
                && self.lo[i] == lo
                && self.len[i] as usize == n
            {
                let w = &self.words[self.off[i] as usize..][..n];
                if w[..win.len()] == *win && w[win.len()..] == *extra {
                    return true;
                }
            }
            e = self.next[i];
        }
        false
    }

    /// Inserts (window at word `lo` + the info-op words, state, restriction); false if it
    /// was already there.
    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        h: u64,
        state: u32,
        restr: u32,
        lo: u32,
        win: &[u64],
        extra: &[u64],
    ) -> bool {
        if self.find(h, state, restr, lo, win, extra) {
            return false;
        }
        let n = win.len() + extra.len();
        if self.words.len() + n > u32::MAX as usize || self.state.len() >= NONE as usize {
            // cannot be indexed; the caller's memory budget trips long before this
            return true;
        }
        let head = self.heads.get(&h).copied().unwrap_or(NONE);
        let id = self.state.len() as u32;
        self.state.push(state);
        self.restr.push(restr);
        self.lo.push(lo);
        self.off.push(self.words.len() as u32);
        self.len.push(n as u32);
        self.next.push(head);
        self.words.extend_from_slice(win);
        self.words.extend_from_slice(extra);
        self.heads.insert(h, id);
        true
    }
}

/// The linearized set, with the canonical window bounds maintained incrementally.
struct Bits {
    w: Vec<u64>,
    /// All words before `lo` are all ones.
    lo: usize,
    /// All words from `hi` on are zero.
    hi: usize,
}

impl Bits {
    fn new(n: usize) -> Bits {
        Bits {
            w: vec![0; n.div_ceil(64).max(1)],
            lo: 0,
            hi: 0,
        }
    }
    #[inline]
    fn set(&mut self, i: u32) {
        let wi = (i >> 6) as usize;
        self.w[wi] |= 1 << (i & 63);
        if wi + 1 > self.hi {
            self.hi = wi + 1;
        }
        while self.lo < self.w.len() && self.w[self.lo] == u64::MAX {
            self.lo += 1;
        }
    }
    #[inline]
    fn clear(&mut self, i: u32) {
        let wi = (i >> 6) as usize;
        self.w[wi] &= !(1 << (i & 63));
        if wi < self.lo {
            self.lo = wi;
        }
        while self.hi > 0 && self.w[self.hi - 1] == 0 {
            self.hi -= 1;
        }
    }
    #[inline]
    fn window(&self) -> &[u64] {
        &self.w[self.lo..self.hi.max(self.lo)]
    }
}

/// Dead-state pruning for appends (concurrent appends yield a different value for each order,
/// which Lowe's cache cannot merge; without this the search enumerates orders of appends).
/// Walking the list from the head, each read (or ok cas) whose return is met must be
/// linearized before any op whose call comes later; so at its linearization point the value
/// is `s`, or the value some op met before it resets to (write, cas, create, delete), extended
/// by appends. If a read's value extends none of these bases, `s` is dead (`Err(that read)`).
/// Sound for any prefix of the walk, so the walk stops after a few returns.
fn appends_may_reach(
    s: u32,
    next: &[u32],
    ent_op: &[u32],
    ent_call: &[bool],
    kinds: &[Kind],
    tail: u32,
    model: &Model,
) -> Result<(), u32> {
    let mut bases: Vec<u32> = vec![s];
    let mut e = next[0];
    let (mut walked, mut returns) = (0, 0);
    while e != tail && walked < 256 && returns < 8 {
        let k = kinds[ent_op[e as usize] as usize];
        if ent_call[e as usize] {
            match k {
                Kind::Write(v) | Kind::Cas(_, v) | Kind::Create(v) => bases.push(v),
                // absent extends into anything: nothing left to prune
                Kind::Delete => return Ok(()),
                _ => {}
            }
        } else {
            returns += 1;
            if let Kind::Read(x) | Kind::Cas(x, _) = k {
                if !bases.iter().any(|&b| model.may_grow_into(b, x)) {
                    return Err(ent_op[e as usize]);
                }
            }
        }
        e = next[e as usize];
        walked += 1;
    }
    Ok(())
}

/// Ops that observe the state without changing it: ok reads and failed preconditions. If one
/// is valid in a configuration where it may be linearized, some completion from there (if
/// any) starts with it: in any completion it can be moved to the front (it leaves the state
/// as it is, and it is callable here, so every op that must precede it already does; under
/// the info restriction it was allowed here, and what follows it is unrestricted). So when
/// the search backtracks over an observer, the configuration it was linearized in is dead
/// too, and the search keeps backtracking instead of trying other ops there.
#[inline]
fn is_observer(k: Kind) -> bool {
    matches!(k, Kind::Read(_) | Kind::CasFailed(_) | Kind::CreateFailed)
}

/// Checks the ops of one key (ops sorted by call). Deterministic.
pub(crate) fn check(ops: &[SOp], model: &mut Model, budget: &Budget, stats: &mut Stats) -> Found {
    let n = ops.len();
    if n >= (NONE as usize) / 2 - 2 {
        return Found::Unknown("too many operations on one key".into());
    }
    // entries: 0 = head, 1..=m entries, m+1 = tail
    let mut ents: Vec<(u64, usize, u32, bool)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        ents.push((op.call.0, op.call.1, i as u32, true));
        if let Some(r) = op.ret {
            ents.push((r.0, r.1, i as u32, false));
        }
    }
    // real-time order; ties by position in the history (the order events were recorded)
    ents.sort_unstable_by_key(|e| (e.0, e.1, !e.3));
    let m = ents.len();
    let tail = (m + 1) as u32;
    let mut next: Vec<u32> = (1..=m as u32 + 1).chain([NONE]).collect();
    let mut prev: Vec<u32> = [NONE].into_iter().chain(0..=m as u32).collect();
    let mut ent_op = vec![NONE; m + 2];
    let mut ent_call = vec![false; m + 2];
    let mut call_node = vec![NONE; n];
    let mut ret_node = vec![NONE; n];
    for (k, e) in ents.iter().enumerate() {
        let node = k + 1;
        ent_op[node] = e.2;
        ent_call[node] = e.3;
        if e.3 {
            call_node[e.2 as usize] = node as u32;
        } else {
            ret_node[e.2 as usize] = node as u32;
        }
    }
    drop(ents);
    let kinds: Vec<Kind> = ops.iter().map(|o| o.kind).collect();
    let is_info: Vec<bool> = ops.iter().map(|o| o.ret.is_none()).collect();
    let zob: Vec<u64> = (0..n as u64)
        .map(|i| mix(i ^ 0x5151_7A7A_0000_0000))
        .collect();
    let mut remaining = ret_node.iter().filter(|&&r| r != NONE).count();

    // Bit slots: ops that must be linearized, in invocation order, in a windowed bitset (the
    // linearized ones are almost a prefix); info ops in a separate bitset stored whole, so that
    // info ops never applied do not pin the window's start.
    let mut slot = vec![0u32; n];
    let (mut n_must, mut n_info) = (0u32, 0u32);
    for op in 0..n {
        if is_info[op] {
            slot[op] = n_info;
            n_info += 1;
        } else {
            slot[op] = n_must;
            n_must += 1;
        }
    }
    let mut bits = Bits::new(n_must as usize);
    let mut info_bits = vec![0u64; (n_info as usize).div_ceil(64)];
    macro_rules! set_bit {
        ($op:expr) => {{
            let op = $op as usize;
            if is_info[op] {
                info_bits[(slot[op] >> 6) as usize] |= 1 << (slot[op] & 63);
            } else {
                bits.set(slot[op]);
            }
        }};
    }
    macro_rules! clear_bit {
        ($op:expr) => {{
            let op = $op as usize;
            if is_info[op] {
                info_bits[(slot[op] >> 6) as usize] &= !(1 << (slot[op] & 63));
            } else {
                bits.clear(slot[op]);
            }
        }};
    }
    let mut cache = Cache::new();
    let mut stack: Vec<(u32, u32)> = Vec::new();
    let mut state = ABSENT;
    let mut zh: u64 = 0;
    // longest partial linearization seen at a dead end
    let mut best: Vec<u32> = Vec::new();
    let mut best_valid = 0usize;
    let mut best_fail = NONE;
    let mut have_best = false;
    // configuration counter, and the read the append lookahead last found unreachable in it
    let mut serial: u64 = 0;
    let mut culprit: Option<(u64, u32)> = None;

    macro_rules! remove {
        ($x:expr) => {{
            let x = $x as usize;
            let (p, nx) = (prev[x], next[x]);
            next[p as usize] = nx;
            prev[nx as usize] = p;
        }};
    }
    macro_rules! restore {
        ($x:expr) => {{
            let x = $x as usize;
            let (p, nx) = (prev[x], next[x]);
            next[p as usize] = x as u32;
            prev[nx as usize] = x as u32;
        }};
    }

    let mut node = next[0];
    let mut steps: u64 = 0;
    let result = loop {
        if remaining == 0 {
            break Found::Linearizable;
        }
        steps += 1;
        if steps & 0x3ff == 0 {
            if let Some(d) = budget.deadline {
                if Instant::now() >= d {
                    break Found::Unknown("time budget exhausted".into());
                }
            }
        }
        let is_call = node != tail && ent_call[node as usize];
        if is_call {
            let op = ent_op[node as usize];
            let k = kinds[op as usize];
            // right after an info op (state s0 before it), only ops that depend on it
            let allowed = match stack.last() {
                Some(&(top, s0)) if is_info[top as usize] => match k {
                    Kind::Write(_) | Kind::Delete => false,
                    Kind::Read(_) | Kind::CasFailed(_) | Kind::CreateFailed => {
                        model.step(s0, k).is_none()
                    }
                    Kind::Cas(..) | Kind::Create(_) | Kind::Append(_) | Kind::Add(_) => true,
                },
                _ => true,
            };
            let mut next_state = if allowed { model.step(state, k) } else { None };
            if let (Some(ns), Kind::Append(_) | Kind::Add(_)) = (next_state, k) {
                if let Err(read) =
                    appends_may_reach(ns, &next, &ent_op, &ent_call, &kinds, tail, model)
                {
                    next_state = None;
                    culprit = Some((serial, read));
                }
            }
            if let Some(ns) = next_state {
                set_bit!(op);
                let nz = zh ^ zob[op as usize];
                let h = nz ^ mix(ns as u64);
                let (lo, win, extra) = (bits.lo as u32, bits.window(), &info_bits[..]);
                let fresh = if is_info[op as usize] {
                    // restricted next step: covered if seen unrestricted
                    !cache.find(h, ns, NONE, lo, win, extra)
                        && cache.insert(
                            h ^ mix(state as u64 ^ RESTRICT_SALT),
                            ns,
                            state,
                            lo,
                            win,
                            extra,
                        )
                } else {
                    cache.insert(h, ns, NONE, lo, win, extra)
                };
                if fresh {
                    serial += 1;
                    stack.push((op, state));
                    state = ns;
                    zh = nz;
                    remove!(call_node[op as usize]);
                    if ret_node[op as usize] != NONE {
                        remove!(ret_node[op as usize]);
                        remaining -= 1;
                    }
                    if cache.bytes() > budget.max_cache_bytes {
                        break Found::Unknown(format!(
                            "memory budget exhausted ({} MiB of search cache)",
                            budget.max_cache_bytes >> 20
                        ));
                    }
                    node = next[0];
                    continue;
                }
                clear_bit!(op);
            }
            node = next[node as usize];
        } else {
            // a return entry of an op not linearized yet (or, defensively, the tail): dead end
            if !have_best || stack.len() > best.len() {
                have_best = true;
                best.truncate(best_valid);
                best.extend(stack[best_valid..].iter().map(|s| s.0));
                best_valid = stack.len();
                best_fail = if node == tail {
                    NONE
                } else {
                    let blocked = ent_op[node as usize];
                    match culprit {
                        // an append blocked by the lookahead: name the read that no
                        // continuation can satisfy
                        Some((at, read))
                            if at == serial
                                && matches!(
                                    kinds[blocked as usize],
                                    Kind::Append(_) | Kind::Add(_)
                                ) =>
                        {
                            read
                        }
                        _ => blocked,
                    }
                };
            }
            // backtrack; past an observer, keep backtracking (see `is_observer`)
            let mut dead = false;
            loop {
                let Some((op, st)) = stack.pop() else {
                    dead = true;
                    break;
                };
                serial += 1;
                if stack.len() < best_valid {
                    best_valid = stack.len();
                }
                state = st;
                zh ^= zob[op as usize];
                clear_bit!(op);
                if ret_node[op as usize] != NONE {
                    restore!(ret_node[op as usize]);
                    remaining += 1;
                }
                restore!(call_node[op as usize]);
                node = next[call_node[op as usize] as usize];
                if !is_observer(kinds[op as usize]) {
                    break;
                }
            }
            if dead {
                break Found::NotLinearizable {
                    linearization: std::mem::take(&mut best),
                    failing: best_fail,
                };
            }
        }
    };
    stats.steps = steps;
    stats.cache_entries = cache.state.len();
    stats.cache_bytes = cache.bytes();
    result
}
