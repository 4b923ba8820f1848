//! Embedded inference: ONNX models from a registry directory, run through ONNX Runtime on
//! the CPU or CUDA execution provider, as the SQL functions `embed` and `predict` and the
//! table function `tabssl_models()`.

pub(crate) mod manifest;
pub(crate) mod model;
pub(crate) mod models_table;
pub(crate) mod registry;
pub(crate) mod runtime;
pub(crate) mod session;
pub(crate) mod spec;
pub(crate) mod spread;
pub(crate) mod tensors;
pub(crate) mod udf;

pub use manifest::Manifest;
pub use model::{LoadedModel, content_hash, load_model};
pub use models_table::{ModelsTableFunction, models_table};
pub use registry::ModelRegistry;
pub use runtime::{ActiveProvider, Flavor, ORT_VERSION, Runtime, RuntimeLocator, runtime, set_locator};
pub use spread::{RULE_NAME, with_spread_inference, without_spread_inference};
pub use udf::{InferenceKind, InferenceUdf, embed_udf, predict_udf};
