//! Bad input gets a clear plan-time error naming what is wrong and what was expected.

use crate::common::{bad_models, context, error_of, fixture_models, run};

async fn plan_error(models: &std::path::Path, sql: &str) -> String {
    let ctx = context(models);
    match ctx.sql(sql).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("expected a planning error from {sql}"),
    }
}

#[tokio::test]
async fn unknown_model_lists_the_available_ones() {
    let err = plan_error(&fixture_models(), "SELECT embed('nope', 1)").await;
    assert!(err.contains("unknown model \"nope\""), "{err}");
    assert!(
        err.contains("available models: income_head, mlp_batch4, mlp_packed, percol"),
        "{err}"
    );
}

#[tokio::test]
async fn path_like_names_are_rejected() {
    for name in ["../models/adult_pca", "/etc/passwd", "a/b", "..", "x..y"] {
        let err = plan_error(&fixture_models(), &format!("SELECT embed('{name}', 1)")).await;
        assert!(
            err.contains("invalid model name") && err.contains("not a path"),
            "{name}: {err}"
        );
    }
}

#[tokio::test]
async fn wrong_arity_lists_expected_inputs() {
    let err = plan_error(&fixture_models(), "SELECT embed('mlp_packed', 1, 2)").await;
    assert!(
        err.contains("expected 6 numeric arguments (age, fnlwgt, education-num"),
        "{err}"
    );
    assert!(err.contains("got 2 (Int64, Int64)"), "{err}");
    let err = plan_error(&fixture_models(), "SELECT embed('percol', 1.0, 2)").await;
    assert!(
        err.contains("expected 4 arguments: age float32, education_num int64, workclass string, sex string"),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_types_name_the_argument() {
    let err = plan_error(
        &fixture_models(),
        "SELECT embed('percol', 'old', 13, 'Private', 'Male')",
    )
    .await;
    assert!(
        err.contains("argument 2 has type Utf8 but input 'age' is float32"),
        "{err}"
    );
    let err = plan_error(&fixture_models(), "SELECT embed('percol', 30, 13.5, 'Private', 'Male')").await;
    assert!(
        err.contains("input 'education_num' is int64"),
        "floats never silently become integers: {err}"
    );
    let err = plan_error(&fixture_models(), "SELECT embed('mlp_packed', 1, 2, 3, 'x', 5, 6)").await;
    assert!(
        err.contains("argument 5 (capital-gain) has type Utf8, expected a numeric type"),
        "{err}"
    );
}

#[tokio::test]
async fn model_name_must_be_a_literal() {
    let ctx = context(&fixture_models());
    run(&ctx, "CREATE TABLE t AS VALUES ('mlp_packed', 1)").await;
    let err = error_of(&ctx, "SELECT embed(column1, column2) FROM t").await;
    assert!(
        err.contains("first argument must be the model name as a string literal"),
        "{err}"
    );
    let err = plan_error(&fixture_models(), "SELECT embed()").await;
    assert!(err.contains("embed"), "{err}");
}

#[tokio::test]
async fn predict_refuses_wide_outputs() {
    let err = plan_error(&fixture_models(), "SELECT predict('mlp_packed', 1, 2, 3, 4, 5, 6)").await;
    assert!(err.contains("output 'embedding' has width 8; use embed"), "{err}");
}

#[tokio::test]
async fn unloadable_files_are_clear_errors() {
    for name in ["garbage", "truncated"] {
        let err = plan_error(&bad_models(), &format!("SELECT embed('{name}', 1)")).await;
        assert!(
            err.contains(&format!("model \"{name}\"")) && err.contains("ONNX Runtime cannot load it"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn manifests_that_disagree_with_the_graph_are_reported() {
    let cases = [
        (
            "wide_manifest",
            "manifest says output 'embedding' has width 16 but the graph says 8",
        ),
        (
            "renamed_input",
            "manifest input 'features' is not an input of the graph (graph inputs: x)",
        ),
        ("broken_manifest", "unknown field `ouput`"),
    ];
    for (name, expected) in cases {
        let err = plan_error(&bad_models(), &format!("SELECT embed('{name}', 1, 2, 3, 4, 5, 6)")).await;
        assert!(err.contains(expected), "{name}: {err}");
    }
}

#[tokio::test]
async fn listing_a_broken_registry_shows_each_error() {
    let ctx = context(&bad_models());
    let batches = run(&ctx, "SELECT name, error FROM tabssl_models() ORDER BY name").await;
    let batch = &batches[0];
    assert_eq!(batch.num_rows(), 5);
    assert_eq!(batch.column(1).null_count(), 0, "every bad model shows its error");
}

#[tokio::test]
async fn bad_option_values_are_rejected() {
    let ctx = context(&fixture_models());
    let err = error_of(&ctx, "SET tabssl.provider = 'tpu'").await;
    assert!(err.contains("expected one of 'cpu', 'cuda', 'auto'"), "{err}");
}

#[tokio::test]
async fn runtime_failures_name_the_model_and_the_rows() {
    let ctx = context(&crate::common::repo().join("tests/fixtures/runtime_models"));
    let ok = run(&ctx, "SELECT embed('lookup', id) FROM (VALUES (0), (3), (-1)) AS t(id)").await;
    assert_eq!(ok[0].num_rows(), 3);
    let err = error_of(
        &ctx,
        "SELECT embed('lookup', id) FROM (VALUES (0), (1), (9), (2)) AS t(id)",
    )
    .await;
    assert!(
        err.contains("model \"lookup\" failed on rows 0..4 of a 4-row batch"),
        "{err}"
    );
    // Rows are numbered in the batch as SQL sees it, NULL rows included.
    let err = error_of(
        &ctx,
        "SELECT embed('lookup', id) FROM (VALUES (NULL), (1), (9)) AS t(id)",
    )
    .await;
    assert!(err.contains("failed on rows 1..3 of a 3-row batch"), "{err}");
}

#[tokio::test]
async fn set_models_dir_switches_the_registry() {
    let ctx = context(&bad_models());
    run(
        &ctx,
        &format!("SET tabssl.models_dir = '{}'", fixture_models().display()),
    )
    .await;
    let batches = run(&ctx, "SELECT embed('mlp_packed', 1, 2, 3, 4, 5, 6) AS e").await;
    assert_eq!(batches[0].num_rows(), 1);
    let listing = run(&ctx, "SELECT count(*) FROM tabssl_models() WHERE error IS NULL").await;
    let ok = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(listing[0].column(0)).value(0);
    assert_eq!(ok, 4);
}
