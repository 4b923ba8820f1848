//! The crate's one error type, and the kind of each error.
//!
//! Every failure a user can cause names what was wrong and what was expected. Each error has
//! an [`ErrorKind`]; the conversion to DataFusion's errors and the Python exceptions both
//! follow it: plan errors become [`DataFusionError::Plan`], limits
//! [`DataFusionError::ResourcesExhausted`], file errors keep their source, and what only the
//! data or the runtime reveal becomes an execution error.

use std::path::PathBuf;

use datafusion::error::DataFusionError;

/// Result alias used throughout tabssl.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An underlying error from a library this crate does not depend on (ONNX Runtime, the
/// trainer's tensor library): [`Error::Ort`] and [`Error::Tensor`] keep it as their source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What kind of failure an error is: when it is found and what a user can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Known before any data is read: the query, an argument, an option or a model cannot
    /// work as written.
    Plan,
    /// Found while running: a value in the data, a model failing on a batch, a broken
    /// invariant.
    Execution,
    /// A configured limit reached; the message names the setting that raises it.
    Resources,
    /// A file, a directory or a shared library that cannot be read or written.
    Io,
}

impl ErrorKind {
    /// The kind of a DataFusion error, looking through its context and into a tabssl error
    /// it wraps.
    #[must_use]
    pub fn of_datafusion(error: &DataFusionError) -> Self {
        match error {
            DataFusionError::Plan(_)
            | DataFusionError::SQL(..)
            | DataFusionError::SchemaError(..)
            | DataFusionError::Configuration(_)
            | DataFusionError::NotImplemented(_) => Self::Plan,
            DataFusionError::ResourcesExhausted(_) => Self::Resources,
            DataFusionError::IoError(_) | DataFusionError::ObjectStore(_) => Self::Io,
            DataFusionError::External(inner) => match inner.downcast_ref::<Error>() {
                Some(tabssl) => tabssl.kind(),
                None if inner.downcast_ref::<std::io::Error>().is_some() => Self::Io,
                None => Self::Execution,
            },
            DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => Self::of_datafusion(inner),
            DataFusionError::Shared(inner) => Self::of_datafusion(inner),
            _ => Self::Execution,
        }
    }
}

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

    /// A model's files differ from the ones the query was planned with (on a distributed
    /// worker, or here after the file changed): running it would mix model versions.
    #[error(
        "model {model:?} {location} is not the one the query was planned with: planned with sha256 \
         {planned}, {path} (with its manifest) has sha256 {local}; deploy the same model files everywhere \
         (and plan the query again)"
    )]
    ModelMismatch {
        /// The model name.
        model: String,
        /// Where it was loaded: `on worker <address>` or `in this process`.
        location: String,
        /// The content hash the query was planned with.
        planned: String,
        /// The content hash of the local files.
        local: String,
        /// The local `.onnx` file.
        path: String,
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

    /// An input, argument or setting that cannot be used; the message names what is wrong
    /// and what was expected.
    #[error("{0}")]
    Invalid(String),

    /// A value found while running (a NULL row key, a record of a broken input) that cannot
    /// be used; the message names where it is and what was expected.
    #[error("{0}")]
    InvalidData(String),

    /// Pretraining diverged: the loss became NaN or infinite.
    #[error("training diverged in epoch {epoch} (loss is not finite); try a learning rate below {learning_rate}")]
    Diverged {
        /// The epoch where it happened.
        epoch: usize,
        /// The learning rate in use.
        learning_rate: f64,
    },

    /// A tensor operation of the trainer failed.
    #[error("tensor error: {0}")]
    Tensor(#[source] BoxError),

    /// Reading or writing JSON (manifests, reports) failed.
    #[error("{context}: {source}")]
    Json {
        /// What was read or written.
        context: String,
        /// The underlying error.
        source: serde_json::Error,
    },

    /// A broken invariant inside tabssl (a worker thread panicked, counts disagree): a bug
    /// to report, never caused by input.
    #[error("internal error: {0}")]
    Internal(String),

    /// An error from ONNX Runtime outside a model run (building tensors, reading outputs).
    #[error("ONNX Runtime: {0}")]
    Ort(#[source] BoxError),

    /// An error from the Parquet writer.
    #[error("Parquet: {0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),

    /// An error from DataFusion.
    #[error(transparent)]
    DataFusion(DataFusionError),

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

    /// An [`Error::Invalid`] with `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    /// Wraps a JSON error with what was being read or written.
    pub fn json(context: impl Into<String>, source: serde_json::Error) -> Self {
        Self::Json {
            context: context.into(),
            source,
        }
    }

    /// An [`Error::InvalidData`] with `message`.
    pub fn invalid_data(message: impl Into<String>) -> Self {
        Self::InvalidData(message.into())
    }

    /// What kind of failure this is.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidModelName { .. }
            | Self::UnknownModel { .. }
            | Self::InvalidModel { .. }
            | Self::Binding { .. }
            | Self::ModelMismatch { .. }
            | Self::ProviderUnavailable { .. }
            | Self::InvalidOption { .. }
            | Self::Invalid(_) => ErrorKind::Plan,
            Self::LimitExceeded { .. } => ErrorKind::Resources,
            Self::Io { .. } | Self::RuntimeUnavailable(_) => ErrorKind::Io,
            Self::DataFusion(inner) => ErrorKind::of_datafusion(inner),
            Self::InvalidData(_)
            | Self::Inference { .. }
            | Self::Diverged { .. }
            | Self::Tensor(_)
            | Self::Json { .. }
            | Self::Internal(_)
            | Self::Ort(_)
            | Self::Parquet(_)
            | Self::Arrow(_) => ErrorKind::Execution,
        }
    }

    /// True for errors that carry an underlying error worth keeping as a source.
    fn has_source(&self) -> bool {
        matches!(
            self,
            Self::Io { .. } | Self::Tensor(_) | Self::Json { .. } | Self::Ort(_) | Self::Parquet(_)
        )
    }
}

