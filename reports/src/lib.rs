//! Metrics, summaries and reports of runs, comparisons and sweeps.
//!
//! * [`ops`]: pairs a history's invocations with their completions.
//! * [`summary`]: the figures of `summary.json` (hdrhistogram percentiles, availability, cost).
//! * [`metrics`]: figures over time (ok/fail/info, per group, leadership, unavailability).
//! * [`plots`], [`seqdiag`]: SVG figures (plotters, no font files).
//! * [`run_report`]: a run's `report.html` and CSV files.
//! * [`compare`]: several protocols under one workload and fault schedule.
//! * [`sweep`]: a grid of runs aggregated over seeds (mean, 95% CI), sharding and merging.

pub mod compare;
pub mod csv;
pub mod engines;
pub mod html;
pub mod metrics;
pub mod ops;
pub mod plots;
pub mod run_report;
pub mod seqdiag;
pub mod stats;
pub mod style;
pub mod summary;
pub mod sweep;

pub use metrics::RunMetrics;
pub use ops::{pair_ops, OpRecord};
pub use run_report::write_run_files;
pub use summary::{summarize, Summary};
