//! tabssl: self-supervised learning for tabular data, inside SQL.
//!
//! tabssl adds SQL functions to an Apache DataFusion [`SessionContext`]:
//! - `embed(model, col, ...)` runs an ONNX encoder from the model registry through ONNX
//!   Runtime and returns `FixedSizeList<Float32, D>`;
//! - `predict(model, col, ...)` does the same for one-value heads and returns `Float32`;
//! - `tabssl_models()` lists the registry;
//! - `tabssl_synthetic(rows[, seed])` generates a seeded Adult-shaped table;
//! - `corrupt_mask`, `corrupt_swap`, `corrupt_swap_batch`, `corrupt_noise`, `corrupt_fill`
//!   and the `marginal_sample` aggregate apply the pretext-task corruptions of VIME, SCARF,
//!   denoising autoencoders and TabNet, deterministically per (seed, row key, column); see
//!   [`corrupt`].
//!
//! Options live under `tabssl.` in the session config (`SET tabssl.provider = 'cuda'`),
//! see [`TabsslOptions`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> datafusion::error::Result<()> {
//! let ctx = tabssl::new_context(tabssl::TabsslOptions::default());
//! let df = ctx.sql("SELECT count(*) AS n, count(workclass) AS known FROM tabssl_synthetic(1000, 7)").await?;
//! let batches = df.collect().await?;
//! assert_eq!(batches[0].num_rows(), 1);
//! // A VIME-style mask: every cell corrupted with probability 0.3, keyed by id.
//! let sql = "SELECT avg(CAST(corrupt_mask(age, 0.3, 42, id) AS DOUBLE)) FROM tabssl_synthetic(10000, 7)";
//! let rate = ctx.sql(sql).await?.collect().await?;
//! assert_eq!(rate[0].num_rows(), 1);
//! # Ok(())
//! # }
//! ```

pub mod cli;
pub mod corrupt;
pub mod error;
pub mod eval;
pub mod infer;
pub mod io;
pub mod onnx;
pub mod options;
pub mod parallel_parquet;
pub mod rng;
pub mod sql_text;
pub mod stream;
pub mod synthetic;
pub mod train;

use std::sync::Arc;

use datafusion::execution::context::SessionContext;
use datafusion::prelude::SessionConfig;

pub use error::{Error, Result};
pub use options::{InferenceSettings, Provider, TabsslOptions};

/// Registers every tabssl function on `ctx` and installs `options` as the session's
/// `tabssl.*` settings. This is the single entry point, also for distributed workers.
pub fn register_all(ctx: &SessionContext, options: TabsslOptions) {
    let settings = {
        let state = ctx.state_ref();
        let mut state = state.write();
        state.config_mut().options_mut().extensions.insert(options);
        InferenceSettings::from_config(state.config().options())
    };
    ctx.register_udf(infer::udf::embed_udf(settings.clone()));
    ctx.register_udf(infer::udf::predict_udf(settings));
    ctx.register_udtf("tabssl_models", Arc::new(infer::models_table::ModelsTableFunction));
    ctx.register_udtf("tabssl_synthetic", Arc::new(synthetic::SyntheticTableFunction));
    corrupt::register(ctx);
}

/// A new context with the information schema enabled and tabssl registered.
pub fn new_context(options: TabsslOptions) -> SessionContext {
    new_context_with_config(SessionConfig::new(), options)
}

/// Like [`new_context`], starting from `config` (batch size, partitions, ...).
pub fn new_context_with_config(config: SessionConfig, options: TabsslOptions) -> SessionContext {
    let ctx = SessionContext::new_with_config(config.with_information_schema(true));
    register_all(&ctx, options);
    ctx
}
