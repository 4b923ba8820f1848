//! Arrow arrays in, ONNX Runtime tensors out, and back.
//!
//! The pure conversion layer between a batch of SQL arguments and one model call: no
//! sessions, no DataFusion. Rows whose arguments hold a NULL are dropped before the call
//! ([`row_validity`]) and come back as NULL embeddings, unless the model encodes missing
//! values itself ([`NullPolicy::Encode`]: NaN and [`NULL_STRING`] are passed instead).

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, FixedSizeListArray, Float32Array};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::compute::{cast, filter};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow::error::ArrowError;
use ort::session::SessionInputValue;
use ort::value::{DynValue, Tensor, TensorRef};
use tabssl_ort_strings::string_tensor;

use super::manifest::{NULL_STRING, NullPolicy};
use super::spec::{Arguments, ElementType, InputLayout, ModelSpec};

/// Named input values for one model call, possibly borrowing a session's scratch buffer.
pub type ModelInputs<'a> = Vec<(Cow<'static, str>, SessionInputValue<'a>)>;

/// Validity of each row: valid when every argument (and every element of a list
/// argument) is non-NULL. `None` when all rows are valid.
pub fn row_validity(args: &[ArrayRef]) -> Option<NullBuffer> {
    let mut validity: Option<NullBuffer> = None;
    for arg in args {
        let row_nulls = match arg.data_type() {
            DataType::FixedSizeList(_, _) | DataType::List(_) | DataType::LargeList(_) => list_row_nulls(arg),
            _ => arg.logical_nulls(),
        };
        validity = NullBuffer::union(validity.as_ref(), row_nulls.as_ref());
    }
    validity.filter(|v| v.null_count() > 0)
}

/// A list row is NULL when the list is NULL or any of its elements is.
fn list_row_nulls(arg: &ArrayRef) -> Option<NullBuffer> {
    let row_has_null = |i: usize| -> bool {
        if arg.is_null(i) {
            return true;
        }
        let element = match arg.data_type() {
            DataType::FixedSizeList(_, _) => arg.as_fixed_size_list().value(i),
            DataType::List(_) => arg.as_list::<i32>().value(i),
            _ => arg.as_list::<i64>().value(i),
        };
        element.null_count() > 0
    };
    let any_element_null = match arg.data_type() {
        DataType::FixedSizeList(_, _) => arg.as_fixed_size_list().values().null_count() > 0,
        DataType::List(_) => arg.as_list::<i32>().values().null_count() > 0,
        _ => arg.as_list::<i64>().values().null_count() > 0,
    };
    if !any_element_null {
        return arg.logical_nulls();
    }
    let valid: BooleanBuffer = (0..arg.len()).map(|i| !row_has_null(i)).collect();
    Some(NullBuffer::new(valid))
}

/// Keeps only the valid rows of every argument.
///
/// # Errors
/// Arrow errors from `filter`.
pub fn compact(args: &[ArrayRef], validity: &NullBuffer) -> Result<Vec<ArrayRef>, ArrowError> {
    let keep = BooleanArray::new(validity.inner().clone(), None);
    args.iter().map(|arg| filter(arg, &keep)).collect()
}

