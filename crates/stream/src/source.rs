//! The reader thread: turns stdin, a followed file or a directory of files into records
//! (NDJSON lines, CSV rows) or Arrow IPC batches, sent through a bounded channel.
//!
//! Records travel in [`Chunk`]s: the bytes of several records and where each starts. A
//! chunk is sent as soon as the reader has no more bytes at hand (so a slow producer's
//! record is not held back) or when it is full (so a fast one is not sent record by
//! record). The channel holds [`CHANNEL_CHUNKS`] chunks: when the batcher is slow, the
//! reader blocks, stops reading, and the producer blocks on the pipe.
//!
//! The reader enforces the limits that protect the process from one record: a record over
//! `--max-record-bytes` is skipped to its end without being held in memory, an NDJSON
//! record nested deeper than `--max-json-depth` is never handed to a decoder, and an Arrow
//! IPC message is read only after its declared sizes were checked against
//! `--max-record-bytes` ([`super::ipc`]). Such records go to the error policy like any other bad record.
//! Every record the reader takes is counted in [`StreamStats::records_read`], so the counts
//! can prove that each one was passed to the query or rejected.

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::InputFormat;
use super::checkpoint::SourcePosition;
use super::follow::{FollowOptions, FollowReader, next_file};
use super::policy::{Position, StreamStats};
use tabssl_functions::setting::Setting;

/// Chunks the channel between the reader and the batcher holds.
pub const CHANNEL_CHUNKS: usize = 4;
/// Most records per chunk.
const CHUNK_RECORDS: usize = 1024;
/// Bytes read from the input at a time.
const READ_BUFFER_BYTES: usize = 1 << 16;
/// Bytes reserved for a new chunk.
const CHUNK_START_BYTES: usize = 1 << 16;
/// Most bytes per chunk (a record larger than this travels alone).
const CHUNK_BYTES: usize = 1 << 20;
/// Bytes of a rejected oversized record kept for the error policy.
const REJECTED_HEAD_BYTES: usize = 200;

/// Where a stream reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// Standard input, until it closes.
    Stdin,
    /// One file, followed as it grows.
    File(PathBuf),
    /// A directory: its files in name order, the last one followed, new ones picked up.
    Directory(PathBuf),
}

impl SourceSpec {
    /// `-` is stdin; an existing directory is a directory; anything else a file.
    ///
    /// # Errors
    /// When a file or directory does not exist.
    pub fn parse(input: &str) -> tabssl_functions::Result<Self> {
        if input == "-" {
            return Ok(Self::Stdin);
        }
        let path = PathBuf::from(input);
        if path.is_dir() {
            Ok(Self::Directory(path))
        } else if path.is_file() {
            Ok(Self::File(path))
        } else {
            Err(tabssl_functions::Error::Invalid(format!(
                "input {input}: no such file or directory (- reads standard input)"
            )))
        }
    }
}

/// How the reader splits and follows its input.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// The record format.
    pub format: InputFormat,
    /// CSV only: each file (and stdin) starts with a header line.
    pub csv_header: bool,
    /// CSV only: a newline inside a quoted field continues the record. Off, every line is
    /// a record, so a stray quote costs only its own line.
    pub csv_multiline: bool,
    /// A record longer than this, or an Arrow IPC message declaring a larger part, is
    /// rejected (and skipped to its end) instead of read into memory.
    pub max_record_bytes: usize,
    /// Following files and directories, and shutdown.
    pub follow: FollowOptions,
    /// Where to start reading a file or directory (a restart's position); `None`: at the
    /// start. Standard input always starts where it stands.
    pub start: Option<SourcePosition>,
}

/// Where one record's bytes lie in its chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordMeta {
    /// Start of the record in [`Chunk::data`].
    pub start: usize,
    /// End (exclusive) of the record, its line terminator included.
    pub end: usize,
    /// 1-based line of the record's first byte.
    pub line: u64,
    /// Byte offset of the record in its source.
    pub offset: u64,
    /// Byte offset of the next record in its source (the record's end there).
    pub next_offset: u64,
    /// Line of the next record.
    pub next_line: u64,
}

