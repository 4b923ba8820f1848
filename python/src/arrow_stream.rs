//! Arrow data across the Python boundary through the Arrow C stream interface
//! (`__arrow_c_stream__`): pyarrow tables and readers, Polars and pandas frames, DuckDB
//! results come in without a copy, and results go back the same way.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use datafusion::arrow::array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ffi_stream::{ArrowArrayStreamReader, FFI_ArrowArrayStream};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{MemTable, TableProvider};
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

/// Imports `data`'s Arrow C stream. The columns stay where the producer put them.
pub fn import(data: &Bound<'_, PyAny>) -> PyResult<ArrowArrayStreamReader> {
    if !data.hasattr("__arrow_c_stream__")? {
        let kind = data.get_type().name()?;
        return Err(PyTypeError::new_err(format!(
            "expected Arrow data (a pyarrow Table or RecordBatchReader, a pandas or Polars \
             DataFrame: an object with __arrow_c_stream__), got {kind}"
        )));
    }
    let capsule = data.call_method0("__arrow_c_stream__")?;
    let capsule = capsule.cast::<PyCapsule>()?;
    let stream = capsule
        .pointer_checked(Some(c"arrow_array_stream"))?
        .cast::<FFI_ArrowArrayStream>();
    // SAFETY: a capsule named "arrow_array_stream" holds an `ArrowArrayStream` (the Arrow
    // PyCapsule interface). `from_raw` moves the stream out and leaves a released one
    // behind, which the capsule's destructor then ignores.
    unsafe { ArrowArrayStreamReader::from_raw(stream.as_ptr()) }
        .map_err(|e| PyValueError::new_err(format!("the Arrow stream could not be read: {e}")))
}

/// An Arrow stream read by DataFusion once, batch by batch (bounded memory for readers).
pub fn one_shot_table(reader: ArrowArrayStreamReader) -> datafusion::error::Result<Arc<dyn TableProvider>> {
    let schema = reader.schema();
    let partition = OneShot {
        schema: Arc::clone(&schema),
        reader: Mutex::new(Some(reader)),
    };
    Ok(Arc::new(StreamingTable::try_new(schema, vec![Arc::new(partition)])?))
}

/// An Arrow stream held in memory, for jobs that read their input more than once (the
/// export's two passes). The batches are the producer's buffers, not copies.
pub fn memory_table(reader: ArrowArrayStreamReader) -> datafusion::error::Result<Arc<dyn TableProvider>> {
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
}

struct OneShot {
    schema: SchemaRef,
    reader: Mutex<Option<ArrowArrayStreamReader>>,
}

impl fmt::Debug for OneShot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneShot").field("schema", &self.schema).finish()
    }
}

impl PartitionStream for OneShot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner).take();
        // A pandas or Polars frame is often one 1M-row chunk: sliced (without a copy) to the
        // session's batch size, a model's working memory stays that of one batch.
        let rows = ctx.session_config().batch_size().max(1);
        let batches: Box<dyn Iterator<Item = datafusion::error::Result<RecordBatch>> + Send> = match reader {
            Some(reader) => Box::new(reader.flat_map(move |batch| match batch {
                Ok(batch) => slices(&batch, rows).into_iter().map(Ok).collect::<Vec<_>>(),
                Err(error) => vec![Err(DataFusionError::from(error))],
            })),
            None => Box::new(std::iter::once(Err(DataFusionError::Execution(
                "the Arrow input stream was already read: a stream can be read once".into(),
            )))),
        };
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            futures::stream::iter(batches),
        ))
    }
}

/// `batch` as consecutive zero-copy slices of at most `rows` rows.
fn slices(batch: &RecordBatch, rows: usize) -> Vec<RecordBatch> {
    (0..batch.num_rows())
        .step_by(rows)
        .map(|start| batch.slice(start, rows.min(batch.num_rows() - start)))
        .collect()
}

/// Record batches on their way to Python: `pyarrow.table(stream)`,
/// `pyarrow.RecordBatchReader.from_stream(stream)`, `polars.from_arrow`... (read once).
#[pyclass(name = "ArrowStream", module = "tabssl._native", frozen)]
pub struct ArrowStream {
    stream: Mutex<Option<FFI_ArrowArrayStream>>,
}

impl ArrowStream {
    /// A stream over `batches`.
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        let reader: Box<dyn RecordBatchReader + Send> =
            Box::new(RecordBatchIterator::new(batches.into_iter().map(Ok), schema));
        Self {
            stream: Mutex::new(Some(FFI_ArrowArrayStream::new(reader))),
        }
    }
}

#[pymethods]
impl ArrowStream {
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        // The schema is what it is; the consumer casts if it wants another.
        let _ = requested_schema;
        let stream = self
            .stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| PyValueError::new_err("this Arrow stream was already read"))?;
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }
}
