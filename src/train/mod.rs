//! Self-supervised pretraining of tabular encoders in Rust, exported to ONNX.
//!
//! A [`FeatureTable`] (any query result) is encoded by a [`Preprocessor`] fitted on the
//! training rows, an MLP encoder is trained on a pretext task ([`Method`]: VIME, SCARF or a
//! denoising autoencoder) with candle, and `export` writes an ONNX graph that takes the
//! raw SQL columns, so `embed('name', col, ...)` runs it like any other model.
//!
//! candle was chosen over burn: it is maintained by Hugging Face, CPU training needs no
//! system libraries, it adds far fewer crates to an already large build, and its tensor API
//! maps one-to-one onto the small MLPs and losses here.

pub(crate) mod export;
pub(crate) mod job;
pub(crate) mod network;
pub(crate) mod objective;
pub(crate) mod preprocess;
pub(crate) mod table;
pub(crate) mod trainer;

pub use crate::Method;
pub use export::{manifest, manifest_path, write_model};
pub use job::{PretrainJob, PretrainReport, run_pretrain};
pub use preprocess::{Preprocessor, VocabularyLimits};
pub use table::FeatureTable;
pub use trainer::{EpochStats, FeatureLayer, PretrainConfig, Pretrained, pretrain};
