//! Streaming: the same SQL over input that never ends, batch by batch, in bounded memory.
//!
//! The pieces, in the order data flows through them:
//! - [`source`]: a reader thread turns stdin, a growing file or a directory of files into
//!   records (NDJSON lines, CSV rows) or Arrow IPC batches, each tagged with where it came
//!   from (`stdin line 17, byte 1234`);
//! - [`batcher`]: a micro-batcher cuts records into batches of at most N rows, emitting
//!   early when T milliseconds have passed since a batch's first record; [`decode`] turns
//!   them into `RecordBatch`es on several threads, taken back in input order, and the error
//!   policy ([`policy`]) gets the records that do not fit the schema ([`schema`]);
//! - [`query`]: the batches become the unbounded table `input` of a DataFusion plan; this
//!   is also the library entry point ([`query::execute_stream`]). A query that treats each
//!   row on its own runs batch by batch on every core instead, outputs in input order
//!   ([`per_batch`]);
//! - [`sink`]: the plan's output goes to stdout (NDJSON, CSV, Arrow IPC, flushed per batch)
//!   or to rotating Parquet parts in a locked directory ([`parts`]), each published whole
//!   and carrying the [`checkpoint`] a restart continues from: exactly once across crashes.
//!
//! Every hand-over between them is a bounded channel, so a slow consumer stops the reader
//! and, through the pipe, the producer: memory does not grow with the input. [`shutdown`]
//! turns SIGINT/SIGTERM into an orderly end of input; a second signal exits at once.

pub mod batcher;
pub mod checkpoint;
pub mod decode;
pub mod flat_json;
pub mod follow;
pub mod ipc;
pub mod parts;
pub mod per_batch;
pub mod policy;
pub mod query;
pub mod schema;
pub mod shutdown;
pub mod sink;
pub mod source;

pub use query::{PreparedStream, execute_stream, prepare_stream, streaming_context, streaming_session};

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
