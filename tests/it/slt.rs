//! The sqllogictest suite: every `tests/slt/**/*.slt` file runs as its own test against a
//! fresh tabssl context (the fixture registry `tests/fixtures/models`, four partitions, URL
//! tables as in `tabssl sql`), with the current directory at the repository root so SQL
//! reads `data/adult/adult.data.csv.gz` by its relative path. `$__TEST_DIR__` (after
//! `control substitution on`) is a temporary directory of the file's own.
//!
//! `tests/slt/examples/<name>.slt` holds the expected output of `sql/<name>.sql`: its
//! records must be the statements of the `.sql` file, in order (the test fails when they
//! differ), they run with the shipped registry `models` like `tabssl sql`, and the files
//! they write under `'target/...'` go to a temporary directory instead. Files under
//! `examples/stream/` run over a table `input` holding the first Adult rows.
//!
//! `TABSSL_SLT_COMPLETE=1 cargo test --test it slt::` rewrites the expected output of every
//! file from what the code returns (examples are regenerated from their `.sql` first).

use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float16Type, Float32Type, Float64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Whitespace};
use sqllogictest::{DBOutput, DefaultColumnType, Record, Runner};

use crate::common::repo;

/// Significant digits a float keeps in the output: model outputs (Float32) differ in their
/// last bits between CPUs, Rust's own Float64 arithmetic far less.
const FLOAT32_DIGITS: usize = 4;
const FLOAT64_DIGITS: usize = 10;

/// How many Adult rows the stream examples get as their table `input`.
const STREAM_INPUT_ROWS: usize = 5;

/// One test per file; [`every_slt_file_is_listed`] keeps this list complete.
macro_rules! slt_files {
    ($($name:ident => $path:literal,)*) => {
        $(
            #[test]
            fn $name() {
                run_file($path);
            }
        )*
        const LISTED: &[&str] = &[$($path),*];
    };
}

slt_files! {
    embed => "tests/slt/embed.slt",
    predict => "tests/slt/predict.slt",
    corrupt_mask => "tests/slt/corrupt_mask.slt",
    corrupt_swap => "tests/slt/corrupt_swap.slt",
    corrupt_swap_batch => "tests/slt/corrupt_swap_batch.slt",
    corrupt_noise => "tests/slt/corrupt_noise.slt",
    corrupt_fill => "tests/slt/corrupt_fill.slt",
    marginal_sample => "tests/slt/marginal_sample.slt",
    tabssl_models => "tests/slt/tabssl_models.slt",
    tabssl_synthetic => "tests/slt/tabssl_synthetic.slt",
    options => "tests/slt/options.slt",
    example_adult_embed => "tests/slt/examples/adult_embed.slt",
    example_adult_vime_export => "tests/slt/examples/adult_vime_export.slt",
    example_quickstart => "tests/slt/examples/quickstart.slt",
    example_serve_adult => "tests/slt/examples/serve/adult.slt",
    example_stream_adult_enrich => "tests/slt/examples/stream/adult_enrich.slt",
}

