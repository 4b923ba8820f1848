//! Keeping the input's row order through a distributed plan.
//!
//! datafusion-distributed deals a scan's file ranges out to tasks round-robin and the
//! coordinator coalesces the tasks' partitions in whatever order they answer. tabssl's
//! exports are defined on the input's order (the output file is byte-identical whatever
//! runs it), so a tabssl cluster:
//! - gives each task a contiguous run of the scan's byte ranges ([`contiguous_file_scan`]),
//!   so task 0 partition 0, task 0 partition 1, ..., task 1 partition 0, ... is file order;
//! - and, where order matters, reads the coordinator's partitions one after the other
//!   ([`OrderedConcatExec`]) while every partition keeps computing ahead into a small buffer.
//!
//! With datafusion-distributed 4.0.0 the partitions of one task sometimes arrive under each
//! other's index (observed: a task's two file ranges swapped in one run out of three), so
//! an ordered query runs one partition per task and several tasks per worker instead
//! ([`ordered_session`]): the order of tasks is reliable.
//!
//! `tabssl_synthetic` scans are split the same way: contiguous 8192-row blocks per task.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{internal_err, plan_err};
use datafusion::datasource::physical_plan::{FileGroup, FileGroupPartitioner, FileScanConfig};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::context::SessionContext;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::EmissionType;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    ReplaceChildrenOptions,
};
use datafusion_distributed::{
    DesiredTaskCountEvent, DesiredTaskCountEventResponse, DistributedConfig, DistributedExec, DistributedGetterExt,
    DistributedLeafExec, ScaleUpLeafNodeEvent, ScaleUpLeafNodeEventResponse,
};
use futures::StreamExt;

use tabssl_functions::synthetic::SyntheticExec;

/// Batches each partition of an [`OrderedConcatExec`] may compute ahead of the reader.
const READ_AHEAD_BATCHES: usize = 2;

/// Scale-up handler for file scans: `task_count × partitions` byte ranges in file order,
/// task `t` taking ranges `t·partitions .. (t+1)·partitions`. Scans with a declared
/// partitioning (hash-partitioned files) are left to datafusion-distributed.
pub fn contiguous_file_scan(event: ScaleUpLeafNodeEvent) -> Option<Result<ScaleUpLeafNodeEventResponse>> {
    let scan = event.plan.downcast_ref::<DataSourceExec>()?;
    let config = scan.data_source().downcast_ref::<FileScanConfig>()?;
    if config.output_partitioning.is_some() {
        return None;
    }
    let partitions = event.plan.output_partitioning().partition_count().max(1);
    let tasks = event.task_count.max(1);
    let ranges = FileGroupPartitioner::new()
        .with_target_partitions(partitions * tasks)
        .with_repartition_file_min_size(0)
        .repartition_file_groups(&config.file_groups)
        .unwrap_or_else(|| config.file_groups.clone());
    // Flatten to the ranges in file order, then deal them out in contiguous runs.
    let mut ranges: Vec<FileGroup> = ranges.into_iter().filter(|group| !group.is_empty()).collect();
    let total = ranges.len();
    let mut variants = Vec::with_capacity(tasks);
    let mut taken = 0;
    for task in 0..tasks {
        let until = total * (task + 1) / tasks;
        let mut mine: Vec<FileGroup> = ranges.drain(..until - taken).collect();
        taken = until;
        mine.resize_with(partitions.max(mine.len()), || FileGroup::new(Vec::new()));
        let mut variant = config.clone();
        variant.file_groups = mine;
        variants.push(variant);
    }
    // Every variant needs the same partition count: pad to the widest.
    let width = variants.iter().map(|v| v.file_groups.len()).max().unwrap_or(partitions);
    let variants = variants.into_iter().map(|mut variant| {
        variant.file_groups.resize_with(width, || FileGroup::new(Vec::new()));
        DataSourceExec::from_data_source(variant) as Arc<dyn ExecutionPlan>
    });
    Some(
        DistributedLeafExec::try_new(Arc::clone(event.plan), variants)
            .map(|leaf| ScaleUpLeafNodeEventResponse::new(Arc::new(leaf))),
    )
}

/// Rows of a `tabssl_synthetic` scan per task: below this, a scan is not split further.
pub const SYNTHETIC_ROWS_PER_TASK: u64 = 65_536;

/// Desired tasks of a `tabssl_synthetic` scan: one per [`SYNTHETIC_ROWS_PER_TASK`] rows (the
/// planner caps it at the number of workers).
pub fn synthetic_task_count(event: DesiredTaskCountEvent) -> Option<Result<DesiredTaskCountEventResponse>> {
    let scan = event.plan.downcast_ref::<SyntheticExec>()?;
    let tasks = scan.rows().div_ceil(SYNTHETIC_ROWS_PER_TASK).max(1);
    Some(Ok(DesiredTaskCountEventResponse::desired(
        usize::try_from(tasks).unwrap_or(usize::MAX),
    )))
}

