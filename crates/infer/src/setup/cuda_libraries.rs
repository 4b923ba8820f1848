//! The CUDA and cuDNN libraries the CUDA execution provider needs: found where users
//! already have them, else fetched once, and loaded before the provider registers.
//!
//! `onnxruntime-gpu`'s `libonnxruntime_providers_cuda.so` links `libcudart.so.13`,
//! `libcublas(Lt).so.13`, `libcurand.so.10`, `libcufft.so.12` and cuDNN 9, and carries no
//! RPATH: on a machine with only the NVIDIA driver it cannot load. Each library `ort` lists
//! for the provider ([`CUDA_DYLIBS`], [`CUDNN_DYLIBS`]) is looked for, in order, in
//! 1. the folders of `LD_LIBRARY_PATH`;
//! 2. NVIDIA's Python packages, `site-packages/nvidia/*/lib`, which PyTorch and
//!    `onnxruntime-gpu[cuda,cudnn]` install (in the interpreter tabssl asks: `TABSSL_PYTHON`,
//!    else `python3`);
//! 3. a system CUDA: `$CUDA_HOME`, `$CUDA_PATH`, `/usr/local/cuda` and the distribution's
//!    library folders;
//! 4. tabssl's cache, `<cache>/nvidia-cuda-13.0`.
//!
//! When one is missing and fetching is allowed (`TABSSL_ORT_FETCH`), the pinned NVIDIA
//! wheels ([`NVIDIA_WHEELS`]) are fetched with pip into the cache, once. Every library found
//! is then loaded by absolute path, dependencies first ([`ort::util::preload_dylib`]), so the
//! provider's own loads resolve to them.

use std::path::PathBuf;
use std::process::Command;

use ort::ep::cuda::{CUDA_DYLIBS, CUDNN_DYLIBS};

use super::wheels;

/// The NVIDIA runtime wheels fetched when libraries are missing: CUDA 13.0 Update 2 and
/// cuDNN 9, the versions `onnxruntime-gpu==1.31.1` is built for.
pub const NVIDIA_WHEELS: &[&str] = &[
    "nvidia-cuda-runtime==13.0.96",
    "nvidia-cublas==13.1.0.3",
    "nvidia-cuda-nvrtc==13.0.88",
    "nvidia-curand==10.4.0.35",
    "nvidia-cufft==12.0.0.61",
    "nvidia-nvjitlink==13.0.88",
    "nvidia-cudnn-cu13==9.14.0.64",
];

/// Libraries loaded first when present, because others need them: cuFFT 12 of CUDA 13
/// links nvJitLink. Not reported when absent (older cuFFT builds do not need it).
const DEPENDENCIES_IF_PRESENT: &[&str] = &["libnvJitLink.so.13"];

/// The folder of tabssl's cache the fetched NVIDIA libraries are published to.
pub fn cache_folder() -> PathBuf {
    super::cache_dir().join("nvidia-cuda-13.0")
}

/// A folder searched for libraries, and where it came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDir {
    /// The folder.
    pub path: PathBuf,
    /// Where it came from, e.g. `LD_LIBRARY_PATH` or `Python package`.
    pub origin: &'static str,
}

/// The result of a search: the libraries found, in load order, and the names not found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Located {
    /// Absolute paths, dependencies before dependents.
    pub found: Vec<PathBuf>,
    /// Required library names found in no folder.
    pub missing: Vec<&'static str>,
}

/// The libraries the CUDA provider needs, dependencies first.
pub fn required_libraries() -> impl Iterator<Item = &'static str> {
    CUDA_DYLIBS.iter().chain(CUDNN_DYLIBS).copied()
}

/// Finds every library in the first folder of `dirs` that holds it.
pub fn locate(dirs: &[SearchDir]) -> Located {
    let find = |name: &str| dirs.iter().map(|dir| dir.path.join(name)).find(|path| path.is_file());
    let mut located = Located::default();
    located
        .found
        .extend(DEPENDENCIES_IF_PRESENT.iter().filter_map(|name| find(name)));
    for name in required_libraries() {
        match find(name) {
            Some(path) => located.found.push(path),
            None => located.missing.push(name),
        }
    }
    located
}

