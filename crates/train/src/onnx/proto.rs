//! The protobuf wire format of the ONNX messages tabssl writes (onnx.proto3, IR v8).
//!
//! Only encoding, only the fields an exported encoder needs: tensors, value infos, nodes
//! with attributes, the graph and the model with opset imports and metadata. Field
//! numbers follow `onnx/onnx.proto`; a field left at its default is not written.

/// ONNX `TensorProto.DataType` codes used by tabssl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElemType {
    /// 32-bit float.
    Float = 1,
    /// 64-bit signed integer.
    Int64 = 7,
    /// UTF-8 string.
    String = 8,
    /// Boolean.
    Bool = 9,
}

/// A dimension of a graph input or output: fixed or named (symbolic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A symbolic size, such as the batch `N`.
    Named(String),
}

/// A constant tensor (an initializer or a tensor attribute).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorProto {
    /// Name the graph refers to it by.
    pub name: String,
    /// Shape.
    pub dims: Vec<i64>,
    /// Values, row-major.
    pub data: TensorData,
}

/// The values of a [`TensorProto`].
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// `float32` values.
    Float(Vec<f32>),
    /// `int64` values.
    Int64(Vec<i64>),
}

/// A node attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
    /// One integer.
    Int(&'static str, i64),
    /// One float.
    Float(&'static str, f32),
    /// A list of integers.
    Ints(&'static str, Vec<i64>),
    /// A list of strings.
    Strings(&'static str, Vec<String>),
    /// A constant tensor.
    Tensor(&'static str, TensorProto),
}

/// One operator application.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeProto {
    /// Operator type, e.g. `MatMul`.
    pub op_type: String,
    /// Operator domain: empty for `ai.onnx`, `ai.onnx.ml` for the ML operators.
    pub domain: String,
    /// Unique node name.
    pub name: String,
    /// Input value names.
    pub inputs: Vec<String>,
    /// Output value names.
    pub outputs: Vec<String>,
    /// Attributes.
    pub attributes: Vec<Attribute>,
}

/// A graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueInfo {
    /// Value name.
    pub name: String,
    /// Element type.
    pub elem: ElemType,
    /// Shape.
    pub dims: Vec<Dim>,
}

/// A whole model: graph, opsets and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelProto {
    /// Graph name.
    pub graph_name: String,
    /// Nodes in topological order.
    pub nodes: Vec<NodeProto>,
    /// Constant tensors.
    pub initializers: Vec<TensorProto>,
    /// Graph inputs.
    pub inputs: Vec<ValueInfo>,
    /// Graph outputs.
    pub outputs: Vec<ValueInfo>,
    /// `(domain, version)` of each operator set used.
    pub opsets: Vec<(String, i64)>,
    /// `metadata_props` entries.
    pub metadata: Vec<(String, String)>,
    /// Name and version of the producing tool.
    pub producer: (String, String),
}

/// The IR version written: 8 (ONNX 1.10+), understood by every ONNX Runtime tabssl loads.
pub const IR_VERSION: i64 = 8;

impl ModelProto {
    /// The serialized `.onnx` bytes.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer::default();
        out.int(1, IR_VERSION);
        out.string(2, &self.producer.0);
        out.string(3, &self.producer.1);
        out.message(7, &self.encode_graph());
        for (domain, version) in &self.opsets {
            let mut opset = Writer::default();
            opset.string(1, domain);
            opset.int(2, *version);
            out.message(8, &opset.0);
        }
        for (key, value) in &self.metadata {
            let mut entry = Writer::default();
            entry.string(1, key);
            entry.string(2, value);
            out.message(14, &entry.0);
        }
        out.0
    }

    fn encode_graph(&self) -> Vec<u8> {
        let mut graph = Writer::default();
        for node in &self.nodes {
            graph.message(1, &encode_node(node));
        }
        graph.string(2, &self.graph_name);
        for tensor in &self.initializers {
            graph.message(5, &encode_tensor(tensor));
        }
        for input in &self.inputs {
            graph.message(11, &encode_value_info(input));
        }
        for output in &self.outputs {
            graph.message(12, &encode_value_info(output));
        }
        graph.0
    }
}

fn encode_node(node: &NodeProto) -> Vec<u8> {
    let mut out = Writer::default();
    for input in &node.inputs {
        out.string_always(1, input);
    }
    for output in &node.outputs {
        out.string_always(2, output);
    }
    out.string(3, &node.name);
    out.string(4, &node.op_type);
    for attribute in &node.attributes {
        out.message(5, &encode_attribute(attribute));
    }
    out.string(7, &node.domain);
    out.0
}

/// `AttributeProto.AttributeType` codes.
const ATTR_FLOAT: i64 = 1;
const ATTR_INT: i64 = 2;
const ATTR_TENSOR: i64 = 4;
const ATTR_INTS: i64 = 7;
const ATTR_STRINGS: i64 = 8;

