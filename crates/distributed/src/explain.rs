//! `EXPLAIN` on a cluster. DataFusion's own `EXPLAIN` plans without the distributed
//! planner, so it would show a single-process plan; this shows the plan that runs: its
//! stages, their tasks, and with `ANALYZE` the metrics of every task (rows, time, bytes
//! moved between stages).

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::Result;
use datafusion::execution::context::SessionContext;
use datafusion::sql::parser::Statement;
use datafusion_distributed::{DistributedMetricsFormat, display_plan_ascii, explain_analyze};
use futures::TryStreamExt;

/// The distributed plan of `query` (run to completion first when `analyze`), as the batch
/// `EXPLAIN` returns: columns `plan_type` and `plan`.
///
/// # Errors
/// When `query` fails to plan or run.
pub async fn explain(ctx: &SessionContext, query: Statement, analyze: bool) -> Result<RecordBatch> {
    let plan = ctx.state().statement_to_plan(query).await?;
    let df = ctx.execute_logical_plan(plan).await?;
    let task_ctx = Arc::new(df.task_ctx());
    let physical = df.create_physical_plan().await?;
    let (kind, text) = if analyze {
        datafusion::physical_plan::execute_stream(Arc::clone(&physical), task_ctx)?
            .try_for_each(|_| async { Ok(()) })
            .await?;
        (
            "distributed_plan_with_metrics",
            explain_analyze(physical, DistributedMetricsFormat::Aggregated).await?,
        )
    } else {
        ("distributed_plan", display_plan_ascii(physical.as_ref(), false))
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("plan_type", DataType::Utf8, false),
        Field::new("plan", DataType::Utf8, false),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![kind])),
            Arc::new(StringArray::from(vec![text])),
        ],
    )?)
}