/// With the `ort` feature, `?` turns ONNX Runtime's errors into [`Error::Ort`].
#[cfg(feature = "ort")]
impl From<ort::Error> for Error {
    fn from(error: ort::Error) -> Self {
        Self::Ort(Box::new(error))
    }
}

/// With the `candle` feature, `?` turns the trainer's tensor errors into [`Error::Tensor`].
#[cfg(feature = "candle")]
impl From<candle_core::Error> for Error {
    fn from(error: candle_core::Error) -> Self {
        Self::Tensor(Box::new(error))
    }
}

/// tabssl errors become DataFusion errors in queries by their [`ErrorKind`]: plan errors as
/// [`DataFusionError::Plan`], limits as [`DataFusionError::ResourcesExhausted`], file errors
/// and those with an underlying cause as [`DataFusionError::External`] (the source chain is
/// kept, and converting back gives the original error), the rest as
/// [`DataFusionError::Execution`].
impl From<Error> for DataFusionError {
    fn from(error: Error) -> Self {
        match error {
            Error::DataFusion(inner) => inner,
            Error::Arrow(inner) => DataFusionError::ArrowError(Box::new(inner), None),
            other => match other.kind() {
                ErrorKind::Plan => DataFusionError::Plan(other.to_string()),
                ErrorKind::Resources => DataFusionError::ResourcesExhausted(other.to_string()),
                ErrorKind::Io => DataFusionError::External(Box::new(other)),
                ErrorKind::Execution if other.has_source() => DataFusionError::External(Box::new(other)),
                ErrorKind::Execution => DataFusionError::Execution(other.to_string()),
            },
        }
    }
}

/// A DataFusion error becomes [`Error::DataFusion`], except one that wraps a tabssl error
/// ([`DataFusionError::External`]), which is unwrapped.
impl From<DataFusionError> for Error {
    fn from(error: DataFusionError) -> Self {
        match error {
            DataFusionError::External(inner) => match inner.downcast::<Error>() {
                Ok(tabssl) => *tabssl,
                Err(other) => Self::DataFusion(DataFusionError::External(other)),
            },
            other => Self::DataFusion(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_with_a_source_survive_a_trip_through_datafusion() {
        let original = Error::io("/data/x.parquet", std::io::Error::other("disk on fire"));
        let through: DataFusionError = original.into();
        assert!(matches!(through, DataFusionError::External(_)), "{through:?}");
        let back = Error::from(through);
        match &back {
            Error::Io { path, source } => {
                assert_eq!(path, &PathBuf::from("/data/x.parquet"));
                assert_eq!(source.to_string(), "disk on fire");
            }
            other => panic!("expected the Io error back, got {other:?}"),
        }
        assert!(std::error::Error::source(&back).is_some());
    }

    #[test]
    fn each_kind_becomes_its_datafusion_error_and_keeps_its_kind() {
        let cases = [
            (
                Error::invalid("p must be in [0, 1], got 2"),
                ErrorKind::Plan,
                "Error during planning: p must be in [0, 1], got 2",
            ),
            (
                Error::invalid_data("the row key is NULL at row 3"),
                ErrorKind::Execution,
                "Execution error: the row key is NULL at row 3",
            ),
            (
                Error::LimitExceeded {
                    limit: "tabssl.max_tensor_elements",
                    message: "the batch needs 9 elements, more than tabssl.max_tensor_elements (8) allows".into(),
                },
                ErrorKind::Resources,
                "Resources exhausted: the batch needs 9 elements, more than tabssl.max_tensor_elements (8) allows",
            ),
            (
                Error::RuntimeUnavailable("no library".into()),
                ErrorKind::Io,
                "External error: ONNX Runtime could not be loaded.\nno library",
            ),
        ];
        for (error, kind, message) in cases {
            assert_eq!(error.kind(), kind, "{error}");
            let through = DataFusionError::from(error);
            assert_eq!(through.to_string(), message);
            assert_eq!(ErrorKind::of_datafusion(&through), kind, "{through}");
            let wrapped = through.context("while running the query");
            assert_eq!(ErrorKind::of_datafusion(&wrapped), kind, "{wrapped}");
        }
    }
}
