//! Where a stream's output goes: a byte stream (stdout or a file) as NDJSON, CSV or Arrow
//! IPC, flushed after every batch; or a directory of Parquet files, each written under a
//! hidden temporary name and renamed when complete, so a reader never sees a torn file.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::writer::StreamWriter;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::{DataFusionError, Result};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

use super::SinkFormat;
use crate::io::AtomicFile;

/// What a sink wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkSummary {
    /// Rows written.
    pub rows: u64,
    /// Batches written.
    pub batches: u64,
    /// Complete files written (Parquet).
    pub files: Vec<PathBuf>,
}

/// A destination for a stream's batches.
pub trait BatchSink: Send {
    /// Writes one batch (and, for byte streams, flushes it).
    ///
    /// # Errors
    /// When writing fails, e.g. the consumer closed the pipe.
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;

    /// Completes the output: closes the IPC stream or the current Parquet file.
    ///
    /// # Errors
    /// When the last write or the rename fails.
    fn finish(self: Box<Self>) -> Result<SinkSummary>;
}

/// NDJSON, CSV or Arrow IPC into a byte stream, flushed after every batch.
pub struct WriterSink<W: Write + Send> {
    encoder: Encoder<W>,
    summary: SinkSummary,
}

enum Encoder<W: Write> {
    Ndjson(W),
    Csv(W),
    Ipc(Box<StreamWriter<W>>),
}

impl<W: Write + Send> WriterSink<W> {
    /// A sink writing batches of `schema` to `out` in `format` (not Parquet). The CSV
    /// header and the IPC schema are written at once, so a consumer sees them before the
    /// first row.
    ///
    /// # Errors
    /// For Parquet, and when the first write fails.
    pub fn new(format: SinkFormat, schema: &SchemaRef, mut out: W) -> Result<Self> {
        let encoder = match format {
            SinkFormat::Ndjson => Encoder::Ndjson(out),
            SinkFormat::Csv => {
                let header = nested_as_text(&RecordBatch::new_empty(Arc::clone(schema)))?;
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut out)
                    .write(&header)?;
                out.flush()?;
                Encoder::Csv(out)
            }
            SinkFormat::Arrow => {
                let mut writer = StreamWriter::try_new(out, schema)?;
                writer.flush()?;
                Encoder::Ipc(Box::new(writer))
            }
            SinkFormat::Parquet => {
                return Err(DataFusionError::Plan(
                    "Parquet output goes to a directory: use --output DIR with --output-format parquet".into(),
                ));
            }
        };
        Ok(Self {
            encoder,
            summary: SinkSummary::default(),
        })
    }
}

impl<W: Write + Send> BatchSink for WriterSink<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        match &mut self.encoder {
            Encoder::Ndjson(out) => {
                let mut writer = arrow::json::LineDelimitedWriter::new(&mut *out);
                writer.write(batch)?;
                writer.finish()?;
                out.flush()?;
            }
            Encoder::Csv(out) => {
                let batch = nested_as_text(batch)?;
                arrow::csv::WriterBuilder::new()
                    .with_header(false)
                    .build(&mut *out)
                    .write(&batch)?;
                out.flush()?;
            }
            Encoder::Ipc(writer) => {
                writer.write(batch)?;
                writer.flush()?;
            }
        }
        self.summary.rows += batch.num_rows() as u64;
        self.summary.batches += 1;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<SinkSummary> {
        match self.encoder {
            Encoder::Ndjson(mut out) | Encoder::Csv(mut out) => out.flush()?,
            Encoder::Ipc(mut writer) => {
                writer.finish()?;
                writer.flush()?;
            }
        }
        Ok(self.summary)
    }
}

/// When a Parquet file is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Rows per file.
    pub rows: u64,
    /// Also close a file this long after it was opened (checked as batches arrive).
    pub after: Option<Duration>,
}

