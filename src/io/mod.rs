//! Files tabssl reads and writes: input files registered as tables ([`input`]), written
//! files that appear whole under their final name or not at all ([`atomic`]), and the
//! directories untrusted SQL may read from ([`roots`]).

pub mod atomic;
pub mod input;
pub mod roots;

pub use atomic::{AtomicFile, sync_directory, write_atomically};
pub use input::register_input;
pub use roots::FileAccess;
