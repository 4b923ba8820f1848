//! `tabssl export` as a user runs it: byte-identical output for any batch size, atomic
//! files, the generated SQL, and errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};

use crate::common::{adult_csv, repo};

fn export(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tabssl"))
        .arg("export")
        .args(args)
        .current_dir(repo())
        .output()
        .expect("tabssl runs")
}

fn succeed(output: Output) -> Output {
    assert!(
        output.status.success(),
        "tabssl export failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs `tabssl sql --format csv -c <sql>` and returns what it printed.
fn query(sql: &str) -> String {
    let output = succeed(
        Command::new(env!("CARGO_BIN_EXE_tabssl"))
            .args(["sql", "--format", "csv", "-c", sql])
            .output()
            .expect("tabssl sql"),
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn export_is_byte_identical_for_any_batch_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files: Vec<(PathBuf, Vec<u8>, Vec<u8>)> = Vec::new();
    for batch_size in ["8192", "7", "1"] {
        let out = dir.path().join(format!("train_{batch_size}.parquet"));
        // The default row key (position in the input) and NULLs in three columns.
        succeed(export(&[
            "--input",
            "synthetic:4000:3",
            "--keep",
            "class",
            "--views",
            "2",
            "--seed",
            "11",
            "--batch-size",
            batch_size,
            "--output",
            path(&out),
        ]));
        let marginal = dir.path().join(format!("train_{batch_size}.marginals.parquet"));
        files.push((
            out.clone(),
            std::fs::read(&out).expect("output"),
            std::fs::read(&marginal).expect("marginal"),
        ));
    }
    for (out, bytes, marginal) in &files[1..] {
        assert!(
            bytes == &files[0].1,
            "{} differs from {}",
            out.display(),
            files[0].0.display()
        );
        assert!(marginal == &files[0].2, "marginal of {} differs", out.display());
    }
    // Nothing but the outputs and their marginals is left behind.
    assert_eq!(files_in(dir.path()).len(), 6, "{:?}", files_in(dir.path()));
}

#[test]
fn the_export_holds_original_corrupted_value_and_both_masks_per_view() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("train.parquet");
    succeed(export(&[
        "--input",
        "synthetic:3000:5",
        "--key",
        "id",
        "--keep",
        "class",
        "--columns",
        "age,workclass",
        "--views",
        "3",
        "--method",
        "scarf",
        "--output",
        path(&out),
    ]));
    let sql = format!(
        "SELECT count(*) AS n, count(DISTINCT id) AS ids, min(view_id) AS v0, max(view_id) AS v2, \
           round(avg(CAST(age_mask AS DOUBLE)), 2) AS age_rate, \
           sum(CAST(age_changed AND NOT age_mask AS INT)) AS changed_unmasked, \
           sum(CAST(age_tilde <> age AND NOT age_changed AS INT)) AS unlabeled_changes, \
           count(*) FILTER (WHERE workclass IS NULL AND workclass_tilde IS NOT NULL) AS filled_nulls \
         FROM '{}'",
        out.display()
    );
    let text = query(&sql);
    assert_eq!(text.lines().nth(1), Some("9000,3000,0,2,0.6,0,0,0"), "{text}");
}

#[test]
fn a_single_view_export_labels_changes_and_keeps_statistics_for_input_columns_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("train.parquet");
    succeed(export(&[
        "--input",
        "synthetic:3000:5",
        "--key",
        "id",
        "--columns",
        "age,workclass",
        "--output",
        path(&out),
    ]));
    let sql = format!(
        "SELECT count(*), min(view_id), max(view_id), \
           count(*) FILTER (WHERE workclass IS NULL AND workclass_changed IS NOT NULL), \
           count(*) FILTER (WHERE workclass IS NOT NULL AND workclass_changed IS NULL), \
           sum(CAST(workclass_changed AS INT)) = count(*) FILTER (WHERE workclass_tilde <> workclass), \
           sum(CAST(age_changed AS INT)) = count(*) FILTER (WHERE age_tilde <> age) \
         FROM '{}'",
        out.display()
    );
    let text = query(&sql);
    assert_eq!(text.lines().nth(1), Some("3000,0,0,0,0,true,true"), "{text}");
    // Statistics serve pruning on the input's columns; the derived ones are read whole.
    assert_eq!(columns_with_statistics(&out), ["id", "view_id", "age", "workclass"]);
}

#[test]
fn printed_sql_runs_and_gives_the_same_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("direct.parquet");
    let common = [
        "--input",
        "synthetic:500:1",
        "--key",
        "id",
        "--columns",
        "age,sex",
        "--views",
        "2",
    ];
    succeed(export(&[&common[..], &["--output", path(&out)]].concat()));
    let via_sql = dir.path().join("via_sql.parquet");
    let printed = succeed(export(
        &[&common[..], &["--output", path(&via_sql), "--print-sql"]].concat(),
    ));
    let sql = String::from_utf8(printed.stdout).expect("utf-8");
    assert!(
        sql.contains("marginal_sample(") && sql.contains("corrupt_swap("),
        "{sql}"
    );
    let script = dir.path().join("export.sql");
    std::fs::write(
        &script,
        format!("CREATE VIEW input AS SELECT * FROM tabssl_synthetic(500, 1);\n{sql}"),
    )
    .expect("write");
    succeed(
        Command::new(env!("CARGO_BIN_EXE_tabssl"))
            .args(["sql", "--partitions", "1", "-f", path(&script)])
            .output()
            .expect("tabssl sql"),
    );
    let compare = format!(
        "SELECT count(*) FROM (SELECT * FROM '{a}' EXCEPT SELECT * FROM '{b}') \
         UNION ALL SELECT count(*) FROM '{b}'",
        a = out.display(),
        b = via_sql.display()
    );
    let text = query(&compare);
    let counts: Vec<&str> = text.lines().skip(1).collect();
    assert!(counts.contains(&"0") && counts.contains(&"1000"), "{text}");
}

