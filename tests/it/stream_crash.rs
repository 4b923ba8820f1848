//! `tabssl stream` into Parquet parts, killed with SIGKILL at random moments (some inside a
//! part's commit) while a producer appends numbered records to its input directory, and
//! restarted with the same command each time. At the end the parts must hold every input
//! id exactly once, in input order, each row as an uninterrupted run writes it, and the
//! dead-letter file must hold each bad record once.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::common::{assert_close, fixture_models, output_row, repo};
use crate::stream_bad_input::wait_bounded;

/// The query: a keyed corruption and an embedding, as a training-data pipeline runs them.
const SQL: &str = "SELECT id, x, c, corrupt_mask(x, 0.3, 7, id) AS xm, \
                   embed('mlp_packed', x, x * 2, x + 1, x / 3, x - 5, CAST(id AS DOUBLE)) AS e FROM input";
/// Every id that is a multiple of this is a malformed record (for the dead-letter file).
const BAD_EVERY: u64 = 997;
/// How long a commit pauses before and after publishing, so that kills land inside it.
const COMMIT_PAUSE_MS: &str = "25";

/// splitmix64: a seeded sequence of random numbers for the schedule of kills and writes.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn record(id: u64, csv: bool) -> String {
    let x = (id % 1000) as f64 * 0.37 - 50.0;
    let c = ["a", "b", "c"][(id % 3) as usize];
    match (csv, id.is_multiple_of(BAD_EVERY)) {
        (false, false) => format!("{{\"id\": {id}, \"x\": {x}, \"c\": \"{c}\"}}\n"),
        (false, true) => format!("{{\"id\": {id}, \"x\": }}\n"),
        (true, false) => format!("{id},{x},{c}\n"),
        (true, true) => format!("{id},not a number,{c}\n"),
    }
}

/// Writes `records` numbered records into `dir` as the given number of files, one after
/// the other, each in pieces cut at random bytes (records half-written for a while), with
/// short pauses: new files appear and the last one grows while the stream runs.
fn produce(dir: PathBuf, records: u64, files: u64, csv: bool, seed: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut random = Random(seed);
        let per_file = records.div_ceil(files);
        let extension = if csv { "csv" } else { "ndjson" };
        for file in 0..files {
            let mut text = if csv { "id,x,c\n".to_string() } else { String::new() };
            for id in file * per_file..((file + 1) * per_file).min(records) {
                text.push_str(&record(id, csv));
            }
            let path = dir.join(format!("{file:05}.{extension}"));
            let mut out = std::fs::File::create(&path).expect("input file");
            let bytes = text.as_bytes();
            let mut at = 0;
            while at < bytes.len() {
                let piece = (1 + random.below(6000) as usize).min(bytes.len() - at);
                out.write_all(&bytes[at..at + piece]).expect("append");
                out.flush().expect("flush");
                at += piece;
                std::thread::sleep(Duration::from_millis(random.below(80)));
            }
        }
    })
}

