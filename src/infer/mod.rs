//! Embedded inference: ONNX models from a registry directory, run through ONNX Runtime on
//! the CPU or CUDA execution provider, as the SQL functions `embed` and `predict` and the
//! table function `tabssl_models()`.

pub mod manifest;
pub mod model;
pub mod models_table;
pub mod registry;
pub mod runtime;
pub mod session;
pub mod spec;
pub mod spread;
pub mod tensors;
pub mod udf;
