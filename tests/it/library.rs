//! tabssl as a library in someone else's session: registered on a `SessionStateBuilder` or
//! any function registry, called from the DataFrame API with `tabssl::expr_fn`, giving
//! the same results as SQL.

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext, col};
use datafusion::scalar::ScalarValue;
use tabssl::TabsslOptions;
use tabssl::expr_fn::{corrupt_fill, corrupt_mask, corrupt_noise, embed, marginal_sample};

use crate::common::{fixture_models, run};

fn options() -> TabsslOptions {
    tabssl::setup::install();
    let mut options = TabsslOptions::default();
    options.models_dir = fixture_models().display().to_string();
    options
}

/// All rows of `batches` as one batch.
fn concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow::compute::concat_batches(&batches[0].schema(), batches).expect("same schema")
}

#[tokio::test]
async fn a_session_state_builder_gets_tabssl_beside_the_defaults_and_expr_fn_equals_sql() {
    let builder = SessionStateBuilder::new()
        .with_config(SessionConfig::new().with_target_partitions(1))
        .with_default_features();
    let ctx = SessionContext::new_with_state(tabssl::with_tabssl(builder, options()).build());
    run(&ctx, "CREATE VIEW t AS SELECT * FROM tabssl_synthetic(700, 4)").await;

    let sql = "SELECT id, abs(age) AS a, \
               embed('percol', age, \"education-num\", workclass, sex) AS e, \
               corrupt_mask(age, 0.3, 42, id) AS m, \
               corrupt_noise(age, 2.5, 0.5, 42, id, 1) AS n, \
               corrupt_fill(workclass, NULL, 0.2, 7, id) AS f \
               FROM t ORDER BY id";
    let from_sql = concat(&run(&ctx, sql).await);

    let features = vec![col("age"), col("\"education-num\""), col("workclass"), col("sex")];
    let frame = ctx
        .table("t")
        .await
        .expect("view")
        .select(vec![
            col("id"),
            datafusion::functions::math::expr_fn::abs(col("age")).alias("a"),
            embed(&ctx, "percol", features).expect("embed is registered").alias("e"),
            corrupt_mask(col("age"), 0.3, 42, col("id"), None).alias("m"),
            corrupt_noise(col("age"), 2.5, 0.5, 42, col("id"), Some(datafusion::prelude::lit(1))).alias("n"),
            corrupt_fill(col("workclass"), ScalarValue::Utf8(None), 0.2, 7, col("id"), None).alias("f"),
        ])
        .expect("plans")
        .sort(vec![col("id").sort(true, false)])
        .expect("sorts");
    let from_frame = concat(&frame.collect().await.expect("runs"));
    assert_eq!(from_frame.num_rows(), 700);
    assert_eq!(
        from_frame.columns(),
        from_sql.columns(),
        "the DataFrame gives the SQL result"
    );

    let sample = ctx
        .table("t")
        .await
        .expect("view")
        .aggregate(
            vec![],
            vec![marginal_sample(col("age"), col("id"), Some(50)).alias("age")],
        )
        .expect("plans");
    let sample = concat(&sample.collect().await.expect("runs"));
    let from_sql = concat(&run(&ctx, "SELECT marginal_sample(age, id, 50) AS age FROM t").await);
    assert_eq!(sample.columns(), from_sql.columns());
}

#[tokio::test]
async fn register_fills_any_function_registry() {
    let mut state = SessionStateBuilder::new().with_default_features().build();
    tabssl::register(&mut state).expect("registers");
    let ctx = SessionContext::new_with_state(state);
    let batches = run(
        &ctx,
        "SELECT count(*) FILTER (WHERE corrupt_mask(v, 0.5, 1, k)) BETWEEN 300 AND 700 AS plausible \
         FROM (SELECT value AS k, value AS v FROM generate_series(1, 1000))",
    )
    .await;
    let text = arrow::util::pretty::pretty_format_batches(&batches)
        .expect("prints")
        .to_string();
    assert!(text.contains("true"), "{text}");
    // The table functions need a session: without with_tabssl or register_all they are absent.
    assert!(ctx.sql("SELECT * FROM tabssl_synthetic(3)").await.is_err());
}

#[tokio::test]
async fn register_all_gives_an_existing_context_the_rules_new_context_has() {
    let rule_names = |ctx: &SessionContext| -> Vec<String> {
        ctx.state()
            .physical_optimizers()
            .iter()
            .map(|rule| rule.name().to_string())
            .collect()
    };
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(4));
    ctx.sql("CREATE VIEW ids AS SELECT value AS id FROM generate_series(1, 10)")
        .await
        .expect("view");
    tabssl::register_all(&ctx, options());
    tabssl::register_all(&ctx, options());
    assert_eq!(rule_names(&ctx), rule_names(&tabssl::new_context(options())));
    // What the context held before stays, and the functions are there.
    let batches = run(
        &ctx,
        "SELECT count(*) AS n, count(*) FILTER (WHERE corrupt_mask(id, 1.0, 1, id)) AS masked FROM ids",
    )
    .await;
    let batch = concat(&batches);
    let counts: Vec<i64> = (0..2)
        .map(|i| batch.column(i).as_primitive::<Int64Type>().value(0))
        .collect();
    assert_eq!(counts, [10, 10]);
}

