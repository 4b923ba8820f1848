//! Where a stream stands, written into each Parquet part it commits, so that a restart
//! continues after the last committed row: nothing lost, nothing written twice.
//!
//! A part's footer carries a [`Checkpoint`] under the key-value metadata key
//! [`CHECKPOINT_KEY`]: the input position of the next record to read (file and byte
//! offset), how many output rows of the records from there on are already in this or an
//! earlier part, the length of the dead-letter file at that position, and a
//! [`Fingerprint`] of what produced the rows (query, input, schemas). The part and its
//! checkpoint appear together, by the one rename that publishes the part: there is no
//! second file to keep in step with the first, and no state outside the output directory.
//!
//! A restart reads the checkpoint of the newest part only (its footer: a constant cost,
//! however much was processed), checks that the query, the input and the source file are
//! the ones it describes, and continues from its position.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use arrow::datatypes::{Field, Schema};
use serde::{Deserialize, Serialize};

use tabssl_functions::setting::Setting;
use tabssl_functions::{Error, Result};

/// The key of the checkpoint in a part's Parquet key-value metadata.
pub const CHECKPOINT_KEY: &str = "tabssl.stream.checkpoint";

/// The version of the checkpoint's JSON layout.
const FORMAT: u32 = 1;

/// Bytes of the source checked at each end of the processed range: enough to tell a
/// replaced or rewritten file from the one the stream read, at a constant cost.
const CHECK_BYTES: u64 = 4096;

/// The position of the next record to read. Without a file, at offset 0: the start of the
/// input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePosition {
    /// The file holding it (its path); `None` for standard input.
    pub file: Option<String>,
    /// Its byte offset in that file.
    pub offset: u64,
    /// Its 1-based line.
    pub line: u64,
}

impl std::fmt::Display for SourcePosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.file {
            None if self.offset == 0 => write!(f, "the start of the input"),
            file => write!(
                f,
                "{} line {} (byte offset {})",
                file.as_deref().unwrap_or("stdin"),
                self.line,
                self.offset
            ),
        }
    }
}

/// A clean boundary in the input: every record before `position` was passed to the query
/// or rejected, and the dead-letter file held `dead_letter_bytes` bytes then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// The next record to read.
    pub position: SourcePosition,
    /// The dead-letter file's length at that point (0 without one).
    pub dead_letter_bytes: u64,
    /// The source file's bytes before the position, taken when the boundary was reached
    /// (`None` for stdin and the input's start), so a commit never reads the source.
    pub check: Option<SourceCheck>,
}

impl Mark {
    /// The boundary at `position`, with the checksums of its file when it has one (none
    /// when the file is already gone: a restart then finds that out).
    pub fn at(position: SourcePosition, dead_letter_bytes: u64) -> Self {
        let check = position
            .file
            .as_ref()
            .and_then(|file| SourceCheck::of(Path::new(file), position.offset).ok());
        Self {
            position,
            dead_letter_bytes,
            check,
        }
    }
}

/// What produced a stream's rows; a restart must match it to continue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The SQL text.
    pub query: String,
    /// The source: `stdin`, `file PATH` or `directory PATH` (absolute).
    pub input: String,
    /// The record format and the options that change how records decode.
    pub read_options: String,
    /// The dead-letter file (absolute), whose entries after the resume point a restart
    /// removes.
    pub dead_letter: Option<String>,
    /// The input's columns, `name: type` (nullable columns marked `?`).
    pub input_schema: Vec<String>,
    /// Whether the input schema was inferred from the first records (decoding is then
    /// lenient with numbers in string columns).
    pub input_schema_inferred: bool,
    /// The output's columns, `name: type`.
    pub output_schema: Vec<String>,
}

impl Fingerprint {
    /// What differs from `earlier`, in words, or `None` when they match.
    pub fn changes_since(&self, earlier: &Self) -> Option<String> {
        let describe = |what: &str, was: &dyn std::fmt::Debug, now: &dyn std::fmt::Debug| {
            Some(format!("the {what} changed: it was {was:?}, now {now:?}"))
        };
        if self.query != earlier.query {
            return describe("query", &earlier.query, &self.query);
        }
        if self.input != earlier.input {
            return describe("input", &earlier.input, &self.input);
        }
        if self.read_options != earlier.read_options {
            return describe("input format or its options", &earlier.read_options, &self.read_options);
        }
        if self.dead_letter != earlier.dead_letter {
            return describe("dead-letter file", &earlier.dead_letter, &self.dead_letter);
        }
        if self.input_schema != earlier.input_schema {
            return describe("input schema", &earlier.input_schema, &self.input_schema);
        }
        if self.output_schema != earlier.output_schema {
            return describe("output schema", &earlier.output_schema, &self.output_schema);
        }
        None
    }
}

