//! Column marginals for donor draws: the `marginal_sample(x, key [, capacity])` aggregate,
//! and the marginal files `corrupt_swap` reads.
//!
//! VIME draws a masked cell's replacement from the column's empirical distribution over
//! the whole unlabeled set, not one batch. For data larger than memory, a first pass keeps
//! a deterministic uniform sample of each column:
//!
//! ```sql
//! COPY (SELECT marginal_sample(age, id) AS age, marginal_sample(workclass, id) AS workclass FROM adult)
//!   TO 'adult.marginals.parquet';
//! ```
//!
//! The sample holds the non-NULL values of the `capacity` rows (default 100,000) whose
//! hashed key is smallest: a uniform sample without replacement that is the same for any
//! batch size, partitioning or file order, and the exact column (every non-NULL value,
//! duplicates included) when the column has at most `capacity` non-NULL values. NULLs are
//! never donors. The list is ordered by key hash, so donor index i means the same value
//! in every run.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::SystemTime;

use arrow::array::make_comparator;
use arrow::array::{Array, ArrayRef, AsArray, ListArray, RecordBatch, UInt32Array, UInt64Array, new_empty_array};
use arrow::buffer::OffsetBuffer;
use arrow::compute::{CastOptions, SortOptions, cast_with_options, concat, take};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, UInt64Type};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, ColumnarValue, DocSection, Documentation, Signature, Volatility,
};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;

use crate::rng::{is_key_type, key_hashes, key_type_error, splitmix64};

/// Rows kept per column when `capacity` is not given.
pub const DEFAULT_CAPACITY: usize = 100_000;
/// Largest accepted `capacity`, to keep a typo from exhausting memory.
pub const MAX_CAPACITY: usize = 50_000_000;
/// Salt of the sampling hash, so it is not the hash the corruption draws start from.
const SAMPLE_SALT: u64 = 0x6D61_7267_696E_616C;

/// The `marginal_sample(x, key [, capacity])` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MarginalSample {
    signature: Signature,
}

impl Default for MarginalSample {
    fn default() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection {
            include: true,
            label: "tabssl corruption functions",
            description: None,
        },
        "A deterministic uniform sample of a column's non-NULL values for corrupt_swap: the \
         values of the `capacity` rows with the smallest hashed key, ordered by that hash; \
         the whole column when it fits.",
        "marginal_sample(x, key [, capacity])",
    )
    .with_argument("x", "The column.")
    .with_argument("key", "Row key: an integer or string column, never NULL.")
    .with_argument("capacity", "Rows to keep, an integer literal (default 100000).")
    .with_sql_example("COPY (SELECT marginal_sample(age, id) AS age FROM adult) TO 'adult.marginals.parquet';")
    .build()
});

fn check_arguments(arg_types: &[DataType]) -> Result<()> {
    if !(2..=3).contains(&arg_types.len()) {
        return plan_err!(
            "marginal_sample(x, key [, capacity]) takes 2 or 3 arguments, got {}",
            arg_types.len()
        );
    }
    if !is_key_type(&arg_types[1]) {
        return plan_err!("marginal_sample: {}", key_type_error(&arg_types[1]));
    }
    if matches!(
        arg_types[0],
        DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(_, _)
            | DataType::Struct(_)
            | DataType::Map(_, _)
    ) {
        return plan_err!("marginal_sample: x must be a scalar column, got {}", arg_types[0]);
    }
    Ok(())
}

fn capacity(args: &AccumulatorArgs) -> Result<usize> {
    let Some(expr) = args.exprs.get(2) else {
        return Ok(DEFAULT_CAPACITY);
    };
    let value = match expr.downcast_ref::<Literal>() {
        Some(literal) => Some(literal.value().clone()),
        None => foreign_literal(expr.as_ref(), args.schema),
    };
    let capacity = value.as_ref().and_then(|v| match v.cast_to(&DataType::Int64) {
        Ok(ScalarValue::Int64(Some(c))) if v.data_type().is_integer() => usize::try_from(c).ok(),
        _ => None,
    });
    match capacity {
        Some(c) if (1..=MAX_CAPACITY).contains(&c) => Ok(c),
        _ => plan_err!("marginal_sample: capacity must be an integer literal in 1..={MAX_CAPACITY}"),
    }
}

