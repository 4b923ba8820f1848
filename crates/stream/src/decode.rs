//! Decoding micro-batches of records on several threads, in order.
//!
//! A [`DecodePool`] runs one [`RecordDecoder`] per thread. Each micro-batch is a job; the
//! batcher hands jobs out in input order and takes their results back in that same order
//! (each job has its own reply channel, queued in order), so the output's row order does
//! not depend on which thread finished first.
//!
//! A job whose records decode together is one batch. When they do not, each record is
//! decoded alone to find the bad ones, which are returned with their position (the
//! batcher applies the error policy to them, in order); the good ones are decoded again
//! together. So a bad record costs time only in its own batch, and no good record is lost
//! with it. A decoder is reused only after a decode that returned exactly the rows it was
//! given: a record that fails can leave a decoder inside a quoted field or an object, and
//! the next records must not land there.

use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use datafusion::error::{DataFusionError, Result};

use super::InputFormat;
use super::batcher::BatcherConfig;
use super::flat_json::FlatJson;
use super::policy::Position;
use super::source::Chunk;
use tabssl_functions::setting::Setting;

/// Stack of a decoding thread: decoders recurse over nested values, up to
/// `--max-json-depth` levels.
const DECODER_STACK_BYTES: usize = 64 << 20;

/// A record that does not decode, for the error policy.
#[derive(Debug)]
pub struct BadRecord {
    /// Its bytes.
    pub record: Vec<u8>,
    /// Where it came from.
    pub position: Position,
    /// The decoder's error.
    pub error: String,
    /// How many good records of the same job come before it: the rows of the job's batch
    /// that precede it.
    pub good_before: usize,
}

/// What one job decoded to.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The good records, in order (`None` when they failed together, see `failure`).
    pub batch: Option<RecordBatch>,
    /// The bad records, in order. With `stop_at_first_bad`, at most the first one.
    pub bad: Vec<BadRecord>,
    /// Records that decode alone but not together: the job's good records are lost, and
    /// the stream ends with this error after the bad records were handled.
    pub failure: Option<DataFusionError>,
}

/// Decodes `rows` records; on failure, finds the bad ones one by one. With
/// `stop_at_first_bad` (the `fail` policy, which ends the stream at the first bad record),
/// only the records before the first bad one are decoded into the batch.
pub fn decode_job(decoder: &mut RecordDecoder, chunks: &[Chunk], rows: usize, stop_at_first_bad: bool) -> Decoded {
    let records = chunks.iter().flat_map(|c| (0..c.records.len()).map(|i| c.record(i)));
    let all = chunks.iter().map(|c| c.data.as_slice());
    if let Ok(batch) = decoder.decode(records, all, rows) {
        return Decoded {
            batch: Some(batch),
            ..Decoded::default()
        };
    }
    // Find the bad records one by one.
    let mut good: Vec<&[u8]> = Vec::with_capacity(rows);
    let mut bad = Vec::new();
    'records: for chunk in chunks {
        for i in 0..chunk.records.len() {
            let record = chunk.record(i);
            match decoder.decode(std::iter::once(record), std::iter::once(record), 1) {
                Ok(_) => good.push(record),
                Err(e) => {
                    bad.push(BadRecord {
                        record: record.to_vec(),
                        position: chunk.position(i),
                        error: e.to_string(),
                        good_before: good.len(),
                    });
                    if stop_at_first_bad {
                        break 'records;
                    }
                }
            }
        }
    }
    let expected = good.len();
    match decoder.decode(good.iter().copied(), good.iter().copied(), expected) {
        Ok(batch) => Decoded {
            batch: Some(batch),
            bad,
            failure: None,
        },
        Err(e) => {
            let position = chunks.first().map_or_else(String::new, |c| c.position(0).to_string());
            Decoded {
                batch: None,
                bad,
                failure: Some(DataFusionError::Execution(format!(
                    "{expected} records that decode alone fail together (batch starting at {position}): {e}"
                ))),
            }
        }
    }
}

/// One micro-batch to decode, and where its result goes.
struct Job {
    chunks: Vec<Chunk>,
    rows: usize,
    reply: SyncSender<Decoded>,
}

/// Threads that decode jobs, each with its own decoder.
pub struct DecodePool {
    jobs: Option<Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl DecodePool {
    /// Starts `threads` decoding threads for records of `config`'s format and schema.
    /// With `stop_at_first_bad`, a job stops looking for bad records at the first one.
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub fn spawn(config: &BatcherConfig, threads: usize, stop_at_first_bad: bool) -> std::io::Result<Self> {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let mut decoder = RecordDecoder::new(config.clone());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("tabssl-stream-decode-{i}"))
                    .stack_size(DECODER_STACK_BYTES)
                    .spawn(move || work(&rx, &mut decoder, stop_at_first_bad))?,
            );
        }
        Ok(Self {
            jobs: Some(tx),
            threads: handles,
        })
    }

    /// Queues `rows` records for decoding; the result arrives on the returned channel.
    /// Jobs are taken in the order they are submitted.
    pub fn submit(&self, chunks: Vec<Chunk>, rows: usize) -> Receiver<Decoded> {
        let (reply, result) = sync_channel(1);
        if let Some(jobs) = &self.jobs {
            // The threads only stop when the pool is dropped: a job that cannot be queued
            // drops its reply sender, which the receiver sees as a lost job.
            let _ = jobs.send(Job { chunks, rows, reply });
        }
        result
    }
}

