//! Rolling a model out without a restart: a model replaced in the registry (written under a
//! temporary name, then renamed in) is used by the queries planned after the change, a
//! query already planned finishes with the version it was planned with, a replacement that
//! does not load leaves the last good version serving (and says why in `tabssl_models()`),
//! a running `tabssl stream` (one query) keeps its version to its end, and a deleted model
//! fails new queries with a clear error. Every output names the version that made it.

use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Float32Type;
use datafusion::prelude::SessionContext;
use tabssl::onnx::{Dim, ElemType, GraphBuilder};

use crate::common::{context, error_of, run};

/// The bytes of model `scale`: `y = x * factor`, `x` a `[N, 2]` float32 input.
pub fn scale_model(factor: f32) -> Vec<u8> {
    let mut g = GraphBuilder::new();
    let x = g.input("x", ElemType::Float, vec![Dim::Named("N".into()), Dim::Fixed(2)]);
    let factor = g.constant_f32("factor", vec![], vec![factor]);
    let y = g.op("Mul", &[&x, &factor], Vec::new());
    g.rename(&y, "y");
    g.output("y", ElemType::Float, vec![Dim::Named("N".into()), Dim::Fixed(2)]);
    g.into_model("scale", Vec::new()).encode()
}

/// Replaces `name` in the registry the way the roll-out recipe says: written beside it
/// under a temporary name, then renamed over it.
pub fn roll_out(dir: &Path, name: &str, bytes: &[u8]) {
    let staged = dir.join(format!(".{name}.staged"));
    std::fs::write(&staged, bytes).expect("staged model written");
    std::fs::rename(&staged, dir.join(name)).expect("model renamed in");
}

/// The first embedding value of every row of `batches`.
fn first_values(batches: &[RecordBatch]) -> Vec<f32> {
    batches
        .iter()
        .flat_map(|batch| {
            let list = batch.column(0).as_fixed_size_list();
            (0..list.len())
                .map(|row| list.value(row).as_primitive::<Float32Type>().value(0))
                .collect::<Vec<_>>()
        })
        .collect()
}

const QUERY: &str = "SELECT embed('scale', CAST(value AS FLOAT), 1.0) FROM generate_series(1, 3)";

async fn embedded(ctx: &SessionContext) -> Vec<f32> {
    first_values(&run(ctx, QUERY).await)
}

/// `(sha256, error)` of `scale` in `tabssl_models()`.
async fn listing(ctx: &SessionContext) -> (Option<String>, Option<String>) {
    let batches = run(ctx, "SELECT sha256, error FROM tabssl_models() WHERE name = 'scale'").await;
    let text = |column: usize| {
        let array = batches[0].column(column).as_string::<i32>();
        array.is_valid(0).then(|| array.value(0).to_string())
    };
    (text(0), text(1))
}

#[tokio::test]
async fn a_planned_query_keeps_its_version_and_the_next_query_gets_the_new_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    roll_out(dir.path(), "scale.onnx", &scale_model(1.0));
    let ctx = context(dir.path());
    assert_eq!(embedded(&ctx).await, [1.0, 2.0, 3.0]);
    let (old_hash, error) = listing(&ctx).await;
    assert_eq!(error, None);

    // Planned (the model pinned to its content), then the file is replaced, then run.
    let planned = ctx
        .sql(QUERY)
        .await
        .expect("planned")
        .create_physical_plan()
        .await
        .expect("physical plan");
    roll_out(dir.path(), "scale.onnx", &scale_model(10.0));
    let running = datafusion::physical_plan::collect(planned, ctx.task_ctx())
        .await
        .expect("a planned query outlives the replacement of its model");
    assert_eq!(
        first_values(&running),
        [1.0, 2.0, 3.0],
        "the version it was planned with"
    );

    assert_eq!(
        embedded(&ctx).await,
        [10.0, 20.0, 30.0],
        "the next query gets the new version"
    );
    let (new_hash, error) = listing(&ctx).await;
    assert_eq!(error, None);
    assert!(
        new_hash.is_some() && new_hash != old_hash,
        "{old_hash:?} → {new_hash:?}"
    );
}

