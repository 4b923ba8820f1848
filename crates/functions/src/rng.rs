//! tabssl's one source of random numbers, all built on splitmix64:
//! - [`CellRng`]: the counter-based draws behind every corruption function. A draw is a
//!   pure function of (seed, column, row key, view, stream): no state is carried from row
//!   to row, so a row's corruption does not depend on batch size, partitioning, thread
//!   count or file order;
//! - [`TrainRng`]: the seeded sequence of training and evaluation (initialisation,
//!   shuffling, corruption, label samples);
//! - [`RowRng`]: the per-row stream of the synthetic table, a function of (seed, row).
//!
//! For the corruption draws: Each ingredient is folded in with splitmix64, a bijective
//! 64-bit mixer whose outputs pass BigCrush when fed a counter; streams separate the
//! independent draws one cell needs (the Bernoulli mask, the donor index, the noise).
//!
//! Hand-written on purpose: random-number crates offer seeded sequences, not a draw
//! addressed by (seed, column, key, view) that must stay bit-identical across versions
//! (the pinned-draw tests hold it to that).

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};

/// The stream of the Bernoulli draw that decides whether a cell is corrupted.
pub const STREAM_MASK: u64 = 0;
/// The stream of the donor row of a marginal swap.
pub const STREAM_DONOR: u64 = 1;
/// The two streams of a Gaussian noise draw (Box–Muller takes two uniforms).
pub const STREAM_NOISE: [u64; 2] = [2, 3];

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's output function: a bijective mix of all 64 bits.
#[must_use]
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 64-bit hash of bytes (not `std`'s hasher, whose output may change between
/// Rust releases): little-endian 8-byte words folded with splitmix64, length included.
#[must_use]
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = splitmix64(bytes.len() as u64 ^ 0x7461_6273_736C_0001);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = splitmix64(h ^ u64::from_le_bytes(word));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = splitmix64(h ^ u64::from_le_bytes(word));
    }
    h
}

/// The hash of an integer row key: the same for a value in any integer type.
#[must_use]
pub fn hash_int_key(value: i128) -> u64 {
    // Fold both halves so 64-bit unsigned keys above i64::MAX stay distinct.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (low, high) = (value as u64, (value >> 64) as u64);
    splitmix64(low ^ splitmix64(high ^ 0x006B_6579))
}

/// Row-key hashes of one batch, or a message naming what is wrong with the key column.
///
/// Keys may be integers (any width, signed or not) or strings; a NULL key is an error,
/// because a row without a key has no reproducible randomness.
///
/// # Errors
/// When the key column holds a NULL or has another type.
pub fn key_hashes(keys: &ArrayRef) -> crate::Result<Vec<u64>> {
    if keys.null_count() > 0 {
        let row = (0..keys.len()).find(|&i| keys.is_null(i)).unwrap_or(0);
        return Err(crate::Error::InvalidData(format!(
            "the row key is NULL at row {row} of the batch; every row needs a non-NULL key \
             (an id column, or row_number() OVER (ORDER BY ...))"
        )));
    }
    macro_rules! ints {
        ($t:ty) => {
            keys.as_primitive::<$t>()
                .values()
                .iter()
                .map(|&v| hash_int_key(i128::from(v)))
                .collect()
        };
    }
    Ok(match keys.data_type() {
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Utf8 => keys
            .as_string::<i32>()
            .iter()
            .flatten()
            .map(|s| hash_bytes(s.as_bytes()))
            .collect(),
        DataType::LargeUtf8 => keys
            .as_string::<i64>()
            .iter()
            .flatten()
            .map(|s| hash_bytes(s.as_bytes()))
            .collect(),
        DataType::Utf8View => keys
            .as_string_view()
            .iter()
            .flatten()
            .map(|s| hash_bytes(s.as_bytes()))
            .collect(),
        other => return Err(crate::Error::Invalid(key_type_error(other))),
    })
}