/// `tabssl stream` of `sql` over `input` (with `schema`) into Parquet parts in `output`,
/// with no standard streams attached.
fn parquet_stream(input: &Path, output: &Path, schema: &Path, sql: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tabssl"));
    command
        .arg("stream")
        .args(["--models", &fixture_models().display().to_string()])
        .args(["--input", &input.display().to_string()])
        .args(["--schema", &schema.display().to_string()])
        .args(["--sql", sql])
        .args(["--output", &output.display().to_string(), "--output-format", "parquet"])
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn stream_command(input: &Path, output: &Path, schema: &Path, dead_letter: &Path, csv: bool, follow: bool) -> Command {
    let mut command = parquet_stream(input, output, schema, SQL);
    command
        .args(["--input-format", if csv { "csv" } else { "ndjson" }])
        .args([
            "--rotate-rows",
            "1500",
            "--rotate-ms",
            "200",
            "--batch-rows",
            "700",
            "--batch-ms",
            "40",
        ])
        .args(["--poll-ms", "10"])
        .args(["--on-error", "dead-letter", &dead_letter.display().to_string()])
        .env("TABSSL_FAULT_PAUSE_COMMIT_MS", COMMIT_PAUSE_MS)
        .stderr(Stdio::piped());
    if !follow {
        command.arg("--no-follow");
    }
    command
}

/// Sends each stderr line of `child` through a channel, from a thread.
fn stderr_lines(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The rows of every part in `dir`, in part order: (id, the other scalar columns as text,
/// the embedding).
fn part_rows(dir: &Path) -> Vec<(i64, String, Vec<f32>)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("output directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut rows = Vec::new();
    for name in names.iter().filter(|n| n.starts_with("part-")) {
        let file = std::fs::File::open(dir.join(name)).expect("part");
        let reader = datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap_or_else(|e| panic!("{name} is not a complete Parquet file: {e}"))
            .build()
            .expect("reader");
        // Lineage: each part names the model version behind its embeddings.
        let schema = arrow::array::RecordBatchReader::schema(&reader);
        let lineage = schema.field_with_name("e").expect("embedding column").metadata();
        assert_eq!(
            lineage.get("tabssl.model").map(String::as_str),
            Some("mlp_packed"),
            "{name}"
        );
        let hash = lineage.get("tabssl.model.sha256").map_or("", String::as_str);
        assert!(
            hash.len() == 64 && hash.bytes().all(|c| c.is_ascii_hexdigit()),
            "{name}: {hash:?}"
        );
        for batch in reader {
            rows.extend(batch_rows(&batch.expect("batch")));
        }
    }
    rows
}

fn batch_rows(batch: &RecordBatch) -> Vec<(i64, String, Vec<f32>)> {
    let options = FormatOptions::default().with_null("NULL");
    let formatters: Vec<ArrayFormatter> = (1..4)
        .map(|c| ArrayFormatter::try_new(batch.column(c).as_ref(), &options).expect("formatter"))
        .collect();
    let ids = batch.column(0).as_primitive::<Int64Type>();
    (0..batch.num_rows())
        .map(|row| {
            let text: Vec<String> = formatters.iter().map(|f| f.value(row).to_string()).collect();
            let embedding = output_row(batch.column(4).as_ref(), row).expect("embedded");
            (ids.value(row), text.join("|"), embedding)
        })
        .collect()
}

/// The ids of the dead-letter file's records.
fn dead_letter_ids(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let entry: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let record = entry["record"].as_str().expect("record text");
            let digits: String = record
                .trim_start_matches("{\"id\": ")
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().expect("an id")
        })
        .collect()
}

fn schema_file(dir: &Path) -> PathBuf {
    let path = dir.join("schema.json");
    std::fs::write(
        &path,
        r#"[{"name": "id", "type": "Int64"}, {"name": "x", "type": "Float64"}, {"name": "c", "type": "Utf8"}]"#,
    )
    .expect("schema");
    path
}

fn kill_and_restart_loses_and_repeats_nothing(csv: bool, seed: u64) {
    const RECORDS: u64 = 30_000;
    const KILLS: usize = 22;
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, output, reference) = (dir.path().join("in"), dir.path().join("out"), dir.path().join("ref"));
    std::fs::create_dir(&input).expect("input dir");
    let schema = schema_file(dir.path());
    let dead_letter = dir.path().join("dead.jsonl");
    let producer = produce(input.clone(), RECORDS, 6, csv, seed);

    let mut random = Random(seed ^ 0x5eed);
    let mut inside_commit = 0;
    for kill in 0..KILLS {
        let mut child = stream_command(&input, &output, &schema, &dead_letter, csv, true)
            .spawn()
            .expect("tabssl stream starts");
        let lines = stderr_lines(&mut child);
        let deadline = Instant::now() + Duration::from_millis(200 + random.below(700));
        // Every third kill waits for a commit and lands inside it; the others at random.
        let in_commit = kill % 3 == 0;
        let commit_deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let until = if in_commit { commit_deadline } else { deadline };
            match lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(line) if in_commit && line.contains("fault injection:") => {
                    std::thread::sleep(Duration::from_millis(random.below(20)));
                    inside_commit += 1;
                    break;
                }
                Ok(line) => assert!(
                    !line.contains("Error") && !line.contains("error:"),
                    "kill {kill}: the stream failed: {line}"
                ),
                // No commit came (the stream has caught up with the producer): kill anyway.
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => panic!("kill {kill}: the stream exited before its kill"),
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }
    producer.join().expect("producer");
    assert!(inside_commit >= 4, "only {inside_commit} kills landed inside a commit");

    // The last run reads to the end of the complete input and exits.
    let finish = |out: &Path| {
        let mut child = stream_command(&input, out, &schema, &dead_letter, csv, false)
            .spawn()
            .expect("tabssl stream starts");
        let stderr = crate::stream::drain(child.stderr.take().expect("stderr"));
        let status = wait_bounded(&mut child, "the last run");
        let stderr = String::from_utf8_lossy(&stderr.join().expect("stderr")).into_owned();
        assert!(status.success(), "{stderr}");
        stderr
    };
    let last = finish(&output);
    assert!(last.contains("resumed at"), "{last}");

    let rows = part_rows(&output);
    let ids: Vec<i64> = rows.iter().map(|(id, _, _)| *id).collect();
    let expected: Vec<i64> = (0..RECORDS as i64)
        .filter(|id| !(*id as u64).is_multiple_of(BAD_EVERY))
        .collect();
    if ids != expected {
        let mut seen = HashMap::new();
        for id in &ids {
            *seen.entry(*id).or_insert(0) += 1;
        }
        let twice = seen.values().filter(|n| **n > 1).count();
        let missing = expected.iter().filter(|id| !seen.contains_key(id)).count();
        panic!(
            "the parts hold {} rows for {} ids: {twice} ids more than once, {missing} missing, order kept: {}",
            ids.len(),
            expected.len(),
            ids.windows(2).all(|w| w[0] < w[1])
        );
    }
    let mut bad = dead_letter_ids(&dead_letter);
    bad.sort_unstable();
    let expected_bad: Vec<u64> = (0..RECORDS).filter(|id| id.is_multiple_of(BAD_EVERY)).collect();
    assert_eq!(bad, expected_bad, "each bad record once in the dead-letter file");

    // Each row as an uninterrupted run writes it.
    std::fs::remove_file(&dead_letter).expect("dead letters");
    finish(&reference);
    let uninterrupted = part_rows(&reference);
    assert_eq!(uninterrupted.len(), rows.len());
    for ((id, text, embedding), (ref_id, ref_text, ref_embedding)) in rows.iter().zip(&uninterrupted) {
        assert_eq!((id, text), (ref_id, ref_text));
        assert_close(embedding, ref_embedding, &format!("id {id}"));
    }
}

