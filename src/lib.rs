//! tabssl: self-supervised learning for tabular data, inside SQL.
//!
//! tabssl adds SQL functions to an Apache DataFusion [`SessionContext`](datafusion::prelude::SessionContext):
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

// tabssl is a workspace of crates with dependencies pointing down (docs/building.md, "The
// crates"); this crate re-exports them under one name.

/// Scale-out on datafusion-distributed workers: the `tabssl-distributed` crate.
#[cfg(feature = "distributed")]
pub use tabssl_distributed as distributed;
/// Evaluating pretrained encoders on few labels: the `tabssl-eval` crate.
pub use tabssl_eval as eval;
/// Pretraining sets in one call (`tabssl export`): the `tabssl-export` crate.
pub use tabssl_export as export;
pub mod expr_fn;
/// The Arrow Flight SQL server: the `tabssl-serve` crate.
#[cfg(feature = "serve")]
pub use tabssl_serve as serve;
/// SQL over unbounded streams: the `tabssl-stream` crate.
pub use tabssl_stream as stream;

/// Files tabssl reads: input files registered as tables, and the directories untrusted SQL
/// may read from.
pub mod io {
    pub use tabssl_functions::file_access::FileAccess;
    pub use tabssl_functions::input::register_input;
}

// The corruptions, the synthetic table, the options and the errors live in the
// `tabssl-functions` crate, which needs DataFusion only.
pub use tabssl_functions::{corrupt, error, options, rng, setting, synthetic};

pub use error::{Error, ErrorKind, Result};
pub use options::{InferenceSettings, Provider, TabsslOptions};
/// The command line (`tabssl --help`), as the `tabssl` binary runs it.
#[cfg(feature = "cli")]
pub use tabssl_cli::run_command_line;
pub use tabssl_functions::Method;
/// Embedded inference and the registration of every function: the `tabssl-infer` crate.
pub use tabssl_infer as infer;
/// Finding or fetching ONNX Runtime and the CUDA libraries (what the command line and the
/// Python package install).
#[cfg(feature = "setup")]
pub use tabssl_infer::setup;
pub use tabssl_infer::{
    aggregate_functions, new_context, new_context_with_config, register, register_all, run_statements,
    scalar_functions, table_functions, with_tabssl,
};
/// Pretraining encoders and exporting them to ONNX: the `tabssl-train` crate.
pub use tabssl_train as train;
/// Writing ONNX graphs (the pretrained encoders'): part of the `tabssl-train` crate.
pub use tabssl_train::onnx;
