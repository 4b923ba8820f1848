//! The micro-batcher: cuts records into micro-batches of at most N rows, sent as soon as a
//! batch is full or T milliseconds after its first record, whichever comes first.
//!
//! Three stages, each a thread, with bounded hand-overs between them:
//! - the batcher takes the reader's items and cuts micro-batches (the timing lives here);
//! - a [`DecodePool`] of `--decode-threads` threads decodes them, several at once;
//! - the hand-off takes the results back in input order (a queue of at most
//!   `--decode-threads` micro-batches in flight), applies the error policy to the bad
//!   records in order and passes the batches to the query.
//!
//! So the output's rows, the bad records' positions and the counts are the same with one
//! decoding thread or many; only the time differs.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use tokio::sync::mpsc;

use super::InputFormat;
use super::checkpoint::{Mark, SourcePosition};
use super::decode::{DecodePool, Decoded};
use super::policy::{ErrorPolicy, Position, RejectHandler, StreamStats};
use super::schema::same_columns;
use super::shutdown::Shutdown;
use super::source::{Chunk, SourceItem};

/// How often an idle batcher checks for shutdown.
const TICK: Duration = Duration::from_millis(50);
/// How long a shutdown waits for the reader to hand over what it has read.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

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
    /// NDJSON: a record nested deeper than this many arrays and objects is rejected before
    /// it reaches arrow-json's decoder.
    pub max_json_depth: usize,
    /// Threads decoding micro-batches at once (`--decode-threads`).
    pub decode_threads: NonZeroUsize,
}

/// The default number of decoding threads: the cores available to the process.
pub fn default_decode_threads() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// A micro-batch for the query, and the input boundary after it.
#[derive(Debug)]
pub struct InputBatch {
    /// The records' rows (possibly none: every record of the micro-batch was rejected).
    pub batch: RecordBatch,
    /// Set when every record before the boundary was passed on or rejected: where a
    /// restart can continue once this batch's output is committed. `None` in the middle of
    /// an Arrow IPC batch, or for input that has no positions.
    pub end: Option<Mark>,
}

/// The micro-batches of [`spawn`], in input order.
pub type InputBatches = futures::stream::BoxStream<'static, Result<InputBatch>>;

/// Only the rows of `batches`, as a record batch stream of `schema` (for a plan that
/// reads its input as one stream).
pub fn rows_only(schema: SchemaRef, batches: InputBatches) -> SendableRecordBatchStream {
    use futures::StreamExt;
    let rows = batches.filter_map(|input| {
        std::future::ready(match input {
            Ok(input) if input.batch.num_rows() == 0 => None,
            Ok(input) => Some(Ok(input.batch)),
            Err(error) => Some(Err(error)),
        })
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, rows))
}

/// Starts the batcher, its decoding threads and the ordered hand-off over the reader's
/// channel and returns the micro-batches, with `config.schema`. `head` holds items
/// already taken from the channel (to infer the schema); they are batched first. The
/// stream ends at the end of input or shutdown, after a last partial batch; a bad record
/// under `fail`, or a broken input, ends it with an error after the batches before it.
///
/// # Errors
/// When a thread cannot be started.
pub fn spawn(
    source: Receiver<SourceItem>,
    head: Vec<SourceItem>,
    config: BatcherConfig,
    rejects: RejectHandler,
    stats: Arc<StreamStats>,
    shutdown: Shutdown,
) -> std::io::Result<InputBatches> {
    // One batch in the channel: the hand-off passes the next while the query runs this
    // one, and waits when the query is slower.
    let (tx, rx) = mpsc::channel(1);
    // Micro-batches in flight between the batcher and the hand-off, in input order: with
    // as many as there are decoding threads, every thread has one while the hand-off
    // waits for the oldest.
    let (order_tx, order_rx) = sync_channel(config.decode_threads.get());
    let pool = DecodePool::spawn(
        &config,
        config.decode_threads.get(),
        *rejects.policy() == ErrorPolicy::Fail,
    )?;
    let mut handoff = Handoff {
        rejects,
        stats,
        tx,
        schema: Arc::clone(&config.schema),
    };
    std::thread::Builder::new()
        .name("tabssl-stream-handoff".into())
        .spawn(move || {
            // A panic must end the stream with an error, never look like the end of input.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handoff.run(&order_rx))).unwrap_or_else(
                |panic| {
                    Err(DataFusionError::Internal(format!(
                        "the stream's hand-off stopped: {}",
                        super::panic_message(&*panic)
                    )))
                },
            );
            if let Err(error) = ran {
                // The query may be gone (LIMIT reached, sink failed): nothing to tell then.
                let _ = handoff.tx.blocking_send(Err(error));
            }
        })?;
    let mut batcher = Batcher {
        config,
        pool,
        order: order_tx,
        pending: VecDeque::new(),
        pending_rows: 0,
    };
    std::thread::Builder::new()
        .name("tabssl-stream-batcher".into())
        .spawn(move || {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| batcher.run(&source, head, &shutdown)))
                .unwrap_or_else(|panic| {
                    Err(DataFusionError::Internal(format!(
                        "the stream's batcher stopped: {}",
                        super::panic_message(&*panic)
                    )))
                });
            if let Err(error) = ran {
                // After the batches before it; the hand-off may be gone (the query ended).
                let _ = batcher.order.send(Output::Fail(error));
            }
        })?;
    let batches = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|batch| (batch, rx)) });
    Ok(Box::pin(batches))
}

