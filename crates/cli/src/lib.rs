//! The `tabssl` command line: `tabssl sql` runs SQL with the tabssl functions registered,
//! `tabssl models` lists the model registry, `tabssl bench` measures a model, `tabssl export`
//! writes a corrupted pretraining set, `tabssl pretrain` trains an encoder to ONNX,
//! `tabssl stream` runs SQL over an unbounded input.

mod bench;
mod choices;
mod console;
mod demo;
mod evaluate;
mod export;
mod output;
mod pretrain;
mod serve;
mod sql;
mod stream;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use output::OutputFormat;

use tabssl_functions::options::{Provider, TabsslOptions};
use tabssl_functions::setting::{Spelling, set_spelling};

/// Self-supervised learning for tabular data, inside SQL.
#[derive(Debug, Parser)]
#[command(name = "tabssl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run SQL statements (several per file or string; CREATE EXTERNAL TABLE, SET, COPY work).
    Sql(SqlArgs),
    /// List the models in the registry.
    Models(CommonArgs),
    /// Measure rows/s of a model per provider and batch size on synthetic rows.
    Bench(bench::BenchArgs),
    /// Write a pretraining set: originals, corrupted values and masks, K views per row.
    Export(export::ExportArgs),
    /// Pretrain a VIME, SCARF or denoising-autoencoder encoder and write it as ONNX.
    Pretrain(pretrain::PretrainArgs),
    /// Few-label downstream evaluation of registry encoders (markdown, PNG, JSON).
    Evaluate(evaluate::EvaluateArgs),
    /// The whole loop on built-in synthetic data: export, pretrain, embed in SQL, evaluate.
    Demo(demo::DemoArgs),
    /// SQL over an unbounded input (stdin, a growing file or directory), batch by batch.
    Stream(stream::StreamArgs),
    /// Arrow Flight SQL endpoint: clients query tables and embed over the network.
    Serve(serve::ServeArgs),
    /// A worker of a tabssl cluster: runs plan fragments for `tabssl sql --workers`.
    Worker(worker::WorkerArgs),
}

/// Where models come from and how they run: shared by the commands that run SQL.
#[derive(Debug, Args)]
struct ModelArgs {
    /// Model registry directory [default: $TABSSL_MODELS, else ./models].
    #[arg(long, value_name = "DIR")]
    models: Option<PathBuf>,
    /// Execution provider for models: cpu, cuda or auto.
    #[arg(long, value_name = "PROVIDER")]
    provider: Option<Provider>,
    /// CUDA device ordinal.
    #[arg(long, value_name = "N")]
    device_id: Option<usize>,
    /// ONNX Runtime intra-op threads per session [default: cores / partitions].
    #[arg(long, value_name = "N")]
    intra_threads: Option<usize>,
}

impl ModelArgs {
    /// The `tabssl.*` options these arguments set.
    fn options(&self) -> TabsslOptions {
        let mut options = TabsslOptions::default();
        if let Some(dir) = &self.models {
            options.models_dir = dir.display().to_string();
        }
        if let Some(provider) = self.provider {
            options.provider = provider;
        }
        if let Some(device) = self.device_id {
            options.device_id = device;
        }
        if let Some(threads) = self.intra_threads {
            options.intra_threads = threads;
        }
        options
    }
}

/// Options shared by every command.
#[derive(Debug, Args)]
struct CommonArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// DataFusion target partitions [default: cores].
    #[arg(long, value_name = "N")]
    partitions: Option<usize>,
    /// DataFusion batch size in rows.
    #[arg(long, value_name = "ROWS")]
    batch_size: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

