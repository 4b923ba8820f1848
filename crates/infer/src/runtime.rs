//! Loading the ONNX Runtime library, the process-wide environment, and the execution
//! providers.
//!
//! `ort` is used with `load-dynamic`: the shared library is opened at first use. The
//! library never searches or downloads anything itself; it takes the library from
//! 1. `ORT_DYLIB_PATH` (when set, it must work: nothing else is tried);
//! 2. else the [`RuntimeLocator`] installed with [`set_locator`]. The command line and the
//!    Python package install `crate::setup`'s, which finds the pinned release (tabssl's
//!    cache, an installed `onnxruntime` Python package) or fetches it once.
//!
//! The pinned release is ONNX Runtime 1.31.1: the CPU build, or when CUDA is wanted the
//! GPU build (CUDA 13, cuDNN 9), since only that build holds the CUDA provider. Its
//! provider needs the CUDA and cuDNN libraries in the process before it registers: the
//! locator loads them ([`RuntimeLocator::prepare_cuda`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider};
use ort::session::builder::SessionBuilder;

use crate::options::Provider;
use crate::{Error, Result};

/// The ONNX Runtime release tabssl is pinned to (ort 2.0.0-rc.15 speaks its API 31).
pub const ORT_VERSION: &str = "1.31.1";

/// Which build of ONNX Runtime a library is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The CPU-only build (`onnxruntime` wheel).
    Cpu,
    /// The build with the CUDA provider (`onnxruntime-gpu` wheel).
    Gpu,
}

impl Flavor {
    /// The Python package that ships this build.
    #[must_use]
    pub fn package(self) -> &'static str {
        match self {
            Self::Cpu => "onnxruntime",
            Self::Gpu => "onnxruntime-gpu",
        }
    }
}

/// The loaded ONNX Runtime: the library it came from and the process-wide environment.
#[derive(Debug)]
pub struct Runtime {
    environment: Environment,
    library: PathBuf,
    /// For a build with the CUDA provider: how many CUDA/cuDNN libraries were loaded, or
    /// why they could not be.
    cuda_libraries: Option<std::result::Result<usize, String>>,
}

/// The execution provider a session really runs on after registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActiveProvider {
    /// `CPUExecutionProvider`.
    Cpu,
    /// `CUDAExecutionProvider` on the given device.
    Cuda(usize),
}

impl std::fmt::Display for ActiveProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(device) => write!(f, "cuda:{device}"),
        }
    }
}

/// Where the ONNX Runtime library comes from when `ORT_DYLIB_PATH` is not set: a front
/// end's search of the machine.
pub trait RuntimeLocator: Send + Sync {
    /// The main library of a `flavor` build.
    ///
    /// # Errors
    /// Every place that was tried, and how to provide the library.
    fn locate(&self, flavor: Flavor) -> std::result::Result<PathBuf, String>;

    /// Loads the CUDA and cuDNN libraries the CUDA provider needs into the process, before
    /// the GPU build's provider registers; returns how many were loaded.
    ///
    /// # Errors
    /// What is missing or failed to load, and how to provide it.
    fn prepare_cuda(&self) -> std::result::Result<usize, String>;
}

static RUNTIME: Mutex<Option<Arc<Runtime>>> = Mutex::new(None);
static LOCATOR: Mutex<Option<Arc<dyn RuntimeLocator>>> = Mutex::new(None);
static AUTO_FALLBACK_WARNED: AtomicBool = AtomicBool::new(false);

/// Installs the locator asked for the library when `ORT_DYLIB_PATH` is not set. It takes
/// effect when the runtime is first loaded; a runtime already loaded stays.
pub fn set_locator(locator: Arc<dyn RuntimeLocator>) {
    *LOCATOR.lock().unwrap_or_else(PoisonError::into_inner) = Some(locator);
}

/// Returns the process-wide runtime, loading the library on first use.
///
/// `provider` decides which build is looked for when nothing is loaded yet: `cuda` and
/// `auto` look for the GPU build when an NVIDIA device is visible.
///
/// # Errors
/// [`Error::RuntimeUnavailable`] listing every place that was tried and how to fix it.
pub fn runtime(provider: Provider) -> Result<Arc<Runtime>> {
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(runtime) = slot.as_ref() {
        return Ok(Arc::clone(runtime));
    }
    // The GPU build is only worth loading (or fetching, 250 MB) where a GPU can be seen;
    // elsewhere an explicit 'cuda' fails at registration with the reason.
    let flavor = if provider != Provider::Cpu && nvidia_device_visible() {
        Flavor::Gpu
    } else {
        Flavor::Cpu
    };
    let locator = LOCATOR.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let library = locate_library(flavor, locator.as_deref())?;
    // The provider loads CUDA and cuDNN when it registers; they must be in the process
    // before that.
    let has_cuda_provider = library.parent().and_then(|dir| library_in(dir, Flavor::Gpu)).is_some();
    let cuda_libraries = match &locator {
        Some(locator) if flavor == Flavor::Gpu && has_cuda_provider => Some(locator.prepare_cuda()),
        _ => None,
    };
    let environment = ort::init_from(&library)
        .map_err(|e| Error::RuntimeUnavailable(format!("{e}")))?
        .with_name("tabssl")
        .build()
        .map_err(|e| Error::RuntimeUnavailable(format!("creating the environment from {}: {e}", library.display())))?;
    log::info!("loaded ONNX Runtime from {}", library.display());
    let runtime = Arc::new(Runtime {
        environment,
        library,
        cuda_libraries,
    });
    *slot = Some(Arc::clone(&runtime));
    Ok(runtime)
}

