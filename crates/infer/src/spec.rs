//! What a model takes and returns, read from its graph and checked against its manifest,
//! and how SQL arguments bind to it.
//!
//! Two input layouts are supported, the two that real tabular encoders have:
//! - **packed**: one float tensor `[batch, d]` (the usual PyTorch export). SQL passes `d`
//!   numeric columns (any numeric type, cast to the tensor's type) or one list column of
//!   length `d`.
//! - **per column**: one named input per feature, `[batch]` or `[batch, 1]`, of type
//!   float32, float64, int64, int32, string or bool. SQL passes one argument per input,
//!   in the manifest's order (or the graph's, without a manifest).

use std::fmt::Write as _;

use arrow::datatypes::DataType;
use ort::value::{Outlet, TensorElementType, ValueType};

use super::manifest::{Manifest, NullPolicy};

/// Element types tabssl can feed to or read from a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementType {
    /// 32-bit float.
    Float32,
    /// 64-bit float.
    Float64,
    /// 64-bit signed integer.
    Int64,
    /// 32-bit signed integer.
    Int32,
    /// UTF-8 string.
    String,
    /// Boolean.
    Bool,
}

impl ElementType {
    fn from_ort(ty: TensorElementType) -> Option<Self> {
        Some(match ty {
            TensorElementType::Float32 => Self::Float32,
            TensorElementType::Float64 => Self::Float64,
            TensorElementType::Int64 => Self::Int64,
            TensorElementType::Int32 => Self::Int32,
            TensorElementType::String => Self::String,
            TensorElementType::Bool => Self::Bool,
            _ => return None,
        })
    }

    /// The name used in manifests and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Float32 => "float32",
            Self::Float64 => "float64",
            Self::Int64 => "int64",
            Self::Int32 => "int32",
            Self::String => "string",
            Self::Bool => "bool",
        }
    }

    fn is_float(self) -> bool {
        matches!(self, Self::Float32 | Self::Float64)
    }

    /// Whether a SQL argument of type `dt` can be fed to an input of this type without
    /// losing information silently (integers are never fed from floats).
    pub fn accepts(self, dt: &DataType) -> bool {
        if dt == &DataType::Null {
            return true;
        }
        match self {
            Self::Float32 | Self::Float64 => dt.is_numeric(),
            Self::Int64 | Self::Int32 => dt.is_integer(),
            Self::Bool => dt == &DataType::Boolean,
            Self::String => is_string(dt),
        }
    }
}

fn is_string(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_string(value),
        _ => false,
    }
}

/// One per-column graph input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInput {
    /// Graph input name.
    pub name: String,
    /// Element type.
    pub dtype: ElementType,
    /// 1 for `[batch]`, 2 for `[batch, 1]`.
    pub rank: usize,
}

/// How the graph's inputs are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputLayout {
    /// One float tensor `[batch, width]`.
    Packed {
        /// Graph input name.
        name: String,
        /// Float32 or Float64.
        dtype: ElementType,
        /// Number of features d.
        width: usize,
        /// Column names filling the tensor, from the manifest (messages say `x[i]` without).
        columns: Option<Vec<String>>,
    },
    /// One input per feature column.
    PerColumn(Vec<ColumnInput>),
}

/// The name of column `i` of a packed input: the manifest's, else `x[i]`.
fn packed_column(columns: Option<&Vec<String>>, i: usize) -> String {
    columns
        .and_then(|names| names.get(i).cloned())
        .unwrap_or_else(|| format!("x[{i}]"))
}

/// How the SQL arguments of one call fill a packed input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arguments {
    /// One argument per feature (or per input, for per-column models).
    Columns,
    /// One list argument holding the whole feature vector.
    Vector,
}

/// Everything tabssl needs to know to run a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// Input layout.
    pub layout: InputLayout,
    /// Graph output returned to SQL.
    pub output: String,
    /// Output element type (Float32 or Float64; returned as Float32).
    pub output_dtype: ElementType,
    /// Output width D.
    pub width: usize,
    /// When the graph fixes the batch dimension (an export without a dynamic axis), rows
    /// are fed in chunks of exactly this size.
    pub fixed_batch: Option<usize>,
    /// What the graph receives for NULL arguments.
    pub nulls: NullPolicy,
}

