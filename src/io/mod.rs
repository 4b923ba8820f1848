//! Files tabssl writes: every one appears whole under its final name or not at all
//! ([`atomic`]).

pub mod atomic;

pub use atomic::{AtomicFile, sync_directory, write_atomically};
