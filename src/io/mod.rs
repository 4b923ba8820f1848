//! Files tabssl reads and writes: input files registered as tables ([`input`]), and
//! written files that appear whole under their final name or not at all ([`atomic`]).

pub mod atomic;
pub mod input;

pub use atomic::{AtomicFile, sync_directory, write_atomically};
pub use input::register_input;
