//! Tailing: a file that keeps growing, or a directory where new files keep appearing.
//!
//! A [`FollowReader`] reads a file like `tail -f`: at the end of the data it waits and
//! polls instead of returning end-of-file, until the file is finished. A file is finished
//! when the stream shuts down, when following is off (`--no-follow`), or, in a directory,
//! when a file that sorts after it appears (the writer has moved on, as with log
//! rotation); its remaining bytes are read before it is closed.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::shutdown::Shutdown;

/// How a followed source waits for more data.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Keep waiting at the end of the data (`false`: stop at the current end).
    pub follow: bool,
    /// How long to sleep between polls for new data.
    pub poll: Duration,
    /// Ends the waiting early.
    pub shutdown: Shutdown,
}

/// Reads a file, waiting at its end for more data while it is followed.
#[derive(Debug)]
pub struct FollowReader {
    file: File,
    options: FollowOptions,
    /// In a directory: the directory and the file's name, to notice a later file.
    directory: Option<(PathBuf, String, String)>,
}

impl FollowReader {
    /// Follows the file at `path`, from byte `offset` on.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open_at(path: &Path, offset: u64, options: FollowOptions) -> io::Result<Self> {
        Ok(Self {
            file: open_at(path, offset)?,
            options,
            directory: None,
        })
    }

    /// Follows `path`, a file of `directory` whose names end in `extension`, from byte
    /// `offset` on, until a later file of that kind appears there.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open_in_directory(
        path: &Path,
        offset: u64,
        directory: &Path,
        extension: &str,
        options: FollowOptions,
    ) -> io::Result<Self> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Self {
            file: open_at(path, offset)?,
            options,
            directory: Some((directory.to_path_buf(), name, extension.to_string())),
        })
    }

    fn finished(&self) -> io::Result<bool> {
        if !self.options.follow || self.options.shutdown.is_requested() {
            return Ok(true);
        }
        match &self.directory {
            Some((directory, name, extension)) => Ok(next_file(directory, extension, Some(name))?.is_some()),
            None => Ok(false),
        }
    }
}

impl Read for FollowReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.file.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            if self.finished()? {
                // Bytes written just before the file was finished.
                return self.file.read(buf);
            }
            std::thread::sleep(self.options.poll);
        }
    }
}

fn open_at(path: &Path, offset: u64) -> io::Result<File> {
    let mut file = File::open(path)?;
    if offset > 0 {
        file.seek(SeekFrom::Start(offset))?;
    }
    Ok(file)
}

/// The first file of `directory` whose name ends in `extension` and sorts after `after`
/// (all files when `None`). Hidden files (a leading `.`, as writers use for files in
/// progress) are skipped.
///
/// # Errors
/// When the directory cannot be listed.
pub fn next_file(directory: &Path, extension: &str, after: Option<&str>) -> io::Result<Option<PathBuf>> {
    let mut best: Option<(String, PathBuf)> = None;
    for entry in std::fs::read_dir(directory)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(extension) || !entry.file_type()?.is_file() {
            continue;
        }
        if after.is_some_and(|after| name.as_str() <= after) {
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| name < *b) {
            best = Some((name, entry.path()));
        }
    }
    Ok(best.map(|(_, path)| path))
}