/// Several records of one source.
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    /// `stdin` or the file's path.
    pub source: Arc<str>,
    /// The file's path, for positions a restart can go back to; `None` for stdin.
    pub file: Option<Arc<str>>,
    /// The records' bytes, each ending in a line terminator.
    pub data: Vec<u8>,
    /// Where each record lies in `data`.
    pub records: Vec<RecordMeta>,
}

impl Chunk {
    fn new(source: Arc<str>, file: Option<Arc<str>>) -> Self {
        Self::with_capacity(source, file, CHUNK_START_BYTES, 0)
    }

    fn with_capacity(source: Arc<str>, file: Option<Arc<str>>, bytes: usize, records: usize) -> Self {
        Self {
            source,
            file,
            data: Vec::with_capacity(bytes),
            records: Vec::with_capacity(records),
        }
    }

    /// The bytes of record `i`.
    pub fn record(&self, i: usize) -> &[u8] {
        let meta = &self.records[i];
        &self.data[meta.start..meta.end]
    }

    /// The position of record `i`.
    pub fn position(&self, i: usize) -> Position {
        let meta = &self.records[i];
        Position {
            source: Arc::clone(&self.source),
            line: meta.line,
            offset: meta.offset,
        }
    }

    /// The position after its last record, where reading would continue.
    pub fn end(&self) -> Option<SourcePosition> {
        self.records.last().map(|meta| SourcePosition {
            file: self.file.as_deref().map(str::to_string),
            offset: meta.next_offset,
            line: meta.next_line,
        })
    }
}

/// What the reader sends to the batcher.
#[derive(Debug)]
pub enum SourceItem {
    /// NDJSON or CSV records.
    Records(Chunk),
    /// The header line of a CSV source, as field names.
    Header {
        /// The names, in order.
        names: Vec<String>,
        /// Where the header is.
        position: Position,
    },
    /// Records the reader refuses to hand on (over a limit): they go to the error policy.
    Rejected {
        /// The record's bytes, or its first bytes when it is too long to keep.
        record: Vec<u8>,
        /// Where it starts.
        position: Position,
        /// Why, naming the limit and how to raise it.
        error: String,
        /// How many records it stands for (an IPC batch holds several).
        rows: u64,
    },
    /// The schema at the start of an Arrow IPC stream.
    IpcSchema(SchemaRef, Arc<str>),
    /// A batch of an Arrow IPC stream.
    Batch(RecordBatch),
    /// The input cannot be read further (an I/O error, a broken IPC stream).
    Failed(String),
}

/// Starts the reader thread and returns the channel it fills. The channel closes at the
/// end of the input, on shutdown, or after a [`SourceItem::Failed`].
///
/// # Errors
/// When the thread cannot be started.
pub fn spawn(spec: SourceSpec, options: SourceOptions, stats: Arc<StreamStats>) -> io::Result<Receiver<SourceItem>> {
    let (tx, rx) = sync_channel(CHANNEL_CHUNKS);
    std::thread::Builder::new()
        .name("tabssl-stream-reader".into())
        .spawn(move || {
            let output = Output { tx, stats };
            // A panic (a decoder bug on strange input) must end the stream with an error,
            // never look like the end of the input.
            let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_all(&spec, &options, &output)))
                .unwrap_or_else(|panic| {
                    Err(tabssl_functions::Error::Internal(format!(
                        "the reader panicked: {}",
                        super::panic_message(&*panic)
                    )))
                });
            if let Err(error) = read {
                let _ = output.tx.send(SourceItem::Failed(error.to_string()));
            }
        })?;
    Ok(rx)
}

/// Where the reader's items go, and the count of records it took.
pub(super) struct Output {
    tx: SyncSender<SourceItem>,
    pub(super) stats: Arc<StreamStats>,
}

impl Output {
    /// Sends an item; `false` when the batcher is gone.
    pub(super) fn send(&self, item: SourceItem) -> bool {
        self.tx.send(item).is_ok()
    }
}