fn encode_attribute(attribute: &Attribute) -> Vec<u8> {
    let mut out = Writer::default();
    match attribute {
        Attribute::Int(name, value) => {
            out.string(1, name);
            out.int_always(3, *value);
            out.int(20, ATTR_INT);
        }
        Attribute::Float(name, value) => {
            out.string(1, name);
            out.tag(2, WIRE_FIXED32);
            out.0.extend_from_slice(&value.to_le_bytes());
            out.int(20, ATTR_FLOAT);
        }
        Attribute::Ints(name, values) => {
            out.string(1, name);
            out.packed_ints(8, values);
            out.int(20, ATTR_INTS);
        }
        Attribute::Strings(name, values) => {
            out.string(1, name);
            for value in values {
                out.string_always(9, value);
            }
            out.int(20, ATTR_STRINGS);
        }
        Attribute::Tensor(name, tensor) => {
            out.string(1, name);
            out.message(5, &encode_tensor(tensor));
            out.int(20, ATTR_TENSOR);
        }
    }
    out.0
}

fn encode_tensor(tensor: &TensorProto) -> Vec<u8> {
    let mut out = Writer::default();
    out.packed_ints(1, &tensor.dims);
    match &tensor.data {
        TensorData::Float(values) => {
            out.int(2, ElemType::Float as i64);
            let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            out.string(8, &tensor.name);
            out.bytes(9, &raw);
        }
        TensorData::Int64(values) => {
            out.int(2, ElemType::Int64 as i64);
            let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            out.string(8, &tensor.name);
            out.bytes(9, &raw);
        }
    }
    out.0
}

fn encode_value_info(info: &ValueInfo) -> Vec<u8> {
    let mut shape = Writer::default();
    for dim in &info.dims {
        let mut d = Writer::default();
        match dim {
            Dim::Fixed(size) => d.int_always(1, *size),
            Dim::Named(name) => d.string_always(2, name),
        }
        shape.message(1, &d.0);
    }
    let mut tensor_type = Writer::default();
    tensor_type.int(1, info.elem as i64);
    tensor_type.message(2, &shape.0);
    let mut type_proto = Writer::default();
    type_proto.message(1, &tensor_type.0);
    let mut out = Writer::default();
    out.string(1, &info.name);
    out.message(2, &type_proto.0);
    out.0
}

const WIRE_VARINT: u64 = 0;
const WIRE_LEN: u64 = 2;
const WIRE_FIXED32: u64 = 5;

/// A protobuf byte buffer with one method per wire shape.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            // Truncation to the low 7 bits is the encoding.
            #[allow(clippy::cast_possible_truncation)]
            self.0.push((value as u8 & 0x7F) | 0x80);
            value >>= 7;
        }
        #[allow(clippy::cast_possible_truncation)]
        self.0.push(value as u8);
    }

    fn tag(&mut self, field: u64, wire: u64) {
        self.varint((field << 3) | wire);
    }

    /// An int64/int32/enum field; negative values take ten bytes (two's complement).
    #[allow(clippy::cast_sign_loss)]
    fn int_always(&mut self, field: u64, value: i64) {
        self.tag(field, WIRE_VARINT);
        self.varint(value as u64);
    }

    fn int(&mut self, field: u64, value: i64) {
        if value != 0 {
            self.int_always(field, value);
        }
    }

    fn bytes(&mut self, field: u64, value: &[u8]) {
        self.tag(field, WIRE_LEN);
        self.varint(value.len() as u64);
        self.0.extend_from_slice(value);
    }

    /// A repeated string element: written even when empty (it still counts).
    fn string_always(&mut self, field: u64, value: &str) {
        self.bytes(field, value.as_bytes());
    }

    fn string(&mut self, field: u64, value: &str) {
        if !value.is_empty() {
            self.string_always(field, value);
        }
    }

    fn message(&mut self, field: u64, encoded: &[u8]) {
        self.bytes(field, encoded);
    }

    #[allow(clippy::cast_sign_loss)]
    fn packed_ints(&mut self, field: u64, values: &[i64]) {
        if values.is_empty() {
            return;
        }
        let mut packed = Writer::default();
        for value in values {
            packed.varint(*value as u64);
        }
        self.bytes(field, &packed.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_the_protobuf_examples() {
        let mut w = Writer::default();
        w.varint(1);
        w.varint(300);
        assert_eq!(w.0, vec![0x01, 0xAC, 0x02]);
        let mut negative = Writer::default();
        negative.int_always(1, -1);
        assert_eq!(negative.0.len(), 11, "tag + ten bytes for -1");
    }

    #[test]
    fn empty_strings_in_repeated_fields_are_kept() {
        let node = NodeProto {
            op_type: "Identity".into(),
            domain: String::new(),
            name: "n".into(),
            inputs: vec![String::new()],
            outputs: vec!["y".into()],
            attributes: vec![],
        };
        let encoded = encode_node(&node);
        assert_eq!(&encoded[..2], &[0x0A, 0x00], "an empty optional input is still written");
    }
}