/// Files under `dir` (relative to the repository) ending in `.extension`, recursively, as
/// sorted repository-relative paths.
fn files_under(dir: &str, extension: &str) -> Vec<String> {
    fn walk(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, extension, out);
            } else if path.extension().is_some_and(|e| e == extension) {
                out.push(path);
            }
        }
    }
    let root = repo();
    let mut out = Vec::new();
    walk(&root.join(dir), extension, &mut out);
    let mut names: Vec<String> = out
        .iter()
        .map(|p| {
            p.strip_prefix(&root)
                .expect("under the repository")
                .display()
                .to_string()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_slt_file_is_listed() {
    let mut listed: Vec<String> = LISTED.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        files_under("tests/slt", "slt"),
        listed,
        "add each .slt file to slt_files! in tests/it/slt.rs"
    );
}

#[test]
fn every_sql_example_has_its_slt_file() {
    let examples: Vec<String> = files_under("sql", "sql")
        .iter()
        .map(|sql| {
            format!(
                "tests/slt/examples/{}.slt",
                sql.trim_start_matches("sql/").trim_end_matches(".sql")
            )
        })
        .collect();
    assert!(!examples.is_empty());
    let listed: Vec<String> = files_under("tests/slt/examples", "slt");
    assert_eq!(
        examples, listed,
        "each sql/**/*.sql has tests/slt/examples/**/*.slt and back"
    );
}

/// The `.sql` file whose expected output `slt` holds, for files under tests/slt/examples.
fn example_source(slt: &str) -> Option<String> {
    let name = slt.strip_prefix("tests/slt/examples/")?.strip_suffix(".slt")?;
    Some(format!("sql/{name}.sql"))
}

/// A statement of a `.sql` file: the comment lines before it and its text without comments
/// or blank lines (an slt record ends at a blank line).
#[derive(Debug)]
struct Statement {
    comments: Vec<String>,
    sql: String,
}

/// Splits SQL text into statements with the tokenizer DataFusion's parser uses, so a `;`
/// inside a string or a comment does not split. The tokens must print the text back exactly.
fn split_statements(text: &str) -> Vec<Statement> {
    let tokens = Tokenizer::new(&GenericDialect {}, text)
        .with_unescape(false)
        .tokenize()
        .unwrap_or_else(|e| panic!("tokenizes: {e}"));
    let printed: String = tokens.iter().map(ToString::to_string).collect();
    assert_eq!(printed, text, "the tokens print the SQL text back");
    let mut statements = Vec::new();
    let (mut comments, mut sql) = (Vec::new(), String::new());
    for token in tokens {
        match token {
            Token::SemiColon => {
                statements.push(Statement {
                    comments: std::mem::take(&mut comments),
                    sql: tidy(&sql),
                });
                sql.clear();
            }
            Token::Whitespace(Whitespace::SingleLineComment { comment, .. }) => {
                if sql.trim().is_empty() {
                    comments.push(comment.trim_end().to_string());
                }
            }
            Token::Whitespace(Whitespace::MultiLineComment(_)) => {}
            other => sql.push_str(&other.to_string()),
        }
    }
    assert!(sql.trim().is_empty(), "the last statement ends with ';'");
    let parsed = datafusion::sql::parser::DFParser::parse_sql(text).expect("parses");
    assert_eq!(parsed.len(), statements.len(), "one statement per ';'");
    statements
}

/// Lines without trailing blanks, blank lines dropped.
fn tidy(sql: &str) -> String {
    sql.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The slt skeleton of an example: one record per statement, results left to completion.
fn example_skeleton(source: &str, statements: &[Statement]) -> String {
    let mut out = format!(
        "# Expected output of {source}, generated by TABSSL_SLT_COMPLETE=1 (see tests/it/slt.rs).\n\
         # The records must stay the statements of {source}; edit the .sql file, then regenerate.\n"
    );
    for statement in statements {
        out.push('\n');
        for comment in &statement.comments {
            out.push_str(&format!("#{comment}\n"));
        }
        let first = statement.sql.trim_start().to_ascii_uppercase();
        let returns_rows = ["SELECT", "WITH", "VALUES", "COPY"]
            .iter()
            .any(|k| first.starts_with(k));
        if returns_rows {
            let sort = if first.contains("ORDER BY") || first.starts_with("COPY") {
                ""
            } else {
                " rowsort"
            };
            out.push_str(&format!("query T{sort}\n{}\n----\n", statement.sql));
        } else {
            out.push_str(&format!("statement ok\n{}\n", statement.sql));
        }
    }
    out
}

/// The SQL of every statement and query record of an slt file.
fn record_sql(slt: &Path) -> Vec<String> {
    sqllogictest::parse_file::<DefaultColumnType>(slt)
        .unwrap_or_else(|e| panic!("{}: {e}", slt.display()))
        .into_iter()
        .filter_map(|record| match record {
            Record::Statement { sql, .. } | Record::Query { sql, .. } => Some(tidy(&sql)),
            _ => None,
        })
        .collect()
}

fn completing() -> bool {
    std::env::var("TABSSL_SLT_COMPLETE").is_ok_and(|v| v == "1")
}

/// Runs one slt file, or with `TABSSL_SLT_COMPLETE=1` rewrites its expected output.
fn run_file(relative: &str) {
    let path = repo().join(relative);
    let example = example_source(relative);
    if let Some(source) = &example {
        let text = std::fs::read_to_string(repo().join(source)).unwrap_or_else(|e| panic!("{source}: {e}"));
        let statements = split_statements(&text);
        if completing() {
            std::fs::write(&path, example_skeleton(source, &statements)).expect("skeleton written");
        } else {
            let expected: Vec<String> = statements.into_iter().map(|s| s.sql).collect();
            assert_eq!(
                record_sql(&path),
                expected,
                "{relative} no longer holds the statements of {source}: \
                 regenerate it with TABSSL_SLT_COMPLETE=1 cargo test --test it slt::"
            );
        }
    }
    let scratch = tempfile::tempdir().expect("temp dir");
    let kind = match &example {
        None => Kind::Suite,
        Some(source) => Kind::Example {
            target: scratch.path().join("target").display().to_string(),
            stream: source.starts_with("sql/stream/"),
        },
    };
    let mut runner = Runner::new(move || {
        let db = TabsslDb::new(&kind);
        async move { db }
    });
    runner.with_column_validator(sqllogictest::strict_column_validator);
    // `onlyif no_gpu` for the records that need a machine without a visible NVIDIA device.
    runner.add_label(if std::path::Path::new("/dev/nvidiactl").exists() {
        "gpu"
    } else {
        "no_gpu"
    });
    if completing() {
        futures::executor::block_on(runner.update_test_file(
            &path,
            " ",
            sqllogictest::default_validator,
            sqllogictest::default_normalizer,
            sqllogictest::strict_column_validator,
        ))
        .unwrap_or_else(|e| panic!("{relative}: completion failed: {e}"));
    } else if let Err(error) = runner.run_file(&path) {
        panic!("{relative}:\n{}", error.display(false));
    }
}

/// What a file's context is set up for.
#[derive(Clone)]
enum Kind {
    /// tests/slt/*.slt: the fixture registry.
    Suite,
    /// An example from sql/: the shipped registry, `'target/` paths under `target`, and for
    /// a stream example a table `input`.
    Example { target: String, stream: bool },
}

/// A tabssl session as sqllogictest sees it.
struct TabsslDb {
    ctx: SessionContext,
    runtime: tokio::runtime::Runtime,
    /// `'target/` in SQL is replaced by this directory (examples only).
    target: Option<String>,
}

impl TabsslDb {
    fn new(kind: &Kind) -> Result<Self, SltError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| SltError::Planning(e.into()))?;
        // Fixed partitions: results that depend on the layout do not depend on the machine.
        let config = SessionConfig::new().with_target_partitions(4);
        let mut options = tabssl::TabsslOptions::default();
        // Relative paths: the current directory is the repository root, and messages that
        // name the registry read the same on every machine.
        options.models_dir = match kind {
            Kind::Suite => "tests/fixtures/models".into(),
            Kind::Example { .. } => "models".into(),
        };
        tabssl::setup::install();
        let ctx = tabssl::new_context_with_config(config, options).enable_url_table();
        let mut db = TabsslDb {
            ctx,
            runtime,
            target: None,
        };
        if let Kind::Example { target, stream } = kind {
            db.target = Some(target.clone());
            if *stream {
                db.query(&crate::common::adult_table_sql("adult_input"))?;
                db.query(&format!(
                    "CREATE TABLE input AS SELECT * FROM adult_input LIMIT {STREAM_INPUT_ROWS}"
                ))?;
            }
        }
        Ok(db)
    }

    fn query(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let sql = match &self.target {
            Some(target) => sql.replace("'target/", &format!("'{target}/")),
            None => sql.to_string(),
        };
        let ctx = &self.ctx;
        self.runtime.block_on(async {
            let df = ctx.sql(&sql).await.map_err(SltError::Planning)?;
            let schema = df.schema().inner().clone();
            let batches = df.collect().await.map_err(SltError::Execution)?;
            if schema.fields().is_empty() {
                return Ok(DBOutput::StatementComplete(0));
            }
            let types = schema.fields().iter().map(|f| column_type(f.data_type())).collect();
            let mut rows = Vec::new();
            for batch in &batches {
                for row in 0..batch.num_rows() {
                    rows.push(batch.columns().iter().map(|c| cell(c, row)).collect());
                }
            }
            Ok(DBOutput::Rows { types, rows })
        })
    }
}