/// Builds the named input tensors for rows `offset..offset + rows` of `args`, padded with
/// zeros (empty strings) up to `padded_rows` for graphs with a fixed batch size.
///
/// # Errors
/// Casting or tensor-creation failures, as text.
pub fn build_inputs<'a>(
    spec: &ModelSpec,
    arguments: Arguments,
    args: &[ArrayRef],
    offset: usize,
    rows: usize,
    padded_rows: usize,
    scratch: &'a mut Vec<f32>,
) -> crate::Result<ModelInputs<'a>> {
    let slice = |a: &ArrayRef| a.slice(offset, rows);
    match &spec.layout {
        InputLayout::Packed { name, dtype, width, .. } => {
            let shape = vec![padded_rows as i64, *width as i64];
            let value = match dtype {
                ElementType::Float64 => {
                    let mut data = Vec::new();
                    pack::<Float64Type>(arguments, args, offset, rows, *width, padded_rows, &mut data)?;
                    tensor_value((shape, data))?
                }
                _ => {
                    pack::<Float32Type>(arguments, args, offset, rows, *width, padded_rows, scratch)?;
                    let view = TensorRef::from_array_view((shape, scratch.as_slice()))?;
                    SessionInputValue::from(view)
                }
            };
            Ok(vec![(Cow::Owned(name.clone()), value)])
        }
        InputLayout::PerColumn(inputs) => inputs
            .iter()
            .zip(args)
            .map(|(input, arg)| {
                let shape = if input.rank == 1 {
                    vec![padded_rows as i64]
                } else {
                    vec![padded_rows as i64, 1]
                };
                let arg = slice(arg);
                let encode_nulls = spec.nulls == NullPolicy::Encode;
                let value = match input.dtype {
                    ElementType::Float32 => {
                        let mut data = primitive_values::<Float32Type>(&arg, padded_rows)?;
                        if encode_nulls {
                            nulls_to_nan(&arg, &mut data, f32::NAN);
                        }
                        tensor_value((shape, data))?
                    }
                    ElementType::Float64 => {
                        let mut data = primitive_values::<Float64Type>(&arg, padded_rows)?;
                        if encode_nulls {
                            nulls_to_nan(&arg, &mut data, f64::NAN);
                        }
                        tensor_value((shape, data))?
                    }
                    ElementType::Int64 => tensor_value((shape, primitive_values::<Int64Type>(&arg, padded_rows)?))?,
                    ElementType::Int32 => tensor_value((shape, primitive_values::<Int32Type>(&arg, padded_rows)?))?,
                    ElementType::Bool => {
                        let cast_arg = cast(&arg, &DataType::Boolean)?;
                        let mut data: Vec<bool> = cast_arg.as_boolean().values().iter().collect();
                        data.resize(padded_rows, false);
                        tensor_value((shape, data))?
                    }
                    ElementType::String => string_value(&arg, shape, padded_rows, encode_nulls)?,
                };
                Ok((Cow::Owned(input.name.clone()), value))
            })
            .collect(),
    }
}

fn tensor_value<T: ort::value::PrimitiveTensorElementType + std::fmt::Debug + Clone + 'static>(
    data: (Vec<i64>, Vec<T>),
) -> crate::Result<SessionInputValue<'static>> {
    let tensor = Tensor::from_array(data)?;
    Ok(SessionInputValue::from(tensor.into_dyn()))
}

/// Puts `nan` where `arg` is NULL (the [`NullPolicy::Encode`] convention).
fn nulls_to_nan<T: Copy>(arg: &ArrayRef, data: &mut [T], nan: T) {
    if let Some(nulls) = arg.logical_nulls() {
        for (value, valid) in data.iter_mut().zip(nulls.iter()) {
            if !valid {
                *value = nan;
            }
        }
    }
}

fn string_value(
    arg: &ArrayRef,
    shape: Vec<i64>,
    padded_rows: usize,
    encode_nulls: bool,
) -> crate::Result<SessionInputValue<'static>> {
    // Each cell is copied once, into the string ONNX Runtime allocates for it; a NULL is
    // NULL_STRING (encoded) or an empty string (its row's result is dropped).
    let null: &[u8] = if encode_nulls { NULL_STRING.as_bytes() } else { b"" };
    fn cell<'a>(null: &'a [u8]) -> impl Fn(Option<&'a str>) -> &'a [u8] {
        move |value| value.map_or(null, str::as_bytes)
    }
    let tensor = match arg.data_type() {
        DataType::Utf8 => string_tensor(&shape, arg.as_string::<i32>().iter().map(cell(null)))?,
        DataType::LargeUtf8 => string_tensor(&shape, arg.as_string::<i64>().iter().map(cell(null)))?,
        DataType::Utf8View => string_tensor(&shape, arg.as_string_view().iter().map(cell(null)))?,
        _ => {
            let strings = cast(arg, &DataType::Utf8)?;
            string_tensor(&shape, strings.as_string::<i32>().iter().map(cell(null)))?
        }
    };
    debug_assert!(arg.len() <= padded_rows);
    Ok(SessionInputValue::from(tensor))
}

/// Values of a numeric argument cast to `T`, padded with zeros.
fn primitive_values<T: arrow::datatypes::ArrowPrimitiveType>(
    arg: &ArrayRef,
    padded_rows: usize,
) -> crate::Result<Vec<T::Native>> {
    let cast_arg = cast(arg, &T::DATA_TYPE)?;
    let mut data = cast_arg.as_primitive::<T>().values().to_vec();
    data.resize(padded_rows, T::Native::default());
    Ok(data)
}

