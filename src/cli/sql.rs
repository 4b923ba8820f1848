//! Runs SQL text statement by statement and prints each result.

use std::path::PathBuf;

use crate::{Error, Result};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;
use futures::StreamExt;

use super::console::Stdout;
use super::output::{OutputFormat, ResultWriter};

/// Runs every statement of `commands` then of `files`, in order, printing results to
/// stdout. With neither, reads SQL from stdin.
pub async fn run(ctx: &SessionContext, commands: &[String], files: &[PathBuf], format: OutputFormat) -> Result<()> {
    let mut sources: Vec<String> = commands.to_vec();
    for path in files {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        sources.push(text);
    }
    if sources.is_empty() {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| Error::io("stdin", e))?;
        sources.push(text);
    }
    for source in &sources {
        for statement in DFParser::parse_sql(source)? {
            let plan = ctx.state().statement_to_plan(statement).await?;
            let df = ctx.execute_logical_plan(plan).await?;
            let schema = df.schema().inner().clone();
            if schema.fields().is_empty() {
                df.collect().await?;
                continue;
            }
            let out = std::io::BufWriter::with_capacity(1 << 16, Stdout);
            let mut writer = ResultWriter::new(format, schema, out);
            let mut stream = df.execute_stream().await?;
            while let Some(batch) = stream.next().await {
                writer.write(&batch?)?;
            }
            writer.finish()?;
        }
    }
    Ok(())
}