/// A failure, saying whether `SessionContext::sql` failed (logical planning, where tabssl
/// checks its arguments; it also runs DDL and `SET`) or collecting the result did (physical
/// planning and execution): `planning: Error during planning: ...`, `execution: ...`.
#[derive(Debug)]
enum SltError {
    Planning(DataFusionError),
    Execution(DataFusionError),
}

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SltError::Planning(e) => write!(f, "planning: {e}"),
            SltError::Execution(e) => write!(f, "execution: {e}"),
        }
    }
}

impl std::error::Error for SltError {}

impl sqllogictest::DB for TabsslDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        self.query(sql)
    }

    fn engine_name(&self) -> &str {
        "tabssl"
    }
}

/// The slt column type letter: I integers, R floats and decimals, T strings, ? the rest.
fn column_type(data_type: &DataType) -> DefaultColumnType {
    if data_type.is_integer() {
        DefaultColumnType::Integer
    } else if data_type.is_floating() || matches!(data_type, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        DefaultColumnType::FloatingPoint
    } else if matches!(data_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
        DefaultColumnType::Text
    } else {
        DefaultColumnType::Any
    }
}

/// A float with `digits` significant digits, in its shortest form (`0.1235`, `77520`);
/// `NaN`, `Infinity`, `-Infinity`; negative zero as `0`.
fn float(value: f64, digits: usize) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let rounded: f64 = format!("{value:.*e}", digits - 1).parse().expect("a float");
    if rounded == 0.0 {
        "0".into()
    } else {
        rounded.to_string()
    }
}

