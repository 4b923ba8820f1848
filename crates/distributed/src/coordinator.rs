//! The coordinating side: a tabssl session whose queries run on a list of workers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::context::SessionContext;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion_distributed::grpc::{BoxCloneSyncChannel, create_worker_client};
use datafusion_distributed::{
    ChannelResolver, CoordinatorToWorkerMsg, DistributedExt, ExecuteTaskRequest, GetWorkerInfoRequest,
    GetWorkerInfoResponse, SessionStateBuilderExt, SetPlanRequest, WorkerChannel, WorkerResolver,
    WorkerToCoordinatorMsg,
};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use http::HeaderMap;
use url::Url;

use super::codec::TabsslCodec;
use super::ordered::{contiguous_file_scan, split_synthetic_scan, synthetic_task_count};
use super::worker::WORKER_VERSION;
use tabssl_functions::options::TabsslOptions;

/// Environment variable holding the worker list when `--workers` is not given.
pub const WORKERS_ENV: &str = "TABSSL_WORKERS";

/// Bytes of input files per partition before a scan is split over more tasks
/// (`distributed.file_scan_config_bytes_per_partition`, 16 MiB in datafusion-distributed).
/// Embedding and corrupting cost far more per byte than a plain scan (128 KiB of Parquet
/// is about 10,000 Adult rows), so tabssl splits much sooner; the task count never exceeds
/// the number of workers.
pub const DEFAULT_BYTES_PER_PARTITION: usize = 128 << 10;

/// How long connecting to a worker may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP/2 keep-alive: a worker that stops answering pings for this long fails its query.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The workers a coordinating session sends its plan fragments to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    workers: Vec<Url>,
}

impl Cluster {
    /// Parses a comma-separated worker list: `http://host:port` URLs, or `host:port`
    /// (read as `http://host:port`).
    ///
    /// # Errors
    /// [`tabssl_functions::Error::Invalid`] for an empty list, a malformed entry, a scheme other than
    /// `http`, or a missing port.
    pub fn parse(list: &str) -> tabssl_functions::Result<Self> {
        let mut workers = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let text = if entry.contains("://") {
                entry.to_string()
            } else {
                format!("http://{entry}")
            };
            let bad = |why: &str| {
                tabssl_functions::Error::invalid(format!(
                    "worker {entry:?}: {why}; expected host:port or http://host:port"
                ))
            };
            let url = Url::parse(&text).map_err(|e| bad(&e.to_string()))?;
            if url.scheme() != "http" {
                return Err(bad(
                    "workers speak plain gRPC (http); TLS between coordinator and workers is not supported yet",
                ));
            }
            if url.host_str().is_none() || url.port().is_none() {
                return Err(bad("it needs a host and a port"));
            }
            if url.path() != "/" || url.query().is_some() {
                return Err(bad("a worker address has no path or query"));
            }
            if !workers.contains(&url) {
                workers.push(url);
            }
        }
        if workers.is_empty() {
            return Err(tabssl_functions::Error::invalid(
                "the worker list is empty; expected host:port[,host:port...]",
            ));
        }
        Ok(Self { workers })
    }

    /// The workers, in the order given.
    pub fn workers(&self) -> &[Url] {
        &self.workers
    }

    /// Connects to every worker and checks it runs this version of tabssl.
    ///
    /// # Errors
    /// [`tabssl_functions::Error::Invalid`] naming the first worker that cannot be reached in
    /// `CONNECT_TIMEOUT`, does not answer, or runs another version.
    pub async fn check(&self, channels: &WorkerChannels) -> tabssl_functions::Result<()> {
        let checks = self.workers.iter().map(|url| async move {
            let info = tokio::time::timeout(CONNECT_TIMEOUT * 2, async {
                let mut client = create_worker_client(channels.channel(url).await?);
                client.get_worker_info(GetWorkerInfoRequest {}).await
            })
            .await;
            match info {
                Err(_) => Err(tabssl_functions::Error::invalid(format!(
                    "worker {url} did not answer within {:?}",
                    CONNECT_TIMEOUT * 2
                ))),
                Ok(Err(e)) => Err(tabssl_functions::Error::invalid(format!(
                    "worker {url} is unreachable: {e}"
                ))),
                Ok(Ok(GetWorkerInfoResponse { version })) if version != WORKER_VERSION => {
                    Err(tabssl_functions::Error::invalid(format!(
                        "worker {url} runs {:?}, this coordinator is {WORKER_VERSION:?}; run the same tabssl \
                         version everywhere",
                        if version.is_empty() { "(not tabssl)" } else { &version }
                    )))
                }
                Ok(Ok(_)) => Ok(()),
            }
        });
        futures::future::try_join_all(checks).await.map(|_| ())
    }
}

/// The fixed worker list, for the distributed planner.
#[derive(Debug, Clone)]
struct StaticWorkers(Vec<Url>);

impl WorkerResolver for StaticWorkers {
    fn get_urls(&self) -> Result<Vec<Url>> {
        Ok(self.0.clone())
    }
}

/// gRPC channels to the workers, one per worker, with a connect timeout and keep-alive
/// pings, whose errors name the worker.
#[derive(Clone, Default)]
pub struct WorkerChannels {
    channels: Arc<Mutex<HashMap<Url, BoxCloneSyncChannel>>>,
}