/// Fills `data` with row-major `[padded_rows, width]` values from `width` numeric columns
/// or one list column, reusing its allocation.
fn pack<T>(
    arguments: Arguments,
    args: &[ArrayRef],
    offset: usize,
    rows: usize,
    width: usize,
    padded_rows: usize,
    data: &mut Vec<T::Native>,
) -> crate::Result<()>
where
    T: ArrowPrimitiveType,
    T::Native: PackTarget,
{
    // Every value of the first `rows` rows is written below; only padding needs zeros.
    data.resize(padded_rows * width, T::Native::default());
    data[rows * width..].fill(T::Native::default());
    match arguments {
        Arguments::Columns => {
            let out = &mut data[..rows * width];
            for (j, arg) in args.iter().enumerate() {
                let column = arg.slice(offset, rows);
                if !T::Native::write_column(&column, out, width, j) {
                    // Types without a direct conversion (decimals, booleans): Arrow's cast.
                    let cast_column = cast(&column, &T::DATA_TYPE)?;
                    T::Native::write_column(&cast_column, out, width, j);
                }
            }
        }
        Arguments::Vector => {
            let list_type = DataType::FixedSizeList(Arc::new(Field::new_list_field(T::DATA_TYPE, true)), width as i32);
            let list = cast(&args[0].slice(offset, rows), &list_type).map_err(|e| {
                crate::Error::InvalidData(format!(
                    "the list argument must hold exactly {width} numbers per row: {e}"
                ))
            })?;
            let list = list.as_fixed_size_list();
            let start = list.value_offset(0) as usize;
            let values = list.values().as_primitive::<T>().values();
            data[..rows * width].copy_from_slice(&values[start..start + rows * width]);
        }
    }
    Ok(())
}

/// Writes `values` into column `j` of the row-major `[values.len(), width]` buffer `out`.
fn write_strided<S: NumericAs<D>, D>(values: &[S], out: &mut [D], width: usize, j: usize) {
    for (row, &value) in out.chunks_exact_mut(width).zip(values) {
        row[j] = value.numeric_as();
    }
}

/// Rust's `as` between primitive numbers: integers round to the nearest float, a float
/// narrows with rounding (±inf beyond range). The semantics of Arrow's numeric cast.
trait NumericAs<D>: Copy {
    fn numeric_as(self) -> D;
}

/// Element types of a packed float input, filled straight from Arrow numeric columns.
trait PackTarget: Copy + Default {
    /// Converts a primitive numeric column into column `j` of the row-major `out`;
    /// `false` when the column's type has no direct conversion.
    fn write_column(column: &ArrayRef, out: &mut [Self], width: usize, j: usize) -> bool;
}

macro_rules! pack_target {
    ($target:ty, $target_arrow:ty: $(($data_type:ident, $arrow:ty, $native:ty)),*) => {
        $(
            impl NumericAs<$target> for $native {
                #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_lossless)]
                fn numeric_as(self) -> $target {
                    self as $target
                }
            }
        )*
        impl NumericAs<$target> for $target {
            fn numeric_as(self) -> $target {
                self
            }
        }
        impl PackTarget for $target {
            fn write_column(column: &ArrayRef, out: &mut [Self], width: usize, j: usize) -> bool {
                match column.data_type() {
                    $(DataType::$data_type => write_strided(column.as_primitive::<$arrow>().values(), out, width, j),)*
                    dt if *dt == <$target_arrow>::DATA_TYPE => {
                        write_strided(column.as_primitive::<$target_arrow>().values(), out, width, j)
                    }
                    _ => return false,
                }
                true
            }
        }
    };
}

pack_target!(f32, Float32Type: (Int8, Int8Type, i8), (Int16, Int16Type, i16), (Int32, Int32Type, i32),
    (Int64, Int64Type, i64), (UInt8, UInt8Type, u8), (UInt16, UInt16Type, u16), (UInt32, UInt32Type, u32),
    (UInt64, UInt64Type, u64), (Float64, Float64Type, f64));
pack_target!(f64, Float64Type: (Int8, Int8Type, i8), (Int16, Int16Type, i16), (Int32, Int32Type, i32),
    (Int64, Int64Type, i64), (UInt8, UInt8Type, u8), (UInt16, UInt16Type, u16), (UInt32, UInt32Type, u32),
    (UInt64, UInt64Type, u64), (Float32, Float32Type, f32));

