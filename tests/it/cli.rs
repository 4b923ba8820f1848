//! The `tabssl` binary as a user runs it.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{adult_table_sql, fixture_models, repo};

fn tabssl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tabssl"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("tabssl runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "tabssl failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

#[test]
fn runs_a_file_of_statements_including_set_and_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parquet = dir.path().join("embedded.parquet");
    let script = dir.path().join("job.sql");
    std::fs::write(
        &script,
        format!(
            "{adult};\n\
             SET datafusion.execution.batch_size = 1000;\n\
             SET tabssl.provider = 'cpu';\n\
             COPY (SELECT age, embed('percol', age, \"education-num\", workclass, sex) AS e FROM adult)\n\
               TO '{out}' STORED AS PARQUET;\n\
             SELECT count(*) AS n, count(e) AS embedded FROM '{out}';\n",
            adult = adult_table_sql("adult"),
            out = parquet.display()
        ),
    )
    .expect("write script");
    let models = fixture_models();
    let out = stdout(&tabssl(&[
        "sql",
        "-f",
        script.to_str().expect("utf-8 path"),
        "--models",
        models.to_str().expect("utf-8 path"),
        "--format",
        "csv",
    ]));
    assert!(out.contains("count\n32561\n"), "COPY reports its row count: {out}");
    assert!(out.contains("n,embedded\n32561,30725\n"), "{out}");
    assert!(parquet.is_file());
}

#[test]
fn formats_results_as_csv_json_and_ndjson() {
    let models = fixture_models();
    let sql = "SELECT 1 AS id, embed('percol', 30.0, 13, 'Private', 'Male') AS e";
    let base = [
        "sql",
        "-c",
        sql,
        "--models",
        models.to_str().expect("utf-8 path"),
        "--format",
    ];
    let csv = stdout(&tabssl(&[&base[..], &["csv"]].concat()));
    assert!(csv.starts_with("id,e\n1,\"["), "{csv}");
    let json = stdout(&tabssl(&[&base[..], &["json"]].concat()));
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(parsed[0]["e"].as_array().map(Vec::len), Some(4), "{json}");
    let ndjson = stdout(&tabssl(&[&base[..], &["ndjson"]].concat()));
    let line: serde_json::Value = serde_json::from_str(ndjson.trim()).expect("one JSON object");
    assert_eq!(line["id"], 1);
    let table = stdout(&tabssl(&[&base[..], &["table"]].concat()));
    assert!(table.contains("| id |"), "{table}");
    // Several batches, and none: still one JSON array.
    for (rows, expected) in [(20_000, 20_000), (0, 0)] {
        let sql = format!("SELECT id FROM tabssl_synthetic({rows})");
        let json = stdout(&tabssl(&["sql", "-c", &sql, "--format", "json"]));
        let parsed: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(parsed.as_array().map(Vec::len), Some(expected), "{rows} rows");
    }
}

#[test]
fn lists_models() {
    let models = fixture_models();
    let out = stdout(&tabssl(&[
        "models",
        "--models",
        models.to_str().expect("utf-8 path"),
        "--format",
        "csv",
    ]));
    for name in ["income_head", "mlp_batch4", "mlp_packed", "percol"] {
        assert!(out.contains(&format!("\n{name},")), "{name} missing from {out}");
    }
    assert!(out.contains("percol,per_column,"), "{out}");
}

#[test]
fn errors_go_to_stderr_with_a_failing_exit_code() {
    let output = tabssl(&[
        "sql",
        "-c",
        "SELECT embed('nope', 1)",
        "--models",
        "tests/fixtures/models",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Error:") && stderr.contains("available models"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn models_dir_comes_from_the_environment_when_no_flag_is_given() {
    let output = Command::new(env!("CARGO_BIN_EXE_tabssl"))
        .args([
            "sql",
            "-c",
            "SELECT name FROM tabssl_models() ORDER BY name",
            "--format",
            "csv",
        ])
        .env("TABSSL_MODELS", fixture_models())
        .current_dir(repo())
        .output()
        .expect("tabssl runs");
    assert_eq!(stdout(&output), "name\nincome_head\nmlp_batch4\nmlp_packed\npercol\n");
}

fn without_runtime(cache: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tabssl"));
    command
        .args([
            "sql",
            "-c",
            "SELECT embed('mlp_packed', 1, 2, 3, 4, 5, 6)",
            "--models",
            "tests/fixtures/models",
        ])
        .current_dir(repo())
        .env_remove("ORT_DYLIB_PATH")
        .env("TABSSL_CACHE_DIR", cache)
        .env("TABSSL_ORT_FETCH", "0")
        .env("TABSSL_PYTHON", "/nonexistent/python3");
    command
}

#[test]
fn missing_runtime_error_says_what_was_tried() {
    let cache = tempfile::tempdir().expect("tempdir");
    let output = without_runtime(cache.path()).output().expect("tabssl runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "ORT_DYLIB_PATH: not set",
        "cache",
        "installed Python package",
        "TABSSL_ORT_FETCH=0",
        "fix:",
    ] {
        assert!(stderr.contains(expected), "{expected:?} missing from: {stderr}");
    }
    let output = without_runtime(cache.path())
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .expect("tabssl runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ORT_DYLIB_PATH is set to /nonexistent/libonnxruntime.so but no such file"),
        "{stderr}"
    );
}
