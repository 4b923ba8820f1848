//! DataFrame builders for the tabssl functions: the same calls as in SQL, as [`Expr`]s.
//!
//! The corruption builders need nothing but their arguments. `embed` and `predict` run
//! models from the session's registry and settings (`tabssl.models_dir`, provider, ...), so
//! they take the session's function registry and use the functions registered there.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> datafusion::error::Result<()> {
//! use datafusion::prelude::{col, lit};
//! use tabssl::expr_fn::{corrupt_mask, embed};
//!
//! // ONNX Runtime from ORT_DYLIB_PATH, else found on the machine (or fetched once) the way
//! // the command line finds it.
//! tabssl::setup::install();
//! let mut options = tabssl::TabsslOptions::default();
//! options.models_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/models").into();
//! let ctx = tabssl::new_context(options);
//! let rows = ctx.sql("SELECT * FROM tabssl_synthetic(100, 1)").await?;
//! let features = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week",
//!     "workclass", "education", "marital-status", "occupation", "relationship", "race", "sex", "native-country"];
//! let embedding = embed(&ctx, "adult_pca", features.iter().map(|f| col(format!("\"{f}\""))).collect())?;
//! let batches = rows
//!     .select(vec![
//!         col("id"),
//!         embedding.alias("e"),
//!         corrupt_mask(col("age"), 0.3, 42, col("id"), None).alias("age_mask"),
//!     ])?
//!     .collect()
//!     .await?;
//! assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 100);
//! # let _ = lit(1);
//! # Ok(())
//! # }
//! ```

use datafusion::error::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::Expr;
use datafusion::prelude::lit;
use datafusion::scalar::ScalarValue;

use crate::corrupt;

/// `embed(model, features...)` with the `embed` function registered in `registry` (and so
/// that session's models and settings).
///
/// # Errors
/// When `registry` has no `embed` function (tabssl is not registered there).
pub fn embed(registry: &dyn FunctionRegistry, model: &str, features: Vec<Expr>) -> Result<Expr> {
    inference(registry, "embed", model, features)
}

/// `predict(model, features...)`, like [`embed`].
///
/// # Errors
/// When `registry` has no `predict` function.
pub fn predict(registry: &dyn FunctionRegistry, model: &str, features: Vec<Expr>) -> Result<Expr> {
    inference(registry, "predict", model, features)
}

fn inference(registry: &dyn FunctionRegistry, name: &str, model: &str, features: Vec<Expr>) -> Result<Expr> {
    let function = registry.udf(name)?;
    let mut args = vec![lit(model)];
    args.extend(features);
    Ok(function.call(args))
}

/// The shared tail of every corruption call: p, seed, key and the optional view.
fn corruption(x: Expr, params: Vec<Expr>, p: f64, seed: u64, key: Expr, view: Option<Expr>) -> Vec<Expr> {
    let mut args = vec![x];
    args.extend(params);
    args.extend([lit(p), lit(seed), key]);
    args.extend(view);
    args
}

/// `corrupt_mask(x, p, seed, key [, view])`: the Bernoulli(p) draw of each cell.
pub fn corrupt_mask(x: Expr, p: f64, seed: u64, key: Expr, view: Option<Expr>) -> Expr {
    corrupt::mask_udf().call(corruption(x, Vec::new(), p, seed, key, view))
}

/// `corrupt_swap(x, marginal, p, seed, key [, view])`: donors from a marginal file.
pub fn corrupt_swap(x: Expr, marginal: &str, p: f64, seed: u64, key: Expr, view: Option<Expr>) -> Expr {
    corrupt::swap_udf().call(corruption(x, vec![lit(marginal)], p, seed, key, view))
}

/// `corrupt_swap_batch(x, p, seed, key [, view])`: donors from the same batch.
pub fn corrupt_swap_batch(x: Expr, p: f64, seed: u64, key: Expr, view: Option<Expr>) -> Expr {
    corrupt::swap_batch_udf().call(corruption(x, Vec::new(), p, seed, key, view))
}

/// `corrupt_noise(x, sigma, p, seed, key [, view])`: additive Gaussian noise.
pub fn corrupt_noise(x: Expr, sigma: f64, p: f64, seed: u64, key: Expr, view: Option<Expr>) -> Expr {
    corrupt::noise_udf().call(corruption(x, vec![lit(sigma)], p, seed, key, view))
}

/// `corrupt_fill(x, fill, p, seed, key [, view])`: masked cells become `fill`
/// (`ScalarValue::Null` blanks them).
pub fn corrupt_fill(x: Expr, fill: ScalarValue, p: f64, seed: u64, key: Expr, view: Option<Expr>) -> Expr {
    corrupt::fill_udf().call(corruption(x, vec![lit(fill)], p, seed, key, view))
}

/// `marginal_sample(x, key [, capacity])`: the donor sample `corrupt_swap` reads.
pub fn marginal_sample(x: Expr, key: Expr, capacity: Option<u64>) -> Expr {
    let mut args = vec![x, key];
    args.extend(capacity.map(lit));
    corrupt::marginal_sample_udaf().call(args)
}