#[test]
fn a_killed_export_leaves_no_file_under_the_final_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("big.parquet");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tabssl"))
        .args([
            "export",
            "--input",
            "synthetic:5000000",
            "--key",
            "id",
            "--views",
            "4",
            "--output",
            path(&out),
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Wait until the export is writing a temporary file (the marginal sample's or the
    // output's), then kill it hard.
    let started = Instant::now();
    while !files_in(dir.path()).iter().any(|f| f.contains(".tmp-")) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no temporary file appeared"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "export ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("kill");
    child.wait().expect("wait");
    assert!(!out.exists(), "a partial file exists under the final name");
    assert!(!dir.path().join("big.marginals.parquet").exists() || !out.exists());
}

#[test]
fn bad_arguments_fail_with_a_message_and_write_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("never.parquet");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--input", "synthetic:10", "--p", "1.5"],
            "--p must be in [0, 1], got 1.5",
        ),
        (
            &["--input", "synthetic:10", "--columns", "nope"],
            "column \"nope\" is not in the input",
        ),
        (&["--input", "no/such.csv"], "input no/such.csv does not exist"),
        (
            &["--input", "synthetic:10", "--views", "0"],
            "--views must be between 1 and 10000, got 0",
        ),
    ];
    for (args, expected) in cases {
        let output = export(&[args, &["--output", path(&out)]].concat());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr}");
    }
    assert!(files_in(dir.path()).is_empty(), "{:?}", files_in(dir.path()));
}

#[test]
fn adult_export_keeps_every_row_and_every_null() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("adult.parquet");
    succeed(export(&[
        "--input",
        path(&adult_csv()),
        "--null-regex",
        "\\?",
        "--keep",
        "class",
        "--views",
        "2",
        "--output",
        path(&out),
    ]));
    let sql = format!(
        "SELECT count(*), count(DISTINCT row_id), count(*) - count(workclass_mask), \
                count(*) FILTER (WHERE workclass IS NULL AND workclass_tilde IS NULL), \
                abs(avg(CAST(age_mask AS DOUBLE)) - 0.3) < 4 * sqrt(0.3 * 0.7 / count(*)) FROM '{}'",
        out.display()
    );
    let text = query(&sql);
    // 1,836 rows have a NULL workclass: NULL masks, still NULL after corruption, in both views.
    assert_eq!(text.lines().nth(1), Some("65122,32561,3672,3672,true"), "{text}");
}