/// Scale-up handler for `tabssl_synthetic` scans: contiguous block ranges, in order.
pub fn split_synthetic_scan(event: ScaleUpLeafNodeEvent) -> Option<Result<ScaleUpLeafNodeEventResponse>> {
    let scan = event.plan.downcast_ref::<SyntheticExec>()?;
    let variants = match scan.split(event.task_count) {
        Ok(parts) => parts.into_iter().map(|part| Arc::new(part) as Arc<dyn ExecutionPlan>),
        Err(e) => return Some(Err(e)),
    };
    Some(
        DistributedLeafExec::try_new(Arc::clone(event.plan), variants)
            .map(|leaf| ScaleUpLeafNodeEventResponse::new(Arc::new(leaf))),
    )
}

/// How an export keeps the input's order on a cluster ([`tabssl_export::PlanOrdering`]):
/// [`ordered_session`] and [`keep_partition_order`].
#[derive(Debug)]
pub struct ClusterOrdering;

impl tabssl_export::PlanOrdering for ClusterOrdering {
    fn ordered_session(&self, ctx: &SessionContext) -> Result<SessionContext> {
        ordered_session(ctx)
    }

    fn keep_partition_order(&self, plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
        keep_partition_order(plan)
    }
}

/// A session like `ctx` for queries whose output order matters: one partition per task,
/// and up to one task per core of every worker (taking the coordinator's core count for
/// the workers').
///
/// # Errors
/// When `ctx` is not distributed or its worker list cannot be read.
pub fn ordered_session(ctx: &SessionContext) -> Result<SessionContext> {
    let mut state = ctx.state();
    let workers = state.config().get_distributed_worker_resolver()?.get_urls()?.len();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let options = state.config_mut().options_mut();
    options.execution.target_partitions = 1;
    DistributedConfig::from_config_options_mut(options)?.max_tasks_per_stage = (workers * cores).max(1);
    Ok(SessionContext::new_with_state(state))
}

/// Makes a distributed plan's single output keep its input's partition order: the
/// coordinator's `CoalescePartitionsExec` (which interleaves) becomes an
/// [`OrderedConcatExec`]. Other plans are returned as they are.
///
/// # Errors
/// When the plan cannot be rebuilt (none expected).
pub fn keep_partition_order(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    let Some(distributed) = plan.downcast_ref::<DistributedExec>() else {
        return Ok(plan);
    };
    let Some(head) = distributed.children().first().copied() else {
        return Ok(plan);
    };
    let Some(coalesce) = head.downcast_ref::<CoalescePartitionsExec>() else {
        return Ok(plan);
    };
    if coalesce.fetch().is_some() {
        return Ok(plan);
    }
    let ordered: Arc<dyn ExecutionPlan> = Arc::new(OrderedConcatExec::new(Arc::clone(coalesce.input())));
    Arc::clone(&plan).replace_children(
        vec![ordered],
        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
    )
}

/// One output partition holding the input's partitions one after the other, in partition
/// order. Every input partition runs at once, each a few batches ahead of the reader.
#[derive(Debug)]
pub struct OrderedConcatExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl OrderedConcatExec {
    /// Concatenates `input`'s partitions in order.
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            input.boundedness(),
        );
        Self {
            input,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for OrderedConcatExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "OrderedConcatExec")
    }
}

impl ExecutionPlan for OrderedConcatExec {
    fn name(&self) -> &str {
        "OrderedConcatExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        match <[_; 1]>::try_from(children) {
            Ok([input]) => Ok(Arc::new(Self::new(input))),
            Err(children) => plan_err!("OrderedConcatExec takes one input, got {}", children.len()),
        }
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("OrderedConcatExec has one partition, asked for {partition}");
        }
        let schema: SchemaRef = self.input.schema();
        let mut readers = Vec::new();
        for input_partition in 0..self.input.output_partitioning().partition_count() {
            let mut stream = self.input.execute(input_partition, Arc::clone(&context))?;
            let (sender, receiver) = tokio::sync::mpsc::channel(READ_AHEAD_BATCHES);
            let pump = SpawnedTask::spawn(async move {
                while let Some(batch) = stream.next().await {
                    let failed = batch.is_err();
                    if sender.send(batch).await.is_err() || failed {
                        break;
                    }
                }
            });
            readers.push((pump, receiver));
        }
        let batches = futures::stream::iter(readers).flat_map(|(pump, receiver)| {
            // The pump lives as long as its partition is being read; dropping the stream
            // aborts every pump still running.
            tokio_stream_of(receiver).map(move |batch| {
                let _alive = &pump;
                batch
            })
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

/// A receiver as a stream.
fn tokio_stream_of<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}
