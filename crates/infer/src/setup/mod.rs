//! Setting up the machine for the front ends: the command line and the Python package call
//! [`install`], so that `embed` and `predict` work with no step by hand. The library itself
//! never searches or downloads; see [`crate::runtime`].
//!
//! [`install`] makes the runtime find the pinned ONNX Runtime build in tabssl's cache or an
//! installed Python package, else fetch it once with pip (`onnxruntime`), and, for the CUDA
//! provider, find or fetch the CUDA and cuDNN libraries (`cuda_libraries`). Fetching is
//! off with `TABSSL_ORT_FETCH=0`.

pub(crate) mod cuda_libraries;
pub(crate) mod onnxruntime;
mod wheels;

use std::path::PathBuf;
use std::sync::Arc;

use crate::runtime::{Flavor, RuntimeLocator, set_locator};

/// Installs [`MachineLocator`] as the runtime's locator.
pub fn install() {
    set_locator(Arc::new(MachineLocator));
}

/// Finds (or fetches) ONNX Runtime and the CUDA libraries on this machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineLocator;

impl RuntimeLocator for MachineLocator {
    fn locate(&self, flavor: Flavor) -> Result<PathBuf, String> {
        onnxruntime::locate(flavor)
    }

    fn prepare_cuda(&self) -> Result<usize, String> {
        cuda_libraries::prepare()
    }
}

/// tabssl's cache directory: `TABSSL_CACHE_DIR`, else `$XDG_CACHE_HOME/tabssl`, else
/// `~/.cache/tabssl`.
#[must_use]
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TABSSL_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("tabssl");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".cache").join("tabssl");
    }
    std::env::temp_dir().join("tabssl-cache")
}
