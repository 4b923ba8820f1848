//! A Parquet writer that encodes each row group's columns on several threads.
//!
//! `ArrowWriter` encodes one column after another on the calling thread; for wide outputs
//! (an export writes four columns per feature) that single thread is the bottleneck.
//! [`ParallelParquetWriter`] buffers one row group of batches, then encodes its columns on
//! the calling thread and `threads - 1` helper threads (each takes the next column not yet
//! taken) and appends the finished chunks in schema order. Every column sees the same
//! sequence of writes as under `ArrowWriter` with the same properties, so the file is byte
//! for byte the one `ArrowWriter` would write: the thread count never changes the output.
//!
//! The helpers live as long as the writer. Threads started per row group would each get
//! a fresh malloc arena, and memory would grow with the number of row groups.

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use datafusion::parquet::errors::{ParquetError, Result};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::file::writer::SerializedFileWriter;

/// Writes record batches to Parquet, encoding the columns of a row group in parallel.
pub struct ParallelParquetWriter<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// How many Parquet leaf columns each top-level field has (one for a flat field).
    leaves_per_field: Vec<usize>,
    row_group_rows: usize,
    helpers: Vec<(Sender<Arc<RowGroupJob>>, JoinHandle<()>)>,
    buffered: Vec<RecordBatch>,
    buffered_rows: usize,
    row_groups: usize,
}

