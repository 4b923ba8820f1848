//! `tabssl evaluate`: the few-label downstream evaluation of registry encoders, written as
//! a markdown report, a PNG plot and JSON results.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use datafusion::prelude::SessionConfig;

use super::choices::ClassifierChoice;
use super::command_line;
use crate::eval::choice::choices;
use crate::eval::dataset::{load_split, model_inputs, representations};
use crate::eval::plot::render_panels_png;
use crate::eval::protocol::{charts, labelled_sample, markdown};
use crate::eval::{Budget, Cell, Classifier, ProtocolConfig, run_protocol};
use crate::io::register_input;
use crate::options::TabsslOptions;
use crate::train::table::is_feature_type;

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

/// Runs `tabssl evaluate`; returns the markdown report.
///
/// # Errors
/// When a split cannot be loaded, a model is missing, or writing fails.
pub async fn run(args: &EvaluateArgs) -> crate::Result<String> {
    let started = Instant::now();
    let mut options = TabsslOptions::default();
    if let Some(dir) = &args.models_dir {
        options.models_dir = dir.display().to_string();
    }
    let models_dir = PathBuf::from(&options.models_dir);
    // One partition: rows arrive in file order, so each seed's labelled sample is the same
    // rows on every run.
    let ctx = crate::new_context_with_config(SessionConfig::new().with_target_partitions(1), options);
    let schema = register_input(&ctx, "train_split", &args.train, args.null_regex.as_deref()).await?;
    register_input(&ctx, "test_split", &args.test, args.null_regex.as_deref()).await?;
    if schema.field_with_name(&args.label).is_err() {
        return Err(crate::Error::Invalid(format!(
            "the training split has no label column '{}'",
            args.label
        )));
    }
    let columns: Vec<String> = if args.columns.is_empty() {
        let candidates = schema
            .fields()
            .iter()
            .filter(|f| f.name() != &args.label && !args.exclude.contains(f.name()));
        let mut columns = Vec::new();
        for field in candidates {
            // A column that cannot be a raw feature is refused, never dropped in silence.
            if !is_feature_type(field.data_type()) {
                return Err(crate::Error::Invalid(format!(
                    "column '{}' has type {}; raw features must be numeric or strings: leave it out with \
                     --exclude {} or list the features with --columns",
                    field.name(),
                    field.data_type(),
                    field.name()
                )));
            }
            columns.push(field.name().clone());
        }
        columns
    } else {
        args.columns.clone()
    };
    let models = args
        .models
        .iter()
        .map(|m| model_inputs(&models_dir, m).map(|inputs| (m.clone(), inputs)))
        .collect::<Result<Vec<_>, _>>()?;
    let train = load_split(&ctx, "train_split", &args.label, &args.positive, &columns, &models).await?;
    let test = load_split(&ctx, "test_split", &args.label, &args.positive, &columns, &models).await?;
    let reps = representations(&train, &test)?;
    let config = ProtocolConfig {
        budgets: args.budgets.clone(),
        seeds: args.seeds,
        classifiers: args.classifiers.clone(),
        threads: args.threads,
    };
    let terminal = std::io::stderr().is_terminal();
    let fitting = Instant::now();
    let mut progress = |done: usize, total: usize| {
        if terminal {
            super::console::note_raw(&progress_line(done, total, fitting.elapsed().as_secs_f64()));
        }
    };
    let cells = run_protocol(&reps, &train.labels, &test.labels, &config, &mut progress);
    if terminal {
        super::console::note_raw("\r\x1b[2K");
    }
    let cells = cells?;

    let positives = |labels: &[bool]| labels.iter().filter(|&&l| l).count();
    let mut report = String::new();
    let _ = writeln!(report, "## Downstream evaluation\n");
    let _ = writeln!(
        report,
        "Train: `{}` ({} rows, {} positive). Test: `{}` ({} rows, {} positive). Label `{}` = `{}`.",
        args.train,
        train.labels.len(),
        positives(&train.labels),
        args.test,
        test.labels.len(),
        positives(&test.labels),
        args.label,
        args.positive
    );
    let _ = writeln!(
        report,
        "Raw features: {}. Models: {}. Each budget's labelled rows are split 80/20 into fit and \
         validation (penalty or tree depth, and stopping step, chosen on validation log-loss); the test split \
         is only scored.\n",
        columns.join(", "),
        if args.models.is_empty() {
            "none".to_string()
        } else {
            args.models.join(", ")
        }
    );
    report.push_str(&crate::eval::choice::markdown(&choices(&cells), args.seeds));
    report.push_str(&markdown(&cells, args.seeds));
    let _ = writeln!(
        report,
        "Command: `{}` ({:.0} s).",
        command_line(),
        started.elapsed().as_secs_f64()
    );

    std::fs::create_dir_all(&args.output).map_err(|e| crate::Error::io(&args.output, e))?;
    write(&args.output.join("evaluation.md"), report.as_bytes())?;
    let png = render_panels_png(&charts(&cells, train.labels.len()), 900, 560);
    write(&args.output.join("evaluation.png"), &png)?;
    let json = serde_json::to_vec_pretty(&cells).map_err(|e| crate::Error::json("writing the report", e))?;
    write(&args.output.join("evaluation.json"), &json)?;
    if args.save_splits {
        let splits = splits_json(&config, train.labels.len());
        let json = serde_json::to_vec(&splits).map_err(|e| crate::Error::json("writing the splits", e))?;
        write(&args.output.join("splits.json"), &json)?;
    }
    if args.update_manifests {
        for model in &args.models {
            update_manifest(&models_dir, model, &cells, args)?;
        }
    }
    Ok(report)
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

/// `{"train_rows": N, "samples": [{"budget": "100", "seed": 0, "fit": [...], "validation": [...]}, ...]}`.
fn splits_json(config: &ProtocolConfig, train_rows: usize) -> serde_json::Value {
    let mut samples = Vec::new();
    for &budget in &config.budgets {
        for seed in 0..config.seeds {
            let sample = labelled_sample(budget, seed, train_rows);
            samples.push(serde_json::json!({
                "budget": budget.label(),
                "seed": seed,
                "fit": sample.fit,
                "validation": sample.validation,
            }));
        }
    }
    serde_json::json!({"train_rows": train_rows, "samples": samples})
}

fn write(path: &Path, bytes: &[u8]) -> crate::Result<()> {
    crate::io::write_atomically(path, bytes)
}

/// Stores, under `training.downstream` of the model's manifest, the mean test AUC per
/// budget and classifier of the model's embedding, of raw ⊕ embedding, of raw and of the
/// stack.
fn update_manifest(models_dir: &Path, model: &str, cells: &[Cell], args: &EvaluateArgs) -> crate::Result<()> {
    let path = models_dir.join(format!("{model}.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| crate::Error::io(&path, e))?;
    let mut manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| crate::Error::json(path.display().to_string(), e))?;
    let combined = format!("raw + {model}");
    let mut summary = serde_json::Map::new();
    for cell in cells.iter().filter(|c| {
        c.representation == model
            || c.representation == combined
            || c.representation == "raw"
            || c.classifier == Classifier::Stack
    }) {
        let budget = match cell.budget {
            Budget::Rows(n) => n.to_string(),
            Budget::All => "all".into(),
        };
        let (auc, sd) = crate::eval::metrics::mean_std(&cell.auc);
        let (acc, _) = crate::eval::metrics::mean_std(&cell.accuracy);
        let key = format!("{} / {} / {budget}", cell.representation, cell.classifier.as_str());
        summary.insert(key, serde_json::json!({"auc": auc, "auc_std": sd, "accuracy": acc}));
    }
    manifest["training"]["downstream"] = serde_json::json!({
        "test": args.test,
        "seeds": args.seeds,
        "metrics": summary,
        "command": command_line(),
    });
    let text =
        serde_json::to_string_pretty(&manifest).map_err(|e| crate::Error::json("writing the manifest", e))? + "\n";
    write(&path, text.as_bytes())
}
