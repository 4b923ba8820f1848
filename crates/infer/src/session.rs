//! A small pool of ONNX Runtime sessions for one model on one provider.
//!
//! `Session::run` needs `&mut self`, so concurrent partitions and queries each borrow a
//! session from the pool. Sessions are created lazily, up to `max_sessions`; a caller that
//! finds them all busy waits for one to come back. A model is therefore loaded at most
//! `max_sessions` times per process, never once per batch.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use ort::session::Session;

use super::runtime::{ActiveProvider, Runtime};
use crate::options::Provider;
use crate::{Error, Result};

/// How to create sessions for a model.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Model name, for messages.
    pub model: String,
    /// The `.onnx` file, for messages and for the external data a graph may refer to.
    pub path: PathBuf,
    /// The graph's bytes as read once: every session of the pool is created from them,
    /// so a file replaced on disk while the pool grows cannot mix two versions.
    pub bytes: Arc<[u8]>,
    /// Provider asked for.
    pub provider: Provider,
    /// CUDA device ordinal.
    pub device_id: usize,
    /// Intra-op threads per session.
    pub intra_threads: usize,
    /// Most sessions kept.
    pub max_sessions: usize,
}

/// A session with a reusable input buffer, so packed inputs need no fresh allocation
/// (and no fresh page faults) per batch.
#[derive(Debug)]
pub struct PooledSession {
    /// The ONNX Runtime session.
    pub session: Session,
    /// Scratch space for a packed float32 input.
    pub scratch: Vec<f32>,
}

#[derive(Debug)]
struct PoolState {
    idle: Vec<PooledSession>,
    created: usize,
}

/// Sessions of one model on one provider.
#[derive(Debug)]
pub struct SessionPool {
    runtime: Arc<Runtime>,
    config: SessionConfig,
    active: ActiveProvider,
    state: Mutex<PoolState>,
    returned: Condvar,
}

impl SessionPool {
    /// Creates the pool with its first session, which is returned separately so the
    /// caller can read the graph's metadata from it before putting it in the pool.
    ///
    /// # Errors
    /// [`Error::InvalidModel`] when ONNX Runtime rejects the file, provider errors as
    /// [`Runtime::session_builder`] reports them.
    pub fn open(runtime: Arc<Runtime>, config: SessionConfig) -> Result<(Self, Session)> {
        let (session, active) = create_session(&runtime, &config)?;
        let pool = Self {
            runtime,
            config,
            active,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                created: 1,
            }),
            returned: Condvar::new(),
        };
        Ok((pool, session))
    }

    /// The provider the sessions really run on.
    pub fn active_provider(&self) -> ActiveProvider {
        self.active
    }

    /// Puts a session (the first one from [`Self::open`]) into the pool.
    pub fn give(&self, session: Session) {
        self.put_back(PooledSession {
            session,
            scratch: Vec::new(),
        });
    }

    fn put_back(&self, session: PooledSession) {
        self.lock().idle.push(session);
        self.returned.notify_one();
    }

    /// Runs `f` with a session borrowed from the pool.
    ///
    /// # Errors
    /// Errors from creating a new session when the pool must grow.
    pub fn with_session<R>(&self, f: impl FnOnce(&mut PooledSession) -> R) -> Result<R> {
        let mut borrowed = Borrowed {
            pool: self,
            session: Some(self.take()?),
        };
        let session = borrowed
            .session
            .as_mut()
            .ok_or_else(|| Error::RuntimeUnavailable("session pool lost a session".into()))?;
        Ok(f(session))
    }

    fn take(&self) -> Result<PooledSession> {
        let mut state = self.lock();
        loop {
            if let Some(session) = state.idle.pop() {
                return Ok(session);
            }
            if state.created < self.config.max_sessions {
                state.created += 1;
                drop(state);
                return match create_session(&self.runtime, &self.config) {
                    Ok((session, _)) => Ok(PooledSession {
                        session,
                        scratch: Vec::new(),
                    }),
                    Err(e) => {
                        self.lock().created -= 1;
                        Err(e)
                    }
                };
            }
            state = self.returned.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A borrowed session; goes back to the pool when dropped, or is discarded (making room
/// for a fresh one) if the caller panicked while using it.
struct Borrowed<'a> {
    pool: &'a SessionPool,
    session: Option<PooledSession>,
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else { return };
        if std::thread::panicking() {
            drop(session);
            self.pool.lock().created -= 1;
            self.pool.returned.notify_one();
        } else {
            self.pool.put_back(session);
        }
    }
}

fn create_session(runtime: &Runtime, config: &SessionConfig) -> Result<(Session, ActiveProvider)> {
    let (mut builder, active) = runtime.session_builder(config.provider, config.device_id, config.intra_threads)?;
    // A graph read from memory looks for external data files beside the model file.
    if let Some(folder) = config.path.parent().and_then(Path::to_str).filter(|f| !f.is_empty()) {
        builder = builder
            .with_config_entry("session.model_external_initializers_file_folder_path", folder)
            .map_err(|e| invalid_model(&config.model, &config.path, &e.into()))?;
    }
    let session = builder
        .commit_from_memory(&config.bytes)
        .map_err(|e| invalid_model(&config.model, &config.path, &e))?;
    Ok((session, active))
}

fn invalid_model(model: &str, path: &Path, error: &ort::Error) -> Error {
    Error::InvalidModel {
        model: model.to_string(),
        path: path.to_path_buf(),
        message: format!("ONNX Runtime cannot load it: {error}"),
    }
}
