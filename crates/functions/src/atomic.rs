//! The one way tabssl writes a file: into a uniquely named temporary file in the target's
//! directory, synced, renamed over the final name, and the directory synced. A reader sees
//! the old file or the complete new one, never a torn one; a crash or an error leaves no
//! file under the final name (and, on error, no temporary file either).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

/// Distinguishes temporary files of one process.
static NEXT_TEMPORARY: AtomicU64 = AtomicU64::new(0);

/// A file being written under a temporary name beside its target. Dropped without
/// [`AtomicFile::commit`], it removes its temporary file.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    temporary: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Creates an empty temporary file beside `target` (hidden, unique to this process and
    /// call). Nothing is written under `target` until [`Self::commit`].
    ///
    /// # Errors
    /// [`Error::Io`] naming `target` when it is a directory, its directory does not exist
    /// or is not writable.
    pub fn create(target: impl AsRef<Path>) -> Result<Self> {
        let target = target.as_ref().to_path_buf();
        check_target(&target)?;
        let directory = parent_of(&target);
        let name = target
            .file_name()
            .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
        loop {
            let unique = NEXT_TEMPORARY.fetch_add(1, Ordering::Relaxed);
            let temporary = directory.join(format!(".{name}.tmp-{}-{unique}", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&temporary) {
                Ok(_) => {
                    return Ok(Self {
                        target,
                        temporary,
                        committed: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io(&target, e)),
            }
        }
    }

    /// The temporary file's path, for writers that open the file themselves (`COPY ... TO`).
    pub fn path(&self) -> &Path {
        &self.temporary
    }

    /// The final name.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// A handle on the temporary file for writing.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be opened.
    pub fn open(&self) -> Result<File> {
        OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&self.temporary)
            .map_err(|e| Error::io(&self.temporary, e))
    }

    /// Syncs the temporary file, renames it to the target and syncs the directory. Every
    /// handle on the file must be flushed and closed before.
    ///
    /// # Errors
    /// [`Error::Io`] naming the target; the temporary file is removed.
    pub fn commit(mut self) -> Result<()> {
        // Synced through a fresh handle: a writer may have replaced the file (COPY ... TO).
        File::open(&self.temporary)
            .and_then(|file| file.sync_all())
            .map_err(|e| Error::io(&self.temporary, e))?;
        check_target(&self.target)?;
        std::fs::rename(&self.temporary, &self.target).map_err(|e| Error::io(&self.target, e))?;
        self.committed = true;
        sync_directory(parent_of(&self.target)).map_err(|e| Error::io(&self.target, e))
    }
}

impl AtomicFile {
    /// Like [`Self::commit`], but never replaces a file already under the target name:
    /// the file is published by a hard link, which fails when the name is taken, and the
    /// temporary name is then removed. A crash between the two leaves the complete file
    /// under both names; the hidden one is left-over temporary state. On a file system
    /// without hard links the target's absence is checked and the file renamed.
    ///
    /// # Errors
    /// [`Error::Io`] naming the target when it already exists (`AlreadyExists`) or the
    /// file cannot be published; the temporary file is removed.
    pub fn commit_new(mut self) -> Result<()> {
        File::open(&self.temporary)
            .and_then(|file| file.sync_all())
            .map_err(|e| Error::io(&self.temporary, e))?;
        fault_pause("before publishing", &self.target);
        match std::fs::hard_link(&self.temporary, &self.target) {
            Ok(()) => {
                self.committed = true;
                fault_pause("after publishing", &self.target);
                let _ = std::fs::remove_file(&self.temporary);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::io(
                    &self.target,
                    io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "already exists: another writer published a file under this name, and it is left as it is",
                    ),
                ));
            }
            Err(_) => {
                if self.target.exists() {
                    return Err(Error::io(
                        &self.target,
                        io::Error::new(io::ErrorKind::AlreadyExists, "already exists"),
                    ));
                }
                std::fs::rename(&self.temporary, &self.target).map_err(|e| Error::io(&self.target, e))?;
                self.committed = true;
            }
        }
        sync_directory(parent_of(&self.target)).map_err(|e| Error::io(&self.target, e))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

/// Crash tests' hook, in debug builds only: with `TABSSL_FAULT_PAUSE_COMMIT_MS` set, a
/// [`AtomicFile::commit_new`] says on stderr where it stands and pauses that long before
/// and after publishing, so a test can kill the process inside a commit.
fn fault_pause(step: &str, target: &Path) {
    if cfg!(debug_assertions)
        && let Some(pause) = std::env::var("TABSSL_FAULT_PAUSE_COMMIT_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
    {
        log::warn!("fault injection: {step} {}", target.display());
        std::thread::sleep(std::time::Duration::from_millis(pause));
    }
}

/// Writes `bytes` to `target` atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_atomically(target: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let file = AtomicFile::create(target)?;
    let mut handle = file.open()?;
    handle.write_all(bytes).map_err(|e| Error::io(file.target(), e))?;
    drop(handle);
    file.commit()
}

/// Syncs a directory, so a rename inside it survives a crash.
///
/// # Errors
/// When the directory cannot be opened or synced.
pub fn sync_directory(directory: &Path) -> io::Result<()> {
    File::open(directory)?.sync_all()
}

/// The directory a file goes into (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Refuses a target that is a directory, or whose directory is missing.
fn check_target(target: &Path) -> Result<()> {
    if target.is_dir() {
        return Err(Error::io(
            target,
            io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory; expected the path of a file",
            ),
        ));
    }
    let directory = parent_of(target);
    if !directory.is_dir() {
        return Err(Error::io(
            target,
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("the directory {} does not exist", directory.display()),
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_file_appears_only_on_commit_and_replaces_the_old_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out.bin");
        std::fs::write(&target, b"old").expect("write");
        let file = AtomicFile::create(&target).expect("create");
        file.open().expect("open").write_all(b"new").expect("write");
        assert_eq!(std::fs::read(&target).expect("read"), b"old");
        assert_eq!(names(dir.path()).len(), 2, "the temporary file sits beside the target");
        file.commit().expect("commit");
        assert_eq!(std::fs::read(&target).expect("read"), b"new");
        assert_eq!(names(dir.path()), ["out.bin"]);
    }

    #[test]
    fn an_abandoned_file_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out.bin");
        let file = AtomicFile::create(&target).expect("create");
        file.open().expect("open").write_all(b"partial").expect("write");
        drop(file);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn temporary_names_are_unique() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out.bin");
        let a = AtomicFile::create(&target).expect("create");
        let b = AtomicFile::create(&target).expect("create");
        assert_ne!(a.path(), b.path());
    }

    #[test]
    fn a_directory_or_a_missing_directory_is_refused_naming_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = write_atomically(dir.path(), b"x").expect_err("a directory").to_string();
        assert!(error.contains("is a directory"), "{error}");
        assert!(error.contains(&dir.path().display().to_string()), "{error}");
        let missing = dir.path().join("no/such/dir/out.bin");
        let error = write_atomically(&missing, b"x")
            .expect_err("missing directory")
            .to_string();
        assert!(error.contains("does not exist"), "{error}");
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn commit_new_never_replaces_a_published_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("part-000001.parquet");
        let first = AtomicFile::create(&target).expect("create");
        let second = AtomicFile::create(&target).expect("create");
        first.open().expect("open").write_all(b"first").expect("write");
        second.open().expect("open").write_all(b"second").expect("write");
        first.commit_new().expect("the name is free");
        let error = second.commit_new().expect_err("the name is taken").to_string();
        assert!(error.contains("already exists"), "{error}");
        assert_eq!(std::fs::read(&target).expect("read"), b"first");
        assert_eq!(names(dir.path()), ["part-000001.parquet"], "no temporary file is left");
    }

    #[test]
    fn a_target_that_becomes_a_directory_before_commit_keeps_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out.bin");
        let file = AtomicFile::create(&target).expect("create");
        std::fs::create_dir(&target).expect("mkdir");
        let error = file.commit().expect_err("a directory").to_string();
        assert!(error.contains("is a directory"), "{error}");
        assert_eq!(names(dir.path()), ["out.bin"]);
    }
}
