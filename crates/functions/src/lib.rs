//! tabssl's functions crate: the pretext-task corruptions (`corrupt_*`, `marginal_sample`),
//! the seeded synthetic table (`tabssl_synthetic`), the `tabssl.*` session options, the
//! keyed random numbers they share, and the error type of every tabssl crate.
//!
//! It needs DataFusion and nothing heavier: no ONNX Runtime, no training or evaluation
//! crates, no server. The `tabssl` crate re-exports it and registers its functions next to
//! `embed` and `predict`; use this crate alone for the corruptions only:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> datafusion::error::Result<()> {
//! use datafusion::prelude::SessionContext;
//!
//! let ctx = SessionContext::new();
//! for function in tabssl_functions::corrupt::scalar_functions() {
//!     ctx.register_udf(function.as_ref().clone());
//! }
//! ctx.register_udtf("tabssl_synthetic", std::sync::Arc::new(tabssl_functions::synthetic::SyntheticTableFunction));
//! let sql = "SELECT count(*) - count(corrupt_mask(age, 0.3, 42, id)) AS masked FROM tabssl_synthetic(10000, 7)";
//! let batches = ctx.sql(sql).await?.collect().await?;
//! assert_eq!(batches[0].num_rows(), 1);
//! # Ok(())
//! # }
//! ```

pub mod atomic;
pub mod corrupt;
pub mod error;
pub mod file_access;
pub mod input;
pub mod literal;
pub mod method;
pub mod options;
pub mod rng;
pub mod setting;
pub mod sql_text;
pub mod synthetic;

pub use error::{Error, ErrorKind, Result};
pub use method::Method;
pub use options::{InferenceSettings, Provider, TabsslOptions};
