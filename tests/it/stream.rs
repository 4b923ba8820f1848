//! `tabssl stream` as a pipeline runs it: a producer on stdin (or a growing file), the
//! binary as a subprocess, a consumer on stdout or a directory of Parquet files.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

use crate::common::{self, assert_close, output_row, repo};

/// The 14 Adult features in the order `adult_vime` takes them.
const VIME_ARGS: &str = "age, workclass, fnlwgt, education, \"education-num\", \"marital-status\", occupation, \
                         relationship, race, sex, \"capital-gain\", \"capital-loss\", \"hours-per-week\", \"native-country\"";

pub(crate) fn stream_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tabssl"));
    command
        .arg("stream")
        .args(["--models", &repo().join("models").display().to_string()])
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

pub(crate) fn spawn(args: &[&str]) -> Child {
    stream_command(args).spawn().expect("tabssl stream starts")
}

/// Feeds `bytes` to stdin from a thread, then closes it.
pub(crate) fn feed(stdin: ChildStdin, bytes: Vec<u8>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut stdin = stdin;
        // The process may stop reading early (a failing policy): that is not this test's error.
        let _ = stdin.write_all(&bytes);
    })
}

/// Reads a pipe to the end on a thread.
pub(crate) fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        pipe.read_to_end(&mut out).expect("pipe reads");
        out
    })
}

/// The counts `tabssl stream` prints last: (read, rejected, passed, written).
pub(crate) fn counts(stderr: &str) -> (u64, u64, u64, u64) {
    let pattern = regex::Regex::new(r"read (\d+) records, rejected (\d+), passed (\d+) to the query, wrote (\d+) rows")
        .expect("regex");
    let found = pattern
        .captures(stderr)
        .unwrap_or_else(|| panic!("no counts in stderr:\n{stderr}"));
    let number = |i: usize| found[i].parse::<u64>().expect("number");
    (number(1), number(2), number(3), number(4))
}

fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// NDJSON lines of the synthetic Adult-shaped table, and a schema file for it.
fn synthetic_ndjson(rows: usize, seed: u64, dir: &Path) -> (Vec<u8>, std::path::PathBuf) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let batches = runtime.block_on(common::run(
        &common::context(&common::fixture_models()),
        &format!("SELECT * FROM tabssl_synthetic({rows}, {seed})"),
    ));
    let mut bytes = Vec::new();
    let mut writer = arrow::json::LineDelimitedWriter::new(&mut bytes);
    for batch in &batches {
        writer.write(batch).expect("ndjson");
    }
    writer.finish().expect("ndjson");
    drop(writer);
    let fields: Vec<serde_json::Value> = batches[0]
        .schema()
        .fields()
        .iter()
        .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
        .collect();
    let schema = dir.join("schema.json");
    std::fs::write(&schema, serde_json::json!({ "fields": fields }).to_string()).expect("schema written");
    (bytes, schema)
}

/// The embedding of every id, computed by a plain (bounded) query over the same rows.
fn reference_embeddings(from: &str) -> HashMap<i64, Vec<f32>> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let ctx = common::context(&repo().join("models"));
    let batches = runtime.block_on(async {
        common::register_adult(&ctx).await;
        common::run(
            &ctx,
            &format!("SELECT id, embed('adult_vime', {VIME_ARGS}) AS e FROM {from}"),
        )
        .await
    });
    let mut out = HashMap::new();
    for batch in &batches {
        let ids = batch.column(0).as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            out.insert(
                ids.value(row),
                output_row(batch.column(1).as_ref(), row).expect("embedded"),
            );
        }
    }
    out
}