/// Why the batcher or the hand-off stops early.
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

/// What the batcher hands to the hand-off, in input order.
enum Output {
    /// A micro-batch being decoded: its result arrives here; the position after its last
    /// record.
    Decoding(Receiver<Decoded>, Option<SourcePosition>),
    /// An Arrow IPC batch, already decoded.
    Batch(RecordBatch),
    /// A record the reader refused (over a limit), for the error policy.
    Rejected {
        record: Vec<u8>,
        position: Position,
        error: String,
        rows: u64,
    },
    /// The whole input was handled.
    InputDone,
    /// The stream ends with this error.
    Fail(DataFusionError),
}

/// Cuts the reader's records into micro-batches and hands them to the decoding threads.
struct Batcher {
    config: BatcherConfig,
    pool: DecodePool,
    order: SyncSender<Output>,
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
        self.hand(Output::InputDone)
    }

    /// Passes `output` on in order; waits while the hand-off has as many micro-batches in
    /// flight as there are decoding threads.
    fn hand(&self, output: Output) -> Step {
        self.order.send(output).map_err(|_| Halt::QueryGone)
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
                self.hand(Output::Rejected {
                    record,
                    position,
                    error,
                    rows,
                })?;
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
                    self.hand(Output::Batch(batch.slice(offset, length)))?;
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

    /// Hands the first `rows` pending records to the decoding threads.
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
        let end = taken.last().and_then(Chunk::end);
        let decoding = self.pool.submit(taken, rows);
        self.hand(Output::Decoding(decoding, end))
    }
}

/// Takes the batcher's output in order: applies the error policy, passes batches on.
struct Handoff {
    rejects: RejectHandler,
    stats: Arc<StreamStats>,
    tx: mpsc::Sender<Result<InputBatch>>,
    /// The batches' schema.
    schema: SchemaRef,
}

impl Handoff {
    fn run(&mut self, order: &Receiver<Output>) -> Result<()> {
        // The batcher closes the queue when it stops; everything it handed over is handled.
        for output in order {
            let step = match output {
                Output::Decoding(result, end) => match result.recv() {
                    Ok(decoded) => self.take(decoded, end),
                    Err(_) => Err(Halt::Error(DataFusionError::Internal(
                        "a micro-batch was lost: its decoding thread stopped".into(),
                    ))),
                },
                Output::Batch(batch) => self.send(batch, None),
                Output::Rejected {
                    record,
                    position,
                    error,
                    rows,
                } => self
                    .rejects
                    .reject(&record, &position, &error, rows)
                    .map_err(Halt::Error),
                Output::InputDone => {
                    self.stats.set_input_done();
                    Ok(())
                }
                Output::Fail(error) => Err(Halt::Error(error)),
            };
            match step {
                Ok(()) => {}
                Err(Halt::QueryGone) => return Ok(()),
                Err(Halt::Error(error)) => return Err(error),
            }
        }
        Ok(())
    }

    /// Applies the error policy to a micro-batch's bad records, in order, then passes its
    /// good records on, with the boundary `end` after them. When the policy stops the
    /// stream at a bad record, only the rows before it are passed, without a boundary.
    fn take(&mut self, decoded: Decoded, end: Option<SourcePosition>) -> Step {
        let mut failure = None;
        let mut keep = usize::MAX;
        for bad in &decoded.bad {
            if let Err(error) = self.rejects.reject(&bad.record, &bad.position, &bad.error, 1) {
                failure = Some(error);
                keep = bad.good_before;
                break;
            }
        }
        let failure = failure.or(decoded.failure);
        let end = end
            .filter(|_| failure.is_none())
            .map(|position| Mark::at(position, self.rejects.dead_letter_bytes()));
        let batch = match decoded.batch {
            Some(batch) => {
                let rows = batch.num_rows().min(keep);
                batch.slice(0, rows)
            }
            None => RecordBatch::new_empty(Arc::clone(&self.schema)),
        };
        self.send(batch, end)?;
        match failure {
            Some(error) => Err(Halt::Error(error)),
            None => Ok(()),
        }
    }

    /// Passes a batch on; an empty one only when it carries a boundary.
    fn send(&mut self, batch: RecordBatch, end: Option<Mark>) -> Step {
        let rows = batch.num_rows();
        if rows == 0 && end.is_none() {
            return Ok(());
        }
        self.tx
            .blocking_send(Ok(InputBatch { batch, end }))
            .map_err(|_| Halt::QueryGone)?;
        if rows > 0 {
            self.stats.add_passed(rows);
        }
        Ok(())
    }
}

/// Takes the first `count` records of `chunk` into a new chunk.
fn split_front(chunk: &mut Chunk, count: usize) -> Chunk {
    let cut = chunk.records[count].start;
    let front = Chunk {
        source: Arc::clone(&chunk.source),
        file: chunk.file.clone(),
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