impl<W: Write + Send> ParallelParquetWriter<W> {
    /// A writer of `schema` to `sink`. Row groups hold `properties`' maximum row count
    /// (required: the whole row group is buffered before encoding); `threads` (at least 1,
    /// the calling thread included) encode them.
    ///
    /// # Errors
    /// When the schema cannot be written as Parquet, `properties` has no row count limit,
    /// or a helper thread cannot be started.
    pub fn try_new(sink: W, schema: SchemaRef, properties: WriterProperties, threads: usize) -> Result<Self> {
        let Some(row_group_rows) = properties.max_row_group_row_count() else {
            return Err(ParquetError::General(
                "the parallel Parquet writer needs a maximum row group row count".into(),
            ));
        };
        // ArrowWriter converts the schema and records it in the file's metadata; its
        // lower-level parts then do the work.
        let (writer, factory) =
            ArrowWriter::try_new(sink, Arc::clone(&schema), Some(properties))?.into_serialized_writer()?;
        let descriptor = writer.schema_descr();
        let mut leaves_per_field = vec![0; schema.fields().len()];
        for leaf in 0..descriptor.num_columns() {
            leaves_per_field[descriptor.get_column_root_idx(leaf)] += 1;
        }
        let helpers = (1..threads.max(1).min(schema.fields().len()))
            .map(|i| {
                let (sender, jobs) = channel::<Arc<RowGroupJob>>();
                std::thread::Builder::new()
                    .name(format!("parquet-encode-{i}"))
                    .spawn(move || jobs.into_iter().for_each(|job| job.work()))
                    .map(|handle| (sender, handle))
                    .map_err(|e| ParquetError::General(format!("cannot start a Parquet encoding thread: {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            writer,
            factory,
            schema,
            leaves_per_field,
            row_group_rows: row_group_rows.max(1),
            helpers,
            buffered: Vec::new(),
            buffered_rows: 0,
            row_groups: 0,
        })
    }

    /// Buffers `batch`, encoding every row group it completes.
    ///
    /// # Errors
    /// When the batch does not match the schema or encoding fails.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        check_batch_schema(batch, &self.schema)?;
        let mut rest = batch.clone();
        while rest.num_rows() > 0 {
            let take = rest.num_rows().min(self.row_group_rows - self.buffered_rows);
            self.buffered.push(rest.slice(0, take));
            self.buffered_rows += take;
            rest = rest.slice(take, rest.num_rows() - take);
            if self.buffered_rows == self.row_group_rows {
                self.flush_row_group()?;
            }
        }
        Ok(())
    }

    /// Encodes the buffered rows (if any) as the last row group, writes the footer and
    /// returns the sink.
    ///
    /// # Errors
    /// When encoding or writing fails.
    pub fn finish(mut self) -> Result<W> {
        self.flush_row_group()?;
        for (sender, handle) in std::mem::take(&mut self.helpers) {
            drop(sender);
            let _ = handle.join();
        }
        self.writer.into_inner()
    }

    /// Encodes the buffered batches as one row group and appends it to the file.
    fn flush_row_group(&mut self) -> Result<()> {
        if self.buffered_rows == 0 {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.buffered);
        self.buffered_rows = 0;
        let writers = self.factory.create_column_writers(self.row_groups)?;
        let job = Arc::new(RowGroupJob::new(
            writers,
            &self.leaves_per_field,
            Arc::clone(&self.schema),
            batches,
        ));
        for (sender, _) in &self.helpers {
            // A helper that is gone leaves its share to the others.
            let _ = sender.send(Arc::clone(&job));
        }
        job.work();
        let chunks = job.wait()?;
        let mut row_group = self.writer.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.row_groups += 1;
        Ok(())
    }
}

/// An error naming the first column of `batch` that does not match `schema`.
fn check_batch_schema(batch: &RecordBatch, schema: &SchemaRef) -> Result<()> {
    let (expected, got) = (schema.fields(), batch.schema_ref().fields());
    if expected.len() != got.len() {
        return Err(ParquetError::General(format!(
            "the batch has {} columns, the file {}",
            got.len(),
            expected.len()
        )));
    }
    match expected.iter().zip(got).find(|(e, g)| e.data_type() != g.data_type()) {
        Some((e, g)) => Err(ParquetError::General(format!(
            "column {:?} is {} in the batch but {} in the file",
            e.name(),
            g.data_type(),
            e.data_type()
        ))),
        None => Ok(()),
    }
}

/// One row group to encode: each field's leaf writers, taken one field at a time by
/// whichever thread comes next, and the finished chunks.
struct RowGroupJob {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    /// Each field's leaf writers (one per Parquet leaf), until a thread takes them.
    pending: Vec<Mutex<Vec<ArrowColumnWriter>>>,
    /// Each field's chunks, or its error, once encoded.
    encoded: Vec<Mutex<Option<Result<Vec<ArrowColumnChunk>>>>>,
    /// The next field not yet taken.
    next: AtomicUsize,
    /// Fields finished so far, and the signal that all are.
    finished: Mutex<usize>,
    all_finished: Condvar,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RowGroupJob {
    /// Splits `writers` (one per Parquet leaf, in schema order) by field.
    fn new(
        writers: Vec<ArrowColumnWriter>,
        leaves_per_field: &[usize],
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Self {
        let mut writers = writers.into_iter();
        let pending: Vec<Mutex<Vec<ArrowColumnWriter>>> = leaves_per_field
            .iter()
            .map(|&leaves| Mutex::new(writers.by_ref().take(leaves).collect()))
            .collect();
        let encoded = pending.iter().map(|_| Mutex::new(None)).collect();
        Self {
            schema,
            batches,
            pending,
            encoded,
            next: AtomicUsize::new(0),
            finished: Mutex::new(0),
            all_finished: Condvar::new(),
        }
    }

    /// Encodes fields until none is left to take.
    fn work(&self) {
        loop {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            if index >= self.pending.len() {
                return;
            }
            let result = catch_unwind(AssertUnwindSafe(|| self.encode_field(index)))
                .unwrap_or_else(|_| Err(ParquetError::General(format!("encoding column {index} panicked"))));
            *lock(&self.encoded[index]) = Some(result);
            let mut finished = lock(&self.finished);
            *finished += 1;
            if *finished == self.pending.len() {
                self.all_finished.notify_all();
            }
        }
    }

    /// Writes every batch's values of field `index` and closes its leaf writers.
    fn encode_field(&self, index: usize) -> Result<Vec<ArrowColumnChunk>> {
        let mut writers = std::mem::take(&mut *lock(&self.pending[index]));
        let field = &self.schema.fields()[index];
        for batch in &self.batches {
            let leaves = compute_leaves(field, batch.column(index))?;
            for (writer, leaf) in writers.iter_mut().zip(&leaves) {
                writer.write(leaf)?;
            }
        }
        writers.into_iter().map(ArrowColumnWriter::close).collect()
    }

    /// Waits for every field and returns the chunks in schema order, or the error of the
    /// first field that failed.
    fn wait(&self) -> Result<Vec<ArrowColumnChunk>> {
        let mut finished = lock(&self.finished);
        while *finished < self.pending.len() {
            finished = self.all_finished.wait(finished).unwrap_or_else(PoisonError::into_inner);
        }
        drop(finished);
        let mut chunks = Vec::new();
        for slot in &self.encoded {
            let result = lock(slot).take();
            chunks.extend(result.unwrap_or_else(|| Err(ParquetError::General("a column was not encoded".into())))?);
        }
        Ok(chunks)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, StringViewArray, StructArray};
    use arrow::datatypes::{DataType, Field, Fields, Schema};
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::basic::Compression;
    use datafusion::parquet::file::properties::WriterProperties;

    use super::ParallelParquetWriter;

    /// Rows `start..start + rows` of a table with flat, nullable, view and nested columns.
    fn batch(start: i64, rows: i64) -> RecordBatch {
        let ids: Vec<i64> = (start..start + rows).collect();
        let words = ["a", "bb", "a longer string than twelve bytes", "d"];
        let text = |i: &i64| (i % 7 != 3).then(|| words[(i * 31 % 4) as usize]);
        let nested = StructArray::from(vec![
            (
                Arc::new(Field::new("x", DataType::Int64, true)),
                Arc::new(Int64Array::from_iter(ids.iter().map(|i| (i % 5 != 0).then_some(i * i)))) as ArrayRef,
            ),
            (
                Arc::new(Field::new("flag", DataType::Boolean, false)),
                Arc::new(BooleanArray::from_iter(ids.iter().map(|i| Some(i % 3 == 0)))) as ArrayRef,
            ),
        ]);
        let schema = schema();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.clone())),
                Arc::new(StringArray::from_iter(ids.iter().map(text))),
                Arc::new(StringViewArray::from_iter(ids.iter().map(text))),
                Arc::new(nested),
            ],
        )
        .expect("valid batch")
    }

