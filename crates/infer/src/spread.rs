//! Inference on every partition: a physical optimizer rule that deals batches round robin
//! to the partitions of a projection that calls `embed` or `predict`.
//!
//! DataFusion splits a Parquet scan by byte ranges, and a row group is read by the range
//! holding its midpoint: a file with one large row group gives every row to one partition
//! while the others stay empty. A cheap projection does not mind, but `embed` then runs on
//! one core. Left alone, the projection is also pushed into the scan, so no later
//! repartition can help.
//!
//! The rule runs right after DataFusion's `EnsureRequirements` and puts a
//! `RepartitionExec(RoundRobinBatch(n))` between such a projection and its input, where
//! `n` is the input's partition count: the projection's output partitioning (count and
//! guarantees) stays what the rest of the plan was planned with. A projection with a
//! repartitioning input is left alone, and so is one whose input is hash partitioned or
//! ordered (a round robin would break what a parent relies on) or has one partition. Since
//! the projection now benefits from its input's partitioning, DataFusion's projection
//! pushdown keeps it above the repartition.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, Partitioning, replace_children_if_necessary};

use super::udf::InferenceUdf;

/// The rule's name in `EXPLAIN VERBOSE` and in a session's rule list.
pub const RULE_NAME: &str = "tabssl_spread_inference";

/// The DataFusion rule the spread runs after (distribution and ordering are settled there).
const AFTER: &str = "EnsureRequirements";

/// Deals the input of every inference projection round robin to its partitions.
#[derive(Debug, Default)]
pub struct SpreadInference;

impl PhysicalOptimizerRule for SpreadInference {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        if !config.optimizer.enable_round_robin_repartition {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(projection) = node.downcast_ref::<ProjectionExec>() else {
                return Ok(Transformed::no(node));
            };
            let input = projection.input();
            let partitions = match input.output_partitioning() {
                Partitioning::UnknownPartitioning(n) => *n,
                _ => return Ok(Transformed::no(node)),
            };
            let spread = partitions > 1
                && !input.is::<RepartitionExec>()
                && input.output_ordering().is_none()
                && projection.expr().iter().any(|e| calls_inference(&e.expr));
            if !spread {
                return Ok(Transformed::no(node));
            }
            let dealt = RepartitionExec::try_new(Arc::clone(input), Partitioning::RoundRobinBatch(partitions))?;
            Ok(Transformed::yes(replace_children_if_necessary(
                Arc::clone(&node),
                vec![Arc::new(dealt)],
            )?))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        RULE_NAME
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `expr` calls `embed` or `predict` anywhere in its tree.
fn calls_inference(expr: &Arc<dyn PhysicalExpr>) -> bool {
    let mut found = false;
    // The closure never fails.
    let _ = expr.apply(|e| {
        found = e
            .downcast_ref::<ScalarFunctionExpr>()
            .is_some_and(|f| f.fun().inner().is::<InferenceUdf>());
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// Adds `SpreadInference` to a session under construction, right after
/// `EnsureRequirements` in its physical optimizer rules (the defaults when it has none).
/// Idempotent.
#[must_use]
pub fn with_spread_inference(mut builder: SessionStateBuilder) -> SessionStateBuilder {
    let mut rules = builder.physical_optimizers().take().unwrap_or_default().rules;
    if !rules.iter().any(|r| r.name() == RULE_NAME) {
        let at = rules
            .iter()
            .position(|r| r.name() == AFTER)
            .map_or(rules.len(), |i| i + 1);
        rules.insert(at, Arc::new(SpreadInference));
    }
    *builder.physical_optimizers() = Some(PhysicalOptimizer::with_rules(rules));
    builder
}

/// Removes `SpreadInference` from a session under construction (plans that are cut into
/// distributed stages keep DataFusion's own partitioning).
#[must_use]
pub fn without_spread_inference(mut builder: SessionStateBuilder) -> SessionStateBuilder {
    if let Some(optimizer) = builder.physical_optimizers().take() {
        let rules = optimizer.rules.into_iter().filter(|r| r.name() != RULE_NAME).collect();
        *builder.physical_optimizers() = Some(PhysicalOptimizer::with_rules(rules));
    }
    builder
}