impl WorkerChannels {
    async fn channel(&self, url: &Url) -> Result<BoxCloneSyncChannel> {
        if let Some(channel) = self.channels.lock().unwrap_or_else(PoisonError::into_inner).get(url) {
            return Ok(channel.clone());
        }
        let endpoint = tonic::transport::Endpoint::from_shared(url.to_string())
            .map_err(|e| DataFusionError::Configuration(format!("worker {url}: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEP_ALIVE)
            .keep_alive_timeout(KEEP_ALIVE)
            .keep_alive_while_idle(true);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| DataFusionError::Execution(format!("worker {url}: cannot connect: {e} ({e:?})")))?;
        let channel = BoxCloneSyncChannel::new(channel);
        self.channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(url.clone(), channel.clone());
        Ok(channel)
    }

    /// Forgets the connection to `url`, so the next query connects again.
    fn forget(&self, url: &Url) {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner).remove(url);
    }
}

#[async_trait]
impl ChannelResolver for WorkerChannels {
    async fn get_worker_client_for_url(&self, url: &Url) -> Result<Box<dyn WorkerChannel>> {
        let channel = self.channel(url).await.map_err(|e| named(url, e))?;
        Ok(Box::new(NamedWorker {
            url: url.clone(),
            channels: self.clone(),
            inner: create_worker_client(channel),
        }))
    }
}

/// A worker client whose errors say which worker failed.
struct NamedWorker {
    url: Url,
    channels: WorkerChannels,
    inner: Box<dyn WorkerChannel>,
}

/// `error`, prefixed with the worker it came from.
fn named(url: &Url, error: DataFusionError) -> DataFusionError {
    DataFusionError::Context(format!("on worker {url}"), Box::new(error))
}

impl NamedWorker {
    fn fail(&self, error: DataFusionError) -> DataFusionError {
        self.channels.forget(&self.url);
        named(&self.url, error)
    }
}

#[async_trait]
impl WorkerChannel for NamedWorker {
    async fn coordinator_channel(
        &mut self,
        headers: HeaderMap,
        set_plan_request: SetPlanRequest,
        c2w_stream: BoxStream<'static, CoordinatorToWorkerMsg>,
        metrics: ExecutionPlanMetricsSet,
        task_ctx: &Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<WorkerToCoordinatorMsg>>> {
        let stream = self
            .inner
            .coordinator_channel(headers, set_plan_request, c2w_stream, metrics, task_ctx)
            .await
            .map_err(|e| self.fail(e))?;
        let (url, channels) = (self.url.clone(), self.channels.clone());
        Ok(stream
            .map_err(move |e| {
                channels.forget(&url);
                named(&url, e)
            })
            .boxed())
    }

    async fn execute_task(
        &mut self,
        headers: HeaderMap,
        request: ExecuteTaskRequest,
        metrics: ExecutionPlanMetricsSet,
        task_ctx: &Arc<TaskContext>,
    ) -> Result<Vec<BoxStream<'static, Result<RecordBatch>>>> {
        let streams = self
            .inner
            .execute_task(headers, request, metrics, task_ctx)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(streams
            .into_iter()
            .map(|stream| {
                let (url, channels) = (self.url.clone(), self.channels.clone());
                stream
                    .map_err(move |e| {
                        channels.forget(&url);
                        named(&url, e)
                    })
                    .boxed()
            })
            .collect())
    }

    async fn get_worker_info(&mut self, request: GetWorkerInfoRequest) -> Result<GetWorkerInfoResponse> {
        self.inner.get_worker_info(request).await.map_err(|e| self.fail(e))
    }
}

/// `state` made distributed over `cluster`: the same tables, functions and options, with
/// datafusion-distributed's planner, tabssl's codec, contiguous file ranges per task and
/// `tabssl.*` options sent to every worker. Nothing is contacted: see
/// [`distributed_context`] for the checked version.
///
/// # Errors
/// When the distributed settings cannot be applied (none expected).
pub fn distributed_state(state: SessionState, cluster: &Cluster, channels: WorkerChannels) -> Result<SessionState> {
    let tabssl = TabsslOptions::of(state.config().options());
    let builder = tabssl_infer::without_spread_inference(SessionStateBuilder::new_from_existing(state))
        .with_distributed_worker_resolver(StaticWorkers(cluster.workers.clone()))
        .with_distributed_channel_resolver(channels)
        .with_distributed_option_extension(tabssl)
        .with_distributed_user_codec(TabsslCodec)
        .with_distributed_scale_up_leaf_node_handler(contiguous_file_scan)
        .with_distributed_desired_task_count_handler(synthetic_task_count)
        .with_distributed_scale_up_leaf_node_handler(split_synthetic_scan)
        .with_distributed_file_scan_config_bytes_per_partition(DEFAULT_BYTES_PER_PARTITION)?
        .with_distributed_planner();
    let mut state = builder.build();
    tabssl_export::install_plan_ordering(&mut state, Arc::new(super::ordered::ClusterOrdering));
    Ok(state)
}

/// A session over `ctx`'s tables, functions and options whose queries run on `cluster`,
/// after checking that every worker answers and runs this tabssl version.
///
/// # Errors
/// A worker that cannot be reached or runs another version ([`Cluster::check`]).
pub async fn distributed_context(ctx: &SessionContext, cluster: &Cluster) -> tabssl_functions::Result<SessionContext> {
    let channels = WorkerChannels::default();
    cluster.check(&channels).await?;
    Ok(SessionContext::new_with_state(distributed_state(
        ctx.state(),
        cluster,
        channels,
    )?))
}
