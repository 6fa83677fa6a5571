//! Aggregates over seeds: mean and a 95% confidence interval (Student's t).

use serde::{Deserialize, Serialize};

/// Mean, spread and 95% confidence interval of one metric over the seeds of one grid point.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// Seeds with a value (null values are left out).
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 when n < 2.
    pub sd: f64,
    /// Half-width of the 95% confidence interval of the mean: t(0.975, n−1) · sd / √n; 0 when
    /// n < 2.
    pub ci95: f64,
    pub min: f64,
    pub max: f64,
}

/// The 0.975 quantile of Student's t distribution with `df` degrees of freedom.
pub fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => T[df - 1],
        31..=40 => 2.042 + (2.021 - 2.042) * (df - 30) as f64 / 10.0,
        41..=60 => 2.021 + (2.000 - 2.021) * (df - 40) as f64 / 20.0,
        61..=120 => 2.000 + (1.980 - 2.000) * (df - 60) as f64 / 60.0,
        _ => 1.960,
    }
}

/// Aggregates the finite values of `xs`; `None` when there are none.
pub fn aggregate(xs: &[f64]) -> Option<Aggregate> {
    let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    let (sd, ci95) = if n >= 2 {
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let sd = var.sqrt();
        (sd, t975(n - 1) * sd / (n as f64).sqrt())
    } else {
        (0.0, 0.0)
    };
    Some(Aggregate {
        n,
        mean,
        sd,
        ci95,
        min: v.iter().copied().fold(f64::INFINITY, f64::min),
        max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_ci_by_hand() {
        // 2, 4, 6: mean 4, sd 2, ci = 4.303 · 2 / √3 = 4.9687...
        let a = aggregate(&[2.0, 4.0, 6.0]).unwrap();
        assert_eq!(a.n, 3);
        assert!((a.mean - 4.0).abs() < 1e-12);
        assert!((a.sd - 2.0).abs() < 1e-12);
        assert!((a.ci95 - 4.303 * 2.0 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!((a.min, a.max), (2.0, 6.0));
        let one = aggregate(&[5.0, f64::NAN]).unwrap();
        assert_eq!((one.n, one.mean, one.ci95), (1, 5.0, 0.0));
        assert!(aggregate(&[]).is_none());
        assert_eq!(t975(19), 2.093);
        assert_eq!(t975(1000), 1.96);
    }
}