/// Reads `(element type, dims)` of a tensor outlet.
fn tensor_of(outlet: &Outlet) -> crate::Result<(TensorElementType, Vec<i64>)> {
    match outlet.dtype() {
        ValueType::Tensor { ty, shape, .. } => Ok((*ty, shape.to_vec())),
        other => Err(crate::Error::Invalid(format!(
            "'{}' is a {other:?}, not a tensor",
            outlet.name()
        ))),
    }
}

impl ModelSpec {
    /// Derives the spec from the graph's inputs and outputs, checking the manifest (when
    /// there is one) against them.
    ///
    /// # Errors
    /// A message saying what is unsupported or where manifest and graph disagree.
    pub fn from_graph(inputs: &[Outlet], outputs: &[Outlet], manifest: Option<&Manifest>) -> crate::Result<Self> {
        let ordered = order_inputs(inputs, manifest)?;
        let mut batch_dims = Vec::new();
        let layout = match packed_input(&ordered, manifest)? {
            Some((layout, batch)) => {
                batch_dims.push(batch);
                layout
            }
            None => {
                let mut columns = Vec::with_capacity(ordered.len());
                for (outlet, spec_dtype) in &ordered {
                    let (ty, dims) = tensor_of(outlet)?;
                    let dtype = ElementType::from_ort(ty).ok_or_else(|| {
                        crate::Error::Invalid(format!("input '{}' has element type {ty:?}; supported: float32, float64, int64, int32, string, bool", outlet.name()))
                    })?;
                    check_dtype(outlet.name(), dtype, spec_dtype.as_deref())?;
                    let rank = match dims.as_slice() {
                        [_] => 1,
                        [_, 1] => 2,
                        _ => {
                            return Err(crate::Error::Invalid(format!(
                                "input '{}' has shape {dims:?}; a per-column input must be [batch] or [batch, 1], \
                                 and a packed input must be the model's only input",
                                outlet.name()
                            )));
                        }
                    };
                    batch_dims.push(dims[0]);
                    columns.push(ColumnInput {
                        name: outlet.name().to_string(),
                        dtype,
                        rank,
                    });
                }
                InputLayout::PerColumn(columns)
            }
        };
        let fixed_batch = fixed_batch(&batch_dims)?;
        let (output, output_dtype, width) = output_of(outputs, manifest)?;
        let nulls = manifest.and_then(|m| m.nulls).unwrap_or_default();
        if nulls == NullPolicy::Encode {
            let encodable = match &layout {
                InputLayout::PerColumn(columns) => columns.iter().all(|c| {
                    matches!(
                        c.dtype,
                        ElementType::Float32 | ElementType::Float64 | ElementType::String
                    )
                }),
                InputLayout::Packed { .. } => false,
            };
            if !encodable {
                return Err(crate::Error::invalid(
                    "the manifest says \"nulls\": \"encode\", which needs per-column float32, float64 or \
                     string inputs (NULL is passed as NaN or a marker string)",
                ));
            }
        }
        Ok(Self {
            layout,
            output,
            output_dtype,
            width,
            fixed_batch,
            nulls,
        })
    }

    /// Values one row feeds the model: the packed width, or one per per-column input.
    pub fn input_width(&self) -> usize {
        match &self.layout {
            InputLayout::Packed { width, .. } => *width,
            InputLayout::PerColumn(inputs) => inputs.len(),
        }
    }

    /// Rows per model call so that no input or output tensor holds more than
    /// `max_elements` values (the graph's fixed batch, when it has one).
    pub fn rows_per_call(&self, max_elements: usize) -> usize {
        self.fixed_batch
            .unwrap_or_else(|| max_elements / self.input_width().max(self.width).max(1))
            .max(1)
    }

    /// Checks that one model call fits `max_elements` values per tensor.
    ///
    /// # Errors
    /// A message naming the width or fixed batch that does not fit, the limit, and how to
    /// raise it.
    pub fn check_size(&self, max_elements: usize) -> crate::Result<()> {
        let widest = self.input_width().max(self.width);
        let rows = self.fixed_batch.unwrap_or(1);
        let elements = rows.checked_mul(widest);
        if elements.is_none_or(|e| e > max_elements) {
            let what = match self.fixed_batch {
                Some(batch) => format!("its fixed batch of {batch} rows × {widest} values"),
                None => format!("one row of {widest} values"),
            };
            return Err(crate::Error::Invalid(format!(
                "{what} (inputs {}, output {}) is more than tabssl.max_tensor_elements = {max_elements} \
                 values per call; raise it with SET tabssl.max_tensor_elements = N if the model is genuine",
                self.input_width(),
                self.width
            )));
        }
        Ok(())
    }

