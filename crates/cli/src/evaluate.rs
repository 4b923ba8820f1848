//! `tabssl evaluate`: the few-label downstream evaluation of registry encoders, written as
//! a markdown report, a PNG plot and JSON results.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::choices::ClassifierChoice;
use super::command_line;
use tabssl_eval::{Budget, Classifier, EvaluateJob, ProtocolConfig, run_evaluation};

/// Arguments of `tabssl evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Training split (labelled pool): a file, directory or `synthetic:ROWS[:SEED]`.
    #[arg(long, value_name = "SOURCE")]
    pub train: String,
    /// Test split, only ever scored.
    #[arg(long, value_name = "SOURCE")]
    pub test: String,
    /// Label column.
    #[arg(long, default_value = "class")]
    pub label: String,
    /// Label value of the positive class (spaces and a trailing '.' ignored).
    #[arg(long, default_value = ">50K")]
    pub positive: String,
    /// Registry models whose embeddings are evaluated, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub models: Vec<String>,
    /// Model registry directory [default: $TABSSL_MODELS, else ./models].
    #[arg(long, value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
    /// Raw feature columns, comma-separated [default: every numeric and string column but the label].
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub columns: Vec<String>,
    /// Columns left out of the raw features (ids), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub exclude: Vec<String>,
    /// Label budgets: numbers of labelled rows, or `all`.
    #[arg(long, value_delimiter = ',', default_value = "100,500,1000,all", value_parser = Budget::parse)]
    pub budgets: Vec<Budget>,
    /// Seeds per budget (labelled sample and initialisation).
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    /// Downstream models: logistic regression, a one-hidden-layer MLP, gradient-boosted trees,
    /// and the stack (gbdt on raw blended with logistic and MLP on the embeddings).
    #[arg(long, value_parser = ClassifierChoice::parser(), value_delimiter = ',', default_value = "logistic,mlp,gbdt,stack")]
    pub classifiers: Vec<Classifier>,
    /// CSV input: regular expression of cells read as NULL (e.g. '\?' for UCI Adult).
    #[arg(long, value_name = "REGEX")]
    pub null_regex: Option<String>,
    /// Directory for evaluation.md, evaluation.png and evaluation.json.
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    /// Add the AUC summary to each evaluated model's manifest (`training.downstream`).
    #[arg(long)]
    pub update_manifests: bool,
    /// Downstream fits run side by side [default: one per core].
    #[arg(long, default_value_t = 0, hide_default_value = true)]
    pub threads: usize,
    /// Also write the labelled rows of every (budget, seed) to `splits.json` in the output
    /// directory (row numbers of the training split), to rerun the protocol elsewhere.
    #[arg(long)]
    pub save_splits: bool,
}

/// Runs `tabssl evaluate` with a progress bar on a terminal; returns the markdown report.
///
/// # Errors
/// When a split cannot be loaded, a model is missing, or writing fails.
pub async fn run(args: &EvaluateArgs) -> tabssl_functions::Result<String> {
    let job = EvaluateJob {
        train: args.train.clone(),
        test: args.test.clone(),
        label: args.label.clone(),
        positive: args.positive.clone(),
        models: args.models.clone(),
        models_dir: args.models_dir.clone(),
        columns: args.columns.clone(),
        exclude: args.exclude.clone(),
        config: ProtocolConfig {
            budgets: args.budgets.clone(),
            seeds: args.seeds,
            classifiers: args.classifiers.clone(),
            threads: args.threads,
        },
        null_regex: args.null_regex.clone(),
        output: args.output.clone(),
        update_manifests: args.update_manifests,
        save_splits: args.save_splits,
        invocation: command_line(),
    };
    let terminal = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut progress = |done: usize, total: usize| {
        if terminal {
            super::console::note_raw(&progress_line(done, total, started.elapsed().as_secs_f64()));
        }
    };
    let report = run_evaluation(&job, &mut progress).await;
    if terminal {
        super::console::note_raw("\r\x1b[2K");
    }
    report
}

/// `evaluate: [#########...........] 120/420 fits, 35 s, about 1 min left` after a carriage return.
fn progress_line(done: usize, total: usize, seconds: f64) -> String {
    const WIDTH: usize = 24;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    #[allow(clippy::cast_precision_loss)]
    let left = if done == 0 {
        String::new()
    } else {
        let rest = seconds * (total - done) as f64 / done as f64;
        if rest >= 90.0 {
            format!(", about {:.0} min left", rest / 60.0)
        } else {
            format!(", about {rest:.0} s left")
        }
    };
    format!(
        "\r\x1b[2Kevaluate: [{}{}] {done}/{total} fits, {seconds:.0} s{left}",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled)
    )
}
