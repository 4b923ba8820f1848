//! One pretraining run from a registered table to an ONNX model and its manifest: what
//! `tabssl pretrain` and the Python package's `tabssl.pretrain` both do.

use std::path::PathBuf;
use std::time::Instant;

use arrow::datatypes::Schema;
use datafusion::prelude::SessionContext;
use serde_json::json;

use super::export::{manifest, manifest_path, write_model};
use super::{EpochStats, FeatureTable, PretrainConfig, pretrain};

/// What to train on and where the model goes. The rows come from table `input` of the
/// session the job runs in.
#[derive(Debug, Clone)]
pub struct PretrainJob {
    /// Where the rows came from, for the manifest and messages (a path, `synthetic:N`, ...).
    pub source: String,
    /// SQL over table `input` selecting the training rows; `None` takes every row (or,
    /// for a `tabssl export` file, the original columns of view 0).
    pub sql: Option<String>,
    /// The ONNX file; the manifest goes beside it as `<name>.json`.
    pub output: PathBuf,
    /// Feature columns; empty = every numeric and string column.
    pub columns: Vec<String>,
    /// Columns never used as features (labels, ids).
    pub exclude: Vec<String>,
    /// One-line description stored in the manifest; `None` writes a generated one.
    pub description: Option<String>,
    /// How the run was started (a command line, a Python call), stored in the manifest.
    pub invocation: String,
    /// The hyper-parameters.
    pub config: PretrainConfig,
}

/// What a finished run wrote.
#[derive(Debug, Clone)]
pub struct PretrainReport {
    /// The ONNX file written.
    pub output: PathBuf,
    /// The manifest written beside it.
    pub manifest: PathBuf,
    /// Rows trained and validated on.
    pub rows: usize,
    /// The feature columns, in input order.
    pub columns: Vec<String>,
    /// The epoch kept (lowest validation loss), counted from 1.
    pub best_epoch: usize,
    /// Training loss of the kept epoch.
    pub train_loss: f64,
    /// Validation loss of the kept epoch (none without a validation split).
    pub validation_loss: Option<f64>,
    /// Wall-clock seconds of the whole run.
    pub seconds: f64,
}

impl PretrainReport {
    /// The one-line summary `tabssl pretrain` prints.
    #[must_use]
    pub fn summary(&self, job: &PretrainJob) -> String {
        let validation = self
            .validation_loss
            .map_or(String::new(), |v| format!(", validation loss {v:.4}"));
        format!(
            "wrote {} ({}, {} inputs -> {}-d embedding; best epoch {}/{}, train loss {:.4}{validation}; {:.1} s)",
            self.output.display(),
            job.config.method.as_str(),
            self.columns.len(),
            job.config.embedding_width(),
            self.best_epoch,
            job.config.epochs,
            self.train_loss,
            self.seconds
        )
    }
}

/// Trains an encoder on table `input` of `ctx` and writes the model and its manifest
/// (each atomically). `progress` sees every epoch.
///
/// # Errors
/// When the output path is unusable (checked before training), the query selects no rows,
/// the columns cannot be trained on, training diverges, or writing fails.
pub async fn run_pretrain(
    ctx: &SessionContext,
    job: &PretrainJob,
    progress: &mut dyn FnMut(&EpochStats),
) -> crate::Result<PretrainReport> {
    let started = Instant::now();
    // Where the model goes is checked before hours of training, not after.
    let manifest_file = manifest_path(&job.output)?;
    let input_schema = ctx.table_provider("input").await?.schema();
    let (sql, export_columns) = match (&job.sql, export_originals(&input_schema)) {
        (Some(sql), _) => (sql.clone(), None),
        (None, Some((columns, has_views))) => {
            let filter = if has_views { " WHERE view_id = 0" } else { "" };
            (format!("SELECT * FROM input{filter}"), Some(columns))
        }
        (None, None) => ("SELECT * FROM input".to_string(), None),
    };
    let df = ctx.sql(&sql).await?;
    let schema = df.schema().as_arrow().clone();
    let batches = df.collect().await?;
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Err(crate::Error::Invalid(format!(
            "{} selects no rows from {}: there is nothing to train on",
            sql, job.source
        )));
    }
    let columns = if job.columns.is_empty() {
        export_columns
    } else {
        Some(job.columns.clone())
    };
    let table = FeatureTable::from_batches(&schema, &batches, columns.as_deref(), &job.exclude)?;

    let config = &job.config;
    let model = pretrain(&table, config, progress)?;
    let best = &model.history[model.best_epoch - 1];
    let training = json!({
        "method": config.method.as_str(),
        "hyperparameters": config,
        "corruption_rate": config.corruption_rate(),
        "seed": config.seed,
        "data": {
            "source": job.source,
            "sql": sql,
            "rows": table.rows,
            "train_rows": model.train_rows,
            "validation_rows": model.validation_rows,
            "columns": table.names,
        },
        "best_epoch": model.best_epoch,
        "final_losses": {"train": best.train_loss, "validation": best.validation_loss},
        "history": model.history,
        "seconds": started.elapsed().as_secs_f64(),
        "command": job.invocation,
        "tabssl_version": env!("CARGO_PKG_VERSION"),
    });
    let description = job.description.clone().unwrap_or_else(|| {
        format!(
            "{} encoder ({}-d) pretrained by tabssl on {} rows of {}",
            config.method.as_str().to_uppercase(),
            config.dim,
            table.rows,
            job.source
        )
    });
    let manifest = manifest(&model, description, training)?;
    write_model(&model, &manifest, &job.output)?;
    Ok(PretrainReport {
        output: job.output.clone(),
        manifest: manifest_file,
        rows: table.rows,
        columns: table.names.clone(),
        best_epoch: model.best_epoch,
        train_loss: best.train_loss,
        validation_loss: best.validation_loss,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// When `schema` is a `tabssl export` file (`c` next to any of `c_tilde`, `c_mask`,
/// `c_changed`, whichever `--outputs` wrote): its original feature columns, and whether it
/// has a `view_id` column.
fn export_originals(schema: &Schema) -> Option<(Vec<String>, bool)> {
    let has = |name: &str| schema.field_with_name(name).is_ok();
    let originals: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.name())
        .filter(|name| {
            ["tilde", "mask", "changed"]
                .iter()
                .any(|kind| has(&format!("{name}_{kind}")))
        })
        .cloned()
        .collect();
    (!originals.is_empty()).then(|| (originals, has("view_id")))
}
