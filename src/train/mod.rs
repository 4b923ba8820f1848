//! Self-supervised pretraining of tabular encoders in Rust, exported to ONNX.
//!
//! A [`FeatureTable`] (any query result) is encoded by a [`Preprocessor`] fitted on the
//! training rows, an MLP encoder is trained on a pretext task ([`Method`]: VIME, SCARF or a
//! denoising autoencoder) with candle, and [`export`] writes an ONNX graph that takes the
//! raw SQL columns, so `embed('name', col, ...)` runs it like any other model.
//!
//! candle was chosen over burn: it is maintained by Hugging Face, CPU training needs no
//! system libraries, it adds far fewer crates to an already large build, and its tensor API
//! maps one-to-one onto the small MLPs and losses here.

pub mod export;
pub mod network;
pub mod objective;
pub mod preprocess;
pub mod table;
pub mod trainer;

pub use objective::Method;
pub use preprocess::{Preprocessor, VocabularyLimits};
pub use table::FeatureTable;
pub use trainer::{EpochStats, PretrainConfig, Pretrained, pretrain};

/// Why pretraining failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The input or the parameters cannot be trained on.
    #[error("{0}")]
    Input(String),
    /// The loss became NaN or infinite.
    #[error("training diverged in epoch {epoch} (loss is not finite); try a learning rate below {learning_rate}")]
    Diverged {
        /// The epoch where it happened.
        epoch: usize,
        /// The learning rate in use.
        learning_rate: f64,
    },
    /// A tensor operation failed.
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
    /// Converting the input failed.
    #[error("input conversion: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Writing the manifest failed.
    #[error("manifest: {0}")]
    Json(#[from] serde_json::Error),
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(String),
}
