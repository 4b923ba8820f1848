//! `tabssl.*` session options, settable with `SET tabssl.provider = 'cuda'` and friends.
//!
//! The options live in DataFusion's config as a [`ConfigExtension`], so they travel with
//! the session, show up in `SHOW ALL`, and reach every UDF when they change.

use std::fmt;
use std::str::FromStr;

use datafusion::common::config::{ConfigExtension, ConfigField, Visit};
use datafusion::common::extensions_options;
use datafusion::config::ConfigOptions;
use datafusion::error::DataFusionError;

/// Environment variable that overrides the default model registry directory.
pub const MODELS_DIR_ENV: &str = "TABSSL_MODELS";

/// Registry directory used when neither `SET`, a CLI flag nor [`MODELS_DIR_ENV`] says otherwise.
pub const DEFAULT_MODELS_DIR: &str = "models";

/// Which ONNX Runtime execution provider runs the models.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// The CPU execution provider (default).
    #[default]
    Cpu,
    /// The CUDA execution provider; failing to register it is an error.
    Cuda,
    /// CUDA when it registers, otherwise CPU with one warning.
    Auto,
}

impl Provider {
    /// The lowercase name used in SQL and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Auto => "auto",
        }
    }
}

impl FromStr for Provider {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda),
            "auto" => Ok(Self::Auto),
            _ => Err(crate::Error::InvalidOption {
                key: "tabssl.provider",
                value: s.to_string(),
                expected: "one of 'cpu', 'cuda', 'auto'",
            }),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ConfigField for Provider {
    fn visit<V: Visit>(&self, v: &mut V, key: &str, description: &'static str) {
        v.some(key, self, description);
    }

    fn set(&mut self, _key: &str, value: &str) -> datafusion::error::Result<()> {
        *self = value
            .parse()
            .map_err(|e: crate::Error| DataFusionError::Configuration(e.to_string()))?;
        Ok(())
    }
}

fn default_models_dir() -> String {
    std::env::var(MODELS_DIR_ENV)
        .ok()
        .filter(|dir| !dir.is_empty())
        .unwrap_or_else(|| DEFAULT_MODELS_DIR.to_string())
}

extensions_options! {
    /// Options under the `tabssl.` prefix.
    pub struct TabsslOptions {
        /// Directory holding `<name>.onnx` models and their `<name>.json` manifests.
        pub models_dir: String, default = default_models_dir()
        /// Execution provider: 'cpu' (default), 'cuda' or 'auto'.
        pub provider: Provider, default = Provider::Cpu
        /// CUDA device ordinal used when the provider is 'cuda' or 'auto'.
        pub device_id: usize, default = 0
        /// ONNX Runtime intra-op threads per session; 0 = cores / target_partitions.
        pub intra_threads: usize, default = 0
        /// Most sessions kept per model and provider; 0 = one per target partition.
        pub sessions_per_model: usize, default = 0
        /// Most values one model call may take or return, and one batch's result may hold
        /// (rows × width): a model whose single row is wider is refused while planning, and
        /// larger batches are run in several calls.
        pub max_tensor_elements: usize, default = DEFAULT_MAX_TENSOR_ELEMENTS
        /// Most ONNX Runtime threads one session may use (`intra_threads` above it is an error).
        pub max_threads: usize, default = DEFAULT_MAX_THREADS
    }
}

/// Default of `tabssl.max_tensor_elements`: 2^27 values, 512 MiB as float32.
pub const DEFAULT_MAX_TENSOR_ELEMENTS: usize = 1 << 27;
/// Default of `tabssl.max_threads`.
pub const DEFAULT_MAX_THREADS: usize = 256;

impl ConfigExtension for TabsslOptions {
    const PREFIX: &'static str = "tabssl";
}

impl TabsslOptions {
    /// The `tabssl.*` options of a session config (the defaults where it has none).
    pub fn of(config: &ConfigOptions) -> Self {
        config.extensions.get::<Self>().cloned().unwrap_or_default()
    }
}

/// The resolved settings an inference UDF runs with, derived from the session config.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InferenceSettings {
    /// Model registry directory.
    pub models_dir: String,
    /// Requested execution provider.
    pub provider: Provider,
    /// CUDA device ordinal.
    pub device_id: usize,
    /// ONNX Runtime intra-op threads per session (never 0).
    pub intra_threads: usize,
    /// Most sessions per model (never 0).
    pub max_sessions: usize,
    /// Most values per model call and per batch result (`tabssl.max_tensor_elements`).
    pub max_tensor_elements: usize,
    /// Most intra-op threads per session (`tabssl.max_threads`).
    pub max_threads: usize,
}

impl InferenceSettings {
    /// Reads the `tabssl.*` options (defaults where the extension is missing) and resolves
    /// the automatic thread counts against `datafusion.execution.target_partitions`.
    pub fn from_config(config: &ConfigOptions) -> Self {
        let defaults = TabsslOptions::default();
        let options = config.extensions.get::<TabsslOptions>().unwrap_or(&defaults);
        let partitions = config.execution.target_partitions.max(1);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            models_dir: options.models_dir.clone(),
            provider: options.provider,
            device_id: options.device_id,
            intra_threads: if options.intra_threads == 0 {
                (cores / partitions).max(1)
            } else {
                options.intra_threads
            },
            max_sessions: if options.sessions_per_model == 0 {
                partitions
            } else {
                options.sessions_per_model
            },
            max_tensor_elements: options.max_tensor_elements,
            max_threads: options.max_threads,
        }
    }

    /// Checks the settings against their limits, before any session is created.
    ///
    /// # Errors
    /// [`crate::Error::LimitExceeded`] for more intra-op threads than `tabssl.max_threads`
    /// allows, [`crate::Error::InvalidOption`] for a zero limit.
    pub fn check(&self) -> crate::Result<()> {
        if self.intra_threads > self.max_threads {
            return Err(crate::Error::LimitExceeded {
                limit: "tabssl.max_threads",
                message: format!(
                    "tabssl.intra_threads = {} asks for more ONNX Runtime threads per session than \
                     tabssl.max_threads = {} allows; use fewer threads (0 = cores / partitions) or raise \
                     tabssl.max_threads",
                    self.intra_threads, self.max_threads
                ),
            });
        }
        if self.max_tensor_elements == 0 {
            return Err(crate::Error::InvalidOption {
                key: "tabssl.max_tensor_elements",
                value: "0".into(),
                expected: "a positive number of values",
            });
        }
        Ok(())
    }
}
