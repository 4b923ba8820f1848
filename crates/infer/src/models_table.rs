//! `SELECT * FROM tabssl_models()`: the models in the registry, what they take and return,
//! the provider they run on, and their manifest's provenance.
//!
//! A model that cannot be loaded is still listed, with the reason in the `error` column,
//! so one broken file never hides the others. A replacement that did not load while an
//! earlier version still serves shows that version (its `sha256`) and the reason.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::plan_err;
use datafusion::datasource::MemTable;
use datafusion::error::Result;

use super::model::load_model_status;
use super::registry::ModelRegistry;
use super::spec::InputLayout;
use crate::options::InferenceSettings;

/// The `tabssl_models()` table function.
#[derive(Debug, Default)]
pub struct ModelsTableFunction;

fn schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        text("layout"),
        text("inputs"),
        text("output"),
        Field::new("width", DataType::UInt32, true),
        text("sha256"),
        text("provider"),
        text("manifest"),
        text("description"),
        text("training"),
        text("error"),
    ]))
}

/// One row of the listing.
#[derive(Default)]
struct Row {
    name: String,
    path: String,
    layout: Option<String>,
    inputs: Option<String>,
    output: Option<String>,
    width: Option<u32>,
    sha256: Option<String>,
    provider: Option<String>,
    manifest: Option<String>,
    description: Option<String>,
    training: Option<String>,
    error: Option<String>,
}

fn describe(settings: &InferenceSettings, registry: &ModelRegistry, name: &str) -> Row {
    let path = registry.dir().join(format!("{name}.onnx")).display().to_string();
    match load_model_status(settings, name) {
        Err(e) => Row {
            name: name.to_string(),
            path,
            error: Some(e.to_string()),
            ..Row::default()
        },
        Ok((model, refused)) => {
            let spec = &model.spec;
            let layout = match spec.layout {
                InputLayout::Packed { .. } => "packed",
                InputLayout::PerColumn(_) => "per_column",
            };
            let manifest = model.manifest.as_ref();
            Row {
                name: name.to_string(),
                path,
                layout: Some(layout.to_string()),
                inputs: Some(spec.expected_arguments()),
                output: Some(spec.output.clone()),
                width: u32::try_from(spec.width).ok(),
                sha256: Some(model.content_hash.clone()),
                provider: Some(model.active_provider().to_string()),
                manifest: Some(model.manifest_source.as_str().to_string()),
                description: manifest.and_then(|m| m.description.clone()),
                training: manifest.and_then(|m| m.training.as_ref()).map(ToString::to_string),
                error: refused.map(|why| {
                    format!("the files now on disk are refused, the version listed (sha256 above) still serves: {why}")
                }),
            }
        }
    }
}

impl TableFunctionImpl for ModelsTableFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        if !args.exprs().is_empty() {
            return plan_err!("tabssl_models() takes no arguments; the registry is set with SET tabssl.models_dir");
        }
        models_table(&InferenceSettings::from_config(args.session().config_options()))
    }
}

/// The `tabssl_models()` table for `settings`: one row per model in the registry, with its
/// inputs, output width, provider and manifest (a model that cannot be loaded has an error).
///
/// # Errors
/// When the registry directory cannot be listed.
pub fn models_table(settings: &InferenceSettings) -> Result<Arc<dyn TableProvider>> {
    let registry = ModelRegistry::new(&settings.models_dir);
    let rows: Vec<Row> = registry
        .names()?
        .iter()
        .map(|name| describe(settings, &registry, name))
        .collect();
    let strings = |f: fn(&Row) -> Option<&str>| -> ArrayRef { Arc::new(rows.iter().map(f).collect::<StringArray>()) };
    let columns: Vec<ArrayRef> = vec![
        strings(|r| Some(r.name.as_str())),
        strings(|r| Some(r.path.as_str())),
        strings(|r| r.layout.as_deref()),
        strings(|r| r.inputs.as_deref()),
        strings(|r| r.output.as_deref()),
        Arc::new(rows.iter().map(|r| r.width).collect::<UInt32Array>()),
        strings(|r| r.sha256.as_deref()),
        strings(|r| r.provider.as_deref()),
        strings(|r| r.manifest.as_deref()),
        strings(|r| r.description.as_deref()),
        strings(|r| r.training.as_deref()),
        strings(|r| r.error.as_deref()),
    ];
    let batch = RecordBatch::try_new(schema(), columns)?;
    Ok(Arc::new(MemTable::try_new(schema(), vec![vec![batch]])?))
}
