//! quorumlab's deterministic discrete-event simulator and network emulator.
//!
//! * Virtual time is an integer count of nanoseconds ([`Nanos`]); nothing here reads the wall clock.
//! * One event queue ordered by `(time, insertion seq)`, processed on one thread.
//! * Processes ([`Process`]) receive messages and timers; [`ActorProcess`] hosts any
//!   `stateright::actor::Actor` unchanged, so the code the model checker explores is the code
//!   that runs here.
//! * The [`net`] emulator decides latency, loss, duplication, ordering and partitions per link,
//!   and counts every message by kind.
//! * Faults (crash/restart with optional loss of the last un-synced save, clock rate, process
//!   pause, partitions) are methods on [`Sim`]; the fault *schedule* lives with the workload.
//! * One master seed is split into independent ChaCha streams ([`Seeds`]).

mod actor;
mod engine;
pub mod latency;
pub mod net;
mod seeds;

pub use actor::{ActorProcess, ActorTimer};
pub use engine::{Cmd, Ctx, MsgRecord, Process, RunStop, Sim, SimStats};
pub use latency::Latency;
pub use net::{KindStats, LinkModel, NetStats, Network};
pub use seeds::{Seeds, Stream};
pub use stateright::actor::Id;

/// Virtual time in nanoseconds.
pub type Nanos = u64;

/// Nanoseconds per millisecond, for readable conversions.
pub const MS: Nanos = 1_000_000;
/// Nanoseconds per microsecond.
pub const US: Nanos = 1_000;
/// Nanoseconds per second.
pub const SEC: Nanos = 1_000_000_000;

/// The index of the workload driver: a message sent to [`driver()`] leaves the simulation
/// immediately (no network, not counted) and is collected by [`Sim::take_outbox`].
pub const DRIVER_INDEX: usize = usize::MAX;

/// The id of the workload driver (see [`DRIVER_INDEX`]).
pub fn driver() -> Id {
    Id::from(DRIVER_INDEX)
}

/// What the network emulator needs to know about a message: a short kind name for
/// accounting and an approximate size in bytes.
pub trait Message: Clone + std::fmt::Debug {
    /// A short name for the message type ("append", "vote", "client_req", ...).
    fn kind(&self) -> &'static str;
    /// Approximate encoded size in bytes (used for cost accounting only).
    fn approx_bytes(&self) -> usize {
        64
    }
}

/// Converts a duration to virtual nanoseconds, saturating.
pub fn nanos(d: std::time::Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
