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

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider};
use ort::session::builder::SessionBuilder;

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
    let environment = ort::init_from(&library)
        .map_err(|e| Error::RuntimeUnavailable(format!("{e}")))?
        .with_name("tabssl")
        .build()
        .map_err(|e| Error::RuntimeUnavailable(format!("creating the environment from {}: {e}", library.display())))?;
    log::info!("loaded ONNX Runtime from {}", library.display());
    let runtime = Arc::new(Runtime { environment, library });
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
            let reason = e.to_string();
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

    if std::env::var("TABSSL_ORT_FETCH").is_ok_and(|v| v == "0" || v.eq_ignore_ascii_case("false")) {
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

fn python() -> String {
    std::env::var("TABSSL_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// The library shipped inside an installed Python `onnxruntime` package.
fn python_package_library(flavor: Flavor) -> crate::Result<PathBuf> {
    let output = Command::new(python())
        .args([
            "-c",
            "import importlib.util as u, os; s = u.find_spec('onnxruntime'); \
             print(os.path.join(os.path.dirname(s.origin), 'capi') if s else '')",
        ])
        .output()
        .map_err(|e| crate::Error::Invalid(format!("could not run {}: {e}", python())))?;
    let dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if dir.is_empty() {
        return Err(crate::Error::Invalid(format!(
            "{} has no onnxruntime package",
            python()
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
///
/// Unpacks into a temporary sibling directory first and renames it into place, so a
/// concurrent or interrupted fetch never leaves a half-written cache behind.
fn fetch_wheel(flavor: Flavor, cache: &Path) -> crate::Result<PathBuf> {
    let parent = cache
        .parent()
        .ok_or_else(|| crate::Error::invalid("cache directory has no parent"))?;
    std::fs::create_dir_all(parent)
        .map_err(|e| crate::Error::Invalid(format!("creating {}: {e}", parent.display())))?;
    let staging = parent.join(format!(".fetch-{}-{}", flavor.package(), std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .map_err(|e| crate::Error::Invalid(format!("creating {}: {e}", staging.display())))?;
    let result = download_and_unpack(flavor, &staging)
        .and_then(|()| {
            sync_tree(&staging).map_err(|e| crate::Error::Invalid(format!("syncing {}: {e}", staging.display())))
        })
        .and_then(|()| match std::fs::rename(&staging, cache) {
            Ok(()) => crate::io::sync_directory(parent)
                .map_err(|e| crate::Error::Invalid(format!("syncing {}: {e}", parent.display()))),
            // Another process finished first: use its copy.
            Err(_) if library_in(cache, flavor).is_some() => Ok(()),
            Err(e) => Err(crate::Error::Invalid(format!(
                "moving the libraries into {}: {e}",
                cache.display()
            ))),
        });
    let _ = std::fs::remove_dir_all(&staging);
    result?;
    library_in(cache, flavor)
        .ok_or_else(|| crate::Error::Invalid(format!("the wheel held no usable library for {}", flavor.package())))
}

/// Extracts the ONNX Runtime libraries (`onnxruntime/capi/libonnxruntime*`) of a wheel into
/// `directory`.
fn unpack_libraries(wheel: &Path, directory: &Path) -> crate::Result<()> {
    let unzip = |e: zip::result::ZipError| crate::Error::Invalid(format!("unpacking {}: {e}", wheel.display()));
    let file =
        std::fs::File::open(wheel).map_err(|e| crate::Error::Invalid(format!("opening {}: {e}", wheel.display())))?;
    let mut archive = zip::ZipArchive::new(file).map_err(unzip)?;
    let mut found = 0;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(unzip)?;
        let name = entry.name().map_err(unzip)?.to_string();
        let Some((folder, base)) = name.rsplit_once('/') else {
            continue;
        };
        if !folder.ends_with("/capi") || !base.starts_with("libonnxruntime") {
            continue;
        }
        let target = directory.join(base);
        let mut out = std::fs::File::create(&target)
            .map_err(|e| crate::Error::Invalid(format!("creating {}: {e}", target.display())))?;
        std::io::copy(&mut entry, &mut out)
            .map_err(|e| crate::Error::Invalid(format!("writing {}: {e}", target.display())))?;
        found += 1;
    }
    if found == 0 {
        return Err(crate::Error::Invalid(format!(
            "{} holds no onnxruntime/capi/libonnxruntime* file",
            wheel.display()
        )));
    }
    Ok(())
}

/// Syncs every file of `directory` and the directory itself, so its rename into place
/// publishes complete libraries.
fn sync_tree(directory: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(directory)? {
        let path = entry?.path();
        if path.is_file() {
            std::fs::File::open(&path)?.sync_all()?;
        }
    }
    crate::io::sync_directory(directory)
}

fn download_and_unpack(flavor: Flavor, staging: &Path) -> crate::Result<()> {
    let wheels = staging.join("wheel");
    let requirement = format!("{}=={ORT_VERSION}", flavor.package());
    log::warn!(
        "fetching {requirement} with pip (once; cached under {})",
        cache_dir().display()
    );
    let status = Command::new(python())
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
        ])
        .arg(&wheels)
        .arg(&requirement)
        .status()
        .map_err(|e| crate::Error::Invalid(format!("could not run {} -m pip: {e}", python())))?;
    if !status.success() {
        return Err(crate::Error::Invalid(format!(
            "`{} -m pip download {requirement}` failed ({status})",
            python()
        )));
    }
    let wheel = std::fs::read_dir(&wheels)
        .map_err(|e| crate::Error::Invalid(format!("listing {}: {e}", wheels.display())))?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| crate::Error::Invalid(format!("pip left no wheel in {}", wheels.display())))?;
    unpack_libraries(&wheel, staging)?;
    std::fs::remove_dir_all(&wheels).map_err(|e| crate::Error::Invalid(format!("removing {}: {e}", wheels.display())))
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
