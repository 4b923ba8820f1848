//! Streaming: the same SQL over input that never ends, batch by batch, in bounded memory.
//!
//! [`run_stream`] runs a whole [`StreamJob`] (source, query, sink, exactly once into
//! Parquet parts across restarts; `tabssl stream` is this job), and [`execute_stream`]
//! runs a query over a stream of batches the caller provides.
//!
//! The pieces, in the order data flows through them:
//! - `source`: a reader thread turns stdin, a growing file or a directory of files into
//!   records (NDJSON lines, CSV rows) or Arrow IPC batches, each tagged with where it came
//!   from (`stdin line 17, byte 1234`);
//! - `batcher`: a micro-batcher cuts records into batches of at most N rows, emitting
//!   early when T milliseconds have passed since a batch's first record; `decode` turns
//!   them into `RecordBatch`es on several threads, taken back in input order, and the error
//!   policy (`policy`) gets the records that do not fit the schema (`schema`);
//! - `query`: the batches become the unbounded table `input` of a DataFusion plan. A query
//!   that treats each row on its own runs batch by batch on every core instead, outputs in
//!   input order (`per_batch`);
//! - `sink`: the plan's output goes to stdout (NDJSON, CSV, Arrow IPC, flushed per batch)
//!   or to rotating Parquet parts in a locked directory (`parts`), each published whole
//!   and carrying the `checkpoint` a restart continues from: exactly once across crashes.
//!
//! Every hand-over between them is a bounded channel, so a slow consumer stops the reader
//! and, through the pipe, the producer: memory does not grow with the input. `shutdown`
//! turns SIGINT/SIGTERM into an orderly end of input; a second signal exits at once.

pub(crate) mod batcher;
pub(crate) mod checkpoint;
pub(crate) mod decode;
pub(crate) mod flat_json;
pub(crate) mod follow;
pub(crate) mod ipc;
pub(crate) mod job;
pub(crate) mod parts;
pub(crate) mod per_batch;
pub(crate) mod policy;
pub(crate) mod query;
pub(crate) mod schema;
pub(crate) mod shutdown;
pub(crate) mod sink;
pub(crate) mod source;

pub use job::{MAX_JSON_DEPTH, StreamFailure, StreamJob, StreamOutput, StreamReport, run_stream};
pub use per_batch::{PerBatchPlan, is_row_local, per_batch_session, run_in_order};
pub use policy::ErrorPolicy;
pub use query::{INPUT_TABLE, PreparedStream, execute_stream, prepare_stream, streaming_context, streaming_session};
pub use schema::load_schema;
pub use shutdown::Shutdown;
pub use sink::{Rotation, nested_as_text};
pub use source::SourceSpec;

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// The record formats a stream can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// One JSON object per line.
    Ndjson,
    /// Comma-separated values, one record per line (with `--csv-multiline`, a quoted field
    /// may hold newlines).
    Csv,
    /// The Arrow IPC streaming format.
    Arrow,
}

/// The formats a stream can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFormat {
    /// One JSON object per line; embeddings are JSON arrays.
    Ndjson,
    /// CSV with a header; list columns are written as `[a, b, ...]` text.
    Csv,
    /// The Arrow IPC streaming format.
    Arrow,
    /// Parquet files in a directory, rotated every `--rotate-rows` rows.
    Parquet,
}
