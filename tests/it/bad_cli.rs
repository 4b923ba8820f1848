//! The commands given bad arguments, bad inputs and bad outputs: each ends with a clear
//! error (status 1) or succeeds, never a panic, an abort or a hang; nothing appears under
//! an output name unless it is complete; a closed standard output ends a command quietly.
//! Property tests run `export` and `pretrain` over a space of extreme arguments.
//!
//! `PROPTEST_CASES=200 cargo test --test it -- bad_cli` runs the property tests longer.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use proptest::prelude::*;

use crate::stream_bad_input::{assert_clean_exit, wait_bounded};

/// Runs `tabssl args` with stdout to `stdout`: (status, stdout, stderr).
fn tabssl_with(args: &[&str], stdout: Stdio) -> (ExitStatus, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tabssl"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("tabssl starts");
    let out = child.stdout.take().map(crate::stream::drain);
    let err = crate::stream::drain(child.stderr.take().expect("stderr"));
    let status = wait_bounded(&mut child, &format!("tabssl {args:?}"));
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    let stderr = text(err.join().expect("stderr"));
    assert_clean_exit(status, &stderr, &format!("{args:?}"));
    (
        status,
        out.map(|o| text(o.join().expect("stdout"))).unwrap_or_default(),
        stderr,
    )
}

fn tabssl(args: &[&str]) -> (ExitStatus, String, String) {
    tabssl_with(args, Stdio::piped())
}

/// Runs a command expected to fail and checks its message.
fn refused(args: &[&str], expected: &str) {
    let (status, _, stderr) = tabssl(args);
    assert!(!status.success(), "{args:?} must fail");
    assert!(
        stderr.contains(expected),
        "{args:?}: expected {expected:?} in\n{stderr}"
    );
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("lists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn pretrain_refuses_columns_it_cannot_use_instead_of_dropping_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flags = dir.path().join("flags.csv");
    std::fs::write(&flags, "a,b,flag\n1,x,true\n2,y,false\n3,x,true\n").expect("csv");
    let out = path(&dir.path().join("m.onnx"));
    refused(
        &["pretrain", "--input", &path(&flags), "--output", &out, "--epochs", "1"],
        "column 'flag' has type Boolean",
    );
    let nulls = dir.path().join("nulls.csv");
    std::fs::write(&nulls, "a,b,c\n1,x,?\n2,y,?\n3,x,?\n").expect("csv");
    refused(
        &[
            "pretrain",
            "--input",
            &path(&nulls),
            "--null-regex",
            "\\?",
            "--output",
            &out,
            "--epochs",
            "1",
        ],
        "column 'c' is NULL in every row",
    );
    assert_eq!(listing(dir.path()), ["flags.csv", "nulls.csv"], "nothing was written");
}

#[test]
fn absurd_network_and_bench_sizes_are_limit_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = path(&dir.path().join("m.onnx"));
    let base = [
        "pretrain",
        "--input",
        "synthetic:50:1",
        "--exclude",
        "id,class",
        "--output",
        &out,
    ];
    for (flag, value) in [
        ("--hidden", "100000000000"),
        ("--dim", "1000000000"),
        ("--batch-size", "1000000000000"),
    ] {
        let mut args = base.to_vec();
        args.extend([flag, value, "--epochs", "1"]);
        let (status, _, stderr) = tabssl(&args);
        if flag == "--batch-size" {
            // A batch larger than the table is the table: nothing absurd is allocated.
            assert!(status.success(), "{stderr}");
            continue;
        }
        assert!(!status.success(), "{flag} {value}");
        assert!(stderr.contains("raise --max-tensor-elements"), "{flag}: {stderr}");
    }
    let models = path(&crate::common::repo().join("models"));
    refused(
        &["bench", "--models", &models, "--rows", "100000000000"],
        "use fewer --rows",
    );
}

#[test]
fn outputs_that_are_directories_or_the_manifest_are_refused_before_any_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model_dir = dir.path().join("m.onnx");
    std::fs::create_dir(&model_dir).expect("mkdir");
    let pretrain = |output: &Path| {
        vec![
            "pretrain".to_string(),
            "--input".into(),
            "synthetic:50:1".into(),
            "--exclude".into(),
            "id,class".into(),
            "--epochs".into(),
            "1".into(),
            "--output".into(),
            path(output),
        ]
    };
    let args = pretrain(&model_dir);
    refused(&args.iter().map(String::as_str).collect::<Vec<_>>(), "is a directory");
    let args = pretrain(&dir.path().join("m2.json"));
    refused(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "must end in .onnx",
    );
    let export_dir = dir.path().join("o.parquet");
    std::fs::create_dir(&export_dir).expect("mkdir");
    refused(
        &["export", "--input", "synthetic:50:1", "--output", &path(&export_dir)],
        "is a directory",
    );
    assert_eq!(
        listing(dir.path()),
        ["m.onnx", "o.parquet"],
        "no manifest, no temporary file"
    );
    assert!(listing(&export_dir).is_empty());
}

