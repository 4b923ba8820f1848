//! The micro-batcher: decodes records into `RecordBatch`es of at most N rows, sent as soon
//! as a batch is full or T milliseconds after its first record, whichever comes first.
//!
//! Records are decoded a batch at a time. When a batch fails to decode, each record is
//! decoded alone to find the bad ones, which go to the error policy with their position;
//! the good ones are decoded again together. So a bad record costs time only in its own
//! batch, and no good record is lost with it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use tokio::sync::mpsc;

use super::InputFormat;
use super::policy::{RejectHandler, StreamStats};
use super::schema::same_columns;
use super::shutdown::Shutdown;
use super::source::{Chunk, SourceItem};

/// How often an idle batcher checks for shutdown.
const TICK: Duration = Duration::from_millis(50);

/// When to emit a batch, and how to decode records.
#[derive(Debug, Clone)]
pub struct BatcherConfig {
    /// The schema records are decoded to (and IPC batches must have).
    pub schema: SchemaRef,
    /// The record format.
    pub format: InputFormat,
    /// Most rows per batch (N).
    pub max_rows: usize,
    /// Longest wait after a batch's first record before it is emitted (T).
    pub max_delay: Duration,
    /// CSV: values matching this are NULL (default: empty fields).
    pub csv_null_regex: Option<regex::Regex>,
}

/// Starts the batcher thread over the reader's channel and returns its batches as a
/// stream with `config.schema`. `head` holds items already taken from the channel (to
/// infer the schema); they are batched first. The stream ends at the end of input or
/// shutdown, after a last partial batch; a bad record under `fail`, or a broken input,
/// ends it with an error after the batches before it.
///
/// # Errors
/// When the thread cannot be started.
pub fn spawn(
    source: Receiver<SourceItem>,
    head: Vec<SourceItem>,
    config: BatcherConfig,
    rejects: RejectHandler,
    stats: Arc<StreamStats>,
    shutdown: Shutdown,
) -> std::io::Result<SendableRecordBatchStream> {
    // One batch in the channel: the batcher decodes the next while the query runs this
    // one, and waits when the query is slower.
    let (tx, rx) = mpsc::channel(1);
    let schema = Arc::clone(&config.schema);
    let mut batcher = Batcher {
        decoder: RecordDecoder {
            config: config.clone(),
            reusable: None,
        },
        config,
        rejects,
        stats,
        tx,
        pending: VecDeque::new(),
        pending_rows: 0,
    };
    std::thread::Builder::new()
        .name("tabssl-stream-batcher".into())
        .spawn(move || {
            if let Err(error) = batcher.run(&source, head, &shutdown) {
                // The query may be gone (LIMIT reached, sink failed): nothing to tell then.
                let _ = batcher.tx.blocking_send(Err(error));
            }
        })?;
    let batches = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|batch| (batch, rx)) });
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
}

/// Why the batcher stops early.
enum Halt {
    /// The query no longer reads (it ended or failed): nothing more to do.
    QueryGone,
    /// The stream ends with this error.
    Error(DataFusionError),
}

impl From<DataFusionError> for Halt {
    fn from(error: DataFusionError) -> Self {
        Self::Error(error)
    }
}

type Step = std::result::Result<(), Halt>;

struct Batcher {
    config: BatcherConfig,
    decoder: RecordDecoder,
    rejects: RejectHandler,
    stats: Arc<StreamStats>,
    tx: mpsc::Sender<Result<RecordBatch>>,
    /// Records not yet emitted, with the time each chunk arrived.
    pending: VecDeque<(Instant, Chunk)>,
    pending_rows: usize,
}

impl Batcher {
    fn run(&mut self, source: &Receiver<SourceItem>, head: Vec<SourceItem>, shutdown: &Shutdown) -> Result<()> {
        match self.run_until_halt(source, head, shutdown) {
            Ok(()) | Err(Halt::QueryGone) => Ok(()),
            Err(Halt::Error(error)) => Err(error),
        }
    }

    /// The time the oldest pending record arrived.
    fn first_at(&self) -> Option<Instant> {
        self.pending.front().map(|(arrived, _)| *arrived)
    }

