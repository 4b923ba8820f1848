//! `tabssl demo`: the whole loop on built-in synthetic data, no files needed: export a
//! VIME training set, pretrain VIME, SCARF and DAE encoders from it, add embedding
//! columns in SQL, stream new rows through the encoder into rotating Parquet files, and
//! evaluate the embeddings with few labels. Each step is the same command a user would
//! type, printed before it runs.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Parser};

use super::{Cli, Command, console, evaluate, export, pretrain, shell_quote, sql, stream};
use tabssl_eval::Cell;
use tabssl_eval::choice::{budget_text, choices, summary, verdict};
use tabssl_functions::sql_text::{ident, string_literal};

/// Arguments of `tabssl demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Working directory for the export, models and report.
    #[arg(long, value_name = "DIR", default_value = "target/tabssl-demo")]
    pub workdir: PathBuf,
    /// Synthetic training rows (the unlabelled pool and the labelled budgets).
    #[arg(long, default_value_t = 20_000)]
    pub rows: u64,
    /// Synthetic test rows.
    #[arg(long, default_value_t = 5_000)]
    pub test_rows: u64,
    /// Pretraining epochs per encoder.
    #[arg(long, default_value_t = 15)]
    pub epochs: usize,
    /// Evaluation seeds per label budget.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
}

/// The synthetic table's feature columns, in the order the encoders take them.
const FEATURES: &str = "age,workclass,fnlwgt,education,education-num,marital-status,occupation,relationship,race,\
                        sex,capital-gain,capital-loss,hours-per-week,native-country";

/// Runs the demo; returns the summary.
///
/// # Errors
/// The first failing step's error.
pub async fn run(args: &DemoArgs) -> tabssl_functions::Result<String> {
    let started = Instant::now();
    let dir = &args.workdir;
    let models = dir.join("models");
    std::fs::create_dir_all(&models).map_err(|e| tabssl_functions::Error::io(&models, e))?;
    let path = |p: PathBuf| p.display().to_string();
    let train = format!("synthetic:{}:1", args.rows);
    let test = format!("synthetic:{}:2", args.test_rows);
    let export_file = path(dir.join("train_vime.parquet"));
    let mut timings = Vec::new();

    let step = Instant::now();
    run_step(&[
        "export",
        "--input",
        &train,
        "--output",
        &export_file,
        "--method",
        "vime",
        "--views",
        "2",
        "--key",
        "id",
        "--keep",
        "class",
    ])
    .await?;
    timings.push(("export (VIME, 2 views)".to_string(), step.elapsed().as_secs_f64()));

    let epochs = args.epochs.to_string();
    for method in ["vime", "scarf", "dae"] {
        let step = Instant::now();
        let output = path(models.join(format!("demo_{method}.onnx")));
        run_step(&[
            "pretrain",
            "--input",
            &export_file,
            "--method",
            method,
            "--columns",
            FEATURES,
            "--epochs",
            &epochs,
            "--output",
            &output,
        ])
        .await?;
        timings.push((format!("pretrain {method}"), step.elapsed().as_secs_f64()));
    }

    let step = Instant::now();
    let args_list = FEATURES.split(',').map(ident).collect::<Vec<_>>().join(", ");
    let query = format!(
        "SELECT id, class, embed('demo_vime', {args_list}) AS vime_embedding FROM tabssl_synthetic({}, 2) ORDER BY id LIMIT 3",
        args.test_rows
    );
    run_step(&["sql", "--models", &path(models.clone()), "-c", &query]).await?;
    timings.push(("embed in SQL".to_string(), step.elapsed().as_secs_f64()));

    // Streaming: new rows arrive as NDJSON; the same embedding is added as they come and
    // written to Parquet files of 2,000 rows (the file is read to its end, not followed).
    let step = Instant::now();
    let events = path(dir.join("events.ndjson"));
    let stream_out = path(dir.join("stream"));
    let _ = std::fs::remove_dir_all(&stream_out);
    run_step(&[
        "sql",
        "-c",
        &format!(
            "COPY (SELECT * FROM tabssl_synthetic({}, 3)) TO {} STORED AS JSON",
            args.test_rows,
            string_literal(&events)
        ),
    ])
    .await?;
    let stream_query = format!("SELECT id, embed('demo_vime', {args_list}) AS vime_embedding FROM input");
    run_step(&[
        "stream",
        "--input",
        &events,
        "--no-follow",
        "--models",
        &path(models.clone()),
        "--sql",
        &stream_query,
        "--output",
        &stream_out,
        "--output-format",
        "parquet",
        "--rotate-rows",
        "2000",
    ])
    .await?;
    timings.push(("stream to Parquet".to_string(), step.elapsed().as_secs_f64()));

    let step = Instant::now();
    let report_dir = path(dir.join("report"));
    let seeds = args.seeds.to_string();
    run_step(&[
        "evaluate",
        "--train",
        &train,
        "--test",
        &test,
        "--exclude",
        "id",
        "--models",
        "demo_vime,demo_scarf,demo_dae",
        "--models-dir",
        &path(models.clone()),
        "--budgets",
        "100,500,all",
        "--seeds",
        &seeds,
        "--classifiers",
        "logistic,gbdt,stack",
        "--output",
        &report_dir,
    ])
    .await?;
    timings.push(("evaluate".to_string(), step.elapsed().as_secs_f64()));

    let mut summary = String::new();
    let _ = writeln!(
        summary,
        "\ntabssl demo finished in {:.0} s:",
        started.elapsed().as_secs_f64()
    );
    for line in gains(&dir.join("report").join("evaluation.json"))? {
        let _ = writeln!(summary, "{line}");
    }
    for (name, seconds) in &timings {
        let _ = writeln!(summary, "  {name:<24} {seconds:>6.1} s");
    }
    let _ = writeln!(
        summary,
        "Models: {}/demo_{{vime,scarf,dae}}.onnx (+ .json manifests)",
        models.display()
    );
    let _ = writeln!(summary, "Streamed: {stream_out}/part-*.parquet");
    let _ = write!(summary, "Report: {report_dir}/evaluation.md and evaluation.png");
    Ok(summary)
}

