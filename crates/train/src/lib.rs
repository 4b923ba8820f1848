//! tabssl's training crate: self-supervised pretraining of tabular encoders in Rust,
//! exported to ONNX, and the ONNX writer ([`onnx`]) it uses. It needs candle, DataFusion
//! (the rows come from a query), the functions crate and the inference crate's manifest
//! format: no evaluation, server or command line.
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
pub mod network;
pub mod objective;
pub mod onnx;
pub(crate) mod preprocess;
pub mod table;
pub(crate) mod trainer;

pub use export::{manifest, manifest_path, write_model};
pub use job::{PretrainJob, PretrainReport, run_pretrain};
pub use preprocess::{Preprocessor, VocabularyLimits};
pub use table::FeatureTable;
pub use tabssl_functions::Method;
pub use trainer::{EpochStats, FeatureLayer, PretrainConfig, Pretrained, pretrain};

// What the modules share from the crates below, under the paths they use.
use tabssl_functions::{Error, Result, options, rng, setting};
use tabssl_infer as infer;