/// One value as the expected output holds it: `NULL`, `(empty)` for an empty string,
/// rounded floats, lists as `[a, b]`, structs as `{name: value}`.
fn cell(array: &ArrayRef, row: usize) -> String {
    if array.is_null(row) {
        return "NULL".into();
    }
    let list = |values: ArrayRef| {
        let items: Vec<String> = (0..values.len()).map(|i| cell(&values, i)).collect();
        format!("[{}]", items.join(", "))
    };
    match array.data_type() {
        DataType::Float16 => float(array.as_primitive::<Float16Type>().value(row).to_f64(), FLOAT32_DIGITS),
        DataType::Float32 => float(
            f64::from(array.as_primitive::<Float32Type>().value(row)),
            FLOAT32_DIGITS,
        ),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(row), FLOAT64_DIGITS),
        DataType::List(_) => list(array.as_list::<i32>().value(row)),
        DataType::LargeList(_) => list(array.as_list::<i64>().value(row)),
        DataType::FixedSizeList(..) => list(array.as_fixed_size_list().value(row)),
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let items: Vec<String> = fields
                .iter()
                .zip(s.columns())
                .map(|(f, c)| format!("{}: {}", f.name(), cell(c, row)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        _ => {
            let text = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())
                .expect("a displayable type")
                .value(row)
                .to_string();
            if text.is_empty() { "(empty)".into() } else { text }
        }
    }
}

#[test]
fn floats_keep_their_significant_digits() {
    assert_eq!(float(0.123_456_7, 4), "0.1235");
    assert_eq!(float(77_516.0, 4), "77520");
    assert_eq!(float(-0.0, 4), "0");
    assert_eq!(float(19.875_123_456_78, 10), "19.87512346");
    assert_eq!(float(f64::NAN, 4), "NaN");
    assert_eq!(float(f64::NEG_INFINITY, 4), "-Infinity");
    assert_eq!(float(1.5e-9, 4), "0.0000000015");
}