    /// Human-readable list of the expected SQL arguments after the model name (at most
    /// [`LISTED_NAMES`] names; a count for the rest).
    pub fn expected_arguments(&self) -> String {
        match &self.layout {
            InputLayout::Packed {
                name,
                dtype,
                width,
                columns,
            } => {
                let shown: Vec<String> = (0..(*width).min(LISTED_NAMES + 1))
                    .map(|i| packed_column(columns.as_ref(), i))
                    .collect();
                format!(
                    "{width} numeric arguments ({}) packed into input '{name}' {}[batch, {width}], \
                     or one list argument of length {width}",
                    listed_with_total(shown.iter().map(String::as_str), *width),
                    dtype.name()
                )
            }
            InputLayout::PerColumn(inputs) => {
                let described: Vec<String> = inputs
                    .iter()
                    .take(LISTED_NAMES + 1)
                    .map(|i| format!("{} {}", i.name, i.dtype.name()))
                    .collect();
                let mut out = format!("{} arguments: ", inputs.len());
                out.push_str(&listed_with_total(described.iter().map(String::as_str), inputs.len()));
                out
            }
        }
    }

    /// Checks the SQL argument types (after the model name) against the inputs.
    ///
    /// # Errors
    /// A message naming the offending argument and listing what was expected.
    pub fn bind(&self, arg_types: &[DataType]) -> crate::Result<Arguments> {
        let got = || {
            let types: Vec<String> = arg_types.iter().map(ToString::to_string).collect();
            format!("got {} ({})", arg_types.len(), listed(types.iter().map(String::as_str)))
        };
        match &self.layout {
            InputLayout::Packed { width, columns, .. } => {
                if arg_types.len() == *width {
                    if let Some((i, dt)) = arg_types
                        .iter()
                        .enumerate()
                        .find(|(_, dt)| !ElementType::Float32.accepts(dt))
                    {
                        return Err(crate::Error::Invalid(format!(
                            "argument {} ({}) has type {dt}, expected a numeric type; expected {}",
                            i + 2,
                            packed_column(columns.as_ref(), i),
                            self.expected_arguments()
                        )));
                    }
                    return Ok(Arguments::Columns);
                }
                if let [dt] = arg_types
                    && list_fits(dt, *width)
                {
                    return Ok(Arguments::Vector);
                }
                Err(crate::Error::Invalid(format!(
                    "expected {}; {}",
                    self.expected_arguments(),
                    got()
                )))
            }
            InputLayout::PerColumn(inputs) => {
                if arg_types.len() != inputs.len() {
                    return Err(crate::Error::Invalid(format!(
                        "expected {}; {}",
                        self.expected_arguments(),
                        got()
                    )));
                }
                for (i, (input, dt)) in inputs.iter().zip(arg_types).enumerate() {
                    if !input.dtype.accepts(dt) {
                        return Err(crate::Error::Invalid(format!(
                            "argument {} has type {dt} but input '{}' is {}; expected {}",
                            i + 2,
                            input.name,
                            input.dtype.name(),
                            self.expected_arguments()
                        )));
                    }
                }
                Ok(Arguments::Columns)
            }
        }
    }
}

/// Most names a message lists; the rest are counted.
pub const LISTED_NAMES: usize = 20;

/// `names` joined with commas, cut after [`LISTED_NAMES`] with a count of the rest.
pub fn listed<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> String {
    let total = names.len();
    listed_with_total(names, total)
}

fn listed_with_total<'a>(names: impl Iterator<Item = &'a str>, total: usize) -> String {
    let shown: Vec<&str> = names.take(LISTED_NAMES).collect();
    let mut out = shown.join(", ");
    if total > shown.len() {
        let _ = write!(out, ", ... ({} more)", total - shown.len());
    }
    out
}