/// Appends a `[rows, width]` (or `[rows]`) float output to `out` as row-major f32 values.
///
/// # Errors
/// When the output is missing, of another type, or of an unexpected shape.
pub fn output_values(value: &DynValue, spec: &ModelSpec, rows: usize, out: &mut Vec<f32>) -> crate::Result<()> {
    let (shape, data): (Vec<i64>, Cow<'_, [f32]>) = match spec.output_dtype {
        ElementType::Float64 => {
            let (shape, data) = value.try_extract_tensor::<f64>()?;
            #[allow(clippy::cast_possible_truncation)]
            let data: Vec<f32> = data.iter().map(|&v| v as f32).collect();
            (shape.to_vec(), Cow::Owned(data))
        }
        _ => {
            let (shape, data) = value.try_extract_tensor::<f32>()?;
            (shape.to_vec(), Cow::Borrowed(data))
        }
    };
    let expected = rows * spec.width;
    let shape_ok = match shape.as_slice() {
        [n] => spec.width == 1 && usize::try_from(*n).is_ok_and(|n| n >= rows),
        [n, d] => usize::try_from(*d).is_ok_and(|d| d == spec.width) && usize::try_from(*n).is_ok_and(|n| n >= rows),
        _ => false,
    };
    if !shape_ok || data.len() < expected {
        return Err(crate::Error::InvalidData(format!(
            "output '{}' has shape {shape:?}; expected [{rows}, {}]",
            spec.output, spec.width
        )));
    }
    out.extend_from_slice(&data[..expected]);
    Ok(())
}

/// Assembles the `FixedSizeList<Float32, width>` result for `total_rows` rows from the
/// values of the valid rows, placing NULLs where `validity` says so.
///
/// # Errors
/// Arrow errors when building the array.
pub fn embedding_array(
    values: Vec<f32>,
    width: usize,
    total_rows: usize,
    validity: Option<NullBuffer>,
) -> Result<FixedSizeListArray, ArrowError> {
    let values = match &validity {
        None => values,
        Some(validity) => scatter(&values, width, total_rows, validity),
    };
    let field = Arc::new(Field::new_list_field(DataType::Float32, true));
    FixedSizeListArray::try_new(field, width as i32, Arc::new(Float32Array::from(values)), validity)
}

/// The Float32 result of `predict` (width 1).
pub fn prediction_array(values: Vec<f32>, total_rows: usize, validity: Option<NullBuffer>) -> Float32Array {
    let values = match &validity {
        None => values,
        Some(validity) => scatter(&values, 1, total_rows, validity),
    };
    Float32Array::new(values.into(), validity)
}

/// Spreads the compacted rows back to their places; NULL rows get zeros.
fn scatter(values: &[f32], width: usize, total_rows: usize, validity: &NullBuffer) -> Vec<f32> {
    let mut out = vec![0.0; total_rows * width];
    for (compact_row, row) in validity.valid_indices().enumerate() {
        out[row * width..(row + 1) * width].copy_from_slice(&values[compact_row * width..(compact_row + 1) * width]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, ListArray, StringArray};
    use arrow::datatypes::Int32Type as I32;

    #[test]
    fn validity_joins_all_arguments_and_list_elements() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(4)]));
        let b: ArrayRef = Arc::new(StringArray::from(vec![Some("x"), Some("y"), None, Some("z")]));
        let validity = row_validity(&[a, b]).expect("some rows are null");
        assert_eq!(validity.iter().collect::<Vec<_>>(), [true, false, false, true]);

        let list: ArrayRef = Arc::new(ListArray::from_iter_primitive::<I32, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            Some(vec![Some(1), None]),
            None,
        ]));
        let validity = row_validity(&[list]).expect("some rows are null");
        assert_eq!(validity.iter().collect::<Vec<_>>(), [true, false, false]);
    }

    #[test]
    fn all_valid_rows_need_no_validity() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        assert!(row_validity(&[a]).is_none());
    }

    #[test]
    fn scatter_puts_rows_back_and_nulls_between() {
        let validity = NullBuffer::from(vec![true, false, true]);
        let array = embedding_array(vec![1.0, 2.0, 3.0, 4.0], 2, 3, Some(validity)).expect("array");
        assert!(array.is_null(1));
        let values = array.values().as_primitive::<Float32Type>().values().to_vec();
        assert_eq!(values, [1.0, 2.0, 0.0, 0.0, 3.0, 4.0]);
    }
}
