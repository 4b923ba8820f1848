//! `embed` and `predict` over the real Adult data, compared with Python onnxruntime.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float32Type};

use crate::common::{assert_close, context, fixture_models, output_row, reference, register_adult, repo, rows, run};

const MLP_COLUMNS: &str = r#"age, fnlwgt, "education-num", "capital-gain", "capital-loss", "hours-per-week""#;

/// Checks every result row whose key the reference holds; returns how many matched.
fn check_against_reference(
    model: &str,
    batches: &[arrow::array::RecordBatch],
    key_columns: usize,
    output: usize,
) -> usize {
    let expected = reference(model);
    let mut matched = 0;
    for (key, actual) in rows(batches, key_columns, output) {
        let Some(expected) = expected.get(&key) else { continue };
        matched += 1;
        match (actual, expected) {
            (Some(actual), Some(expected)) => assert_close(&actual, expected, &format!("{model} {key:?}")),
            (None, None) => {}
            (actual, expected) => panic!("{model} {key:?}: got {actual:?}, expected {expected:?}"),
        }
    }
    assert!(
        matched >= expected.len(),
        "{model}: only {matched} of {} reference rows found",
        expected.len()
    );
    matched
}

#[tokio::test]
async fn packed_pytorch_encoder_matches_python_onnxruntime() {
    let ctx = context(&fixture_models());
    register_adult(&ctx).await;
    let sql = format!("SELECT {MLP_COLUMNS}, embed('mlp_packed', {MLP_COLUMNS}) AS e FROM adult");
    let batches = run(&ctx, &sql).await;
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(total, 32_561, "every Adult row comes back");
    let nulls: usize = batches.iter().map(|b| b.column(6).null_count()).sum();
    assert_eq!(nulls, 0, "numeric Adult columns have no NULLs");
    check_against_reference("mlp_packed", &batches, 6, 6);
}

#[tokio::test]
async fn per_column_encoder_with_strings_matches_and_nulls_propagate() {
    let ctx = context(&fixture_models());
    register_adult(&ctx).await;
    let sql = r#"SELECT age, "education-num", workclass, sex, embed('percol', age, "education-num", workclass, sex) AS e FROM adult"#;
    let batches = run(&ctx, sql).await;
    let matched = check_against_reference("percol", &batches, 4, 4);
    assert!(matched >= 1_500);
    let result_rows = rows(&batches, 4, 4);
    let null_inputs = result_rows
        .iter()
        .filter(|(key, _)| key.iter().any(Option::is_none))
        .count();
    let null_outputs = result_rows.iter().filter(|(_, out)| out.is_none()).count();
    assert_eq!(null_inputs, 1_836, "Adult rows with an unknown workclass");
    assert_eq!(
        null_outputs, null_inputs,
        "exactly the rows with a NULL input get a NULL embedding"
    );
}

#[tokio::test]
async fn predict_returns_float32_matching_python() {
    let ctx = context(&fixture_models());
    register_adult(&ctx).await;
    let sql = format!("SELECT {MLP_COLUMNS}, predict('income_head', {MLP_COLUMNS}) AS p FROM adult");
    let batches = run(&ctx, &sql).await;
    assert_eq!(batches[0].schema().field(6).data_type(), &DataType::Float32);
    check_against_reference("income_head", &batches, 6, 6);
    for batch in &batches {
        let p = batch.column(6).as_primitive::<Float32Type>();
        assert!(
            p.values().iter().all(|v| (0.0..=1.0).contains(v)),
            "sigmoid outputs lie in [0, 1]"
        );
    }
}

#[tokio::test]
async fn output_type_is_known_at_plan_time() {
    let ctx = context(&fixture_models());
    let df = ctx
        .sql("SELECT embed('mlp_packed', 1, 2, 3, 4, 5, 6) AS e, predict('income_head', 1, 2, 3, 4, 5, 6) AS p")
        .await
        .expect("plans");
    let schema = df.schema();
    assert_eq!(
        schema.field(0).data_type(),
        &DataType::new_fixed_size_list(DataType::Float32, 8, true)
    );
    assert_eq!(schema.field(1).data_type(), &DataType::Float32);
    let batches = run(
        &ctx,
        "SELECT arrow_typeof(embed('percol', 30.0, 13, 'Private', 'Male')) AS t",
    )
    .await;
    let t = batches[0].column(0).as_string::<i32>().value(0).to_string();
    assert_eq!(t, "FixedSizeList(4 x Float32)");
}

