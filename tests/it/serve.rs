//! `tabssl serve` in-process on 127.0.0.1:0, driven by arrow-flight's Flight SQL client:
//! statements equal the local result, tokens are enforced, clients cannot write or read
//! files through DDL or COPY.

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow_flight::sql::SqlInfo;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{FlightInfo, Ticket};
use futures::TryStreamExt;
use tabssl::serve::{TabsslFlightSql, Tokens, serve};
use tonic::transport::{Channel, Endpoint};

use crate::common::{context, fixture_models, run};

const TOKEN: &str = "t0ken-for-tests";

/// A server with table `people` (synthetic) on a free loopback port; stops when dropped.
struct Server {
    address: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<tabssl::Result<()>>>,
}

impl Server {
    async fn start() -> Self {
        let ctx = context(&fixture_models());
        run(&ctx, "CREATE VIEW people AS SELECT * FROM tabssl_synthetic(3000, 5)").await;
        let service = TabsslFlightSql::new(ctx, Tokens::new([TOKEN.to_string()])).expect("service");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(serve(service, listener, async {
            let _ = stopped.await;
        }));
        Self {
            address,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    async fn client(&self) -> FlightSqlServiceClient<Channel> {
        let channel = Endpoint::from_shared(format!("http://{}", self.address))
            .expect("endpoint")
            .connect()
            .await
            .expect("connects");
        FlightSqlServiceClient::new(channel)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task").expect("server stops cleanly");
        }
    }
}

async fn fetch(client: &mut FlightSqlServiceClient<Channel>, info: FlightInfo) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket: Ticket = endpoint.ticket.expect("ticket");
        let stream = client.do_get(ticket).await.expect("do_get");
        batches.extend(stream.try_collect::<Vec<_>>().await.expect("batches"));
    }
    batches
}

async fn query(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> RecordBatch {
    let info = client.execute(sql.to_string(), None).await.expect("execute");
    let schema = info.clone().try_decode_schema().expect("schema");
    let batches = fetch(client, info).await;
    concat_batches(&std::sync::Arc::new(schema), &batches).expect("concat")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_over_flight_sql_equals_the_local_result() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let token = client.handshake("analyst", TOKEN).await.expect("handshake");
    client.set_token(String::from_utf8(token.to_vec()).expect("utf-8"));
    let sql = "SELECT id, embed('percol', age, \"education-num\", workclass, sex) AS e, \
               corrupt_mask(age, 0.3, 42, id) AS m FROM people ORDER BY id";
    let remote = query(&mut client, sql).await;
    let local_ctx = context(&fixture_models());
    run(
        &local_ctx,
        "CREATE VIEW people AS SELECT * FROM tabssl_synthetic(3000, 5)",
    )
    .await;
    let local = run(&local_ctx, sql).await;
    let local = concat_batches(&local[0].schema(), &local).expect("concat");
    assert_eq!(remote.num_rows(), 3000);
    assert_eq!(remote.schema().fields(), local.schema().fields());
    assert_eq!(remote, local, "the served result differs from the local one");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_the_token_are_unauthenticated() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let error = client.execute("SELECT 1".into(), None).await.expect_err("no token");
    assert!(
        error.to_string().contains("valid authentication credentials"),
        "{error}"
    );
    assert!(client.handshake("analyst", "guess").await.is_err());
    client.set_token("guess".into());
    let error = client.execute("SELECT 1".into(), None).await.expect_err("wrong token");
    assert!(
        error.to_string().contains("valid authentication credentials"),
        "{error}"
    );
    assert!(!error.to_string().contains(TOKEN), "{error}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_create_tables_or_write_files() {
    let server = Server::start().await;
    let mut client = server.client().await;
    client.set_token(TOKEN.into());
    let target = tempfile::tempdir().expect("tempdir");
    let copy_to = target.path().join("x.parquet");
    for sql in [
        "CREATE EXTERNAL TABLE secrets STORED AS CSV LOCATION '/etc/passwd'".to_string(),
        format!("COPY (SELECT 1 AS a) TO '{}' STORED AS PARQUET", copy_to.display()),
        "CREATE TABLE t AS SELECT 1".to_string(),
        "DROP VIEW people".to_string(),
    ] {
        let error = client.execute(sql.clone(), None).await.expect_err(&sql);
        assert!(error.to_string().contains("invalid argument"), "{sql}: {error}");
    }
    assert!(!copy_to.exists(), "COPY wrote a file");
    // The view is still there, with its rows.
    let count = query(&mut client, "SELECT count(*) AS n FROM people").await;
    assert_eq!(
        count.column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0),
        3000
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_info_and_catalogs_answer() {
    let server = Server::start().await;
    let mut client = server.client().await;
    client.set_token(TOKEN.into());
    let info = client
        .get_sql_info(vec![SqlInfo::FlightSqlServerName])
        .await
        .expect("sql info");
    let batches = fetch(&mut client, info).await;
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    let info = client.get_catalogs().await.expect("catalogs");
    let batches = fetch(&mut client, info).await;
    let names: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(names, ["datafusion"]);
    let error = client
        .get_primary_keys(arrow_flight::sql::CommandGetPrimaryKeys::default())
        .await
        .expect_err("unimplemented");
    assert!(error.to_string().contains("not implemented"), "{error}");
    server.stop().await;
}
