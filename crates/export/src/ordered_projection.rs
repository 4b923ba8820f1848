//! The export's second pass on every core, in the input's order.
//!
//! The pass runs in one partition, so rows keep the input's order (the default row key is
//! the row's position). Its work is the projections at the top of the plan: the corruption
//! functions, the masks and the labels of every feature. Those depend only on each row, so
//! [`execute_projections_in_order`] evaluates them batch by batch on blocking threads, up to
//! one batch per core at a time, and hands the results on in the order the batches came:
//! the same batches, byte for byte, as the single-threaded plan, computed on every core.

use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, execute_stream};
use futures::StreamExt;

/// One projection of the plan: its expressions and the schema it produces.
struct Layer {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
}

/// Runs `plan` as one stream in its order; when its top is a chain of projections over a
/// single partition, those are evaluated on up to `threads` threads at once.
///
/// # Errors
/// As executing the plan; an evaluation error surfaces in the stream at its batch.
pub fn execute_projections_in_order(
    plan: Arc<dyn ExecutionPlan>,
    task_ctx: Arc<TaskContext>,
    threads: usize,
) -> Result<SendableRecordBatchStream> {
    let output_schema = plan.schema();
    let mut layers = Vec::new();
    let mut below = Arc::clone(&plan);
    while let Some(projection) = below.downcast_ref::<ProjectionExec>() {
        layers.push(Layer {
            exprs: projection.expr().iter().map(|p| Arc::clone(&p.expr)).collect(),
            schema: projection.schema(),
        });
        let input = Arc::clone(projection.input());
        below = input;
    }
    if layers.is_empty() || threads < 2 || below.output_partitioning().partition_count() != 1 {
        return execute_stream(plan, task_ctx);
    }
    // Applied bottom-up.
    layers.reverse();
    let layers = Arc::new(layers);
    let input = below.execute(0, task_ctx)?;
    let projected = input
        .map(move |batch| {
            let layers = Arc::clone(&layers);
            async move {
                let batch = batch?;
                tokio::task::spawn_blocking(move || project(&layers, batch))
                    .await
                    .map_err(|e| DataFusionError::Execution(format!("a projection thread failed: {e}")))?
            }
        })
        .buffered(threads);
    Ok(Box::pin(RecordBatchStreamAdapter::new(output_schema, projected)))
}

/// `batch` through every layer, bottom-up.
fn project(layers: &[Layer], mut batch: RecordBatch) -> Result<RecordBatch> {
    for layer in layers {
        let rows = batch.num_rows();
        let columns = layer
            .exprs
            .iter()
            .map(|expr| expr.evaluate(&batch)?.into_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        batch = RecordBatch::try_new_with_options(Arc::clone(&layer.schema), columns, &options)?;
    }
    Ok(batch)
}