fn check_exactly_once(batches: &[RecordBatch], expected: &HashMap<i64, Vec<f32>>) {
    let mut seen = HashMap::new();
    for batch in batches {
        let ids = batch.column(0).as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            let id = ids.value(row);
            let embedding = output_row(batch.column(1).as_ref(), row).expect("embedded");
            assert!(seen.insert(id, embedding).is_none(), "id {id} arrived twice");
        }
    }
    assert_eq!(seen.len(), expected.len(), "every row arrives");
    for (id, embedding) in &seen {
        let reference = expected.get(id).unwrap_or_else(|| panic!("unexpected id {id}"));
        assert_close(embedding, reference, &format!("id {id}"));
    }
}

/// Feeds `input` to a stream that writes Arrow IPC; returns its batches and stderr once it
/// has exited successfully.
fn arrow_output(mut child: Child, input: Vec<u8>) -> (Vec<RecordBatch>, String) {
    let writer = feed(child.stdin.take().expect("stdin"), input);
    let stderr = drain(child.stderr.take().expect("stderr"));
    let reader = arrow::ipc::reader::StreamReader::try_new(child.stdout.take().expect("stdout"), None).expect("ipc");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    writer.join().expect("writer");
    let status = child.wait().expect("exits");
    let stderr = String::from_utf8(stderr.join().expect("stderr")).expect("utf-8");
    assert!(status.success(), "{stderr}");
    (batches, stderr)
}

#[test]
fn every_row_arrives_once_with_its_embedding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, schema) = synthetic_ndjson(3000, 11, dir.path());
    let sql = format!("SELECT id, embed('adult_vime', {VIME_ARGS}) AS e FROM input");
    let schema = schema.display().to_string();
    let child = spawn(&[
        "--input-format",
        "ndjson",
        "--schema",
        &schema,
        "--sql",
        &sql,
        "--output-format",
        "arrow",
        "--batch-rows",
        "256",
    ]);
    let (batches, stderr) = arrow_output(child, input);
    assert!(
        batches.iter().all(|b| b.num_rows() <= 256),
        "micro-batches hold at most --batch-rows"
    );
    assert_eq!(counts(&stderr), (3000, 0, 3000, 3000));
    check_exactly_once(&batches, &reference_embeddings("tabssl_synthetic(3000, 11)"));
}

#[test]
/// The enrichment job of sql/stream/adult_enrich.sql.
fn adult_csv_on_stdin_with_an_inferred_schema_matches_the_table_query_row_for_row() {
    let csv = crate::common::adult_csv_bytes();
    let child = spawn(&[
        "--input-format",
        "csv",
        "--null-regex",
        "\\?",
        "--sql-file",
        "sql/stream/adult_enrich.sql",
        "--output-format",
        "arrow",
    ]);
    let (batches, stderr) = arrow_output(child, csv);
    assert_eq!(counts(&stderr), (32_561, 0, 32_561, 32_561));

    // The same query on the CSV table, read in file order.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let config = datafusion::prelude::SessionConfig::new().with_target_partitions(1);
    let ctx = common::context_with(&repo().join("models"), config);
    let reference = runtime.block_on(async {
        common::register_adult(&ctx).await;
        common::run(
            &ctx,
            &format!("SELECT embed('adult_vime', {VIME_ARGS}) AS e FROM adult"),
        )
        .await
    });
    let rows = |batches: &[RecordBatch]| -> Vec<Vec<f32>> {
        batches
            .iter()
            .flat_map(|b| (0..b.num_rows()).map(move |r| output_row(b.column(0).as_ref(), r).expect("embedded")))
            .collect()
    };
    let (streamed, expected) = (rows(&batches), rows(&reference));
    assert_eq!(streamed.len(), expected.len());
    for (row, (a, b)) in streamed.iter().zip(&expected).enumerate() {
        assert_close(a, b, &format!("Adult row {row}"));
    }
}

