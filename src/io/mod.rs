//! Files tabssl reads and writes: input files registered as tables ([`input`]), written
//! files that appear whole under their final name or not at all ([`atomic`]), and the
//! directories untrusted SQL may read from ([`FileAccess`]).

pub mod atomic;
pub mod input;

pub use atomic::{AtomicFile, sync_directory, write_atomically};
pub use input::register_input;
pub use tabssl_functions::file_access::FileAccess;
