//! The scan behind `tabssl_synthetic`: rows generated batch by batch as they are read, in
//! 8192-row blocks dealt round-robin over the partitions. A scan covers a contiguous range
//! of blocks, so a cluster can give each worker its own range ([`SyntheticExec::split`]) and
//! send the scan over the network as five numbers.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Statistics, internal_err, plan_err};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use serde::{Deserialize, Serialize};

use super::{BATCH_ROWS, synthetic_batch, synthetic_schema};

/// `tabssl_synthetic(rows, seed)` as a table.
#[derive(Debug, Clone, Copy)]
pub struct SyntheticTable {
    seed: u64,
    rows: u64,
}

impl SyntheticTable {
    /// `rows` rows of the generator seeded with `seed`.
    pub fn new(seed: u64, rows: u64) -> Self {
        Self { seed, rows }
    }
}

#[async_trait]
impl TableProvider for SyntheticTable {
    fn schema(&self) -> SchemaRef {
        synthetic_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let blocks = self.rows.div_ceil(BATCH_ROWS as u64);
        let scan = ScanSpec {
            seed: self.seed,
            rows: self.rows,
            blocks: 0..blocks,
            partitions: state.config_options().execution.target_partitions.max(1),
            projection: projection.cloned(),
        };
        Ok(Arc::new(SyntheticExec::try_new(scan)?))
    }
}

/// What a synthetic scan generates: everything a worker needs to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanSpec {
    seed: u64,
    /// Rows of the whole table (the last block may be short).
    rows: u64,
    /// The 8192-row blocks this scan generates.
    blocks: Range<u64>,
    partitions: usize,
    projection: Option<Vec<usize>>,
}

/// Generates a block range of the synthetic table.
#[derive(Debug)]
pub struct SyntheticExec {
    spec: ScanSpec,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl SyntheticExec {
    /// The scan `spec` describes.
    ///
    /// # Errors
    /// A projection outside the table's columns, or no partition.
    pub fn try_new(spec: ScanSpec) -> Result<Self> {
        if spec.partitions == 0 {
            return plan_err!("a synthetic scan needs at least one partition");
        }
        let schema = match &spec.projection {
            Some(columns) => Arc::new(synthetic_schema().project(columns)?),
            None => synthetic_schema(),
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(spec.partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Self {
            spec,
            schema,
            properties: Arc::new(properties),
        })
    }

    /// What this scan generates.
    pub fn spec(&self) -> &ScanSpec {
        &self.spec
    }

    /// The scan cut into `parts` scans of contiguous block ranges, in order, each with this
    /// scan's partitions: together they generate exactly this scan's rows.
    ///
    /// # Errors
    /// None expected (the specs are valid by construction).
    pub fn split(&self, parts: usize) -> Result<Vec<Self>> {
        let parts = parts.max(1) as u64;
        let Range { start, end } = self.spec.blocks.clone();
        (0..parts)
            .map(|part| {
                let spec = ScanSpec {
                    blocks: start + (end - start) * part / parts..start + (end - start) * (part + 1) / parts,
                    ..self.spec.clone()
                };
                Self::try_new(spec)
            })
            .collect()
    }

    /// Rows this scan generates.
    pub fn rows(&self) -> u64 {
        let first = self.spec.blocks.start * BATCH_ROWS as u64;
        let end = (self.spec.blocks.end * BATCH_ROWS as u64).min(self.spec.rows);
        end.saturating_sub(first)
    }
}

impl DisplayAs for SyntheticExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "SyntheticExec: seed={}, rows={}, blocks={}..{}",
            self.spec.seed, self.spec.rows, self.spec.blocks.start, self.spec.blocks.end
        )
    }
}

impl ExecutionPlan for SyntheticExec {
    fn name(&self) -> &str {
        "SyntheticExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            plan_err!("SyntheticExec has no inputs, got {}", children.len())
        }
    }

    fn execute(&self, partition: usize, _context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let spec = self.spec.clone();
        if partition >= spec.partitions {
            return internal_err!(
                "SyntheticExec has {} partitions, asked for {partition}",
                spec.partitions
            );
        }
        let blocks = (spec.blocks.start + partition as u64..spec.blocks.end).step_by(spec.partitions);
        let batches = futures::stream::iter(blocks.map(move |block| {
            let start = block * BATCH_ROWS as u64;
            let batch = synthetic_batch(spec.seed, start, (start + BATCH_ROWS as u64).min(spec.rows))?;
            match &spec.projection {
                Some(columns) => batch.project(columns).map_err(DataFusionError::from),
                None => Ok(batch),
            }
        }));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            batches,
        )))
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Arc<Statistics>> {
        let mut statistics = Statistics::new_unknown(&self.schema);
        if partition.is_none() {
            statistics.num_rows =
                datafusion::common::stats::Precision::Exact(usize::try_from(self.rows()).unwrap_or(usize::MAX));
        }
        Ok(Arc::new(statistics))
    }
}
