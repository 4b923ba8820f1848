//! SQL over an unbounded stream: the library entry point.
//!
//! ```no_run
//! # async fn example(batches: datafusion::execution::SendableRecordBatchStream) -> datafusion::error::Result<()> {
//! use futures::StreamExt;
//! let ctx = tabssl_stream::streaming_context(tabssl_functions::TabsslOptions::default(), 8192);
//! let mut out = tabssl_stream::execute_stream(&ctx, batches, "SELECT id, embed('adult_vime', age) AS e FROM input").await?;
//! while let Some(batch) = out.next().await {
//!     let batch = batch?; // hand it on
//! }
//! # Ok(())
//! # }
//! ```

use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use tabssl_functions::options::TabsslOptions;

/// The name of the unbounded input table.
pub const INPUT_TABLE: &str = "input";

/// A context for streaming queries: tabssl registered, one partition (rows keep their
/// order and no operator waits for a sibling), and no operator that holds rows back to
/// fill a batch, so a micro-batch leaves the plan as soon as it is computed.
/// `batch_rows` is DataFusion's batch size (for tables joined to the stream).
pub fn streaming_context(options: TabsslOptions, batch_rows: usize) -> SessionContext {
    let builder = SessionStateBuilder::new()
        .with_config(SessionConfig::new().with_information_schema(true))
        .with_default_features();
    let ctx = SessionContext::new_with_state(streaming_session(builder, batch_rows).build());
    tabssl_infer::register_all(&ctx, options);
    ctx
}

/// Makes a session under construction a streaming one, as [`streaming_context`]
/// describes, keeping its tables, functions and other settings.
pub fn streaming_session(mut builder: SessionStateBuilder, batch_rows: usize) -> SessionStateBuilder {
    let config = builder
        .config()
        .take()
        .unwrap_or_default()
        .with_target_partitions(1)
        .with_batch_size(batch_rows.max(1))
        .with_coalesce_batches(false);
    builder
        .with_config(config)
        .with_physical_optimizer_rule(Arc::new(FiltersPassBatchesOn))
}

/// Runs `sql` over `input`, registered as the unbounded table `input`, and returns the
/// result as a stream that yields a batch for each input batch (fewer rows after a
/// filter). `sql` may hold several statements (`SET`, `CREATE VIEW`, ...): all but the
/// last run first; the last is the streaming query. Use a context from
/// [`streaming_context`] so batches are not held back.
///
/// # Errors
/// When a statement fails, or the last one cannot run on unbounded input (ORDER BY, an
/// aggregate without a window, ...): DataFusion rejects such plans before any row is read.
pub async fn execute_stream(
    ctx: &SessionContext,
    input: SendableRecordBatchStream,
    sql: &str,
) -> Result<SendableRecordBatchStream> {
    prepare_stream(ctx, input.schema(), sql)
        .await?
        .execute(ctx, input)
        .await
}

/// A streaming query with its set-up statements run and its last statement planned over
/// the unbounded table `input`, before any input is read.
#[derive(Debug)]
pub struct PreparedStream {
    query: Statement,
    plan: LogicalPlan,
    input: Arc<OneShotPartition>,
}

/// Registers `input` (of `schema`) as the unbounded table `input` of `ctx`, runs every
/// statement of `sql` but the last, and plans the last.
///
/// # Errors
/// As [`execute_stream`].
pub async fn prepare_stream(ctx: &SessionContext, schema: SchemaRef, sql: &str) -> Result<PreparedStream> {
    let input = Arc::new(OneShotPartition {
        schema: Arc::clone(&schema),
        stream: Mutex::new(None),
    });
    let table = StreamingTable::try_new(schema, vec![Arc::clone(&input) as Arc<dyn PartitionStream>])?
        .with_infinite_table(true);
    ctx.deregister_table(INPUT_TABLE)?;
    ctx.register_table(INPUT_TABLE, Arc::new(table))?;

    let mut statements = DFParser::parse_sql(sql)?;
    let Some(query) = statements.pop_back() else {
        return Err(DataFusionError::Plan(
            "the streaming SQL is empty: expected a query over `input`".into(),
        ));
    };
    let is_query = matches!(&query, Statement::Statement(statement) if matches!(**statement, SqlStatement::Query(_)));
    let plan = if is_query {
        tabssl_infer::run_statements(ctx, statements).await?;
        Some(ctx.state().statement_to_plan(query.clone()).await?)
    } else {
        None
    };
    let Some(plan) = plan.filter(|plan| !plan.schema().fields().is_empty()) else {
        return Err(DataFusionError::Plan(
            "the last statement of the streaming SQL returns no columns: it must be the query over `input` \
             (SET and CREATE statements go before it)"
                .into(),
        ));
    };
    Ok(PreparedStream { query, plan, input })
}

