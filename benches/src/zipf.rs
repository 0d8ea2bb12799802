//! Which key (or tag) an operation picks: uniform, or Zipf-skewed.
//!
//! The Zipf sampler is rejection-inversion (Hörmann and Derflinger, "Rejection-
//! inversion to generate variates from monotone discrete distributions",
//! 1996): O(1) set-up and O(1) expected time per sample for any `n`, so a
//! sampler can be built per connection over that connection's share of the
//! key space without a table of `n` probabilities.

use crate::rng::Rng;

/// How ranks are drawn from `0..n`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    /// Every rank equally likely.
    Uniform,
    /// Rank `k` (from 0) has weight `1 / (k + 1)^exponent`: rank 0 is hottest.
    Zipf {
        /// The skew, greater than 0; around 1 is typical of caches.
        exponent: f64,
    },
}

impl std::fmt::Display for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Distribution::Uniform => write!(f, "uniform"),
            Distribution::Zipf { exponent } => write!(f, "zipf:{exponent}"),
        }
    }
}

/// Draws ranks in `0..n` by a [`Distribution`].
#[derive(Debug, Clone)]
pub enum Sampler {
    /// Uniform over `0..n`.
    Uniform {
        /// The number of ranks.
        n: u64,
    },
    /// Zipf over `0..n`.
    Zipf(Zipf),
}

impl Sampler {
    /// A sampler over `0..n`; `n` must be at least 1.
    pub fn new(distribution: Distribution, n: u64) -> Sampler {
        assert!(n >= 1, "a sampler needs at least one rank");
        match distribution {
            Distribution::Uniform => Sampler::Uniform { n },
            Distribution::Zipf { exponent } => Sampler::Zipf(Zipf::new(n, exponent)),
        }
    }

    /// One rank in `0..n`.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        match self {
            Sampler::Uniform { n } => rng.below(*n),
            Sampler::Zipf(zipf) => zipf.sample(rng),
        }
    }
}

/// Zipf over ranks `0..n` by rejection-inversion.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: u64,
    exponent: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    s: f64,
}

impl Zipf {
    /// A sampler over `0..n` with `exponent > 0`.
    pub fn new(n: u64, exponent: f64) -> Zipf {
        assert!(n >= 1, "zipf needs at least one rank");
        assert!(
            exponent > 0.0 && exponent.is_finite(),
            "zipf exponent must be positive"
        );
        let mut zipf = Zipf {
            n,
            exponent,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            s: 0.0,
        };
        zipf.h_integral_x1 = zipf.h_integral(1.5) - 1.0;
        zipf.h_integral_n = zipf.h_integral(n as f64 + 0.5);
        zipf.s = 2.0 - zipf.h_integral_inverse(zipf.h_integral(2.5) - zipf.h(2.0));
        zipf
    }

    /// One rank in `0..n`.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_integral_n + rng.unit() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).clamp(1.0, self.n as f64) as u64;
            let kf = k as f64;
            if kf - x <= self.s || u >= self.h_integral(kf + 0.5) - self.h(kf) {
                return k - 1;
            }
        }
    }

    /// `h(x) = x^-exponent`, the continuous envelope of the weights.
    fn h(&self, x: f64) -> f64 {
        (-self.exponent * x.ln()).exp()
    }

    /// `H(x)`, an antiderivative of `h`, written to stay exact near exponent 1.
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        expm1_over_x((1.0 - self.exponent) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.exponent)).max(-1.0);
        (ln1p_over_x(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, continuous at 0.
fn ln1p_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, continuous at 0.
fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(sampler: &Sampler, n: usize, draws: usize) -> Vec<usize> {
        let mut rng = Rng::new(42);
        let mut counts = vec![0; n];
        for _ in 0..draws {
            let rank = sampler.sample(&mut rng);
            assert!(rank < n as u64, "rank {rank} out of 0..{n}");
            counts[rank as usize] += 1;
        }
        counts
    }

    #[test]
    fn zipf_stays_in_range_for_every_exponent_and_size() {
        for exponent in [0.01, 0.5, 0.99, 1.0, 1.01, 1.5, 3.0] {
            for n in [1u64, 2, 3, 10, 1000, 1 << 32] {
                let zipf = Zipf::new(n, exponent);
                let mut rng = Rng::new(n ^ exponent.to_bits());
                for _ in 0..2000 {
                    assert!(zipf.sample(&mut rng) < n);
                }
            }
        }
    }

    #[test]
    fn zipf_one_has_weights_one_over_rank() {
        let counts = histogram(
            &Sampler::new(Distribution::Zipf { exponent: 1.0 }, 100),
            100,
            400_000,
        );
        // Weights 1, 1/2, 1/3: counts in ratio 2 and 3 to within sampling noise.
        let ratio_2 = counts[0] as f64 / counts[1] as f64;
        let ratio_3 = counts[0] as f64 / counts[2] as f64;
        assert!((ratio_2 - 2.0).abs() < 0.1, "{ratio_2}");
        assert!((ratio_3 - 3.0).abs() < 0.15, "{ratio_3}");
        assert!(counts.windows(2).take(10).all(|pair| pair[0] > pair[1]));
    }

    #[test]
    fn uniform_covers_every_rank_evenly() {
        let counts = histogram(&Sampler::new(Distribution::Uniform, 10), 10, 100_000);
        assert!(
            counts.iter().all(|&count| (9_000..11_000).contains(&count)),
            "{counts:?}"
        );
    }
}
