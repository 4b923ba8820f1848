//! The few-label evaluation as one job: load the splits through SQL, run the protocol,
//! write the markdown report, the PNG plot and the JSON results. `tabssl evaluate` is this
//! job with its settings taken from the command line.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use datafusion::prelude::SessionConfig;

use super::choice::choices;
use super::dataset::{load_split, model_inputs, representations};
use super::plot::render_panels_png;
use super::protocol::{charts, labelled_sample, markdown};
use super::{Budget, Cell, Classifier, ProtocolConfig, run_protocol};
use tabssl_functions::input::register_input;
use tabssl_functions::options::TabsslOptions;
use tabssl_functions::setting::Setting;
use tabssl_train::table::is_feature_type;

/// An evaluation to run with [`run_evaluation`].
#[derive(Debug, Clone)]
pub struct EvaluateJob {
    /// Training split (labelled pool): a file, directory or `synthetic:ROWS[:SEED]`.
    pub train: String,
    /// Test split, only ever scored.
    pub test: String,
    /// Label column.
    pub label: String,
    /// Label value of the positive class (spaces and a trailing '.' ignored).
    pub positive: String,
    /// Registry models whose embeddings are evaluated.
    pub models: Vec<String>,
    /// Model registry directory (`None`: the `tabssl.models_dir` default).
    pub models_dir: Option<PathBuf>,
    /// Raw feature columns (empty: every numeric and string column but the label).
    pub columns: Vec<String>,
    /// Columns left out of the raw features (ids).
    pub exclude: Vec<String>,
    /// The protocol: label budgets, seeds, classifiers, threads.
    pub config: ProtocolConfig,
    /// CSV input: regular expression of cells read as NULL.
    pub null_regex: Option<String>,
    /// Directory for evaluation.md, evaluation.png and evaluation.json.
    pub output: PathBuf,
    /// Add the AUC summary to each evaluated model's manifest (`training.downstream`).
    pub update_manifests: bool,
    /// Also write the labelled rows of every (budget, seed) to `splits.json`.
    pub save_splits: bool,
    /// How the run was asked for, recorded in the report and the manifests.
    pub invocation: String,
}