#[derive(Debug, Args)]
struct SqlArgs {
    /// SQL to run (repeatable; runs before files).
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    commands: Vec<String>,
    /// File of SQL statements to run (repeatable).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Run the queries on these `tabssl worker`s (host:port, comma-separated).
    #[arg(long, value_name = "ADDRS", env = tabssl_distributed::WORKERS_ENV)]
    workers: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

/// `ctx`, distributed over `workers` when a list is given (each worker checked first).
async fn maybe_distributed(
    ctx: datafusion::prelude::SessionContext,
    workers: Option<&str>,
) -> tabssl_functions::Result<datafusion::prelude::SessionContext> {
    match workers {
        Some(list) => tabssl_distributed::distributed_context(&ctx, &tabssl_distributed::Cluster::parse(list)?).await,
        None => Ok(ctx),
    }
}

impl CommonArgs {
    fn context(&self) -> datafusion::prelude::SessionContext {
        // On the command line, `SELECT * FROM 'file.parquet'` reads files directly.
        self.base_context().enable_url_table()
    }

    /// The session without URL tables (they must be enabled last: they hold the session).
    fn base_context(&self) -> datafusion::prelude::SessionContext {
        let mut config = datafusion::prelude::SessionConfig::new();
        if let Some(partitions) = self.partitions {
            config = config.with_target_partitions(partitions.max(1));
        }
        if let Some(rows) = self.batch_size {
            config = config.with_batch_size(rows.max(1));
        }
        tabssl_infer::new_context_with_config(config, self.model.options())
    }
}

/// The command line as typed, quoted where a shell needs it (recorded in manifests and
/// reports so a result can be reproduced).
fn command_line() -> String {
    std::env::args()
        .map(|arg| shell_quote(&arg))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `arg` as a POSIX shell word (quoted by `shlex` where a shell needs it).
fn shell_quote(arg: &str) -> String {
    // Only a NUL byte cannot be quoted, and program arguments never hold one.
    shlex::try_quote(arg).map_or_else(|_| arg.to_string(), std::borrow::Cow::into_owned)
}

/// Binds `address` (port 0 picks a free port) and returns the listener with the address it got.
async fn bind(
    address: std::net::SocketAddr,
) -> tabssl_functions::Result<(tokio::net::TcpListener, std::net::SocketAddr)> {
    let failed = |e| tabssl_functions::Error::io(address.to_string(), e);
    let listener = tokio::net::TcpListener::bind(address).await.map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    Ok((listener, bound))
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

/// The `tabssl` command line on this process's arguments: parses them (help and usage
/// errors print and exit the way clap does), makes messages name settings by their flags,
/// runs the command and returns the exit code. Errors go to stderr.
pub async fn run_command_line() -> ExitCode {
    let cli = Cli::parse();
    set_spelling(Spelling::CommandLine);
    run(cli).await
}

/// Runs one parsed command line and returns the process exit code.
async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Sql(args) => match maybe_distributed(args.common.base_context(), args.workers.as_deref()).await {
            Ok(ctx) => sql::run(&ctx.enable_url_table(), &args.commands, &args.files, args.common.format).await,
            Err(e) => Err(e),
        },
        Command::Models(common) => {
            let statement = "SELECT name, layout, inputs, output, width, provider, manifest, description, error \
                             FROM tabssl_models()";
            sql::run(&common.context(), &[statement.to_string()], &[], common.format).await
        }
        Command::Bench(args) => bench::run(&args).await,
        Command::Export(args) => export::run(&args).await,
        Command::Stream(args) => stream::run(&args).await,
        Command::Serve(args) => serve::run(&args).await,
        Command::Worker(args) => worker::run(&args).await,
        Command::Demo(args) => demo::run(&args).await.and_then(|summary| console::print(&summary)),
        Command::Evaluate(args) => evaluate::run(&args).await.and_then(|report| console::print(&report)),
        Command::Pretrain(args) => pretrain::run(&args).await.and_then(|summary| console::print(&summary)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output closed it: it has what it wanted (`| head`).
        Err(_) if console::stdout_closed() => ExitCode::SUCCESS,
        Err(e) => {
            console::note(&format!("Error: {e}"));
            ExitCode::FAILURE
        }
    }
}