impl Runtime {
    /// A session builder with `provider` registered and `intra_threads` set.
    ///
    /// `cuda` that cannot register is an error naming the reason; `auto` falls back to the
    /// CPU provider with one warning per process.
    ///
    /// # Errors
    /// [`Error::ProviderUnavailable`] for an explicit `cuda` that does not register.
    pub fn session_builder(
        &self,
        provider: Provider,
        device_id: usize,
        intra_threads: usize,
    ) -> Result<(SessionBuilder, ActiveProvider)> {
        let builder = ort::session::Session::builder(&self.environment)
            .and_then(|b| b.with_intra_threads(intra_threads).map_err(Into::into))
            .map_err(|e| Error::RuntimeUnavailable(format!("creating a session builder: {e}")))?;
        if provider == Provider::Cpu {
            return Ok((builder, ActiveProvider::Cpu));
        }
        match self.register_cuda(builder, device_id) {
            Ok(builder) => Ok((builder, ActiveProvider::Cuda(device_id))),
            Err(failure) if provider == Provider::Auto => {
                let (reason, builder) = *failure;
                if !AUTO_FALLBACK_WARNED.swap(true, Ordering::Relaxed) {
                    log::warn!("tabssl.provider = 'auto': CUDA is not available ({reason}); running on the CPU");
                }
                Ok((builder, ActiveProvider::Cpu))
            }
            Err(failure) => Err(Error::ProviderUnavailable {
                provider: format!("cuda (device {device_id})"),
                reason: failure.0,
            }),
        }
    }

    /// Registers the CUDA provider, failing loudly; on failure hands the builder back.
    fn register_cuda(
        &self,
        builder: SessionBuilder,
        device_id: usize,
    ) -> std::result::Result<SessionBuilder, Box<(String, SessionBuilder)>> {
        if !ep::CUDA::is_available().unwrap_or(false) {
            let device = if nvidia_device_visible() {
                ""
            } else {
                "no NVIDIA device is visible, and "
            };
            return Err(Box::new((
                format!(
                    "{device}the loaded ONNX Runtime ({}) was built without the CUDA execution provider; \
                     on a GPU machine install onnxruntime-gpu=={ORT_VERSION} or point ORT_DYLIB_PATH at its library",
                    self.library.display()
                ),
                builder,
            )));
        }
        let Ok(device) = i32::try_from(device_id) else {
            return Err(Box::new((format!("device id {device_id} is out of range"), builder)));
        };
        let cuda = ep::CUDA::default().with_device_id(device).build().error_on_failure();
        builder.with_execution_providers([cuda]).map_err(|e| {
            let reason = match &self.cuda_libraries {
                Some(Err(why)) => format!("{e}; {why}"),
                _ => e.to_string(),
            };
            Box::new((reason, e.recover()))
        })
    }
}

/// True when the NVIDIA driver exposes a device node.
fn nvidia_device_visible() -> bool {
    Path::new("/dev/nvidiactl").exists() || Path::new("/dev/nvidia0").exists()
}

/// How a program without a locator gets one.
#[cfg(feature = "setup")]
const LOCATOR_HINT: &str = "call tabssl::setup::install() first to find or fetch it";
#[cfg(not(feature = "setup"))]
const LOCATOR_HINT: &str = "install a locator with tabssl::infer::set_locator";

/// The library at `ORT_DYLIB_PATH`, else the one the locator finds.
fn locate_library(flavor: Flavor, locator: Option<&dyn RuntimeLocator>) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(Error::RuntimeUnavailable(format!(
            "ORT_DYLIB_PATH is set to {} but no such file exists; point it at libonnxruntime {ORT_VERSION}",
            path.display()
        )));
    }
    match locator {
        Some(locator) => locator.locate(flavor).map_err(Error::RuntimeUnavailable),
        None => Err(Error::RuntimeUnavailable(format!(
            "no ONNX Runtime library was given: set ORT_DYLIB_PATH to a libonnxruntime {ORT_VERSION} file \
             (the {}=={ORT_VERSION} Python package holds one in onnxruntime/capi), or {LOCATOR_HINT}",
            flavor.package()
        ))),
    }
}

/// The main ONNX Runtime library inside `dir`, if `dir` holds a build of `flavor`.
#[must_use]
pub fn library_in(dir: &Path, flavor: Flavor) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut library = None;
    let mut has_cuda = false;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("libonnxruntime_providers_cuda") {
            has_cuda = true;
        } else if is_main_library(&name) {
            library = Some(entry.path());
        }
    }
    if flavor == Flavor::Gpu && !has_cuda {
        return None;
    }
    library
}

/// `libonnxruntime.so.1.31.1`, `libonnxruntime.1.31.1.dylib`, `onnxruntime.dll`.
fn is_main_library(name: &str) -> bool {
    (name.starts_with("libonnxruntime.so") || name.starts_with("libonnxruntime.") && name.ends_with(".dylib"))
        || name == "onnxruntime.dll"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_main_library_not_providers() {
        assert!(is_main_library("libonnxruntime.so.1.31.1"));
        assert!(!is_main_library("libonnxruntime_providers_shared.so"));
        assert!(!is_main_library("libonnxruntime_providers_cuda.so"));
    }
}
