//! The sequential specification of one key: a register holding a value or nothing, with
//! read / write / cas / create / delete / append, or a set of integers with add (absent = the
//! empty set; a set reads as its sorted array). Values are interned per key into small
//! integers; state `ABSENT` (0) is "no value".

use crate::prepare::{Fun, Outcome, RawOp};
use crate::search::FxMap;
use serde_json::Value as Json;

pub(crate) const ABSENT: u32 = 0;

/// An interned value. JSON `null` is `Absent`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Val {
    Absent,
    I(i64),
    U(u64),
    S(Box<str>),
    /// A set: a JSON array of non-negative integers in strictly ascending order (the only form
    /// a set is read in; any other array is a `J`, so equality of JSON values is kept).
    Set(Box<[u64]>),
    /// Any other JSON value, by its canonical text.
    J(Box<str>),
}

/// An op with its values interned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// ok read that returned the value.
    Read(u32),
    Write(u32),
    Cas(u32, u32),
    Create(u32),
    Delete,
    Append(u32),
    /// add of an element (interned integer) to a set.
    Add(u32),
    /// cas whose precondition (value == expected) was false at some instant.
    CasFailed(u32),
    /// create whose precondition (absent) was false at some instant.
    CreateFailed,
}

pub(crate) struct Model {
    vals: Vec<Val>,
    index: FxMap<Val, u32>,
    /// The id of `""`, if interned: a read of `""` also matches an absent key.
    empty: Option<u32>,
    appends: FxMap<(u32, u32), u32>,
    adds: FxMap<(u32, u32), u32>,
}

impl Model {
    pub(crate) fn new() -> Model {
        let mut m = Model {
            vals: Vec::new(),
            index: FxMap::default(),
            empty: None,
            appends: FxMap::default(),
            adds: FxMap::default(),
        };
        m.intern_val(Val::Absent);
        m
    }

    fn intern_val(&mut self, v: Val) -> u32 {
        if let Some(&id) = self.index.get(&v) {
            return id;
        }
        let id = self.vals.len() as u32;
        if matches!(&v, Val::S(s) if s.is_empty()) {
            self.empty = Some(id);
        }
        self.vals.push(v.clone());
        self.index.insert(v, id);
        id
    }

