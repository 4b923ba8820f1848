//! Files tabssl reads and writes: input files registered as tables (`input`), written
//! files that appear whole under their final name or not at all (`atomic`), and the
//! directories untrusted SQL may read from ([`FileAccess`]).

pub(crate) mod input;

pub(crate) use input::duplicate_name;
pub use input::register_input;
pub(crate) use tabssl_functions::atomic::{AtomicFile, write_atomically};
pub use tabssl_functions::file_access::FileAccess;
