//! The corruption functions given arguments a user can get wrong: an error or a correct
//! result, never a panic and never an invented NULL. A property test calls every function
//! with random argument lists.
//!
//! `PROPTEST_CASES=500 cargo test --test it -- bad_sql` runs the property test longer.

use std::path::Path;
use std::process::{Command, Stdio};

use arrow::array::{Array, RecordBatch};
use datafusion::prelude::{SessionConfig, SessionContext};
use proptest::prelude::*;

use crate::common::{context_with, fixture_models, run};
use crate::stream_bad_input::{assert_clean_exit, wait_bounded};

/// Rows of the table the tests corrupt.
const ROWS: usize = 500;

/// A context with `tabssl_synthetic` rows as table `t` and the marginal file `m.parquet`
/// (age and workclass donors) in `dir`.
async fn setup(dir: &Path) -> SessionContext {
    let ctx = context_with(&fixture_models(), SessionConfig::new());
    run(
        &ctx,
        &format!("CREATE VIEW t AS SELECT * FROM tabssl_synthetic({ROWS}, 1)"),
    )
    .await;
    let copy = |select: &str, file: &str| {
        format!(
            "COPY (SELECT {select} FROM t) TO '{}' STORED AS PARQUET",
            dir.join(file).display()
        )
    };
    run(
        &ctx,
        &copy(
            "marginal_sample(age, id) AS age, marginal_sample(workclass, id) AS workclass",
            "m.parquet",
        ),
    )
    .await;
    ctx
}

#[test]
fn a_marginal_path_that_is_a_fifo_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("m.parquet");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    let sql = format!(
        "SELECT corrupt_swap(age, '{}', 0.5, 42, id) FROM tabssl_synthetic(10)",
        fifo.display()
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_tabssl"))
        .args(["sql", "-c", &sql])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let err = crate::stream::drain(child.stderr.take().expect("stderr"));
    let status = wait_bounded(&mut child, "a FIFO marginal");
    let stderr = String::from_utf8_lossy(&err.join().expect("stderr")).into_owned();
    assert_clean_exit(status, &stderr, "FIFO");
    assert!(stderr.contains("is not a regular file"), "{stderr}");
}

/// Calls of every corruption function with arguments drawn from good and bad values:
/// (function, call, its `x` argument).
fn call(marginal: String) -> impl Strategy<Value = (String, String, String)> {
    let x = prop::sample::select(vec![
        "age",
        "workclass",
        "CAST(age AS DOUBLE)",
        "CAST(age AS TINYINT)",
        "NULL",
        "make_array(1, 2)",
        "CAST(workclass AS BYTEA)",
    ]);
    let p = prop::sample::select(vec![
        "0.3",
        "0",
        "1",
        "-1",
        "2",
        "'x'",
        "NULL",
        "age",
        "CAST('NaN' AS DOUBLE)",
    ]);
    let seed = prop::sample::select(vec![
        "42",
        "0",
        "-1",
        "1.5",
        "'s'",
        "NULL",
        "age",
        "18446744073709551615",
    ]);
    let key = prop::sample::select(vec!["id", "workclass", "NULL", "1.5", "'k'", "make_array(1)"]);
    let view = prop::sample::select(vec![
        "",
        ", 0",
        ", -1",
        ", id",
        ", 'v'",
        ", NULL",
        ", 18446744073709551615",
    ]);
    let missing = format!("'{marginal}.missing'");
    let marginal = format!("'{marginal}'");
    let method = prop::sample::select(vec![
        ("corrupt_mask".to_string(), String::new()),
        ("corrupt_swap".to_string(), format!("{marginal}, ")),
        ("corrupt_swap".to_string(), format!("{missing}, ")),
        ("corrupt_swap".to_string(), "42, ".to_string()),
        ("corrupt_swap_batch".to_string(), String::new()),
        ("corrupt_noise".to_string(), "0.1, ".to_string()),
        ("corrupt_noise".to_string(), "-1, ".to_string()),
        ("corrupt_noise".to_string(), "CAST('inf' AS DOUBLE), ".to_string()),
        ("corrupt_fill".to_string(), "0, ".to_string()),
        ("corrupt_fill".to_string(), "NULL, ".to_string()),
        ("corrupt_fill".to_string(), "'abc', ".to_string()),
        ("corrupt_fill".to_string(), "1e300, ".to_string()),
    ]);
    (method, x, p, seed, key, view).prop_map(|((function, params), x, p, seed, key, view)| {
        let call = format!("{function}({x}, {params}{p}, {seed}, {key}{view})");
        (function, call, x.to_string())
    })
}

/// Checks a successful result: every row is there, and a value never became NULL unless
/// the function blanks cells on purpose.
fn check_result(function: &str, call: &str, batches: &[RecordBatch]) -> Result<(), TestCaseError> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    prop_assert_eq!(rows, ROWS, "{}", call);
    let blanks = function == "corrupt_fill" && call.contains("NULL, ");
    for batch in batches {
        let (out, x) = (batch.column(0), batch.column(1));
        for row in 0..batch.num_rows() {
            if x.is_valid(row) && !blanks {
                prop_assert!(out.is_valid(row), "{} made row {} NULL", call, row);
            }
            if x.is_null(row) {
                prop_assert!(out.is_null(row), "{} filled a NULL at row {}", call, row);
            }
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64)
}

#[test]
fn any_corruption_call_is_an_error_or_a_correct_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let ctx = runtime.block_on(setup(dir.path()));
    let marginal = dir.path().join("m.parquet").display().to_string();
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |((function, call, x) in call(marginal.clone()))| {
        let sql = format!("SELECT {call} AS out, {x} AS x FROM t");
        let result = runtime.block_on(async {
            match ctx.sql(&sql).await {
                Ok(df) => df.collect().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        });
        match result {
            Ok(batches) => check_result(&function, &call, &batches)?,
            Err(error) => prop_assert!(!error.is_empty(), "{}: an empty error", call),
        }
    });
}
