//! tabssl's functions as datafusion-ffi capsules for the `datafusion` Python package.
//!
//! A Python session's config has no `tabssl.*` section unless the user added a
//! [`crate::options::SessionOptions`] extension, so each function carries the options it
//! was registered with and applies them whenever DataFusion hands it a session config
//! without tabssl's own ([`SessionScalar`], [`SessionTableFunction`]).

use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::config::{ConfigOptions, ExtensionOptions};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::sort_properties::ExprProperties;
use datafusion::logical_expr::{
    AggregateUDF, ColumnarValue, Documentation, ExpressionPlacement, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature,
};
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use datafusion_ffi::udaf::FFI_AggregateUDF;
use datafusion_ffi::udf::FFI_ScalarUDF;
use datafusion_ffi::udtf::FFI_TableFunction;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use tabssl::{InferenceSettings, TabsslOptions};

use crate::options::{build_options, options_in_config};

/// The tokio runtime tabssl's table scans run on when a Python session polls them: the
/// `datafusion` package's runtime is another library's, invisible to tabssl's tokio.
pub static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("tabssl")
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tabssl cannot start its tokio runtime: {e}"))
});

/// A config holding `options` as its `tabssl` extension, with `base`'s other settings.
fn with_options(base: &ConfigOptions, options: &TabsslOptions) -> ConfigOptions {
    let mut config = base.clone();
    config.extensions.insert(options.clone());
    config
}

/// A stable identity of a set of options (they have no `Hash`).
fn options_key(options: &TabsslOptions) -> String {
    options
        .entries()
        .into_iter()
        .map(|e| format!("{}={}", e.key, e.value.unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(";")
}

/// A tabssl scalar function that keeps its registered `tabssl.*` options in sessions that
/// have none, and follows the session's when it has them.
#[derive(Debug)]
pub struct SessionScalar {
    inner: Arc<ScalarUDF>,
    options: TabsslOptions,
    key: String,
    /// A `SET tabssl...` value tabssl refused: every later call reports it.
    config_error: Option<String>,
}

impl SessionScalar {
    fn new(inner: Arc<ScalarUDF>, options: TabsslOptions, config_error: Option<String>) -> Self {
        let key = options_key(&options);
        Self {
            inner,
            options,
            key,
            config_error,
        }
    }

    fn check(&self) -> Result<()> {
        match &self.config_error {
            Some(message) => Err(DataFusionError::Plan(message.clone())),
            None => Ok(()),
        }
    }
}

impl PartialEq for SessionScalar {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner && self.key == other.key && self.config_error == other.config_error
    }
}

impl Eq for SessionScalar {}

impl Hash for SessionScalar {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
        self.key.hash(state);
    }
}

impl ScalarUDFImpl for SessionScalar {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.check()?;
        self.inner.inner().return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.check()?;
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.check()?;
        self.inner.invoke_with_args(args)
    }

    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        let (options, error) = match options_in_config(config) {
            Ok(found) => (found.unwrap_or_else(|| self.options.clone()), None),
            Err(message) => (self.options.clone(), Some(message)),
        };
        let config = with_options(config, &options);
        let inner = self
            .inner
            .inner()
            .with_updated_config(&config)
            .map_or_else(|| Arc::clone(&self.inner), Arc::new);
        let updated = Self::new(inner, options, error);
        (updated != *self).then(|| ScalarUDF::new_from_impl(updated))
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.inner().coerce_types(arg_types)
    }

    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.preserves_lex_ordering(inputs)
    }

    fn placement(&self, args: &[ExpressionPlacement]) -> ExpressionPlacement {
        self.inner.inner().placement(args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// A tabssl table function that reads the registered `tabssl.*` options when the calling
/// session has none (`tabssl_models()` needs the model registry).
#[derive(Debug)]
pub struct SessionTableFunction {
    name: &'static str,
    inner: Arc<dyn TableFunctionImpl>,
    options: TabsslOptions,
}

impl TableFunctionImpl for SessionTableFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        if self.name != "tabssl_models" {
            return self.inner.call_with_args(args);
        }
        if !args.exprs().is_empty() {
            return Err(DataFusionError::Plan(
                "tabssl_models() takes no arguments; the registry is tabssl.register(ctx, models_dir=...)".into(),
            ));
        }
        let session = args.session().config_options();
        let options = options_in_config(session)
            .map_err(DataFusionError::Plan)?
            .unwrap_or_else(|| self.options.clone());
        tabssl::infer::models_table(&InferenceSettings::from_config(&with_options(session, &options)))
    }
}

/// A scalar function for `datafusion.ScalarUDF.from_pycapsule`.
#[pyclass(name = "ScalarFunction", module = "tabssl._native", frozen)]
pub struct ScalarFunction {
    udf: Arc<ScalarUDF>,
}

