//! The export's Parquet writer: fixed-size batches and row groups (so the bytes do not
//! depend on DataFusion's batch size), encoded on every core while the query computes
//! the next batches.

use arrow::array::RecordBatch;
use arrow::compute::BatchCoalescer;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;
use futures::StreamExt;

use super::Progress;
use crate::io::AtomicFile;
use crate::parallel_parquet::ParallelParquetWriter;
use crate::{Error, Result};

/// Rows per written batch, row group page unit: fixed so output bytes do not depend on
/// DataFusion's batch size.
pub const WRITE_BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Streams the query's batches, cut to fixed-size batches, to a writer thread: encoding
/// Parquet (on every core, column by column) overlaps with computing the next batches,
/// and the bounded channel holds at most one row group, so a slow disk slows the query
/// instead of filling memory. Statistics are left out for the `derived` columns.
///
/// Returns the rows written; the caller commits `output`.
///
/// # Errors
/// A failing query, encoder or write.
pub async fn write_parquet(
    mut stream: SendableRecordBatchStream,
    output: &AtomicFile,
    derived: &[String],
    progress: Option<Progress>,
) -> Result<u64> {
    let schema = stream.schema();
    let file = output.open()?;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_write_batch_size(WRITE_BATCH_ROWS);
    // Statistics serve pruning by value; computing them for the corrupted values and the
    // masks costs a third of the encoding time, and training reads those columns whole.
    for column in derived {
        props = props.set_column_statistics_enabled(ColumnPath::from(column.as_str()), EnabledStatistics::None);
    }
    let props = props.build();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let writer = ParallelParquetWriter::try_new(file, schema.clone(), props, threads)?;
    // Up to a row group in flight: the query computes the next row group while the
    // writer encodes this one.
    let (sender, receiver) = std::sync::mpsc::sync_channel::<RecordBatch>(ROW_GROUP_ROWS / WRITE_BATCH_ROWS);
    let writer_thread = std::thread::spawn(move || -> Result<u64> {
        let mut writer = writer;
        let mut rows = 0u64;
        for batch in receiver {
            rows += batch.num_rows() as u64;
            writer.write(&batch)?;
            if let Some(progress) = &progress {
                progress(rows);
            }
        }
        writer.finish()?;
        Ok(rows)
    });
    let mut coalescer = BatchCoalescer::new(schema, WRITE_BATCH_ROWS);
    let produced = async {
        while let Some(batch) = stream.next().await {
            coalescer.push_batch(batch?)?;
            while let Some(batch) = coalescer.next_completed_batch() {
                // A closed channel means the writer failed; its error is reported below.
                if sender.send(batch).is_err() {
                    return Ok(());
                }
            }
        }
        coalescer.finish_buffered_batch()?;
        while let Some(batch) = coalescer.next_completed_batch() {
            if sender.send(batch).is_err() {
                return Ok(());
            }
        }
        Ok::<(), Error>(())
    }
    .await;
    drop(sender);
    let written = writer_thread
        .join()
        .map_err(|_| Error::Internal("the Parquet writer thread panicked".into()))?;
    produced?;
    written
}