impl PreparedStream {
    /// Whether the query treats each row on its own, so it can run batch by batch
    /// (`super::per_batch`).
    pub fn is_row_local(&self) -> bool {
        super::per_batch::is_row_local(&self.plan)
    }

    /// Plans the query again (after the session's settings changed).
    ///
    /// # Errors
    /// When it no longer plans.
    pub async fn replan(&mut self, ctx: &SessionContext) -> Result<()> {
        self.plan = ctx.state().statement_to_plan(self.query.clone()).await?;
        Ok(())
    }

    /// Runs the query as one streaming plan over `input`.
    ///
    /// # Errors
    /// When the plan cannot run on unbounded input.
    pub async fn execute(
        self,
        ctx: &SessionContext,
        input: SendableRecordBatchStream,
    ) -> Result<SendableRecordBatchStream> {
        if let Ok(mut slot) = self.input.stream.lock() {
            *slot = Some(input);
        }
        let df = ctx.execute_logical_plan(self.plan).await?;
        df.execute_stream().await.map_err(explain_unbounded)
    }

    /// The query planned to run on one input batch at a time, in a session set up for
    /// `in_flight` batches at once: automatic model threads and sessions are split between
    /// them (settings the SQL or the options gave stay).
    ///
    /// # Errors
    /// When the query is not row-local or does not plan.
    pub async fn per_batch(mut self, ctx: &SessionContext, in_flight: usize) -> Result<super::per_batch::PerBatchPlan> {
        let configured = TabsslOptions::of(ctx.state().config().options());
        let mut split = configured.clone();
        super::per_batch::split_threads(&mut split, in_flight);
        if split.intra_threads != configured.intra_threads || split.sessions_per_model != configured.sessions_per_model
        {
            tabssl_infer::register_all(ctx, split);
            self.replan(ctx).await?;
        }
        super::per_batch::PerBatchPlan::new(&ctx.state(), self.plan, Arc::clone(&self.input.schema)).await
    }
}

/// DataFusion's refusal of an operator that waits for the end of its input, shortened to
/// the operator's name and what to do instead.
fn explain_unbounded(error: DataFusionError) -> DataFusionError {
    let message = error.to_string();
    let Some(at) = message.find("Cannot execute pipeline breaking queries, operator: ") else {
        return error;
    };
    let operator: String = message[at..]
        .trim_start_matches("Cannot execute pipeline breaking queries, operator: ")
        .chars()
        .take_while(|c| c.is_alphanumeric())
        .collect();
    DataFusionError::Plan(format!(
        "the query cannot run on the unbounded table `input`: {operator} waits for the end of its input, \
         which never comes. A streaming query produces rows as they arrive: projections, filters, \
         the tabssl functions (ORDER BY, aggregates and joins on two streams do not)"
    ))
}

/// The input stream, handed out once: a streaming query reads its input one time.
struct OneShotPartition {
    schema: arrow::datatypes::SchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl std::fmt::Debug for OneShotPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneShotPartition")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PartitionStream for OneShotPartition {
    fn schema(&self) -> &arrow::datatypes::SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self.stream.lock().ok().and_then(|mut stream| stream.take());
        taken.unwrap_or_else(|| {
            let error = DataFusionError::Execution(
                "the stream `input` is read once, by the last statement: statements before it set up (SET, \
                 CREATE VIEW, ...) and cannot read it"
                    .into(),
            );
            Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                Arc::clone(&self.schema),
                futures::stream::once(async move { Err(error) }),
            ))
        })
    }
}

/// Makes every `FilterExec` pass its output batches on as they are: by default a filter
/// gathers small outputs into full-size batches, which on a slow stream would hold rows
/// back until enough arrive.
#[derive(Debug)]
struct FiltersPassBatchesOn;

impl PhysicalOptimizerRule for FiltersPassBatchesOn {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| match node.downcast_ref::<FilterExec>() {
            // A target of one row: every non-empty batch goes straight through.
            Some(filter) if filter.batch_size() != 1 => Ok(Transformed::yes(
                Arc::new(filter.with_batch_size(1)?) as Arc<dyn ExecutionPlan>
            )),
            _ => Ok(Transformed::no(node)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "tabssl_filters_pass_batches_on"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
