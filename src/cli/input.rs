//! Input sources of the commands that read a table: files, directories, synthetic data.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use arrow::datatypes::Schema;
use datafusion::prelude::SessionContext;

use crate::stream::schema::duplicate_name;

/// Registers `input` as table `table`: a .csv, .parquet or .json/.ndjson file or
/// directory, or `synthetic:ROWS[:SEED]` for the built-in Adult-shaped table.
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
) -> Result<Schema, String> {
    if let Some(spec) = input.strip_prefix("synthetic:") {
        let mut parts = spec.split(':');
        let rows: u64 = parts
            .next()
            .unwrap_or_default()
            .parse()
            .map_err(|_| format!("--input synthetic:ROWS[:SEED] needs a row count, got {:?}", input))?;
        let seed: u64 = parts
            .next()
            .map_or(Ok(0), str::parse)
            .map_err(|_| format!("bad seed in {:?}", input))?;
        let sql = format!("CREATE VIEW {table} AS SELECT * FROM tabssl_synthetic({rows}, {seed})");
        ctx.sql(&sql).await.map_err(|e| e.to_string())?;
        return checked_schema(ctx, table, input).await;
    }
    let path = Path::new(&input);
    if !path.exists() {
        return Err(format!("input {} does not exist", path.display()));
    }
    let probe = if path.is_dir() {
        std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .min()
            .ok_or_else(|| format!("input directory {} is empty", path.display()))?
    } else {
        path.to_path_buf()
    };
    let extension = probe
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let location = sql_string(input);
    let sql = match extension.as_str() {
        "csv" => {
            let names = csv_header(&probe)?;
            if let Some(message) = duplicate_name(&names) {
                return Err(format!(
                    "the CSV header of {} {message}: every column needs its own name",
                    probe.display()
                ));
            }
            let null_regex = null_regex.map_or(String::new(), |r| format!(", 'format.null_regex' '{}'", sql_string(r)));
            format!(
                "CREATE EXTERNAL TABLE {table} STORED AS CSV LOCATION '{location}' \
                 OPTIONS ('format.has_header' 'true'{null_regex})"
            )
        }
        "parquet" => format!("CREATE EXTERNAL TABLE {table} STORED AS PARQUET LOCATION '{location}'"),
        "json" | "ndjson" => format!("CREATE EXTERNAL TABLE {table} STORED AS JSON LOCATION '{location}'"),
        other => {
            return Err(format!(
                "cannot tell the format of {}: expected a .csv, .parquet, .json or .ndjson file (got {other:?})",
                probe.display()
            ));
        }
    };
    ctx.sql(&sql).await.map_err(|e| e.to_string())?;
    checked_schema(ctx, table, input).await
}

/// The schema of `table`, which must hold at least one row: a header-only file has no
/// column types to infer, and nothing to export or train on.
async fn checked_schema(ctx: &SessionContext, table: &str, input: &str) -> Result<Schema, String> {
    let df = ctx.table(table).await.map_err(|e| e.to_string())?;
    let schema = df.schema().as_arrow().clone();
    let first = df.limit(0, Some(1)).map_err(|e| e.to_string())?;
    let rows = first.count().await.map_err(|e| e.to_string())?;
    if rows == 0 {
        return Err(format!(
            "the input {input} has no rows (a header alone, or an empty file)"
        ));
    }
    Ok(schema)
}

/// The field names of the first line of a CSV file.
fn csv_header(path: &Path) -> Result<Vec<String>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut line = Vec::new();
    BufReader::new(file)
        .take(1 << 20)
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let (schema, _) = arrow::csv::reader::Format::default()
        .with_header(true)
        .infer_schema(line.as_slice(), Some(0))
        .map_err(|e| format!("{}: bad CSV header: {e}", path.display()))?;
    Ok(schema.fields().iter().map(|f| f.name().clone()).collect())
}

/// `text` escaped for a single-quoted SQL string.
pub fn sql_string(text: &str) -> String {
    text.replace('\'', "''")
}
