//! Load, limits and shutdown, bounded and on loopback: concurrent clients get the serial
//! answers, each limit answers with its documented error, SIGTERM loses no answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow_flight::error::FlightError;
use arrow_flight::sql::{CommandStatementIngest, TableDefinitionOptions, TableExistsOption, TableNotExistOption};
use futures::StreamExt;
use tabssl::serve::{Limits, ServeOptions};

use super::harness::{Server, assert_same, code_of, options, query, try_query};

const EMBED: &str = "embed('percol', age, \"education-num\", workclass, sex)";

/// Five 1-row and five 1,000-row enrichments.
fn requests() -> Vec<String> {
    let one = (0..5).map(|i| format!("SELECT id, {EMBED} AS e FROM people WHERE id = {}", 37 + i * 911));
    let many = (0..5).map(|i| {
        let start = i * 800;
        format!(
            "SELECT id, {EMBED} AS e FROM people WHERE id >= {start} AND id < {} ORDER BY id",
            start + 1000
        )
    });
    one.chain(many).collect()
}

/// Resident memory of this process, in bytes.
fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: usize = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_clients_get_the_serial_answers() {
    const CLIENTS: usize = 16;
    const REQUESTS: usize = 200;
    let server = Server::start().await;
    let requests = Arc::new(requests());
    let mut serial_client = server.client().await;
    let mut serial = Vec::new();
    for sql in requests.iter() {
        serial.push(query(&mut serial_client, sql).await);
    }
    let serial = Arc::new(serial);
    let before = resident_bytes();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client_index in 0..CLIENTS {
        let mut client = server.client().await;
        let (requests, serial) = (Arc::clone(&requests), Arc::clone(&serial));
        tasks.push(tokio::spawn(async move {
            for request in 0..REQUESTS {
                let which = (client_index * 7 + request * 3) % requests.len();
                let answer = query(&mut client, &requests[which]).await;
                assert_same(
                    &answer,
                    &serial[which],
                    &format!("client {client_index} request {request}"),
                );
            }
        }));
    }
    for task in tasks {
        task.await.expect("client");
    }
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < 512 << 20,
        "resident memory grew by {} MiB over {} requests",
        grown >> 20,
        CLIENTS * REQUESTS
    );
    assert_eq!(server.service.running_queries(), 0);
    eprintln!(
        "{} requests from {CLIENTS} clients in {:.1} s, resident memory +{} MiB",
        CLIENTS * REQUESTS,
        started.elapsed().as_secs_f64(),
        grown >> 20
    );
    server.stop().await;
}

