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

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, DocSection, Documentation, Signature, Volatility};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::physical_expr::expressions::Literal;

use super::rng::{is_key_type, key_hashes, key_type_error, splitmix64};

/// Rows kept per column when `capacity` is not given.
pub const DEFAULT_CAPACITY: usize = 100_000;
/// Largest accepted `capacity`, to keep a typo from exhausting memory.
const MAX_CAPACITY: usize = 50_000_000;
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
    let value = expr.downcast_ref::<Literal>().map(Literal::value);
    let capacity = value.and_then(|v| match v.cast_to(&DataType::Int64) {
        Ok(ScalarValue::Int64(Some(c))) if v.data_type().is_integer() => usize::try_from(c).ok(),
        _ => None,
    });
    match capacity {
        Some(c) if (1..=MAX_CAPACITY).contains(&c) => Ok(c),
        _ => plan_err!("marginal_sample: capacity must be an integer literal in 1..={MAX_CAPACITY}"),
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
            kept: Vec::new(),
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

/// Keeps the `capacity` (hash, value) pairs with the smallest hash.
#[derive(Debug)]
struct SampleAccumulator {
    capacity: usize,
    data_type: DataType,
    kept: Vec<(u64, ScalarValue)>,
    /// Pairs with a larger hash can never be kept.
    threshold: u64,
}

impl SampleAccumulator {
    fn offer(&mut self, hash: u64, values: &ArrayRef, row: usize) -> Result<()> {
        if hash <= self.threshold && values.is_valid(row) {
            self.kept.push((hash, ScalarValue::try_from_array(values, row)?));
            if self.kept.len() >= 2 * self.capacity.max(1024) {
                self.prune();
            }
        }
        Ok(())
    }

    /// Sorts by (hash, value) and keeps the first `capacity`; ties of equal keys are
    /// broken by value so the result does not depend on arrival order.
    fn prune(&mut self) {
        self.kept.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal))
        });
        self.kept.truncate(self.capacity);
        if self.kept.len() == self.capacity {
            self.threshold = self.kept.last().map_or(u64::MAX, |k| k.0);
        }
    }

    fn list(&self, values: impl Iterator<Item = ScalarValue>, data_type: &DataType) -> ScalarValue {
        let values: Vec<ScalarValue> = values.collect();
        ScalarValue::List(ScalarValue::new_list_nullable(&values, data_type))
    }
}

impl Accumulator for SampleAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let hashes = key_hashes(&values[1]).map_err(|m| DataFusionError::Execution(format!("marginal_sample: {m}")))?;
        for (row, key) in hashes.into_iter().enumerate() {
            self.offer(splitmix64(key ^ SAMPLE_SALT), &values[0], row)?;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.prune();
        Ok(self.list(self.kept.iter().map(|k| k.1.clone()), &self.data_type))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.kept.iter().map(|k| 8 + k.1.size()).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.prune();
        Ok(vec![
            self.list(
                self.kept.iter().map(|k| ScalarValue::UInt64(Some(k.0))),
                &DataType::UInt64,
            ),
            self.list(self.kept.iter().map(|k| k.1.clone()), &self.data_type),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (hashes, values) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for row in 0..hashes.len() {
            if hashes.is_null(row) || values.is_null(row) {
                continue;
            }
            let row_hashes = hashes.value(row);
            let row_hashes = row_hashes.as_primitive::<arrow::datatypes::UInt64Type>();
            let row_values = values.value(row);
            for (i, hash) in row_hashes.values().iter().enumerate() {
                self.offer(*hash, &row_values, i)?;
            }
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
        let donors = cast(values, data_type).map_err(|e| {
            DataFusionError::Plan(format!(
                "marginal file {}: column {column:?} holds {} values, which cannot be used as {data_type}: {e}",
                self.path.display(),
                values.data_type()
            ))
        })?;
        cast_cache.insert(key, Arc::clone(&donors));
        Ok(donors)
    }
}

/// Loaded marginal files, by path, with the modification time and size they had.
type MarginalCache = Mutex<HashMap<PathBuf, (Option<SystemTime>, u64, Arc<Marginal>)>>;
static MARGINALS: LazyLock<MarginalCache> = LazyLock::new(Mutex::default);

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