#[test]
fn ndjson_killed_and_restarted_loses_and_repeats_nothing() {
    kill_and_restart_loses_and_repeats_nothing(false, 29);
}

#[test]
fn csv_killed_and_restarted_loses_and_repeats_nothing() {
    kill_and_restart_loses_and_repeats_nothing(true, 2029);
}

/// A complete input, and a run over it that finishes.
fn finished_run(dir: &Path, sql: &str) -> (PathBuf, PathBuf, PathBuf) {
    let input = dir.join("in");
    std::fs::create_dir(&input).expect("input dir");
    let text: String = (0..5000).map(|id| record(id * BAD_EVERY + 1, false)).collect();
    std::fs::write(input.join("00000.ndjson"), text).expect("input");
    let (output, schema) = (dir.join("out"), schema_file(dir));
    let status = run(&input, &output, &schema, sql, &[]);
    assert!(status.0, "{}", status.1);
    (input, output, schema)
}

fn run(input: &Path, output: &Path, schema: &Path, sql: &str, extra: &[&str]) -> (bool, String) {
    let result = parquet_stream(input, output, schema, sql)
        .args(["--no-follow", "--rotate-rows", "1000", "--batch-rows", "300"])
        .args(extra)
        .stderr(Stdio::piped())
        .output()
        .expect("tabssl stream runs");
    (
        result.status.success(),
        String::from_utf8_lossy(&result.stderr).into_owned(),
    )
}

