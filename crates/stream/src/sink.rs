//! Where a stream's output goes: a byte stream (stdout or a file) as NDJSON, CSV or Arrow
//! IPC, flushed after every batch; or a directory of Parquet parts, each written under a
//! hidden temporary name and published when complete, so a reader never sees a torn file,
//! each carrying the checkpoint a restart continues from.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
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
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::WriterProperties;

use super::SinkFormat;
use super::checkpoint::{CHECKPOINT_KEY, Checkpoint, Fingerprint, Mark, Resume};
use super::parts::PartDirectory;
use tabssl_functions::atomic::AtomicFile;

/// What a sink wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkSummary {
    /// Rows written.
    pub rows: u64,
    /// Batches written.
    pub batches: u64,
    /// Complete files written (Parquet).
    pub files: Vec<PathBuf>,
    /// Parquet: where a restart continues (a boundary, and the output rows after it that
    /// the parts already hold), or why it cannot.
    pub resume: Option<std::result::Result<(Mark, u64), String>>,
}

/// A destination for a stream's batches.
pub trait BatchSink: Send {
    /// Writes one batch (and, for byte streams, flushes it).
    ///
    /// # Errors
    /// When writing fails, e.g. the consumer closed the pipe.
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;

    /// Every output row of the input before `mark` was written: a Parquet part closed from
    /// now on records `mark` as where a restart continues. Byte streams ignore it.
    ///
    /// # Errors
    /// When a part that was due closes and its commit fails.
    fn mark(&mut self, _mark: &Mark) -> Result<()> {
        Ok(())
    }

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
                    "Parquet output goes to a directory of parts, not to a stream".into(),
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

/// What each committed part records about the stream (see [`super::checkpoint`]).
#[derive(Debug, Clone)]
pub struct Ledger {
    /// What produces the rows.
    pub fingerprint: Fingerprint,
    /// `Err(why)` when a restart cannot continue from a part (input that cannot be
    /// replayed, a query that is not row by row).
    pub resumable: std::result::Result<(), String>,
    /// The boundary the output starts at (the resume point, or the input's start).
    pub start: Mark,
    /// Output rows of the records from `start` on that earlier parts already hold (and
    /// this run skips).
    pub skip_rows: u64,
    /// Rows in earlier parts since the stream started.
    pub rows_written: u64,
    /// The dead-letter file, synced before each part that counts its length.
    pub dead_letter: Option<PathBuf>,
}

/// Rotating Parquet parts in a locked [`PartDirectory`]. A part is written under a hidden
/// temporary name, then synced and published under its number without replacing anything:
/// a final name only ever holds a complete part, committed once. Each part's footer holds
/// the stream's [`Checkpoint`] as of its last row, so a restart continues after it.
///
/// A part closes at a clean input boundary once it holds `--rotate-rows` rows, when one
/// falls inside the same input micro-batch; otherwise mid-batch, recording how many of
/// that batch's output rows it holds.
pub struct ParquetSink {
    parts: PartDirectory,
    schema: SchemaRef,
    rotation: Rotation,
    current: Option<OpenFile>,
    /// The current part is full: it closes at the next boundary or before the next row.
    full: bool,
    ledger: Ledger,
    /// Output rows written since `ledger.start`.
    rows_since_start: u64,
    /// The resume point of the last committed part (at first, the one this run started at).
    committed: (Mark, u64),
    summary: SinkSummary,
}

struct OpenFile {
    writer: ArrowWriter<BufWriter<File>>,
    file: AtomicFile,
    rows: u64,
    opened: Instant,
}

impl ParquetSink {
    /// A sink into `parts` for batches of `schema`.
    ///
    /// # Errors
    /// When `rotation.rows` is 0.
    pub fn new(parts: PartDirectory, schema: SchemaRef, rotation: Rotation, ledger: Ledger) -> Result<Self> {
        if rotation.rows == 0 {
            return Err(DataFusionError::Plan(
                "the rows per Parquet part must be at least 1".into(),
            ));
        }
        let rows_since_start = ledger.skip_rows;
        let committed = (ledger.start.clone(), ledger.skip_rows);
        Ok(Self {
            committed,
            parts,
            schema,
            rotation,
            current: None,
            full: false,
            ledger,
            rows_since_start,
            summary: SinkSummary::default(),
        })
    }

    fn open(&mut self) -> Result<&mut OpenFile> {
        if self.current.is_none() {
            let file = AtomicFile::create(self.parts.next_part())?;
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

    /// The checkpoint a part closed now records.
    fn checkpoint(&self, rows_written: u64) -> Checkpoint {
        let resume = self.ledger.resumable.clone().map(|()| Resume {
            mark: self.ledger.start.clone(),
            skip_rows: self.rows_since_start,
        });
        Checkpoint::new(self.ledger.fingerprint.clone(), resume, rows_written)
    }

    /// Completes the open part: checkpoint, footer, fsync, publication, fsync of the
    /// directory.
    fn close(&mut self) -> Result<()> {
        self.full = false;
        let Some(open) = self.current.take() else {
            return Ok(());
        };
        let rows_written = self.ledger.rows_written + open.rows;
        let checkpoint = self.checkpoint(rows_written);
        let path = open.file.target().to_path_buf();
        let mut writer = open.writer;
        writer.append_key_value_metadata(KeyValue::new(CHECKPOINT_KEY.to_string(), checkpoint.to_json()?));
        let mut handle = writer.into_inner()?;
        handle
            .flush()
            .map_err(|e| DataFusionError::Execution(format!("cannot complete {}: {e}", path.display())))?;
        drop(handle);
        if let Some(dead_letter) = &self.ledger.dead_letter {
            // The part counts the dead-letter file's length: that length must outlive a crash.
            File::open(dead_letter).and_then(|f| f.sync_all()).map_err(|e| {
                DataFusionError::Execution(format!(
                    "cannot sync the dead-letter file {}: {e}",
                    dead_letter.display()
                ))
            })?;
        }
        open.file.commit_new()?;
        self.ledger.rows_written = rows_written;
        self.committed = (self.ledger.start.clone(), self.rows_since_start);
        self.summary.files.push(path);
        Ok(())
    }

    fn expired(&self) -> bool {
        self.current
            .as_ref()
            .zip(self.rotation.after)
            .is_some_and(|(file, after)| file.opened.elapsed() >= after)
    }
}

impl BatchSink for ParquetSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if self.full {
                self.close()?;
            }
            let limit = self.rotation.rows;
            let file = self.open()?;
            let take = ((limit - file.rows) as usize).min(batch.num_rows() - offset);
            file.writer.write(&batch.slice(offset, take))?;
            file.rows += take as u64;
            let full = file.rows >= limit;
            offset += take;
            self.rows_since_start += take as u64;
            self.full = full || self.expired();
        }
        if batch.num_rows() > 0 {
            self.summary.rows += batch.num_rows() as u64;
            self.summary.batches += 1;
        }
        Ok(())
    }

    fn mark(&mut self, mark: &Mark) -> Result<()> {
        self.ledger.start = mark.clone();
        self.rows_since_start = 0;
        if self.full || self.expired() {
            self.close()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<SinkSummary> {
        self.close()?;
        let mut summary = std::mem::take(&mut self.summary);
        summary.resume = Some(match &self.ledger.resumable {
            Ok(()) => Ok(self.committed.clone()),
            Err(why) => Err(why.clone()),
        });
        Ok(summary)
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
