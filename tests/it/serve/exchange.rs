//! `DoExchange` enrichment: a stream of batches in, the query's batches out, in order.

use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow_flight::FlightDescriptor;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use futures::{StreamExt, TryStreamExt};

use super::harness::{Server, assert_same, code_of, local};

const EMBED: &str = "embed('percol', age, \"education-num\", workclass, sex)";

/// The rows of `people` in slices of `rows`.
async fn people_batches(rows: usize) -> Vec<RecordBatch> {
    let all = local("SELECT * FROM people ORDER BY id").await;
    (0..all.num_rows())
        .step_by(rows)
        .map(|start| all.slice(start, rows.min(all.num_rows() - start)))
        .collect()
}

fn exchange_data(
    sql: &str,
    batches: impl futures::Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static,
) -> impl futures::Stream<Item = Result<arrow_flight::FlightData, FlightError>> + Send + 'static {
    FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_cmd(sql.to_string())))
        .build(batches)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_enriches_every_row_once_in_order() {
    let server = Server::start().await;
    let mut client = server.flight_client().await;
    let input = people_batches(250).await;
    assert_eq!(input.len(), 20);
    let sql = format!("SELECT id, {EMBED} AS e FROM input WHERE id % 7 <> 3");
    let output: Vec<RecordBatch> = client
        .do_exchange(exchange_data(&sql, futures::stream::iter(input.into_iter().map(Ok))))
        .await
        .expect("exchange")
        .try_collect()
        .await
        .expect("batches");
    assert!(
        output.len() >= 2,
        "the output came as {} batch(es), not batch by batch",
        output.len()
    );
    let remote = concat_batches(&output[0].schema(), &output).expect("concat");
    let expected = local(&format!(
        "SELECT id, {EMBED} AS e FROM people WHERE id % 7 <> 3 ORDER BY id"
    ))
    .await;
    assert_same(&remote, &expected, "DoExchange");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_refuses_a_schema_change_and_a_missing_descriptor() {
    let server = Server::start().await;
    let mut client = server.flight_client().await;
    // Two encoders, the second announcing a narrower schema mid-stream.
    let input = people_batches(1000).await;
    let narrower = input[1].project(&[0, 1]).expect("project");
    let sql = "SELECT * FROM input";
    let data = exchange_data(sql, futures::stream::iter([Ok(input[0].clone())]))
        .chain(FlightDataEncoderBuilder::new().build(futures::stream::iter([Ok(narrower)])));
    let result: Result<Vec<RecordBatch>, FlightError> = match client.do_exchange(data).await {
        Ok(stream) => stream.try_collect().await,
        Err(error) => Err(error),
    };
    let error = result.expect_err("schema change");
    assert_eq!(code_of(&error), tonic::Code::InvalidArgument, "{error}");
    assert!(error.to_string().contains("changed schema"), "{error}");

    let batches = people_batches(1000).await;
    let no_descriptor = FlightDataEncoderBuilder::new().build(futures::stream::iter(batches.into_iter().map(Ok)));
    let error = client.do_exchange(no_descriptor).await.expect_err("no descriptor");
    assert_eq!(code_of(&error), tonic::Code::InvalidArgument, "{error}");
    assert!(error.to_string().contains("descriptor"), "{error}");

    let batches = people_batches(1000).await;
    let data = exchange_data("DROP VIEW people", futures::stream::iter(batches.into_iter().map(Ok)));
    let error = client.do_exchange(data).await.expect_err("not a query");
    assert_eq!(code_of(&error), tonic::Code::PermissionDenied, "{error}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_mid_stream_frees_its_query() {
    let server = Server::start().await;
    let batches = people_batches(100).await;
    // The client runs on a runtime of its own: shutting that runtime down closes its TCP
    // connection mid-stream, as a crashed client would.
    let address = server.address;
    let (got_first, first) = std::sync::mpsc::channel::<usize>();
    let (leave, left) = std::sync::mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
                .expect("endpoint")
                .connect()
                .await
                .expect("connects");
            let mut client = arrow_flight::FlightClient::new(channel);
            client
                .add_header("authorization", &format!("Bearer {}", super::harness::TOKEN))
                .expect("header");
            // An input that never ends: the first batch, then nothing.
            let input = futures::stream::iter([Ok(batches[0].clone())]).chain(futures::stream::pending());
            let sql = format!("SELECT id, {EMBED} AS e FROM input");
            let mut output = client.do_exchange(exchange_data(&sql, input)).await.expect("exchange");
            let batch = output.next().await.expect("a batch").expect("ok");
            got_first.send(batch.num_rows()).expect("report");
            let _ = left.recv();
        });
        runtime.shutdown_background();
    });
    assert_eq!(first.recv().expect("first batch"), 100);
    assert_eq!(server.service.running_queries(), 1);
    leave.send(()).expect("leave");
    client.join().expect("client thread");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.service.running_queries() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.service.running_queries(), 0, "the query outlived its client");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_that_carry_state_across_batches_see_the_stream_as_one() {
    let server = Server::start().await;
    let mut client = server.flight_client().await;
    for (sql, expected) in [
        ("SELECT id FROM input LIMIT 1300", (0..1300).collect::<Vec<i64>>()),
        (
            "SELECT row_number() OVER () AS n FROM input WHERE id % 2 = 0",
            (1..=2500).collect::<Vec<i64>>(),
        ),
    ] {
        let input = people_batches(250).await;
        let output: Vec<RecordBatch> = client
            .do_exchange(exchange_data(sql, futures::stream::iter(input.into_iter().map(Ok))))
            .await
            .expect("exchange")
            .try_collect()
            .await
            .expect(sql);
        let values: Vec<i64> = output
            .iter()
            .flat_map(|b| {
                arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Int64)
                    .expect("cast")
                    .as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .expect("int64")
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(values, expected, "{sql}");
    }
    server.stop().await;
}