#[test]
fn bad_values_and_inputs_are_named_before_the_first_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = path(&dir.path().join("o.parquet"));
    for (flag, value) in [
        ("--noise-std", "NaN"),
        ("--noise-std", "-1"),
        ("--views", "0"),
        ("--capacity", "0"),
    ] {
        let setting = format!("{flag}={value}");
        let (status, _, stderr) = tabssl(&[
            "export",
            "--input",
            "synthetic:50:1",
            "--method",
            "noise",
            "--output",
            &out,
            &setting,
        ]);
        assert!(!status.success(), "{flag} {value}");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
    }
    let twice = dir.path().join("twice.csv");
    std::fs::write(&twice, "id,x,x\n1,2,3\n").expect("csv");
    refused(
        &["export", "--input", &path(&twice), "--output", &out],
        "names column \"x\" twice (columns 2 and 3)",
    );
    let header_only = dir.path().join("header.csv");
    std::fs::write(&header_only, "id,x,y\n").expect("csv");
    refused(
        &["export", "--input", &path(&header_only), "--output", &out],
        "has no rows",
    );
    let model = path(&dir.path().join("m.onnx"));
    refused(
        &["pretrain", "--input", &path(&header_only), "--output", &model],
        "has no rows",
    );
    assert_eq!(listing(dir.path()), ["header.csv", "twice.csv"]);
}

#[test]
fn evaluate_with_one_labelled_row_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    refused(
        &[
            "evaluate",
            "--train",
            "synthetic:1:1",
            "--test",
            "synthetic:200:2",
            "--output",
            &path(dir.path()),
        ],
        "needs at least 2",
    );
}

#[test]
fn a_full_or_closed_standard_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = path(&dir.path().join("m.onnx"));
    let pretrain = [
        "pretrain",
        "--input",
        "synthetic:60:1",
        "--exclude",
        "id,class",
        "--epochs",
        "1",
        "--output",
        &model,
    ];
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let (status, _, stderr) = tabssl_with(&pretrain, Stdio::from(full));
    assert!(!status.success(), "a full disk is an error");
    assert!(stderr.contains("cannot write to standard output"), "{stderr}");

    // A reader that stops reading: `tabssl sql ... | head -c 1`.
    let mut child = Command::new(env!("CARGO_BIN_EXE_tabssl"))
        .args(["sql", "--format", "csv", "-c", "SELECT * FROM tabssl_synthetic(300000)"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let err = crate::stream::drain(child.stderr.take().expect("stderr"));
    let mut out = child.stdout.take().expect("stdout");
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut out, &mut first).expect("a first byte");
    drop(out);
    let status = wait_bounded(&mut child, "sql into a closed pipe");
    let stderr = String::from_utf8_lossy(&err.join().expect("stderr")).into_owned();
    assert_clean_exit(status, &stderr, "closed pipe");
    assert!(status.success(), "{stderr}");
    assert_eq!(stderr, "", "ends quietly");
}

/// Values for one flag: usually a good one, now and then an extreme or invalid one, so
/// that runs get past the argument checks as well as into them.
fn number(good: &'static [&'static str], bad: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    prop_oneof![9 => prop::sample::select(good), 1 => prop::sample::select(bad)]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10)
}