/// Runs the evaluation, calling `progress(done, total)` as fits finish; writes the files
/// and returns the markdown report.
///
/// # Errors
/// When a split cannot be loaded, a model is missing, or writing fails.
pub async fn run_evaluation(
    job: &EvaluateJob,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> tabssl_functions::Result<String> {
    let started = Instant::now();
    let mut options = TabsslOptions::default();
    if let Some(dir) = &job.models_dir {
        options.models_dir = dir.display().to_string();
    }
    let models_dir = PathBuf::from(&options.models_dir);
    // One partition: rows arrive in file order, so each seed's labelled sample is the same
    // rows on every run.
    let ctx = tabssl_infer::new_context_with_config(SessionConfig::new().with_target_partitions(1), options);
    let schema = register_input(&ctx, "train_split", &job.train, job.null_regex.as_deref()).await?;
    register_input(&ctx, "test_split", &job.test, job.null_regex.as_deref()).await?;
    if schema.field_with_name(&job.label).is_err() {
        return Err(tabssl_functions::Error::Invalid(format!(
            "the training split has no label column '{}'",
            job.label
        )));
    }
    let columns: Vec<String> = if job.columns.is_empty() {
        let candidates = schema
            .fields()
            .iter()
            .filter(|f| f.name() != &job.label && !job.exclude.contains(f.name()));
        let mut columns = Vec::new();
        for field in candidates {
            // A column that cannot be a raw feature is refused, never dropped in silence.
            if !is_feature_type(field.data_type()) {
                return Err(tabssl_functions::Error::Invalid(format!(
                    "column '{}' has type {}; raw features must be numeric or strings: leave it out ({} {}) \
                     or list the features ({})",
                    field.name(),
                    field.data_type(),
                    Setting::Exclude,
                    field.name(),
                    Setting::Columns
                )));
            }
            columns.push(field.name().clone());
        }
        columns
    } else {
        job.columns.clone()
    };
    let models = job
        .models
        .iter()
        .map(|m| model_inputs(&models_dir, m).map(|inputs| (m.clone(), inputs)))
        .collect::<Result<Vec<_>, _>>()?;
    let train = load_split(&ctx, "train_split", &job.label, &job.positive, &columns, &models).await?;
    let test = load_split(&ctx, "test_split", &job.label, &job.positive, &columns, &models).await?;
    let reps = representations(&train, &test)?;
    let config = &job.config;
    let cells = run_protocol(&reps, &train.labels, &test.labels, config, progress)?;

    let positives = |labels: &[bool]| labels.iter().filter(|&&l| l).count();
    let mut report = String::new();
    let _ = writeln!(report, "## Downstream evaluation\n");
    let _ = writeln!(
        report,
        "Train: `{}` ({} rows, {} positive). Test: `{}` ({} rows, {} positive). Label `{}` = `{}`.",
        job.train,
        train.labels.len(),
        positives(&train.labels),
        job.test,
        test.labels.len(),
        positives(&test.labels),
        job.label,
        job.positive
    );
    let _ = writeln!(
        report,
        "Raw features: {}. Models: {}. Each budget's labelled rows are split 80/20 into fit and \
         validation (penalty and stopping step chosen on validation log-loss), then every model is trained again \
         on all the labelled rows with what was chosen; the test split is only scored.\n\n\
         Reference: `raw · gbdt`, gradient-boosted trees on the raw columns (hessboost, native categorical \
         splits; depth, least leaf weight and rounds chosen by stratified {}-fold cross-validation over every \
         labelled row up to {} rows, else on the validation rows; then boosted again on every labelled row). \
         Against scikit-learn's HistGradientBoostingClassifier on the same rows, at its defaults and under this \
         protocol, with and without native categoricals: `python3 benches/gbdt_reference.py` (BENCHMARKS.md).\n",
        columns.join(", "),
        if job.models.is_empty() {
            "none".to_string()
        } else {
            job.models.join(", ")
        },
        super::gbdt::CV_FOLDS,
        super::gbdt::CV_MAX_ROWS
    );
    report.push_str(&super::choice::markdown(&choices(&cells), config.seeds));
    report.push_str(&markdown(&cells, config.seeds));
    let _ = writeln!(
        report,
        "Command: `{}` ({:.0} s).",
        job.invocation,
        started.elapsed().as_secs_f64()
    );

    std::fs::create_dir_all(&job.output).map_err(|e| tabssl_functions::Error::io(&job.output, e))?;
    write(&job.output.join("evaluation.md"), report.as_bytes())?;
    let png = render_panels_png(&charts(&cells, train.labels.len()), 900, 560);
    write(&job.output.join("evaluation.png"), &png)?;
    let json = serde_json::to_vec_pretty(&cells).map_err(|e| tabssl_functions::Error::json("writing the report", e))?;
    write(&job.output.join("evaluation.json"), &json)?;
    if job.save_splits {
        let splits = splits_json(config, train.labels.len());
        let json = serde_json::to_vec(&splits).map_err(|e| tabssl_functions::Error::json("writing the splits", e))?;
        write(&job.output.join("splits.json"), &json)?;
    }
    if job.update_manifests {
        for model in &job.models {
            update_manifest(&models_dir, model, &cells, job)?;
        }
    }
    Ok(report)
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

fn write(path: &Path, bytes: &[u8]) -> tabssl_functions::Result<()> {
    tabssl_functions::atomic::write_atomically(path, bytes)
}

/// Stores, under `training.downstream` of the model's manifest, the mean test AUC per
/// budget and classifier of the model's embedding, of raw ⊕ embedding, of raw and of the
/// stack.
fn update_manifest(models_dir: &Path, model: &str, cells: &[Cell], job: &EvaluateJob) -> tabssl_functions::Result<()> {
    let path = models_dir.join(format!("{model}.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| tabssl_functions::Error::io(&path, e))?;
    let mut manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| tabssl_functions::Error::json(path.display().to_string(), e))?;
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
        let (auc, sd) = super::metrics::mean_std(&cell.auc);
        let (acc, _) = super::metrics::mean_std(&cell.accuracy);
        let key = format!("{} / {} / {budget}", cell.representation, cell.classifier.as_str());
        summary.insert(key, serde_json::json!({"auc": auc, "auc_std": sd, "accuracy": acc}));
    }
    manifest["training"]["downstream"] = serde_json::json!({
        "test": job.test,
        "seeds": job.config.seeds,
        "metrics": summary,
        "command": job.invocation,
    });
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| tabssl_functions::Error::json("writing the manifest", e))?
        + "\n";
    write(&path, text.as_bytes())
}
