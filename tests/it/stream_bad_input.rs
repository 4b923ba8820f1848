//! `tabssl stream` fed input that must never lose a row, crash the process or hang it:
//! one regression test per defect class, and a property test of the accounting invariant
//! (records read = passed + rejected, and every passed record written) over random mixes
//! of good and bad records, for NDJSON and CSV, every policy and several batch sizes.
//!
//! The property test runs `PROPTEST_CASES` cases per format (default 16); a longer run:
//! `PROPTEST_CASES=500 cargo test --test it -- stream_bad_input`.

use std::io::Read;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use proptest::prelude::*;

use crate::stream::{counts, drain, feed, ids, schema_file, spawn, stream_command};

/// Longest any one stream in these tests may run: past it, the test fails as a hang.
const DEADLINE: Duration = Duration::from_secs(120);

/// Waits for `child`, killing it (and failing) if it runs past [`DEADLINE`].
pub(crate) fn wait_bounded(child: &mut Child, what: &str) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waits") {
            return status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("{what}: still running after {DEADLINE:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Asserts that the process ended by itself with status 0, 1 (an error) or 2 (a usage
/// error), never a panic or a signal.
pub(crate) fn assert_clean_exit(status: ExitStatus, stderr: &str, what: &str) {
    assert!(
        matches!(status.code(), Some(0..=2)),
        "{what}: ended with {status:?} (a panic is 101, an abort or stack overflow a signal)\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: panicked\n{stderr}");
}

/// Runs `tabssl stream args` with `input` on stdin: (status, stdout, stderr).
fn run(args: &[&str], input: Vec<u8>) -> (ExitStatus, String, String) {
    let mut child = spawn(args);
    let writer = feed(child.stdin.take().expect("stdin"), input);
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let status = wait_bounded(&mut child, &format!("tabssl stream {args:?}"));
    writer.join().expect("writer");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("utf-8");
    let stderr = text(stderr.join().expect("stderr"));
    assert_clean_exit(status, &stderr, &format!("{args:?}"));
    (status, text(stdout.join().expect("stdout")), stderr)
}

fn csv_rows(ids: impl Iterator<Item = i64>) -> String {
    ids.map(|i| format!("{i},{}.5\n", i * 2)).collect()
}

#[test]
fn an_unterminated_csv_quote_costs_only_its_own_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dead = dir.path().join("dead.ndjson").display().to_string();
    for (name, text) in [
        ("at the end", format!("id,x\n{}16,\"unterminated\n", csv_rows(1..=15))),
        (
            "in the middle",
            format!("id,x\n{}8,\"unterminated\n{}", csv_rows(1..=7), csv_rows(9..=16)),
        ),
    ] {
        for policy in [vec!["skip"], vec!["dead-letter", dead.as_str()]] {
            let mut args = vec!["--input-format", "csv", "--sql", "SELECT id FROM input", "--on-error"];
            args.extend(policy.iter().copied());
            let (status, stdout, stderr) = run(&args, text.clone().into_bytes());
            assert!(status.success(), "{name} {policy:?}: {stderr}");
            assert_eq!(
                ids(&stdout).len(),
                15,
                "{name} {policy:?}: every good row is written\n{stderr}"
            );
            assert_eq!(counts(&stderr), (16, 1, 15, 15), "{name} {policy:?}");
        }
    }
    let letters = std::fs::read_to_string(&dead).expect("dead letters");
    assert_eq!(letters.lines().count(), 2, "{letters}");
    assert!(letters.contains("ends inside a quoted field"), "{letters}");
}

#[test]
fn csv_multiline_keeps_quoted_newlines_inside_their_record() {
    let text = "id,note\n1,\"two\nlines\"\n2,plain\n";
    let args = [
        "--input-format",
        "csv",
        "--csv-multiline",
        "--sql",
        "SELECT id, note FROM input",
    ];
    let (status, stdout, stderr) = run(&args, text.as_bytes().to_vec());
    assert!(status.success(), "{stderr}");
    assert_eq!(ids(&stdout), [1, 2]);
    assert!(stdout.contains("two\\nlines"), "{stdout}");
    // Without the flag each line is a record: the quoted newline splits it, and those
    // two halves are rejected, not glued to their neighbours.
    let args = [
        "--input-format",
        "csv",
        "--sql",
        "SELECT id FROM input",
        "--on-error",
        "skip",
    ];
    let (status, stdout, stderr) = run(&args[..], text.as_bytes().to_vec());
    assert!(status.success(), "{stderr}");
    assert_eq!(ids(&stdout), [2]);
    assert_eq!(counts(&stderr), (3, 2, 1, 1));
}

