//! `tabssl worker`: one worker of a tabssl cluster ([`tabssl_distributed`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use tabssl_distributed::{WorkerOptions, WorkerStats, serve_worker, tabssl_worker};
use tabssl_functions::file_access::FileAccess;
use tabssl_functions::options::TabsslOptions;
use tabssl_functions::{Error, Result};

/// Arguments of `tabssl worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Address to listen on. Workers have no authentication: beyond loopback, --data-root
    /// is required and the port must be reachable only by the coordinators. Port 0 picks a
    /// free port (the address is printed on stderr).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50061")]
    listen: SocketAddr,
    /// Model registry directory [default: $TABSSL_MODELS, else ./models]: the same model
    /// files as the coordinator's (a worker refuses a model whose content differs).
    #[arg(long, value_name = "DIR")]
    models: Option<PathBuf>,
    /// A directory whose files plans may read (repeatable). Without one, plans may read any
    /// file this process can.
    #[arg(long, value_name = "DIR")]
    data_root: Vec<PathBuf>,
    /// Cores this worker gives model inference: ONNX Runtime sessions per model, one thread
    /// each [default: all cores] (for workers sharing a machine).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    cores: Option<u16>,
}

/// Runs a worker until SIGTERM or Ctrl-C.
///
/// # Errors
/// A bad data root, an address that cannot be bound, or a non-loopback address without
/// --data-root.
pub async fn run(args: &WorkerArgs) -> Result<()> {
    let file_access = if args.data_root.is_empty() {
        FileAccess::Unrestricted
    } else {
        FileAccess::within(&args.data_root)?
    };
    if !args.listen.ip().is_loopback() && file_access == FileAccess::Unrestricted {
        return Err(Error::invalid(format!(
            "--listen {}: a worker has no authentication, so beyond loopback it needs --data-root DIR to \
             confine the files plans may read (and a network where only coordinators reach the port)",
            args.listen
        )));
    }
    let models_dir = args
        .models
        .as_ref()
        .map_or_else(|| TabsslOptions::default().models_dir, |dir| dir.display().to_string());
    let (listener, address) = super::bind(args.listen).await?;
    let options = WorkerOptions {
        models_dir: models_dir.clone(),
        file_access,
        name: address.to_string(),
        cores: args.cores.map(usize::from),
    };
    let stats = Arc::new(WorkerStats::default());
    super::console::note(&format!(
        "tabssl worker: listening on http://{address} (models {models_dir}, {})",
        if args.data_root.is_empty() {
            "no data roots"
        } else {
            "reads confined to --data-root"
        }
    ));
    serve_worker(
        tabssl_worker(options, Arc::clone(&stats)),
        listener,
        super::shutdown_signal(),
    )
    .await?;
    super::console::note(&format!("tabssl worker: stopped after {} tasks", stats.tasks()));
    Ok(())
}
