//! `embed(model, col, ...)` and `predict(model, col, ...)`: ONNX models as DataFusion
//! scalar functions.
//!
//! The model name must be a string literal so the output type is known at plan time:
//! `embed` returns `FixedSizeList<Float32, D>` with D the model's output width, `predict`
//! returns `Float32` for models whose output width is 1. The model is resolved and its
//! arguments checked while planning, so a wrong name, arity or type fails before any data
//! is read.
//!
//! NULLs: a row with a NULL in any argument (or in any element of a list argument) gets a
//! NULL result and is not sent to the model. NaN and ±Inf are passed to the model as they
//! are and come back as ONNX Runtime computes them.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};

use super::model::{LoadedModel, load_model, replaced_version};
use super::spec::Arguments;
use super::tensors::{embedding_array, prediction_array};
use crate::Error;
use crate::literal::literal_value;
use crate::options::InferenceSettings;

/// Which result an inference function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InferenceKind {
    /// `embed`: the whole output row as `FixedSizeList<Float32, D>`.
    Embed,
    /// `predict`: the single output value as `Float32`.
    Predict,
}

impl InferenceKind {
    fn name(self) -> &'static str {
        match self {
            Self::Embed => "embed",
            Self::Predict => "predict",
        }
    }
}

/// The scalar UDF behind `embed` and `predict`.
#[derive(Debug)]
pub struct InferenceUdf {
    kind: InferenceKind,
    settings: InferenceSettings,
    signature: Signature,
    /// Models resolved while planning, reused by every batch so execution does not touch
    /// the file system; planning resolves an unpinned name afresh and replaces the entry.
    /// One entry per model (keyed by its name without a pin: the name as written, and the
    /// model), so a long-lived function never holds more than one version of a model.
    planned: Mutex<HashMap<String, (String, Arc<LoadedModel>)>>,
    /// On a distributed worker, its name (for errors).
    worker: Option<String>,
}

/// Field metadata key of an `embed`/`predict` output: the name of the model that made it.
pub const MODEL_NAME_KEY: &str = "tabssl.model";
/// Field metadata key of an `embed`/`predict` output: the content hash (SHA-256 of the
/// `.onnx` and manifest bytes, as `tabssl_models()` lists it) of the version that made it.
pub const MODEL_SHA256_KEY: &str = "tabssl.model.sha256";

/// What separates a model name from the content hash it is pinned to:
/// `'adult_vime@sha256:<64 hex digits>'`.
pub const PIN: &str = "@sha256:";

/// A model name and the content hash it is pinned to, if any.
pub fn split_pin(name: &str) -> (&str, Option<&str>) {
    match name.split_once(PIN) {
        Some((model, hash)) => (model, Some(hash)),
        None => (name, None),
    }
}

impl PartialEq for InferenceUdf {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.settings == other.settings && self.worker == other.worker
    }
}

impl Eq for InferenceUdf {}

impl Hash for InferenceUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.settings.hash(state);
        self.worker.hash(state);
    }
}

impl InferenceUdf {
    /// A UDF running models with `settings`.
    pub fn new(kind: InferenceKind, settings: InferenceSettings) -> Self {
        Self {
            kind,
            settings,
            signature: Signature::variadic_any(Volatility::Immutable),
            planned: Mutex::default(),
            worker: None,
        }
    }

    /// The same UDF on distributed worker `worker`: errors name it.
    #[must_use]
    pub fn on_worker(self, worker: impl Into<String>) -> Self {
        Self {
            worker: Some(worker.into()),
            ..self
        }
    }

    /// A fresh copy (nothing planned yet).
    fn copy(&self) -> Self {
        Self {
            worker: self.worker.clone(),
            ..Self::new(self.kind, self.settings.clone())
        }
    }

    /// Where this UDF runs, for errors.
    fn location(&self) -> String {
        self.worker
            .as_ref()
            .map_or_else(|| "in this process".to_string(), |worker| format!("on worker {worker}"))
    }

