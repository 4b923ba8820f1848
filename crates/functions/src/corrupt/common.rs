//! What every corruption function shares: the argument convention, the checks of literal
//! parameters, the per-cell draws, and the DataFusion glue.
//!
//! Every function is called as `f(x, <method parameters>, p, seed, key [, view])`:
//! - `x`: the column to corrupt. Its name (the argument's field name, which is the column
//!   name for a plain column reference) keys its randomness, so columns get independent
//!   draws under one seed.
//! - `p`: the probability that a cell is corrupted, a literal in [0, 1].
//! - `seed`: a non-negative integer literal.
//! - `key`: the row key, an integer or string column (or literal); NULL keys are errors.
//! - `view`: optional integer (column or literal, default 0), the index of the augmented
//!   copy when one row is emitted K times.
//!
//! The cell's Bernoulli(p) draw is the same in every function for the same
//! (seed, column, key, view, p), so `corrupt_mask` returns exactly the cells that
//! `corrupt_swap`, `corrupt_noise` or `corrupt_fill` changed.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::buffer::BooleanBuffer;
use arrow::compute::interleave;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::literal::literal_value;
use crate::rng::{CellRng, column_seed, is_key_type, key_hashes, key_type_error};

/// One corruption method: what sits between the shared arguments and the output column.
pub trait Corruption: Debug + PartialEq + Eq + Hash + Send + Sync + 'static {
    /// The SQL function name.
    fn name(&self) -> &'static str;

    /// Names of the literal parameters between `x` and `p`, in order.
    fn params(&self) -> &'static [&'static str];

    /// The output type for a column `x` and the method's parameters, checked at plan time.
    ///
    /// # Errors
    /// When the column type or a parameter is not supported.
    fn return_type(&self, x: &Field, params: &[ScalarValue]) -> Result<DataType>;

    /// Whether the output can hold NULLs.
    fn nullable(&self, x: &Field, _params: &[ScalarValue]) -> bool {
        x.is_nullable()
    }

    /// Corrupts one batch of `x`.
    ///
    /// # Errors
    /// When the data makes the corruption impossible (e.g. no donor values).
    fn corrupt(&self, x: &ArrayRef, x_field: &Field, params: &[ScalarValue], draws: &Draws) -> Result<ArrayRef>;

    /// The function's documentation.
    fn documentation(&self) -> &Documentation;
}

/// The draws of one batch: a generator per row, and the cells to corrupt.
#[derive(Debug)]
pub struct Draws {
    /// One generator per row.
    pub cells: Vec<CellRng>,
    /// True where the Bernoulli(p) draw fired and `x` is not NULL.
    pub mask: BooleanBuffer,
}

impl Draws {
    /// How many cells are corrupted.
    pub fn corrupted(&self) -> usize {
        self.mask.count_set_bits()
    }

    /// `x` with every corrupted cell replaced by `replacements[replacement(row, cell)]`,
    /// built in one element-wise interleave (a take plus a zip would copy run by run, and a
    /// random mask makes runs of a few rows).
    ///
    /// # Errors
    /// When the two arrays' types differ.
    pub fn replace(
        &self,
        x: &ArrayRef,
        replacements: &dyn Array,
        replacement: impl Fn(usize, CellRng) -> usize,
    ) -> Result<ArrayRef> {
        let indices: Vec<(usize, usize)> = self
            .cells
            .iter()
            .zip(self.mask.iter())
            .enumerate()
            .map(|(row, (&cell, corrupted))| {
                if corrupted {
                    (1, replacement(row, cell))
                } else {
                    (0, row)
                }
            })
            .collect();
        Ok(interleave(&[x.as_ref(), replacements], &indices)?)
    }
}

/// A corruption method as a DataFusion scalar UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CorruptUdf<C> {
    method: C,
    signature: Signature,
}

