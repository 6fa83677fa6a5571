//! One-way latency models for a link. Parameters are in milliseconds (as a person writes them in
//! a spec); samples are integer nanoseconds.

use crate::Nanos;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// A one-way latency distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Latency {
    /// Always `ms`.
    Constant { ms: f64 },
    /// Uniform in `[min_ms, max_ms]`.
    Uniform { min_ms: f64, max_ms: f64 },
    /// Normal with the given mean and standard deviation, truncated at 0.
    Normal { mean_ms: f64, sd_ms: f64 },
    /// Log-normal with the given median and shape `sigma` (the standard deviation of ln x).
    Lognormal { median_ms: f64, sigma: f64 },
    /// `min_ms` plus a Pareto tail: P(X > min·x) = x^-alpha, capped at `max_ms`.
    Pareto {
        min_ms: f64,
        alpha: f64,
        #[serde(default = "default_pareto_cap")]
        max_ms: f64,
    },
}

fn default_pareto_cap() -> f64 {
    10_000.0
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Constant { ms: 1.0 }
    }
}

const NS_PER_MS: f64 = 1e6;

fn to_nanos(ms: f64) -> Nanos {
    if ms.is_finite() && ms > 0.0 {
        (ms * NS_PER_MS).round() as Nanos
    } else {
        0
    }
}

/// A standard normal sample (Box-Muller; one of the pair is discarded to keep the stream simple).
pub fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl Latency {
    /// Checks the parameters; the error names the offending one.
    pub fn validate(&self) -> Result<(), String> {
        let nonneg = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be a finite number >= 0, got {v}"))
            }
        };
        match *self {
            Latency::Constant { ms } => nonneg("ms", ms),
            Latency::Uniform { min_ms, max_ms } => {
                nonneg("min_ms", min_ms)?;
                nonneg("max_ms", max_ms)?;
                if max_ms < min_ms {
                    return Err(format!("max_ms ({max_ms}) < min_ms ({min_ms})"));
                }
                Ok(())
            }
            Latency::Normal { mean_ms, sd_ms } => {
                nonneg("mean_ms", mean_ms)?;
                nonneg("sd_ms", sd_ms)
            }
            Latency::Lognormal { median_ms, sigma } => {
                nonneg("median_ms", median_ms)?;
                nonneg("sigma", sigma)
            }
            Latency::Pareto {
                min_ms,
                alpha,
                max_ms,
            } => {
                nonneg("min_ms", min_ms)?;
                nonneg("max_ms", max_ms)?;
                if !(alpha.is_finite() && alpha > 0.0) {
                    return Err(format!("alpha must be > 0, got {alpha}"));
                }
                Ok(())
            }
        }
    }

    /// Draws one latency.
    pub fn sample(&self, rng: &mut impl Rng) -> Nanos {
        match *self {
            Latency::Constant { ms } => to_nanos(ms),
            Latency::Uniform { min_ms, max_ms } => {
                let (lo, hi) = (to_nanos(min_ms), to_nanos(max_ms));
                if hi <= lo {
                    lo
                } else {
                    rng.random_range(lo..=hi)
                }
            }
            Latency::Normal { mean_ms, sd_ms } => to_nanos(mean_ms + sd_ms * standard_normal(rng)),
            Latency::Lognormal { median_ms, sigma } => {
                to_nanos(median_ms * (sigma * standard_normal(rng)).exp())
            }
            Latency::Pareto {
                min_ms,
                alpha,
                max_ms,
            } => {
                let u: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
                to_nanos((min_ms * u.powf(-1.0 / alpha)).min(max_ms.max(min_ms)))
            }
        }
    }

    /// The distribution's mean in milliseconds (ignoring truncation), for tests and docs.
    pub fn mean_ms(&self) -> f64 {
        match *self {
            Latency::Constant { ms } => ms,
            Latency::Uniform { min_ms, max_ms } => (min_ms + max_ms) / 2.0,
            Latency::Normal { mean_ms, .. } => mean_ms,
            Latency::Lognormal { median_ms, sigma } => median_ms * (sigma * sigma / 2.0).exp(),
            Latency::Pareto { min_ms, alpha, .. } => {
                if alpha > 1.0 {
                    alpha * min_ms / (alpha - 1.0)
                } else {
                    f64::INFINITY
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Seeds, Stream};

    fn stats(l: &Latency, n: usize) -> (f64, f64) {
        let mut rng = Seeds::new(1).rng(Stream::Network);
        let xs: Vec<f64> = (0..n).map(|_| l.sample(&mut rng) as f64 / 1e6).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        (mean, var.sqrt())
    }

    #[test]
    fn constant_is_exact() {
        let mut rng = Seeds::new(1).rng(Stream::Network);
        assert_eq!(Latency::Constant { ms: 2.5 }.sample(&mut rng), 2_500_000);
    }

    #[test]
    fn uniform_mean_and_spread() {
        let (m, sd) = stats(
            &Latency::Uniform {
                min_ms: 1.0,
                max_ms: 3.0,
            },
            50_000,
        );
        assert!((m - 2.0).abs() < 0.02, "mean {m}");
        // sd of U(1,3) = 2/sqrt(12)
        assert!((sd - 2.0 / 12f64.sqrt()).abs() < 0.02, "sd {sd}");
    }

    #[test]
    fn normal_mean_and_spread() {
        let (m, sd) = stats(
            &Latency::Normal {
                mean_ms: 10.0,
                sd_ms: 2.0,
            },
            50_000,
        );
        assert!((m - 10.0).abs() < 0.05, "mean {m}");
        assert!((sd - 2.0).abs() < 0.05, "sd {sd}");
    }

    #[test]
    fn normal_is_truncated_at_zero() {
        let mut rng = Seeds::new(3).rng(Stream::Network);
        let l = Latency::Normal {
            mean_ms: 0.1,
            sd_ms: 5.0,
        };
        // every sample is a valid non-negative count; many hit the floor
        let zeros = (0..10_000).filter(|_| l.sample(&mut rng) == 0).count();
        assert!(zeros > 4_000, "zeros {zeros}");
    }

    #[test]
    fn lognormal_mean() {
        let l = Latency::Lognormal {
            median_ms: 5.0,
            sigma: 0.5,
        };
        let (m, _) = stats(&l, 100_000);
        assert!((m - l.mean_ms()).abs() / l.mean_ms() < 0.02, "mean {m}");
    }

    #[test]
    fn pareto_mean_and_floor() {
        let l = Latency::Pareto {
            min_ms: 1.0,
            alpha: 3.0,
            max_ms: 1e9,
        };
        let (m, _) = stats(&l, 200_000);
        assert!((m - 1.5).abs() < 0.03, "mean {m}");
        let mut rng = Seeds::new(2).rng(Stream::Network);
        assert!((0..1000).all(|_| l.sample(&mut rng) >= 1_000_000));
    }

    #[test]
    fn validate_names_parameter() {
        let e = Latency::Uniform {
            min_ms: 3.0,
            max_ms: 1.0,
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("max_ms"));
        assert!(Latency::Constant { ms: -1.0 }
            .validate()
            .unwrap_err()
            .contains("ms"));
    }
}