/// Extensions of the files of a directory source, by format.
fn extension(format: InputFormat) -> &'static [&'static str] {
    match format {
        InputFormat::Ndjson => &[".ndjson", ".jsonl", ".json"],
        InputFormat::Csv => &[".csv"],
        InputFormat::Arrow => &[".arrows", ".arrow", ".ipc"],
    }
}

/// Reads every segment (stdin, the file, each file of the directory) in order. `Err`
/// carries a message for [`SourceItem::Failed`]; a closed channel ends quietly.
fn read_all(spec: &SourceSpec, options: &SourceOptions, out: &Output) -> tabssl_functions::Result<()> {
    match spec {
        // Standard input's own buffer is 8 KiB: a larger one saves most of the reads.
        SourceSpec::Stdin => read_segment(
            BufReader::with_capacity(READ_BUFFER_BYTES, io::stdin().lock()),
            "stdin".into(),
            None,
            0,
            1,
            options,
            out,
        ),
        SourceSpec::File(path) => {
            let (offset, line) = options
                .start
                .as_ref()
                .map_or((0, 1), |start| (start.offset, start.line));
            let reader = FollowReader::open_at(path, offset, options.follow.clone())
                .map_err(|e| tabssl_functions::Error::io(path, e))?;
            let name: Arc<str> = path.display().to_string().into();
            read_segment(
                BufReader::with_capacity(READ_BUFFER_BYTES, reader),
                Arc::clone(&name),
                Some(name),
                offset,
                line,
                options,
                out,
            )
        }
        SourceSpec::Directory(directory) => read_directory(directory, options, out),
    }
}

fn read_directory(directory: &Path, options: &SourceOptions, out: &Output) -> tabssl_functions::Result<()> {
    let extensions = extension(options.format);
    let listing_error = |e: io::Error| tabssl_functions::Error::io(directory, e);
    // A restart continues inside the file it stood in.
    let mut start = options.start.as_ref().and_then(|start| {
        let path = PathBuf::from(start.file.as_deref()?);
        let ext = extensions.iter().find(|ext| path.to_string_lossy().ends_with(*ext))?;
        Some((path, *ext, start.offset, start.line))
    });
    let mut last: Option<String> = None;
    loop {
        let (path, ext, offset, line) = match start.take() {
            Some(start) => start,
            None => {
                // The next file of any accepted extension, in name order.
                let mut next: Option<(PathBuf, &str)> = None;
                for ext in extensions {
                    if let Some(path) = next_file(directory, ext, last.as_deref()).map_err(listing_error)?
                        && next.as_ref().is_none_or(|(best, _)| path < *best)
                    {
                        next = Some((path, ext));
                    }
                }
                let Some((path, ext)) = next else {
                    if !options.follow.follow || options.follow.shutdown.is_requested() {
                        return Ok(());
                    }
                    std::thread::sleep(options.follow.poll);
                    continue;
                };
                (path, ext, 0, 1)
            }
        };
        let reader = FollowReader::open_in_directory(&path, offset, directory, ext, options.follow.clone())
            .map_err(|e| tabssl_functions::Error::io(&path, e))?;
        let name: Arc<str> = path.display().to_string().into();
        read_segment(
            BufReader::with_capacity(READ_BUFFER_BYTES, reader),
            Arc::clone(&name),
            Some(name),
            offset,
            line,
            options,
            out,
        )?;
        if options.follow.shutdown.is_requested() {
            return Ok(());
        }
        last = path.file_name().map(|n| n.to_string_lossy().into_owned());
    }
}

/// Reads one segment (stdin, a file), whose reader stands at byte `offset` and line
/// `line`; `file` is its path when a restart can go back to it.
fn read_segment<R: BufRead>(
    reader: R,
    source: Arc<str>,
    file: Option<Arc<str>>,
    offset: u64,
    line: u64,
    options: &SourceOptions,
    out: &Output,
) -> tabssl_functions::Result<()> {
    match options.format {
        InputFormat::Arrow => super::ipc::read_ipc(reader, source, options, out),
        InputFormat::Ndjson | InputFormat::Csv => {
            let splitter = Splitter {
                reader,
                quoted_newlines: options.format == InputFormat::Csv && options.csv_multiline,
                max_bytes: options.max_record_bytes,
                line: line.saturating_sub(1),
                offset,
                drained: true,
            };
            read_lines(splitter, source, file, options, out)
        }
    }
}

