//! Fetching pinned Python wheels with pip and publishing the shared libraries inside them
//! into tabssl's cache, atomically.
//!
//! Used for the ONNX Runtime library ([`super::onnxruntime`]) and for the CUDA and cuDNN
//! libraries of the CUDA execution provider ([`super::cuda_libraries`]). pip is the only
//! client: it honours the user's index configuration, proxies and certificates.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result};

/// The Python interpreter tabssl asks: `TABSSL_PYTHON` (the `tabssl` Python package sets it
/// to its own interpreter), else `python3`.
pub(super) fn python() -> String {
    std::env::var("TABSSL_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// False when the user disabled fetching with `TABSSL_ORT_FETCH=0` (or `false`).
pub(super) fn fetching_allowed() -> bool {
    !std::env::var("TABSSL_ORT_FETCH").is_ok_and(|v| v == "0" || v.eq_ignore_ascii_case("false"))
}

/// Downloads `requirements` (each `name==version`) with `pip download --no-deps
/// --only-binary=:all:`, extracts every wheel member for which `wanted` returns a file name
/// flat into a staging directory next to `cache`, and renames it to `cache`.
///
/// The rename publishes the whole set at once, so a concurrent or interrupted fetch never
/// leaves a half-written cache behind. When another process published first, its copy is
/// kept if `complete` accepts it.
///
/// # Errors
/// [`Error::Invalid`] naming the step that failed (pip, unpacking, writing, publishing).
pub(super) fn fetch_into_cache(
    requirements: &[String],
    cache: &Path,
    wanted: fn(&str) -> Option<&str>,
    complete: impl Fn(&Path) -> bool,
) -> Result<()> {
    let parent = cache
        .parent()
        .ok_or_else(|| Error::invalid("cache directory has no parent"))?;
    std::fs::create_dir_all(parent).map_err(|e| Error::Invalid(format!("creating {}: {e}", parent.display())))?;
    let name = cache
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let staging = parent.join(format!(".fetch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| Error::Invalid(format!("creating {}: {e}", staging.display())))?;
    let result = download_and_unpack(requirements, &staging, wanted)
        .and_then(|()| sync_tree(&staging).map_err(|e| Error::Invalid(format!("syncing {}: {e}", staging.display()))))
        .and_then(|()| match std::fs::rename(&staging, cache) {
            Ok(()) => tabssl_functions::atomic::sync_directory(parent)
                .map_err(|e| Error::Invalid(format!("syncing {}: {e}", parent.display()))),
            // Another process finished first: use its copy.
            Err(_) if complete(cache) => Ok(()),
            Err(e) => Err(Error::Invalid(format!(
                "moving the libraries into {}: {e}",
                cache.display()
            ))),
        });
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn download_and_unpack(requirements: &[String], staging: &Path, wanted: fn(&str) -> Option<&str>) -> Result<()> {
    let wheels = staging.join("wheels");
    let listed = requirements.join(" ");
    log::warn!(
        "fetching {listed} with pip (once; cached under {})",
        staging.parent().unwrap_or(staging).display()
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
        .args(requirements)
        .status()
        .map_err(|e| Error::Invalid(format!("could not run {} -m pip: {e}", python())))?;
    if !status.success() {
        return Err(Error::Invalid(format!(
            "`{} -m pip download {listed}` failed ({status})",
            python()
        )));
    }
    let downloaded: Vec<PathBuf> = std::fs::read_dir(&wheels)
        .map_err(|e| Error::Invalid(format!("listing {}: {e}", wheels.display())))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "whl"))
        .collect();
    if downloaded.len() != requirements.len() {
        return Err(Error::Invalid(format!(
            "pip left {} wheel(s) in {} for {} requirement(s): {listed}",
            downloaded.len(),
            wheels.display(),
            requirements.len()
        )));
    }
    for wheel in &downloaded {
        unpack(wheel, staging, wanted)?;
    }
    std::fs::remove_dir_all(&wheels).map_err(|e| Error::Invalid(format!("removing {}: {e}", wheels.display())))
}

/// Extracts the members of `wheel` that `wanted` names into `directory`, flat.
///
/// # Errors
/// [`Error::Invalid`] when the wheel cannot be read or holds no wanted member.
pub(super) fn unpack(wheel: &Path, directory: &Path, wanted: fn(&str) -> Option<&str>) -> Result<()> {
    let unzip = |e: zip::result::ZipError| Error::Invalid(format!("unpacking {}: {e}", wheel.display()));
    let file = std::fs::File::open(wheel).map_err(|e| Error::Invalid(format!("opening {}: {e}", wheel.display())))?;
    let mut archive = zip::ZipArchive::new(file).map_err(unzip)?;
    let mut found = 0;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(unzip)?;
        let member = entry.name().map_err(unzip)?.to_string();
        let Some(base) = wanted(&member) else {
            continue;
        };
        // Member names come from a downloaded file: never let one leave `directory`.
        if base.is_empty() || base.contains(['/', '\\']) || base == "." || base == ".." {
            continue;
        }
        let target = directory.join(base);
        let mut out = std::fs::File::create(&target)
            .map_err(|e| Error::Invalid(format!("creating {}: {e}", target.display())))?;
        std::io::copy(&mut entry, &mut out)
            .map_err(|e| Error::Invalid(format!("writing {}: {e}", target.display())))?;
        found += 1;
    }
    if found == 0 {
        return Err(Error::Invalid(format!(
            "{} holds none of the libraries looked for",
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
    tabssl_functions::atomic::sync_directory(directory)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn lib_member(member: &str) -> Option<&str> {
        let (folder, base) = member.rsplit_once('/')?;
        (folder.ends_with("/lib") && base.contains(".so")).then_some(base)
    }

    #[test]
    fn unpacks_only_wanted_members_flat() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let wheel = dir.path().join("nvidia_fake-1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&wheel)?);
        let options = zip::write::SimpleFileOptions::default();
        for (name, body) in [
            ("nvidia/cu13/lib/libcudart.so.13", "cudart"),
            ("nvidia/cu13/include/cuda.h", "header"),
            ("nvidia_fake-1.0.dist-info/METADATA", "meta"),
        ] {
            zip.start_file(name, options)?;
            zip.write_all(body.as_bytes())?;
        }
        zip.finish()?;
        let out = dir.path().join("out");
        std::fs::create_dir(&out)?;
        unpack(&wheel, &out, lib_member)?;
        let names: Vec<String> = std::fs::read_dir(&out)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["libcudart.so.13"]);
        assert_eq!(std::fs::read_to_string(out.join("libcudart.so.13"))?, "cudart");
        Ok(())
    }

    #[test]
    fn a_wheel_without_wanted_members_is_an_error() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let wheel = dir.path().join("empty-1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&wheel)?);
        zip.start_file("empty/__init__.py", zip::write::SimpleFileOptions::default())?;
        zip.finish()?;
        let err = unpack(&wheel, dir.path(), lib_member)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("holds none of the libraries"), "{err}");
        Ok(())
    }
}
