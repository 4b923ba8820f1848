//! Finding the pinned ONNX Runtime library on this machine, or fetching it once.
//!
//! Looked for, in order, in
//! 1. tabssl's cache ([`super::cache_dir`]);
//! 2. an installed Python `onnxruntime` (or `onnxruntime-gpu`) package of version ≥ 1.31;
//! 3. the pinned wheel, fetched once with `python3 -m pip download` into the cache
//!    (disable with `TABSSL_ORT_FETCH=0`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::wheels;
use crate::runtime::{Flavor, ORT_VERSION, library_in};

/// Oldest ONNX Runtime minor version the bindings accept.
const MIN_MINOR: u32 = 31;

/// Finds a usable library for `flavor`, fetching the pinned wheel if allowed.
///
/// # Errors
/// Every place that was tried, and how to provide the library.
pub fn locate(flavor: Flavor) -> Result<PathBuf, String> {
    let mut tried = vec!["ORT_DYLIB_PATH: not set".to_string()];

    let cache = super::cache_dir().join(format!("{}-{ORT_VERSION}", flavor.package()));
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

    Err(format!(
        "tried:\n  - {}\nfix: set ORT_DYLIB_PATH to a libonnxruntime {ORT_VERSION} file, or run \
         `python3 -m pip install {}=={ORT_VERSION}`",
        tried.join("\n  - "),
        flavor.package()
    ))
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
}