#[test]
fn a_slow_producer_gets_each_row_within_the_batch_deadline() {
    // One record per 100 ms against batches of 10,000 rows: waiting for a full batch would
    // take 1,000 s. With T = 200 ms every row must come out well within a second; 2.5 s is
    // the generous bound for a loaded machine. The filter must not hold rows back either.
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = schema_file(
        dir.path(),
        r#"{"fields": [{"name": "id", "type": "Int64"}, {"name": "v", "type": "Float64"}]}"#,
    );
    let mut child = spawn(&[
        "--schema",
        &schema,
        "--sql",
        "SELECT id, v * 2 AS doubled FROM input WHERE id % 2 = 0",
        "--batch-rows",
        "10000",
        "--batch-ms",
        "200",
    ]);
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let arrivals = std::thread::spawn(move || {
        stdout
            .lines()
            .map(|line| {
                let line = line.expect("line");
                let value: serde_json::Value = serde_json::from_str(&line).expect("json");
                (value["id"].as_i64().expect("id"), Instant::now())
            })
            .collect::<Vec<_>>()
    });
    let mut stdin = child.stdin.take().expect("stdin");
    let mut sent = HashMap::new();
    // 3 s of input: a stream that held rows to the end would show latencies above 2.5 s.
    for id in 0..30_i64 {
        sent.insert(id, Instant::now());
        writeln!(stdin, "{{\"id\": {id}, \"v\": {id}.5}}").expect("write");
        stdin.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stdin);
    let arrivals = arrivals.join().expect("reader");
    assert!(child.wait().expect("exits").success());
    let ids: Vec<i64> = arrivals.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (0..30).step_by(2).collect::<Vec<_>>());
    for (id, arrived) in &arrivals {
        let latency = arrived.duration_since(sent[id]);
        assert!(
            latency < Duration::from_millis(2500),
            "row {id} took {latency:?} with T = 200 ms"
        );
    }
}

/// Five good records, a record of the wrong type at line 6, garbage at line 8 (after a
/// blank line 7), and two more good ones.
fn records_with_errors() -> (Vec<u8>, &'static str) {
    let text = "{\"id\": 1, \"x\": 1.0}\n{\"id\": 2, \"x\": 2.0}\n{\"id\": 3, \"x\": 3.0}\n{\"id\": 4, \"x\": 4.0}\n\
                {\"id\": 5, \"x\": 5.0}\n{\"id\": 6, \"x\": \"six\"}\n\nnot json\n{\"id\": 9, \"x\": 9.0}\n{\"id\": 10, \"x\": 10.0}\n";
    (
        text.as_bytes().to_vec(),
        r#"{"fields": [{"name": "id", "type": "Int64"}, {"name": "x", "type": "Float64"}]}"#,
    )
}

fn run_with_policy(policy: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, schema_text) = records_with_errors();
    let schema = schema_file(dir.path(), schema_text);
    let mut args = vec![
        "--schema",
        schema.as_str(),
        "--sql",
        "SELECT id FROM input",
        "--on-error",
    ];
    args.extend_from_slice(policy);
    let mut child = spawn(&args);
    let writer = feed(child.stdin.take().expect("stdin"), input);
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let status = child.wait().expect("exits");
    writer.join().expect("writer");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("utf-8");
    (
        status.success(),
        text(stdout.join().expect("stdout")),
        text(stderr.join().expect("stderr")),
    )
}

pub(crate) fn ids(ndjson: &str) -> Vec<i64> {
    ndjson
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["id"]
                .as_i64()
                .expect("id")
        })
        .collect()
}

#[test]
fn malformed_records_fail_the_stream_by_default_after_the_rows_before_them() {
    let (ok, stdout, stderr) = run_with_policy(&["fail"]);
    assert!(!ok, "a bad record fails the stream");
    assert!(stderr.contains("stdin line 6 (byte offset 100)"), "{stderr}");
    assert!(stderr.contains("\"six\""), "the message quotes the bad value: {stderr}");
    assert_eq!(ids(&stdout), vec![1, 2, 3, 4, 5], "rows before the bad one are written");
    let (read, rejected, passed, written) = counts(&stderr);
    // The reader may have read past the bad record before the stream stopped.
    assert!((6..=9).contains(&read), "{stderr}");
    assert_eq!((rejected, passed, written), (1, 5, 5));
    // Every record read is accounted for: those read ahead of the stop are counted.
    if read > 6 {
        assert!(
            stderr.contains(&format!("{} records read ahead were not processed", read - 6)),
            "{stderr}"
        );
    }
}