/// An exchange whose input, after its first batch, ends only when the returned sender is
/// dropped: until then it holds a query slot.
async fn held_exchange(
    server: &Server,
) -> (
    arrow_flight::decode::FlightRecordBatchStream,
    tokio::sync::oneshot::Sender<()>,
) {
    let mut client = server.flight_client().await;
    let first = super::harness::local("SELECT * FROM people WHERE id < 10").await;
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let end = futures::stream::once(released).filter_map(|_| std::future::ready(None));
    let input = futures::stream::iter([Ok::<_, FlightError>(first)]).chain(end);
    let data = arrow_flight::encode::FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(arrow_flight::FlightDescriptor::new_cmd(format!(
            "SELECT id, {EMBED} AS e FROM input"
        ))))
        .build(input);
    let mut output = client.do_exchange(data).await.expect("exchange");
    let batch = output.next().await.expect("a batch").expect("ok");
    assert_eq!(batch.num_rows(), 10);
    (output, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_limit_answers_with_its_documented_error() {
    // Concurrent queries: a second query waits, then is refused.
    let server = Server::start_with(ServeOptions {
        limits: Limits {
            max_concurrent_queries: 1,
            queue_timeout: Duration::from_millis(200),
            ..Limits::default()
        },
        ..options()
    })
    .await;
    let held = held_exchange(&server).await;
    let mut client = server.client().await;
    let error = try_query(&mut client, "SELECT 1").await.expect_err("busy");
    assert_eq!(code_of(&error), tonic::Code::ResourceExhausted, "{error}");
    assert!(error.to_string().contains("(max_concurrent_queries 1)"), "{error}");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.service.running_queries() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        query(&mut client, "SELECT 1 AS one").await.num_rows(),
        1,
        "the slot was freed"
    );
    server.stop().await;

    // Query time: a query still running at the deadline is stopped.
    let server = Server::start_with(ServeOptions {
        limits: Limits {
            query_timeout: Duration::from_millis(300),
            ..Limits::default()
        },
        ..options()
    })
    .await;
    let (mut output, _release) = held_exchange(&server).await;
    let error = output.next().await.expect("an item").expect_err("deadline");
    assert_eq!(code_of(&error), tonic::Code::DeadlineExceeded, "{error}");
    assert!(error.to_string().contains("(query_timeout)"), "{error}");
    server.stop().await;

    // Memory per query, ingest rows, message size.
    let server = Server::start_with(ServeOptions {
        limits: Limits {
            query_memory_bytes: 64 << 10,
            max_ingest_rows: 1500,
            max_message_bytes: 256 << 10,
            ..Limits::default()
        },
        ..options()
    })
    .await;
    let mut client = server.client().await;
    let error = try_query(
        &mut client,
        "SELECT a.id, b.age FROM people a JOIN people b ON a.workclass = b.workclass",
    )
    .await
    .expect_err("memory");
    assert_eq!(code_of(&error), tonic::Code::ResourceExhausted, "{error}");
    assert!(error.to_string().contains("limit is query_memory_bytes"), "{error}");

    let ingest = CommandStatementIngest {
        table_definition_options: Some(TableDefinitionOptions {
            if_not_exist: TableNotExistOption::Create.into(),
            if_exists: TableExistsOption::Append.into(),
        }),
        table: "entities".to_string(),
        ..CommandStatementIngest::default()
    };
    let rows = super::harness::local("SELECT id, age FROM people WHERE id < 1000").await;
    let upload = |batch: RecordBatch| futures::stream::iter([Ok(batch)]);
    client
        .execute_ingest(ingest.clone(), upload(rows.clone()))
        .await
        .expect("first 1000 rows");
    let error = client
        .execute_ingest(ingest.clone(), upload(rows.clone()))
        .await
        .expect_err("rows");
    assert_eq!(code_of(&error), tonic::Code::ResourceExhausted, "{error}");
    assert!(error.to_string().contains("(max_ingest_rows)"), "{error}");

    let big = super::harness::local("SELECT * FROM people").await;
    let error = client
        .execute_ingest(ingest, upload(big))
        .await
        .expect_err("message size");
    assert_eq!(code_of(&error), tonic::Code::ResourceExhausted, "{error}");
    assert!(error.to_string().contains("limit is max_message_bytes"), "{error}");
    let mut flight = server.flight_client().await;
    let big = super::harness::local("SELECT * FROM people").await;
    let data = arrow_flight::encode::FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(arrow_flight::FlightDescriptor::new_cmd("SELECT * FROM input")))
        .with_max_flight_data_size(usize::MAX)
        .build(futures::stream::iter([Ok(big)]));
    let result = match flight.do_exchange(data).await {
        Ok(stream) => futures::TryStreamExt::try_collect::<Vec<_>>(stream).await.map(|_| ()),
        Err(error) => Err(error),
    };
    let error = result.expect_err("an oversized exchange batch");
    assert_eq!(code_of(&error), tonic::Code::ResourceExhausted, "{error}");
    // Answers larger than a message are split, not refused.
    let all = query(&mut client, &format!("SELECT id, {EMBED} AS e FROM people")).await;
    assert_eq!(all.num_rows(), super::harness::PEOPLE);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_loses_no_completed_answer() {
    let mut server = Server::start_with(ServeOptions {
        grace: Duration::from_secs(20),
        ..options()
    })
    .await;
    let requests = Arc::new(requests());
    let mut serial_client = server.client().await;
    let mut serial = Vec::new();
    for sql in requests.iter() {
        serial.push(query(&mut serial_client, sql).await);
    }
    drop(serial_client);
    let serial = Arc::new(serial);
    let mut tasks = Vec::new();
    for client_index in 0..8 {
        let mut client = server.client().await;
        let (requests, serial) = (Arc::clone(&requests), Arc::clone(&serial));
        tasks.push(tokio::spawn(async move {
            let mut completed = 0;
            for request in 0..10_000 {
                let which = (client_index + request) % requests.len();
                match try_query(&mut client, &requests[which]).await {
                    Ok(answer) => {
                        assert_same(
                            &answer,
                            &serial[which],
                            &format!("client {client_index} request {request}"),
                        );
                        completed += 1;
                    }
                    Err(_) => break,
                }
            }
            completed
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopping = Instant::now();
    server.signal_stop();
    let mut completed = 0;
    for task in tasks {
        completed += task.await.expect("client");
    }
    assert!(completed > 0, "no request completed before the shutdown");
    server.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "the server took {:?} to stop",
        stopping.elapsed()
    );
}

/// Reads from a raw connection until the server closes it; `false` if it stays open for
/// `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // The server's HTTP/2 preface or a GOAWAY: keep reading.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_capped_and_closed_but_a_waiting_call_keeps_its_own() {
    let server = Server::start_with(ServeOptions {
        limits: Limits {
            max_connections: 3,
            idle_timeout: Duration::from_millis(400),
            ..Limits::default()
        },
        ..options()
    })
    .await;
    // Three silent connections take every slot: the fourth is closed at once.
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(tokio::net::TcpStream::connect(server.address).await.expect("connects"));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut extra = tokio::net::TcpStream::connect(server.address)
        .await
        .expect("the kernel accepts");
    assert!(
        closed_within(&mut extra, Duration::from_millis(300)).await,
        "a connection past max_connections is closed at once"
    );
    // The silent ones are closed after the idle timeout, which frees their slots.
    for stream in &mut idle {
        assert!(
            closed_within(stream, Duration::from_secs(5)).await,
            "an idle connection is closed"
        );
    }
    let mut client = server.client().await;
    assert_eq!(
        query(&mut client, "SELECT 1 AS one").await.num_rows(),
        1,
        "slots were freed"
    );
    drop(client);

    // A call waiting for its input sends nothing for longer than the idle timeout, and
    // its connection stays open: the exchange finishes with every row.
    let (mut output, release) = held_exchange(&server).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    drop(release);
    let mut rest = 0;
    while let Some(batch) = output.next().await {
        rest += batch.expect("the exchange survives the idle timeout").num_rows();
    }
    assert_eq!(rest, 0, "every row came with the first batch");
    server.stop().await;
}