/// Whether `dt` is a numeric list that can hold `width` values.
fn list_fits(dt: &DataType, width: usize) -> bool {
    match dt {
        DataType::FixedSizeList(field, n) => {
            usize::try_from(*n).is_ok_and(|n| n == width) && field.data_type().is_numeric()
        }
        DataType::List(field) | DataType::LargeList(field) => field.data_type().is_numeric(),
        _ => false,
    }
}

/// Graph inputs in binding order, each with the manifest's declared dtype.
fn order_inputs<'a>(
    inputs: &'a [Outlet],
    manifest: Option<&Manifest>,
) -> crate::Result<Vec<(&'a Outlet, Option<String>)>> {
    let Some(specs) = manifest.and_then(|m| m.inputs.as_ref()) else {
        return Ok(inputs.iter().map(|outlet| (outlet, None)).collect());
    };
    let graph_names = || listed(inputs.iter().map(Outlet::name));
    if specs.len() != inputs.len() {
        return Err(crate::Error::Invalid(format!(
            "manifest lists {} inputs but the graph has {} ({})",
            specs.len(),
            inputs.len(),
            graph_names()
        )));
    }
    specs
        .iter()
        .map(|spec| {
            inputs
                .iter()
                .find(|outlet| outlet.name() == spec.name)
                .map(|outlet| (outlet, spec.dtype.clone()))
                .ok_or_else(|| {
                    crate::Error::Invalid(format!(
                        "manifest input '{}' is not an input of the graph (graph inputs: {})",
                        spec.name,
                        graph_names()
                    ))
                })
        })
        .collect()
}

/// The packed layout, when the graph's only input is a float `[batch, d]` tensor with
/// d > 1 or the manifest lists its columns.
fn packed_input(
    ordered: &[(&Outlet, Option<String>)],
    manifest: Option<&Manifest>,
) -> crate::Result<Option<(InputLayout, i64)>> {
    let [(outlet, spec_dtype)] = ordered else {
        return Ok(None);
    };
    let (ty, dims) = tensor_of(outlet)?;
    let manifest_columns = manifest
        .and_then(|m| m.inputs.as_ref())
        .and_then(|inputs| inputs.first())
        .and_then(|input| input.columns.clone());
    let dtype = ElementType::from_ort(ty);
    let [batch, d] = dims.as_slice() else {
        return match manifest_columns {
            Some(_) => Err(crate::Error::Invalid(format!(
                "manifest lists columns for input '{}' but its shape is {dims:?}, not [batch, d]",
                outlet.name()
            ))),
            None => Ok(None),
        };
    };
    if *d == 1 && manifest_columns.is_none() {
        return Ok(None);
    }
    let Some(dtype) = dtype.filter(|t| t.is_float()) else {
        return Err(crate::Error::Invalid(format!(
            "packed input '{}' has element type {ty:?}; expected float32 or float64",
            outlet.name()
        )));
    };
    check_dtype(outlet.name(), dtype, spec_dtype.as_deref())?;
    let width = match (usize::try_from(*d).ok(), &manifest_columns) {
        (Some(w), Some(cols)) if cols.len() != w => {
            return Err(crate::Error::Invalid(format!(
                "manifest lists {} columns for input '{}' but the graph's width is {w}",
                cols.len(),
                outlet.name()
            )));
        }
        (Some(w), _) => w,
        (None, Some(cols)) => cols.len(),
        (None, None) => {
            return Err(crate::Error::Invalid(format!(
                "input '{}' has a dynamic width; list its columns in the manifest (inputs[0].columns)",
                outlet.name()
            )));
        }
    };
    let layout = InputLayout::Packed {
        name: outlet.name().to_string(),
        dtype,
        width,
        columns: manifest_columns,
    };
    Ok(Some((layout, *batch)))
}

fn check_dtype(name: &str, graph: ElementType, manifest: Option<&str>) -> crate::Result<()> {
    match manifest {
        Some(declared) if !declared.eq_ignore_ascii_case(graph.name()) => Err(crate::Error::Invalid(format!(
            "manifest says input '{name}' is {declared} but the graph says {}",
            graph.name()
        ))),
        _ => Ok(()),
    }
}

