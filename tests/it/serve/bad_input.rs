//! Bad input on the wire: garbage bytes, malformed Flight messages and handles. Every one
//! gets an error (or a closed connection) and the server keeps answering.

use std::io::{Read, Write};
use std::time::Duration;

use arrow_flight::sql::{Any, CommandPreparedStatementQuery, ProstMessageExt};
use arrow_flight::{Action, FlightDescriptor, Ticket};
use prost::Message as _;

use super::harness::{Server, code_of, query};

/// Deterministic pseudo-random bytes.
fn garbage(n: usize, mut state: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_port_closes_that_connection_only() {
    let server = Server::start().await;
    let address = server.address;
    tokio::task::spawn_blocking(move || {
        for payload in [
            garbage(100_000, 42),
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                .iter()
                .copied()
                .chain(garbage(4096, 7))
                .collect(),
        ] {
            let mut stream = std::net::TcpStream::connect(address).expect("connects");
            stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
            let _ = stream.write_all(&payload);
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let mut answer = Vec::new();
            // The server answers with an error frame or closes; it must not hang.
            let read = stream.read_to_end(&mut answer);
            assert!(
                read.is_ok() || answer.len() < 1 << 20,
                "the server neither answered nor closed: {read:?}"
            );
        }
    })
    .await
    .expect("garbage client");
    let mut client = server.client().await;
    assert_eq!(query(&mut client, "SELECT 1 AS one").await.num_rows(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_flight_messages_get_errors() {
    let server = Server::start().await;
    let mut client = server.client().await;

    let ticket = Ticket::new(garbage(64, 3));
    assert!(client.do_get(ticket).await.is_err(), "a garbage ticket");

    let not_sql = arrow_flight::sql::TicketStatementQuery {
        statement_handle: vec![0xff, 0xfe, 0x00].into(),
    };
    let error = client
        .do_get(Ticket::new(not_sql.as_any().encode_to_vec()))
        .await
        .expect_err("not UTF-8");
    assert_eq!(code_of(&error), tonic::Code::InvalidArgument, "{error}");

    let handle = CommandPreparedStatementQuery {
        prepared_statement_handle: b"{\"sql\": 1}".to_vec().into(),
    };
    let error = client
        .do_get(Ticket::new(handle.as_any().encode_to_vec()))
        .await
        .expect_err("forged handle");
    assert_eq!(code_of(&error), tonic::Code::InvalidArgument, "{error}");
    assert!(error.to_string().contains("not one this server issued"), "{error}");

    let mut flight = server.flight_client().await;
    let unknown = Any {
        type_url: "type.googleapis.com/no.Such".into(),
        value: garbage(16, 5).into(),
    };
    let error = flight
        .get_flight_info(FlightDescriptor::new_cmd(unknown.encode_to_vec()))
        .await
        .expect_err("unknown command");
    assert!(
        matches!(
            code_of(&error),
            tonic::Code::Unimplemented | tonic::Code::InvalidArgument
        ),
        "{error}"
    );
    let error = flight
        .get_flight_info(FlightDescriptor::new_cmd(garbage(40, 9)))
        .await
        .expect_err("garbage command");
    assert!(error.to_string().len() < 2000, "{error}");
    let unknown_action = flight.do_action(Action::new("no-such-action", garbage(8, 1))).await;
    assert!(unknown_action.is_err(), "an unknown action");
    let no_descriptor = arrow_flight::encode::FlightDataEncoderBuilder::new().build(futures::stream::iter([Ok(
        super::harness::local("SELECT 1 AS one").await,
    )]));
    assert!(
        flight.do_put(no_descriptor).await.is_err(),
        "a DoPut without a descriptor"
    );

    assert_eq!(query(&mut client, "SELECT 1 AS one").await.num_rows(), 1);
    server.stop().await;
}