/// The columns of `schema` as `name: type` strings.
pub fn describe_columns(schema: &Schema) -> Vec<String> {
    schema
        .fields()
        .iter()
        .map(|f| {
            format!(
                "{}: {}{}",
                f.name(),
                f.data_type(),
                if f.is_nullable() { "?" } else { "" }
            )
        })
        .collect()
}

/// The schema [`describe_columns`] described.
///
/// # Errors
/// When an entry is not `name: type`.
pub fn columns_schema(columns: &[String]) -> Result<Schema> {
    let fields = columns
        .iter()
        .map(|column| {
            let (name, data_type) = column
                .rsplit_once(": ")
                .ok_or_else(|| Error::Invalid(format!("checkpoint column {column:?}: expected `name: type`")))?;
            let (data_type, nullable) = match data_type.strip_suffix('?') {
                Some(data_type) => (data_type, true),
                None => (data_type, false),
            };
            Ok(Field::new(name, super::schema::parse_type(data_type)?, nullable))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Schema::new(fields))
}

/// Checksums of the bytes at both ends of the processed part of a source file: a file that
/// was truncated, replaced or rewritten since does not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCheck {
    /// CRC-32 of the file's first `head_bytes` bytes.
    pub head_crc: u32,
    /// At most 4 KiB, and never past the position.
    pub head_bytes: u64,
    /// CRC-32 of the `tail_bytes` bytes just before the position.
    pub tail_crc: u32,
    /// At most 4 KiB.
    pub tail_bytes: u64,
}

impl SourceCheck {
    /// The checksums of `path` up to `offset`.
    ///
    /// # Errors
    /// When the file cannot be read that far.
    pub fn of(path: &Path, offset: u64) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let head_bytes = offset.min(CHECK_BYTES);
        let tail_bytes = offset.min(CHECK_BYTES);
        let head_crc = crc_of(&mut file, path, 0, head_bytes)?;
        let tail_crc = crc_of(&mut file, path, offset - tail_bytes, tail_bytes)?;
        Ok(Self {
            head_crc,
            head_bytes,
            tail_crc,
            tail_bytes,
        })
    }

    /// Checks that `path` still holds, up to `offset`, what the stream read.
    ///
    /// # Errors
    /// Naming the file and what changed: gone, truncated, or other bytes.
    pub fn verify(&self, path: &Path, offset: u64) -> Result<()> {
        let changed = |what: String| {
            Error::Invalid(format!(
                "the source file {} {what} since the last committed part: the stream cannot continue where it \
                 stopped. Restore the file, or start over ({}) to read the input again from its start",
                path.display(),
                Setting::StartOver
            ))
        };
        let length = match std::fs::metadata(path) {
            Ok(metadata) => metadata.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(changed(format!(
                    "is gone (the stream stood at byte offset {offset} in it)"
                )));
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        if length < offset {
            return Err(changed(format!(
                "was truncated: it has {length} bytes, the stream had read {offset}"
            )));
        }
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let head = crc_of(&mut file, path, 0, self.head_bytes)?;
        let tail = crc_of(&mut file, path, offset - self.tail_bytes, self.tail_bytes)?;
        if head != self.head_crc || tail != self.tail_crc {
            return Err(changed(format!(
                "was replaced or rewritten: its bytes before offset {offset} are not the ones the stream read"
            )));
        }
        Ok(())
    }
}

fn crc_of(file: &mut File, path: &Path, start: u64, length: u64) -> Result<u32> {
    let mut bytes = Vec::with_capacity(length as usize);
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.by_ref().take(length).read_to_end(&mut bytes))
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 != length {
        return Err(Error::Invalid(format!(
            "{}: {length} bytes from offset {start} expected, {} found",
            path.display(),
            bytes.len()
        )));
    }
    Ok(crc32fast::hash(&bytes))
}

/// Where a restart continues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The last clean boundary before the part's last row.
    pub mark: Mark,
    /// Output rows of the records from `mark` on that are already in a part.
    pub skip_rows: u64,
}

