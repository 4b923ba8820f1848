//! `tabssl serve`: the Flight SQL endpoint ([`tabssl_serve`]), with tables set up by
//! `--sql-file`, bearer tokens from a file or the environment, TLS, data roots and limits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use datafusion::sql::parser::DFParser;

use super::ModelArgs;
use tabssl_functions::file_access::FileAccess;
use tabssl_functions::{Error, Result};
use tabssl_serve::{Limits, ServeOptions, TabsslFlightSql, TlsIdentity, Tokens, check_listen_address, serve};

/// Arguments of `tabssl serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; beyond loopback, tokens and TLS are required. Port 0 picks a
    /// free port (the address is printed on stderr).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    #[command(flatten)]
    model: ModelArgs,
    /// SQL run at start (CREATE EXTERNAL TABLE, CREATE VIEW, SET): the tables clients can
    /// query by name. Repeatable.
    #[arg(long, value_name = "FILE")]
    sql_file: Vec<PathBuf>,
    /// A directory whose files clients' SQL may read (marginal files of corrupt_swap).
    /// Repeatable; without one, clients' SQL reads no file.
    #[arg(long, value_name = "DIR")]
    data_root: Vec<PathBuf>,
    /// File of bearer tokens, one per line; calls without one of them are refused.
    #[arg(long, value_name = "FILE", env = "TABSSL_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// A bearer token (prefer --token-file or the environment to the command line).
    #[arg(long, value_name = "TOKEN", env = "TABSSL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// TLS certificate chain (PEM); with --tls-key, the server speaks TLS only.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Queries, ingests and exchanges running at once; more wait (see --queue-timeout).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_concurrent_queries)]
    max_concurrent_queries: usize,
    /// Seconds a call waits for a free slot before RESOURCE_EXHAUSTED.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().queue_timeout.as_secs_f64())]
    queue_timeout: f64,
    /// Bytes of memory each query's operators may hold (sorts, joins, aggregates).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().query_memory_bytes)]
    query_memory: usize,
    /// Seconds a query may run before DEADLINE_EXCEEDED.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().query_timeout.as_secs_f64())]
    query_timeout: f64,
    /// Largest gRPC message received or sent, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_message_bytes)]
    max_message_bytes: usize,
    /// Rows a session may hold in ingested tables (and bind as parameters at once).
    #[arg(long, value_name = "ROWS", default_value_t = Limits::default().max_ingest_rows)]
    max_ingest_rows: usize,
    /// Client connections held at once; one more is closed as soon as it is accepted.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Seconds a connection may send nothing while it runs no call before the server closes
    /// it (its session and ingested tables with it).
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().idle_timeout.as_secs_f64())]
    idle_timeout: f64,
    /// Seconds running calls may take after SIGTERM before they are cut off.
    #[arg(long, value_name = "SECONDS", default_value_t = ServeOptions::default().grace.as_secs_f64())]
    grace: f64,
}

/// A duration flag in seconds.
fn seconds(flag: &str, value: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| Error::invalid(format!("{flag} {value}: expected a number of seconds >= 0")))
}

impl ServeArgs {
    /// The server options these arguments describe (reads token, TLS files).
    fn options(&self) -> Result<ServeOptions> {
        let mut tokens = match &self.token_file {
            Some(path) => Tokens::from_file(path)?,
            None => Tokens::default(),
        };
        if let Some(token) = &self.token {
            tokens = tokens.with(token);
        }
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsIdentity {
                certificate_pem: std::fs::read(cert).map_err(|e| Error::io(cert, e))?,
                key_pem: std::fs::read(key).map_err(|e| Error::io(key, e))?,
            }),
            _ => None,
        };
        let limits = Limits {
            max_concurrent_queries: self.max_concurrent_queries,
            queue_timeout: seconds("--queue-timeout", self.queue_timeout)?,
            query_memory_bytes: self.query_memory,
            query_timeout: seconds("--query-timeout", self.query_timeout)?,
            max_message_bytes: self.max_message_bytes,
            max_ingest_rows: self.max_ingest_rows,
            max_connections: self.max_connections,
            idle_timeout: seconds("--idle-timeout", self.idle_timeout)?,
        };
        limits.check()?;
        Ok(ServeOptions {
            tokens,
            file_access: FileAccess::within(&self.data_root)?,
            limits,
            tls,
            grace: seconds("--grace", self.grace)?,
        })
    }
}

/// Runs `tabssl serve` until SIGTERM or Ctrl-C; running calls get the grace period.
///
/// # Errors
/// A bad address, token file, TLS file, data root or start-up SQL, or a port that cannot
/// be bound.
pub async fn run(args: &ServeArgs) -> Result<()> {
    let options = args.options()?;
    check_listen_address(args.listen, &options)?;
    let ctx = tabssl_infer::new_context(args.model.options());
    for path in &args.sql_file {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        tabssl_infer::run_statements(&ctx, DFParser::parse_sql(&text)?).await?;
    }
    let (listener, address) = super::bind(args.listen).await?;
    super::console::note(&format!(
        "tabssl serve: Flight SQL on {address} ({}, {})",
        if options.tokens.required() {
            "bearer tokens required"
        } else {
            "no authentication"
        },
        if options.tls.is_some() { "TLS" } else { "plaintext" }
    ));
    let service = TabsslFlightSql::new(&ctx, options)?;
    serve(service, listener, super::shutdown_signal()).await?;
    super::console::note("tabssl serve: stopped");
    Ok(())
}
