//! A model replaced while eight clients stream `DoExchange` requests: no request fails,
//! each response comes entirely from one version, and requests that start after the swap
//! get the new version. A broken replacement changes nothing for the clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{AsArray, Float32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Float32Type, Schema};
use arrow_flight::FlightDescriptor;
use arrow_flight::encode::FlightDataEncoderBuilder;
use futures::TryStreamExt;

use super::harness::{Server, options};
use crate::model_rollout::{roll_out, scale_model};

const CLIENTS: usize = 8;
/// Exchanges per client, and batches (of `ROWS` rows) per exchange.
const EXCHANGES: usize = 12;
const BATCHES: usize = 4;
const ROWS: usize = 64;
const SQL: &str = "SELECT x, embed('scale', x, x) AS e FROM input";

fn input_batch(start: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float32, false)]));
    let values: Float32Array = (start..start + ROWS).map(|v| v as f32 + 1.0).collect();
    RecordBatch::try_new(schema, vec![Arc::new(values)]).expect("batch")
}

/// One exchange of `BATCHES` batches; returns the factors `e[0] / x` its rows were scaled
/// by (deduplicated) and the rows it got back.
async fn exchange(server: &Server) -> (Vec<f32>, usize) {
    let mut client = server.flight_client().await;
    let batches = (0..BATCHES).map(|b| Ok(input_batch(b * ROWS)));
    let data = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_cmd(SQL.to_string())))
        .build(futures::stream::iter(batches));
    let output: Vec<RecordBatch> = client
        .do_exchange(data)
        .await
        .expect("the exchange starts")
        .try_collect()
        .await
        .expect("the exchange finishes");
    let mut factors = Vec::new();
    let mut rows = 0;
    for batch in &output {
        let x = batch.column(0).as_primitive::<Float32Type>();
        let e = batch.column(1).as_fixed_size_list();
        for row in 0..batch.num_rows() {
            let factor = e.value(row).as_primitive::<Float32Type>().value(0) / x.value(row);
            if !factors.contains(&factor) {
                factors.push(factor);
            }
        }
        rows += batch.num_rows();
    }
    (factors, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_swapped_under_load_fails_no_request_and_mixes_no_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    roll_out(dir.path(), "scale.onnx", &scale_model(1.0));
    let server = Arc::new(Server::start_over(options(), dir.path(), "SELECT 1").await);
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (server, done) = (Arc::clone(&server), Arc::clone(&done));
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..EXCHANGES {
                    let (factors, rows) = exchange(&server).await;
                    assert_eq!(rows, BATCHES * ROWS, "every row comes back");
                    assert_eq!(factors.len(), 1, "one response, one version: {factors:?}");
                    seen.push(factors[0]);
                    done.fetch_add(1, Ordering::SeqCst);
                }
                seen
            })
        })
        .collect();

    // Swap once every client has had an answer, then put garbage in its place.
    let deadline = Instant::now() + Duration::from_secs(120);
    let wait_for = |count: usize| {
        let done = Arc::clone(&done);
        async move {
            while done.load(Ordering::SeqCst) < count {
                assert!(Instant::now() < deadline, "the clients stalled at {count} exchanges");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_for(CLIENTS).await;
    roll_out(dir.path(), "scale.onnx", &scale_model(10.0));
    let swapped_at = done.load(Ordering::SeqCst);
    wait_for(swapped_at + 2 * CLIENTS).await;
    roll_out(dir.path(), "scale.onnx", b"not a model");

    let mut after_swap = 0;
    for client in clients {
        let seen = client.await.expect("no client failed");
        // Each client's answers switch from the old version to the new one once, never back.
        let switch = seen.iter().position(|f| *f == 10.0).unwrap_or(seen.len());
        assert!(seen[..switch].iter().all(|f| *f == 1.0), "{seen:?}");
        assert!(seen[switch..].iter().all(|f| *f == 10.0), "{seen:?}");
        after_swap += seen.len() - switch;
    }
    assert!(
        after_swap >= CLIENTS,
        "requests after the swap got the new version ({after_swap})"
    );
    let (factors, _) = exchange(&server).await;
    assert_eq!(
        factors,
        [10.0],
        "the garbage replacement is refused, the new version serves"
    );
    match Arc::try_unwrap(server) {
        Ok(server) => server.stop().await,
        Err(_) => panic!("a client still holds the server"),
    }
}
