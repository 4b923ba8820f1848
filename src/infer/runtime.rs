//! Finding and loading the ONNX Runtime library, the process-wide environment, and the
//! execution providers.
//!
//! `ort` is used with `load-dynamic`: the shared library is opened at first use. The
//! library is looked for, in order, at
//! 1. `ORT_DYLIB_PATH` (when set, it must work: nothing else is tried);
//! 2. tabssl's cache (`TABSSL_CACHE_DIR`, else `$XDG_CACHE_HOME/tabssl`, else `~/.cache/tabssl`);
//! 3. an installed Python `onnxruntime` (or `onnxruntime-gpu`) package of version ≥ 1.31;
//! 4. the pinned wheel, fetched once with `python3 -m pip download` into the cache
//!    (disable with `TABSSL_ORT_FETCH=0`).
//!
//! The CPU wheel is `onnxruntime==1.31.1`; when CUDA is wanted, `onnxruntime-gpu==1.31.1`
//! (CUDA 13, cuDNN 9) is looked for instead, since only that build holds the CUDA provider.
//! Its provider needs CUDA and cuDNN libraries, which [`super::cuda_libraries`] finds (or
//! fetches) and loads before the provider registers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider};
use ort::session::builder::SessionBuilder;

use super::{cuda_libraries, wheels};
use crate::options::Provider;
use crate::{Error, Result};

/// The ONNX Runtime release tabssl is pinned to (ort 2.0.0-rc.15 speaks its API 31).
pub const ORT_VERSION: &str = "1.31.1";

/// Oldest ONNX Runtime minor version the bindings accept.
const MIN_MINOR: u32 = 31;

/// Which build of ONNX Runtime a library is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The CPU-only build (`onnxruntime` wheel).
    Cpu,
    /// The build with the CUDA provider (`onnxruntime-gpu` wheel).
    Gpu,
}