#[test]
fn ndjson_nested_thirty_thousand_levels_deep_is_a_rejected_record() {
    let deep = format!("{{\"id\": 2, \"x\": {}1{}}}\n", "[".repeat(30_000), "]".repeat(30_000));
    let input = format!("{{\"id\": 1, \"x\": \"a\"}}\n{deep}{{\"id\": 3, \"x\": \"c\"}}\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = schema_file(
        dir.path(),
        r#"[{"name": "id", "type": "Int64"}, {"name": "x", "type": "Utf8"}]"#,
    );
    let args = [
        "--schema",
        &schema,
        "--sql",
        "SELECT id FROM input",
        "--on-error",
        "skip",
    ];
    let (status, stdout, stderr) = run(&args, input.clone().into_bytes());
    assert!(status.success(), "{stderr}");
    assert_eq!(ids(&stdout), [1, 3]);
    assert_eq!(counts(&stderr), (3, 1, 2, 2));
    assert!(stderr.contains("--max-json-depth (64)"), "{stderr}");
    // Under fail it stops the stream with the same message, after the record before it.
    let args = ["--schema", &schema, "--sql", "SELECT id FROM input"];
    let (status, stdout, stderr) = run(&args, input.into_bytes());
    assert!(!status.success());
    assert_eq!(ids(&stdout), [1]);
    assert!(
        stderr.contains("line 2") && stderr.contains("deeper than --max-json-depth"),
        "{stderr}"
    );
    // The limit cannot be raised past what the decoder's stack holds.
    let args = [
        "--schema",
        &schema,
        "--sql",
        "SELECT id FROM input",
        "--max-json-depth",
        "100000",
    ];
    let (status, _, stderr) = run(&args, Vec::new());
    assert!(!status.success());
    assert!(stderr.contains("expected 1 to 10000"), "{stderr}");
}

/// An Arrow IPC stream of `batches` batches of `rows` ids each.
fn ipc_stream(batches: i64, rows: i64) -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let mut bytes = Vec::new();
    let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut bytes, &schema).expect("writer");
    for b in 0..batches {
        let ids = Int64Array::from_iter_values(b * rows..(b + 1) * rows);
        writer
            .write(&RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(ids)]).expect("batch"))
            .expect("write");
    }
    writer.finish().expect("finish");
    drop(writer);
    bytes
}

/// Rewrites the body length declared by an IPC `message` (prefix included) to `length`.
pub(crate) fn forge_body_length(message: &mut [u8], length: i64) {
    let declared = arrow::ipc::root_as_message(&message[8..])
        .expect("message")
        .bodyLength();
    for at in 8..message.len() - 8 {
        if message[at..at + 8] != declared.to_le_bytes() {
            continue;
        }
        let mut forged = message.to_vec();
        forged[at..at + 8].copy_from_slice(&length.to_le_bytes());
        if arrow::ipc::root_as_message(&forged[8..]).is_ok_and(|m| m.bodyLength() == length) {
            message.copy_from_slice(&forged);
            return;
        }
    }
    panic!("no body length field found");
}

#[test]
fn an_ipc_header_claiming_a_terabyte_is_refused_without_allocating_it() {
    let genuine = ipc_stream(1, 4);
    let schema_only = ipc_stream(0, 0);
    let header_end = schema_only.len() - 8;
    // The batch message of `genuine` with its body length set to 1 TiB.
    let mut message = genuine[header_end..genuine.len() - 8].to_vec();
    forge_body_length(&mut message, 1 << 40);
    let mut forged = schema_only[..header_end].to_vec();
    forged.extend_from_slice(&message);
    for policy in ["fail", "skip"] {
        let args = [
            "--input-format",
            "arrow",
            "--sql",
            "SELECT id FROM input",
            "--on-error",
            policy,
        ];
        let (status, _, stderr) = run(&args, forged.clone());
        assert!(!status.success(), "{policy}: a truncated stream is an error");
        assert!(stderr.contains("ends inside a message"), "{policy}: {stderr}");
    }
}

