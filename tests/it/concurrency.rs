//! Concurrent queries share one model's session pool and get the serial results.

use std::sync::Arc;

use datafusion::prelude::SessionConfig;

use crate::common::{context_with, fixture_models, register_adult, rows, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_queries_equal_the_serial_result() {
    let config = SessionConfig::new().with_target_partitions(2);
    let ctx = Arc::new(context_with(&fixture_models(), config));
    register_adult(&ctx).await;
    let sql = r#"SELECT age, "education-num", workclass, sex, embed('percol', age, "education-num", workclass, sex) FROM adult ORDER BY age, "education-num", workclass, sex"#;
    let serial = rows(&run(&ctx, sql).await, 4, 4);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let ctx = Arc::clone(&ctx);
            tokio::spawn(async move { rows(&run(&ctx, sql).await, 4, 4) })
        })
        .collect();
    for task in tasks {
        let concurrent = task.await.expect("query task");
        assert_eq!(concurrent.len(), serial.len());
        // Equal keys sort in any order, but equal keys have equal outputs.
        assert!(concurrent == serial, "a concurrent run differs from the serial one");
    }
}
