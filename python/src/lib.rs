//! `tabssl._native`: tabssl's DataFusion functions and jobs for Python.
//!
//! The functions travel to the `datafusion` Python package as datafusion-ffi capsules
//! (`functions.rs`), so they run inside the user's own `SessionContext`; the jobs
//! (`embed`, `export`, `pretrain`, `models`) run tabssl's library on Arrow data handed over
//! through the Arrow C stream interface (`arrow_stream.rs`), without copying columns.

mod arrow_stream;
mod errors;
mod functions;
mod jobs;
mod options;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // The package needs no step by hand: ONNX Runtime is found on the machine or fetched once.
    tabssl::setup::install();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DATAFUSION_FFI_MAJOR", datafusion_ffi::version())?;
    errors::add_exceptions(m)?;
    m.add_class::<functions::ScalarFunction>()?;
    m.add_class::<functions::AggregateFunction>()?;
    m.add_class::<functions::TableFunction>()?;
    m.add_class::<options::SessionOptions>()?;
    m.add_class::<arrow_stream::ArrowStream>()?;
    m.add_function(wrap_pyfunction!(functions::functions, m)?)?;
    m.add_function(wrap_pyfunction!(jobs::embed, m)?)?;
    m.add_function(wrap_pyfunction!(jobs::export, m)?)?;
    m.add_function(wrap_pyfunction!(jobs::pretrain, m)?)?;
    m.add_function(wrap_pyfunction!(jobs::models, m)?)?;
    Ok(())
}