impl Flavor {
    fn package(self) -> &'static str {
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

static RUNTIME: Mutex<Option<Arc<Runtime>>> = Mutex::new(None);
static AUTO_FALLBACK_WARNED: AtomicBool = AtomicBool::new(false);

/// Returns the process-wide runtime, loading the library on first use.
///
/// `provider` decides which build is looked for when nothing is loaded yet: `cuda` and
/// `auto` look for the GPU build when an NVIDIA device is visible.
///
/// # Errors
/// [`Error::RuntimeUnavailable`] listing every place that was tried and how to fix it.
pub fn runtime(provider: Provider) -> Result<Arc<Runtime>> {
    let mut slot = RUNTIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
    let library = locate_library(flavor)?;
    // The provider loads CUDA and cuDNN when it registers; they must be in the process
    // before that.
    let has_cuda_provider = library.parent().and_then(|dir| library_in(dir, Flavor::Gpu)).is_some();
    let cuda_libraries = (flavor == Flavor::Gpu && has_cuda_provider).then(cuda_libraries::prepare);
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

/// Finds a usable library for `flavor`, fetching the pinned wheel if allowed.
fn locate_library(flavor: Flavor) -> Result<PathBuf> {
    let mut tried = Vec::new();

    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(Error::RuntimeUnavailable(format!(
            "ORT_DYLIB_PATH is set to {} but no such file exists; point it at libonnxruntime \
             {ORT_VERSION} or unset it to let tabssl find one",
            path.display()
        )));
    }
    tried.push("ORT_DYLIB_PATH: not set".to_string());

    let cache = cache_dir().join(format!("{}-{ORT_VERSION}", flavor.package()));
    match library_in(&cache, flavor) {
        Some(path) => return Ok(path),
        None => tried.push(format!("cache {}: empty", cache.display())),
    }

    match python_package_library(flavor) {
        Ok(path) => return Ok(path),
        Err(why) => tried.push(format!("installed Python package: {why}")),
    }

    if !wheels::fetching_allowed() {
        tried.push("fetching the wheel: disabled by TABSSL_ORT_FETCH=0".to_string());
    } else {
        match fetch_wheel(flavor, &cache) {
            Ok(path) => return Ok(path),
            Err(why) => tried.push(format!("fetching {}=={ORT_VERSION} with pip: {why}", flavor.package())),
        }
    }

    Err(Error::RuntimeUnavailable(format!(
        "tried:\n  - {}\nfix: set ORT_DYLIB_PATH to a libonnxruntime {ORT_VERSION} file, or run \
         `python3 -m pip install {}=={ORT_VERSION}`",
        tried.join("\n  - "),
        flavor.package()
    )))
}

/// tabssl's cache directory.
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

/// The main ONNX Runtime library inside `dir`, if `dir` holds a build of `flavor`.
fn library_in(dir: &Path, flavor: Flavor) -> Option<PathBuf> {
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

/// The minor version in a library name such as `libonnxruntime.so.1.31.1`.
fn minor_version(library: &Path) -> Option<u32> {
    let name = library.file_name()?.to_str()?;
    let version = name.split_once(".so.").map(|(_, v)| v).or_else(|| {
        name.strip_prefix("libonnxruntime.")
            .and_then(|rest| rest.strip_suffix(".dylib"))
    })?;
    version.split('.').nth(1)?.parse().ok()
}

/// The library shipped inside an installed Python `onnxruntime` package.
fn python_package_library(flavor: Flavor) -> crate::Result<PathBuf> {
    let output = Command::new(wheels::python())
        .args([
            "-c",
            "import importlib.util as u, os; s = u.find_spec('onnxruntime'); \
             print(os.path.join(os.path.dirname(s.origin), 'capi') if s else '')",
        ])
        .output()
        .map_err(|e| crate::Error::Invalid(format!("could not run {}: {e}", wheels::python())))?;
    let dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if dir.is_empty() {
        return Err(crate::Error::Invalid(format!(
            "{} has no onnxruntime package",
            wheels::python()
        )));
    }
    let dir = PathBuf::from(dir);
    let library = library_in(&dir, flavor).ok_or_else(|| match flavor {
        Flavor::Gpu => crate::Error::Invalid(format!("{} has no CUDA provider", dir.display())),
        Flavor::Cpu => crate::Error::Invalid(format!("{} has no libonnxruntime", dir.display())),
    })?;
    match minor_version(&library) {
        Some(minor) if minor >= MIN_MINOR => Ok(library),
        _ => Err(crate::Error::Invalid(format!(
            "{} is older than 1.{MIN_MINOR} (tabssl needs {ORT_VERSION})",
            library.display()
        ))),
    }
}

/// Downloads the pinned wheel with pip and unpacks its libraries into `cache`.
fn fetch_wheel(flavor: Flavor, cache: &Path) -> crate::Result<PathBuf> {
    let requirement = format!("{}=={ORT_VERSION}", flavor.package());
    wheels::fetch_into_cache(&[requirement], cache, ort_library_member, |dir| {
        library_in(dir, flavor).is_some()
    })?;
    library_in(cache, flavor)
        .ok_or_else(|| crate::Error::Invalid(format!("the wheel held no usable library for {}", flavor.package())))
}

/// The file name of an ONNX Runtime library inside a wheel (`onnxruntime/capi/libonnxruntime*`).
fn ort_library_member(member: &str) -> Option<&str> {
    let (folder, base) = member.rsplit_once('/')?;
    (folder.ends_with("/capi") && base.starts_with("libonnxruntime")).then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_minor_version_from_library_names() {
        assert_eq!(minor_version(Path::new("/x/libonnxruntime.so.1.31.1")), Some(31));
        assert_eq!(minor_version(Path::new("libonnxruntime.1.20.0.dylib")), Some(20));
        assert_eq!(minor_version(Path::new("libonnxruntime.so")), None);
    }

    #[test]
    fn recognises_main_library_not_providers() {
        assert!(is_main_library("libonnxruntime.so.1.31.1"));
        assert!(!is_main_library("libonnxruntime_providers_shared.so"));
        assert!(!is_main_library("libonnxruntime_providers_cuda.so"));
    }
}
