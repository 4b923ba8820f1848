//! Corruption statistics on the real UCI Adult data, and determinism across batch sizes,
//! partition counts and file splits.
//!
//! Thresholds: rates within 4 standard errors; chi-square and two-sample KS tests at
//! α = 0.001. The draws are seeded, so each check passes or fails the same way every run;
//! the thresholds say how surprising a failure would be for a correct sampler.

use std::collections::HashMap;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::datatypes::{Float64Type, Int64Type};
use datafusion::prelude::{SessionConfig, SessionContext};
use tempfile::TempDir;

use crate::common::{adult_table_sql, run};

const NUMERIC: [&str; 6] = [
    "age",
    "fnlwgt",
    "education-num",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
];
const CATEGORICAL: [&str; 8] = [
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native-country",
];
const P: f64 = 0.3;
const SEED: u64 = 42;

/// Adult with a row key (its line number) as table `adult`, and the marginal file of every
/// feature column.
async fn keyed_adult(dir: &TempDir) -> (SessionContext, String) {
    let ctx = tabssl::new_context_with_config(
        SessionConfig::new().with_target_partitions(1),
        tabssl::TabsslOptions::default(),
    );
    run(&ctx, &adult_table_sql("adult_csv")).await;
    // One partition: row_number() follows the file order.
    run(
        &ctx,
        "CREATE TABLE adult AS SELECT row_number() OVER () AS id, * FROM adult_csv",
    )
    .await;
    let marginal = dir.path().join("adult.marginals.parquet").display().to_string();
    let samples: Vec<String> = NUMERIC
        .iter()
        .chain(&CATEGORICAL)
        .map(|c| format!("marginal_sample(\"{c}\", id) AS \"{c}\""))
        .collect();
    run(
        &ctx,
        &format!("COPY (SELECT {} FROM adult) TO '{marginal}'", samples.join(", ")),
    )
    .await;
    (ctx, marginal)
}

fn one_i64(batches: &[RecordBatch], column: usize) -> i64 {
    batches[0].column(column).as_primitive::<Int64Type>().value(0)
}

fn f64s(batches: &[RecordBatch]) -> Vec<f64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<Float64Type>()
                .iter()
                .flatten()
                .collect::<Vec<_>>()
        })
        .collect()
}

fn counts(batches: &[RecordBatch]) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for batch in batches {
        let values = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8).expect("utf8");
        let values = values.as_string::<i32>();
        let n = batch.column(1).as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            out.insert(values.value(i).to_string(), n.value(i) as f64);
        }
    }
    out
}