    /// Loads `model` from the registry; a pinned model must have the pinned content hash
    /// (the version on disk, or the one it replaced while that is still in memory).
    fn load(&self, model: &str, pin: Option<&str>) -> Result<Arc<LoadedModel>> {
        let loaded = load_model(&self.settings, model).map_err(|error| match &self.worker {
            Some(worker) => Error::invalid(format!("on worker {worker}: {error}")),
            None => error,
        })?;
        match pin {
            Some(planned) if planned != loaded.content_hash => replaced_version(&self.settings, &loaded, planned)
                .ok_or_else(|| {
                    Error::ModelMismatch {
                        model: model.to_string(),
                        location: self.location(),
                        planned: planned.to_string(),
                        local: loaded.content_hash.clone(),
                        path: loaded.files.onnx.display().to_string(),
                    }
                    .into()
                }),
            _ => Ok(loaded),
        }
    }

    /// The loaded model named by the first argument, and how the others bind to it.
    /// `planning` resolves the name in the registry afresh; execution reuses what planning
    /// resolved.
    fn model_for(
        &self,
        name: Option<&ScalarValue>,
        arg_types: &[DataType],
        planning: bool,
    ) -> Result<(Arc<LoadedModel>, Arguments)> {
        let function = self.kind.name();
        let name = match name {
            Some(ScalarValue::Utf8(Some(n)) | ScalarValue::LargeUtf8(Some(n)) | ScalarValue::Utf8View(Some(n))) => n,
            _ => {
                return plan_err!(
                    "{function}(model, col, ...): the first argument must be the model name as a string literal, \
                     e.g. {function}('my_encoder', age, workclass)"
                );
            }
        };
        let mut planned = self.planned.lock().unwrap_or_else(PoisonError::into_inner);
        let (base, pin) = split_pin(name);
        // A pinned name keeps the version planning pinned, also when it is planned again.
        let model = match planned.get(base) {
            Some((written, model)) if written == name && (!planning || pin.is_some()) => Arc::clone(model),
            _ => {
                let model = self.load(base, pin)?;
                planned.insert(base.to_string(), (name.clone(), Arc::clone(&model)));
                model
            }
        };
        drop(planned);
        let name = &base.to_string();
        let arguments = model.spec.bind(arg_types).map_err(|message| Error::Binding {
            function,
            model: name.clone(),
            message: message.to_string(),
        })?;
        if self.kind == InferenceKind::Predict && model.spec.width != 1 {
            return Err(Error::Binding {
                function,
                model: name.clone(),
                message: format!(
                    "predict needs a model with one output value per row, but output '{}' has width {}; use embed",
                    model.spec.output, model.spec.width
                ),
            }
            .into());
        }
        Ok((model, arguments))
    }

    fn output_type(&self, width: usize) -> Result<DataType> {
        Ok(match self.kind {
            InferenceKind::Predict => DataType::Float32,
            InferenceKind::Embed => {
                let Ok(width) = i32::try_from(width) else {
                    return plan_err!("output width {width} does not fit a FixedSizeList");
                };
                DataType::new_fixed_size_list(DataType::Float32, width, true)
            }
        })
    }
}