/// The folders searched on this machine, in order (see the module documentation).
pub fn search_dirs() -> Vec<SearchDir> {
    let mut dirs = Vec::new();
    let path_variable = if cfg!(windows) { "PATH" } else { "LD_LIBRARY_PATH" };
    if let Some(paths) = std::env::var_os(path_variable) {
        dirs.extend(
            std::env::split_paths(&paths)
                .filter(|p| !p.as_os_str().is_empty())
                .map(|path| SearchDir {
                    path,
                    origin: path_variable,
                }),
        );
    }
    dirs.extend(
        python_package_dirs(&python_sys_path())
            .into_iter()
            .map(|path| SearchDir {
                path,
                origin: "Python package",
            }),
    );
    dirs.extend(system_dirs().into_iter().map(|path| SearchDir {
        path,
        origin: "system CUDA",
    }));
    dirs.push(SearchDir {
        path: cache_folder(),
        origin: "tabssl cache",
    });
    dirs
}

/// The `nvidia/*/lib` (and `bin`, on Windows) folders below each of `site_dirs`, in order.
pub fn python_package_dirs(site_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for site in site_dirs {
        let Ok(entries) = std::fs::read_dir(site.join("nvidia")) else {
            continue;
        };
        let mut packages: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        packages.sort();
        for package in packages {
            for folder in ["lib", "bin"] {
                let dir = package.join(folder);
                if dir.is_dir() && !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
        }
    }
    dirs
}

/// `sys.path` of the Python interpreter tabssl asks; empty when there is none.
fn python_sys_path() -> Vec<PathBuf> {
    let Ok(output) = Command::new(wheels::python())
        .args(["-c", "import sys; print('\\n'.join(p for p in sys.path if p))"])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(PathBuf::from)
        .collect()
}

/// Where a system-wide CUDA keeps its libraries.
fn system_dirs() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = ["CUDA_HOME", "CUDA_PATH"]
        .iter()
        .filter_map(|variable| std::env::var_os(variable).filter(|v| !v.is_empty()).map(PathBuf::from))
        .collect();
    roots.push(PathBuf::from("/usr/local/cuda"));
    let target = match std::env::consts::ARCH {
        "aarch64" => "sbsa-linux",
        arch => arch,
    };
    let mut dirs = Vec::new();
    for root in roots {
        dirs.push(root.join("lib64"));
        dirs.push(root.join("lib"));
        dirs.push(root.join("targets").join(format!("{target}-linux")).join("lib"));
        dirs.push(root.join("targets").join(target).join("lib"));
    }
    let arch = std::env::consts::ARCH;
    dirs.extend(
        [
            format!("/usr/lib/{arch}-linux-gnu"),
            "/usr/lib64".into(),
            "/usr/lib".into(),
        ]
        .map(PathBuf::from),
    );
    dirs.dedup();
    dirs
}