#[tokio::test]
async fn two_exports_in_one_session_leave_its_catalog_as_it_was() {
    let ctx = tabssl::new_context(options());
    ctx.sql("CREATE VIEW people AS SELECT * FROM tabssl_synthetic(3000, 8)")
        .await
        .expect("view");
    let tables = |ctx: &SessionContext| {
        let mut names = ctx
            .catalog("datafusion")
            .and_then(|c| c.schema("public"))
            .map(|s| s.table_names())
            .unwrap_or_default();
        names.sort();
        names
    };
    let before = tables(&ctx);
    let dir = tempfile::tempdir().expect("tempdir");
    let options = tabssl::export::ExportOptions {
        key: Some("id".into()),
        ..tabssl::export::ExportOptions::default()
    };
    for name in ["a.parquet", "b.parquet"] {
        let summary = tabssl::export::export(&ctx, "people", &dir.path().join(name), &options, None)
            .await
            .expect("export");
        assert_eq!(summary.rows, 3000);
    }
    assert_eq!(tables(&ctx), before);
    let a = std::fs::read(dir.path().join("a.parquet")).expect("a");
    let b = std::fs::read(dir.path().join("b.parquet")).expect("b");
    assert!(a == b, "the same export twice gives the same bytes");
}

/// The crates' dependencies point down: the functions crate needs DataFusion and nothing of
/// inference, training, evaluation, serving or the command line.
#[test]
fn the_functions_crate_depends_on_datafusion_and_nothing_heavier() {
    let crates = normal_dependencies("tabssl-functions", &[]);
    assert!(crates.contains("datafusion"), "{crates:?}");
    for heavy in [
        "ort",
        "ort-sys",
        "candle-core",
        "hessboost",
        "tonic",
        "clap",
        "pyo3",
        "zip",
    ] {
        assert!(
            !crates.contains(heavy),
            "tabssl-functions depends on {heavy}: {crates:?}"
        );
    }
}

/// The inference crate adds ONNX Runtime to the functions crate, and the pip fetch only
/// with its `setup` feature: no training, evaluation, server or command line.
#[test]
fn the_inference_crate_depends_on_onnx_runtime_and_nothing_heavier() {
    let crates = normal_dependencies("tabssl-infer", &["--no-default-features"]);
    assert!(
        crates.contains("ort") && crates.contains("tabssl-functions"),
        "{crates:?}"
    );
    for heavy in ["candle-core", "hessboost", "tonic", "clap", "pyo3", "zip"] {
        assert!(!crates.contains(heavy), "tabssl-infer depends on {heavy}: {crates:?}");
    }
}

/// The training crate adds candle to the inference crate: no evaluation, server or command
/// line.
#[test]
fn the_training_crate_depends_on_candle_and_nothing_heavier() {
    let crates = normal_dependencies("tabssl-train", &[]);
    assert!(
        crates.contains("candle-core") && crates.contains("tabssl-infer"),
        "{crates:?}"
    );
    // (candle-core itself reads zip archives, so zip is no sign of the set-up code here.)
    for heavy in ["hessboost", "tonic", "clap", "pyo3"] {
        assert!(!crates.contains(heavy), "tabssl-train depends on {heavy}: {crates:?}");
    }
}

/// Each job crate builds on what it runs and nothing beside it: the export, the stream,
/// the evaluation, the server and the cluster do not pull in each other's heavy
/// dependencies, and the Python module none of the server's, the cluster's or the command
/// line's.
#[test]
fn each_job_crate_depends_on_what_it_runs_and_nothing_beside_it() {
    let cases: [(&str, &[&str], &[&str]); 6] = [
        (
            "tabssl-export",
            &["tabssl-functions"],
            &["ort", "candle-core", "hessboost", "tonic", "clap", "pyo3"],
        ),
        (
            "tabssl-stream",
            &["tabssl-infer", "signal-hook"],
            &["candle-core", "hessboost", "tonic", "clap", "pyo3"],
        ),
        (
            "tabssl-eval",
            &["hessboost", "tabssl-train"],
            &["tonic", "arrow-flight", "datafusion-distributed", "clap", "pyo3"],
        ),
        (
            "tabssl-serve",
            &["arrow-flight", "tabssl-stream"],
            &["candle-core", "hessboost", "datafusion-distributed", "clap", "pyo3"],
        ),
        (
            "tabssl-distributed",
            &["datafusion-distributed", "tabssl-export"],
            // (datafusion-distributed itself talks Arrow Flight.)
            &["candle-core", "hessboost", "tabssl-serve", "clap", "pyo3"],
        ),
        (
            "tabssl-python",
            &["pyo3", "tabssl"],
            &["tabssl-cli", "clap", "tonic", "arrow-flight", "datafusion-distributed"],
        ),
    ];
    for (package, needed, absent) in cases {
        let crates = normal_dependencies(package, &[]);
        for name in needed {
            assert!(crates.contains(*name), "{package} lacks {name}: {crates:?}");
        }
        for name in absent {
            assert!(!crates.contains(*name), "{package} depends on {name}: {crates:?}");
        }
    }
}

/// The names of the packages `package` builds on (normal dependencies, any depth).
fn normal_dependencies(package: &str, options: &[&str]) -> std::collections::BTreeSet<String> {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-p", package, "-e", "normal", "--prefix", "none"])
        .args(options)
        .args(["--format", "{p}"])
        .current_dir(crate::common::repo())
        .output()
        .expect("cargo tree runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8(output.stdout).expect("utf-8");
    tree.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}
