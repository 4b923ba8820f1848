//! `tabssl serve`: the Flight SQL endpoint ([`crate::serve`]) on a loopback address, with
//! tables set up by `--sql-file` and bearer tokens from a file or the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use datafusion::sql::parser::DFParser;

use super::ModelArgs;
use crate::serve::{TabsslFlightSql, Tokens, check_listen_address, serve};
use crate::{Error, Result};

/// Arguments of `tabssl serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback only for now).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    #[command(flatten)]
    model: ModelArgs,
    /// SQL run at start (CREATE EXTERNAL TABLE, CREATE VIEW, SET): the tables clients can
    /// query by name. Repeatable.
    #[arg(long, value_name = "FILE")]
    sql_file: Vec<PathBuf>,
    /// File of bearer tokens, one per line; calls without one of them are refused.
    #[arg(long, value_name = "FILE", env = "TABSSL_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// A bearer token (prefer --token-file or the environment to the command line).
    #[arg(long, value_name = "TOKEN", env = "TABSSL_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Runs `tabssl serve` until SIGTERM or Ctrl-C; running calls finish first.
///
/// # Errors
/// A bad address, token file or start-up SQL, or a port that cannot be bound.
pub async fn run(args: &ServeArgs) -> Result<()> {
    check_listen_address(args.listen)?;
    let mut tokens = match &args.token_file {
        Some(path) => Tokens::from_file(path)?,
        None => Tokens::default(),
    };
    if let Some(token) = &args.token {
        tokens = tokens.with(token);
    }
    let ctx = crate::new_context(args.model.options());
    for path in &args.sql_file {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        for statement in DFParser::parse_sql(&text)? {
            let plan = ctx.state().statement_to_plan(statement).await?;
            ctx.execute_logical_plan(plan).await?.collect().await?;
        }
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Error::io(args.listen.to_string(), e))?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::io(args.listen.to_string(), e))?;
    super::console::note(&format!(
        "tabssl serve: Flight SQL on {address} ({})",
        if tokens.required() {
            "bearer tokens required"
        } else {
            "no authentication: loopback only"
        }
    ));
    let service = TabsslFlightSql::new(ctx, tokens)?;
    serve(service, listener, shutdown_signal()).await?;
    super::console::note("tabssl serve: stopped");
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
