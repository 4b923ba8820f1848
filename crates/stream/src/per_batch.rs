//! A query that treats each row of `input` on its own (projections, filters, the tabssl
//! functions: the enrichment case), run on each input batch separately, several batches
//! at once on the runtime's threads, with the outputs handed on in input order.
//!
//! The query is planned once: its physical plan reads an in-memory table, and each batch
//! runs a copy of that plan whose memory scan holds the batch. Because the output of a
//! batch depends only on its rows, the result is the same rows, in the same order, as one
//! streaming plan over the whole input, computed on every core; and each output is known
//! to come from its input batch, which is what lets a stream record how far it got.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::catalog::MemTable;
use datafusion::common::TableReference;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::provider_as_source;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, TableScan};
use datafusion::physical_plan::ExecutionPlan;
use futures::{Stream, StreamExt};

use super::query::INPUT_TABLE;
use tabssl_functions::options::TabsslOptions;

/// True when every node of `plan` handles each row of `input` on its own: projections,
/// filters and aliases over `input`, no subquery.
pub fn is_row_local(plan: &LogicalPlan) -> bool {
    let has_subquery = |expr: &Expr| {
        expr.exists(|e| {
            Ok(matches!(
                e,
                Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_)
            ))
        })
        .unwrap_or(true)
    };
    let mut row_local = true;
    let _ = plan.apply(|node| {
        let node_is_row_local = match node {
            LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => true,
            LogicalPlan::TableScan(scan) => scan.table_name == TableReference::bare(INPUT_TABLE),
            _ => false,
        } && !node.expressions().iter().any(has_subquery);
        row_local &= node_is_row_local;
        Ok(if node_is_row_local {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    row_local
}

/// Sets a session under construction up for running `in_flight` batches at once:
/// automatic model thread and session counts are split between the batches (a streaming
/// session's single partition would give each batch every core and one shared model
/// session). Set before planning: a plan keeps the functions it was planned with.
pub fn per_batch_session(
    mut builder: datafusion::execution::session_state::SessionStateBuilder,
    in_flight: usize,
) -> datafusion::execution::session_state::SessionStateBuilder {
    let mut config = builder.config().take().unwrap_or_default();
    if let Some(options) = config.options_mut().extensions.get_mut::<TabsslOptions>() {
        split_threads(options, in_flight);
    }
    builder.with_config(config)
}

/// Splits automatic model thread and session counts between `in_flight` batches.
pub fn split_threads(options: &mut TabsslOptions, in_flight: usize) {
    let in_flight = in_flight.max(1);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if options.intra_threads == 0 {
        options.intra_threads = (cores / in_flight).max(1);
    }
    if options.sessions_per_model == 0 {
        options.sessions_per_model = in_flight;
    }
}

/// A row-local query, planned once, that runs on one batch at a time.
#[derive(Debug, Clone)]
pub struct PerBatchPlan {
    /// The physical plan over an empty memory scan of the input's schema.
    template: Arc<dyn ExecutionPlan>,
    task_ctx: Arc<TaskContext>,
}

impl PerBatchPlan {
    /// Plans `plan` (row-local, reading the table `input` of `schema`) in `state`.
    ///
    /// # Errors
    /// When the plan is not row-local, or does not plan.
    pub async fn new(state: &SessionState, plan: LogicalPlan, schema: SchemaRef) -> Result<Self> {
        if !is_row_local(&plan) {
            return Err(DataFusionError::Internal(
                "a per-batch plan must treat each row on its own".into(),
            ));
        }
        let table = Arc::new(MemTable::try_new(schema, vec![Vec::new()])?);
        let plan = plan
            .transform_up(|node| match node {
                LogicalPlan::TableScan(scan) if scan.table_name == TableReference::bare(INPUT_TABLE) => {
                    Ok(Transformed::yes(LogicalPlan::TableScan(TableScan {
                        source: provider_as_source(Arc::clone(&table) as _),
                        ..scan
                    })))
                }
                other => Ok(Transformed::no(other)),
            })?
            .data;
        let template = state.create_physical_plan(&plan).await?;
        let mut scans = 0;
        template.apply(|node| {
            scans += usize::from(memory_scan(node).is_some());
            Ok(TreeNodeRecursion::Continue)
        })?;
        if scans != 1 {
            return Err(DataFusionError::Internal(format!(
                "a per-batch plan reads its input through one memory scan, found {scans}"
            )));
        }
        Ok(Self {
            template,
            task_ctx: state.task_ctx(),
        })
    }

    /// The output schema.
    pub fn schema(&self) -> SchemaRef {
        self.template.schema()
    }

    /// The plan with `batch` as its input.
    fn with_batch(&self, batch: RecordBatch) -> Result<Arc<dyn ExecutionPlan>> {
        Arc::clone(&self.template)
            .transform_up(|node| match memory_scan(&node) {
                Some(scan) => {
                    let exec = MemorySourceConfig::try_new_exec(
                        &[vec![batch.clone()]],
                        scan.original_schema(),
                        scan.projection().clone(),
                    )?;
                    Ok(Transformed::yes(exec as Arc<dyn ExecutionPlan>))
                }
                None => Ok(Transformed::no(node)),
            })
            .map(|transformed| transformed.data)
    }

    /// Runs the query on `batch` and returns its output.
    ///
    /// # Errors
    /// As the query's execution.
    pub async fn run(&self, batch: RecordBatch) -> Result<Vec<RecordBatch>> {
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        let plan = self.with_batch(batch)?;
        datafusion::physical_plan::collect(plan, Arc::clone(&self.task_ctx)).await
    }
}

/// The memory scan at `node`, if it is one.
fn memory_scan(node: &Arc<dyn ExecutionPlan>) -> Option<&MemorySourceConfig> {
    node.downcast_ref::<DataSourceExec>()?
        .data_source()
        .downcast_ref::<MemorySourceConfig>()
}

/// Runs `plan` on each batch of `input`, `in_flight` batches at once on the runtime's
/// threads, and yields each batch's output with its tag, in input order. The batches are
/// driven by a task of their own, so they keep running while the consumer handles an
/// output (writes it, say): at most `in_flight` batches run and `in_flight` outputs wait.
/// Dropping the stream stops the batches in flight.
pub fn run_in_order<T: Send + 'static>(
    plan: PerBatchPlan,
    input: impl Stream<Item = Result<(RecordBatch, T)>> + Send + 'static,
    in_flight: usize,
) -> impl Stream<Item = Result<(Vec<RecordBatch>, T)>> + Send + 'static {
    let in_flight = in_flight.max(1);
    let plan = Arc::new(plan);
    let outputs = input
        .map(move |item| {
            let plan = Arc::clone(&plan);
            async move {
                let (batch, tag) = item?;
                let task = tokio::spawn(async move { plan.run(batch).await });
                // A consumer that goes away drops this future: the batch's task stops too.
                let _abort = AbortOnDrop(task.abort_handle());
                let output = task
                    .await
                    .map_err(|e| DataFusionError::Execution(format!("a query batch stopped: {e}")))??;
                Ok((output, tag))
            }
        })
        .buffered(in_flight);
    let (tx, rx) = tokio::sync::mpsc::channel(in_flight);
    let driver = tokio::spawn(async move {
        let mut outputs = std::pin::pin!(outputs);
        while let Some(output) = outputs.next().await {
            if tx.send(output).await.is_err() {
                return;
            }
        }
    });
    let abort = AbortOnDrop(driver.abort_handle());
    futures::stream::unfold((rx, abort), |(mut rx, abort)| async move {
        rx.recv().await.map(|output| (output, (rx, abort)))
    })
}

/// Aborts a task when dropped (a no-op once it has finished).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
