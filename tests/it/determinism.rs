//! Results do not depend on batch size or partitioning.

use datafusion::prelude::SessionConfig;

use crate::common::{Key, context_with, fixture_models, register_adult, rows, run};

/// The result as a sorted multiset of (key, output bits), so any row order compares equal.
async fn canonical(
    batch_size: usize,
    partitions: usize,
    sql: &str,
    key_columns: usize,
) -> Vec<(Key, Option<Vec<u32>>)> {
    let config = SessionConfig::new()
        .with_batch_size(batch_size)
        .with_target_partitions(partitions);
    let ctx = context_with(&fixture_models(), config);
    register_adult(&ctx).await;
    let batches = run(&ctx, sql).await;
    let mut result: Vec<(Key, Option<Vec<u32>>)> = rows(&batches, key_columns, key_columns)
        .into_iter()
        .map(|(key, out)| (key, out.map(|v| v.iter().map(|x| x.to_bits()).collect())))
        .collect();
    result.sort();
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_for_every_batch_size_and_partition_count() {
    let queries = [
        (
            r#"SELECT age, "education-num", workclass, sex, embed('percol', age, "education-num", workclass, sex) FROM adult"#,
            4,
        ),
        (
            r#"SELECT age, fnlwgt, "hours-per-week", embed('mlp_packed', age, fnlwgt, "education-num", "capital-gain", "capital-loss", "hours-per-week") FROM adult"#,
            3,
        ),
    ];
    for (sql, keys) in queries {
        let baseline = canonical(8192, 1, sql, keys).await;
        assert_eq!(baseline.len(), 32_561);
        for (batch_size, partitions) in [(1, 1), (7, 1), (1, 4), (7, 4), (8192, 4)] {
            let other = canonical(batch_size, partitions, sql, keys).await;
            assert!(
                other == baseline,
                "batch_size {batch_size}, partitions {partitions} differs from batch_size 8192, partitions 1: {sql}"
            );
        }
    }
}
