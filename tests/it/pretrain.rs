//! Pretraining: the exported ONNX graph equals the trained network, training is
//! reproducible and learns, bad input is refused with a clear message.

use std::path::Path;
use std::process::Command;

use arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use tabssl::train::{FeatureLayer, FeatureTable, Method, PretrainConfig, Pretrained, manifest, pretrain, write_model};

use crate::common::{self, assert_close, context, output_row, register_adult, run};

/// A quick configuration: small network, few epochs.
fn small(method: Method, seed: u64) -> PretrainConfig {
    PretrainConfig {
        hidden: 24,
        dim: 6,
        epochs: 3,
        batch_size: 128,
        seed,
        ..PretrainConfig::new(method)
    }
}

async fn table_of(ctx: &SessionContext, sql: &str, exclude: &[&str]) -> FeatureTable {
    let df = ctx.sql(sql).await.expect("plans");
    let schema = df.schema().as_arrow().clone();
    let batches = df.collect().await.expect("runs");
    let exclude: Vec<String> = exclude.iter().map(ToString::to_string).collect();
    FeatureTable::from_batches(&schema, &batches, None, &exclude).expect("feature table")
}

fn train(table: &FeatureTable, config: &PretrainConfig) -> Pretrained {
    pretrain(table, config, &mut |_| {}).expect("pretrains")
}

fn save(model: &Pretrained, dir: &Path, name: &str) {
    let manifest = manifest(model, "test encoder".into(), serde_json::json!({"test": true})).expect("manifest");
    write_model(model, &manifest, &dir.join(format!("{name}.onnx"))).expect("writes");
}