#[test]
fn malformed_records_are_skipped_or_dead_lettered_with_their_position() {
    let (ok, stdout, stderr) = run_with_policy(&["skip"]);
    assert!(ok, "{stderr}");
    assert_eq!(ids(&stdout), vec![1, 2, 3, 4, 5, 9, 10]);
    assert_eq!(counts(&stderr), (9, 2, 7, 7));
    assert!(stderr.contains("skipped record at stdin line 8"), "{stderr}");

    let dir = tempfile::tempdir().expect("tempdir");
    let dead = dir.path().join("dead.ndjson");
    let (ok, stdout, stderr) = run_with_policy(&["dead-letter", &dead.display().to_string()]);
    assert!(ok, "{stderr}");
    assert_eq!(ids(&stdout), vec![1, 2, 3, 4, 5, 9, 10]);
    let (read, rejected, _, written) = counts(&stderr);
    assert_eq!(read, written + rejected, "nothing lost");
    let letters: Vec<serde_json::Value> = std::fs::read_to_string(&dead)
        .expect("dead letters")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0]["line"], 6);
    assert_eq!(letters[0]["offset"], 100);
    assert_eq!(letters[0]["record"], "{\"id\": 6, \"x\": \"six\"}\n");
    assert_eq!(letters[1]["line"], 8);
    assert_eq!(letters[1]["record"], "not json\n");
    assert!(letters[1]["error"].as_str().expect("error").contains("whilst parsing"));
}

#[test]
fn bad_arguments_and_queries_that_cannot_stream_are_refused_before_reading() {
    let refused = |args: &[&str], expected: &str| {
        let output = stream_command(args).stdin(Stdio::null()).output().expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success(), "{args:?} must fail");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in\n{stderr}"
        );
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = schema_file(dir.path(), r#"[{"name": "id", "type": "Int64"}]"#);
    refused(
        &["--schema", &schema, "--sql", "SELECT id FROM input ORDER BY id"],
        "SortExec waits for the end of its input",
    );
    refused(
        &[
            "--schema",
            &schema,
            "--sql",
            "SELECT id FROM input",
            "--on-error",
            "dead-letter",
        ],
        "needs a file",
    );
    refused(
        &[
            "--schema",
            &schema,
            "--sql",
            "SELECT id FROM input",
            "--on-error",
            "ignore",
        ],
        "expected fail, skip",
    );
    std::fs::write(dir.path().join("bad.json"), r#"[{"name": "id", "type": "Integer128"}]"#).expect("schema");
    let bad = dir.path().join("bad.json").display().to_string();
    refused(
        &["--schema", &bad, "--sql", "SELECT id FROM input"],
        "unknown type \"Integer128\"",
    );
    refused(
        &["--sql", "SELECT 1", "--output-format", "parquet"],
        "give --output DIR",
    );
    refused(
        &[
            "--schema",
            &schema,
            "--sql",
            "SELECT id FROM input; SET tabssl.provider = 'cpu'",
        ],
        "it must be the query over `input`",
    );
    refused(
        &["--input", "/no/such/file", "--sql", "SELECT 1"],
        "no such file or directory",
    );
    refused(
        &[
            "--schema",
            &schema,
            "--sql",
            "SELECT id FROM input",
            "--batches-in-flight",
            "0",
        ],
        "--batches-in-flight must be at least 1",
    );
    refused(
        &["--schema", &schema, "--sql", "SELECT id FROM input", "--start-over"],
        "--start-over applies to Parquet output",
    );
    // Empty input and no schema: nothing to infer from.
    refused(
        &["--sql", "SELECT * FROM input"],
        "give the schema explicitly (--schema FILE)",
    );
}

/// Writes a schema file into `dir`; returns its path.
pub(crate) fn schema_file(dir: &Path, fields: &str) -> String {
    let path = dir.join("schema.json");
    std::fs::write(&path, fields).expect("schema written");
    path.display().to_string()
}

/// Feeds NDJSON records `{"id": n}` forever (until the pipe closes), counting them.
fn endless_producer(stdin: ChildStdin, written: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut stdin = std::io::BufWriter::new(stdin);
        for id in 0_u64.. {
            if writeln!(stdin, "{{\"id\": {id}, \"x\": {id}.25}}").is_err() {
                return;
            }
            written.store(id + 1, Ordering::SeqCst);
            if id % 64 == 0 && stdin.flush().is_err() {
                return;
            }
        }
    })
}

