//! The built-in synthetic table: NULL rates (statistics). Results and errors are in
//! tests/slt/tabssl_synthetic.slt.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use datafusion::prelude::SessionConfig;

use crate::common::{context_with, fixture_models, run};

#[tokio::test]
async fn same_rows_for_any_partitioning_and_adult_like_nulls() {
    let sql = "SELECT count(*), count(workclass), count(occupation), count(\"native-country\"), \
               sum(age), sum(fnlwgt), sum(\"education-num\"), count(DISTINCT id) FROM tabssl_synthetic(20000, 5)";
    let mut results = Vec::new();
    for (batch_size, partitions) in [(8192, 1), (7, 4)] {
        let ctx = context_with(
            &fixture_models(),
            SessionConfig::new()
                .with_batch_size(batch_size)
                .with_target_partitions(partitions),
        );
        let batches = run(&ctx, sql).await;
        let values: Vec<i64> = (0..8)
            .map(|c| batches[0].column(c).as_primitive::<Int64Type>().value(0))
            .collect();
        results.push(values);
    }
    assert_eq!(results[0], results[1]);
    let v = &results[0];
    assert_eq!(v[0], 20_000);
    assert_eq!(v[7], 20_000, "ids are unique");
    for (i, expected) in [(1, 0.056), (2, 0.057), (3, 0.018)] {
        let null_rate = 1.0 - v[i] as f64 / 20_000.0;
        // 4 sigma of a binomial proportion at n = 20000.
        let sigma = (expected * (1.0 - expected) / 20_000.0_f64).sqrt();
        assert!(
            (null_rate - expected).abs() < 4.0 * sigma,
            "column {i}: NULL rate {null_rate}, expected {expected}"
        );
    }
}
