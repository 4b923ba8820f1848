//! A three-worker cluster in this process gives the single-process results.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Float32Type;
use tabssl::distributed::{Cluster, distributed_context};
use tabssl::export::{ExportOptions, export, marginal_path};
use tabssl::infer::{ModelRegistry, content_hash};
use tabssl::io::FileAccess;

use super::harness::{
    AdultCluster, TestWorker, cluster_context, local_context, models_dir, one_batch, write_adult_parquet,
};
use crate::common::{error_of, run};

const VIME_COLUMNS: &str = r#"age, workclass, fnlwgt, education, "education-num", "marital-status", occupation,
    relationship, race, sex, "capital-gain", "capital-loss", "hours-per-week", "native-country""#;
const HEAD_COLUMNS: &str = r#"age, fnlwgt, "education-num", "capital-gain", "capital-loss", "hours-per-week""#;

async fn workers(models: &std::path::Path, n: usize) -> Vec<TestWorker> {
    let mut workers = Vec::new();
    for _ in 0..n {
        workers.push(TestWorker::start(models, FileAccess::Unrestricted).await);
    }
    workers
}

/// Every column equal; Float32 values (embeddings, predictions) within 1e-6.
fn assert_same(local: &RecordBatch, distributed: &RecordBatch, what: &str) {
    assert_eq!(local.schema(), distributed.schema(), "{what}: schema");
    assert_eq!(local.num_rows(), distributed.num_rows(), "{what}: rows");
    for (i, field) in local.schema().fields().iter().enumerate() {
        let (a, b) = (local.column(i), distributed.column(i));
        let floats = |array: &dyn Array| -> Option<Vec<Option<f32>>> {
            match array.data_type() {
                arrow::datatypes::DataType::Float32 => Some(array.as_primitive::<Float32Type>().iter().collect()),
                arrow::datatypes::DataType::FixedSizeList(_, _) => {
                    let list = array.as_fixed_size_list();
                    Some(list.values().as_primitive::<Float32Type>().iter().collect())
                }
                _ => None,
            }
        };
        match (floats(a.as_ref()), floats(b.as_ref())) {
            (Some(x), Some(y)) => {
                assert_eq!(a.nulls(), b.nulls(), "{what}: NULLs of {}", field.name());
                assert_eq!(x.len(), y.len(), "{what}: values of {}", field.name());
                for (k, (x, y)) in x.iter().zip(&y).enumerate() {
                    match (x, y) {
                        (Some(x), Some(y)) => {
                            assert!((x - y).abs() <= 1e-6, "{what}: {} value {k}: {x} vs {y}", field.name());
                        }
                        _ => assert_eq!(x.is_some(), y.is_some(), "{what}: {} value {k}", field.name()),
                    }
                }
            }
            _ => assert_eq!(a, b, "{what}: column {}", field.name()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embed_predict_corruption_and_marginal_samples_equal_the_single_process_run() {
    let setup = AdultCluster::start(3).await;
    let (dir, local, cluster) = (&setup.dir, &setup.local, &setup.cluster);
    let marginals = dir.path().join("marginals.parquet");
    run(
        local,
        &format!(
            "COPY (SELECT marginal_sample(age, id) AS age, marginal_sample(workclass, id) AS workclass FROM adult) \
             TO '{}' STORED AS PARQUET",
            marginals.display()
        ),
    )
    .await;
    let m = marginals.display();
    let queries = [
        (
            "embed",
            format!("SELECT id, embed('adult_vime', {VIME_COLUMNS}) AS e FROM adult ORDER BY id"),
        ),
        (
            "predict",
            format!("SELECT id, predict('income_head', {HEAD_COLUMNS}) AS p FROM adult ORDER BY id"),
        ),
        (
            "corrupt_*",
            format!(
                "SELECT id, corrupt_mask(age, 0.3, 42, id) AS mask, \
                        corrupt_swap(workclass, '{m}', 0.3, 42, id, 1) AS swap, \
                        corrupt_swap(age, '{m}', 0.5, 7, id) AS swap_age, \
                        corrupt_noise(\"hours-per-week\", 2.5, 0.5, 42, id) AS noise, \
                        corrupt_fill(occupation, NULL, 0.2, 7, id) AS fill \
                 FROM adult ORDER BY id"
            ),
        ),
        (
            "marginal_sample",
            "SELECT marginal_sample(age, id) AS age, marginal_sample(workclass, id) AS workclass, \
                    marginal_sample(\"hours-per-week\", id, 500) AS hours FROM adult"
                .to_string(),
        ),
    ];
    for (what, sql) in &queries {
        let before = setup.tasks();
        let expected = one_batch(local, sql).await;
        let actual = one_batch(cluster, sql).await;
        assert_same(&expected, &actual, what);
        assert!(expected.num_rows() > 0, "{what}");
        let busy = setup.busy_since(&before);
        assert!(busy >= 2, "{what}: stages ran on {busy} of 3 workers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn explain_shows_stages_on_several_workers() {
    let setup = AdultCluster::start(3).await;
    let cluster = &setup.cluster;
    let sql = format!("SELECT sum(array_max(embed('adult_vime', {VIME_COLUMNS}))) FROM adult");
    let plan = cluster
        .sql(&sql)
        .await
        .expect("plans")
        .create_physical_plan()
        .await
        .expect("plans");
    let text = datafusion_distributed::display_plan_ascii(plan.as_ref(), false);
    assert!(text.contains("DistributedExec"), "{text}");
    assert!(text.contains("Network"), "a network boundary: {text}");
    assert!(text.contains("t0:") && text.contains("t2:"), "three tasks: {text}");
    assert!(text.contains("adult_vime@sha256:"), "the model is pinned: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_distributed_vime_export_writes_the_single_process_files_byte_for_byte() {
    let setup = AdultCluster::start(3).await;
    let (dir, local, cluster) = (&setup.dir, &setup.local, &setup.cluster);
    let options = ExportOptions {
        views: 2,
        key: Some("id".into()),
        keep: vec!["class".into()],
        seed: 11,
        ..ExportOptions::default()
    };
    let single = dir.path().join("single.parquet");
    let distributed = dir.path().join("distributed.parquet");
    let a = export(local, "adult", &single, &options, None)
        .await
        .expect("single-process export");
    let before = setup.tasks();
    let b = export(cluster, "adult", &distributed, &options, None)
        .await
        .expect("distributed export");
    assert!(setup.busy_since(&before) > 0, "the workers ran it");
    assert_eq!(a.rows, 2 * 32_561);
    assert_eq!(a.rows, b.rows);
    for (x, y) in [
        (single.clone(), distributed.clone()),
        (marginal_path(&single), marginal_path(&distributed)),
    ] {
        let (x_bytes, y_bytes) = (std::fs::read(&x).expect("reads"), std::fs::read(&y).expect("reads"));
        assert!(x_bytes == y_bytes, "{} and {} differ", x.display(), y.display());
    }
    let error = export(
        cluster,
        "adult",
        &dir.path().join("nokey.parquet"),
        &ExportOptions::default(),
        None,
    )
    .await
    .expect_err("the default key needs one process")
    .to_string();
    assert!(error.contains("row-key column (key)"), "{error}");
    assert!(!dir.path().join("nokey.parquet").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_with_another_model_version_refuses_with_both_hashes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = models_dir(dir.path());
    let table = write_adult_parquet(dir.path()).await;
    let local = local_context(&models, &table).await;
    // The third worker's adult_vime has another manifest: another model version.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).expect("dir");
    for file in ["adult_vime.onnx", "income_head.onnx", "income_head.json"] {
        std::fs::copy(models.join(file), other.join(file)).expect("copies");
    }
    let manifest = std::fs::read_to_string(models.join("adult_vime.json")).expect("manifest");
    let changed = manifest.replacen("\"description\": \"", "\"description\": \"(retrained) ", 1);
    assert_ne!(manifest, changed, "the manifest has a description to change");
    std::fs::write(other.join("adult_vime.json"), changed).expect("writes");
    let mut workers = workers(&models, 2).await;
    workers.push(TestWorker::start(&other, FileAccess::Unrestricted).await);
    let cluster = cluster_context(&local, &workers).await;

    let error = error_of(
        &cluster,
        &format!("SELECT id, embed('adult_vime', {VIME_COLUMNS}) FROM adult"),
    )
    .await;
    let hash = |dir: &std::path::Path| {
        content_hash(&ModelRegistry::new(dir).locate("adult_vime").expect("model")).expect("hash")
    };
    let (coordinator, worker) = (hash(&models), hash(&other));
    assert_ne!(coordinator, worker);
    for needle in ["adult_vime", &workers[2].address.to_string(), &coordinator, &worker] {
        assert!(error.contains(needle), "{needle:?} missing from: {error}");
    }
    // A model the odd worker has in the same version still runs everywhere.
    run(
        &cluster,
        &format!("SELECT predict('income_head', {HEAD_COLUMNS}) FROM adult"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_or_foreign_worker_is_named_before_planning() {
    let local = crate::common::new_context();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binds")
        .local_addr()
        .expect("address");
    let started = std::time::Instant::now();
    let Err(error) = distributed_context(&local, &Cluster::parse(&closed.to_string()).expect("list")).await else {
        panic!("nothing listens there");
    };
    let error = error.to_string();
    assert!(error.contains(&format!("worker http://{closed}/")), "{error}");
    assert!(error.contains("unreachable"), "{error}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "answered in bounded time"
    );

    for (list, expected) in [
        ("", "empty"),
        ("https://h:1", "TLS"),
        ("h", "port"),
        ("http://h:1/path", "path"),
    ] {
        let error = Cluster::parse(list).expect_err(list).to_string();
        assert!(error.contains(expected), "{list}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_with_data_roots_reads_only_under_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = models_dir(dir.path());
    let table = write_adult_parquet(dir.path()).await;
    let local = local_context(&models, &table).await;
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let confined = FileAccess::within([elsewhere.path()]).expect("root");
    let workers = vec![
        TestWorker::start(&models, confined.clone()).await,
        TestWorker::start(&models, confined).await,
    ];
    let cluster = cluster_context(&local, &workers).await;
    let error = error_of(&cluster, "SELECT count(*) FROM adult WHERE age > 30").await;
    assert!(error.contains("outside the data roots"), "{error}");

    let allowed = FileAccess::within([dir.path()]).expect("root");
    let workers = vec![
        TestWorker::start(&models, allowed.clone()).await,
        TestWorker::start(&models, allowed).await,
    ];
    let cluster = cluster_context(&local, &workers).await;
    let counted = one_batch(&cluster, "SELECT count(*) AS n FROM adult WHERE age > 30").await;
    let expected = one_batch(&local, "SELECT count(*) AS n FROM adult WHERE age > 30").await;
    assert_eq!(counted, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn synthetic_scans_run_on_the_workers_and_give_the_same_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = models_dir(dir.path());
    let local = crate::common::context(&models);
    let workers = workers(&models, 3).await;
    let cluster = cluster_context(&local, &workers).await;
    let sql = format!(
        "SELECT workclass, count(*) AS n, sum(age) AS ages, \
                sum(array_max(embed('adult_vime', {VIME_COLUMNS}))) IS NOT NULL AS embedded \
         FROM tabssl_synthetic(300000, 3) GROUP BY workclass ORDER BY workclass"
    );
    let before: Vec<u64> = workers.iter().map(|w| w.stats.tasks()).collect();
    let expected = one_batch(&local, &sql).await;
    let actual = one_batch(&cluster, &sql).await;
    assert_eq!(expected, actual);
    let busy = workers
        .iter()
        .zip(&before)
        .filter(|(w, b)| w.stats.tasks() > **b)
        .count();
    assert!(busy >= 2, "the scan ran on {busy} of 3 workers");
    let rows = one_batch(
        &cluster,
        "SELECT id, age, workclass FROM tabssl_synthetic(100000, 9) ORDER BY id",
    )
    .await;
    assert_eq!(
        rows,
        one_batch(
            &local,
            "SELECT id, age, workclass FROM tabssl_synthetic(100000, 9) ORDER BY id"
        )
        .await
    );
}