/// One record as the splitter found it.
enum Split {
    /// A record; `terminated` is false when the input ended in its middle (no newline).
    Record {
        /// Whether a newline ended it.
        terminated: bool,
    },
    /// Nothing but whitespace.
    Blank,
    /// Longer than the limit; its bytes were skipped.
    Oversized(u64),
    /// The input ended.
    End,
}

/// Splits a byte stream into records: lines, except that with `quoted_newlines` (CSV with
/// `--csv-multiline`) a newline inside a quoted field does not end the record.
/// Hand-written on purpose: CSV and JSON crates parse records, but none hands back each
/// record's raw bytes with its line and offset while never holding more than
/// `--max-record-bytes` of one record, which the error policy and the limits need.
struct Splitter<R> {
    reader: R,
    quoted_newlines: bool,
    max_bytes: usize,
    line: u64,
    offset: u64,
    /// The last read used up every byte the reader held.
    drained: bool,
}

impl<R: BufRead> Splitter<R> {
    /// Appends the next record to `out` (with a terminating newline).
    fn next(&mut self, out: &mut Vec<u8>) -> io::Result<Split> {
        let start = out.len();
        let mut in_quotes = false;
        let mut length: u64 = 0;
        loop {
            let buffer = self.reader.fill_buf()?;
            if buffer.is_empty() {
                if length == 0 {
                    return Ok(Split::End);
                }
                out.push(b'\n');
                return Ok(self.finish(out, start, length, false));
            }
            let mut end = None;
            if self.quoted_newlines {
                let mut from = 0;
                while let Some(i) = memchr::memchr2(b'"', b'\n', &buffer[from..]) {
                    let at = from + i;
                    from = at + 1;
                    if buffer[at] == b'"' {
                        in_quotes = !in_quotes;
                    } else {
                        self.line += 1;
                        if !in_quotes {
                            end = Some(from);
                            break;
                        }
                    }
                }
            } else if let Some(i) = memchr::memchr(b'\n', buffer) {
                self.line += 1;
                end = Some(i + 1);
            }
            let take = end.unwrap_or(buffer.len());
            self.drained = take == buffer.len();
            if length as usize + take <= self.max_bytes {
                out.extend_from_slice(&buffer[..take]);
            }
            length += take as u64;
            self.reader.consume(take);
            if end.is_some() {
                return Ok(self.finish(out, start, length, true));
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>, start: usize, length: u64, terminated: bool) -> Split {
        self.offset += length;
        if length as usize > self.max_bytes {
            return Split::Oversized(length);
        }
        if out[start..].iter().all(u8::is_ascii_whitespace) {
            out.truncate(start);
            return Split::Blank;
        }
        Split::Record { terminated }
    }

    /// Whether the reader holds no more bytes, so the next read may wait.
    fn drained(&self) -> bool {
        self.drained
    }
}

/// Reads NDJSON or CSV records (and, for CSV, the header, when the splitter stands at the
/// segment's start) into chunks.
fn read_lines<R: BufRead>(
    mut splitter: Splitter<R>,
    source: Arc<str>,
    file: Option<Arc<str>>,
    options: &SourceOptions,
    out: &Output,
) -> tabssl_functions::Result<()> {
    let csv = options.format == InputFormat::Csv;
    let mut header_pending = csv && options.csv_header && splitter.offset == 0;
    let mut chunk = Chunk::new(Arc::clone(&source), file);
    let read_error = |e: io::Error| tabssl_functions::Error::io(&*source, e);
    loop {
        if options.follow.shutdown.is_requested() {
            // No record is taken after a shutdown: what was read goes to the batcher.
            send_chunk(&mut chunk, out);
            return Ok(());
        }
        let (line, offset) = (splitter.line + 1, splitter.offset);
        let start = chunk.data.len();
        let split = splitter.next(&mut chunk.data).map_err(read_error)?;
        let position = || Position {
            source: Arc::clone(&source),
            line,
            offset,
        };
        let reject = |chunk: &mut Chunk, keep: usize, error: String| {
            out.stats.add_read(1);
            let record = chunk.data.drain(start..).take(keep).collect();
            Some(SourceItem::Rejected {
                record,
                position: position(),
                error,
                rows: 1,
            })
        };
        let item = match split {
            Split::End => break,
            Split::Blank => None,
            Split::Oversized(length) => reject(
                &mut chunk,
                REJECTED_HEAD_BYTES,
                format!(
                    "the record is {length} bytes, more than {} ({}) allows; raise it to accept the record",
                    Setting::MaxRecordBytes,
                    options.max_record_bytes
                ),
            ),
            Split::Record { terminated: false } if options.follow.shutdown.is_requested() => {
                // Shutdown cut the input inside a record that may be half-written: it was
                // never complete, so it is not read (the end of a finished input is).
                log::warn!("shutdown: the unfinished record at {} is not read", position());
                chunk.data.truncate(start);
                None
            }
            Split::Record { .. } if header_pending => {
                header_pending = false;
                let names = csv_header_names(&chunk.data[start..]).map_err(|e| {
                    tabssl_functions::Error::InvalidData(format!("{}: bad CSV header: {e}", position()))
                })?;
                chunk.data.truncate(start);
                Some(SourceItem::Header {
                    names,
                    position: position(),
                })
            }
            Split::Record { .. } => {
                out.stats.add_read(1);
                chunk.records.push(RecordMeta {
                    start,
                    end: chunk.data.len(),
                    line,
                    offset,
                    next_offset: splitter.offset,
                    next_line: splitter.line + 1,
                });
                None
            }
        };
        let full = chunk.records.len() >= CHUNK_RECORDS || chunk.data.len() >= CHUNK_BYTES;
        let stopping = options.follow.shutdown.is_requested();
        // Records go out before an item that follows them, and before a shutdown: every
        // record read reaches the batcher.
        if (item.is_some() || full || stopping || splitter.drained()) && !send_chunk(&mut chunk, out) {
            return Ok(());
        }
        if let Some(item) = item
            && !out.send(item)
        {
            return Ok(());
        }
        if stopping {
            return Ok(());
        }
    }
    send_chunk(&mut chunk, out);
    Ok(())
}

/// Sends the chunk's records, if any, and starts an empty one. `false` when the batcher
/// is gone.
fn send_chunk(chunk: &mut Chunk, out: &Output) -> bool {
    if chunk.records.is_empty() {
        chunk.data.clear();
        return true;
    }
    // The next chunk is likely as large as this one: sized for it, it never grows by copying.
    let bytes = (chunk.data.len() + chunk.data.len() / 8).clamp(CHUNK_START_BYTES, 2 * CHUNK_BYTES);
    let next = Chunk::with_capacity(
        Arc::clone(&chunk.source),
        chunk.file.clone(),
        bytes,
        chunk.records.len(),
    );
    let full = std::mem::replace(chunk, next);
    out.send(SourceItem::Records(full))
}

/// The field names of a CSV header line.
fn csv_header_names(line: &[u8]) -> tabssl_functions::Result<Vec<String>> {
    let format = arrow::csv::reader::Format::default().with_header(true);
    let (schema, _) = format.infer_schema(line, Some(0))?;
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    match tabssl_functions::input::duplicate_name(&names) {
        Some(message) => Err(tabssl_functions::Error::InvalidData(format!("it {message}"))),
        None => Ok(names),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `text` and returns each record's text (or a marker), line and offset.
    fn split(text: &str, quoted_newlines: bool, max_bytes: usize) -> Vec<(String, u64, u64)> {
        let mut splitter = Splitter {
            reader: io::Cursor::new(text.as_bytes().to_vec()),
            quoted_newlines,
            max_bytes,
            line: 0,
            offset: 0,
            drained: true,
        };
        let mut out = Vec::new();
        loop {
            let (line, offset) = (splitter.line + 1, splitter.offset);
            let mut bytes = Vec::new();
            let found = match splitter.next(&mut bytes).expect("reads") {
                Split::End => return out,
                Split::Blank => "<blank>".to_string(),
                Split::Oversized(length) => format!("<oversized {length}>"),
                Split::Record { terminated } => {
                    format!(
                        "{}{}",
                        String::from_utf8(bytes).expect("utf-8"),
                        if terminated { "" } else { "<cut>" }
                    )
                }
            };
            out.push((found, line, offset));
        }
    }

    #[test]
    fn lines_with_positions_blank_lines_and_an_unterminated_end() {
        let records = split("{\"a\": 1}\n\n  \n{\"a\": 22}\n{\"a\"", false, 100);
        assert_eq!(
            records,
            vec![
                ("{\"a\": 1}\n".into(), 1, 0),
                ("<blank>".into(), 2, 9),
                ("<blank>".into(), 3, 10),
                ("{\"a\": 22}\n".into(), 4, 13),
                ("{\"a\"\n<cut>".into(), 5, 23),
            ]
        );
    }

    #[test]
    fn a_quoted_csv_newline_stays_inside_its_record() {
        let records = split("1,\"two\nlines\",x\r\n2,\"\"\"quoted\"\"\",y\n3,plain,z\n", true, 100);
        assert_eq!(
            records,
            vec![
                ("1,\"two\nlines\",x\r\n".into(), 1, 0),
                ("2,\"\"\"quoted\"\"\",y\n".into(), 3, 17),
                ("3,plain,z\n".into(), 4, 34),
            ]
        );
        // The same text as NDJSON-style lines splits at every newline.
        assert_eq!(split("1,\"two\nlines\"\n", false, 100).len(), 2);
    }

    #[test]
    fn an_oversized_record_is_skipped_whole_and_reading_goes_on() {
        let long = "x".repeat(50);
        let records = split(&format!("short\n{long}\nnext\n"), false, 20);
        assert_eq!(
            records,
            vec![
                ("short\n".into(), 1, 0),
                ("<oversized 51>".into(), 2, 6),
                ("next\n".into(), 3, 57),
            ]
        );
    }

    #[test]
    fn csv_header_names_are_parsed_with_quotes() {
        assert_eq!(
            csv_header_names(b"id,\"education-num\",\"a,b\"\n").expect("header"),
            vec!["id", "education-num", "a,b"]
        );
    }

    proptest::proptest! {
        /// Every byte of the input lands in exactly one record (or blank or oversized
        /// span), in order, and positions add up, whatever the bytes.
        #[test]
        fn the_splitter_accounts_for_every_byte(
            bytes in proptest::collection::vec(proptest::sample::select(b"ab,\"\n\r {}".to_vec()), 0..400),
            quoted_newlines in proptest::bool::ANY,
            max_bytes in 1usize..64,
        ) {
            let mut splitter = Splitter {
                reader: io::BufReader::with_capacity(7, io::Cursor::new(bytes.clone())),
                quoted_newlines,
                max_bytes,
                line: 0,
                offset: 0,
                drained: true,
            };
            loop {
                let start = splitter.offset as usize;
                let mut out = Vec::new();
                let split = splitter.next(&mut out).expect("reads");
                let end = splitter.offset as usize;
                match split {
                    Split::End => break,
                    Split::Blank => {
                        proptest::prop_assert!(bytes[start..end].iter().all(u8::is_ascii_whitespace));
                    }
                    Split::Oversized(length) => {
                        proptest::prop_assert_eq!(length as usize, end - start);
                        proptest::prop_assert!(length as usize > max_bytes);
                    }
                    Split::Record { terminated } => {
                        let mut expected = bytes[start..end].to_vec();
                        if !terminated {
                            expected.push(b'\n');
                        }
                        proptest::prop_assert_eq!(out, expected);
                    }
                }
            }
            proptest::prop_assert_eq!(splitter.offset as usize, bytes.len());
            proptest::prop_assert_eq!(splitter.line as usize, bytes.iter().filter(|&&b| b == b'\n').count());
        }
    }
}