    fn run_until_halt(&mut self, source: &Receiver<SourceItem>, head: Vec<SourceItem>, shutdown: &Shutdown) -> Step {
        for item in head {
            self.take(item)?;
        }
        loop {
            let wait = match self.first_at() {
                Some(first) => (first + self.config.max_delay)
                    .saturating_duration_since(Instant::now())
                    .min(TICK),
                None => TICK,
            };
            match source.recv_timeout(wait) {
                Ok(item) => self.take(item)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return self.emit(),
            }
            if self
                .first_at()
                .is_some_and(|first| first.elapsed() >= self.config.max_delay)
            {
                self.emit()?;
            }
            if shutdown.is_requested() {
                // What the reader has already read is processed, then the stream ends.
                while let Ok(item) = source.try_recv() {
                    self.take(item)?;
                }
                return self.emit();
            }
        }
    }

    /// Adds one item from the reader, emitting full batches.
    fn take(&mut self, item: SourceItem) -> Step {
        match item {
            SourceItem::Records(chunk) => {
                self.pending_rows += chunk.records.len();
                self.pending.push_back((Instant::now(), chunk));
                while self.pending_rows >= self.config.max_rows {
                    self.emit_rows(self.config.max_rows)?;
                }
            }
            SourceItem::Header { names, position } => {
                let expected: Vec<String> = self.config.schema.fields().iter().map(|f| f.name().clone()).collect();
                if names != expected {
                    self.emit()?;
                    return Err(Halt::Error(DataFusionError::Execution(format!(
                        "the CSV header at {position} has the columns {names:?}, but the schema has {expected:?}: \
                         the columns must match in name and order"
                    ))));
                }
            }
            SourceItem::Oversized { head, position, length } => {
                self.emit()?;
                self.stats.add_read(1);
                let error = format!("the record is {length} bytes, more than --max-record-bytes allows");
                self.rejects.reject(&head, &position, &error)?;
            }
            SourceItem::IpcSchema(schema, name) => {
                if !same_columns(&schema, &self.config.schema) {
                    return Err(Halt::Error(DataFusionError::Execution(format!(
                        "the Arrow IPC stream {name} has the schema {schema:?}, expected {:?}",
                        self.config.schema
                    ))));
                }
            }
            SourceItem::Batch(batch) => {
                self.stats.add_read(batch.num_rows());
                let batch = batch
                    .with_schema(Arc::clone(&self.config.schema))
                    .map_err(DataFusionError::from)?;
                let mut offset = 0;
                while offset < batch.num_rows() {
                    let length = self.config.max_rows.min(batch.num_rows() - offset);
                    self.send(batch.slice(offset, length))?;
                    offset += length;
                }
            }
            SourceItem::Failed(message) => {
                self.emit()?;
                return Err(Halt::Error(DataFusionError::Execution(message)));
            }
        }
        Ok(())
    }

    /// Emits every pending record.
    fn emit(&mut self) -> Step {
        self.emit_rows(self.pending_rows)
    }

    /// Decodes and sends the first `rows` pending records.
    fn emit_rows(&mut self, rows: usize) -> Step {
        if rows == 0 {
            return Ok(());
        }
        let mut taken = Vec::new();
        let mut remaining = rows;
        while remaining > 0 {
            let Some((_, chunk)) = self.pending.front_mut() else {
                break;
            };
            if chunk.records.len() <= remaining {
                remaining -= chunk.records.len();
                taken.extend(self.pending.pop_front().map(|(_, chunk)| chunk));
            } else {
                taken.push(split_front(chunk, remaining));
                remaining = 0;
            }
        }
        self.pending_rows -= rows;
        let (batch, failure) = self.decode(&taken, rows);
        if let Some(batch) = batch {
            self.send(batch)?;
        }
        match failure {
            Some(error) => Err(Halt::Error(error)),
            None => Ok(()),
        }
    }

    fn send(&mut self, batch: RecordBatch) -> Step {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.stats.add_batch();
        self.tx.blocking_send(Ok(batch)).map_err(|_| Halt::QueryGone)
    }