#[test]
fn a_finished_stream_restarted_writes_nothing_and_a_changed_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, output, schema) = finished_run(dir.path(), SQL);
    assert_eq!(part_rows(&output).len(), 5000);

    // The same command again: everything was committed, nothing more to write.
    let (ok, stderr) = run(&input, &output, &schema, SQL, &[]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("wrote 0 rows"), "{stderr}");
    assert_eq!(part_rows(&output).len(), 5000);

    // Another query is refused, naming what changed and the way out.
    let other = SQL.replace("0.3, 7", "0.5, 7");
    let (ok, stderr) = run(&input, &output, &schema, &other, &[]);
    assert!(!ok);
    assert!(stderr.contains("the query changed"), "{stderr}");
    assert!(stderr.contains("--start-over"), "{stderr}");
    // ... unless the user asks to start over: the input is read again, parts added after.
    let (ok, stderr) = run(&input, &output, &schema, &other, &["--start-over"]);
    assert!(ok, "{stderr}");
    assert_eq!(part_rows(&output).len(), 10_000);

    // A source file that was truncated is refused.
    let file = input.join("00000.ndjson");
    let length = std::fs::metadata(&file).expect("input").len();
    let text = std::fs::read(&file).expect("input");
    std::fs::write(&file, &text[..(length / 2) as usize]).expect("truncate");
    let (ok, stderr) = run(&input, &output, &schema, &other, &[]);
    assert!(!ok);
    assert!(stderr.contains("was truncated"), "{stderr}");
    // A rewritten one too.
    let mut rewritten = text.clone();
    rewritten[10] = b'9';
    std::fs::write(&file, &rewritten).expect("rewrite");
    let (ok, stderr) = run(&input, &output, &schema, &other, &[]);
    assert!(!ok);
    assert!(stderr.contains("replaced or rewritten"), "{stderr}");
}

#[test]
fn one_stream_at_a_time_per_output_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, output, schema) = (dir.path().join("in"), dir.path().join("out"), schema_file(dir.path()));
    std::fs::create_dir(&input).expect("input dir");
    std::fs::write(input.join("00000.ndjson"), record(1, false)).expect("input");
    // A following stream holds the directory ...
    let follow = || parquet_stream(&input, &output, &schema, SQL).spawn().expect("starts");
    let mut first = follow();
    let started = Instant::now();
    let refused = loop {
        // ... so a second one into the same directory is refused, not racing it for part names.
        let (ok, stderr) = run(&input, &output, &schema, SQL, &[]);
        if !ok && stderr.contains("another tabssl stream is writing to") {
            break stderr;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never refused: {stderr}");
        if first.try_wait().expect("waits").is_some() {
            // The second one took the directory before the first started, which was then
            // refused itself: start it again.
            first = follow();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    first.kill().expect("kill");
    first.wait().expect("reaped");
    assert!(refused.contains(&output.display().to_string()), "{refused}");
    // Once the first is gone (killed: the kernel drops its lock), the directory is free.
    let (ok, stderr) = run(&input, &output, &schema, SQL, &["--start-over"]);
    assert!(ok, "{stderr}");
}

#[test]
fn a_followed_file_continues_after_a_kill_where_its_last_part_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, output, schema) = (
        dir.path().join("events.ndjson"),
        dir.path().join("out"),
        schema_file(dir.path()),
    );
    let records = |ids: std::ops::Range<u64>| ids.map(|id| record(id * BAD_EVERY + 1, false)).collect::<String>();
    std::fs::write(&file, records(0..20_000)).expect("input");
    let mut child = parquet_stream(&file, &output, &schema, SQL)
        .args(["--rotate-rows", "1000", "--batch-rows", "700"])
        .spawn()
        .expect("starts");
    let started = Instant::now();
    let parts = || {
        std::fs::read_dir(&output)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("part-"))
                    .count()
            })
            .unwrap_or(0)
    };
    while parts() < 3 {
        assert!(started.elapsed() < Duration::from_secs(60), "no parts after 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let mut append = std::fs::OpenOptions::new().append(true).open(&file).expect("append");
    append.write_all(records(20_000..25_000).as_bytes()).expect("append");
    drop(append);
    let (ok, stderr) = run(&file, &output, &schema, SQL, &[]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("resumed at"), "{stderr}");
    let ids: Vec<i64> = part_rows(&output).iter().map(|(id, _, _)| *id).collect();
    let expected: Vec<i64> = (0..25_000).map(|id| (id * BAD_EVERY + 1) as i64).collect();
    assert_eq!(ids.len(), expected.len(), "{stderr}");
    assert!(ids == expected, "every id once, in order");
}