/// Checks a finished export or pretrain run: success leaves the files, failure leaves
/// nothing at all.
fn check_outputs(dir: &Path, success: bool, expected: &[&str], stderr: &str) -> Result<(), TestCaseError> {
    let names = listing(dir);
    if success {
        for name in expected {
            prop_assert!(
                names.iter().any(|n| n == name),
                "{} missing from {:?}\n{}",
                name,
                names,
                stderr
            );
        }
        prop_assert!(
            names.iter().all(|n| !n.starts_with('.')),
            "a temporary file is left: {:?}",
            names
        );
    } else {
        prop_assert!(names.is_empty(), "a failed run left {:?}\n{}", names, stderr);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn export_arguments(
        method in prop::sample::select(vec!["vime", "scarf", "dae", "noise", "blank"]),
        p in number(&["0", "0.3", "1"], &["-0.1", "1.5", "NaN", "inf"]),
        views in number(&["1", "3"], &["0", "10001", "4294967295"]),
        capacity in number(&["1", "100", "100000"], &["0", "50000001"]),
        noise_std in number(&["0", "0.1"], &["-1", "NaN", "1e308"]),
        seed in number(&["0", "7"], &["18446744073709551615"]),
        batch_size in number(&["1", "7", "8192"], &["0"]),
        fill in prop_oneof![9 => prop::sample::select(vec![None, Some("0")]), 1 => prop::sample::select(vec![Some("abc"), Some("")])],
        columns in prop_oneof![9 => prop::sample::select(vec![None, Some("age,workclass")]), 1 => prop::sample::select(vec![Some("nope"), Some("")])],
        key in prop_oneof![9 => prop::sample::select(vec![None, Some("id"), Some("class")]), 1 => Just(Some("nope"))],
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = path(&dir.path().join("o.parquet"));
        let numbers = [
            format!("--p={p}"), format!("--views={views}"), format!("--capacity={capacity}"),
            format!("--noise-std={noise_std}"), format!("--seed={seed}"), format!("--batch-size={batch_size}"),
        ];
        let mut args = vec!["export", "--input", "synthetic:40:1", "--output", &output, "--method", method];
        args.extend(numbers.iter().map(String::as_str));
        let fill = fill.map(|fill| format!("--fill={fill}"));
        if let Some(fill) = &fill {
            args.push(fill);
        }
        if let Some(columns) = columns {
            args.extend(["--columns", columns]);
        }
        if let Some(key) = key {
            args.extend(["--key", key]);
        }
        let (status, _, stderr) = tabssl(&args);
        let mut expected = vec!["o.parquet"];
        if method != "blank" {
            expected.push("o.marginals.parquet");
        }
        check_outputs(dir.path(), status.success(), &expected, &stderr)?;
    }

    #[test]
    fn pretrain_arguments(
        method in prop::sample::select(vec!["vime", "scarf", "dae"]),
        p in number(&["0", "0.3", "1"], &["1.5", "NaN"]),
        hidden in number(&["1", "8"], &["0", "100000000000"]),
        dim in number(&["1", "4"], &["0", "1000000000"]),
        epochs in number(&["1", "2"], &["0"]),
        batch_size in number(&["1", "16", "1000000000000"], &["0"]),
        lr in number(&["0.001", "0.1"], &["0", "-1", "NaN", "1e30"]),
        validation in number(&["0", "0.1", "0.49"], &["0.5", "NaN"]),
        vocabulary in number(&["1", "64", "1000000000000"], &["0"]),
        temperature in number(&["1", "0.5"], &["0", "NaN"]),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = path(&dir.path().join("m.onnx"));
        let numbers = [
            format!("--p={p}"), format!("--hidden={hidden}"), format!("--dim={dim}"), format!("--epochs={epochs}"),
            format!("--batch-size={batch_size}"), format!("--lr={lr}"), format!("--validation={validation}"),
            format!("--max-vocab={vocabulary}"), format!("--min-count={vocabulary}"),
            format!("--temperature={temperature}"),
        ];
        let mut args = vec!["pretrain", "--input", "synthetic:40:1", "--exclude", "id,class", "--output", &output, "--method", method];
        args.extend(numbers.iter().map(String::as_str));
        let (status, _, stderr) = tabssl(&args);
        check_outputs(dir.path(), status.success(), &["m.onnx", "m.json"], &stderr)?;
    }
}

#[test]
fn serve_refuses_an_unsafe_or_impossible_setup_before_listening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(&tokens, "t0ken\n").expect("tokens");
    let tokens = tokens.to_str().expect("utf-8");
    let file = dir.path().join("file");
    std::fs::write(&file, "x").expect("file");
    let file = file.to_str().expect("utf-8");
    refused(&["serve", "--listen", "0.0.0.0:0"], "needs bearer tokens");
    refused(&["serve", "--listen", "0.0.0.0:0", "--token-file", tokens], "needs TLS");
    refused(
        &["serve", "--listen", "127.0.0.1:0", "--data-root", file],
        "not a directory",
    );
    refused(
        &["serve", "--listen", "127.0.0.1:0", "--data-root", "/no/such/dir"],
        "data root /no/such/dir",
    );
    refused(
        &["serve", "--listen", "127.0.0.1:0", "--max-concurrent-queries", "0"],
        "--max-concurrent-queries must be positive",
    );
    refused(
        &["serve", "--listen", "127.0.0.1:0", "--query-timeout=-1"],
        "--query-timeout -1",
    );
    refused(&["serve", "--listen", "127.0.0.1:0", "--tls-cert", file], "--tls-key");
    refused(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            file,
            "--tls-key",
            file,
        ],
        "TLS certificate or key",
    );
    refused(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--token-file",
            file,
            "--sql-file",
            "/no/such.sql",
        ],
        "/no/such.sql",
    );
}

#[test]
fn worker_and_worker_lists_are_checked_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file");
    std::fs::write(&file, "x").expect("file");
    let file = file.to_str().expect("utf-8");
    refused(&["worker", "--listen", "0.0.0.0:0"], "needs --data-root");
    refused(
        &["worker", "--listen", "127.0.0.1:0", "--data-root", file],
        "not a directory",
    );
    refused(&["worker", "--listen", "127.0.0.1:0", "--cores", "0"], "--cores");
    refused(
        &["sql", "--workers", "https://h:1", "-c", "SELECT 1"],
        "TLS between coordinator and workers",
    );
    refused(&["sql", "--workers", ",", "-c", "SELECT 1"], "the worker list is empty");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binds")
        .local_addr()
        .expect("address");
    refused(
        &["sql", "--workers", &closed.to_string(), "-c", "SELECT 1"],
        &format!("worker http://{closed}/ is unreachable"),
    );
    refused(
        &[
            "export",
            "--workers",
            &closed.to_string(),
            "--input",
            "synthetic:10",
            "--output",
            "/tmp/x.parquet",
        ],
        "unreachable",
    );
}
