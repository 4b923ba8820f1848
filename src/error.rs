//! The crate's one error type.
//!
//! Every failure a user can cause names what was wrong and what was expected. Errors that
//! can be known while planning a query become [`DataFusionError::Plan`]; errors that only
//! the data or the runtime reveal become [`DataFusionError::Execution`].

use std::path::PathBuf;

use datafusion::error::DataFusionError;

/// Result alias used throughout tabssl.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in tabssl.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ONNX Runtime shared library could not be found or loaded.
    #[error("ONNX Runtime could not be loaded.\n{0}")]
    RuntimeUnavailable(String),

    /// A model name that is not a plain name (contains a path separator, `..`, ...).
    #[error(
        "invalid model name {name:?}: a model name is a plain name made of letters, digits, \
         '_', '-' and '.', not a path (models are looked up in the registry directory {dir})"
    )]
    InvalidModelName {
        /// The name as given.
        name: String,
        /// The registry directory.
        dir: String,
    },

    /// No model of that name in the registry.
    #[error("unknown model {name:?} in registry {dir}; available models: {available}")]
    UnknownModel {
        /// The name as given.
        name: String,
        /// The registry directory.
        dir: String,
        /// Comma-separated list of the models found, or `(none)`.
        available: String,
    },

    /// The model file exists but ONNX Runtime cannot use it, or the manifest is wrong.
    #[error("model {model:?} ({path}): {message}")]
    InvalidModel {
        /// The model name.
        model: String,
        /// The model file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// The SQL arguments do not fit the model's inputs.
    #[error("{function}('{model}', ...): {message}")]
    Binding {
        /// `embed` or `predict`.
        function: &'static str,
        /// The model name.
        model: String,
        /// What is wrong and what was expected.
        message: String,
    },

    /// An execution provider was asked for and cannot be used.
    #[error("execution provider {provider:?} is not available: {reason}")]
    ProviderUnavailable {
        /// The provider asked for.
        provider: String,
        /// Why it could not be used.
        reason: String,
    },

    /// A model failed while running on a batch.
    #[error("model {model:?} failed on rows {first_row}..{end_row} of a {batch_rows}-row batch: {message}")]
    Inference {
        /// The model name.
        model: String,
        /// First row of the failing chunk within the batch.
        first_row: usize,
        /// One past the last row of the failing chunk.
        end_row: usize,
        /// Rows in the batch.
        batch_rows: usize,
        /// The runtime's message.
        message: String,
    },

    /// A bad value for a tabssl option.
    #[error("invalid value {value:?} for {key}: expected {expected}")]
    InvalidOption {
        /// The option key, e.g. `tabssl.provider`.
        key: &'static str,
        /// The value given.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },

    /// A size or count above a configured limit; the message names the limit and how to
    /// raise it.
    #[error("{message}")]
    LimitExceeded {
        /// The setting that limits it, e.g. `tabssl.max_tensor_elements`.
        limit: &'static str,
        /// What exceeded it, by how much, and what to do.
        message: String,
    },

    /// A file system error with the path it concerns.
    #[error("{path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// An error from DataFusion.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),

    /// An error from Arrow.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// True for errors a planner can report before any data is read.
    fn is_plan_time(&self) -> bool {
        matches!(
            self,
            Self::InvalidModelName { .. }
                | Self::UnknownModel { .. }
                | Self::InvalidModel { .. }
                | Self::Binding { .. }
                | Self::ProviderUnavailable { .. }
                | Self::InvalidOption { .. }
                | Self::LimitExceeded { .. }
                | Self::RuntimeUnavailable(_)
        )
    }
}

impl From<Error> for DataFusionError {
    fn from(error: Error) -> Self {
        match error {
            Error::DataFusion(inner) => inner,
            Error::Arrow(inner) => DataFusionError::ArrowError(Box::new(inner), None),
            other if other.is_plan_time() => DataFusionError::Plan(other.to_string()),
            other => DataFusionError::Execution(other.to_string()),
        }
    }
}
