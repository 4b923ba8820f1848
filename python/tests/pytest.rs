//! Runs the Python package's pytest suite (`python/tests/test_*.py`) against the extension
//! module this `cargo test` just built: the module and the package's Python files are
//! staged under Cargo's target tmp dir, and the pinned Python packages below are
//! installed there with `python3 -m pip install --target` on first use. With no
//! `python3`, no pip or no package registry the test fails and says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the tests import: the datafusion release of DataFusion 55 and the data libraries
/// the plain functions accept (wheels for CPython 3.11–3.13 on Linux x86_64).
const PACKAGES: [&str; 6] = [
    "datafusion==55.0.0",
    "pyarrow==26.0.1",
    "pandas==3.1.1",
    "polars==2.1.0",
    "numpy==2.4.6",
    "pytest==9.2.0",
];
/// The whole suite takes about a minute; slow CI machines get ten.
const SUITE_TIMEOUT: Duration = Duration::from_secs(600);

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>`: where Cargo put the extension module and the `tabssl` binary.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

fn python_packages() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("py-packages-{}", PACKAGES.join("-")));
    let marker = dir.join(".complete");
    if marker.exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-warn-conflicts",
            "--target",
        ])
        .arg(&dir)
        .args(PACKAGES)
        .status()
        .expect("python3 runs (the Python package's tests need python3 with pip)");
    assert!(
        status.success(),
        "pip could not install {PACKAGES:?}: the Python package's tests need python3 with pip and the package registry"
    );
    std::fs::write(&marker, "").expect("marks the packages complete");
    dir
}

/// The importable package: python/tabssl/*.py and the freshly built `_native` module.
fn stage_package() -> PathBuf {
    let stage = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tabssl-python-stage");
    let package = stage.join("tabssl");
    let _ = std::fs::remove_dir_all(&package);
    std::fs::create_dir_all(&package).expect("creates the stage");
    for entry in std::fs::read_dir(crate_dir().join("tabssl")).expect("python/tabssl") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, package.join(path.file_name().expect("name"))).expect("copies a package file");
    }
    // `cargo test` leaves the cdylib in deps/ (a `cargo build` also copies it up a level).
    let module = profile_dir().join("deps").join("lib_native.so");
    assert!(
        module.exists(),
        "{} is missing: run the tests with `cargo test`, which builds the extension module",
        module.display()
    );
    std::fs::copy(&module, package.join("_native.abi3.so")).expect("copies the extension module");
    stage
}

#[test]
fn the_python_package_passes_its_pytest_suite() {
    let packages = python_packages();
    let stage = stage_package();
    let binary = profile_dir().join("tabssl");
    assert!(
        binary.exists(),
        "{} is missing: run the tests with `cargo test` at the repository root",
        binary.display()
    );
    let repo = crate_dir().parent().expect("repository root").to_path_buf();
    let work = tempfile_dir();
    let mut child = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(crate_dir().join("tests"))
        .env("PYTHONPATH", format!("{}:{}", stage.display(), packages.display()))
        .env("TABSSL_TEST_BIN", &binary)
        .env("TABSSL_TEST_REPO", &repo)
        .env("TABSSL_TEST_TMP", &work)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(&work)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits for pytest") {
            break status;
        }
        if started.elapsed() > SUITE_TIMEOUT {
            let _ = child.kill();
            panic!("the pytest suite ran past {SUITE_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = std::fs::remove_dir_all(&work);
    assert!(
        status.success(),
        "the Python package's pytest suite failed (output above)"
    );
}

/// A fresh working directory for one run of the suite.
fn tempfile_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("pytest-work-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creates the pytest work dir");
    dir
}
