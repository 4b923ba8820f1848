//! The micro-batcher: decodes records into `RecordBatch`es of at most N rows, sent as soon
//! as a batch is full or T milliseconds after its first record, whichever comes first.
//!
//! Records are decoded a batch at a time. When a batch fails to decode, each record is
//! decoded alone to find the bad ones, which go to the error policy with their position;
//! the good ones are decoded again together. So a bad record costs time only in its own
//! batch, and no good record is lost with it. A decoder is reused only after a decode that
//! returned exactly the rows it was given: a record that fails can leave a decoder inside
//! a quoted field or an object, and the next records must not land there.

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
/// How long a shutdown waits for the reader to hand over what it has read.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Stack of the batcher thread: decoders recurse over nested values, up to
/// `--max-json-depth` levels.
const BATCHER_STACK_BYTES: usize = 64 << 20;

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
    /// NDJSON: numbers and booleans in string fields are kept as their text (for inferred
    /// schemas, where a field seen with both becomes a string); otherwise they are errors.
    pub json_coerce_primitives: bool,
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
        .stack_size(BATCHER_STACK_BYTES)
        .spawn(move || {
            // A panic must end the stream with an error, never look like the end of input.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| batcher.run(&source, head, &shutdown)))
                .unwrap_or_else(|panic| {
                    Err(DataFusionError::Internal(format!(
                        "the stream's batcher stopped: {}",
                        super::panic_message(&*panic)
                    )))
                });
            if let Err(error) = ran {
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
                Err(RecvTimeoutError::Disconnected) => return self.finish(),
            }
            if self
                .first_at()
                .is_some_and(|first| first.elapsed() >= self.config.max_delay)
            {
                self.emit()?;
            }
            if shutdown.is_requested() {
                return self.drain(source);
            }
        }
    }

    /// After a shutdown: processes what the reader has already read, until it stops. A
    /// reader blocked on an idle input holds no record; it is not waited for longer than
    /// [`SHUTDOWN_GRACE`], and the input then does not count as fully handled.
    fn drain(&mut self, source: &Receiver<SourceItem>) -> Step {
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        loop {
            match source.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(item) => self.take(item)?,
                Err(RecvTimeoutError::Disconnected) => return self.finish(),
                Err(RecvTimeoutError::Timeout) => return self.emit(),
            }
        }
    }

    /// Emits what is pending at the end of the input and records that all of it was handled.
    fn finish(&mut self) -> Step {
        self.emit()?;
        self.stats.set_input_done();
        Ok(())
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
            SourceItem::Rejected {
                record,
                position,
                error,
                rows,
            } => {
                // The records before it go first, so the output keeps the input's order.
                self.emit()?;
                self.rejects.reject(&record, &position, &error, rows)?;
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
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        self.tx.blocking_send(Ok(batch)).map_err(|_| Halt::QueryGone)?;
        self.stats.add_passed(rows);
        Ok(())
    }

    /// Decodes `rows` records; returns the batch of the good ones and, under `fail`, the
    /// error of the first bad one (the batch then holds the records before it).
    fn decode(&mut self, chunks: &[Chunk], rows: usize) -> (Option<RecordBatch>, Option<DataFusionError>) {
        let all = chunks.iter().map(|c| c.data.as_slice());
        if let Ok(batch) = self.decoder.decode(all, rows) {
            return (Some(batch), None);
        }
        // Find the bad records one by one.
        let mut good: Vec<&[u8]> = Vec::with_capacity(rows);
        let mut failure = None;
        'records: for chunk in chunks {
            for i in 0..chunk.records.len() {
                let record = chunk.record(i);
                let error = match self.decoder.decode(std::iter::once(record), 1) {
                    Ok(_) => {
                        good.push(record);
                        continue;
                    }
                    Err(e) => e.to_string(),
                };
                if let Err(error) = self.rejects.reject(record, &chunk.position(i), &error, 1) {
                    failure = Some(error);
                    break 'records;
                }
            }
        }
        let expected = good.len();
        let batch = match self.decoder.decode(good.into_iter(), expected) {
            Ok(batch) => Some(batch),
            Err(e) => {
                let position = chunks.first().map_or_else(String::new, |c| c.position(0).to_string());
                failure = failure.or(Some(DataFusionError::Execution(format!(
                    "{expected} records that decode alone fail together (batch starting at {position}): {e}"
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
                    .with_coerce_primitive(self.config.json_coerce_primitives)
                    .build_decoder()?,
            ),
            InputFormat::Arrow => {
                return Err(DataFusionError::Internal(
                    "Arrow IPC batches are not decoded from records".into(),
                ));
            }
        })
    }

    /// Decodes the records in `parts` (at most `max_rows`), which hold `expected` records,
    /// into one batch of exactly that many rows.
    ///
    /// # Errors
    /// The decoder's error, or a row count other than `expected` (a record that is
    /// incomplete, or a line holding two). The decoder is then dropped, never reused.
    fn decode<'a>(&mut self, parts: impl Iterator<Item = &'a [u8]>, expected: usize) -> Result<RecordBatch> {
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
        let batch = batch.unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(&self.config.schema)));
        match batch.num_rows() {
            rows if rows == expected => {
                self.reusable = Some(decoder);
                Ok(batch)
            }
            rows if rows < expected => Err(DataFusionError::Execution(format!(
                "the record is incomplete: it ends inside a quoted field, a string or an object \
                 ({rows} of {expected} records decoded)"
            ))),
            rows => Err(DataFusionError::Execution(format!(
                "expected {expected} records, found {rows}: a line holds more than one record"
            ))),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};
    use proptest::prelude::*;

    fn decoder(format: InputFormat) -> RecordDecoder {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("v", DataType::Float64, true),
        ]));
        RecordDecoder {
            config: BatcherConfig {
                schema,
                format,
                max_rows: 64,
                max_delay: Duration::from_secs(1),
                csv_null_regex: None,
                json_coerce_primitives: false,
            },
            reusable: None,
        }
    }

    /// A good record, or bytes that may be anything.
    #[derive(Debug, Clone)]
    enum Record {
        Good(i64),
        Noise(Vec<u8>),
    }

    fn record() -> impl Strategy<Value = Record> {
        let noise = prop::collection::vec(prop::sample::select(b"{}[]\",:0123456789.abc \\\t".to_vec()), 0..24);
        prop_oneof![(0i64..1000).prop_map(Record::Good), noise.prop_map(Record::Noise)]
    }

    fn text(record: &Record, csv: bool) -> Vec<u8> {
        let mut bytes = match (record, csv) {
            (Record::Good(id), false) => format!("{{\"id\": {id}, \"v\": 1.5}}").into_bytes(),
            (Record::Good(id), true) => format!("{id},1.5").into_bytes(),
            (Record::Noise(bytes), _) => bytes.clone(),
        };
        bytes.push(b'\n');
        bytes
    }

    proptest! {
        /// The decoder of a failed record is never reused: after any mix of good and broken
        /// records decoded one by one, the good ones decode together to exactly their rows.
        #[test]
        fn a_failed_record_never_swallows_the_next_ones(records in prop::collection::vec(record(), 1..30), csv in any::<bool>()) {
            let mut decoder = decoder(if csv { InputFormat::Csv } else { InputFormat::Ndjson });
            let texts: Vec<Vec<u8>> = records.iter().map(|r| text(r, csv)).collect();
            let mut good = Vec::new();
            for (record, bytes) in records.iter().zip(&texts) {
                let decoded = decoder.decode(std::iter::once(bytes.as_slice()), 1);
                if matches!(record, Record::Good(_)) {
                    prop_assert!(decoded.is_ok(), "a good record failed after the ones before it: {decoded:?}");
                }
                if decoded.is_ok() {
                    good.push(bytes.as_slice());
                }
            }
            let expected = good.len();
            let batch = decoder.decode(good.into_iter(), expected).expect("records that decode alone decode together");
            prop_assert_eq!(batch.num_rows(), expected);
        }
    }
}