/// One line per label budget: the reference (trees on raw features) against the stack of
/// trees and embedding models, both scored on test, and the verdict; then the summary
/// sentence.
fn gains(results: &std::path::Path) -> tabssl_functions::Result<Vec<String>> {
    let text = std::fs::read(results).map_err(|e| tabssl_functions::Error::io(results, e))?;
    let cells: Vec<Cell> =
        serde_json::from_slice(&text).map_err(|e| tabssl_functions::Error::json(results.display().to_string(), e))?;
    let choices = choices(&cells);
    let mut lines: Vec<String> = choices
        .iter()
        .filter_map(|choice| {
            let picked = choice.with_embeddings.as_ref()?;
            let gain = choice.gain()?;
            Some(format!(
                "  {:>18}: {} AUC {:.3}, with embeddings {} {:.3} ({gain:+.3}, {})",
                budget_text(choice),
                choice.reference.label,
                choice.reference.mean(),
                picked.label,
                picked.mean(),
                verdict(gain)
            ))
        })
        .collect();
    lines.push(format!("  {}", summary(&choices)));
    Ok(lines)
}

/// Runs one tabssl command, echoing it first.
async fn run_step(argv: &[&str]) -> tabssl_functions::Result<()> {
    let shown: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
    console::print(&format!("\n$ tabssl {}", shown.join(" ")))?;
    let cli = Cli::try_parse_from(std::iter::once("tabssl").chain(argv.iter().copied()))
        .map_err(|e| tabssl_functions::Error::Internal(format!("the demo step {argv:?} does not parse: {e}")))?;
    match cli.command {
        Command::Export(args) => export::run(&args).await,
        Command::Pretrain(args) => pretrain::run(&args).await.and_then(|summary| console::print(&summary)),
        Command::Evaluate(args) => evaluate::run(&args).await.and_then(|report| console::print(&report)),
        Command::Stream(args) => stream::run(&args).await,
        Command::Sql(args) => sql::run(&args.common.context(), &args.commands, &args.files, args.common.format).await,
        _ => Err(tabssl_functions::Error::Invalid(format!(
            "the demo cannot run `{}`",
            argv.first().unwrap_or(&"")
        ))),
    }
}