#[test]
fn noise_and_blank_methods_label_what_they_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let noise = dir.path().join("noise.parquet");
    let blank = dir.path().join("blank.parquet");
    let common = [
        "--input",
        "synthetic:4000:2",
        "--key",
        "id",
        "--columns",
        "age,workclass",
    ];
    succeed(export(
        &[&common[..], &["--method", "noise", "--output", path(&noise)]].concat(),
    ));
    succeed(export(
        &[&common[..], &["--method", "blank", "--output", path(&blank)]].concat(),
    ));
    // Gaussian noise on every age (p = 1); swap noise at 0.15 on the categorical column.
    let text = query(&format!(
        "SELECT arrow_typeof(age_tilde), avg(CAST(age_mask AS DOUBLE)), \
                abs(avg(CAST(workclass_mask AS DOUBLE)) - 0.15) < 4 * sqrt(0.15 * 0.85 / count(workclass)), \
                count(*) FILTER (WHERE workclass_mask IS NULL) = count(*) - count(workclass) \
         FROM '{}' GROUP BY 1",
        noise.display()
    ));
    assert_eq!(text.lines().nth(1), Some("Float64,1.0,true,true"), "{text}");
    // Blanking: a masked cell becomes NULL and is labelled changed; nothing else changes.
    let text = query(&format!(
        "SELECT count(*) FILTER (WHERE age_mask AND (age_tilde IS NOT NULL OR NOT age_changed)), \
                count(*) FILTER (WHERE NOT age_mask AND (age_tilde <> age OR age_changed)), \
                abs(avg(CAST(age_mask AS DOUBLE)) - 0.3) < 4 * sqrt(0.3 * 0.7 / count(*)) FROM '{}'",
        blank.display()
    ));
    assert_eq!(text.lines().nth(1), Some("0,0,true"), "{text}");
}

/// The columns of `file`'s first row group that carry statistics.
fn columns_with_statistics(file: &Path) -> Vec<String> {
    let reader = SerializedFileReader::new(std::fs::File::open(file).expect("output")).expect("parquet");
    let row_group = reader.metadata().row_group(0);
    row_group
        .columns()
        .iter()
        .filter(|c| c.statistics().is_some())
        .map(|c| c.column_path().string())
        .collect()
}

/// Every value of `column` in `file`, as `tabssl sql` prints it (CSV, in row order).
fn column_text(file: &Path, column: &str) -> String {
    query(&format!("SELECT {column} FROM '{}'", file.display()))
}

#[test]
fn outputs_write_only_the_derived_columns_asked_for_with_the_same_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let common = [
        "--input",
        "synthetic:3000:4",
        "--key",
        "id",
        "--columns",
        "age,workclass",
        "--seed",
        "9",
    ];
    let full = dir.path().join("full.parquet");
    succeed(export(&[&common[..], &["--output", path(&full)]].concat()));
    let tilde = dir.path().join("tilde.parquet");
    succeed(export(
        &[&common[..], &["--output", path(&tilde), "--outputs", "tilde"]].concat(),
    ));
    let names = query(&format!("DESCRIBE '{}'", tilde.display()));
    assert_eq!(
        names
            .lines()
            .skip(1)
            .filter_map(|line| line.split(',').next())
            .collect::<Vec<_>>(),
        ["id", "view_id", "age", "age_tilde", "workclass", "workclass_tilde"]
    );
    for column in ["age_tilde", "workclass_tilde"] {
        assert_eq!(column_text(&tilde, column), column_text(&full, column), "{column}");
    }
    // Masks alone need no donors: no first pass, no marginal file.
    let masks = dir.path().join("masks.parquet");
    succeed(export(
        &[&common[..], &["--output", path(&masks), "--outputs", "mask"]].concat(),
    ));
    assert!(!dir.path().join("masks.marginals.parquet").exists());
    assert_eq!(column_text(&masks, "age_mask"), column_text(&full, "age_mask"));
    // VIME's label compares with the corrupted value, which is computed but not written.
    let labels = dir.path().join("labels.parquet");
    succeed(export(
        &[&common[..], &["--output", path(&labels), "--outputs", "changed"]].concat(),
    ));
    assert_eq!(column_text(&labels, "age_changed"), column_text(&full, "age_changed"));
    // Statistics stay off for every derived column written.
    assert_eq!(columns_with_statistics(&masks), ["id", "view_id", "age", "workclass"]);
}

