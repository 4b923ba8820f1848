//! What every client call runs under: a slot among `max_concurrent_queries`, a deadline,
//! and a log line when it ends (peer, SQL hash, rows, milliseconds, outcome).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow_flight::error::FlightError;
use datafusion::error::DataFusionError;
use futures::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use super::Limits;
use tabssl_functions::setting::Setting;

/// Admission to running a query: a bounded number at once.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    limits: Limits,
    running: Arc<AtomicUsize>,
    in_flight: Arc<CallsInFlight>,
}

/// The calls each client connection is running, so an idle connection is told apart
/// from one waiting for a slow answer.
#[derive(Debug, Default)]
pub struct CallsInFlight(Mutex<HashMap<SocketAddr, usize>>);

impl CallsInFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, usize>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn start(&self, peer: SocketAddr) {
        *self.lock().entry(peer).or_default() += 1;
    }

    fn end(&self, peer: SocketAddr) {
        let mut calls = self.lock();
        if let Some(count) = calls.get_mut(&peer) {
            *count -= 1;
            if *count == 0 {
                calls.remove(&peer);
            }
        }
    }

    /// Whether the connection from `peer` runs a call.
    pub fn any(&self, peer: SocketAddr) -> bool {
        self.lock().contains_key(&peer)
    }
}

impl Admission {
    /// Admission under `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limits.max_concurrent_queries)),
            limits,
            running: Arc::new(AtomicUsize::new(0)),
            in_flight: Arc::default(),
        }
    }

    /// The calls each connection is running.
    pub fn in_flight(&self) -> Arc<CallsInFlight> {
        Arc::clone(&self.in_flight)
    }

    /// The limits calls run under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Queries running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Waits for a slot up to the queue timeout.
    ///
    /// # Errors
    /// `RESOURCE_EXHAUSTED` naming the limit when no slot frees in time.
    pub async fn admit(&self, call: CallLog) -> Result<Call, Status> {
        let limits = &self.limits;
        let permit = tokio::time::timeout(limits.queue_timeout, Arc::clone(&self.slots).acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| {
                Status::resource_exhausted(format!(
                    "the server is busy: {} queries are running ({} {}) and none finished within {:?} ({}); retry \
                     later",
                    limits.max_concurrent_queries,
                    Setting::MaxConcurrentQueries,
                    limits.max_concurrent_queries,
                    limits.queue_timeout,
                    Setting::QueueTimeout
                ))
            })?;
        self.running.fetch_add(1, Ordering::Relaxed);
        if let Some(peer) = call.peer {
            self.in_flight.start(peer);
        }
        Ok(Call {
            _permit: permit,
            running: Arc::clone(&self.running),
            in_flight: Arc::clone(&self.in_flight),
            deadline: tokio::time::Instant::now() + limits.query_timeout,
            timeout: limits.query_timeout,
            log: call,
        })
    }
}

/// The log line of one call, written when it is dropped.
#[derive(Debug)]
pub struct CallLog {
    method: &'static str,
    peer: Option<SocketAddr>,
    sql_hash: Option<u32>,
    started: Instant,
    rows: usize,
    outcome: Option<tonic::Code>,
}

impl CallLog {
    /// Starts the log of a `method` call from `peer`.
    pub fn new(method: &'static str, peer: Option<SocketAddr>) -> Self {
        Self {
            method,
            peer,
            sql_hash: None,
            started: Instant::now(),
            rows: 0,
            outcome: None,
        }
    }

    /// Records the SQL the call runs (its CRC-32, so logs do not hold clients' data).
    pub fn sql(&mut self, sql: &str) {
        self.sql_hash = Some(crc32fast::hash(sql.as_bytes()));
    }

    /// Records rows handled.
    pub fn rows(&mut self, rows: usize) {
        self.rows += rows;
    }

    /// Records how the call ended.
    pub fn outcome(&mut self, code: tonic::Code) {
        self.outcome = Some(code);
    }
}

