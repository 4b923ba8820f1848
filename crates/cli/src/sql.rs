//! Runs SQL text statement by statement and prints each result.

use std::path::PathBuf;

use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement};
use futures::StreamExt;
use tabssl_functions::{Error, Result};

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
            if let Some(batch) = distributed_explain(ctx, &statement).await? {
                let out = std::io::BufWriter::with_capacity(1 << 16, Stdout);
                let mut writer = ResultWriter::new(format, batch.schema(), out);
                writer.write(&batch)?;
                writer.finish()?;
                continue;
            }
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

/// On a cluster, `EXPLAIN [ANALYZE] query` shows the distributed plan
/// ([`tabssl_distributed::explain`]); `None` for every other statement or session.
async fn distributed_explain(ctx: &SessionContext, statement: &Statement) -> Result<Option<arrow::array::RecordBatch>> {
    let Statement::Explain(explain) = statement else {
        return Ok(None);
    };
    if !tabssl_distributed::is_distributed(ctx.state_ref().read().config().options()) {
        return Ok(None);
    }
    let query = explain.statement.as_ref().clone();
    Ok(Some(
        tabssl_distributed::explain(ctx, query, explain.options.analyze).await?,
    ))
}