#[pymethods]
impl ScalarFunction {
    /// The SQL name.
    #[getter]
    fn name(&self) -> &str {
        self.udf.name()
    }

    fn __datafusion_scalar_udf__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        PyCapsule::new_with_value(py, FFI_ScalarUDF::from(Arc::clone(&self.udf)), c"datafusion_scalar_udf")
    }

    fn __repr__(&self) -> String {
        format!("<tabssl scalar function {}>", self.udf.name())
    }
}

/// An aggregate function for `datafusion.AggregateUDF.from_pycapsule`.
#[pyclass(name = "AggregateFunction", module = "tabssl._native", frozen)]
pub struct AggregateFunction {
    udaf: Arc<AggregateUDF>,
}

#[pymethods]
impl AggregateFunction {
    /// The SQL name.
    #[getter]
    fn name(&self) -> &str {
        self.udaf.name()
    }

    fn __datafusion_aggregate_udf__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        PyCapsule::new_with_value(
            py,
            FFI_AggregateUDF::from(Arc::clone(&self.udaf)),
            c"datafusion_aggregate_udf",
        )
    }

    fn __repr__(&self) -> String {
        format!("<tabssl aggregate function {}>", self.udaf.name())
    }
}

/// A table function for `datafusion.TableFunction(name, function, ctx)`.
#[pyclass(name = "TableFunction", module = "tabssl._native", frozen)]
pub struct TableFunction {
    name: &'static str,
    function: Arc<dyn TableFunctionImpl>,
}

#[pymethods]
impl TableFunction {
    /// The SQL name.
    #[getter]
    fn name(&self) -> &str {
        self.name
    }

    /// The capsule, with the calling session's logical codec (DataFusion ≥ 52 passes it).
    fn __datafusion_table_function__<'py>(
        &self,
        py: Python<'py>,
        session: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let codec = logical_codec(&session)?;
        let function =
            FFI_TableFunction::new_with_ffi_codec(Arc::clone(&self.function), Some(RUNTIME.handle().clone()), codec);
        PyCapsule::new_with_value(py, function, c"datafusion_table_function")
    }

    fn __repr__(&self) -> String {
        format!("<tabssl table function {}>", self.name)
    }
}

/// The session's `FFI_LogicalExtensionCodec` (a `SessionContext` or a capsule).
fn logical_codec(session: &Bound<'_, PyAny>) -> PyResult<FFI_LogicalExtensionCodec> {
    let attribute = "__datafusion_logical_extension_codec__";
    let capsule = if session.hasattr(attribute)? {
        session.getattr(attribute)?.call0()?
    } else {
        session.clone()
    };
    let capsule = capsule.cast::<PyCapsule>()?;
    let pointer = capsule
        .pointer_checked(Some(c"datafusion_logical_extension_codec"))?
        .cast::<FFI_LogicalExtensionCodec>();
    // SAFETY: the capsule's name guarantees its content (the datafusion-ffi convention), and
    // it stays alive while `capsule` is borrowed; the codec is cloned out, not moved.
    Ok(unsafe { pointer.as_ref() }.clone())
}

/// Every tabssl function, with `options` as their registered `tabssl.*` options:
/// (scalar functions, aggregate functions, table functions).
#[pyfunction]
#[pyo3(signature = (models_dir=None, provider="cpu", device_id=0, intra_threads=0, sessions_per_model=0))]
pub fn functions(
    models_dir: Option<String>,
    provider: &str,
    device_id: usize,
    intra_threads: usize,
    sessions_per_model: usize,
) -> PyResult<(Vec<ScalarFunction>, Vec<AggregateFunction>, Vec<TableFunction>)> {
    let options = build_options(models_dir, provider, device_id, intra_threads, sessions_per_model)?;
    let config = with_options(&ConfigOptions::default(), &options);
    let scalars = tabssl::scalar_functions()
        .into_iter()
        .map(|udf| {
            let configured = udf.inner().with_updated_config(&config).map_or(udf, Arc::new);
            ScalarFunction {
                udf: Arc::new(ScalarUDF::new_from_impl(SessionScalar::new(
                    configured,
                    options.clone(),
                    None,
                ))),
            }
        })
        .collect();
    let aggregates = tabssl::aggregate_functions()
        .into_iter()
        .map(|udaf| AggregateFunction { udaf })
        .collect();
    let tables = tabssl::table_functions()
        .into_iter()
        .map(|(name, inner)| TableFunction {
            name,
            function: Arc::new(SessionTableFunction {
                name,
                inner,
                options: options.clone(),
            }),
        })
        .collect();
    Ok((scalars, aggregates, tables))
}
