//! Operations and outcomes, named as in Riak's strong-consistency API and in Jepsen.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// A key. Rendered `k<n>` in histories.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Key(pub u32);

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "k{}", self.0)
    }
}

/// A value. The workload writes values unique per key so that histories are checkable.
/// Also the element type of set-valued keys.
pub type Value = u64;

/// A set-valued key's contents (sorted, no duplicates).
pub type ValueSet = BTreeSet<Value>;

/// What a key holds: a register value, or a set built by [`Op::Add`].
///
/// A key is one or the other for the whole run: the workload keeps set keys (`add` and
/// `read`) apart from register keys (`write`, `cas`, `create`, `delete` and `read`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Datum {
    Reg(Value),
    Set(ValueSet),
}

impl Datum {
    /// The register value, if this is a register.
    pub fn reg(&self) -> Option<Value> {
        match self {
            Datum::Reg(v) => Some(*v),
            Datum::Set(_) => None,
        }
    }

    /// The set, if this is a set.
    pub fn set(&self) -> Option<&ValueSet> {
        match self {
            Datum::Set(s) => Some(s),
            Datum::Reg(_) => None,
        }
    }

    /// A set of the given elements.
    pub fn set_of(elems: impl IntoIterator<Item = Value>) -> Datum {
        Datum::Set(elems.into_iter().collect())
    }
}

/// `5` for a register, `{1,2,3}` for a set.
impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Datum::Reg(v) => write!(f, "{v}"),
            Datum::Set(s) => {
                f.write_str("{")?;
                for (i, e) in s.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str("}")
            }
        }
    }
}

impl From<Value> for Datum {
    fn from(v: Value) -> Self {
        Datum::Reg(v)
    }
}

/// An operation on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Op {
    /// get: ok value is the current value, or absent.
    Read,
    /// unconditional put (Riak kover).
    Write(Value),
    /// put if the current value equals `expected` (Riak kupdate / kmodify).
    Cas { expected: Value, new: Value },
    /// put only if absent (Riak kput_once).
    Create(Value),
    /// tombstone (Riak kdelete).
    Delete,
    /// add an element to a set-valued key (absent = empty set). Idempotent: adding twice is
    /// adding once, which is what makes it a statebox operation in `eventual`.
    Add(Value),
}

impl Op {
    /// The Jepsen `f` name.
    pub fn f(&self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write(_) => "write",
            Op::Cas { .. } => "cas",
            Op::Create(_) => "create",
            Op::Delete => "delete",
            Op::Add(_) => "add",
        }
    }

    /// Whether the op can change state.
    pub fn is_mutation(&self) -> bool {
        !matches!(self, Op::Read)
    }

    /// Applies the op to a key's current contents, as a single copy would, atomically.
    /// Returns the outcome and the new contents.
    ///
    /// `cas` on a set never matches (its expected value is a register value); `add` on a
    /// register fails its precondition (the key is not a set).
    pub fn apply(&self, cur: Option<Datum>) -> (Outcome, Option<Datum>) {
        match *self {
            Op::Read => (Outcome::Ok(cur.clone()), cur),
            Op::Write(v) => (Outcome::Ok(None), Some(Datum::Reg(v))),
            Op::Cas { expected, new } => {
                if cur == Some(Datum::Reg(expected)) {
                    (Outcome::Ok(None), Some(Datum::Reg(new)))
                } else {
                    (Outcome::Fail(FailKind::Precondition), cur)
                }
            }
            Op::Create(v) => {
                if cur.is_none() {
                    (Outcome::Ok(None), Some(Datum::Reg(v)))
                } else {
                    (Outcome::Fail(FailKind::Precondition), cur)
                }
            }
            Op::Delete => (Outcome::Ok(None), None),
            Op::Add(e) => match cur {
                None => (Outcome::Ok(None), Some(Datum::set_of([e]))),
                Some(Datum::Set(mut s)) => {
                    s.insert(e);
                    (Outcome::Ok(None), Some(Datum::Set(s)))
                }
                Some(reg @ Datum::Reg(_)) => (Outcome::Fail(FailKind::Precondition), Some(reg)),
            },
        }
    }

    /// Applies the op in place (the same semantics as [`Op::apply`]).
    pub fn apply_in(&self, slot: &mut Option<Datum>) -> Outcome {
        let (out, new) = self.apply(slot.take());
        *slot = new;
        out
    }
}

/// One client request: a driver-assigned id unique within the run, a key and an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub key: Key,
    pub op: Op,
}

/// A replica's key-value state machine: what every protocol's replica applies ops to.
pub type KvMap = std::collections::BTreeMap<Key, Datum>;

impl Request {
    /// Applies the op to its key in `map` (absent keys are not stored). Returns the outcome
    /// and whether the map changed (so a caller knows when to save).
    pub fn apply_to(&self, map: &mut KvMap) -> (Outcome, bool) {
        let mut slot = map.remove(&self.key);
        let before = slot.clone();
        let out = self.op.apply_in(&mut slot);
        let changed = slot != before;
        if let Some(d) = slot {
            map.insert(self.key, d);
        }
        (out, changed)
    }
}

/// Why an op definitely did not take effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FailKind {
    /// A cas or create whose precondition was evaluated false (an observation, not only a
    /// "not applied": the history gets `"error":"precondition"`).
    Precondition,
    /// The protocol knows the op was not applied (e.g. rejected before any write was sent).
    NotApplied,
}

/// The outcome of a request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// Took effect. For reads, what was read (`None` = absent); `None` for every other op.
    Ok(Option<Datum>),
    /// Definitely did not take effect.
    Fail(FailKind),
    /// Unknown: may or may not have taken effect (timeout, lost reply).
    Info,
}

impl Outcome {
    /// A read of a register (or of an absent key).
    pub fn read_reg(v: Option<Value>) -> Outcome {
        Outcome::Ok(v.map(Datum::Reg))
    }

    /// The Jepsen `type` of the completion.
    pub fn type_name(&self) -> &'static str {
        match self {
            Outcome::Ok(_) => "ok",
            Outcome::Fail(_) => "fail",
            Outcome::Info => "info",
        }
    }
}