/// The common fixed batch size of all inputs, if the graph fixes one.
fn fixed_batch(dims: &[i64]) -> crate::Result<Option<usize>> {
    let fixed: Vec<usize> = dims
        .iter()
        .filter_map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
        .collect();
    match fixed.split_first() {
        None => Ok(None),
        Some((first, rest)) if rest.iter().all(|d| d == first) && fixed.len() == dims.len() => Ok(Some(*first)),
        Some(_) => {
            let shown: Vec<String> = dims.iter().map(ToString::to_string).collect();
            Err(crate::Error::Invalid(format!(
                "inputs disagree on the batch dimension: {}",
                listed(shown.iter().map(String::as_str))
            )))
        }
    }
}

/// (name, dtype, width) of the output tabssl returns.
fn output_of(outputs: &[Outlet], manifest: Option<&Manifest>) -> crate::Result<(String, ElementType, usize)> {
    let spec = manifest.and_then(|m| m.output.as_ref());
    let outlet = match spec.and_then(|s| s.name.as_deref()) {
        Some(name) => outputs.iter().find(|o| o.name() == name).ok_or_else(|| {
            crate::Error::Invalid(format!(
                "manifest output '{name}' is not an output of the graph (graph outputs: {})",
                listed(outputs.iter().map(Outlet::name))
            ))
        })?,
        None => outputs
            .first()
            .ok_or_else(|| crate::Error::invalid("the graph has no outputs"))?,
    };
    let (ty, dims) = tensor_of(outlet)?;
    let dtype = ElementType::from_ort(ty).filter(|t| t.is_float()).ok_or_else(|| {
        crate::Error::Invalid(format!(
            "output '{}' has element type {ty:?}; expected float32 or float64",
            outlet.name()
        ))
    })?;
    let graph_width = match dims.as_slice() {
        [_] => Some(1),
        [_, d] => usize::try_from(*d).ok(),
        _ => {
            return Err(crate::Error::Invalid(format!(
                "output '{}' has shape {dims:?}; expected [batch, D] or [batch]",
                outlet.name()
            )));
        }
    };
    let width = match (graph_width, spec.and_then(|s| s.width)) {
        (Some(g), Some(m)) if g != m => {
            return Err(crate::Error::Invalid(format!(
                "manifest says output '{}' has width {m} but the graph says {g}",
                outlet.name()
            )));
        }
        (Some(w), _) | (None, Some(w)) => w,
        (None, None) => {
            return Err(crate::Error::Invalid(format!(
                "output '{}' has a dynamic width; state it in the manifest (output.width)",
                outlet.name()
            )));
        }
    };
    if width == 0 {
        return Err(crate::Error::Invalid(format!("output '{}' has width 0", outlet.name())));
    }
    Ok((outlet.name().to_string(), dtype, width))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{InputSpec, OutputSpec};
    use ort::value::{Shape, SymbolicDimensions};

    fn tensor(name: &str, ty: TensorElementType, dims: &[i64]) -> Outlet {
        // Building an outlet calls into ONNX Runtime, so it must be loaded first (without
        // `setup`, from ORT_DYLIB_PATH).
        #[cfg(feature = "setup")]
        crate::setup::install();
        crate::runtime::runtime(crate::options::Provider::Cpu).expect("ONNX Runtime loads");
        Outlet::new(
            name,
            ValueType::Tensor {
                ty,
                shape: Shape::new(dims.iter().copied()),
                dimension_symbols: SymbolicDimensions::empty(dims.len()),
            },
        )
    }

    #[test]
    fn packed_float_input_binds_columns_or_a_list() {
        let spec = ModelSpec::from_graph(
            &[tensor("x", TensorElementType::Float32, &[-1, 3])],
            &[tensor("e", TensorElementType::Float32, &[-1, 8])],
            None,
        )
        .expect("spec");
        assert_eq!(spec.width, 8);
        assert_eq!(spec.fixed_batch, None);
        assert_eq!(
            spec.bind(&[DataType::Int64, DataType::Float64, DataType::UInt8]).ok(),
            Some(Arguments::Columns)
        );
        let list = DataType::new_fixed_size_list(DataType::Float32, 3, true);
        assert_eq!(spec.bind(&[list]).ok(), Some(Arguments::Vector));
        let err = spec
            .bind(&[DataType::Int64, DataType::Utf8, DataType::Int64])
            .expect_err("an error is expected")
            .to_string();
        assert!(err.contains("argument 3 (x[1]) has type Utf8"), "{err}");
        let err = spec
            .bind(&[DataType::Int64])
            .expect_err("an error is expected")
            .to_string();
        assert!(err.contains("expected 3 numeric arguments"), "{err}");
    }

    #[test]
    fn per_column_inputs_follow_manifest_order_and_types() {
        let inputs = [
            tensor("age", TensorElementType::Float32, &[-1]),
            tensor("workclass", TensorElementType::String, &[-1, 1]),
        ];
        let manifest = Manifest {
            inputs: Some(vec![
                InputSpec {
                    name: "workclass".into(),
                    dtype: Some("string".into()),
                    columns: None,
                },
                InputSpec {
                    name: "age".into(),
                    dtype: None,
                    columns: None,
                },
            ]),
            ..Manifest::default()
        };
        let spec = ModelSpec::from_graph(
            &inputs,
            &[tensor("e", TensorElementType::Float32, &[-1, 4])],
            Some(&manifest),
        )
        .expect("spec");
        let InputLayout::PerColumn(columns) = &spec.layout else {
            panic!("expected per-column layout")
        };
        assert_eq!(columns[0].name, "workclass");
        assert_eq!(columns[0].rank, 2);
        assert_eq!(
            spec.bind(&[DataType::Utf8View, DataType::Int32]).ok(),
            Some(Arguments::Columns)
        );
        let err = spec
            .bind(&[DataType::Int32, DataType::Utf8])
            .expect_err("an error is expected")
            .to_string();
        assert!(err.contains("input 'workclass' is string"), "{err}");
    }

    #[test]
    fn integer_inputs_refuse_floats() {
        let spec = ModelSpec::from_graph(
            &[tensor("n", TensorElementType::Int64, &[-1])],
            &[tensor("e", TensorElementType::Float32, &[-1, 2])],
            None,
        )
        .expect("spec");
        assert!(spec.bind(&[DataType::Float64]).is_err());
        assert!(spec.bind(&[DataType::UInt16]).is_ok());
    }

    #[test]
    fn manifest_disagreements_are_reported() {
        let inputs = [tensor("x", TensorElementType::Float32, &[-1, 3])];
        let outputs = [tensor("e", TensorElementType::Float32, &[-1, 8])];
        let wrong_width = Manifest {
            output: Some(OutputSpec {
                name: None,
                width: Some(16),
            }),
            ..Manifest::default()
        };
        let err = ModelSpec::from_graph(&inputs, &outputs, Some(&wrong_width))
            .expect_err("an error is expected")
            .to_string();
        assert!(err.contains("width 16 but the graph says 8"), "{err}");
        let wrong_name = Manifest {
            inputs: Some(vec![InputSpec {
                name: "features".into(),
                dtype: None,
                columns: None,
            }]),
            ..Manifest::default()
        };
        let err = ModelSpec::from_graph(&inputs, &outputs, Some(&wrong_name))
            .expect_err("an error is expected")
            .to_string();
        assert!(
            err.contains("'features' is not an input of the graph (graph inputs: x)"),
            "{err}"
        );
        let wrong_columns = Manifest {
            inputs: Some(vec![InputSpec {
                name: "x".into(),
                dtype: None,
                columns: Some(vec!["a".into()]),
            }]),
            ..Manifest::default()
        };
        let err = ModelSpec::from_graph(&inputs, &outputs, Some(&wrong_columns))
            .expect_err("an error is expected")
            .to_string();
        assert!(err.contains("lists 1 columns"), "{err}");
    }

    #[test]
    fn fixed_batch_and_dynamic_width_are_detected() {
        let spec = ModelSpec::from_graph(
            &[tensor("x", TensorElementType::Float32, &[1, 3])],
            &[tensor("y", TensorElementType::Float32, &[1])],
            None,
        )
        .expect("spec");
        assert_eq!(spec.fixed_batch, Some(1));
        assert_eq!(spec.width, 1);
        let err = ModelSpec::from_graph(
            &[tensor("x", TensorElementType::Float32, &[-1, 3])],
            &[tensor("y", TensorElementType::Float32, &[-1, -1])],
            None,
        )
        .expect_err("an error is expected")
        .to_string();
        assert!(err.contains("dynamic width"), "{err}");
    }
}
