//! The `tabssl` command-line tool; see `tabssl --help`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("warn,tabssl::serve=info,tabssl::worker=info"),
    )
    .init();
    tabssl::setup::install();
    tabssl::setting::set_spelling(tabssl::setting::Spelling::CommandLine);
    tabssl::cli::run(tabssl::cli::Cli::parse()).await
}
