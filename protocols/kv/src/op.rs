//! Operations and outcomes, named as in Riak's strong-consistency API and in Jepsen.

use serde::{Deserialize, Serialize};
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
pub type Value = u64;

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
        }
    }

    /// Whether the op can change state.
    pub fn is_mutation(&self) -> bool {
        !matches!(self, Op::Read)
    }

    /// Applies the op to a register's current value, as a single copy would.
    /// Returns the outcome and the new value.
    pub fn apply(&self, cur: Option<Value>) -> (Outcome, Option<Value>) {
        match *self {
            Op::Read => (Outcome::Ok(cur), cur),
            Op::Write(v) => (Outcome::Ok(None), Some(v)),
            Op::Cas { expected, new } => {
                if cur == Some(expected) {
                    (Outcome::Ok(None), Some(new))
                } else {
                    (Outcome::Fail(FailKind::Precondition), cur)
                }
            }
            Op::Create(v) => {
                if cur.is_none() {
                    (Outcome::Ok(None), Some(v))
                } else {
                    (Outcome::Fail(FailKind::Precondition), cur)
                }
            }
            Op::Delete => (Outcome::Ok(None), None),
        }
    }
}

/// One client request: a driver-assigned id unique within the run, a key and an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub key: Key,
    pub op: Op,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// Took effect. For reads, the value read (`None` = absent).
    Ok(Option<Value>),
    /// Definitely did not take effect.
    Fail(FailKind),
    /// Unknown: may or may not have taken effect (timeout, lost reply).
    Info,
}

impl Outcome {
    /// The Jepsen `type` of the completion.
    pub fn type_name(&self) -> &'static str {
        match self {
            Outcome::Ok(_) => "ok",
            Outcome::Fail(_) => "fail",
            Outcome::Info => "info",
        }
    }
}