    pub(crate) fn intern(&mut self, j: &Json) -> u32 {
        let v = match j {
            Json::Null => return ABSENT,
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Val::I(i)
                } else if let Some(u) = n.as_u64() {
                    Val::U(u)
                } else {
                    Val::J(n.to_string().into())
                }
            }
            Json::String(s) => Val::S(s.as_str().into()),
            Json::Array(a) => match canonical_set(a) {
                Some(set) => Val::Set(set),
                None => Val::J(j.to_string().into()),
            },
            other => Val::J(other.to_string().into()),
        };
        self.intern_val(v)
    }

    /// The value as JSON (for reports).
    pub(crate) fn to_json(&self, id: u32) -> Json {
        match &self.vals[id as usize] {
            Val::Absent => Json::Null,
            Val::I(i) => Json::from(*i),
            Val::U(u) => Json::from(*u),
            Val::S(s) => Json::String(s.to_string()),
            Val::Set(xs) => Json::from(xs.to_vec()),
            Val::J(t) => serde_json::from_str(t).unwrap_or_else(|_| Json::String(t.to_string())),
        }
    }

    /// The text of a value for string append (absent and null are empty).
    fn text(&self, id: u32) -> String {
        match &self.vals[id as usize] {
            Val::Absent => String::new(),
            Val::I(i) => i.to_string(),
            Val::U(u) => u.to_string(),
            Val::S(s) => s.to_string(),
            Val::Set(_) => self.to_json(id).to_string(),
            Val::J(t) => t.to_string(),
        }
    }

    /// The element an interned value stands for, if it can be a set element.
    fn element(&self, id: u32) -> Option<u64> {
        match self.vals[id as usize] {
            Val::U(u) => Some(u),
            Val::I(i) => u64::try_from(i).ok(),
            _ => None,
        }
    }

    /// The elements of a state that is a set (absent = empty); `None` for any other value.
    fn set_elems(&self, s: u32) -> Option<&[u64]> {
        match &self.vals[s as usize] {
            Val::Absent => Some(&[]),
            Val::Set(xs) => Some(xs),
            _ => None,
        }
    }

    /// Whether a state reached from `s` by appends only (zero or more) can equal `target`.
    pub(crate) fn may_grow_into(&self, s: u32, target: u32) -> bool {
        if s == target || (s == ABSENT && Some(target) == self.empty) {
            return true;
        }
        match &self.vals[target as usize] {
            // adds only grow a set
            Val::Set(t) => self
                .set_elems(s)
                .is_some_and(|p| p.iter().all(|e| t.binary_search(e).is_ok())),
            Val::S(t) => match &self.vals[s as usize] {
                Val::Absent => true,
                Val::S(p) => t.starts_with(&**p),
                _ => t.starts_with(&self.text(s)),
            },
            _ => false,
        }
    }

    /// The first op (index) that observes a value no op of the key can produce: an ok read, or
    /// an ok cas expecting it, of a value that is neither absent nor written (write, create, cas)
    /// nor, for strings, a written value (or nothing) followed by appended pieces (each piece
    /// may be reused here, which only makes the test more permissive). Such an op can never
    /// be linearized.
    /// `must[i]`: op `i` must take effect (not info).
    pub(crate) fn impossible_observation(&self, kinds: &[Kind], must: &[bool]) -> Option<usize> {
        let mut produced: std::collections::HashSet<u32> = [ABSENT].into_iter().collect();
        produced.extend(self.empty);
        let mut pieces: Vec<String> = Vec::new();
        let mut added: std::collections::HashSet<u64> = Default::default();
        for k in kinds {
            match *k {
                Kind::Write(v) | Kind::Create(v) | Kind::Cas(_, v) => {
                    produced.insert(v);
                }
                Kind::Append(v) => pieces.push(self.text(v)),
                Kind::Add(v) => added.extend(self.element(v)),
                _ => {}
            }
        }
        pieces.sort();
        pieces.dedup();
        let bases: Vec<String> = std::iter::once(String::new())
            .chain(produced.iter().map(|&v| self.text(v)))
            .collect();
        let possible = |x: u32| -> bool {
            if produced.contains(&x) {
                return true;
            }
            if let Val::Set(xs) = &self.vals[x as usize] {
                return xs.iter().all(|e| added.contains(e));
            }
            let Val::S(t) = &self.vals[x as usize] else {
                return false; // appends only ever make strings
            };
            if pieces.is_empty() {
                return false;
            }
            if t.len() > 1 << 16 || pieces.len() > 1 << 12 {
                return true; // too big to decide here; the search will
            }
            // reach[i]: t[..i] = some base followed by pieces
            let t = t.as_bytes();
            let mut reach = vec![false; t.len() + 1];
            for b in &bases {
                if t.starts_with(b.as_bytes()) {
                    reach[b.len()] = true;
                }
            }
            for i in 0..t.len() {
                if reach[i] {
                    for p in &pieces {
                        if !p.is_empty() && t[i..].starts_with(p.as_bytes()) {
                            reach[i + p.len()] = true;
                        }
                    }
                }
            }
            reach[t.len()]
        };
        (0..kinds.len()).find(|&i| match kinds[i] {
            Kind::Read(x) | Kind::Cas(x, _) => must[i] && !possible(x),
            _ => false,
        })
    }

    fn append(&mut self, s: u32, v: u32) -> u32 {
        if let Some(&r) = self.appends.get(&(s, v)) {
            return r;
        }
        let mut t = self.text(s);
        t.push_str(&self.text(v));
        let r = self.intern_val(Val::S(t.into()));
        self.appends.insert((s, v), r);
        r
    }

    fn add(&mut self, s: u32, v: u32) -> Option<u32> {
        if let Some(&r) = self.adds.get(&(s, v)) {
            return Some(r);
        }
        let e = self.element(v)?;
        let mut xs = self.set_elems(s)?.to_vec();
        if let Err(at) = xs.binary_search(&e) {
            xs.insert(at, e);
        }
        let r = self.intern_val(Val::Set(xs.into()));
        self.adds.insert((s, v), r);
        Some(r)
    }

    /// Interns one op.
    pub(crate) fn kind_of(&mut self, op: &RawOp<'_>) -> Kind {
        let pair = |m: &mut Model| match op.input {
            Json::Array(a) if a.len() == 2 => (m.intern(&a[0]), m.intern(&a[1])),
            _ => unreachable!("cas values are validated in prepare"),
        };
        match (op.fun, op.outcome) {
            (Fun::Read, _) => Kind::Read(self.intern(op.output)),
            (Fun::Cas, Outcome::PreconditionFailed) => Kind::CasFailed(pair(self).0),
            (Fun::Create, Outcome::PreconditionFailed) => Kind::CreateFailed,
            (Fun::Write, _) => Kind::Write(self.intern(op.input)),
            (Fun::Cas, _) => {
                let (e, n) = pair(self);
                Kind::Cas(e, n)
            }
            (Fun::Create, _) => Kind::Create(self.intern(op.input)),
            (Fun::Delete, _) => Kind::Delete,
            (Fun::Append, _) => Kind::Append(self.intern(op.input)),
            (Fun::Add, _) => Kind::Add(self.intern(op.input)),
        }
    }

    /// Applies `k` to state `s`: the new state, or `None` if the op cannot take effect (with
    /// the outcome it had) in state `s`.
    #[inline]
    pub(crate) fn step(&mut self, s: u32, k: Kind) -> Option<u32> {
        match k {
            Kind::Read(o) => (s == o || (s == ABSENT && Some(o) == self.empty)).then_some(s),
            Kind::Write(v) => Some(v),
            Kind::Cas(e, n) => (s == e).then_some(n),
            Kind::Create(v) => (s == ABSENT).then_some(v),
            Kind::Delete => Some(ABSENT),
            Kind::Append(v) => Some(self.append(s, v)),
            Kind::Add(v) => self.add(s, v),
            Kind::CasFailed(e) => (s != e).then_some(s),
            Kind::CreateFailed => (s != ABSENT).then_some(s),
        }
    }
}

/// A JSON array of non-negative integers in strictly ascending order, as a set.
fn canonical_set(a: &[Json]) -> Option<Box<[u64]>> {
    let xs: Vec<u64> = a.iter().map(Json::as_u64).collect::<Option<_>>()?;
    xs.windows(2).all(|w| w[0] < w[1]).then(|| xs.into())
}