fn parquet_ids(path: &Path) -> Vec<i64> {
    let file = std::fs::File::open(path).expect("parquet");
    let reader = datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap_or_else(|e| panic!("{} is not a complete Parquet file: {e}", path.display()))
        .build()
        .expect("reader");
    reader
        .flat_map(|b| {
            let b = b.expect("batch");
            b.column(0).as_primitive::<Int64Type>().values().to_vec()
        })
        .collect()
}

#[test]
fn sigterm_mid_stream_flushes_and_leaves_only_complete_parquet_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let schema = schema_file(
        dir.path(),
        r#"[{"name": "id", "type": "Int64"}, {"name": "x", "type": "Float64"}]"#,
    );
    let out_text = out.display().to_string();
    let mut child = spawn(&[
        "--schema",
        &schema,
        "--sql",
        "SELECT id, x FROM input",
        "--output",
        &out_text,
        "--output-format",
        "parquet",
        "--rotate-rows",
        "5000",
        "--batch-rows",
        "1000",
    ]);
    let written = Arc::new(AtomicU64::new(0));
    let producer = endless_producer(child.stdin.take().expect("stdin"), Arc::clone(&written));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let started = Instant::now();
    let complete = |out: &Path| {
        std::fs::read_dir(out)
            .map(|d| {
                d.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0)
    };
    while complete(&out) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no Parquet files after 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(&child, "-TERM");
    let status = child.wait().expect("exits");
    let stderr = String::from_utf8(stderr.join().expect("stderr")).expect("utf-8");
    assert!(status.success(), "SIGTERM is a clean stop: {status}\n{stderr}");
    producer.join().expect("producer");

    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.iter().all(|n| n.starts_with("part-") && n.ends_with(".parquet")),
        "only complete files: {names:?}"
    );
    let mut all = Vec::new();
    for name in &names {
        all.extend(parquet_ids(&out.join(name)));
    }
    let (read, rejected, passed, wrote) = counts(&stderr);
    assert_eq!((rejected, passed, wrote), (0, read, read), "{stderr}");
    assert_eq!(all.len() as u64, wrote, "the files hold every row written");
    assert_eq!(all, (0..wrote as i64).collect::<Vec<_>>(), "rows in order, each once");
    assert!(read <= written.load(Ordering::SeqCst));
}

