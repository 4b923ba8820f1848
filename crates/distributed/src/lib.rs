//! Scale-out: the same SQL over several worker processes, on
//! [datafusion-distributed](https://github.com/datafusion-contrib/datafusion-distributed).
//!
//! - `worker`: `tabssl worker`, a datafusion-distributed worker whose sessions know every
//!   tabssl function, read models from their own directory and refuse a model whose content
//!   hash differs from the one the coordinator planned with (models are pinned while
//!   planning: `'adult_vime@sha256:…'`).
//! - `coordinator`: [`distributed_context`] turns a tabssl session into one whose queries
//!   are planned on the coordinator and run on the workers ([`Cluster`]).
//! - `explain`: `EXPLAIN [ANALYZE]` showing stages, tasks and their metrics.
//! - `codec`: the `tabssl_synthetic` scan over the network.
//! - `ordered`: file order kept across tasks, so exports are identical to single-process
//!   ones.
//!
//! Only physical plan fragments travel; the workers read the input files themselves (a
//! shared file system or the same paths on every machine).

pub(crate) mod codec;
pub(crate) mod coordinator;
pub(crate) mod explain;
pub(crate) mod ordered;
pub(crate) mod worker;

pub use coordinator::{Cluster, WORKERS_ENV, WorkerChannels, distributed_context, distributed_state};
pub use explain::explain;
pub use worker::{WorkerOptions, WorkerStats, serve_worker, tabssl_worker};

/// True when a session with `config` plans its queries for a cluster.
pub fn is_distributed(config: &datafusion::config::ConfigOptions) -> bool {
    config
        .extensions
        .get::<datafusion_distributed::DistributedConfig>()
        .is_some()
}
