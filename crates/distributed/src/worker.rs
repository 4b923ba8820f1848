//! `tabssl worker`: a datafusion-distributed worker whose sessions know tabssl.
//!
//! Every task a coordinator sends gets a fresh session with DataFusion's default functions
//! plus tabssl's, the coordinator's `tabssl.*` options (except `models_dir`: a worker
//! always reads its own `--models` directory) and [`TabsslCodec`]. Models are pinned to the
//! content hash the coordinator planned with, and `embed`/`predict` name this worker when
//! its files differ. With data roots, the worker also refuses plans that read files outside
//! them or write anything.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::logical_expr::ScalarUDF;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_distributed::{
    DistributedExt, Worker, WorkerPlanRewriteEvent, WorkerPlanRewriteEventResponse, WorkerQueryContext,
};
use tonic::transport::server::TcpIncoming;

use super::codec::TabsslCodec;
use tabssl_functions::file_access::FileAccess;
use tabssl_functions::options::{InferenceSettings, TabsslOptions};
use tabssl_infer::{InferenceKind, InferenceUdf};

/// The version a tabssl worker reports; a coordinator refuses workers of another version.
pub const WORKER_VERSION: &str = concat!("tabssl ", env!("CARGO_PKG_VERSION"));

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Its model registry (`--models`).
    pub models_dir: String,
    /// The files its plans may read (`--data-root`); unrestricted when none is given.
    pub file_access: FileAccess,
    /// How the worker names itself in errors: its listen address.
    pub name: String,
    /// Cores this worker gives model inference: at most this many ONNX Runtime sessions per
    /// model, one thread each when the coordinator leaves `tabssl.intra_threads` automatic.
    /// The partitions a task runs come from the coordinator's plan. `None`: all cores.
    pub cores: Option<usize>,
}

/// What a worker has done, for logs and tests.
#[derive(Debug, Default)]
pub struct WorkerStats {
    tasks: AtomicU64,
}

impl WorkerStats {
    /// Tasks (plan fragments) this worker has started.
    pub fn tasks(&self) -> u64 {
        self.tasks.load(Ordering::Relaxed)
    }
}

/// A datafusion-distributed [`Worker`] with tabssl in every session; `stats` counts its tasks.
pub fn tabssl_worker(options: WorkerOptions, stats: Arc<WorkerStats>) -> Worker {
    let options = Arc::new(options);
    Worker::from_session_builder(move |ctx: WorkerQueryContext| {
        let options = Arc::clone(&options);
        let stats = Arc::clone(&stats);
        async move {
            let state = task_session(&options, ctx)?;
            let task = stats.tasks.fetch_add(1, Ordering::Relaxed) + 1;
            log::info!(target: "tabssl::worker", "task {task} started on {}", options.name);
            Ok(state)
        }
    })
    .with_version(WORKER_VERSION)
}

/// The session one task runs in.
fn task_session(options: &WorkerOptions, ctx: WorkerQueryContext) -> Result<SessionState> {
    let mut builder = ctx
        .builder
        .with_distributed_option_extension_from_headers::<TabsslOptions>(&ctx.headers)?;
    let config = builder.config().get_or_insert_default();
    let mut tabssl = TabsslOptions::of(config.options());
    tabssl.models_dir.clone_from(&options.models_dir);
    if let Some(cores) = options.cores {
        config.options_mut().execution.target_partitions = cores.max(1);
        if tabssl.intra_threads == 0 {
            tabssl.intra_threads = 1;
        }
        if tabssl.sessions_per_model == 0 {
            tabssl.sessions_per_model = cores.max(1);
        }
    }
    let mut builder = tabssl_infer::with_tabssl(builder, tabssl.clone()).with_distributed_option_extension(tabssl);
    let settings = InferenceSettings::from_config(builder.config().get_or_insert_default().options());
    let access = options.file_access.clone();
    let name = options.name.clone();
    let mut state = builder
        .with_distributed_user_codec(TabsslCodec)
        .with_distributed_worker_plan_rewrite_handler(move |event: WorkerPlanRewriteEvent<'_>| {
            check_file_access(&access, &event.plan, &name)?;
            Ok(WorkerPlanRewriteEventResponse::new(event.plan))
        })
        .build();
    for kind in [InferenceKind::Embed, InferenceKind::Predict] {
        let udf = InferenceUdf::new(kind, settings.clone()).on_worker(options.name.clone());
        state.register_udf(Arc::new(ScalarUDF::new_from_impl(udf)))?;
    }
    if let FileAccess::Within(_) = options.file_access {
        state.register_udf(tabssl_functions::corrupt::confined_swap_udf(
            options.file_access.clone(),
        ))?;
    }
    Ok(state)
}

/// With data roots: every file a plan fragment scans must be under them, and a fragment may
/// not write.
fn check_file_access(access: &FileAccess, plan: &Arc<dyn ExecutionPlan>, worker: &str) -> Result<()> {
    if *access == FileAccess::Unrestricted {
        return Ok(());
    }
    plan.apply(|node| {
        if node.is::<DataSinkExec>() {
            return Err(DataFusionError::Plan(format!(
                "worker {worker} refuses a plan that writes files: a worker limited to data roots only reads"
            )));
        }
        let scan = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|scan| scan.data_source().downcast_ref::<FileScanConfig>());
        if let Some(scan) = scan {
            if scan.object_store_url.as_str() != "file:///" {
                return Err(DataFusionError::Plan(format!(
                    "worker {worker} is limited to data roots and reads local files only, not {}",
                    scan.object_store_url.as_str()
                )));
            }
            for file in scan.file_groups.iter().flat_map(|group| group.iter()) {
                let path = format!("/{}", file.object_meta.location);
                access
                    .resolve(&path)
                    .map_err(|e| DataFusionError::Plan(format!("worker {worker}: {e}")))?;
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(())
}

/// Serves `worker` (with gRPC health) on `listener` until `shutdown` completes.
///
/// # Errors
/// When the server fails.
pub async fn serve_worker(
    worker: Worker,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> tabssl_functions::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(worker.into_worker_server())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| tabssl_functions::Error::Internal(format!("the worker server failed: {e}")))
}