#[test]
fn an_ipc_batch_over_the_size_limit_goes_to_the_error_policy() {
    // Three batches of 100 ids (about 1 KB each): the limit lets none through, and the
    // rows are counted as rejected.
    let input = ipc_stream(3, 100);
    let args = [
        "--input-format",
        "arrow",
        "--sql",
        "SELECT id FROM input",
        "--max-record-bytes",
        "600",
        "--on-error",
        "skip",
    ];
    let (status, stdout, stderr) = run(&args, input.clone());
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(counts(&stderr), (300, 300, 0, 0));
    let args = [
        "--input-format",
        "arrow",
        "--sql",
        "SELECT id FROM input",
        "--max-record-bytes",
        "600",
    ];
    let (status, _, stderr) = run(&args, input);
    assert!(!status.success());
    assert!(stderr.contains("more than --max-record-bytes (600) allows"), "{stderr}");
}

#[test]
fn inferred_schemas_survive_odd_first_records() {
    // One string among numbers: the field becomes text and every record passes.
    let mixed = "{\"id\": 1, \"v\": 10}\n{\"id\": 2, \"v\": \"n/a\"}\n{\"id\": 3, \"v\": 30}\n";
    let (status, stdout, stderr) = run(&["--sql", "SELECT id, v FROM input"], mixed.as_bytes().to_vec());
    assert!(status.success(), "{stderr}");
    assert_eq!(ids(&stdout), [1, 2, 3]);
    assert!(stdout.contains("\"v\":\"10\""), "{stdout}");
    // A first record that is an array or a scalar goes to the policy; the stream goes on.
    let odd = "[1, 2]\n7\n{\"id\": 1}\n{\"id\": 2}\n";
    let args = ["--sql", "SELECT id FROM input", "--on-error", "skip"];
    let (status, stdout, stderr) = run(&args, odd.as_bytes().to_vec());
    assert!(status.success(), "{stderr}");
    assert_eq!(ids(&stdout), [1, 2]);
    assert_eq!(counts(&stderr), (4, 2, 2, 2));
    // A ragged CSV row goes to the policy, also while the schema is inferred.
    let ragged = "id,x\n1,1.5\n2\n3,3.5,extra\n4,4.5\n";
    let args = [
        "--input-format",
        "csv",
        "--sql",
        "SELECT id FROM input",
        "--on-error",
        "skip",
    ];
    let (status, stdout, stderr) = run(&args, ragged.as_bytes().to_vec());
    assert!(status.success(), "{stderr}");
    assert_eq!(ids(&stdout), [1, 4]);
    assert_eq!(counts(&stderr), (4, 2, 2, 2));
}

#[test]
fn a_csv_header_naming_a_column_twice_is_named_in_the_error() {
    let text = "id,x,id\n1,2,3\n";
    let args = ["--input-format", "csv", "--sql", "SELECT * FROM input"];
    let (status, _, stderr) = run(&args, text.as_bytes().to_vec());
    assert!(!status.success());
    assert!(
        stderr.contains("names column \"id\" twice (columns 1 and 3)"),
        "{stderr}"
    );
}