#[tokio::test]
async fn several_models_in_one_query() {
    let ctx = context(&fixture_models());
    register_adult(&ctx).await;
    let sql = format!(
        "SELECT embed('mlp_packed', {MLP_COLUMNS}) AS a, \
                embed('percol', age, \"education-num\", workclass, sex) AS b, \
                predict('income_head', {MLP_COLUMNS}) AS c, \
                embed('mlp_batch4', {MLP_COLUMNS}) AS d \
         FROM adult WHERE workclass IS NOT NULL"
    );
    let batches = run(&ctx, &sql).await;
    let mut total = 0;
    for batch in &batches {
        total += batch.num_rows();
        for row in 0..batch.num_rows() {
            let a = output_row(batch.column(0).as_ref(), row).expect("a");
            let d = output_row(batch.column(3).as_ref(), row).expect("d");
            assert_close(&d, &a, "fixed-batch export equals the dynamic one");
            assert_eq!(output_row(batch.column(1).as_ref(), row).expect("b").len(), 4);
            assert_eq!(output_row(batch.column(2).as_ref(), row).expect("c").len(), 1);
        }
    }
    assert_eq!(total, 32_561 - 1_836);
}

#[tokio::test]
async fn list_argument_equals_separate_columns() {
    let ctx = context(&fixture_models());
    register_adult(&ctx).await;
    let sql = format!(
        "SELECT embed('mlp_packed', {MLP_COLUMNS}) AS a, embed('mlp_packed', make_array({MLP_COLUMNS})) AS b FROM adult"
    );
    for batch in run(&ctx, &sql).await {
        for row in 0..batch.num_rows() {
            assert_eq!(
                output_row(batch.column(0).as_ref(), row),
                output_row(batch.column(1).as_ref(), row)
            );
        }
    }
}

#[tokio::test]
async fn nan_and_infinity_pass_through_without_panic() {
    let ctx = context(&fixture_models());
    let batches = run(
        &ctx,
        "SELECT embed('mlp_packed', CAST('NaN' AS DOUBLE), 1, 2, 3, 4, 5) AS nan_row, \
                embed('mlp_packed', CAST('Infinity' AS DOUBLE), 1, 2, 3, 4, 5) AS inf_row, \
                embed('mlp_packed', NULL, 1, 2, 3, 4, 5) AS null_row",
    )
    .await;
    let nan_row = output_row(batches[0].column(0).as_ref(), 0).expect("not null");
    assert!(nan_row.iter().any(|v| v.is_nan()), "NaN propagates: {nan_row:?}");
    let inf_row = output_row(batches[0].column(1).as_ref(), 0).expect("not null");
    assert!(inf_row.iter().any(|v| !v.is_finite()), "Inf propagates: {inf_row:?}");
    assert!(
        batches[0].column(2).is_null(0),
        "a NULL argument gives a NULL embedding"
    );
}

#[tokio::test]
async fn shipped_adult_pca_embeds_every_complete_adult_row() {
    let ctx = context(&repo().join("models"));
    register_adult(&ctx).await;
    let sql = r#"SELECT count(*) AS n, count(e) AS embedded FROM (
        SELECT embed('adult_pca', age, fnlwgt, "education-num", "capital-gain", "capital-loss", "hours-per-week",
                     workclass, education, "marital-status", occupation, relationship, race, sex, "native-country") AS e
        FROM adult)"#;
    let batches = run(&ctx, sql).await;
    let n = batches[0]
        .column(0)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .value(0);
    let embedded = batches[0]
        .column(1)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .value(0);
    assert_eq!(n, 32_561);
    assert_eq!(
        n - embedded,
        2_399,
        "rows with a missing value (see the Adult README) get NULL"
    );
}