impl ScalarUDFImpl for InferenceUdf {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!(
            "{}: the return type depends on the model; use return_field_from_args",
            self.name()
        )
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let Some((_, features)) = args.arg_fields.split_first() else {
            return plan_err!(
                "{}(model, col, ...) needs a model name and at least one column",
                self.name()
            );
        };
        let arg_types: Vec<DataType> = features.iter().map(|f| f.data_type().clone()).collect();
        let name = args.scalar_arguments.first().copied().flatten();
        let (model, _) = self.model_for(name, &arg_types, true)?;
        let lineage = HashMap::from([
            (MODEL_NAME_KEY.to_string(), model.files.name.clone()),
            (MODEL_SHA256_KEY.to_string(), model.content_hash.clone()),
        ]);
        Ok(Arc::new(
            Field::new(self.name(), self.output_type(model.spec.width)?, true).with_metadata(lineage),
        ))
    }

    /// Pins the model to its content: `'name'` becomes `'name@sha256:<hash>'` while the
    /// query is planned, so wherever the plan runs (a distributed worker, or here after the
    /// file changed) a model with other content is refused instead of mixing versions.
    /// Output column names keep the name as written.
    fn simplify(&self, mut args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let name = match args.first() {
            Some(Expr::Literal(
                ScalarValue::Utf8(Some(n)) | ScalarValue::LargeUtf8(Some(n)) | ScalarValue::Utf8View(Some(n)),
                _,
            )) if split_pin(n).1.is_none() => n.clone(),
            _ => return Ok(ExprSimplifyResult::Original(args)),
        };
        let model = self.load(&name, None)?;
        let pinned = format!("{name}{PIN}{}", model.content_hash);
        // The pinned function holds the version it was planned with: a query keeps it to
        // its end, whatever replaces the file meanwhile.
        let copy = self.copy();
        copy.planned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, (pinned.clone(), model));
        args[0] = Expr::Literal(ScalarValue::Utf8(Some(pinned)), None);
        let udf = Arc::new(ScalarUDF::new_from_impl(copy));
        Ok(ExprSimplifyResult::Simplified(Expr::ScalarFunction(
            ScalarFunction::new_udf(udf, args),
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some((name, features)) = args.args.split_first() else {
            return exec_err!(
                "{}(model, col, ...) needs a model name and at least one column",
                self.name()
            );
        };
        let name = literal_value(name);
        let arg_types: Vec<DataType> = args.arg_fields.iter().skip(1).map(|f| f.data_type().clone()).collect();
        let (model, arguments) = self.model_for(name.as_ref(), &arg_types, false)?;
        if self.output_type(model.spec.width)? != *args.return_field.data_type() {
            return exec_err!(
                "{}: model '{}' changed on disk since the query was planned (output is now {} wide); rerun the query",
                self.name(),
                model.files.name,
                model.spec.width
            );
        }
        let arrays: Vec<ArrayRef> = ColumnarValue::values_to_arrays(features)?;
        let (values, validity) = model.infer(arguments, &arrays, args.number_rows)?;
        let result: ArrayRef = match self.kind {
            InferenceKind::Embed => Arc::new(embedding_array(values, model.spec.width, args.number_rows, validity)?),
            InferenceKind::Predict => Arc::new(prediction_array(values, args.number_rows, validity)),
        };
        Ok(ColumnarValue::Array(result))
    }

    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        let settings = InferenceSettings::from_config(config);
        (settings != self.settings).then(|| {
            ScalarUDF::new_from_impl(Self {
                worker: self.worker.clone(),
                ..Self::new(self.kind, settings)
            })
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(match self.kind {
            InferenceKind::Embed => &EMBED_DOC,
            InferenceKind::Predict => &PREDICT_DOC,
        })
    }
}

const SECTION: DocSection = DocSection {
    include: true,
    label: "tabssl inference functions",
    description: Some("Run ONNX models from the tabssl model registry over SQL columns."),
};

static EMBED_DOC: std::sync::LazyLock<Documentation> = std::sync::LazyLock::new(|| {
    Documentation::builder(
        SECTION,
        "Runs an ONNX encoder from the model registry and returns its embedding as \
         FixedSizeList<Float32, D>. A row with a NULL argument gets a NULL embedding.",
        "embed(model, col1[, col2, ...])",
    )
    .with_argument("model", "Model name in the registry, as a string literal.")
    .with_argument(
        "col1, ...",
        "Feature columns in the model's input order (see tabssl_models()).",
    )
    .with_sql_example("SELECT age, embed('adult_pca', age, workclass) AS e FROM adult;")
    .build()
});

static PREDICT_DOC: std::sync::LazyLock<Documentation> = std::sync::LazyLock::new(|| {
    Documentation::builder(
        SECTION,
        "Runs an ONNX model with one output value per row and returns it as Float32. \
         A row with a NULL argument gets NULL.",
        "predict(model, col1[, col2, ...])",
    )
    .with_argument("model", "Model name in the registry, as a string literal.")
    .with_argument(
        "col1, ...",
        "Feature columns in the model's input order (see tabssl_models()).",
    )
    .with_sql_example("SELECT predict('income_head', age, hours) AS p FROM adult;")
    .build()
});

/// The `embed` UDF with `settings`.
pub fn embed_udf(settings: InferenceSettings) -> ScalarUDF {
    ScalarUDF::new_from_impl(InferenceUdf::new(InferenceKind::Embed, settings))
}

/// The `predict` UDF with `settings`.
pub fn predict_udf(settings: InferenceSettings) -> ScalarUDF {
    ScalarUDF::new_from_impl(InferenceUdf::new(InferenceKind::Predict, settings))
}