    fn schema() -> Arc<Schema> {
        let nested = Fields::from(vec![
            Field::new("x", DataType::Int64, true),
            Field::new("flag", DataType::Boolean, false),
        ]);
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("word", DataType::Utf8, true),
            Field::new("view", DataType::Utf8View, true),
            Field::new("nested", DataType::Struct(nested), false),
        ]))
    }

    fn properties() -> WriterProperties {
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(1000))
            .set_write_batch_size(128)
            .build()
    }

    /// Batches of uneven sizes that do not line up with the row groups.
    fn batches() -> Vec<RecordBatch> {
        let mut start = 0;
        [1, 999, 700, 2500, 13, 0, 387]
            .iter()
            .map(|&rows| {
                let b = batch(start, rows);
                start += rows;
                b
            })
            .collect()
    }

    #[test]
    fn writes_the_bytes_arrow_writer_writes_for_any_thread_count() {
        let mut expected = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut expected, schema(), Some(properties())).expect("writer");
        for b in batches() {
            writer.write(&b).expect("write");
        }
        writer.close().expect("close");
        for threads in [1, 2, 3, 8] {
            let mut writer =
                ParallelParquetWriter::try_new(Vec::new(), schema(), properties(), threads).expect("writer");
            for b in batches() {
                writer.write(&b).expect("write");
            }
            let written = writer.finish().expect("finish");
            assert!(written == expected, "{threads} threads wrote different bytes");
        }
    }

    #[test]
    fn reads_back_every_row_in_order() {
        let file = tempfile::tempfile().expect("temporary file");
        let mut writer = ParallelParquetWriter::try_new(file, schema(), properties(), 2).expect("writer");
        for b in batches() {
            writer.write(&b).expect("write");
        }
        let file = writer.finish().expect("finish");
        let reader =
            datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).expect("readable");
        assert_eq!(reader.metadata().num_row_groups(), 5);
        let ids: Vec<i64> = reader
            .build()
            .expect("reader")
            .flat_map(|b| {
                let b = b.expect("batch");
                let ids = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(b.column(0));
                ids.values().to_vec()
            })
            .collect();
        assert_eq!(ids, (0..4600).collect::<Vec<i64>>());
    }

    #[test]
    fn refuses_a_batch_of_another_schema() {
        let mut writer = ParallelParquetWriter::try_new(Vec::new(), schema(), properties(), 2).expect("writer");
        let other =
            RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from(vec![1])) as ArrayRef)]).expect("batch");
        let error = writer.write(&other).expect_err("refused");
        assert!(
            error.to_string().contains("the batch has 1 columns, the file 4"),
            "{error}"
        );
        let mut columns = batch(0, 3).columns().to_vec();
        columns[1] = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let other =
            RecordBatch::try_from_iter(schema().fields().iter().map(|f| f.name().clone()).zip(columns)).expect("batch");
        let error = writer.write(&other).expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("column \"word\" is Int64 in the batch but Utf8 in the file"),
            "{error}"
        );
    }

    #[test]
    fn needs_a_row_group_limit() {
        let properties = WriterProperties::builder().set_max_row_group_row_count(None).build();
        let error = ParallelParquetWriter::try_new(Vec::new(), schema(), properties, 2)
            .err()
            .expect("refused");
        assert!(error.to_string().contains("maximum row group row count"), "{error}");
    }
}