impl<C: Corruption> CorruptUdf<C> {
    /// The UDF for `method`.
    pub fn new(method: C) -> Self {
        Self {
            method,
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }

    /// Positions of p, seed, key and the optional view, after checking the arity.
    fn layout(&self, arity: usize) -> Result<Layout> {
        let params = self.method.params().len();
        let required = 1 + params + 3;
        if arity != required && arity != required + 1 {
            return plan_err!(
                "{} takes {required} or {} arguments, {}; got {arity}",
                self.method.name(),
                required + 1,
                self.usage()
            );
        }
        Ok(Layout {
            params: 1..1 + params,
            p: 1 + params,
            seed: 2 + params,
            key: 3 + params,
            view: (arity == required + 1).then_some(required),
        })
    }

    fn usage(&self) -> String {
        let params: String = self.method.params().iter().map(|p| format!("{p}, ")).collect();
        format!("{}(x, {params}p, seed, key [, view])", self.method.name())
    }

    fn literal<'a>(&self, value: Option<&'a ScalarValue>, what: &str) -> Result<&'a ScalarValue> {
        value.ok_or_else(|| {
            DataFusionError::Plan(format!(
                "{}: {what} must be a literal (a constant such as 0.3 or 'text'), not a column or expression; usage: {}",
                self.method.name(),
                self.usage()
            ))
        })
    }
}

/// Where each shared argument sits.
struct Layout {
    params: std::ops::Range<usize>,
    p: usize,
    seed: usize,
    key: usize,
    view: Option<usize>,
}