/// Finds the libraries (fetching them if missing and allowed) and loads them.
///
/// Returns how many libraries were loaded.
///
/// # Errors
/// A message naming each missing library, where it was looked for and how to provide it;
/// or the library that failed to load and why.
pub fn prepare() -> Result<usize, String> {
    let dirs = search_dirs();
    let mut located = locate(&dirs);
    let mut fetch_failure = None;
    if !located.missing.is_empty() {
        if wheels::fetching_allowed() {
            let wheels: Vec<String> = NVIDIA_WHEELS.iter().map(|w| (*w).to_string()).collect();
            log::warn!(
                "the CUDA provider needs {} and they are not installed: fetching NVIDIA's CUDA 13.0 and cuDNN 9 \
                 wheels (1.2 GB to download, 1.7 GB in the cache; once)",
                located.missing.join(", ")
            );
            match wheels::fetch_into_cache(&wheels, &cache_folder(), nvidia_library_member, |dir| {
                locate(&[SearchDir {
                    path: dir.to_path_buf(),
                    origin: "",
                }])
                .missing
                .is_empty()
            }) {
                Ok(()) => located = locate(&dirs),
                Err(e) => fetch_failure = Some(e.to_string()),
            }
        }
        if !located.missing.is_empty() {
            return Err(missing_message(&located.missing, &dirs, fetch_failure.as_deref()));
        }
    }
    preload(&located.found)?;
    log::info!(
        "loaded {} CUDA/cuDNN libraries ({})",
        located.found.len(),
        located
            .found
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(located.found.len())
}

/// Loads each library by absolute path, in order; they stay loaded for the process.
///
/// # Errors
/// The first library that does not load, with the loader's reason.
pub fn preload(libraries: &[PathBuf]) -> Result<(), String> {
    for library in libraries {
        ort::util::preload_dylib(library).map_err(|e| format!("loading {}: {e}", library.display()))?;
    }
    Ok(())
}

/// What is missing, where it was looked for, and how to provide it.
pub fn missing_message(missing: &[&str], dirs: &[SearchDir], fetch_failure: Option<&str>) -> String {
    let mut packages: Vec<&str> = missing
        .iter()
        .filter_map(|library| package_of(library))
        .filter_map(|package| {
            NVIDIA_WHEELS
                .iter()
                .copied()
                .find(|w| w.split("==").next() == Some(package))
        })
        .collect();
    packages.dedup();
    let mut origins: Vec<String> = Vec::new();
    for dir in dirs {
        let entry = format!("{} ({})", dir.origin, dir.path.display());
        if !origins.contains(&entry) {
            origins.push(entry);
        }
    }
    let fetch = match fetch_failure {
        Some(why) => format!("; fetching them failed: {why}"),
        None if !wheels::fetching_allowed() => {
            "; tabssl would fetch them itself, but TABSSL_ORT_FETCH=0 disables that".to_string()
        }
        None => String::new(),
    };
    format!(
        "the CUDA execution provider needs {}, found in none of: {}{fetch}. Provide them with \
         `python3 -m pip install {}` (or onnxruntime-gpu[cuda,cudnn]=={}), or add the folder that holds them \
         to LD_LIBRARY_PATH",
        missing.join(", "),
        origins.join(", "),
        packages.join(" "),
        crate::runtime::ORT_VERSION
    )
}

/// The NVIDIA wheel that ships `library`.
fn package_of(library: &str) -> Option<&'static str> {
    let stem = library.strip_prefix("lib").unwrap_or(library);
    [
        ("cudart", "nvidia-cuda-runtime"),
        ("cublas", "nvidia-cublas"),
        ("nvrtc", "nvidia-cuda-nvrtc"),
        ("curand", "nvidia-curand"),
        ("cufft", "nvidia-cufft"),
        ("nvJitLink", "nvidia-nvjitlink"),
        ("cudnn", "nvidia-cudnn-cu13"),
    ]
    .into_iter()
    .find(|(prefix, _)| stem.starts_with(prefix))
    .map(|(_, package)| package)
}