#[test]
fn a_reader_that_closes_stdout_ends_the_stream_quietly() {
    let mut child = stream_command(&["--sql", "SELECT id FROM input", "--batch-rows", "10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let input: String = (0..200_000).map(|i| format!("{{\"id\": {i}}}\n")).collect();
    let writer = feed(child.stdin.take().expect("stdin"), input.into_bytes());
    let stderr = drain(child.stderr.take().expect("stderr"));
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).expect("first bytes");
    drop(stdout);
    let status = wait_bounded(&mut child, "stream into a closed pipe");
    writer.join().expect("writer");
    let stderr = String::from_utf8(stderr.join().expect("stderr")).expect("utf-8");
    assert_clean_exit(status, &stderr, "closed stdout");
    assert!(status.success(), "a closed pipe is not an error: {stderr}");
    assert!(stderr.contains("the reader closed standard output"), "{stderr}");
}

/// One line of input for the property test.
#[derive(Debug, Clone, Copy)]
enum Line {
    Good,
    Bad(u8),
}

const BAD_KINDS: u8 = 7;

/// The text of line `index` (its id) in `format`; bad kinds are distinct ways to be wrong.
fn render(line: Line, index: i64, csv: bool) -> String {
    let pad = "p".repeat(300);
    match (line, csv) {
        (Line::Good, false) => format!("{{\"id\": {index}, \"v\": {index}.5}}\n"),
        (Line::Good, true) => format!("{index},{index}.5\n"),
        (Line::Bad(kind), false) => match kind {
            0 => format!("{{\"id\": {index}, \"v\":\n"),
            1 => format!("{{\"id\": \"x{index}\", \"v\": 1.5}}\n"),
            2 => format!("[{index}, 1.5]\n"),
            3 => format!("{index}\n"),
            4 => format!("{{\"id\": {index}, \"v\": [[[[[[[[[[1]]]]]]]]]]}}\n"),
            5 => format!("{{\"id\": {index}, \"v\": 1.5, \"pad\": \"{pad}\"}}\n"),
            _ => format!("{{\"id\": {index}, \"v\": 1}} {{\"id\": {index}, \"v\": 2}}\n"),
        },
        (Line::Bad(kind), true) => match kind {
            0 => format!("{index},\"unterminated\n"),
            1 => format!("{index}\n"),
            2 => format!("{index},1.5,extra\n"),
            3 => format!("x{index},1.5\n"),
            4 => format!("{index},abc\n"),
            5 => format!("{index},{pad}\n"),
            _ => format!("{index},\"1.5\"\"\n"),
        },
    }
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![3 => Just(Line::Good), 1 => (0..BAD_KINDS).prop_map(Line::Bad)]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(16)
}

/// Runs one mix through `tabssl stream` and checks the output against the good lines.
fn check_mix(lines: &[Line], csv: bool, policy: usize, batch_rows: usize) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = schema_file(
        dir.path(),
        r#"[{"name": "id", "type": "Int64"}, {"name": "v", "type": "Float64"}]"#,
    );
    let dead = dir.path().join("dead.ndjson").display().to_string();
    let mut input = if csv { "id,v\n".to_string() } else { String::new() };
    for (i, &line) in lines.iter().enumerate() {
        input.push_str(&render(line, i as i64, csv));
    }
    let batch = batch_rows.to_string();
    let mut args = vec![
        "--schema",
        schema.as_str(),
        "--input-format",
        if csv { "csv" } else { "ndjson" },
        "--sql",
        "SELECT id FROM input",
        "--batch-rows",
        batch.as_str(),
        "--max-record-bytes",
        "256",
        "--max-json-depth",
        "8",
        "--on-error",
    ];
    args.extend(match policy {
        0 => vec!["skip"],
        1 => vec!["dead-letter", dead.as_str()],
        _ => vec!["fail"],
    });
    let (status, stdout, stderr) = run(&args, input.into_bytes());
    let good: Vec<i64> = (0..lines.len() as i64)
        .filter(|&i| matches!(lines[i as usize], Line::Good))
        .collect();
    let bad = lines.len() - good.len();
    let (read, rejected, passed, written) = counts(&stderr);
    if policy < 2 {
        prop_assert!(status.success(), "{stderr}");
        prop_assert_eq!(ids(&stdout), good.clone(), "{}", stderr);
        prop_assert_eq!(
            (read, rejected, passed, written),
            (lines.len() as u64, bad as u64, good.len() as u64, good.len() as u64)
        );
        if policy == 1 && bad > 0 {
            let letters = std::fs::read_to_string(&dead).expect("dead letters");
            prop_assert_eq!(letters.lines().count(), bad);
        }
    } else {
        let first_bad = lines.iter().position(|l| matches!(l, Line::Bad(_)));
        let before: Vec<i64> = good
            .iter()
            .copied()
            .filter(|&i| first_bad.is_none_or(|b| (i as usize) < b))
            .collect();
        prop_assert_eq!(status.success(), first_bad.is_none(), "{}", stderr);
        prop_assert_eq!(ids(&stdout), before.clone(), "{}", stderr);
        prop_assert_eq!(
            (rejected, passed, written),
            (u64::from(first_bad.is_some()), before.len() as u64, before.len() as u64)
        );
        prop_assert!(read >= passed + rejected, "{}", stderr);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_record_is_written_or_rejected_ndjson(
        lines in prop::collection::vec(line(), 1..40),
        policy in 0usize..3,
        batch_rows in prop::sample::select(vec![1usize, 2, 5, 64]),
    ) {
        check_mix(&lines, false, policy, batch_rows)?;
    }

    #[test]
    fn every_record_is_written_or_rejected_csv(
        lines in prop::collection::vec(line(), 1..40),
        policy in 0usize..3,
        batch_rows in prop::sample::select(vec![1usize, 2, 5, 64]),
    ) {
        check_mix(&lines, true, policy, batch_rows)?;
    }
}