#[test]
fn a_slow_consumer_stops_the_reader() {
    // Nobody reads stdout: after the pipes and the bounded channels fill up, the stream
    // must stop taking input. Unbounded buffering would swallow the whole 200 MB.
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = schema_file(
        dir.path(),
        r#"[{"name": "id", "type": "Int64"}, {"name": "x", "type": "Float64"}]"#,
    );
    let mut child = spawn(&[
        "--schema",
        &schema,
        "--sql",
        "SELECT id, x FROM input",
        "--batch-rows",
        "1000",
    ]);
    let written = Arc::new(AtomicU64::new(0));
    let stdin = child.stdin.take().expect("stdin");
    let counter = Arc::clone(&written);
    let _producer = std::thread::spawn(move || {
        let mut stdin = stdin;
        let record = [b' '; 1023];
        let mut line = record.to_vec();
        line.push(b'\n');
        line[..9].copy_from_slice(b"{\"id\": 1}");
        for _ in 0..200_000 {
            if stdin.write_all(&line).is_err() {
                return;
            }
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    std::thread::sleep(Duration::from_secs(3));
    let first = written.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(1));
    let second = written.load(Ordering::SeqCst);
    child.kill().expect("kill");
    let _ = child.wait();
    assert_eq!(first, second, "the producer is blocked once the pipeline is full");
    assert!(first < 32_000, "{first} KB taken in with nobody reading the output");
}

/// Reads the `id` of the next NDJSON line on the child's stdout, waiting for it.
fn id_reader(child: &mut Child) -> impl FnMut() -> i64 + use<> {
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    move || ids(&lines.next().expect("a line").expect("read"))[0]
}

#[test]
fn follows_a_growing_file_and_a_directory_of_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = schema_file(dir.path(), r#"[{"name": "id", "type": "Int64"}]"#);

    // A file that grows while it is followed; a record is written in two parts.
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, "{\"id\": 1}\n{\"id\": 2}\n").expect("file");
    let file_text = file.display().to_string();
    let mut child = spawn(&[
        "--input",
        &file_text,
        "--schema",
        &schema,
        "--sql",
        "SELECT id FROM input",
        "--batch-ms",
        "50",
    ]);
    let mut next_id = id_reader(&mut child);
    assert_eq!((next_id(), next_id()), (1, 2));
    let mut append = std::fs::OpenOptions::new().append(true).open(&file).expect("append");
    append.write_all(b"{\"id\": ").expect("append");
    append.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(300));
    append.write_all(b"3}\n{\"id\": 4}\n").expect("append");
    assert_eq!((next_id(), next_id()), (3, 4));
    kill(&child, "-INT");
    assert!(child.wait().expect("exits").success());

    // A directory: CSV files with headers, read in name order; a later file finishes the
    // one before it.
    let events = dir.path().join("events");
    std::fs::create_dir(&events).expect("dir");
    std::fs::write(events.join("0001.csv"), "id\n1\n2\n").expect("csv");
    std::fs::write(events.join(".0002.csv.tmp"), "id\n99\n").expect("in progress");
    let events_text = events.display().to_string();
    let mut child = spawn(&[
        "--input",
        &events_text,
        "--input-format",
        "csv",
        "--schema",
        &schema,
        "--sql",
        "SELECT id FROM input",
        "--batch-ms",
        "50",
    ]);
    let mut next_id = id_reader(&mut child);
    assert_eq!((next_id(), next_id()), (1, 2));
    std::fs::write(events.join("0002.csv"), "id\n3\n").expect("csv");
    std::fs::write(events.join("0003.csv"), "id\n4\n5\n").expect("csv");
    assert_eq!((next_id(), next_id(), next_id()), (3, 4, 5));
    kill(&child, "-TERM");
    let stderr = drain(child.stderr.take().expect("stderr"));
    assert!(child.wait().expect("exits").success());
    let stderr = String::from_utf8(stderr.join().expect("stderr")).expect("utf-8");
    assert_eq!(counts(&stderr), (5, 0, 5, 5), "the hidden file in progress is not read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_api_runs_sql_over_a_record_batch_stream() {
    let ctx = tabssl::stream::streaming_context(tabssl::TabsslOptions::default(), 1024);
    let batches = common::run(
        &common::context(&common::fixture_models()),
        "SELECT id, age FROM tabssl_synthetic(5000, 3)",
    )
    .await;
    let schema = batches[0].schema();
    let input = Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter(batches.clone().into_iter().map(Ok)),
    ));
    let mut out = tabssl::stream::execute_stream(&ctx, input, "SELECT id, age + 1 AS next FROM input WHERE age >= 40")
        .await
        .expect("plans");
    let mut got = Vec::new();
    while let Some(batch) = out.next().await {
        let batch = batch.expect("batch");
        let ids = batch.column(0).as_primitive::<Int64Type>();
        got.extend((0..batch.num_rows()).map(|r| ids.value(r)));
    }
    let mut expected = Vec::new();
    for batch in &batches {
        let ids = batch.column(0).as_primitive::<Int64Type>();
        let ages = batch.column(1).as_primitive::<Int64Type>();
        expected.extend(
            (0..batch.num_rows())
                .filter(|&r| ages.value(r) >= 40)
                .map(|r| ids.value(r)),
        );
    }
    assert!(!expected.is_empty());
    assert_eq!(got, expected, "the filter keeps order and every matching row");

    let empty = Box::pin(RecordBatchStreamAdapter::new(
        batches[0].schema(),
        futures::stream::empty(),
    ));
    let error = tabssl::stream::execute_stream(&ctx, empty, "SELECT age, count(*) FROM input GROUP BY age")
        .await
        .err()
        .expect("an aggregate over an unbounded input is refused");
    assert!(error.to_string().contains("unbounded table `input`"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_api_runs_a_stream_job_exactly_once_into_parquet_parts() {
    use tabssl::stream::{Rotation, SourceSpec, StreamJob, StreamOutput, run_stream};

    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in");
    std::fs::create_dir(&input).expect("input directory");
    for file in 0..3 {
        let lines: String = (0..1000)
            .map(|i| format!("{{\"id\": {}, \"x\": {i}.5}}\n", file * 1000 + i))
            .collect();
        std::fs::write(input.join(format!("{file:04}.ndjson")), lines).expect("ndjson");
    }
    let out = dir.path().join("out");
    let job = || {
        let mut job = StreamJob::new(
            "SELECT id, corrupt_mask(x, 0.3, 7, id) AS xm FROM input",
            SourceSpec::Directory(input.clone()),
            StreamOutput::Parts {
                dir: out.clone(),
                rotation: Rotation { rows: 700, after: None },
            },
        );
        job.follow = false;
        job.batch_rows = 256;
        job
    };
    let report = run_stream(job()).await.expect("runs");
    assert_eq!(
        (report.records_read, report.rows_written, report.records_unaccounted),
        (3000, 3000, 0),
        "{report}"
    );
    assert!(report.files.len() >= 5, "parts of at most 700 rows: {report}");
    assert!(matches!(&report.restart, Some(Ok(_))), "{report}");
    let ctx = datafusion::prelude::SessionContext::new();
    let parts = out.to_str().expect("utf-8");
    ctx.register_parquet("parts", parts, datafusion::prelude::ParquetReadOptions::default())
        .await
        .expect("parts");
    let sql = "SELECT count(*) AS n, count(DISTINCT id) AS ids, min(id) AS lo, max(id) AS hi, \
               count(*) FILTER (WHERE xm) AS masked FROM parts";
    let row = common::run(&ctx, sql).await;
    let value = |column: usize| row[0].column(column).as_primitive::<Int64Type>().value(0);
    assert_eq!((value(0), value(1), value(2), value(3)), (3000, 3000, 0, 2999));
    let masked = value(4) as f64 / 3000.0;
    assert!(
        (masked - 0.3).abs() < 0.05,
        "corrupt_mask marks about 30% of the cells: {masked}"
    );

    // A second run continues where the first stopped: nothing is read or written twice.
    let again = run_stream(job()).await.expect("resumes");
    assert_eq!((again.records_read, again.rows_written), (0, 0), "{again}");
    assert!(again.resumed_at.is_some(), "{again}");

    // A changed query is refused before anything is read, naming the setting the
    // library's way.
    let mut changed = job();
    changed.sql = "SELECT id FROM input".to_string();
    let failure = run_stream(changed).await.expect_err("a changed query");
    assert!(failure.report.is_none());
    assert!(
        failure.error.to_string().contains("Start over (start_over)"),
        "{}",
        failure.error
    );
    let mut bad = job();
    bad.batch_rows = 0;
    let failure = run_stream(bad).await.expect_err("zero rows per batch");
    assert!(
        failure.error.to_string().contains("batch_rows must be at least 1"),
        "{}",
        failure.error
    );
}

#[test]
fn arrow_ipc_on_stdin_to_csv_on_stdout() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let batches = runtime.block_on(common::run(
        &common::context(&common::fixture_models()),
        "SELECT * FROM tabssl_synthetic(2000, 5)",
    ));
    let mut input = Vec::new();
    let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut input, &batches[0].schema()).expect("ipc");
    for batch in &batches {
        // Small and large IPC batches: large ones are cut to --batch-rows.
        writer.write(&batch.slice(0, 3)).expect("write");
        writer.write(&batch.slice(3, batch.num_rows() - 3)).expect("write");
    }
    writer.finish().expect("finish");
    drop(writer);
    let sql = format!("SELECT id, embed('adult_vime', {VIME_ARGS}) AS e FROM input WHERE age < 40");
    let mut child = spawn(&[
        "--input-format",
        "arrow",
        "--sql",
        &sql,
        "--output-format",
        "csv",
        "--batch-rows",
        "500",
    ]);
    let feeder = feed(child.stdin.take().expect("stdin"), input);
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let status = child.wait().expect("exits");
    feeder.join().expect("feeder");
    let stderr = String::from_utf8(stderr.join().expect("stderr")).expect("utf-8");
    assert!(status.success(), "{stderr}");
    let csv = String::from_utf8(stdout.join().expect("stdout")).expect("utf-8");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("id,e"));
    let expected = reference_embeddings("tabssl_synthetic(2000, 5) WHERE age < 40");
    let mut seen = 0;
    for line in lines {
        let (id, list) = line.split_once(',').expect("two fields");
        let values: Vec<f32> = list
            .trim_matches(|c| c == '"' || c == '[' || c == ']')
            .split(", ")
            .map(|v| v.parse().expect("float"))
            .collect();
        assert_close(&values, &expected[&id.parse::<i64>().expect("id")], line);
        seen += 1;
    }
    assert_eq!(seen, expected.len());
    let (read, rejected, passed, written) = counts(&stderr);
    assert_eq!(
        (read, rejected, passed, written),
        (2000, 0, 2000, expected.len() as u64)
    );
}

