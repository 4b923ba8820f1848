//! The export's file writer: fixed-size batches (and, in Parquet, row groups), so the bytes
//! do not depend on DataFusion's batch size, encoded on every core while the query computes
//! the next batches.

use std::fs::File;
use std::io::BufWriter;

use arrow::array::RecordBatch;
use arrow::compute::BatchCoalescer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::{FileWriter, IpcWriteOptions};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;
use futures::StreamExt;

use super::Progress;
use super::output::{ExportCompression, ExportFormat};
use crate::parallel_parquet::ParallelParquetWriter;
use tabssl_functions::atomic::AtomicFile;
use tabssl_functions::{Error, Result};

/// Rows per written batch, row group page unit: fixed so output bytes do not depend on
/// DataFusion's batch size.
pub const WRITE_BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// How the export's file is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteSettings {
    /// The file format.
    pub format: ExportFormat,
    /// The codec.
    pub compression: ExportCompression,
    /// Columns written without statistics (Parquet): the derived ones.
    pub derived: Vec<String>,
}

/// The encoder behind the writer thread.
enum Encoder {
    Parquet(ParallelParquetWriter<File>),
    Arrow(FileWriter<BufWriter<File>>),
}

impl Encoder {
    fn new(file: File, schema: SchemaRef, settings: &WriteSettings) -> Result<Self> {
        match settings.format {
            ExportFormat::Parquet => {
                let mut props = WriterProperties::builder()
                    .set_compression(settings.compression.parquet()?)
                    .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                    .set_write_batch_size(WRITE_BATCH_ROWS);
                // Statistics serve pruning by value; computing them for the corrupted values
                // and the masks costs a third of the encoding time, and training reads those
                // columns whole.
                for column in &settings.derived {
                    props =
                        props.set_column_statistics_enabled(ColumnPath::from(column.as_str()), EnabledStatistics::None);
                }
                let threads = std::thread::available_parallelism().map_or(1, usize::from);
                Ok(Self::Parquet(ParallelParquetWriter::try_new(
                    file,
                    schema,
                    props.build(),
                    threads,
                )?))
            }
            ExportFormat::Arrow => {
                let options = IpcWriteOptions::default().try_with_compression(settings.compression.arrow()?)?;
                Ok(Self::Arrow(FileWriter::try_new_with_options(
                    BufWriter::new(file),
                    &schema,
                    options,
                )?))
            }
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Self::Parquet(writer) => Ok(writer.write(batch)?),
            Self::Arrow(writer) => Ok(writer.write(batch)?),
        }
    }

    fn finish(self) -> Result<()> {
        match self {
            Self::Parquet(writer) => Ok(writer.finish().map(drop)?),
            Self::Arrow(mut writer) => {
                writer.finish()?;
                let file = writer.into_inner()?;
                file.into_inner()
                    .map_err(|e| Error::Invalid(format!("writing the Arrow file: {}", e.error())))?;
                Ok(())
            }
        }
    }
}

/// Streams the query's batches, cut to fixed-size batches, to a writer thread: encoding
/// (Parquet: on every core, column by column) overlaps with computing the next batches,
/// and the bounded channel holds at most one row group, so a slow disk slows the query
/// instead of filling memory.
///
/// Returns the rows written; the caller commits `output`.
///
/// # Errors
/// A failing query, encoder or write, or a codec the format does not have.
pub async fn write_file(
    mut stream: SendableRecordBatchStream,
    output: &AtomicFile,
    settings: &WriteSettings,
    progress: Option<Progress>,
) -> Result<u64> {
    let schema = stream.schema();
    let writer = Encoder::new(output.open()?, schema.clone(), settings)?;
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