#[tokio::test]
async fn a_broken_replacement_is_refused_while_the_last_good_version_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    roll_out(dir.path(), "scale.onnx", &scale_model(2.0));
    let ctx = context(dir.path());
    assert_eq!(embedded(&ctx).await, [2.0, 4.0, 6.0]);
    let (good_hash, _) = listing(&ctx).await;

    let good = scale_model(3.0);
    let broken: [(&str, &str, Vec<u8>, &str); 3] = [
        (
            "a manifest that disagrees with the graph",
            "scale.json",
            br#"{"output": {"width": 16}}"#.to_vec(),
            "width 16",
        ),
        (
            "truncated",
            "scale.onnx",
            good[..good.len() / 2].to_vec(),
            "ONNX Runtime cannot load it",
        ),
        (
            "not ONNX",
            "scale.onnx",
            b"these are not the bytes of a model".to_vec(),
            "ONNX Runtime cannot load it",
        ),
    ];
    for (what, file, bytes, reason) in broken {
        roll_out(dir.path(), file, &bytes);
        assert_eq!(
            embedded(&ctx).await,
            [2.0, 4.0, 6.0],
            "{what}: the last good version serves"
        );
        let (hash, error) = listing(&ctx).await;
        assert_eq!(hash, good_hash, "{what}: tabssl_models() lists the version that serves");
        let error = error.unwrap_or_default();
        assert!(error.contains("refused") && error.contains(reason), "{what}: {error}");
        if file == "scale.json" {
            std::fs::remove_file(dir.path().join(file)).expect("manifest removed");
        }
    }

    roll_out(dir.path(), "scale.onnx", &good);
    assert_eq!(embedded(&ctx).await, [3.0, 6.0, 9.0], "a good replacement loads");
    assert_eq!(listing(&ctx).await.1, None, "and clears the refusal");

    std::fs::remove_file(dir.path().join("scale.onnx")).expect("model deleted");
    let error = error_of(&ctx, QUERY).await;
    assert!(
        error.contains("scale"),
        "a deleted model fails new queries, naming it: {error}"
    );
}

/// The text values of `sql`'s first column (one batch).
async fn metadata_of(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let batches = run(ctx, sql).await;
    let column = arrow::compute::cast(batches[0].column(0), &arrow::datatypes::DataType::Utf8).expect("text");
    let column = column.as_string::<i32>();
    (0..column.len()).map(|row| column.value(row).to_string()).collect()
}

#[tokio::test]
async fn every_embedding_names_its_model_version_in_sql_and_in_parquet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = dir.path().join("lake");
    std::fs::create_dir(&lake).expect("lake directory");
    roll_out(dir.path(), "scale.onnx", &scale_model(1.0));
    let ctx = context(dir.path());
    let (first_hash, _) = listing(&ctx).await;

    let batches = run(&ctx, &QUERY.replace("FROM", "AS e FROM")).await;
    let field = batches[0].schema().field(0).clone();
    assert_eq!(field.metadata().get("tabssl.model").map(String::as_str), Some("scale"));
    assert_eq!(field.metadata().get("tabssl.model.sha256"), first_hash.as_ref());

    let copy = |file: &str| {
        format!(
            "COPY (SELECT value, embed('scale', CAST(value AS FLOAT), 1.0) AS e FROM generate_series(1, 3)) TO '{}'",
            lake.join(file).display()
        )
    };
    run(&ctx, &copy("v1.parquet")).await;
    roll_out(dir.path(), "scale.onnx", &scale_model(5.0));
    run(&ctx, &copy("v2.parquet")).await;
    let (second_hash, _) = listing(&ctx).await;
    assert_ne!(first_hash, second_hash);

    run(&ctx, "SET datafusion.execution.parquet.skip_metadata = false").await;
    for (table, hash) in [("v1", &first_hash), ("v2", &second_hash)] {
        let location = lake.join(format!("{table}.parquet"));
        run(
            &ctx,
            &format!(
                "CREATE EXTERNAL TABLE {table} STORED AS PARQUET LOCATION '{}'",
                location.display()
            ),
        )
        .await;
        let sql = format!("SELECT arrow_metadata(e, 'tabssl.model.sha256') FROM {table}");
        assert_eq!(
            metadata_of(&ctx, &sql).await,
            vec![hash.clone().expect("hash"); 3],
            "{table}"
        );
    }
    // Read as one table, files of two versions disagree on the field's metadata.
    let lake_table = format!(
        "CREATE EXTERNAL TABLE lake STORED AS PARQUET LOCATION '{}/'",
        lake.display()
    );
    let error = error_of(&ctx, &lake_table).await;
    assert!(error.contains("conflicting metadata"), "{error}");

    // For readers that drop or merge field metadata: the hash as an ordinary column.
    let lineage = dir.path().join("lineage");
    std::fs::create_dir(&lineage).expect("lineage directory");
    let copy_with_column = |file: &str| {
        format!(
            "COPY (SELECT value, e, arrow_metadata(e, 'tabssl.model.sha256') AS e_model FROM \
             (SELECT value, embed('scale', CAST(value AS FLOAT), 1.0) AS e FROM generate_series(1, 3))) TO '{}'",
            lineage.join(file).display()
        )
    };
    run(&ctx, &copy_with_column("v2.parquet")).await;
    roll_out(dir.path(), "scale.onnx", &scale_model(7.0));
    run(&ctx, &copy_with_column("v3.parquet")).await;
    let (third_hash, _) = listing(&ctx).await;
    run(&ctx, "SET datafusion.execution.parquet.skip_metadata = true").await;
    run(
        &ctx,
        &format!(
            "CREATE EXTERNAL TABLE lineage STORED AS PARQUET LOCATION '{}/'",
            lineage.display()
        ),
    )
    .await;
    let sql = "SELECT e_model || ':' || CAST(count(*) AS VARCHAR) || ':' || CAST(sum(e[1]) AS VARCHAR) \
               FROM lineage GROUP BY e_model ORDER BY min(e[1])";
    let expected = [
        format!("{}:3:30.0", second_hash.expect("hash")),
        format!("{}:3:42.0", third_hash.expect("hash")),
    ];
    assert_eq!(
        metadata_of(&ctx, sql).await,
        expected,
        "rows of each version, told apart by the column"
    );
}

