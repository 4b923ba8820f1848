//! `--decode-threads`: several threads decode micro-batches at once, and the output is the
//! one of a single thread — rows in input order, the same bad records at the same
//! positions with the same errors, the same counts — for NDJSON and CSV, under every
//! error policy.

use std::process::{Output, Stdio};

use crate::stream::{counts, ids, schema_file, stream_command};

/// Records `0..count` with a bad one wherever `i % 37 == 5` or `i % 101 == 0` (several
/// kinds: a wrong type, a truncated record, garbage, a record with an extra field), so
/// most micro-batches of a few rows hold one and some hold two.
fn records(count: i64, csv: bool) -> Vec<u8> {
    let mut text = String::new();
    if csv {
        text.push_str("id,v\n");
    }
    for i in 0..count {
        let bad = i % 37 == 5 || i % 101 == 0;
        let line = match (csv, bad, i % 3) {
            (false, false, _) => format!("{{\"id\": {i}, \"v\": {i}.5}}"),
            (false, true, 0) => format!("{{\"id\": {i}, \"v\": \"x{i}\"}}"),
            (false, true, 1) => format!("{{\"id\": {i}, \"v\": "),
            (false, true, _) => format!("garbage {i}"),
            (true, false, _) => format!("{i},{i}.5"),
            (true, true, 0) => format!("{i},x{i}"),
            (true, true, 1) => format!("{i},{i}.5,extra"),
            (true, true, _) => format!("{i}"),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text.into_bytes()
}

/// Runs the stream over `input` with `threads` decoding threads and 16-row micro-batches;
/// returns the process output and the dead-letter file (when the policy writes one).
fn run(input: &[u8], csv: bool, threads: &str, policy: &str) -> (Output, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = schema_file(
        dir.path(),
        r#"[{"name": "id", "type": "Int64"}, {"name": "v", "type": "Float64"}]"#,
    );
    let dead = dir.path().join("dead.ndjson").display().to_string();
    let mut args = vec![
        "--schema",
        schema.as_str(),
        "--sql",
        "SELECT id, v FROM input",
        "--batch-rows",
        "16",
        "--decode-threads",
        threads,
        "--on-error",
        policy,
    ];
    if policy == "dead-letter" {
        args.push(&dead);
    }
    if csv {
        args.extend(["--input-format", "csv"]);
    }
    let mut child = stream_command(&args).spawn().expect("tabssl stream starts");
    let writer = crate::stream::feed(child.stdin.take().expect("stdin"), input.to_vec());
    let output = child.wait_with_output().expect("exits");
    writer.join().expect("writer");
    let letters = std::fs::read_to_string(&dead).unwrap_or_default();
    (output, letters)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

#[test]
fn several_decode_threads_keep_the_order_and_the_bad_records_of_one() {
    const COUNT: i64 = 3000;
    for csv in [false, true] {
        let input = records(COUNT, csv);
        let good: Vec<i64> = (0..COUNT).filter(|i| !(i % 37 == 5 || i % 101 == 0)).collect();
        for policy in ["skip", "dead-letter"] {
            let (one, one_letters) = run(&input, csv, "1", policy);
            assert!(one.status.success(), "{}", text(&one.stderr));
            assert_eq!(
                ids(&text(&one.stdout)),
                good,
                "csv {csv}, {policy}: the good rows, in order"
            );
            let rejected = (COUNT as usize - good.len()) as u64;
            assert_eq!(counts(&text(&one.stderr)).1, rejected);
            if policy == "dead-letter" {
                assert_eq!(one_letters.lines().count() as u64, rejected);
            }
            for threads in ["2", "4"] {
                let (many, many_letters) = run(&input, csv, threads, policy);
                assert!(many.status.success(), "{}", text(&many.stderr));
                assert_eq!(
                    text(&many.stdout),
                    text(&one.stdout),
                    "csv {csv}, {policy}, {threads} threads: the same rows in the same order"
                );
                assert_eq!(counts(&text(&many.stderr)), counts(&text(&one.stderr)));
                assert_eq!(
                    many_letters, one_letters,
                    "csv {csv}, {threads} threads: the same dead letters, positions and errors, in order"
                );
            }
        }
        // `fail`: the same rows before the first bad record, the same error naming it.
        let (one, _) = run(&input, csv, "1", "fail");
        assert!(!one.status.success());
        let first_bad = if csv { "stdin line 2 " } else { "stdin line 1 " };
        assert!(text(&one.stderr).contains(first_bad), "{}", text(&one.stderr));
        let (many, _) = run(&input, csv, "4", "fail");
        assert!(!many.status.success());
        assert_eq!(text(&many.stdout), text(&one.stdout));
        let error = |stderr: &str| stderr.lines().find(|l| l.contains("bad record at")).map(str::to_string);
        assert_eq!(error(&text(&many.stderr)), error(&text(&one.stderr)));
        let (_, rejected, passed, written) = counts(&text(&many.stderr));
        assert_eq!((rejected, passed, written), (1, 0, 0));
    }
}

#[test]
fn a_bad_record_late_in_the_stream_fails_it_after_every_row_before_it() {
    // Many micro-batches decode at once past the first bad record: none of their rows may
    // come out, and every row before it must.
    let mut input = String::new();
    for i in 0..2000 {
        if i == 1234 {
            input.push_str("{\"id\": \"twelve\"}\n");
        } else {
            input.push_str(&format!("{{\"id\": {i}, \"v\": 0.5}}\n"));
        }
    }
    let (output, _) = run(input.as_bytes(), false, "4", "fail");
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("bad record at stdin line 1235 "), "{stderr}");
    assert_eq!(ids(&text(&output.stdout)), (0..1234).collect::<Vec<i64>>());
    let (_, rejected, passed, written) = counts(&stderr);
    assert_eq!((rejected, passed, written), (1, 1234, 1234));
}

#[test]
fn decode_threads_must_be_at_least_one() {
    let output = stream_command(&["--sql", "SELECT 1", "--decode-threads", "0"])
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("--decode-threads must be at least 1"), "{stderr}");
    let output = stream_command(&["--sql", "SELECT 1", "--decode-threads", "many"])
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("--decode-threads"));
}
