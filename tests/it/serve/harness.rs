//! A server on a free loopback port with table `people` (synthetic), and clients for it.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{FlightClient, FlightInfo, Ticket};
use futures::TryStreamExt;
use tabssl::serve::{ServeOptions, TabsslFlightSql, Tokens, serve};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::common::{context, fixture_models, run};

pub const TOKEN: &str = "t0ken-for-tests";

/// Rows of the server's table `people`.
pub const PEOPLE: usize = 5000;

/// The start-up SQL of every test server (and of the local reference).
pub fn people_sql() -> String {
    format!("CREATE VIEW people AS SELECT * FROM tabssl_synthetic({PEOPLE}, 5)")
}

/// The options of a default test server: one token, no data root.
pub fn options() -> ServeOptions {
    ServeOptions {
        tokens: Tokens::new([TOKEN.to_string()]),
        ..ServeOptions::default()
    }
}

/// A running server; stops when [`Server::stop`] is called.
pub struct Server {
    pub address: std::net::SocketAddr,
    pub service: TabsslFlightSql,
    tls_ca: Option<Vec<u8>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<tabssl::Result<()>>>,
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with(options()).await
    }

    pub async fn start_with(options: ServeOptions) -> Self {
        Self::start_over(options, &fixture_models(), &people_sql()).await
    }

    /// A server over the models in `models` and the tables `sql` sets up.
    pub async fn start_over(options: ServeOptions, models: &std::path::Path, sql: &str) -> Self {
        let tls_ca = options.tls.as_ref().map(|tls| tls.certificate_pem.clone());
        let ctx = context(models);
        run_script(&ctx, sql).await;
        let service = TabsslFlightSql::new(&ctx, options).expect("service");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(serve(service.clone(), listener, async {
            let _ = stopped.await;
        }));
        Self {
            address,
            service,
            tls_ca,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub async fn channel(&self) -> Channel {
        let endpoint = match &self.tls_ca {
            None => Endpoint::from_shared(format!("http://{}", self.address)).expect("endpoint"),
            Some(ca) => Endpoint::from_shared(format!("https://localhost:{}", self.address.port()))
                .expect("endpoint")
                .tls_config(
                    ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(ca))
                        .domain_name("localhost"),
                )
                .expect("tls config"),
        };
        endpoint.connect().await.expect("connects")
    }

    /// A Flight SQL client on a new connection, with the token set.
    pub async fn client(&self) -> FlightSqlServiceClient<Channel> {
        let mut client = FlightSqlServiceClient::new(self.channel().await);
        client.set_token(TOKEN.to_string());
        client
    }

    /// A plain Flight client on a new connection, with the token set (for DoExchange).
    pub async fn flight_client(&self) -> FlightClient {
        let mut client = FlightClient::new(self.channel().await);
        client
            .add_header("authorization", &format!("Bearer {TOKEN}"))
            .expect("header");
        client
    }

    /// Signals shutdown and waits for the server to stop.
    pub async fn stop(mut self) {
        self.signal_stop();
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task").expect("server stops cleanly");
        }
    }

    /// Signals shutdown without waiting.
    pub fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Runs every statement of `sql`, as `tabssl serve --sql-file` does.
pub async fn run_script(ctx: &datafusion::prelude::SessionContext, sql: &str) {
    let statements = datafusion::sql::parser::DFParser::parse_sql(sql).expect("SQL parses");
    tabssl::run_statements(ctx, statements).await.expect("SQL runs");
}

pub async fn fetch(client: &mut FlightSqlServiceClient<Channel>, info: FlightInfo) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket: Ticket = endpoint.ticket.expect("ticket");
        let stream = client.do_get(ticket).await.expect("do_get");
        batches.extend(stream.try_collect::<Vec<_>>().await.expect("batches"));
    }
    batches
}

/// Runs `sql` through the server; the batches concatenated.
pub async fn query(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> RecordBatch {
    try_query(client, sql).await.expect(sql)
}

/// Runs `sql` through the server, or the error.
pub async fn try_query(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<RecordBatch, arrow_flight::error::FlightError> {
    let info = client.execute(sql.to_string(), None).await?;
    let schema = Arc::new(info.clone().try_decode_schema()?);
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket: Ticket = endpoint.ticket.expect("ticket");
        let stream = client.do_get(ticket).await?;
        batches.extend(stream.try_collect::<Vec<_>>().await?);
    }
    Ok(concat_batches(&schema, &batches)?)
}

/// `sql` run locally over the same tables: what `tabssl sql` answers.
pub async fn local(sql: &str) -> RecordBatch {
    let ctx = context(&fixture_models());
    run(&ctx, &people_sql()).await;
    let batches = run(&ctx, sql).await;
    let schema = ctx.sql(sql).await.expect("plans").schema().as_arrow().clone();
    concat_batches(&Arc::new(schema), &batches).expect("concat")
}

/// The gRPC status code of a Flight error.
pub fn code_of(error: &arrow_flight::error::FlightError) -> tonic::Code {
    match error {
        arrow_flight::error::FlightError::Tonic(status) => status.code(),
        other => panic!("not a gRPC status: {other}"),
    }
}

/// Asserts two results are equal; embeddings within 1e-6 (relative above 1).
pub fn assert_same(actual: &RecordBatch, expected: &RecordBatch, what: &str) {
    assert_eq!(actual.num_rows(), expected.num_rows(), "{what}: rows");
    assert_eq!(actual.schema().fields(), expected.schema().fields(), "{what}: schema");
    for (index, (a, e)) in actual.columns().iter().zip(expected.columns()).enumerate() {
        if a == e {
            continue;
        }
        for row in 0..actual.num_rows() {
            let got = crate::common::output_row(a.as_ref(), row);
            let want = crate::common::output_row(e.as_ref(), row);
            match (got, want) {
                (Some(got), Some(want)) => {
                    assert_eq!(got.len(), want.len(), "{what}: column {index} row {row}: width");
                    for (g, w) in got.iter().zip(&want) {
                        assert!(
                            (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                            "{what}: column {index} row {row}: {g} vs {w}"
                        );
                    }
                }
                (got, want) => assert_eq!(got.is_some(), want.is_some(), "{what}: column {index} row {row}"),
            }
        }
    }
}
