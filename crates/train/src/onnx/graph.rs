//! A small builder for ONNX graphs: add inputs, constants and nodes by name, get the
//! names of their outputs back, then serialize.

use super::proto::{Attribute, Dim, ElemType, ModelProto, NodeProto, TensorData, TensorProto, ValueInfo};

/// Opset of the default `ai.onnx` domain the builder's graphs use.
pub const ONNX_OPSET: i64 = 17;
/// Opset of the `ai.onnx.ml` domain (`LabelEncoder` with string keys).
pub const ML_OPSET: i64 = 3;
/// The `ai.onnx.ml` domain name.
pub const ML_DOMAIN: &str = "ai.onnx.ml";

/// Builds one graph; every value name it hands out is unique.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfo>,
    outputs: Vec<ValueInfo>,
    next_id: usize,
}

impl GraphBuilder {
    /// An empty graph.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.next_id += 1;
        format!("{hint}__{}", self.next_id)
    }

    /// Declares a graph input and returns its name.
    pub fn input(&mut self, name: &str, elem: ElemType, dims: Vec<Dim>) -> String {
        self.inputs.push(ValueInfo {
            name: name.to_string(),
            elem,
            dims,
        });
        name.to_string()
    }

    /// Declares `value` as a graph output.
    pub fn output(&mut self, value: &str, elem: ElemType, dims: Vec<Dim>) {
        self.outputs.push(ValueInfo {
            name: value.to_string(),
            elem,
            dims,
        });
    }

    /// Adds a `float32` constant and returns its name.
    pub fn constant_f32(&mut self, hint: &str, dims: Vec<i64>, values: Vec<f32>) -> String {
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims,
            data: TensorData::Float(values),
        });
        name
    }

    /// Adds an `int64` constant and returns its name.
    pub fn constant_i64(&mut self, hint: &str, dims: Vec<i64>, values: Vec<i64>) -> String {
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims,
            data: TensorData::Int64(values),
        });
        name
    }

    /// Adds a node with one output in the default domain and returns the output's name.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], attributes: Vec<Attribute>) -> String {
        self.op_in("", op_type, inputs, attributes)
    }

    /// Adds a node with one output in `domain` and returns the output's name.
    pub fn op_in(&mut self, domain: &str, op_type: &str, inputs: &[&str], attributes: Vec<Attribute>) -> String {
        let output = self.fresh(op_type);
        self.nodes.push(NodeProto {
            op_type: op_type.to_string(),
            domain: domain.to_string(),
            name: format!("{output}_node"),
            inputs: inputs.iter().map(ToString::to_string).collect(),
            outputs: vec![output.clone()],
            attributes,
        });
        output
    }

    /// Renames the value `value` to `name` with an `Identity` node (for graph outputs).
    pub fn rename(&mut self, value: &str, name: &str) {
        self.nodes.push(NodeProto {
            op_type: "Identity".into(),
            domain: String::new(),
            name: format!("{name}_identity"),
            inputs: vec![value.to_string()],
            outputs: vec![name.to_string()],
            attributes: vec![],
        });
    }

    /// The finished model, with `metadata_props` entries.
    #[must_use]
    pub fn into_model(self, graph_name: &str, metadata: Vec<(String, String)>) -> ModelProto {
        ModelProto {
            graph_name: graph_name.to_string(),
            nodes: self.nodes,
            initializers: self.initializers,
            inputs: self.inputs,
            outputs: self.outputs,
            opsets: vec![(String::new(), ONNX_OPSET), (ML_DOMAIN.to_string(), ML_OPSET)],
            metadata,
            producer: ("tabssl".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        }
    }
}
