//! What happens to a record that does not fit the schema, and the counts that prove no
//! row was lost: records read = rows passed to the query + records rejected. The reader
//! counts what it reads and the batcher what it passes or rejects, so the two sides are
//! counted apart and a record lost between them shows up as a difference.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tabssl_functions::setting::Setting;

use datafusion::error::{DataFusionError, Result};

/// Skipped records logged one by one; later ones are only counted.
const LOGGED_SKIPS: u64 = 10;

/// Where a record came from, for error messages and the dead-letter file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// `stdin` or the file's path.
    pub source: Arc<str>,
    /// 1-based line number of the record's first line; 0 where lines mean nothing (Arrow IPC).
    pub line: u64,
    /// Byte offset of the record's first byte in its source.
    pub offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{} (byte offset {})", self.source, self.offset)
        } else {
            write!(f, "{} line {} (byte offset {})", self.source, self.line, self.offset)
        }
    }
}

/// The policy for records that do not fit the schema (`--on-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// Stop the stream with an error naming the record (after flushing what came before).
    Fail,
    /// Count the record, log a warning and go on.
    Skip,
    /// Append the record with its position and the error to a file, and go on.
    DeadLetter(PathBuf),
}

/// Running counts of a stream, shared between its threads.
#[derive(Debug, Default)]
pub struct StreamStats {
    records_read: AtomicU64,
    records_rejected: AtomicU64,
    rows_passed: AtomicU64,
    input_done: AtomicBool,
}

impl StreamStats {
    /// Records (or IPC rows) the reader took from the input.
    pub fn records_read(&self) -> u64 {
        self.records_read.load(Ordering::SeqCst)
    }

    /// Records rejected by the error policy.
    pub fn records_rejected(&self) -> u64 {
        self.records_rejected.load(Ordering::SeqCst)
    }

    /// Rows handed to the query.
    pub fn rows_passed(&self) -> u64 {
        self.rows_passed.load(Ordering::SeqCst)
    }

    /// Whether the batcher handled the whole input (its end, or a shutdown) rather than
    /// stopping early because the query ended or a record failed the stream.
    pub fn input_done(&self) -> bool {
        self.input_done.load(Ordering::SeqCst)
    }

    /// Records read but neither passed nor rejected: 0 once the whole input was handled.
    pub fn records_unaccounted(&self) -> i128 {
        i128::from(self.records_read()) - i128::from(self.rows_passed()) - i128::from(self.records_rejected())
    }

    pub(crate) fn add_read(&self, records: u64) {
        self.records_read.fetch_add(records, Ordering::SeqCst);
    }

    pub(crate) fn add_passed(&self, rows: usize) {
        self.rows_passed.fetch_add(rows as u64, Ordering::SeqCst);
    }

    pub(crate) fn set_input_done(&self) {
        self.input_done.store(true, Ordering::SeqCst);
    }

    fn add_rejected(&self, records: u64) {
        self.records_rejected.fetch_add(records, Ordering::SeqCst);
    }
}

/// Applies an [`ErrorPolicy`] to rejected records.
#[derive(Debug)]
pub struct RejectHandler {
    policy: ErrorPolicy,
    dead_letter: Option<BufWriter<File>>,
    /// The dead-letter file's length, with what was written to it.
    dead_letter_bytes: u64,
    stats: Arc<StreamStats>,
}

impl RejectHandler {
    /// A handler for `policy`; a dead-letter file is opened for appending now, so a bad
    /// path fails before any input is read. A restart passes the file's length at the
    /// position it continues from (`resume_at`): the entries after it belong to records
    /// that are read again, and are removed so that each rejected record appears once.
    ///
    /// # Errors
    /// When the dead-letter file cannot be opened, or is shorter than `resume_at`.
    pub fn new(policy: ErrorPolicy, stats: Arc<StreamStats>, resume_at: Option<u64>) -> Result<Self> {
        let (dead_letter, dead_letter_bytes) = match &policy {
            ErrorPolicy::DeadLetter(path) => {
                let error = |e: std::io::Error| {
                    DataFusionError::Execution(format!("cannot open dead-letter file {}: {e}", path.display()))
                };
                let file = OpenOptions::new().create(true).append(true).open(path).map_err(error)?;
                let mut length = file.metadata().map_err(error)?.len();
                if let Some(resume_at) = resume_at {
                    if length < resume_at {
                        return Err(DataFusionError::Execution(format!(
                            "the dead-letter file {} has {length} bytes, but the last committed part counts \
                             {resume_at}: it was truncated or replaced since. Restore it, or start over ({})",
                            path.display(),
                            Setting::StartOver
                        )));
                    }
                    file.set_len(resume_at).map_err(error)?;
                    length = resume_at;
                }
                (Some(BufWriter::new(file)), length)
            }
            _ => (None, 0),
        };
        Ok(Self {
            policy,
            dead_letter,
            dead_letter_bytes,
            stats,
        })
    }

    /// The dead-letter file's length after the entries written so far (0 without one).
    pub fn dead_letter_bytes(&self) -> u64 {
        self.dead_letter_bytes
    }

    /// The policy it applies.
    pub fn policy(&self) -> &ErrorPolicy {
        &self.policy
    }

    /// Handles one record (or, for an IPC batch, `rows` records) that failed with
    /// `error`: counts it, then under `fail` returns the error that stops the stream;
    /// otherwise logs or writes it and returns `Ok`.
    ///
    /// # Errors
    /// Under `fail`, and when the dead-letter file cannot be written.
    pub fn reject(&mut self, record: &[u8], position: &Position, error: &str, rows: u64) -> Result<()> {
        self.stats.add_rejected(rows);
        if self.policy == ErrorPolicy::Fail {
            return Err(DataFusionError::Execution(format!(
                "bad record at {position}: {error} (use {} to go on)",
                Setting::OnError
            )));
        }
        match &mut self.dead_letter {
            Some(out) => {
                let entry = serde_json::json!({
                    "source": &*position.source,
                    "line": position.line,
                    "offset": position.offset,
                    "error": error,
                    "rows": rows,
                    "record": String::from_utf8_lossy(record),
                });
                let line = format!("{entry}\n");
                out.write_all(line.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| DataFusionError::Execution(format!("cannot write the dead-letter file: {e}")))?;
                self.dead_letter_bytes += line.len() as u64;
            }
            None => {
                let skipped = self.stats.records_rejected();
                if skipped <= LOGGED_SKIPS {
                    log::warn!("skipped record at {position}: {error}");
                }
                if skipped == LOGGED_SKIPS {
                    log::warn!("further skipped records are counted, not logged (use dead-letter FILE to keep them)");
                }
            }
        }
        Ok(())
    }
}
