//! tabssl's inference crate: ONNX models from a registry directory, run through ONNX
//! Runtime on the CPU or CUDA execution provider, as the SQL functions `embed` and `predict`
//! and the table function `tabssl_models()`; and the registration of every tabssl function
//! (these and the corruptions of `tabssl-functions`) on DataFusion.
//!
//! It needs DataFusion, ONNX Runtime (loaded at run time) and `tabssl-functions`: no
//! training, evaluation, server or command line. The library loads ONNX Runtime from
//! `ORT_DYLIB_PATH` or a [`RuntimeLocator`]; the `setup` feature ([`setup::install`]) adds
//! the search of the machine and the pip fetch that the command line and the Python package
//! use.

pub mod manifest;
pub(crate) mod model;
pub(crate) mod models_table;
pub(crate) mod registration;
pub(crate) mod registry;
pub(crate) mod runtime;
pub(crate) mod session;
#[cfg(feature = "setup")]
pub mod setup;
pub(crate) mod spec;
pub(crate) mod spread;
pub(crate) mod tensors;
pub(crate) mod udf;

pub use manifest::Manifest;
pub use model::{LoadedModel, content_hash, load_model, load_model_status, replaced_version};
pub use models_table::{ModelsTableFunction, models_table};
pub use registration::{
    aggregate_functions, new_context, new_context_with_config, register, register_all, run_statements,
    scalar_functions, table_functions, with_tabssl,
};
pub use registry::ModelRegistry;
pub use runtime::{ActiveProvider, Flavor, ORT_VERSION, Runtime, RuntimeLocator, runtime, set_locator};
pub use spread::{RULE_NAME, with_spread_inference, without_spread_inference};
pub use tabssl_functions::options::{InferenceSettings, Provider, TabsslOptions};
pub use udf::{InferenceKind, InferenceUdf, MODEL_NAME_KEY, MODEL_SHA256_KEY, embed_udf, predict_udf};

// What the modules share from the functions crate, under the paths they use.
use tabssl_functions::{Error, Result, literal, options};