/// The two-sample Kolmogorov–Smirnov statistic.
fn ks_statistic(mut a: Vec<f64>, mut b: Vec<f64>) -> f64 {
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// Upper α quantile of chi-square with `df` degrees of freedom (Wilson–Hilferty; z for α).
fn chi_square_critical(df: f64, z: f64) -> f64 {
    let h = 2.0 / (9.0 * df);
    df * (1.0 - h + z * h.sqrt()).powi(3)
}

#[tokio::test]
async fn mask_rate_is_p_in_every_column() {
    let dir = TempDir::new().expect("temp dir");
    let (ctx, _) = keyed_adult(&dir).await;
    for column in NUMERIC.iter().chain(&CATEGORICAL) {
        let batches = run(
            &ctx,
            &format!(
                "SELECT count(\"{column}\"), count(*) FILTER (WHERE corrupt_mask(\"{column}\", {P}, {SEED}, id)) FROM adult"
            ),
        )
        .await;
        let (n, masked) = (one_i64(&batches, 0) as f64, one_i64(&batches, 1) as f64);
        let sigma = (P * (1.0 - P) / n).sqrt();
        let rate = masked / n;
        assert!(
            (rate - P).abs() < 4.0 * sigma,
            "{column}: mask rate {rate} over {n} cells, 4σ = {}",
            4.0 * sigma
        );
    }
}

#[tokio::test]
async fn swapped_values_follow_the_column_marginal() {
    let dir = TempDir::new().expect("temp dir");
    let (ctx, marginal) = keyed_adult(&dir).await;
    // Numeric: two-sample KS between the values swapped in and the column, α = 0.001.
    for column in NUMERIC {
        let swapped = f64s(
            &run(
                &ctx,
                &format!(
                    "SELECT CAST(corrupt_swap(\"{column}\", '{marginal}', {P}, {SEED}, id) AS DOUBLE) FROM adult \
                     WHERE corrupt_mask(\"{column}\", {P}, {SEED}, id)"
                ),
            )
            .await,
        );
        let all = f64s(&run(&ctx, &format!("SELECT CAST(\"{column}\" AS DOUBLE) FROM adult")).await);
        let (n, m) = (swapped.len() as f64, all.len() as f64);
        let critical = 1.949 * ((n + m) / (n * m)).sqrt();
        let d = ks_statistic(swapped, all);
        assert!(d < critical, "{column}: KS D = {d} >= {critical}");
    }
    // Categorical: chi-square goodness of fit of the swapped-in categories against the
    // column's frequencies, categories expecting < 5 pooled, α = 0.001 (z = 3.090).
    for column in CATEGORICAL {
        let swapped = counts(
            &run(
                &ctx,
                &format!(
                    "SELECT v, count(*) FROM (SELECT corrupt_swap(\"{column}\", '{marginal}', {P}, {SEED}, id) AS v \
                     FROM adult WHERE corrupt_mask(\"{column}\", {P}, {SEED}, id)) GROUP BY v"
                ),
            )
            .await,
        );
        let all = counts(
            &run(
                &ctx,
                &format!("SELECT \"{column}\", count(*) FROM adult WHERE \"{column}\" IS NOT NULL GROUP BY 1"),
            )
            .await,
        );
        let n: f64 = swapped.values().sum();
        let total: f64 = all.values().sum();
        assert!(
            swapped.keys().all(|k| all.contains_key(k)),
            "{column}: a value outside the column"
        );
        let (mut chi2, mut cells, mut pooled_obs, mut pooled_exp) = (0.0, 0.0, 0.0, 0.0);
        for (value, count) in &all {
            let expected = n * count / total;
            let observed = swapped.get(value).copied().unwrap_or(0.0);
            if expected < 5.0 {
                pooled_obs += observed;
                pooled_exp += expected;
            } else {
                chi2 += (observed - expected).powi(2) / expected;
                cells += 1.0;
            }
        }
        if pooled_exp > 0.0 {
            chi2 += (pooled_obs - pooled_exp).powi(2) / pooled_exp;
            cells += 1.0;
        }
        let critical = chi_square_critical(cells - 1.0, 3.090);
        assert!(
            chi2 < critical,
            "{column}: chi2 = {chi2} >= {critical} with {} df",
            cells - 1.0
        );
    }
}

#[tokio::test]
async fn masks_are_independent_across_columns_and_views() {
    let dir = TempDir::new().expect("temp dir");
    let (ctx, _) = keyed_adult(&dir).await;
    let columns: Vec<&str> = NUMERIC.iter().chain(&CATEGORICAL).copied().collect();
    // Columns without NULLs, so every pair is drawn on the same rows.
    let complete: Vec<&str> = columns
        .iter()
        .copied()
        .filter(|c| !["workclass", "occupation", "native-country"].contains(c))
        .collect();
    let masks: Vec<String> = complete
        .iter()
        .map(|c| format!("corrupt_mask(\"{c}\", {P}, {SEED}, id) AS \"{c}\""))
        .collect();
    let batches = run(&ctx, &format!("SELECT {} FROM adult", masks.join(", "))).await;
    let batch = concat_batches(&batches[0].schema(), &batches).expect("concat");
    let n = batch.num_rows() as f64;
    let both_expected = P * P;
    let sigma = (both_expected * (1.0 - both_expected) / n).sqrt();
    for a in 0..complete.len() {
        for b in a + 1..complete.len() {
            let (ma, mb) = (batch.column(a).as_boolean(), batch.column(b).as_boolean());
            let both = (0..ma.len()).filter(|&i| ma.value(i) && mb.value(i)).count() as f64 / n;
            assert!(
                (both - both_expected).abs() < 4.0 * sigma,
                "{} and {}: joint mask rate {both}, expected {both_expected} ± {}",
                complete[a],
                complete[b],
                4.0 * sigma
            );
        }
    }
    // Three views of each row: every pair of views agrees on a cell with probability
    // p² + (1-p)², and no two views of a row share their whole mask more than chance says.
    let batches = run(
        &ctx,
        &format!(
            "SELECT id, view_id, {} FROM adult CROSS JOIN (SELECT value AS view_id FROM generate_series(0, 2)) ORDER BY id, view_id",
            complete
                .iter()
                .map(|c| format!("corrupt_mask(\"{c}\", {P}, {SEED}, id, view_id) AS \"{c}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .await;
    let batch = concat_batches(&batches[0].schema(), &batches).expect("concat");
    let rows = batch.num_rows() / 3;
    let agree_expected = P * P + (1.0 - P) * (1.0 - P);
    for column in 2..batch.num_columns() {
        let mask = batch.column(column).as_boolean();
        for (va, vb) in [(0, 1), (0, 2), (1, 2)] {
            let agree = (0..rows)
                .filter(|r| mask.value(3 * r + va) == mask.value(3 * r + vb))
                .count() as f64;
            let sigma = (agree_expected * (1.0 - agree_expected) / rows as f64).sqrt();
            assert!(
                (agree / rows as f64 - agree_expected).abs() < 4.0 * sigma,
                "column {column}, views {va}/{vb}: agreement {}",
                agree / rows as f64
            );
        }
    }
}

/// The export recipe's query over Adult with an id column, written as CSV so that
/// DataFusion can split the file into byte ranges.
async fn export_under(config: SessionConfig, csv: &str, marginal: &str) -> RecordBatch {
    let ctx = tabssl::new_context_with_config(config, tabssl::TabsslOptions::default());
    run(
        &ctx,
        &format!("CREATE EXTERNAL TABLE keyed STORED AS CSV LOCATION '{csv}' OPTIONS ('format.has_header' 'true')"),
    )
    .await;
    let sql = format!(
        "SELECT id, view_id, age, corrupt_swap(age, '{marginal}', 0.3, 7, id, view_id) AS age_tilde, \
                corrupt_mask(age, 0.3, 7, id, view_id) AS age_mask, \
                workclass, corrupt_swap(workclass, '{marginal}', 0.3, 7, id, view_id) AS workclass_tilde, \
                corrupt_noise(\"hours-per-week\", 2.5, 0.5, 7, id, view_id) AS hours_noisy, \
                corrupt_fill(occupation, NULL, 0.2, 7, id, view_id) AS occupation_blank \
         FROM (SELECT *, unnest(make_array(0, 1)) AS view_id FROM keyed)"
    );
    // Sorted here rather than by ORDER BY: a sort of 65k one-row batches is what would
    // dominate the run time, and row order is not what is under test.
    let batches = run(&ctx, &sql).await;
    let batch = concat_batches(&batches[0].schema(), &batches).expect("concat");
    let order = lexsort_to_indices(
        &[
            SortColumn {
                values: batch.column(0).clone(),
                options: None,
            },
            SortColumn {
                values: batch.column(1).clone(),
                options: None,
            },
        ],
        None,
    )
    .expect("sort");
    take_record_batch(&batch, &order).expect("take")
}

#[tokio::test]
async fn output_is_identical_for_any_batch_size_partitioning_and_file_split() {
    let dir = TempDir::new().expect("temp dir");
    let (ctx, marginal) = keyed_adult(&dir).await;
    let csv = dir.path().join("keyed.csv").display().to_string();
    run(
        &ctx,
        &format!("COPY (SELECT * FROM adult ORDER BY id) TO '{csv}' STORED AS CSV"),
    )
    .await;
    let mut reference = None;
    for batch_size in [8192, 7, 1] {
        for partitions in [1, 4] {
            let config = SessionConfig::new()
                .with_batch_size(batch_size)
                .with_target_partitions(partitions)
                .set_u64("datafusion.optimizer.repartition_file_min_size", 4096);
            let result = export_under(config, &csv, &marginal).await;
            assert_eq!(result.num_rows(), 2 * 32_561);
            match &reference {
                None => reference = Some(result),
                Some(expected) => assert!(
                    &result == expected,
                    "batch_size {batch_size}, {partitions} partitions: output differs"
                ),
            }
        }
    }
}
