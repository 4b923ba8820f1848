//! `tabssl serve`: an Arrow Flight SQL endpoint whose sessions have every tabssl function.
//!
//! The pieces:
//! - `service`: the Flight SQL surface (statements, prepared statements with parameters
//!   (`prepared`), bulk ingest, catalog browsing (`catalog`), `DoExchange` enrichment
//!   of a stream of batches (`exchange`));
//! - `session`: one client session per connection, holding the tables the client
//!   ingested, derived from the operator's session (its tables and functions);
//! - `guard`: admission (concurrent queries), per-query memory and time limits, and the
//!   log line of each call;
//! - `auth`: bearer tokens and the handshake that exchanges Basic credentials for one;
//! - `listener`: the TCP listener (optionally TLS) that tells sessions when a
//!   connection closes.
//!
//! Clients run queries only: DDL, DML, `COPY` and `SET` belong to the operator's start-up
//! SQL, and the only files clients' SQL can reach (marginal files of `corrupt_swap`) must
//! lie under a `--data-root`.

mod auth;
mod catalog;
mod exchange;
mod guard;
mod listener;
mod prepared;
mod service;
mod session;

use std::net::SocketAddr;
use std::time::Duration;

pub use auth::Tokens;
pub use service::{TabsslFlightSql, serve};

use tabssl_functions::file_access::FileAccess;
use tabssl_functions::{Error, Result, setting::Setting};

/// The limits each client call runs under; every one is reported in the error that
/// enforces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Queries (and ingests, exchanges) running at once; more wait up to `queue_timeout`.
    pub max_concurrent_queries: usize,
    /// How long a call waits for a free slot before `RESOURCE_EXHAUSTED`.
    pub queue_timeout: Duration,
    /// Memory each query's operators may hold (DataFusion memory pool), in bytes.
    pub query_memory_bytes: usize,
    /// Wall-clock time a query may run before `DEADLINE_EXCEEDED`.
    pub query_timeout: Duration,
    /// Largest gRPC message accepted or sent, in bytes.
    pub max_message_bytes: usize,
    /// Rows a session may hold in ingested tables (and bind as parameters at once).
    pub max_ingest_rows: usize,
    /// Client connections held at once; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// How long a connection may send nothing while it runs no call before the server
    /// closes it (and drops its session and ingested tables).
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_queries: 16,
            queue_timeout: Duration::from_secs(10),
            query_memory_bytes: 1 << 30,
            query_timeout: Duration::from_secs(300),
            max_message_bytes: 64 << 20,
            max_ingest_rows: 10_000_000,
            max_connections: 256,
            idle_timeout: Duration::from_secs(600),
        }
    }
}

impl Limits {
    /// Checks that every limit is usable.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming a zero limit.
    pub fn check(&self) -> Result<()> {
        let too_small = [
            (
                Setting::MaxConcurrentQueries,
                self.max_concurrent_queries == 0,
                "positive",
            ),
            (Setting::QueryMemory, self.query_memory_bytes == 0, "positive"),
            (Setting::QueryTimeout, self.query_timeout.is_zero(), "positive"),
            (Setting::MaxMessageBytes, self.max_message_bytes < 1024, "at least 1024"),
            (Setting::MaxIngestRows, self.max_ingest_rows == 0, "positive"),
            (Setting::MaxConnections, self.max_connections == 0, "positive"),
            (Setting::IdleTimeout, self.idle_timeout.is_zero(), "positive"),
        ];
        match too_small.iter().find(|(_, bad, _)| *bad) {
            Some((setting, _, expected)) => Err(Error::invalid(format!("{setting} must be {expected}"))),
            None => Ok(()),
        }
    }
}

/// A PEM certificate chain and private key for TLS.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate chain, PEM.
    pub certificate_pem: Vec<u8>,
    /// The private key, PEM.
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsIdentity(..)")
    }
}

/// How the server runs: who may call, which files clients' SQL may read, the limits, TLS,
/// and how long running calls get to finish at shutdown.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Accepted bearer tokens (none: no authentication, loopback only).
    pub tokens: Tokens,
    /// The files clients' SQL may read (default: none).
    pub file_access: FileAccess,
    /// Per-call limits.
    pub limits: Limits,
    /// TLS certificate and key (none: plaintext, loopback only).
    pub tls: Option<TlsIdentity>,
    /// After a shutdown signal, how long running calls may take before they are cut off.
    pub grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            tokens: Tokens::default(),
            file_access: FileAccess::Within(Vec::new()),
            limits: Limits::default(),
            tls: None,
            grace: Duration::from_secs(30),
        }
    }
}

/// Refuses an address beyond loopback unless both authentication and TLS are on.
///
/// # Errors
/// [`Error::Invalid`] naming what is missing.
pub fn check_listen_address(address: SocketAddr, options: &ServeOptions) -> Result<()> {
    if address.ip().is_loopback() {
        return Ok(());
    }
    let missing: Vec<String> = [
        (!options.tokens.required()).then(|| format!("bearer tokens ({})", Setting::Tokens)),
        options.tls.is_none().then(|| format!("TLS ({})", Setting::Tls)),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "listening on {address}, beyond loopback, needs {}",
            missing.join(" and ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_loopback_needs_tokens_and_tls() {
        let open = ServeOptions::default();
        assert!(check_listen_address("127.0.0.1:50051".parse().expect("address"), &open).is_ok());
        assert!(check_listen_address("[::1]:0".parse().expect("address"), &open).is_ok());
        let public = "0.0.0.0:50051".parse().expect("address");
        let error = check_listen_address(public, &open).expect_err("refused");
        assert!(
            error.to_string().contains("bearer tokens") && error.to_string().contains("TLS"),
            "{error}"
        );
        let tokens_only = ServeOptions {
            tokens: Tokens::new(["t".to_string()]),
            ..ServeOptions::default()
        };
        let error = check_listen_address(public, &tokens_only).expect_err("refused");
        assert!(
            !error.to_string().contains("bearer") && error.to_string().contains("TLS"),
            "{error}"
        );
        let secured = ServeOptions {
            tls: Some(TlsIdentity {
                certificate_pem: Vec::new(),
                key_pem: Vec::new(),
            }),
            ..tokens_only
        };
        assert!(check_listen_address(public, &secured).is_ok());
    }

    #[test]
    fn zero_limits_are_refused() {
        assert!(Limits::default().check().is_ok());
        let error = Limits {
            max_concurrent_queries: 0,
            ..Limits::default()
        }
        .check()
        .expect_err("zero");
        assert!(
            error.to_string().contains("max_concurrent_queries must be positive"),
            "{error}"
        );
    }
}