/// The value of a literal that reached the accumulator as another library's expression
/// (datafusion-ffi, from the `datafusion` Python package): evaluated on a batch without
/// rows, a literal is a scalar and a column an empty array.
fn foreign_literal(expr: &dyn PhysicalExpr, schema: &Schema) -> Option<ScalarValue> {
    let batch = RecordBatch::new_empty(Arc::new(schema.clone()));
    match expr.evaluate(&batch).ok()? {
        ColumnarValue::Scalar(value) => Some(value),
        ColumnarValue::Array(array) if array.len() == 1 => ScalarValue::try_from_array(&array, 0).ok(),
        ColumnarValue::Array(_) => None,
    }
}

impl AggregateUDFImpl for MarginalSample {
    fn name(&self) -> &str {
        "marginal_sample"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_arguments(arg_types)?;
        Ok(DataType::new_list(arg_types[0].clone(), true))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let DataType::List(item) = args.return_field.data_type() else {
            return plan_err!(
                "marginal_sample: unexpected return type {}",
                args.return_field.data_type()
            );
        };
        Ok(Box::new(SampleAccumulator {
            capacity: capacity(&args)?,
            data_type: item.data_type().clone(),
            hashes: Vec::new(),
            values: Vec::new(),
            threshold: u64::MAX,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("hashes", DataType::new_list(DataType::UInt64, true), true)),
            Arc::new(Field::new("values", args.return_field.data_type().clone(), true)),
        ])
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// Keeps the `capacity` (hash, value) pairs with the smallest hash, as Arrow arrays: rows
/// above the current threshold are skipped, and candidates are pruned by a partial sort
/// once they reach twice the capacity.
#[derive(Debug)]
struct SampleAccumulator {
    capacity: usize,
    data_type: DataType,
    /// Hashes of the candidates, in the order of `values`.
    hashes: Vec<u64>,
    /// Candidate values, in chunks.
    values: Vec<ArrayRef>,
    /// Pairs with a larger hash can never be kept.
    threshold: u64,
}

impl SampleAccumulator {
    /// Offers the non-NULL `values` whose hash is within the threshold.
    fn offer(&mut self, hashes: &[u64], values: &ArrayRef) -> Result<()> {
        let rows: Vec<u32> = (0..values.len())
            .filter(|&i| hashes[i] <= self.threshold && values.is_valid(i))
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        self.hashes.extend(rows.iter().map(|&i| hashes[i as usize]));
        self.values.push(take(values.as_ref(), &UInt32Array::from(rows), None)?);
        if self.hashes.len() >= 2 * self.capacity.max(1024) {
            self.prune(false)?;
        }
        Ok(())
    }

    /// Keeps the `capacity` candidates first in (hash, value) order, sorted in that order
    /// when `sorted` (pruning alone only needs them selected); ties of equal keys are broken
    /// by value so the result does not depend on arrival order.
    fn prune(&mut self, sorted: bool) -> Result<()> {
        if self.values.is_empty() {
            return Ok(());
        }
        let chunks: Vec<&dyn Array> = self.values.iter().map(AsRef::as_ref).collect();
        let values = concat(&chunks)?;
        let hashes = std::mem::take(&mut self.hashes);
        // Ordered by hash; values are compared only for equal hashes (duplicate keys).
        let compare_values = make_comparator(values.as_ref(), values.as_ref(), SortOptions::default())?;
        let by_hash_then_value =
            |a: &(u64, u32), b: &(u64, u32)| a.0.cmp(&b.0).then_with(|| compare_values(a.1 as usize, b.1 as usize));
        let mut order: Vec<(u64, u32)> = hashes
            .iter()
            .enumerate()
            .map(|(i, &h)| (h, u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        let keep = self.capacity.min(order.len());
        if keep < order.len() {
            // The last kept pair lands at keep - 1 with every smaller pair before it.
            order.select_nth_unstable_by(keep - 1, by_hash_then_value);
            order.truncate(keep);
            self.threshold = order[keep - 1].0;
        }
        if sorted {
            order.sort_unstable_by(by_hash_then_value);
        }
        self.hashes = order.iter().map(|&(h, _)| h).collect();
        let rows: UInt32Array = order.iter().map(|&(_, i)| i).collect();
        self.values = vec![take(values.as_ref(), &rows, None)?];
        Ok(())
    }

    /// The kept values, in hash order.
    fn kept(&mut self) -> Result<ArrayRef> {
        self.prune(true)?;
        Ok(self
            .values
            .first()
            .cloned()
            .unwrap_or_else(|| new_empty_array(&self.data_type)))
    }
}

/// `values` as a one-row list scalar.
fn single_list(values: ArrayRef) -> ScalarValue {
    let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
    let offsets = OffsetBuffer::from_lengths([values.len()]);
    ScalarValue::List(Arc::new(ListArray::new(field, offsets, values, None)))
}

impl Accumulator for SampleAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let hashes: Vec<u64> = key_hashes(&values[1])
            .map_err(|m| DataFusionError::Execution(format!("marginal_sample: {m}")))?
            .into_iter()
            .map(|key| splitmix64(key ^ SAMPLE_SALT))
            .collect();
        self.offer(&hashes, &values[0])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(single_list(self.kept()?))
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self.hashes.capacity() * 8
            + self.values.iter().map(|v| v.get_array_memory_size()).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        // The merge selects and sorts again: the partial state needs the selection only.
        self.prune(false)?;
        let values = self
            .values
            .first()
            .cloned()
            .unwrap_or_else(|| new_empty_array(&self.data_type));
        let hashes: ArrayRef = Arc::new(UInt64Array::from(self.hashes.clone()));
        Ok(vec![single_list(hashes), single_list(values)])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (hashes, values) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for row in 0..hashes.len() {
            if hashes.is_null(row) || values.is_null(row) {
                continue;
            }
            let row_hashes = hashes.value(row);
            self.offer(row_hashes.as_primitive::<UInt64Type>().values(), &values.value(row))?;
        }
        Ok(())
    }
}

/// A marginal file loaded into memory: each column's donor values.
#[derive(Debug)]
pub struct Marginal {
    path: PathBuf,
    columns: HashMap<String, ArrayRef>,
    /// Donors already cast to the type a query needs, by (column, type).
    cast: Mutex<HashMap<(String, DataType), ArrayRef>>,
}

impl Marginal {
    /// The donor values of `column` cast to `data_type`, NULLs excluded.
    ///
    /// # Errors
    /// When the file has no such column, or its values cannot be cast.
    pub fn donors(&self, column: &str, data_type: &DataType) -> Result<ArrayRef> {
        let key = (column.to_string(), data_type.clone());
        let mut cast_cache = self.cast.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(donors) = cast_cache.get(&key) {
            return Ok(Arc::clone(donors));
        }
        let Some(values) = self.columns.get(column) else {
            let mut available: Vec<&str> = self.columns.keys().map(String::as_str).collect();
            available.sort_unstable();
            return plan_err!(
                "marginal file {} has no column {column:?}; it has: {}",
                self.path.display(),
                available.join(", ")
            );
        };
        let cannot = |why: String| {
            DataFusionError::Plan(format!(
                "marginal file {}: column {column:?} holds {} values, which cannot be used as {data_type}: {why}",
                self.path.display(),
                values.data_type()
            ))
        };
        // A value that does not convert is an error, never a NULL: a swap must not invent
        // a missing value.
        let strict = CastOptions {
            safe: false,
            ..CastOptions::default()
        };
        let donors = cast_with_options(values, data_type, &strict).map_err(|e| cannot(e.to_string()))?;
        if donors.null_count() > 0 {
            return Err(cannot(format!("{} values became NULL", donors.null_count())));
        }
        cast_cache.insert(key, Arc::clone(&donors));
        Ok(donors)
    }
}

/// Loaded marginal files, by path, with the modification time and size they had.
type MarginalCache = Mutex<HashMap<PathBuf, (Option<SystemTime>, u64, Arc<Marginal>)>>;
static MARGINALS: LazyLock<MarginalCache> = LazyLock::new(Mutex::default);

/// The marginal file at `path` as it was when a query was last planned with it: execution
/// reuses what planning loaded instead of checking the file for every batch.
///
/// # Errors
/// When the file was never loaded and cannot be (see [`load_marginal`]).
pub fn planned_marginal(path: &str) -> Result<Arc<Marginal>> {
    let cache = MARGINALS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, _, marginal)) = cache.get(Path::new(path)) {
        return Ok(Arc::clone(marginal));
    }
    drop(cache);
    load_marginal(path)
}

