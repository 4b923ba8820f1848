//! Writing ONNX models: the protobuf encoding (`proto`) and a graph builder (`graph`).
//!
//! tabssl exports the encoders it trains itself, preprocessing included, so it writes
//! ONNX without Python. Reading and running models stays with ONNX Runtime (`tabssl_infer`).
//! Hand-written on purpose: the Rust ONNX crates either read models only or pull in a
//! protobuf code generator and a build step for the few messages written here.

pub(crate) mod graph;
pub(crate) mod proto;

pub use graph::GraphBuilder;
pub use proto::{Attribute, Dim, ElemType, ModelProto};
