//! Workers in this process, and the multi-file Adult Parquet table they read.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use datafusion::prelude::{SessionConfig, SessionContext};
use tabssl::distributed::{Cluster, WorkerOptions, WorkerStats, distributed_context, serve_worker, tabssl_worker};
use tabssl::io::FileAccess;

use crate::common::{adult_table_sql, context_with, repo, run};

/// Files of the Parquet copy of Adult (contiguous `id` ranges, in order).
pub const FILES: usize = 4;

/// One worker serving on a free loopback port until dropped.
pub struct TestWorker {
    pub address: SocketAddr,
    pub stats: Arc<WorkerStats>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TestWorker {
    pub async fn start(models: &Path, file_access: FileAccess) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let address = listener.local_addr().expect("address");
        let stats = Arc::new(WorkerStats::default());
        let options = WorkerOptions {
            models_dir: models.display().to_string(),
            file_access,
            name: address.to_string(),
            cores: None,
        };
        let worker = tabssl_worker(options, Arc::clone(&stats));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_worker(worker, listener, async {
            let _ = stopped.await;
        }));
        Self {
            address,
            stats,
            _stop: stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// The list `--workers` takes.
pub fn worker_list(workers: &[TestWorker]) -> String {
    workers.iter().map(TestWorker::url).collect::<Vec<_>>().join(",")
}

/// A registry with the shipped `adult_vime` and the fixture `income_head`.
pub fn models_dir(dir: &Path) -> PathBuf {
    let models = dir.join("models");
    std::fs::create_dir_all(&models).expect("models dir");
    for (from, name) in [
        (repo().join("models"), "adult_vime"),
        (repo().join("tests/fixtures/models"), "income_head"),
    ] {
        for extension in ["onnx", "json"] {
            std::fs::copy(
                from.join(format!("{name}.{extension}")),
                models.join(format!("{name}.{extension}")),
            )
            .expect("copies a model");
        }
    }
    models
}

/// Writes Adult with a row key `id` as [`FILES`] Parquet files under `dir/adult`.
pub async fn write_adult_parquet(dir: &Path) -> PathBuf {
    let table = dir.join("adult");
    std::fs::create_dir_all(&table).expect("table dir");
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    run(&ctx, &adult_table_sql("adult_csv")).await;
    run(
        &ctx,
        "CREATE VIEW keyed AS SELECT CAST(row_number() OVER () AS BIGINT) - 1 AS id, * FROM adult_csv",
    )
    .await;
    let rows = 32_561;
    for file in 0..FILES {
        let (from, to) = (rows * file / FILES, rows * (file + 1) / FILES);
        let path = table.join(format!("part-{file}.parquet"));
        run(
            &ctx,
            &format!(
                "COPY (SELECT * FROM keyed WHERE id >= {from} AND id < {to}) TO '{}' STORED AS PARQUET",
                path.display()
            ),
        )
        .await;
    }
    table
}

/// A single-process context over `models` with table `adult` at `table`.
pub async fn local_context(models: &Path, table: &Path) -> SessionContext {
    let ctx = context_with(models, SessionConfig::new().with_target_partitions(2));
    run(
        &ctx,
        &format!(
            "CREATE EXTERNAL TABLE adult STORED AS PARQUET LOCATION '{}/'",
            table.display()
        ),
    )
    .await;
    ctx
}

/// `local` distributed over `workers`, splitting scans finely enough that every worker gets
/// a task.
pub async fn cluster_context(local: &SessionContext, workers: &[TestWorker]) -> SessionContext {
    let cluster = Cluster::parse(&worker_list(workers)).expect("worker list");
    let ctx = distributed_context(local, &cluster).await.expect("workers answer");
    run(&ctx, "SET distributed.file_scan_config_bytes_per_partition = 100000").await;
    ctx
}

/// The result of `sql` as one batch.
pub async fn one_batch(ctx: &SessionContext, sql: &str) -> RecordBatch {
    let batches = run(ctx, sql).await;
    let schema = batches.first().map(RecordBatch::schema).expect("a result");
    concat_batches(&schema, &batches).expect("concat")
}

/// The Adult Parquet table and models in a temporary directory, a single-process context
/// over them, and a cluster of in-process workers with its coordinating context.
pub struct AdultCluster {
    pub dir: tempfile::TempDir,
    pub local: SessionContext,
    pub workers: Vec<TestWorker>,
    pub cluster: SessionContext,
}

impl AdultCluster {
    /// `workers` unrestricted workers over the shared models.
    pub async fn start(workers: usize) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let models = models_dir(dir.path());
        let table = write_adult_parquet(dir.path()).await;
        let local = local_context(&models, &table).await;
        let mut started = Vec::new();
        for _ in 0..workers {
            started.push(TestWorker::start(&models, FileAccess::Unrestricted).await);
        }
        let cluster = cluster_context(&local, &started).await;
        Self {
            dir,
            local,
            workers: started,
            cluster,
        }
    }

    /// Tasks each worker has started so far.
    pub fn tasks(&self) -> Vec<u64> {
        self.workers.iter().map(|w| w.stats.tasks()).collect()
    }

    /// How many workers started a task since `before` ([`AdultCluster::tasks`]).
    pub fn busy_since(&self, before: &[u64]) -> usize {
        self.tasks().iter().zip(before).filter(|(now, then)| now > then).count()
    }
}