impl<C: Corruption> ScalarUDFImpl for CorruptUdf<C> {
    fn name(&self) -> &str {
        self.method.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!(
            "{}: the return type depends on the arguments; use return_field_from_args",
            self.name()
        )
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let layout = self.layout(args.arg_fields.len())?;
        let name = self.method.name();
        let params = layout
            .params
            .clone()
            .map(|i| {
                self.literal(args.scalar_arguments[i], self.method.params()[i - 1])
                    .cloned()
            })
            .collect::<Result<Vec<_>>>()?;
        probability(name, self.literal(args.scalar_arguments[layout.p], "p")?)?;
        seed(name, self.literal(args.scalar_arguments[layout.seed], "seed")?)?;
        let key_type = args.arg_fields[layout.key].data_type();
        if !is_key_type(key_type) {
            return plan_err!("{name}: {}", key_type_error(key_type));
        }
        if let Some(view) = layout.view {
            let view_type = args.arg_fields[view].data_type();
            if !view_type.is_integer() {
                return plan_err!("{name}: view must be an integer (column or literal), got {view_type}");
            }
        }
        let x = &args.arg_fields[0];
        let data_type = self.method.return_type(x, &params)?;
        Ok(Arc::new(Field::new(name, data_type, self.method.nullable(x, &params))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let layout = self.layout(args.args.len())?;
        let name = self.method.name();
        let rows = args.number_rows;
        let scalar = |i: usize, what: &str| match literal_value(&args.args[i]) {
            Some(value) => Ok(value),
            None => exec_err!("{name}: {what} must be a literal"),
        };
        let params = layout
            .params
            .clone()
            .map(|i| scalar(i, self.method.params()[i - 1]))
            .collect::<Result<Vec<_>>>()?;
        let p = probability(name, &scalar(layout.p, "p")?)?;
        let seed = seed(name, &scalar(layout.seed, "seed")?)?;
        let x = args.args[0].to_array(rows)?;
        let keys = key_hashes(&args.args[layout.key].to_array(rows)?)
            .map_err(|message| DataFusionError::Execution(format!("{name}: {message}")))?;
        let views = match layout.view {
            Some(i) => Some(view_values(name, &args.args[i].to_array(rows)?)?),
            None => None,
        };
        let x_field = &args.arg_fields[0];
        let column = column_seed(seed, x_field.name());
        let cells: Vec<CellRng> = keys
            .iter()
            .enumerate()
            .map(|(i, &key)| CellRng::new(column, key, views.as_ref().map_or(0, |v| v[i])))
            .collect();
        let nulls = x.logical_nulls();
        let mask = BooleanBuffer::collect_bool(rows, |i| {
            nulls.as_ref().is_none_or(|n| n.is_valid(i)) && cells[i].bernoulli(p)
        });
        let draws = Draws { cells, mask };
        Ok(ColumnarValue::Array(self.method.corrupt(&x, x_field, &params, &draws)?))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(self.method.documentation())
    }
}

/// View indices as the 64 bits they are hashed with.
fn view_values(name: &str, views: &ArrayRef) -> Result<Vec<u64>> {
    if views.null_count() > 0 {
        return exec_err!("{name}: view must not be NULL");
    }
    // A view that does not fit 64 bits is an error, not a NULL read as view 0.
    let strict = arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    let views = arrow::compute::cast_with_options(views, &DataType::Int64, &strict)
        .map_err(|e| DataFusionError::Execution(format!("{name}: view must fit a 64-bit integer: {e}")))?;
    #[allow(clippy::cast_sign_loss)]
    Ok(views
        .as_primitive::<arrow::datatypes::Int64Type>()
        .values()
        .iter()
        .map(|&v| v as u64)
        .collect())
}

/// `p` as a probability in [0, 1].
fn probability(name: &str, value: &ScalarValue) -> Result<f64> {
    let p = number(value).ok_or_else(|| {
        DataFusionError::Plan(format!(
            "{name}: p must be a number in [0, 1], got {value} ({})",
            value.data_type()
        ))
    })?;
    if !(0.0..=1.0).contains(&p) {
        return plan_err!("{name}: p must be in [0, 1], got {p}");
    }
    Ok(p)
}

/// `seed` as a non-negative integer.
fn seed(name: &str, value: &ScalarValue) -> Result<u64> {
    let seed = match value {
        ScalarValue::Int8(Some(v)) => u64::try_from(*v).ok(),
        ScalarValue::Int16(Some(v)) => u64::try_from(*v).ok(),
        ScalarValue::Int32(Some(v)) => u64::try_from(*v).ok(),
        ScalarValue::Int64(Some(v)) => u64::try_from(*v).ok(),
        ScalarValue::UInt8(Some(v)) => Some(u64::from(*v)),
        ScalarValue::UInt16(Some(v)) => Some(u64::from(*v)),
        ScalarValue::UInt32(Some(v)) => Some(u64::from(*v)),
        ScalarValue::UInt64(Some(v)) => Some(*v),
        _ => None,
    };
    seed.ok_or_else(|| {
        DataFusionError::Plan(format!(
            "{name}: seed must be a non-negative integer literal, got {value}"
        ))
    })
}

/// A numeric literal as f64; `None` for NULL or non-numbers.
pub fn number(value: &ScalarValue) -> Option<f64> {
    if value.is_null() || !value.data_type().is_numeric() {
        return None;
    }
    match value.cast_to(&DataType::Float64).ok()? {
        ScalarValue::Float64(Some(v)) => Some(v),
        _ => None,
    }
}

/// Whether cells of `data_type` can be masked, swapped or filled: numbers, booleans,
/// strings, dictionaries and temporal types; not nested or binary types.
pub fn check_cell_type(name: &str, x: &Field) -> Result<()> {
    let data_type = x.data_type();
    let supported = match data_type {
        DataType::Boolean | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => values.is_primitive() || values.is_numeric() || is_string(values),
        other => other.is_primitive() || other.is_numeric(),
    };
    if !supported {
        return plan_err!(
            "{name}: column {:?} has type {data_type}, which cannot be corrupted; expected a number, \
             boolean, string, dictionary, date or timestamp column",
            x.name()
        );
    }
    Ok(())
}

fn is_string(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The shared section and arguments of the corruption functions' documentation.
pub fn documentation(description: &str, syntax: &str, params: &[(&str, &str)], example: &str) -> Documentation {
    const SECTION: DocSection = DocSection {
        include: true,
        label: "tabssl corruption functions",
        description: Some(
            "Deterministic pretext-task corruption (VIME, SCARF, denoising autoencoders, TabNet masking).",
        ),
    };
    let mut builder = Documentation::builder(SECTION, description, syntax).with_argument(
        "x",
        "The column to corrupt; its name keys the randomness, so columns get independent draws.",
    );
    for (param, text) in params {
        builder = builder.with_argument(*param, *text);
    }
    builder
        .with_argument("p", "Probability that a cell is corrupted, a literal in [0, 1].")
        .with_argument("seed", "Non-negative integer literal.")
        .with_argument("key", "Row key: an integer or string column, never NULL.")
        .with_argument(
            "view",
            "Optional integer: which of K augmented copies of the row (default 0).",
        )
        .with_sql_example(example)
        .build()
}
