//! tabssl's errors as Python exceptions.
//!
//! Every exception is a `tabssl.TabsslError`; what could be known before running
//! (unknown model, wrong arguments, bad option values) is also a `ValueError`
//! (`tabssl.PlanError`), file and runtime-library problems are also an `OSError`
//! (`tabssl.TabsslIOError`), and the rest a `RuntimeError` (`tabssl.ExecutionError`).

use datafusion::error::DataFusionError;
use pyo3::exceptions::{PyException, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

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

/// Which exception class an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plan,
    Io,
    Execution,
}

fn kind_of_tabssl(error: &tabssl::Error) -> Kind {
    use tabssl::Error as E;
    match error {
        E::Io { .. } | E::RuntimeUnavailable(_) => Kind::Io,
        E::InvalidModelName { .. }
        | E::UnknownModel { .. }
        | E::InvalidModel { .. }
        | E::Binding { .. }
        | E::ModelMismatch { .. }
        | E::ProviderUnavailable { .. }
        | E::InvalidOption { .. }
        | E::LimitExceeded { .. }
        | E::Invalid(_) => Kind::Plan,
        E::DataFusion(inner) => kind_of_datafusion(inner),
        _ => Kind::Execution,
    }
}

fn kind_of_datafusion(error: &DataFusionError) -> Kind {
    match error {
        DataFusionError::Plan(_)
        | DataFusionError::SQL(..)
        | DataFusionError::SchemaError(..)
        | DataFusionError::Configuration(_)
        | DataFusionError::NotImplemented(_) => Kind::Plan,
        DataFusionError::IoError(_) | DataFusionError::ObjectStore(_) => Kind::Io,
        DataFusionError::External(inner) => match inner.downcast_ref::<tabssl::Error>() {
            Some(tabssl) => kind_of_tabssl(tabssl),
            None if inner.downcast_ref::<std::io::Error>().is_some() => Kind::Io,
            None => Kind::Execution,
        },
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => kind_of_datafusion(inner),
        DataFusionError::Shared(inner) => kind_of_datafusion(inner),
        _ => Kind::Execution,
    }
}

/// A tabssl error as the matching Python exception, carrying tabssl's message.
pub fn to_py(error: tabssl::Error) -> PyErr {
    let kind = kind_of_tabssl(&error);
    raise(kind, error.to_string())
}

fn raise(kind: Kind, message: String) -> PyErr {
    Python::attach(|py| {
        let name = match kind {
            Kind::Plan => "PlanError",
            Kind::Io => "TabsslIOError",
            Kind::Execution => "ExecutionError",
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
