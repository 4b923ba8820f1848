//! Writing ONNX models: the protobuf encoding ([`proto`]) and a graph builder ([`graph`]).
//!
//! tabssl exports the encoders it trains itself, preprocessing included, so it writes
//! ONNX without Python. Reading and running models stays with ONNX Runtime ([`crate::infer`]).

pub mod graph;
pub mod proto;

pub use graph::GraphBuilder;
pub use proto::{Attribute, Dim, ElemType, ModelProto};