/// The marginal file at `path`, read once and reloaded when it changes on disk.
///
/// # Errors
/// When the file is missing or is not a one-row Parquet file of list columns.
pub fn load_marginal(path: &str) -> Result<Arc<Marginal>> {
    let path = Path::new(path);
    let metadata = std::fs::metadata(path).map_err(|e| {
        DataFusionError::Plan(format!(
            "cannot read marginal file {}: {e}; write one with \
             COPY (SELECT marginal_sample(col, key) AS col, ...) TO '{}'",
            path.display(),
            path.display()
        ))
    })?;
    if !metadata.is_file() {
        // Reading a FIFO or a device would block the query or never end.
        return Err(DataFusionError::Plan(format!(
            "marginal file {} is not a regular file; give the Parquet file written by \
             COPY (SELECT marginal_sample(col, key) AS col, ...) TO '...'",
            path.display()
        )));
    }
    let stamp = (metadata.modified().ok(), metadata.len());
    let mut cache = MARGINALS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((modified, len, marginal)) = cache.get(path)
        && (*modified, *len) == stamp
    {
        return Ok(Arc::clone(marginal));
    }
    let marginal = Arc::new(read_marginal(path)?);
    cache.insert(path.to_path_buf(), (stamp.0, stamp.1, Arc::clone(&marginal)));
    Ok(marginal)
}

