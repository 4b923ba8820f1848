//! Input sources of the commands that read a table: files, directories, synthetic data.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use arrow::datatypes::Schema;
use datafusion::prelude::SessionContext;

use crate::sql_text::string_literal;

/// Registers `input` as table `table`: a .csv, .parquet or .json/.ndjson file or
/// directory (CSV and JSON also compressed: `.csv.gz`, `.bz2`, `.xz`, `.zst`), or
/// `synthetic:ROWS[:SEED]` for the built-in Adult-shaped table.
///
/// Returns the table's schema.
///
/// # Errors
/// When the source does not exist or its format is unknown.
pub async fn register_input(
    ctx: &SessionContext,
    table: &str,
    input: &str,
    null_regex: Option<&str>,
) -> crate::Result<Schema> {
    if let Some(spec) = input.strip_prefix("synthetic:") {
        let mut parts = spec.split(':');
        let rows: u64 = parts.next().unwrap_or_default().parse().map_err(|_| {
            crate::Error::Invalid(format!(
                "input synthetic:ROWS[:SEED] needs a row count, got {:?}",
                input
            ))
        })?;
        let seed: u64 = parts
            .next()
            .map_or(Ok(0), str::parse)
            .map_err(|_| crate::Error::Invalid(format!("bad seed in {:?}", input)))?;
        let sql = format!("CREATE VIEW {table} AS SELECT * FROM tabssl_synthetic({rows}, {seed})");
        ctx.sql(&sql).await?;
        return checked_schema(ctx, table, input).await;
    }
    let path = Path::new(&input);
    if !path.exists() {
        return Err(crate::Error::Invalid(format!(
            "input {} does not exist",
            path.display()
        )));
    }
    let probe = if path.is_dir() {
        std::fs::read_dir(path)
            .map_err(|e| crate::Error::io(path, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .min()
            .ok_or_else(|| crate::Error::Invalid(format!("input directory {} is empty", path.display())))?
    } else {
        path.to_path_buf()
    };
    let name = probe
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (compression, stem) = compression_of(&name);
    let extension = stem.rsplit_once('.').map_or("", |(_, extension)| extension);
    let location = string_literal(input);
    let compressed = compression.map_or(String::new(), |c| format!("'format.compression' '{c}'"));
    let sql = match extension {
        "csv" => {
            let names = csv_header(&probe, compression)?;
            if let Some(message) = duplicate_name(&names) {
                return Err(crate::Error::Invalid(format!(
                    "the CSV header of {} {message}: every column needs its own name",
                    probe.display()
                )));
            }
            let mut options = vec!["'format.has_header' 'true'".to_string()];
            options.extend(null_regex.map(|r| format!("'format.null_regex' {}", string_literal(r))));
            options.extend((!compressed.is_empty()).then_some(compressed));
            format!(
                "CREATE EXTERNAL TABLE {table} STORED AS CSV LOCATION {location} OPTIONS ({})",
                options.join(", ")
            )
        }
        "parquet" if compression.is_none() => {
            format!("CREATE EXTERNAL TABLE {table} STORED AS PARQUET LOCATION {location}")
        }
        "arrow" | "feather" | "ipc" if compression.is_none() => {
            format!("CREATE EXTERNAL TABLE {table} STORED AS ARROW LOCATION {location}")
        }
        "json" | "ndjson" if compression.is_none() => {
            format!("CREATE EXTERNAL TABLE {table} STORED AS JSON LOCATION {location}")
        }
        "json" | "ndjson" => {
            format!("CREATE EXTERNAL TABLE {table} STORED AS JSON LOCATION {location} OPTIONS ({compressed})")
        }
        other => {
            return Err(crate::Error::Invalid(format!(
                "cannot tell the format of {}: expected a .csv, .parquet, .arrow, .json or .ndjson file, the CSV \
                 and JSON ones also compressed (.csv.gz, .bz2, .xz, .zst) (got {other:?})",
                probe.display()
            )));
        }
    };
    ctx.sql(&sql).await?;
    checked_schema(ctx, table, input).await
}

/// The schema of `table`, which must hold at least one row: a header-only file has no
/// column types to infer, and nothing to export or train on.
async fn checked_schema(ctx: &SessionContext, table: &str, input: &str) -> crate::Result<Schema> {
    let df = ctx.table(table).await?;
    let schema = df.schema().as_arrow().clone();
    let first = df.limit(0, Some(1))?;
    let rows = first.count().await?;
    if rows == 0 {
        return Err(crate::Error::Invalid(format!(
            "the input {input} has no rows (a header alone, or an empty file)"
        )));
    }
    Ok(schema)
}

/// The DataFusion `format.compression` of a file name's last extension, and the name
/// without it.
fn compression_of(name: &str) -> (Option<&'static str>, &str) {
    let compression = match name.rsplit_once('.') {
        Some((stem, "gz")) => Some(("gzip", stem)),
        Some((stem, "bz2")) => Some(("bzip2", stem)),
        Some((stem, "xz")) => Some(("xz", stem)),
        Some((stem, "zst")) => Some(("zstd", stem)),
        _ => None,
    };
    compression.map_or((None, name), |(kind, stem)| (Some(kind), stem))
}

/// The field names of the first line of a CSV file (plain or gzip); empty for the other
/// compressions, whose headers DataFusion alone reads.
fn csv_header(path: &Path, compression: Option<&str>) -> crate::Result<Vec<String>> {
    let file = std::fs::File::open(path).map_err(|e| crate::Error::io(path, e))?;
    let reader: Box<dyn Read> = match compression {
        None => Box::new(file),
        Some("gzip") => Box::new(flate2::read::GzDecoder::new(file)),
        Some(_) => return Ok(Vec::new()),
    };
    let mut line = Vec::new();
    BufReader::new(reader)
        .take(1 << 20)
        .read_until(b'\n', &mut line)
        .map_err(|e| crate::Error::io(path, e))?;
    let (schema, _) = arrow::csv::reader::Format::default()
        .with_header(true)
        .infer_schema(line.as_slice(), Some(0))
        .map_err(|e| crate::Error::Invalid(format!("{}: bad CSV header: {e}", path.display())))?;
    Ok(schema.fields().iter().map(|f| f.name().clone()).collect())
}

/// "names column "x" twice (columns 2 and 5)" when a name repeats.
pub fn duplicate_name(names: &[String]) -> Option<String> {
    names.iter().enumerate().find_map(|(second, name)| {
        names[..second]
            .iter()
            .position(|n| n == name)
            .map(|first| format!("names column {name:?} twice (columns {} and {})", first + 1, second + 1))
    })
}
