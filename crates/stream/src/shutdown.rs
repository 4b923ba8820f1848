//! Orderly shutdown: the first SIGINT or SIGTERM asks the stream to stop reading, flush
//! what it has and close its files; a second one exits the process at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

/// A shared "stop reading" flag, set by a signal or by the program itself.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    requested: Arc<AtomicBool>,
}

impl Shutdown {
    /// A flag that only [`Shutdown::request`] sets.
    pub fn new() -> Self {
        Self::default()
    }

    /// A flag that SIGINT and SIGTERM set. When the flag is already set, the signal exits
    /// the process immediately with status 128 + signal number (130, 143).
    ///
    /// # Errors
    /// When the signal handlers cannot be installed.
    pub fn on_signals() -> std::io::Result<Self> {
        let shutdown = Self::new();
        for signal in [SIGINT, SIGTERM] {
            // Registered first, so it sees the flag as it was before this signal.
            signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(&shutdown.requested))?;
            signal_hook::flag::register(signal, Arc::clone(&shutdown.requested))?;
        }
        Ok(shutdown)
    }

    /// Asks the stream to stop.
    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}