/// Runs the tabssl binary, asserting success; returns its stdout.
fn tabssl_ok(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tabssl"))
        .args(args)
        .output()
        .expect("runs tabssl");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

/// Runs `embed` over `from_sql` and checks every row against the in-memory network applied
/// to the same rows. Returns the number of rows compared.
async fn assert_export_matches(ctx: &SessionContext, name: &str, model: &Pretrained, from_sql: &str) -> usize {
    let names: Vec<String> = model
        .preprocessor
        .features
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let sql = format!(
        "SELECT embed('{name}', {cols}) AS e, {cols} FROM ({from_sql}) AS t",
        cols = quoted(&names)
    );
    let batches: Vec<RecordBatch> = run(ctx, &sql).await;
    let schema = batches[0].schema();
    let table = FeatureTable::from_batches(&schema, &batches, Some(&names), &[]).expect("table");
    let expected = model.embed(&table).expect("in-memory embedding");
    let dim = model.embedding_width();
    let mut row = 0;
    for batch in &batches {
        let column = batch.column(0);
        for i in 0..batch.num_rows() {
            let actual = output_row(column.as_ref(), i).unwrap_or_else(|| panic!("row {row}: NULL embedding"));
            assert_close(
                &actual,
                &expected[row * dim..(row + 1) * dim],
                &format!("{name} row {row}"),
            );
            row += 1;
        }
    }
    row
}

/// Synthetic rows with every kind of missing or unseen input the graph must encode: NULL
/// and NaN numbers, NULL strings, and categories never seen in training.
const EDGE_ROWS: &str = "SELECT CASE WHEN id % 13 = 0 THEN NULL ELSE age END AS age, \
        CASE WHEN id % 11 = 0 THEN CAST('NaN' AS DOUBLE) ELSE CAST(fnlwgt AS DOUBLE) END AS fnlwgt, \
        \"education-num\", \"capital-gain\", \"capital-loss\", \"hours-per-week\", \
        CASE WHEN id % 7 = 0 THEN 'never-seen' ELSE workclass END AS workclass, \
        education, \"marital-status\", occupation, relationship, race, \
        CASE WHEN id % 5 = 0 THEN NULL ELSE sex END AS sex, \"native-country\" \
        FROM tabssl_synthetic(1500, 99)";

#[tokio::test(flavor = "multi_thread")]
async fn onnx_export_equals_the_trained_network_for_every_method() {
    let ctx = common::new_context();
    let table = table_of(&ctx, "SELECT * FROM tabssl_synthetic(2000, 5)", &["id", "class"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut models = Vec::new();
    for method in [Method::Vime, Method::Scarf, Method::Dae] {
        let model = train(&table, &small(method, 1));
        save(&model, dir.path(), method.as_str());
        models.push((method, model));
    }
    let ctx = context(dir.path());
    for (method, model) in &models {
        let n = assert_export_matches(&ctx, method.as_str(), model, "SELECT * FROM tabssl_synthetic(2000, 5)").await;
        assert_eq!(n, 2000);
        let n = assert_export_matches(&ctx, method.as_str(), model, EDGE_ROWS).await;
        assert_eq!(n, 1500, "rows with NULL, NaN and unseen inputs still get embeddings");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn feature_layers_put_the_hidden_layer_beside_the_embedding() {
    let ctx = common::new_context();
    let table = table_of(&ctx, "SELECT * FROM tabssl_synthetic(1000, 8)", &["id", "class"]).await;
    let plain = train(&table, &small(Method::Dae, 3));
    let both = train(
        &table,
        &PretrainConfig {
            // Given out of order and twice: the embedding keeps network order, each layer once.
            feature_layers: vec![FeatureLayer::Embedding, FeatureLayer::Hidden, FeatureLayer::Embedding],
            ..small(Method::Dae, 3)
        },
    );
    assert_eq!(both.embedding_width(), 24 + 6);
    let dir = tempfile::tempdir().expect("tempdir");
    save(&both, dir.path(), "both");
    let ctx = context(dir.path());
    let n = assert_export_matches(&ctx, "both", &both, "SELECT * FROM tabssl_synthetic(1000, 8)").await;
    assert_eq!(n, 1000);
    // The layer choice only changes what is exported: the same run trains the same network.
    let (wide, narrow) = (
        both.embed(&table).expect("embeds"),
        plain.embed(&table).expect("embeds"),
    );
    for row in 0..table.rows {
        let hidden = &wide[row * 30..row * 30 + 24];
        assert!(
            hidden.iter().all(|&v| v >= 0.0),
            "row {row}: the hidden layer is after its ReLU"
        );
        assert_eq!(
            &wide[row * 30 + 24..(row + 1) * 30],
            &narrow[row * 6..(row + 1) * 6],
            "row {row}"
        );
    }
    let refused = pretrain(
        &table,
        &PretrainConfig {
            feature_layers: Vec::new(),
            ..small(Method::Dae, 3)
        },
        &mut |_| {},
    )
    .expect_err("no layer is refused");
    assert!(refused.to_string().contains("at least one layer"), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn onnx_export_equals_the_trained_network_on_adult() {
    let ctx = common::new_context();
    register_adult(&ctx).await;
    let table = table_of(&ctx, "SELECT * FROM adult", &["class"]).await;
    let model = train(
        &table,
        &PretrainConfig {
            epochs: 1,
            ..small(Method::Vime, 2)
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    save(&model, dir.path(), "adult_vime_test");
    let ctx = context(dir.path());
    register_adult(&ctx).await;
    let n = assert_export_matches(&ctx, "adult_vime_test", &model, "SELECT * FROM adult").await;
    assert_eq!(n, 32_561, "every Adult row, NULL cells included, gets an embedding");
}

#[tokio::test(flavor = "multi_thread")]
async fn training_is_reproducible_with_a_seed_and_lowers_the_loss() {
    let ctx = common::new_context();
    let table = table_of(&ctx, "SELECT * FROM tabssl_synthetic(3000, 8)", &["id", "class"]).await;
    for method in [Method::Vime, Method::Scarf, Method::Dae] {
        let config = PretrainConfig {
            epochs: 6,
            ..small(method, 3)
        };
        let first = train(&table, &config);
        let again = train(&table, &config);
        let other = train(
            &table,
            &PretrainConfig {
                seed: 4,
                ..config.clone()
            },
        );
        let weights = |m: &Pretrained| {
            m.encoder
                .layers
                .iter()
                .map(|l| l.to_vecs().expect("weights"))
                .collect::<Vec<_>>()
        };
        assert_eq!(weights(&first), weights(&again), "{method:?}: same seed, same weights");
        assert_eq!(first.history.len(), again.history.len());
        for (a, b) in first.history.iter().zip(&again.history) {
            assert_eq!(
                (a.train_loss, a.validation_loss),
                (b.train_loss, b.validation_loss),
                "{method:?}"
            );
        }
        assert_ne!(
            weights(&first),
            weights(&other),
            "{method:?}: another seed, other weights"
        );
        let losses: Vec<f64> = first.history.iter().map(|h| h.train_loss).collect();
        // SCARF's InfoNCE with τ = 1 starts at ln(batch) and is bounded far above 0, so it
        // moves less than the reconstruction losses.
        let required = if method == Method::Scarf { 0.98 } else { 0.9 };
        assert!(
            losses[losses.len() - 1] < required * losses[0],
            "{method:?}: training loss should fall below {required} of its first epoch in 6 epochs: {losses:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_tables_are_refused_with_a_reason() {
    let ctx = common::new_context();
    let config = small(Method::Vime, 0);
    let empty = table_of(
        &ctx,
        "SELECT age, workclass FROM tabssl_synthetic(100, 1) WHERE age < 0",
        &[],
    )
    .await;
    let err = pretrain(&empty, &config, &mut |_| {}).expect_err("empty table");
    assert!(err.to_string().contains("at least 2 rows, the input has 0"), "{err}");
    let single = table_of(&ctx, "SELECT age, workclass FROM tabssl_synthetic(1, 1)", &[]).await;
    let err = pretrain(&single, &config, &mut |_| {}).expect_err("one row");
    assert!(err.to_string().contains("the input has 1"), "{err}");
    let all_null = table_of(
        &ctx,
        "SELECT age, CAST(NULL AS DOUBLE) AS nothing FROM tabssl_synthetic(100, 1)",
        &[],
    )
    .await;
    let err = pretrain(&all_null, &config, &mut |_| {}).expect_err("all-NULL column");
    assert!(err.to_string().contains("'nothing' is NULL in every row"), "{err}");
    let bad_p = PretrainConfig {
        p: Some(1.5),
        ..config.clone()
    };
    let err = pretrain(&single, &bad_p, &mut |_| {}).expect_err("bad p");
    assert!(err.to_string().contains("p must be in [0, 1], got 1.5"), "{err}");
    let schema = arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
        "flag",
        arrow::datatypes::DataType::Boolean,
        true,
    )]);
    let err = FeatureTable::from_batches(&schema, &[], Some(&["flag".to_string()]), &[]).expect_err("boolean");
    assert!(err.to_string().contains("column 'flag' has type Boolean"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_constant_column_is_kept_and_encodes_as_zero() {
    let ctx = common::new_context();
    let sql = "SELECT age, 7 AS constant, workclass FROM tabssl_synthetic(500, 2)";
    let table = table_of(&ctx, sql, &[]).await;
    let model = train(&table, &small(Method::Dae, 0));
    let dir = tempfile::tempdir().expect("tempdir");
    save(&model, dir.path(), "constant");
    let ctx = context(dir.path());
    assert_export_matches(&ctx, "constant", &model, sql).await;
    // Another value of the constant column at inference is still finite and defined.
    let changed = "SELECT age, 9 AS constant, workclass FROM tabssl_synthetic(50, 2)";
    assert_eq!(assert_export_matches(&ctx, "constant", &model, changed).await, 50);
}

#[test]
fn the_cli_pretrains_a_model_that_embed_can_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = dir.path().join("cli_vime.onnx");
    let result = Command::new(env!("CARGO_BIN_EXE_tabssl"))
        .args([
            "pretrain",
            "--input",
            "synthetic:1000:3",
            "--exclude",
            "id,class",
            "--epochs",
            "2",
        ])
        .args(["--hidden", "16", "--dim", "4", "--seed", "9", "--output"])
        .arg(&output)
        .output()
        .expect("runs tabssl");
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    assert!(stdout.contains("4-d embedding"), "{stdout}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("cli_vime.json")).expect("manifest")).expect("json");
    assert_eq!(manifest["training"]["method"], "vime");
    assert_eq!(manifest["training"]["seed"], 9);
    assert_eq!(manifest["training"]["data"]["rows"], 1000);
    assert_eq!(manifest["nulls"], "encode");
    assert!(
        manifest["training"]["command"]
            .as_str()
            .is_some_and(|c| c.contains("--epochs 2"))
    );
    let query = Command::new(env!("CARGO_BIN_EXE_tabssl"))
        .args(["sql", "--models"])
        .arg(dir.path())
        .args(["--format", "csv", "-c"])
        .arg(
            "SELECT count(*) AS n, count(e) AS embedded FROM (SELECT embed('cli_vime', age, workclass, fnlwgt, \
             education, \"education-num\", \"marital-status\", occupation, relationship, race, sex, \
             \"capital-gain\", \"capital-loss\", \"hours-per-week\", \"native-country\") AS e \
             FROM tabssl_synthetic(300, 1))",
        )
        .output()
        .expect("runs tabssl sql");
    assert!(query.status.success(), "{}", String::from_utf8_lossy(&query.stderr));
    assert!(
        String::from_utf8_lossy(&query.stdout).contains("300,300"),
        "{}",
        String::from_utf8_lossy(&query.stdout)
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_tabssl"))
        .args([
            "pretrain",
            "--input",
            "synthetic:1000:3",
            "--exclude",
            "nope",
            "--output",
        ])
        .arg(dir.path().join("bad.onnx"))
        .output()
        .expect("runs tabssl");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no column 'nope' in the input"));
    assert!(!dir.path().join("bad.onnx").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn shipped_encoders_embed_every_adult_row_null_cells_included() {
    let models = crate::common::repo().join("models");
    let ctx = context(&models);
    register_adult(&ctx).await;
    for name in ["adult_vime", "adult_scarf", "adult_dae"] {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(models.join(format!("{name}.json"))).expect("manifest"))
                .expect("json");
        assert_eq!(manifest["training"]["method"].as_str(), name.strip_prefix("adult_"));
        assert!(
            manifest["training"]["downstream"]["metrics"].is_object(),
            "{name}: downstream metrics recorded"
        );
        let inputs = tabssl::eval::model_inputs(&models, name).expect("inputs");
        let sql = format!("SELECT embed('{name}', {}) AS e FROM adult", quoted(&inputs));
        let batches = run(&ctx, &sql).await;
        let mut rows = 0;
        let mut sums: Vec<(f64, f64)> = Vec::new();
        for batch in &batches {
            for i in 0..batch.num_rows() {
                let e = output_row(batch.column(0).as_ref(), i).unwrap_or_else(|| panic!("{name}: NULL at row {rows}"));
                assert!(e.iter().all(|v| v.is_finite()), "{name}: row {rows} is {e:?}");
                sums.resize(e.len(), (0.0, 0.0));
                for (s, &v) in sums.iter_mut().zip(&e) {
                    s.0 += f64::from(v);
                    s.1 += f64::from(v) * f64::from(v);
                }
                rows += 1;
            }
        }
        assert_eq!(rows, 32_561, "{name}: every row, the 2,399 with NULL cells too");
        for (d, (s, ss)) in sums.iter().enumerate() {
            let var = ss / 32_561.0 - (s / 32_561.0).powi(2);
            assert!(var > 1e-6, "{name}: dimension {d} is constant");
        }
    }
}

#[test]
fn evaluate_writes_a_report_a_plot_and_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).expect("models dir");
    let model = models.join("syn_dae.onnx");
    tabssl_ok(&[
        "pretrain",
        "--input",
        "synthetic:2000:1",
        "--exclude",
        "id,class",
        "--method",
        "dae",
        "--epochs",
        "3",
        "--dim",
        "8",
        "--output",
        model.to_str().expect("utf-8"),
    ]);
    let report_dir = dir.path().join("report");
    let report = tabssl_ok(&[
        "evaluate",
        "--train",
        "synthetic:2000:1",
        "--test",
        "synthetic:1000:2",
        "--exclude",
        "id",
        "--models",
        "syn_dae",
        "--models-dir",
        models.to_str().expect("utf-8"),
        "--budgets",
        "100,all",
        "--seeds",
        "2",
        "--classifiers",
        "logistic,gbdt,stack",
        "--output",
        report_dir.to_str().expect("utf-8"),
        "--update-manifests",
    ]);
    for row in [
        "| raw | logistic |",
        "| syn_dae | logistic |",
        "| raw + syn_dae | logistic |",
        "| raw | gbdt |",
        "| raw + syn_dae | stack |",
    ] {
        assert!(report.contains(row), "{row} missing from\n{report}");
    }
    assert!(
        report.contains("100 labels") && report.contains("all (2000)"),
        "{report}"
    );
    let png = std::fs::read(report_dir.join("evaluation.png")).expect("plot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let cells: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report_dir.join("evaluation.json")).expect("json")).expect("parses");
    let cells = cells.as_array().expect("cells");
    assert_eq!(
        cells.len(),
        2 * (3 * 2 + 1),
        "two budgets x (three representations x two models + the stack)"
    );
    for cell in cells {
        let auc = cell["auc"].as_array().expect("auc");
        assert_eq!(auc.len(), 2, "one AUC per seed");
        // The synthetic label follows latent factors the features carry: above chance, far
        // above for every model but trees on 80 rows.
        let floor = if cell["classifier"] == "gbdt" { 0.5 } else { 0.6 };
        assert!(
            auc.iter().all(|a| a.as_f64().is_some_and(|a| a > floor && a <= 1.0)),
            "{cell}"
        );
    }
    for stack in cells.iter().filter(|c| c["classifier"] == "stack") {
        let shares = stack["stack_shares"].as_array().expect("shares");
        assert_eq!(shares.len(), 2, "one share per seed: {stack}");
        assert!(
            shares
                .iter()
                .all(|s| s.as_f64().is_some_and(|s| (0.0..=1.0).contains(&s))),
            "{stack}"
        );
    }
    assert!(report.contains("reference: raw · gbdt"), "{report}");
    assert!(report.contains("is the stack, tabssl's default recipe"), "{report}");
    // The stack is built from trees on raw and models on the embeddings: without trees it
    // is refused, with a message that says what to add.
    let refused = Command::new(env!("CARGO_BIN_EXE_tabssl"))
        .args([
            "evaluate",
            "--train",
            "synthetic:300:1",
            "--test",
            "synthetic:300:2",
            "--exclude",
            "id",
            "--budgets",
            "100",
            "--seeds",
            "1",
            "--classifiers",
            "logistic,stack",
            "--output",
        ])
        .arg(dir.path().join("refused"))
        .output()
        .expect("runs tabssl");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("list gbdt and logistic or mlp in the classifiers too"),
        "{stderr}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(models.join("syn_dae.json")).expect("manifest")).expect("json");
    assert!(
        manifest["training"]["downstream"]["metrics"]["syn_dae / logistic / all"]["auc"].is_f64(),
        "{manifest}"
    );
}

#[test]
fn the_same_pretrain_command_writes_the_same_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let adult = crate::common::adult_csv();
    let write = |name: &str| {
        let output = dir.path().join(name);
        let result = Command::new(env!("CARGO_BIN_EXE_tabssl"))
            .args([
                "pretrain",
                "--input",
                adult.to_str().expect("utf-8"),
                "--null-regex",
                "\\?",
                "--exclude",
                "class",
            ])
            .args([
                "--method", "scarf", "--epochs", "1", "--hidden", "8", "--dim", "4", "--output",
            ])
            .arg(&output)
            .output()
            .expect("runs tabssl");
        assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
        std::fs::read(output).expect("model")
    };
    assert_eq!(
        write("a.onnx"),
        write("b.onnx"),
        "a multi-partition CSV is read in file order"
    );
}

#[test]
fn pretrain_reads_the_originals_of_a_training_export() {
    let dir = tempfile::tempdir().expect("tempdir");
    let export = dir.path().join("train.parquet");
    let export_path = export.to_str().expect("utf-8");
    tabssl_ok(&[
        "export",
        "--input",
        "synthetic:600:4",
        "--output",
        export_path,
        "--views",
        "3",
        "--key",
        "id",
        "--keep",
        "class",
    ]);
    let model = dir.path().join("from_export.onnx");
    tabssl_ok(&[
        "pretrain",
        "--input",
        export_path,
        "--epochs",
        "1",
        "--dim",
        "4",
        "--output",
        model.to_str().expect("utf-8"),
    ]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("from_export.json")).expect("manifest")).expect("json");
    assert_eq!(
        manifest["training"]["data"]["rows"], 600,
        "one row per input row: view 0 only"
    );
    let columns: Vec<&str> = manifest["training"]["data"]["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert_eq!(
        columns.len(),
        14,
        "the 14 original features, not their _tilde/_mask columns: {columns:?}"
    );
    assert!(
        columns
            .iter()
            .all(|c| !c.ends_with("_tilde") && !c.ends_with("_mask") && *c != "id"),
        "{columns:?}"
    );
}

#[test]
fn the_demo_runs_the_whole_loop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_tabssl"))
        .args([
            "demo",
            "--rows",
            "1500",
            "--test-rows",
            "500",
            "--epochs",
            "1",
            "--seeds",
            "1",
            "--workdir",
        ])
        .arg(dir.path())
        .output()
        .expect("runs tabssl demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "$ tabssl export",
        "$ tabssl pretrain",
        "$ tabssl sql",
        "$ tabssl stream",
        "$ tabssl evaluate",
        "tabssl demo finished",
    ] {
        assert!(stdout.contains(step), "{step} missing from\n{stdout}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("read 500 records, rejected 0, passed 500 to the query, wrote 500 rows"),
        "{stderr}"
    );
    // The summary: per budget, trees on raw against the stack with the embeddings, and
    // the sentence that says where the embeddings help.
    assert!(stdout.contains("labels: raw · gbdt AUC"), "{stdout}");
    assert!(stdout.contains("with embeddings stack (embedding share"), "{stdout}");
    assert!(
        stdout.contains("Test AUC with embeddings, against raw · gbdt:"),
        "{stdout}"
    );
    for file in [
        "models/demo_vime.onnx",
        "models/demo_scarf.json",
        "report/evaluation.png",
        "stream/part-000000.parquet",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
}
