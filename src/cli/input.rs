//! Input sources of the commands that read a table: files, directories, synthetic data.

use std::path::Path;

use arrow::datatypes::Schema;
use datafusion::prelude::SessionContext;

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
        return table_schema(ctx, table).await;
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
    table_schema(ctx, table).await
}

async fn table_schema(ctx: &SessionContext, table: &str) -> Result<Schema, String> {
    Ok(ctx
        .table(table)
        .await
        .map_err(|e| e.to_string())?
        .schema()
        .as_arrow()
        .clone())
}

/// `text` escaped for a single-quoted SQL string.
pub fn sql_string(text: &str) -> String {
    text.replace('\'', "''")
}
