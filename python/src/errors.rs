//! tabssl's errors as Python exceptions.
//!
//! Every exception is a `tabssl.TabsslError`, with a subclass for each [`tabssl::ErrorKind`]:
//! what could be known before running (unknown model, wrong arguments, bad option values)
//! is also a `ValueError` (`tabssl.PlanError`), file and runtime-library problems an
//! `OSError` (`tabssl.TabsslIOError`), a configured limit reached a `RuntimeError`
//! (`tabssl.ResourcesError`), and the rest a `RuntimeError` (`tabssl.ExecutionError`).

use pyo3::exceptions::{PyException, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tabssl::ErrorKind;

pyo3::create_exception!(tabssl, TabsslError, PyException, "Base class of every tabssl error.");

/// Registers the exception classes on the module. The subclasses also derive from the
/// matching builtin (`ValueError`, `OSError`, `RuntimeError`), so they are created with
/// `type()` to get two bases.
pub fn add_exceptions(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let base = py.get_type::<TabsslError>();
    m.add("TabsslError", &base)?;
    let builtins = py.import("builtins")?;
    let type_ = builtins.getattr("type")?;
    for (name, builtin, doc) in [
        (
            "PlanError",
            py.get_type::<PyValueError>(),
            "A query or call that cannot run as written: unknown model, wrong arguments, bad option.",
        ),
        (
            "TabsslIOError",
            py.get_type::<PyOSError>(),
            "A file, directory or shared library that cannot be read or written.",
        ),
        (
            "ExecutionError",
            py.get_type::<PyRuntimeError>(),
            "A failure while running: bad data, a model that fails on a batch.",
        ),
        (
            "ResourcesError",
            py.get_type::<PyRuntimeError>(),
            "A configured limit reached; the message names the setting that raises it.",
        ),
    ] {
        let bases = PyTuple::new(py, [base.as_any(), builtin.as_any()])?;
        let namespace = pyo3::types::PyDict::new(py);
        namespace.set_item("__doc__", doc)?;
        namespace.set_item("__module__", "tabssl")?;
        let class = type_.call1((name, bases, namespace))?;
        m.add(name, class)?;
    }
    Ok(())
}

/// A tabssl error as the matching Python exception, carrying tabssl's message.
pub fn to_py(error: tabssl::Error) -> PyErr {
    let kind = error.kind();
    raise(kind, error.to_string())
}

fn raise(kind: ErrorKind, message: String) -> PyErr {
    Python::attach(|py| {
        let name = match kind {
            ErrorKind::Plan => "PlanError",
            ErrorKind::Io => "TabsslIOError",
            ErrorKind::Resources => "ResourcesError",
            ErrorKind::Execution => "ExecutionError",
        };
        let class = py.import("tabssl._native").and_then(|module| module.getattr(name));
        match class {
            Ok(class) => match class.call1((message.clone(),)) {
                Ok(instance) => PyErr::from_value(instance),
                Err(error) => error,
            },
            Err(_) => TabsslError::new_err(message),
        }
    })
}

/// `Result<T, tabssl::Error>` → `PyResult<T>`.
pub trait IntoPyResult<T> {
    /// The error as a Python exception.
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for tabssl::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// Errors boxed to cross `Python::detach` closures (clippy's `result_large_err`).
impl<T> IntoPyResult<T> for Result<T, Box<tabssl::Error>> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(|e| to_py(*e))
    }
}

impl<T> IntoPyResult<T> for datafusion::error::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(|e| to_py(tabssl::Error::from(e)))
    }
}
