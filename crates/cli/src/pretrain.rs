//! `tabssl pretrain`: trains a VIME, SCARF or denoising-autoencoder encoder on a table and
//! writes it as an ONNX model (preprocessing inside) with its manifest, ready for `embed`.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use datafusion::prelude::SessionConfig;

use super::choices::{FeatureLayerChoice, MethodChoice};
use super::command_line;
use tabssl_functions::input::register_input;
use tabssl_functions::options::TabsslOptions;
use tabssl_train::manifest_path;
use tabssl_train::{EpochStats, FeatureLayer, Method, PretrainConfig, VocabularyLimits};
use tabssl_train::{PretrainJob, run_pretrain};

/// Arguments of `tabssl pretrain`.
#[derive(Debug, Args)]
pub struct PretrainArgs {
    /// Input: a .csv, .parquet or .json/.ndjson file or directory (a `tabssl export` file
    /// works too: its original columns are used), or `synthetic:ROWS[:SEED]`.
    #[arg(long, value_name = "SOURCE")]
    pub input: String,
    /// SQL over table `input` selecting the training rows [default: SELECT * FROM input].
    #[arg(long, value_name = "SQL")]
    pub sql: Option<String>,
    /// Output ONNX file; the manifest goes beside it as `<name>.json`.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Pretext task.
    #[arg(long, value_parser = MethodChoice::parser(), default_value = "vime")]
    pub method: Method,
    /// Feature columns, comma-separated [default: every numeric and string column].
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub columns: Vec<String>,
    /// Columns never used as features (labels, ids), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub exclude: Vec<String>,
    /// Corruption rate [default: VIME 0.3, SCARF 0.6, DAE 0.15].
    #[arg(long)]
    pub p: Option<f64>,
    /// VIME: weight of the feature-reconstruction loss.
    #[arg(long, default_value_t = 2.0)]
    pub alpha: f64,
    /// SCARF: InfoNCE temperature.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Hidden layer width of the encoder.
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// Embedding width.
    #[arg(long, default_value_t = 16)]
    pub dim: usize,
    /// Encoder layers whose outputs make the exported embedding, side by side:
    /// `embedding` (the `--dim` output), `hidden` (the `--hidden` layer after its ReLU), or
    /// both (`hidden,embedding`: `--hidden` + `--dim` columns).
    #[arg(
        long,
        value_parser = FeatureLayerChoice::parser(),
        value_delimiter = ',',
        value_name = "LAYERS",
        default_value = "embedding"
    )]
    pub feature_layers: Vec<FeatureLayer>,
    /// Training epochs (the epoch with the lowest validation loss is kept).
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Rows per optimiser step.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Seed of the split, initialisation, shuffling and corruption.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Share of rows held out to choose the best epoch.
    #[arg(long, default_value_t = 0.1)]
    pub validation: f64,
    /// Categorical columns: at most this many one-hot values.
    #[arg(long, default_value_t = 64)]
    pub max_vocab: usize,
    /// Categorical columns: a value needs this many rows for its own slot.
    #[arg(long, default_value_t = 5)]
    pub min_count: usize,
    /// CSV input: regular expression of cells read as NULL (e.g. '\?' for UCI Adult).
    #[arg(long, value_name = "REGEX")]
    pub null_regex: Option<String>,
    /// One-line description stored in the manifest.
    #[arg(long)]
    pub description: Option<String>,
    /// Most values one tensor may hold (a layer's weights, a batch's activations, the
    /// encoded training rows): larger runs are refused before they start.
    #[arg(long, value_name = "N", default_value_t = tabssl_functions::options::DEFAULT_MAX_TENSOR_ELEMENTS)]
    pub max_tensor_elements: usize,
}

impl PretrainArgs {
    fn config(&self) -> PretrainConfig {
        PretrainConfig {
            p: self.p,
            alpha: self.alpha,
            temperature: self.temperature,
            hidden: self.hidden,
            dim: self.dim,
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.lr,
            seed: self.seed,
            validation_fraction: self.validation,
            vocabulary: VocabularyLimits {
                max_vocab: self.max_vocab,
                min_count: self.min_count,
            },
            feature_layers: self.feature_layers.clone(),
            max_tensor_elements: self.max_tensor_elements,
            ..PretrainConfig::new(self.method)
        }
    }
}

/// Runs `tabssl pretrain`; returns the summary line.
///
/// # Errors
/// When the input cannot be read or trained on, or the model cannot be written.
pub async fn run(args: &PretrainArgs) -> tabssl_functions::Result<String> {
    let job = PretrainJob {
        source: args.input.clone(),
        sql: args.sql.clone(),
        output: args.output.clone(),
        columns: args.columns.clone(),
        exclude: args.exclude.clone(),
        description: args.description.clone(),
        invocation: command_line(),
        config: args.config(),
    };
    // Where the model goes is checked before the input is read.
    manifest_path(&job.output)?;
    // One partition: rows arrive in file order, so the seeded split and shuffles pick the
    // same rows on every run.
    let session = SessionConfig::new().with_target_partitions(1);
    let ctx = tabssl_infer::new_context_with_config(session, TabsslOptions::default());
    register_input(&ctx, "input", &args.input, args.null_regex.as_deref()).await?;
    let terminal = std::io::stderr().is_terminal();
    let epochs = job.config.epochs;
    let mut progress = |stats: &EpochStats| {
        if terminal {
            let validation = stats
                .validation_loss
                .map_or(String::new(), |v| format!("  validation {v:.4}"));
            super::console::note(&format!(
                "epoch {:>3}/{epochs}  loss {:.4}{validation}  ({:.1} s)",
                stats.epoch, stats.train_loss, stats.seconds
            ));
        }
    };
    let report = run_pretrain(&ctx, &job, &mut progress).await?;
    Ok(report.summary(&job))
}