fn read_marginal(path: &Path) -> Result<Marginal> {
    let invalid = |message: String| DataFusionError::Plan(format!("marginal file {}: {message}", path.display()));
    let file = File::open(path).map_err(|e| invalid(e.to_string()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(ParquetRecordBatchReaderBuilder::build)
        .map_err(|e| invalid(format!("not a readable Parquet file: {e}")))?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    let rows: usize = batches.iter().map(arrow::array::RecordBatch::num_rows).sum();
    let Some(batch) = batches.into_iter().find(|b| b.num_rows() > 0).filter(|_| rows == 1) else {
        return Err(invalid(format!(
            "expected one row (the output of SELECT marginal_sample(...) ...), found {rows}"
        )));
    };
    let mut columns = HashMap::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let values = match column.data_type() {
            DataType::List(_) => column.as_list::<i32>().value(0),
            DataType::LargeList(_) => column.as_list::<i64>().value(0),
            other => {
                return Err(invalid(format!(
                    "column {:?} is {other}, expected a list (the output of marginal_sample)",
                    field.name()
                )));
            }
        };
        let values = if values.null_count() > 0 {
            arrow::compute::filter(&values, &arrow::compute::is_not_null(&values)?)?
        } else {
            values
        };
        columns.insert(field.name().clone(), values);
    }
    Ok(Marginal {
        path: path.to_path_buf(),
        columns,
        cast: Mutex::default(),
    })
}