/// Rotating Parquet files `part-000000.parquet`, `part-000001.parquet`, ... in a
/// directory. A file is written under a hidden temporary name (`.part-NNNNNN.parquet.tmp-*`,
/// see [`AtomicFile`]), then synced and renamed: the final name only ever holds a complete
/// file. Numbering continues after the files already there, so a restarted stream does not
/// overwrite earlier output.
pub struct ParquetSink {
    directory: PathBuf,
    schema: SchemaRef,
    rotation: Rotation,
    next_index: u64,
    current: Option<OpenFile>,
    summary: SinkSummary,
}

struct OpenFile {
    writer: ArrowWriter<BufWriter<File>>,
    file: AtomicFile,
    rows: u64,
    opened: Instant,
}

impl ParquetSink {
    /// A sink into `directory` (created if missing) for batches of `schema`.
    ///
    /// # Errors
    /// When the directory cannot be created or listed, or `rotation.rows` is 0.
    pub fn new(directory: &Path, schema: SchemaRef, rotation: Rotation) -> Result<Self> {
        if rotation.rows == 0 {
            return Err(DataFusionError::Plan("--rotate-rows must be at least 1".into()));
        }
        let io_error =
            |e: io::Error| DataFusionError::Execution(format!("output directory {}: {e}", directory.display()));
        std::fs::create_dir_all(directory).map_err(io_error)?;
        let mut next_index = 0;
        for entry in std::fs::read_dir(directory).map_err(io_error)? {
            let name = entry.map_err(io_error)?.file_name().to_string_lossy().into_owned();
            if let Some(index) = name.strip_prefix("part-").and_then(|n| n.strip_suffix(".parquet"))
                && let Ok(index) = index.parse::<u64>()
            {
                next_index = next_index.max(index + 1);
            }
        }
        Ok(Self {
            directory: directory.to_path_buf(),
            schema,
            rotation,
            next_index,
            current: None,
            summary: SinkSummary::default(),
        })
    }

    fn open(&mut self) -> Result<&mut OpenFile> {
        if self.current.is_none() {
            let name = format!("part-{:06}.parquet", self.next_index);
            self.next_index += 1;
            let file = AtomicFile::create(self.directory.join(&name))?;
            let handle = file.open()?;
            let properties = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .build();
            let writer = ArrowWriter::try_new(BufWriter::new(handle), Arc::clone(&self.schema), Some(properties))?;
            self.current = Some(OpenFile {
                writer,
                file,
                rows: 0,
                opened: Instant::now(),
            });
        }
        self.current
            .as_mut()
            .ok_or_else(|| DataFusionError::Internal("no open Parquet file".into()))
    }

    /// Completes the open file: footer, fsync, rename, fsync of the directory.
    fn close(&mut self) -> Result<()> {
        let Some(open) = self.current.take() else {
            return Ok(());
        };
        let path = open.file.target().to_path_buf();
        let mut handle = open.writer.into_inner()?;
        handle
            .flush()
            .map_err(|e| DataFusionError::Execution(format!("cannot complete {}: {e}", path.display())))?;
        drop(handle);
        open.file.commit()?;
        self.summary.files.push(path);
        Ok(())
    }
}

impl BatchSink for ParquetSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let Rotation { rows: limit, after } = self.rotation;
            let file = self.open()?;
            let take = ((limit - file.rows) as usize).min(batch.num_rows() - offset);
            file.writer.write(&batch.slice(offset, take))?;
            file.rows += take as u64;
            offset += take;
            let expired = after.is_some_and(|after| file.opened.elapsed() >= after);
            if file.rows >= limit || expired {
                self.close()?;
            }
        }
        if batch.num_rows() > 0 {
            self.summary.rows += batch.num_rows() as u64;
            self.summary.batches += 1;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<SinkSummary> {
        self.close()?;
        Ok(std::mem::take(&mut self.summary))
    }
}

/// CSV has no nested values: lists, structs and maps become their display text.
///
/// # Errors
/// When a value cannot be formatted.
pub fn nested_as_text(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let options = FormatOptions::default();
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if field.data_type().is_nested() {
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
            let text: StringArray = (0..column.len())
                .map(|i| column.is_valid(i).then(|| formatter.value(i).to_string()))
                .collect();
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(Arc::new(text));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(Arc::clone(column));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}
