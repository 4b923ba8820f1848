//! The `tabssl` command-line tool; see `tabssl --help`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("warn,tabssl::serve=info,tabssl::worker=info"),
    )
    .init();
    tabssl::setup::install();
    tabssl::run_command_line().await
}