#[test]
fn arrow_format_holds_the_rows_of_the_parquet_export_and_is_byte_identical_per_batch_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let common = [
        "--input",
        "synthetic:2500:2",
        "--key",
        "id",
        "--keep",
        "class",
        "--views",
        "2",
    ];
    let parquet = dir.path().join("train.parquet");
    succeed(export(&[&common[..], &["--output", path(&parquet)]].concat()));
    let mut previous: Option<Vec<u8>> = None;
    for (batch_size, codec) in [("8192", "lz4"), ("7", "lz4"), ("8192", "none"), ("8192", "zstd")] {
        let arrow = dir.path().join(format!("train_{batch_size}_{codec}.arrow"));
        succeed(export(
            &[
                &common[..],
                &[
                    "--output",
                    path(&arrow),
                    "--format",
                    "arrow",
                    "--compression",
                    codec,
                    "--batch-size",
                    batch_size,
                ],
            ]
            .concat(),
        ));
        let compare = format!(
            "SELECT count(*) FROM (SELECT * FROM '{a}' EXCEPT SELECT * FROM '{b}') UNION ALL \
             SELECT count(*) FROM (SELECT * FROM '{b}' EXCEPT SELECT * FROM '{a}') UNION ALL SELECT count(*) FROM '{a}'",
            a = arrow.display(),
            b = parquet.display()
        );
        let mut counts: Vec<String> = query(&compare).lines().skip(1).map(String::from).collect();
        counts.sort();
        assert_eq!(counts, ["0", "0", "5000"], "{codec}");
        let bytes = std::fs::read(&arrow).expect("read");
        if codec == "lz4" {
            if let Some(first) = &previous {
                assert!(first == &bytes, "the Arrow file depends on the batch size");
            }
            previous = Some(bytes);
        }
    }
    // An export is not an input to export again: it already has the columns an export adds.
    let exported = dir.path().join("train_8192_none.arrow");
    let refused = export(&[
        "--input",
        path(&exported),
        "--key",
        "id",
        "--output",
        path(&dir.path().join("x.parquet")),
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already has a column named \"view_id\""));
    // An Arrow file is an input like any other.
    let again = dir.path().join("again.parquet");
    let arrow = dir.path().join("input.arrow");
    query(&format!(
        "COPY (SELECT * FROM tabssl_synthetic(5000, 3)) TO '{}' STORED AS ARROW",
        arrow.display()
    ));
    succeed(export(&[
        "--input",
        path(&arrow),
        "--key",
        "id",
        "--columns",
        "age",
        "--output",
        path(&again),
    ]));
    assert_eq!(
        query(&format!("SELECT count(*) FROM '{}'", again.display()))
            .lines()
            .nth(1),
        Some("5000")
    );
}

#[test]
fn compression_is_the_codec_asked_for_and_bad_output_options_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("z.parquet");
    succeed(export(&[
        "--input",
        "synthetic:500",
        "--key",
        "id",
        "--compression",
        "zstd(5)",
        "--output",
        path(&out),
    ]));
    let reader = SerializedFileReader::new(std::fs::File::open(&out).expect("output")).expect("parquet");
    let codecs: Vec<String> = reader
        .metadata()
        .row_group(0)
        .columns()
        .iter()
        .map(|c| format!("{:?}", c.compression()))
        .collect();
    // Parquet records the codec, not its level.
    assert!(codecs.iter().all(|c| c.starts_with("ZSTD(")), "{codecs:?}");
    let never = dir.path().join("never.arrow");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--format", "arrow", "--compression", "snappy"],
            "the Arrow format supports none, lz4 and zstd, not snappy",
        ),
        (&["--compression", "zstd(40)"], "zstd levels are 1 to 22"),
        (&["--compression", "brotli"], "expected none, snappy, lz4, zstd"),
        (&["--outputs", "tilde,label"], "unknown column kind \"label\""),
    ];
    for (args, expected) in cases {
        let output = export(&[&["--input", "synthetic:10", "--output", path(&never)], args].concat());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr}");
    }
    assert!(!never.exists());
}
