//! The output directory of a Parquet stream: `part-000000.parquet`, `part-000001.parquet`,
//! ... written by one stream at a time.
//!
//! Opening it takes an exclusive lock on the directory (held until the process ends, and
//! released by the kernel when it dies), so a second stream into the same directory is
//! refused instead of racing the first for part numbers. With the lock held, the hidden
//! temporary parts a killed run left behind are removed, and numbering continues after the
//! highest part there. Parts are published without replacing anything
//! ([`tabssl_functions::atomic::AtomicFile::commit_new`]): a committed part is never overwritten.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::checkpoint::Checkpoint;
use tabssl_functions::setting::Setting;
use tabssl_functions::{Error, Result};

/// The hidden file that records the dead-letter file's length when a stream started
/// writing into an empty directory (before any part holds a checkpoint).
const START_FILE: &str = ".tabssl-stream-start.json";

/// The dead-letter file's length when the stream started, for a restart before the first
/// part committed: the entries after it come from records that are read again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRecord {
    /// The dead-letter file (absolute).
    pub dead_letter: String,
    /// Its length then.
    pub bytes: u64,
}

/// A locked output directory and the next part number.
#[derive(Debug)]
pub struct PartDirectory {
    path: PathBuf,
    next_index: u64,
    /// The newest part already there, if any.
    latest: Option<PathBuf>,
    /// Holds the lock while the directory is open.
    _lock: File,
}

impl PartDirectory {
    /// Creates `path` if missing, locks it, removes temporary parts left by a killed
    /// run, and finds the newest part.
    ///
    /// # Errors
    /// When the directory cannot be created, listed or locked, or another stream holds it.
    pub fn open(path: &Path) -> Result<Self> {
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let lock = File::open(path).map_err(|e| Error::io(path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Invalid(format!(
                    "another tabssl stream is writing to {}: one stream per output directory (stop the other \
                     one, or give this one its own {})",
                    path.display(),
                    Setting::Output
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io(path, io::Error::new(e.kind(), format!("cannot lock: {e}"))));
            }
        }
        let mut highest: Option<u64> = None;
        for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
            let entry = entry.map_err(|e| Error::io(path, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(index) = part_index(&name) {
                highest = highest.max(Some(index));
            } else if is_temporary_part(&name) {
                // Left by a run that died while writing it: never committed, never read.
                std::fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            next_index: highest.map_or(0, |index| index + 1),
            latest: highest.map(|index| path.join(part_name(index))),
            _lock: lock,
        })
    }

    /// The newest part and its checkpoint, if there is a part.
    ///
    /// # Errors
    /// When the newest part cannot be read.
    pub fn latest_checkpoint(&self) -> Result<Option<(PathBuf, Option<Checkpoint>)>> {
        self.latest
            .as_ref()
            .map(|path| Ok((path.clone(), Checkpoint::read(path)?)))
            .transpose()
    }

    /// Whether no part was committed yet.
    pub fn is_empty(&self) -> bool {
        self.latest.is_none()
    }

    /// The start record of the stream writing into this directory, if one was written.
    ///
    /// # Errors
    /// When it exists but cannot be read.
    pub fn start_record(&self) -> Result<Option<StartRecord>> {
        let path = self.path.join(START_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::json(path.display().to_string(), e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Records where a stream starts (atomically).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn record_start(&self, record: &StartRecord) -> Result<()> {
        let json = serde_json::to_vec(record).map_err(|e| Error::json("stream start record", e))?;
        tabssl_functions::atomic::write_atomically(self.path.join(START_FILE), &json)
    }

    /// The path of the next part; each call hands out a new number.
    pub fn next_part(&mut self) -> PathBuf {
        let path = self.path.join(part_name(self.next_index));
        self.next_index += 1;
        path
    }
}

fn part_name(index: u64) -> String {
    format!("part-{index:06}.parquet")
}

/// The number of a part's file name.
fn part_index(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A part being written under its temporary name (see [`tabssl_functions::atomic::AtomicFile`]).
fn is_temporary_part(name: &str) -> bool {
    name.strip_prefix(".part-")
        .and_then(|rest| rest.split_once(".parquet.tmp-"))
        .is_some_and(|(digits, _)| digits.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_continues_after_the_highest_part_and_temporaries_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in [
            "part-000000.parquet",
            "part-000007.parquet",
            ".part-000008.parquet.tmp-4242-0",
            "part-x.parquet",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), b"x").expect("write");
        }
        let mut parts = PartDirectory::open(dir.path()).expect("opens");
        assert_eq!(parts.next_part(), dir.path().join("part-000008.parquet"));
        assert_eq!(parts.next_part(), dir.path().join("part-000009.parquet"));
        assert_eq!(parts.latest, Some(dir.path().join("part-000007.parquet")));
        assert!(!dir.path().join(".part-000008.parquet.tmp-4242-0").exists());
        assert!(dir.path().join("notes.txt").exists(), "other files stay");
    }

    #[test]
    fn a_second_writer_is_refused_while_the_first_holds_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = PartDirectory::open(dir.path()).expect("opens");
        let error = PartDirectory::open(dir.path()).expect_err("locked").to_string();
        assert!(error.contains("another tabssl stream is writing to"), "{error}");
        drop(first);
        PartDirectory::open(dir.path()).expect("free again");
    }
}