    /// Decodes `rows` records; returns the batch of the good ones and, under `fail`, the
    /// error of the first bad one (the batch then holds the records before it).
    fn decode(&mut self, chunks: &[Chunk], rows: usize) -> (Option<RecordBatch>, Option<DataFusionError>) {
        let all = chunks.iter().map(|c| c.data.as_slice());
        if let Ok(batch) = self.decoder.decode(all)
            && batch.num_rows() == rows
        {
            self.stats.add_read(rows);
            return (Some(batch), None);
        }
        // Find the bad records one by one.
        let mut good: Vec<&[u8]> = Vec::with_capacity(rows);
        let mut failure = None;
        'records: for chunk in chunks {
            for i in 0..chunk.records.len() {
                let record = chunk.record(i);
                self.stats.add_read(1);
                let error = match self.decoder.decode(std::iter::once(record)) {
                    Ok(batch) if batch.num_rows() == 1 => {
                        good.push(record);
                        continue;
                    }
                    Ok(batch) => format!("expected one record on the line, found {}", batch.num_rows()),
                    Err(e) => e.to_string(),
                };
                if let Err(error) = self.rejects.reject(record, &chunk.position(i), &error) {
                    failure = Some(error);
                    break 'records;
                }
            }
        }
        let batch = match self.decoder.decode(good.into_iter()) {
            Ok(batch) => Some(batch),
            Err(e) => {
                let position = chunks.first().map_or_else(String::new, |c| c.position(0).to_string());
                failure = failure.or(Some(DataFusionError::Execution(format!(
                    "records that decode alone fail together (batch starting at {position}): {e}"
                ))));
                None
            }
        };
        (batch, failure)
    }
}

/// Takes the first `count` records of `chunk` into a new chunk.
fn split_front(chunk: &mut Chunk, count: usize) -> Chunk {
    let cut = chunk.records[count].start;
    let front = Chunk {
        source: Arc::clone(&chunk.source),
        data: chunk.data[..cut].to_vec(),
        records: chunk.records.drain(..count).collect(),
    };
    chunk.data.drain(..cut);
    for meta in &mut chunk.records {
        meta.start -= cut;
        meta.end -= cut;
    }
    front
}

/// An arrow decoder for NDJSON or CSV, kept between batches so its buffers are reused.
enum Decoder {
    Json(arrow::json::reader::Decoder),
    Csv(Box<arrow::csv::reader::Decoder>),
}

/// Decodes whole, newline-terminated records into batches of the stream's schema.
struct RecordDecoder {
    config: BatcherConfig,
    /// The decoder of the last successful batch; dropped after an error.
    reusable: Option<Decoder>,
}

impl RecordDecoder {
    fn build(&self) -> Result<Decoder> {
        let schema = Arc::clone(&self.config.schema);
        let batch_size = self.config.max_rows + 1;
        Ok(match self.config.format {
            InputFormat::Csv => {
                let mut builder = arrow::csv::ReaderBuilder::new(schema)
                    .with_header(false)
                    .with_batch_size(batch_size);
                if let Some(regex) = &self.config.csv_null_regex {
                    builder = builder.with_null_regex(regex.clone());
                }
                Decoder::Csv(Box::new(builder.build_decoder()))
            }
            InputFormat::Ndjson => Decoder::Json(
                arrow::json::ReaderBuilder::new(schema)
                    .with_batch_size(batch_size)
                    .build_decoder()?,
            ),
            InputFormat::Arrow => {
                return Err(DataFusionError::Internal(
                    "Arrow IPC batches are not decoded from records".into(),
                ));
            }
        })
    }

    /// Decodes the records in `parts` (at most `max_rows`) into one batch.
    fn decode<'a>(&mut self, parts: impl Iterator<Item = &'a [u8]>) -> Result<RecordBatch> {
        let mut decoder = match self.reusable.take() {
            Some(decoder) => decoder,
            None => self.build()?,
        };
        let batch = match &mut decoder {
            Decoder::Json(json) => {
                feed(parts, |bytes| json.decode(bytes))?;
                json.flush()?
            }
            Decoder::Csv(csv) => {
                feed(parts, |bytes| csv.decode(bytes))?;
                csv.flush()?
            }
        };
        self.reusable = Some(decoder);
        Ok(batch.unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(&self.config.schema))))
    }
}

/// Hands every byte of `parts` to `decode`, which returns how many it took.
fn feed<'a>(
    parts: impl Iterator<Item = &'a [u8]>,
    mut decode: impl FnMut(&[u8]) -> Result<usize, ArrowError>,
) -> Result<(), ArrowError> {
    for part in parts {
        let mut rest = part;
        while !rest.is_empty() {
            let used = decode(rest)?;
            if used == 0 {
                break;
            }
            rest = &rest[used..];
        }
    }
    Ok(())
}
