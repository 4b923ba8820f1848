//! Pretext-task corruption as DataFusion functions: the augmentations of VIME, SCARF,
//! denoising autoencoders and TabNet, applied while exporting training data.
//!
//! | function | method |
//! |---|---|
//! | `corrupt_mask(x, p, seed, key [, view])` | the Bernoulli(p) mask (VIME/TabNet `m`) |
//! | `corrupt_swap(x, marginal, p, seed, key [, view])` | marginal replacement from a `marginal_sample` file (VIME, SCARF, DAE swap noise) |
//! | `corrupt_swap_batch(x, p, seed, key [, view])` | the same with donors from the batch (cheaper, layout-dependent) |
//! | `corrupt_noise(x, sigma, p, seed, key [, view])` | additive Gaussian noise |
//! | `corrupt_fill(x, fill, p, seed, key [, view])` | constant / zero / NULL masking |
//! | `marginal_sample(x, key [, capacity])` | aggregate: the donor sample `corrupt_swap` reads |
//!
//! The argument convention and the determinism contract are in [`common`]; the random
//! numbers in [`crate::rng`].

pub mod common;
pub mod fill;
pub mod marginal;
pub mod mask;
pub mod noise;
pub mod swap;
pub mod swap_batch;

use std::sync::Arc;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

use common::CorruptUdf;

/// `corrupt_mask`.
pub fn mask_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(CorruptUdf::new(mask::Mask)))
}

/// `corrupt_swap`.
pub fn swap_udf() -> Arc<ScalarUDF> {
    confined_swap_udf(crate::file_access::FileAccess::Unrestricted)
}

/// `corrupt_swap` reading only the marginal files that `access` allows (for SQL from
/// untrusted clients).
pub fn confined_swap_udf(access: crate::file_access::FileAccess) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(CorruptUdf::new(swap::Swap { access })))
}

/// `corrupt_swap_batch`.
pub fn swap_batch_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(CorruptUdf::new(swap_batch::SwapBatch)))
}

/// `corrupt_noise`.
pub fn noise_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(CorruptUdf::new(noise::Noise)))
}

/// `corrupt_fill`.
pub fn fill_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(CorruptUdf::new(fill::Fill)))
}

/// The `marginal_sample` aggregate.
pub fn marginal_sample_udaf() -> Arc<AggregateUDF> {
    Arc::new(AggregateUDF::new_from_impl(marginal::MarginalSample::default()))
}

/// Every corruption scalar function.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![mask_udf(), swap_udf(), swap_batch_udf(), noise_udf(), fill_udf()]
}