/// What a committed part says about the stream that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The layout version.
    pub format: u32,
    /// What produced the rows.
    pub fingerprint: Fingerprint,
    /// Where a restart continues, or `None` when it cannot (see `not_resumable`).
    pub resume: Option<Resume>,
    /// Why a restart cannot continue from this part.
    pub not_resumable: Option<String>,
    /// Output rows in this part and the parts before it, since the stream started.
    pub rows_written: u64,
}

impl Checkpoint {
    /// A checkpoint of the current layout.
    pub fn new(fingerprint: Fingerprint, resume: std::result::Result<Resume, String>, rows_written: u64) -> Self {
        let (resume, not_resumable) = match resume {
            Ok(resume) => (Some(resume), None),
            Err(why) => (None, Some(why)),
        };
        Self {
            format: FORMAT,
            fingerprint,
            resume,
            not_resumable,
            rows_written,
        }
    }

    /// The JSON stored in the part.
    ///
    /// # Errors
    /// Never in practice (plain data).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::json("stream checkpoint", e))
    }

    /// Reads the checkpoint of the Parquet part at `path` (its footer only); `None` when
    /// the part has none.
    ///
    /// # Errors
    /// When the file is not Parquet, or its checkpoint is not one this version reads.
    pub fn read(path: &Path) -> Result<Option<Self>> {
        use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let reader = SerializedFileReader::new(file)
            .map_err(|e| Error::Invalid(format!("{}: not a complete Parquet file: {e}", path.display())))?;
        let value = reader
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|kv| kv.key == CHECKPOINT_KEY))
            .and_then(|kv| kv.value.clone());
        let Some(value) = value else {
            return Ok(None);
        };
        let checkpoint: Self = serde_json::from_str(&value)
            .map_err(|e| Error::json(format!("the stream checkpoint in {}", path.display()), e))?;
        if checkpoint.format != FORMAT {
            return Err(Error::Invalid(format!(
                "{}: stream checkpoint layout {} is not one this tabssl reads (expected {FORMAT})",
                path.display(),
                checkpoint.format
            )));
        }
        Ok(Some(checkpoint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::DataType;

    #[test]
    fn columns_round_trip_through_their_description() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name: odd", DataType::Utf8, true),
            Field::new(
                "t",
                DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
                true,
            ),
        ]);
        let described = describe_columns(&schema);
        assert_eq!(described[0], "id: Int64");
        assert_eq!(columns_schema(&described).expect("parses"), schema);
    }

    #[test]
    fn a_source_check_tells_truncated_and_rewritten_files_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.ndjson");
        let text: String = (0..2000).map(|i| format!("{{\"id\": {i}}}\n")).collect();
        std::fs::write(&path, &text).expect("write");
        let offset = 10_000;
        let check = SourceCheck::of(&path, offset).expect("check");
        check.verify(&path, offset).expect("unchanged");
        // Appending keeps it valid.
        std::fs::write(&path, format!("{text}{{\"id\": 2000}}\n")).expect("append");
        check.verify(&path, offset).expect("appended");
        std::fs::write(&path, &text[..9000]).expect("truncate");
        let error = check.verify(&path, offset).expect_err("truncated").to_string();
        assert!(error.contains("was truncated: it has 9000 bytes"), "{error}");
        std::fs::write(&path, text.replace("\"id\": 1999", "\"id\": 9999")).expect("rewrite tail");
        let late = text.len() as u64 - 5;
        let late_check = SourceCheck::of(&path, late).expect("check");
        std::fs::write(&path, &text).expect("rewrite");
        let error = late_check.verify(&path, late).expect_err("rewritten").to_string();
        assert!(error.contains("replaced or rewritten"), "{error}");
        std::fs::remove_file(&path).expect("remove");
        let error = check.verify(&path, offset).expect_err("gone").to_string();
        assert!(error.contains("is gone"), "{error}");
    }

    #[test]
    fn fingerprints_name_what_changed() {
        let base = Fingerprint {
            query: "SELECT id FROM input".into(),
            input: "directory /in".into(),
            read_options: "ndjson".into(),
            dead_letter: None,
            input_schema: vec!["id: Int64?".into()],
            input_schema_inferred: false,
            output_schema: vec!["id: Int64?".into()],
        };
        assert_eq!(base.changes_since(&base), None);
        let changed = Fingerprint {
            query: "SELECT id + 1 AS id FROM input".into(),
            ..base.clone()
        };
        let message = changed.changes_since(&base).expect("differs");
        assert!(message.starts_with("the query changed"), "{message}");
        assert!(message.contains("SELECT id FROM input"), "{message}");
    }
}
