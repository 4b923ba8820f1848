//! Standard output and standard error as Unix tools treat them.
//!
//! A reader that closes standard output (`tabssl sql ... | head`) has what it wanted: the
//! command stops and exits quietly with status 0. Any other failure to write results (a
//! full disk, `> /dev/full`) is an error naming standard output. Messages on standard error
//! never fail a command: when stderr cannot be written, they are dropped.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to standard output found the pipe closed.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Standard output; a closed pipe is remembered (see [`stdout_closed`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Stdout;

impl Stdout {
    fn watch<T>(result: io::Result<T>) -> io::Result<T> {
        if let Err(error) = &result
            && error.kind() == io::ErrorKind::BrokenPipe
        {
            STDOUT_CLOSED.store(true, Ordering::SeqCst);
        }
        result
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Self::watch(io::stdout().lock().write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Self::watch(io::stdout().lock().write_all(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Self::watch(io::stdout().lock().flush())
    }
}

/// Whether the reader of standard output has closed it.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::SeqCst)
}

/// Prints `text` and a newline on standard output.
///
/// # Errors
/// When standard output cannot be written, naming it.
pub fn print(text: &str) -> tabssl_functions::Result<()> {
    let mut out = Stdout;
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| tabssl_functions::Error::Invalid(format!("cannot write to standard output: {e}")))
}

/// Prints a message on standard error; a failure to write it is ignored.
pub fn note(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// Writes `text` to standard error as it is (progress lines); failures are ignored.
pub fn note_raw(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}