/// The file name of a shared library inside an NVIDIA wheel (`nvidia/<part>/lib/*.so*`,
/// `nvidia/<part>/bin/*.dll`).
fn nvidia_library_member(member: &str) -> Option<&str> {
    let (folder, base) = member.rsplit_once('/')?;
    let library =
        (folder.ends_with("/lib") && base.contains(".so")) || (folder.ends_with("/bin") && base.ends_with(".dll"));
    (member.starts_with("nvidia/") && library).then_some(base)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn touch(dir: &Path, names: &[&str]) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for name in names {
            std::fs::write(dir.join(name), b"not a real library")?;
        }
        Ok(())
    }

    /// A site-packages folder laid out as NVIDIA's CUDA 13 wheels install it.
    fn fake_site_packages(site: &Path) -> std::io::Result<()> {
        touch(&site.join("nvidia/cu13/lib"), CUDA_DYLIBS)?;
        touch(
            &site.join("nvidia/cu13/lib"),
            &["libnvJitLink.so.13", "libnvrtc-builtins.so.13.0"],
        )?;
        touch(&site.join("nvidia/cudnn/lib"), CUDNN_DYLIBS)?;
        touch(&site.join("nvidia/cu13/include"), &["cuda.h"])
    }

    fn dir(path: PathBuf, origin: &'static str) -> SearchDir {
        SearchDir { path, origin }
    }

    #[test]
    fn finds_every_library_in_python_packages_in_load_order() -> TestResult {
        let temp = tempfile::tempdir()?;
        let site = temp.path().join("site-packages");
        fake_site_packages(&site)?;
        let packages = python_package_dirs(&[temp.path().join("elsewhere"), site.clone()]);
        assert_eq!(packages, [site.join("nvidia/cu13/lib"), site.join("nvidia/cudnn/lib")]);
        let dirs: Vec<SearchDir> = packages.into_iter().map(|p| dir(p, "Python package")).collect();
        let located = locate(&dirs);
        assert!(located.missing.is_empty(), "{:?}", located.missing);
        let names: Vec<String> = located
            .found
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        let mut expected = vec!["libnvJitLink.so.13"];
        expected.extend(required_libraries());
        assert_eq!(names, expected);
        assert!(located.found[0].starts_with(site.join("nvidia/cu13/lib")));
        assert!(
            located
                .found
                .last()
                .is_some_and(|p| p.starts_with(site.join("nvidia/cudnn/lib")))
        );
        Ok(())
    }

    #[test]
    fn finds_libraries_in_a_fetched_cache_and_prefers_earlier_folders() -> TestResult {
        let temp = tempfile::tempdir()?;
        // The cache after a fetch: every library of every wheel, flat.
        let cache = temp.path().join("cache/nvidia-cuda-13.0");
        touch(&cache, CUDA_DYLIBS)?;
        touch(&cache, CUDNN_DYLIBS)?;
        let user = temp.path().join("ld");
        touch(&user, &["libcudart.so.13"])?;
        let located = locate(&[dir(user.clone(), "LD_LIBRARY_PATH"), dir(cache.clone(), "tabssl cache")]);
        assert!(located.missing.is_empty());
        assert_eq!(located.found[0], user.join("libcudart.so.13"));
        assert!(located.found[1..].iter().all(|p| p.starts_with(&cache)));
        Ok(())
    }

    #[test]
    fn names_what_is_missing_and_the_wheels_that_provide_it() -> TestResult {
        let temp = tempfile::tempdir()?;
        let lib = temp.path().join("lib");
        touch(&lib, CUDA_DYLIBS)?;
        let dirs = [dir(lib.clone(), "system CUDA")];
        let located = locate(&dirs);
        assert_eq!(located.missing, CUDNN_DYLIBS);
        let message = missing_message(&located.missing, &dirs, Some("pip failed"));
        assert!(
            message.contains("needs libcudnn.so.9, libcudnn_graph.so.9"),
            "{message}"
        );
        assert!(
            message.contains(&format!("system CUDA ({})", lib.display())),
            "{message}"
        );
        assert!(
            message.contains("pip install nvidia-cudnn-cu13==9.14.0.64`"),
            "{message}"
        );
        assert!(message.contains("fetching them failed: pip failed"), "{message}");
        assert!(message.contains("LD_LIBRARY_PATH"), "{message}");
        Ok(())
    }

    #[test]
    fn every_missing_library_maps_to_a_pinned_wheel() {
        for library in required_libraries().chain(DEPENDENCIES_IF_PRESENT.iter().copied()) {
            let package = package_of(library);
            assert!(
                package.is_some_and(|p| NVIDIA_WHEELS.iter().any(|w| w.starts_with(&format!("{p}==")))),
                "{library} -> {package:?}"
            );
        }
    }

    #[test]
    fn a_file_that_is_not_a_library_fails_to_load_with_its_path() -> TestResult {
        let temp = tempfile::tempdir()?;
        touch(temp.path(), &["libcudart.so.13"])?;
        let path = temp.path().join("libcudart.so.13");
        let err = preload(std::slice::from_ref(&path)).err().unwrap_or_default();
        assert!(err.starts_with(&format!("loading {}", path.display())), "{err}");
        Ok(())
    }

    #[test]
    fn picks_shared_libraries_out_of_nvidia_wheels() {
        assert_eq!(
            nvidia_library_member("nvidia/cu13/lib/libcublasLt.so.13"),
            Some("libcublasLt.so.13")
        );
        assert_eq!(
            nvidia_library_member("nvidia/cudnn/lib/libcudnn.so.9"),
            Some("libcudnn.so.9")
        );
        assert_eq!(
            nvidia_library_member("nvidia/cudnn/bin/cudnn64_9.dll"),
            Some("cudnn64_9.dll")
        );
        assert_eq!(nvidia_library_member("nvidia/cu13/include/cublas.h"), None);
        assert_eq!(nvidia_library_member("nvidia_cublas-13.1.0.3.dist-info/RECORD"), None);
    }
}
