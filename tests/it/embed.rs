//! `embed` and `predict` over the real Adult data, compared with Python onnxruntime within
//! a tolerance. Results, types, NULLs and errors are in tests/slt/embed.slt and predict.slt.

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Float32Type};
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};

use crate::common::{assert_close, context, fixture_models, reference, register_adult, rows, run};

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

/// A Parquet file with one row group, read by two partitions: DataFusion gives the whole
/// group to one byte range, and `embed` still runs on both partitions (the spread rule
/// deals the batches round robin), with every row and the reference outputs.
#[tokio::test]
async fn embed_runs_on_every_partition_of_a_one_row_group_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("adult.parquet");
    let config = datafusion::prelude::SessionConfig::new()
        .with_target_partitions(2)
        .with_batch_size(1000);
    let ctx = crate::common::context_with(&fixture_models(), config);
    register_adult(&ctx).await;
    run(&ctx, &format!("COPY adult TO '{}' STORED AS PARQUET", file.display())).await;
    let reader = SerializedFileReader::new(std::fs::File::open(&file).expect("file")).expect("Parquet");
    assert_eq!(
        reader.metadata().num_row_groups(),
        1,
        "the test needs a single row group"
    );
    run(&ctx, "SET datafusion.optimizer.repartition_file_min_size = 0").await;
    run(
        &ctx,
        &format!(
            "CREATE EXTERNAL TABLE one_group STORED AS PARQUET LOCATION '{}'",
            file.display()
        ),
    )
    .await;
    let sql = r#"SELECT age, "education-num", workclass, sex, embed('percol', age, "education-num", workclass, sex) AS e FROM one_group"#;
    let df = ctx.sql(sql).await.expect("plans");
    let plan = df.clone().create_physical_plan().await.expect("physical plan");
    let shown = datafusion::physical_plan::displayable(plan.as_ref())
        .indent(true)
        .to_string();
    assert!(
        shown.contains("RepartitionExec: partitioning=RoundRobinBatch(2), input_partitions=2"),
        "{shown}"
    );
    let partitions = df.collect_partitioned().await.expect("runs");
    let counts: Vec<usize> = partitions
        .iter()
        .map(|p| p.iter().map(arrow::array::RecordBatch::num_rows).sum())
        .collect();
    assert_eq!(counts.len(), 2);
    assert!(counts.iter().all(|&n| n > 0), "rows per partition: {counts:?}");
    assert_eq!(counts.iter().sum::<usize>(), 32_561, "every row comes back once");
    let batches: Vec<_> = partitions.into_iter().flatten().collect();
    assert!(check_against_reference("percol", &batches, 4, 4) >= 1_500);
}
