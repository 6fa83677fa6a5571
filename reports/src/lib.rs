//! Metrics, summaries and reports of runs.
//!
//! * [`ops`]: pairs a history's invocations with their completions.
//! * [`summary`]: the figures of `summary.json` (hdrhistogram percentiles, availability, cost).

pub mod ops;
pub mod summary;

pub use ops::{pair_ops, OpRecord};
pub use summary::{summarize, Summary};