impl Drop for DecodePool {
    fn drop(&mut self) {
        // Closing the queue ends the threads once they finish their job.
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A decoding thread: takes jobs until the queue closes.
fn work(jobs: &Mutex<Receiver<Job>>, decoder: &mut RecordDecoder, stop_at_first_bad: bool) {
    loop {
        // The lock is held while waiting, so one thread waits on the queue and the others
        // on the lock; a poisoned lock (a thread panicked while waiting) still hands jobs out.
        let job = match jobs.lock() {
            Ok(queue) => queue.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = job else {
            return;
        };
        // A panic (a decoder bug on strange input) must end the stream with an error,
        // never lose the job's rows in silence; the decoder is rebuilt after it.
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            decode_job(decoder, &job.chunks, job.rows, stop_at_first_bad)
        }))
        .unwrap_or_else(|panic| {
            decoder.reusable = None;
            Decoded {
                failure: Some(DataFusionError::Internal(format!(
                    "a stream decoding thread stopped: {}",
                    super::panic_message(&*panic)
                ))),
                ..Decoded::default()
            }
        });
        // The batcher may have stopped (the query ended): nothing to hand the result to.
        let _ = job.reply.send(decoded);
    }
}

/// An arrow decoder for NDJSON or CSV, kept between batches so its buffers are reused.
enum Decoder {
    Json(arrow::json::reader::Decoder),
    Csv(Box<arrow::csv::reader::Decoder>),
}

/// Decodes whole, newline-terminated records into batches of the stream's schema.
pub struct RecordDecoder {
    config: BatcherConfig,
    /// The decoder of the last successful batch; dropped after an error.
    reusable: Option<Decoder>,
    /// NDJSON: the fast path for flat records, where the schema allows it.
    flat: Option<FlatJson>,
}

impl RecordDecoder {
    /// A decoder for `config`'s format and schema, built at its first use.
    pub fn new(config: BatcherConfig) -> Self {
        let flat = match config.format {
            InputFormat::Ndjson => FlatJson::for_schema(&config.schema),
            InputFormat::Csv | InputFormat::Arrow => None,
        };
        Self {
            config,
            reusable: None,
            flat,
        }
    }

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

    /// Decodes `records` (at most `max_rows`, each one newline-terminated line), which
    /// must be exactly `expected`, into one batch of that many rows. `parts` holds the same
    /// bytes in as few slices as possible, for arrow's decoders, which take bytes in any
    /// pieces and pay per call.
    ///
    /// # Errors
    /// The decoder's error, or a row count other than `expected` (a record that is
    /// incomplete, or a line holding two). The decoder is then dropped, never reused.
    pub fn decode<'a>(
        &mut self,
        records: impl Iterator<Item = &'a [u8]> + Clone,
        parts: impl Iterator<Item = &'a [u8]>,
        expected: usize,
    ) -> Result<RecordBatch> {
        if let Some(batch) = self
            .flat
            .as_ref()
            .and_then(|flat| flat.decode(records.clone(), expected))
        {
            return Ok(batch);
        }
        // The flat path takes no nested value; arrow-json's decoder recurses over them.
        if self.config.format == InputFormat::Ndjson {
            let limit = self.config.max_json_depth;
            if records.into_iter().any(|r| json_nesting_exceeds(r, limit)) {
                return Err(DataFusionError::Execution(format!(
                    "the record nests arrays and objects deeper than {} ({limit}) allows; raise it to accept \
                     the record",
                    Setting::MaxJsonDepth,
                )));
            }
        }
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

/// Whether a JSON text nests arrays and objects deeper than `limit`. Counting the opening
/// brackets first makes the common case (a flat record) one vectorised scan.
fn json_nesting_exceeds(record: &[u8], limit: usize) -> bool {
    if memchr::memchr2_iter(b'{', b'[', record).count() <= limit {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in record {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
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
    use std::num::NonZeroUsize;
    use std::time::Duration;

    fn decoder(format: InputFormat) -> RecordDecoder {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("v", DataType::Float64, true),
        ]));
        RecordDecoder::new(BatcherConfig {
            schema,
            format,
            max_rows: 64,
            max_delay: Duration::from_secs(1),
            csv_null_regex: None,
            json_coerce_primitives: false,
            max_json_depth: 8,
            decode_threads: NonZeroUsize::MIN,
        })
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

    #[test]
    fn json_nesting_is_measured_outside_strings() {
        assert!(!json_nesting_exceeds(br#"{"a": [1, 2], "b": {"c": 3}}"#, 2));
        assert!(json_nesting_exceeds(br#"{"a": [1, {"b": [2]}]}"#, 3));
        let brackets_in_text = br#"{"text": "[[[[{{{{\"[[[["}"#;
        assert!(!json_nesting_exceeds(brackets_in_text, 1));
        let deep = format!("{{\"a\": {}1{}}}", "[".repeat(30_000), "]".repeat(30_000));
        assert!(json_nesting_exceeds(deep.as_bytes(), 64));
        assert!(!json_nesting_exceeds(deep.as_bytes(), 30_001));
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
                let decoded = decoder.decode(std::iter::once(bytes.as_slice()), std::iter::once(bytes.as_slice()), 1);
                if matches!(record, Record::Good(_)) {
                    prop_assert!(decoded.is_ok(), "a good record failed after the ones before it: {decoded:?}");
                }
                if decoded.is_ok() {
                    good.push(bytes.as_slice());
                }
            }
            let expected = good.len();
            let batch = decoder.decode(good.iter().copied(), good.iter().copied(), expected).expect("records that decode alone decode together");
            prop_assert_eq!(batch.num_rows(), expected);
        }
    }
}
