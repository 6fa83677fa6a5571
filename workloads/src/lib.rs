//! Experiment specs, workload and fault generators, the client driver and the history recorder.
//!
//! `spec` reads and checks the TOML experiment; `driver::run` runs it under one protocol in the
//! simulator and returns the history and everything the reports need; `registry` runs a
//! protocol by name.

pub mod driver;
pub mod expect;
pub mod generator;
pub mod network;
pub mod registry;
pub mod spec;

pub use driver::{run, FaultRecord, LeaderChange, RunOptions, RunOutput};
pub use expect::{evaluate, ExpectOutcome};
pub use registry::{protocols, run_named};
pub use spec::{Spec, SpecError, DEFAULT_SPEC};
