//! How an export keeps the input's row order on a session that runs its plans elsewhere.
//!
//! The export is defined on the input's order (its output is byte-identical whatever runs
//! it). In one process the export runs its second pass on one partition and its projection
//! on every core ([`super::ordered_projection`]); a session that plans for a cluster
//! carries a [`PlanOrdering`] in its config ([`install_plan_ordering`]) that says how to do
//! the same there. The cluster installs its own; the export only asks for it, so it does
//! not depend on the cluster.

use std::fmt;
use std::sync::Arc;

use datafusion::error::Result;
use datafusion::execution::session_state::SessionState;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};

/// Keeping the input's row order on a session whose plans run elsewhere (a cluster).
pub trait PlanOrdering: Send + Sync + fmt::Debug {
    /// A session over `ctx`'s tables, functions and options whose partitions, read one
    /// after the other, are the input's order.
    ///
    /// # Errors
    /// When the session cannot be set up that way.
    fn ordered_session(&self, ctx: &SessionContext) -> Result<SessionContext>;

    /// `plan` (planned in an [`PlanOrdering::ordered_session`]) with one output that
    /// reads its partitions in order.
    ///
    /// # Errors
    /// When the plan cannot be rebuilt.
    fn keep_partition_order(&self, plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>>;
}

/// The session config extension holding a session's [`PlanOrdering`].
#[derive(Debug, Clone)]
struct InstalledOrdering(Arc<dyn PlanOrdering>);

/// Makes `state`'s sessions keep the input's order through `ordering`.
pub fn install_plan_ordering(state: &mut SessionState, ordering: Arc<dyn PlanOrdering>) {
    state.config_mut().set_extension(Arc::new(InstalledOrdering(ordering)));
}

/// The ordering a session with `config` installed, if any: `None` runs in this process.
pub fn plan_ordering(config: &SessionConfig) -> Option<Arc<dyn PlanOrdering>> {
    config
        .get_extension::<InstalledOrdering>()
        .map(|installed| Arc::clone(&installed.0))
}