/// Reads NDJSON lines from the stream's stdout until `count` rows came; returns each row's
/// `x` and first embedding value.
fn read_rows(lines: &mut impl Iterator<Item = std::io::Result<String>>, count: usize) -> Vec<(f64, f64)> {
    (0..count)
        .map(|_| {
            let line = lines.next().expect("a row").expect("a line");
            let row: serde_json::Value = serde_json::from_str(&line).expect("NDJSON");
            (row["x"].as_f64().expect("x"), row["e"][0].as_f64().expect("e[0]"))
        })
        .collect()
}

#[test]
fn a_running_stream_keeps_its_version_through_good_and_broken_replacements() {
    use std::io::{BufRead, Write};
    let dir = tempfile::tempdir().expect("tempdir");
    roll_out(dir.path(), "scale.onnx", &scale_model(1.0));
    let schema = dir.path().join("schema.json");
    std::fs::write(&schema, r#"{"fields": [{"name": "x", "type": "Float64"}]}"#).expect("schema");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tabssl"))
        .args(["stream", "--models", &dir.path().display().to_string()])
        .args(["--schema", &schema.display().to_string(), "--batch-ms", "20"])
        .args([
            "--sql",
            "SELECT x, embed('scale', CAST(x AS FLOAT), 1.0) AS e FROM input",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tabssl stream starts");
    // A stream that stops answering is killed, so the reads below end instead of hanging.
    let (finished, watch) = std::sync::mpsc::channel::<()>();
    let pid = child.id().to_string();
    let watchdog = std::thread::spawn(move || {
        if watch.recv_timeout(std::time::Duration::from_secs(60)).is_err() {
            let _ = std::process::Command::new("kill").args(["-9", &pid]).status();
        }
    });
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut send = |from: usize| {
        let text: String = (from..from + 5).map(|x| format!("{{\"x\": {x}}}\n")).collect();
        stdin.write_all(text.as_bytes()).expect("written");
        stdin.flush().expect("flushed");
    };
    let mut rows = Vec::new();
    send(1);
    rows.extend(read_rows(&mut lines, 5));
    roll_out(dir.path(), "scale.onnx", &scale_model(10.0));
    send(6);
    rows.extend(read_rows(&mut lines, 5));
    roll_out(dir.path(), "scale.onnx", b"garbage");
    send(11);
    rows.extend(read_rows(&mut lines, 5));
    drop(stdin);
    let output = child.wait_with_output().expect("the stream ends");
    let _ = finished.send(());
    watchdog.join().expect("watchdog");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let expected: Vec<(f64, f64)> = (1..=15).map(|x| (f64::from(x), f64::from(x))).collect();
    assert_eq!(
        rows, expected,
        "every row embedded by the version the stream started with"
    );
}

#[tokio::test]
async fn a_plan_pinned_to_the_version_just_replaced_still_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    roll_out(dir.path(), "scale.onnx", &scale_model(1.0));
    let ctx = context(dir.path());
    assert_eq!(embedded(&ctx).await, [1.0, 2.0, 3.0]);
    let first = listing(&ctx).await.0.expect("hash");
    roll_out(dir.path(), "scale.onnx", &scale_model(2.0));
    assert_eq!(embedded(&ctx).await, [2.0, 4.0, 6.0]);
    let second = listing(&ctx).await.0.expect("hash");

    // What a coordinator not yet rolled out sends a worker: the name pinned to its version.
    let pinned = |hash: &str| QUERY.replace("'scale'", &format!("'scale@sha256:{hash}'"));
    assert_eq!(first_values(&run(&ctx, &pinned(&first)).await), [1.0, 2.0, 3.0]);
    assert_eq!(first_values(&run(&ctx, &pinned(&second)).await), [2.0, 4.0, 6.0]);

    // One version back is kept, not more.
    roll_out(dir.path(), "scale.onnx", &scale_model(3.0));
    assert_eq!(embedded(&ctx).await, [3.0, 6.0, 9.0]);
    assert_eq!(first_values(&run(&ctx, &pinned(&second)).await), [2.0, 4.0, 6.0]);
    let error = error_of(&ctx, &pinned(&first)).await;
    assert!(
        error.contains(&first),
        "a version no longer held is refused, naming it: {error}"
    );
}