impl Drop for CallLog {
    fn drop(&mut self) {
        let peer = self.peer.map_or_else(|| "-".to_string(), |p| p.to_string());
        let sql = self.sql_hash.map_or_else(|| "-".to_string(), |h| format!("{h:08x}"));
        let outcome = match self.outcome {
            Some(tonic::Code::Ok) => "ok".to_string(),
            Some(code) => format!("{code:?}"),
            None => "cancelled".to_string(),
        };
        log::info!(
            target: "tabssl::serve",
            "call={} peer={peer} sql={sql} rows={} ms={:.1} outcome={outcome}",
            self.method,
            self.rows,
            self.started.elapsed().as_secs_f64() * 1e3
        );
    }
}

/// An admitted call: holds its slot until dropped.
#[derive(Debug)]
pub struct Call {
    _permit: OwnedSemaphorePermit,
    running: Arc<AtomicUsize>,
    in_flight: Arc<CallsInFlight>,
    deadline: tokio::time::Instant,
    timeout: Duration,
    /// The call's log line.
    pub log: CallLog,
}

impl Drop for Call {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::Relaxed);
        if let Some(peer) = self.log.peer {
            self.in_flight.end(peer);
        }
    }
}

impl Call {
    /// `batches` under the call's deadline, counting rows; the slot is released and the
    /// log line written when the stream ends or is dropped (a client that went away).
    pub fn guard<S>(self, batches: S) -> impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static
    where
        S: Stream<Item = Result<RecordBatch, DataFusionError>> + Send + 'static,
    {
        futures::stream::unfold((Box::pin(batches), Some(self)), |(mut batches, call)| async move {
            let mut call = call?;
            match tokio::time::timeout_at(call.deadline, batches.next()).await {
                Ok(Some(Ok(batch))) => {
                    call.log.rows(batch.num_rows());
                    Some((Ok(batch), (batches, Some(call))))
                }
                Ok(Some(Err(error))) => {
                    let status = status_of(error);
                    call.log.outcome(status.code());
                    Some((Err(FlightError::Tonic(Box::new(status))), (batches, None)))
                }
                Ok(None) => {
                    call.log.outcome(tonic::Code::Ok);
                    None
                }
                Err(_) => {
                    let status = Status::deadline_exceeded(format!(
                        "the query ran longer than {:?} ({}) and was stopped",
                        call.timeout,
                        Setting::QueryTimeout
                    ));
                    call.log.outcome(status.code());
                    Some((Err(FlightError::Tonic(Box::new(status))), (batches, None)))
                }
            }
        })
    }
}

/// A DataFusion error as a gRPC status: what the client got wrong is `INVALID_ARGUMENT`,
/// a limit `RESOURCE_EXHAUSTED`, a status carried through DataFusion itself, the rest
/// `INTERNAL`; the message is tabssl's.
pub fn status_of(error: DataFusionError) -> Status {
    let message = error.to_string();
    match error.find_root() {
        DataFusionError::Plan(_)
        | DataFusionError::SQL(..)
        | DataFusionError::SchemaError(..)
        | DataFusionError::Configuration(_)
        | DataFusionError::NotImplemented(_) => Status::invalid_argument(message),
        DataFusionError::External(source) if source.downcast_ref::<Status>().is_some() => {
            source.downcast_ref::<Status>().map_or_else(
                || Status::internal(message),
                |status| Status::new(status.code(), status.message()),
            )
        }
        DataFusionError::ResourcesExhausted(_) => Status::resource_exhausted(format!(
            "{message} (the per-query memory limit is {})",
            Setting::QueryMemory
        )),
        _ => Status::internal(message),
    }
}

/// A client's input stream that failed: a message over the size limit is
/// `RESOURCE_EXHAUSTED` naming the setting; anything else the client sent wrong is
/// `INVALID_ARGUMENT`.
pub fn input_error(what: &str, error: FlightError) -> Status {
    match error {
        FlightError::Tonic(status) if status.code() == tonic::Code::OutOfRange => Status::resource_exhausted(format!(
            "{what}: {} (the limit is {})",
            status.message(),
            Setting::MaxMessageBytes
        )),
        FlightError::Tonic(status) => Status::new(status.code(), format!("{what}: {}", status.message())),
        other => Status::invalid_argument(format!("{what}: {other}")),
    }
}