/// Whether `data_type` can be a row key.
#[must_use]
pub fn is_key_type(data_type: &DataType) -> bool {
    data_type.is_integer() || matches!(data_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The message for a key column of an unsupported type.
#[must_use]
pub fn key_type_error(data_type: &DataType) -> String {
    format!("the row key must be an integer or string column, got {data_type}")
}

/// The draws of one cell: all streams of (seed, column, row key, view).
#[derive(Debug, Clone, Copy)]
pub struct CellRng(u64);

impl CellRng {
    /// The generator of the cell at `key_hash` in the column seeded with `column_seed`
    /// (see [`column_seed`]), for augmentation `view`.
    #[must_use]
    pub fn new(column_seed: u64, key_hash: u64, view: u64) -> Self {
        Self(splitmix64(
            splitmix64(column_seed ^ key_hash) ^ view.wrapping_mul(GOLDEN),
        ))
    }

    /// 64 random bits of `stream`.
    #[must_use]
    pub fn bits(self, stream: u64) -> u64 {
        splitmix64(self.0 ^ splitmix64(stream))
    }

    /// A uniform draw in [0, 1) with 53 random bits.
    #[must_use]
    pub fn uniform(self, stream: u64) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let top = (self.bits(stream) >> 11) as f64;
        top * (1.0 / (1u64 << 53) as f64)
    }

    /// The Bernoulli(p) draw of the cell's mask: true with probability p (exactly never
    /// for p = 0, always for p = 1).
    #[must_use]
    pub fn bernoulli(self, p: f64) -> bool {
        self.uniform(STREAM_MASK) < p
    }

    /// A uniform index in `0..n` (Lemire's multiply-shift; bias below n / 2^64).
    #[must_use]
    pub fn index(self, stream: u64, n: usize) -> usize {
        #[allow(clippy::cast_possible_truncation)]
        let index = ((u128::from(self.bits(stream)) * n as u128) >> 64) as usize;
        index
    }

    /// A standard normal draw (Box–Muller).
    #[must_use]
    pub fn normal(self) -> f64 {
        let u1 = 1.0 - self.uniform(STREAM_NOISE[0]); // (0, 1]: ln is finite
        let u2 = self.uniform(STREAM_NOISE[1]);
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The seed of one column's draws: the user's seed and the column's name, so columns get
/// independent masks under one seed.
#[must_use]
pub fn column_seed(seed: u64, column: &str) -> u64 {
    splitmix64(seed ^ hash_bytes(column.as_bytes()))
}

/// A seeded sequence of random numbers (training, evaluation). A sequential splitmix64
/// generator (candle's CPU generator cannot be seeded), so a run is a pure function of its
/// seed.
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
            state: splitmix64(seed ^ hash_bytes(purpose.as_bytes())),
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
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

/// A counter-based random stream for one row of the synthetic table: value `k` depends
/// only on (seed, row, k).
#[derive(Debug, Clone)]
pub struct RowRng {
    key: u64,
    counter: u64,
}

impl RowRng {
    /// The stream of `row` under `seed`.
    #[must_use]
    pub fn new(seed: u64, row: u64) -> Self {
        Self {
            key: splitmix64(seed ^ splitmix64(row)),
            counter: 0,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.counter += 1;
        splitmix64(self.key.wrapping_add(self.counter.wrapping_mul(GOLDEN)))
    }

    /// Uniform in [0, 1).
    #[allow(clippy::cast_precision_loss)]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// One of `items`, uniformly.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.uniform() * items.len() as f64) as usize % items.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_keys_hash_alike_in_every_width() {
        assert_eq!(hash_int_key(7), hash_int_key(i128::from(7u8)));
        assert_ne!(hash_int_key(7), hash_int_key(8));
        assert_ne!(hash_int_key(i128::from(u64::MAX)), hash_int_key(-1));
    }

    #[test]
    fn byte_hash_depends_on_every_byte_and_the_length() {
        assert_ne!(hash_bytes(b"age"), hash_bytes(b"agf"));
        assert_ne!(hash_bytes(b"a"), hash_bytes(b"a\0"));
        assert_ne!(hash_bytes(b"0123456789"), hash_bytes(b"0123456788"));
    }

    #[test]
    fn uniform_draws_have_the_moments_of_u01() {
        let n = 200_000u64;
        let seed = column_seed(1, "x");
        let draws: Vec<f64> = (0..n)
            .map(|k| CellRng::new(seed, hash_int_key(k.into()), 0).uniform(0))
            .collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|u| (u - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard errors: 1/sqrt(12 n) = 0.00065 for the mean, ~0.0002 for the variance.
        assert!((mean - 0.5).abs() < 0.003, "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 0.001, "variance {var}");
    }

    #[test]
    fn normal_draws_have_the_moments_of_n01() {
        let n = 200_000u64;
        let seed = column_seed(3, "y");
        let draws: Vec<f64> = (0..n)
            .map(|k| CellRng::new(seed, hash_int_key(k.into()), 1).normal())
            .collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|z| (z - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.015, "variance {var}");
    }

    #[test]
    fn training_streams_are_reproducible_and_distinct() {
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
