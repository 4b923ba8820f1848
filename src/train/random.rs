//! The seeded random stream of training: weight initialisation, shuffling, corruption.
//!
//! A sequential splitmix64 generator (candle's CPU generator cannot be seeded), so a run
//! is a pure function of its seed.

use crate::corrupt::rng::splitmix64;

/// A seeded sequence of random numbers.
#[derive(Debug, Clone)]
pub struct TrainRng {
    state: u64,
}

impl TrainRng {
    /// A generator for `seed` and a named purpose, so that streams for different purposes
    /// (initialisation, shuffling, corruption) are independent.
    #[must_use]
    pub fn new(seed: u64, purpose: &str) -> Self {
        Self {
            state: splitmix64(seed ^ crate::corrupt::rng::hash_bytes(purpose.as_bytes())),
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(self.state)
    }

    /// Uniform in `[0, 1)` with 53 bits.
    #[allow(clippy::cast_precision_loss)]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Uniform index in `0..n` (Lemire's multiply-shift; `n` must be positive).
    #[allow(clippy::cast_possible_truncation)]
    pub fn index(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A uniformly shuffled `0..n` (Fisher–Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, self.index(i + 1));
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let draws = |seed, purpose| {
            let mut rng = TrainRng::new(seed, purpose);
            (0..4).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draws(1, "init"), draws(1, "init"));
        assert_ne!(draws(1, "init"), draws(1, "shuffle"));
        assert_ne!(draws(1, "init"), draws(2, "init"));
        let mut rng = TrainRng::new(3, "p");
        let mut perm = rng.permutation(100);
        perm.sort_unstable();
        assert_eq!(perm, (0..100).collect::<Vec<_>>());
    }
}