#[test]
fn a_signal_before_the_first_record_is_a_clean_stop() {
    // No schema and no record yet: the stream is still waiting to infer one.
    let mut child = spawn(&["--sql", "SELECT * FROM input"]);
    let stdin = child.stdin.take().expect("stdin");
    // Time to start and install the signal handlers, even on a loaded machine.
    std::thread::sleep(Duration::from_millis(1500));
    kill(&child, "-TERM");
    let stderr = drain(child.stderr.take().expect("stderr"));
    let status = child.wait().expect("exits");
    drop(stdin);
    let stderr = String::from_utf8(stderr.join().expect("stderr")).expect("utf-8");
    assert!(status.success(), "{stderr}");
    assert_eq!(counts(&stderr), (0, 0, 0, 0));
}

#[test]
fn a_second_signal_exits_at_once() {
    // Nobody reads stdout, so the first SIGTERM's flush cannot finish; the second one ends
    // the process immediately with 128 + 15.
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = schema_file(
        dir.path(),
        r#"[{"name": "id", "type": "Int64"}, {"name": "x", "type": "Float64"}]"#,
    );
    let mut child = spawn(&["--schema", &schema, "--sql", "SELECT id, x FROM input"]);
    let _producer = endless_producer(child.stdin.take().expect("stdin"), Arc::new(AtomicU64::new(0)));
    std::thread::sleep(Duration::from_secs(2));
    kill(&child, "-TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().expect("status").is_none(),
        "the first signal waits for the flush"
    );
    kill(&child, "-TERM");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("status") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the second signal did not end the process"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(143));
}
