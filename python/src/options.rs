//! tabssl's session options (`tabssl.*`) from Python: keyword arguments of `register` and
//! the jobs, and `tabssl.SessionOptions`, a config extension for `datafusion.SessionConfig`
//! that makes `SET tabssl.provider = 'cuda'` work in a Python session.

use datafusion::config::{ConfigOptions, ExtensionOptions};
use datafusion_ffi::config::extension_options::FFI_ExtensionOptions;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use tabssl::TabsslOptions;

use crate::errors::IntoPyResult;

/// The `tabssl.*` options a Python call asked for.
pub fn build_options(
    models_dir: Option<String>,
    provider: &str,
    device_id: usize,
    intra_threads: usize,
    sessions_per_model: usize,
) -> PyResult<TabsslOptions> {
    let mut options = TabsslOptions::default();
    if let Some(dir) = models_dir {
        options.models_dir = dir;
    }
    ExtensionOptions::set(&mut options, "provider", provider).py_err()?;
    options.device_id = device_id;
    options.intra_threads = intra_threads;
    options.sessions_per_model = sessions_per_model;
    Ok(options)
}

/// The `tabssl.*` options of a Python session's config, when it has any: set through a
/// [`SessionOptions`] extension, they arrive as datafusion-ffi's string map.
///
/// # Errors
/// The message of an option value tabssl refuses (`SET tabssl.provider = 'gpu'`).
pub fn options_in_config(config: &ConfigOptions) -> Result<Option<TabsslOptions>, String> {
    if let Some(local) = config.extensions.get::<TabsslOptions>() {
        return Ok(Some(local.clone()));
    }
    let Some(foreign) = config.extensions.get::<FFI_ExtensionOptions>() else {
        return Ok(None);
    };
    let prefix = "tabssl.";
    let mut options = TabsslOptions::default();
    let mut any = false;
    for entry in foreign.entries() {
        if let (Some(key), Some(value)) = (entry.key.strip_prefix(prefix), entry.value) {
            ExtensionOptions::set(&mut options, key, &value).map_err(|e| e.to_string())?;
            any = true;
        }
    }
    Ok(any.then_some(options))
}

/// tabssl's options as a DataFusion config extension, for `SessionConfig.with_extension`.
#[pyclass(name = "SessionOptions", module = "tabssl._native", frozen)]
pub struct SessionOptions {
    options: TabsslOptions,
}

#[pymethods]
impl SessionOptions {
    #[new]
    #[pyo3(signature = (models_dir=None, provider="cpu", device_id=0, intra_threads=0, sessions_per_model=0))]
    fn new(
        models_dir: Option<String>,
        provider: &str,
        device_id: usize,
        intra_threads: usize,
        sessions_per_model: usize,
    ) -> PyResult<Self> {
        let options = build_options(models_dir, provider, device_id, intra_threads, sessions_per_model)?;
        Ok(Self { options })
    }

    fn __datafusion_extension_options__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let mut foreign = FFI_ExtensionOptions::default();
        foreign.add_config(&self.options).py_err()?;
        PyCapsule::new_with_value(py, foreign, c"datafusion_extension_options")
    }

    fn __repr__(&self) -> String {
        let entries: Vec<String> = self
            .options
            .entries()
            .into_iter()
            .filter_map(|e| e.value.map(|v| format!("{}={v:?}", e.key)))
            .collect();
        format!("SessionOptions({})", entries.join(", "))
    }
}
