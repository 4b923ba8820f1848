//! Tokens, TLS and file-system confinement: nothing is read or written outside the data
//! roots, whatever the client's SQL.

use arrow::array::AsArray;
use tabssl::io::FileAccess;
use tabssl::serve::{ServeOptions, TlsIdentity, Tokens};

use super::harness::{Server, TOKEN, code_of, local, options, query, try_query};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_need_this_servers_token() {
    let server = Server::start().await;
    let other = Server::start_with(ServeOptions {
        tokens: Tokens::new(["another-servers-token".to_string()]),
        ..ServeOptions::default()
    })
    .await;
    let mut client = arrow_flight::sql::client::FlightSqlServiceClient::new(server.channel().await);
    for token in [None, Some("guess"), Some("another-servers-token"), Some("")] {
        if let Some(token) = token {
            client.set_token(token.to_string());
        }
        let error = client.execute("SELECT 1".into(), None).await.expect_err("refused");
        assert_eq!(code_of(&error), tonic::Code::Unauthenticated, "{token:?}: {error}");
        assert!(!error.to_string().contains(TOKEN), "{error}");
    }
    // A client holding a token sends it instead of the Basic credentials: start afresh.
    let mut client = arrow_flight::sql::client::FlightSqlServiceClient::new(server.channel().await);
    assert!(client.handshake("analyst", "guess").await.is_err());
    let token = client.handshake("analyst", TOKEN).await.expect("handshake");
    assert_eq!(token.as_ref(), TOKEN.as_bytes());
    client.set_token(TOKEN.to_string());
    assert_eq!(query(&mut client, "SELECT 1 AS one").await.num_rows(), 1);
    server.stop().await;
    other.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_create_tables_write_files_or_change_settings() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let target = tempfile::tempdir().expect("tempdir");
    let copy_to = target.path().join("x.parquet");
    for sql in [
        "CREATE EXTERNAL TABLE secrets STORED AS CSV LOCATION '/etc/passwd'".to_string(),
        format!("COPY (SELECT 1 AS a) TO '{}' STORED AS PARQUET", copy_to.display()),
        "CREATE TABLE t AS SELECT 1".to_string(),
        "DROP VIEW people".to_string(),
        "SET tabssl.models_dir = '/'".to_string(),
        "SET datafusion.execution.target_partitions = 64".to_string(),
        "EXPLAIN CREATE TABLE t AS SELECT 1".to_string(),
        "INSERT INTO people VALUES (1)".to_string(),
    ] {
        let error = client.execute(sql.clone(), None).await.expect_err(&sql);
        assert_eq!(code_of(&error), tonic::Code::PermissionDenied, "{sql}: {error}");
        assert!(
            error.to_string().contains("run on the server's context before serve"),
            "{sql}: {error}"
        );
    }
    for sql in ["SELECT * FROM '/etc/passwd'", "SELECT 1; SELECT 2"] {
        let error = client.execute(sql.to_string(), None).await.expect_err(sql);
        assert_eq!(code_of(&error), tonic::Code::InvalidArgument, "{sql}: {error}");
    }
    assert!(!copy_to.exists(), "COPY wrote a file");
    let count = query(&mut client, "SELECT count(*) AS n FROM people").await;
    assert_eq!(
        count.column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0),
        super::harness::PEOPLE as i64
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marginal_files_are_read_only_under_a_data_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("root");
    let inside = root.join("people.marginals.parquet");
    let outside = dir.path().join("outside.parquet");
    for path in [&inside, &outside] {
        let ctx = crate::common::context(&crate::common::fixture_models());
        crate::common::run(&ctx, &super::harness::people_sql()).await;
        crate::common::run(
            &ctx,
            &format!(
                "COPY (SELECT marginal_sample(age, id) AS age FROM people) TO '{}' STORED AS PARQUET",
                path.display()
            ),
        )
        .await;
    }
    std::os::unix::fs::symlink(&outside, root.join("link.parquet")).expect("symlink");
    let swap = |path: &std::path::Path| {
        format!(
            "SELECT id, corrupt_swap(age, '{}', 0.5, 7, id) AS a FROM people ORDER BY id",
            path.display()
        )
    };

    let server = Server::start_with(ServeOptions {
        file_access: FileAccess::within([&root]).expect("root"),
        ..options()
    })
    .await;
    let mut client = server.client().await;
    let sql = swap(&inside);
    assert_eq!(query(&mut client, &sql).await, local(&sql).await);
    for path in [
        outside.clone(),
        root.join("../outside.parquet"),
        root.join("link.parquet"),
        std::path::PathBuf::from("/etc/passwd"),
    ] {
        let error = try_query(&mut client, &swap(&path)).await.expect_err("outside");
        assert_eq!(
            code_of(&error),
            tonic::Code::InvalidArgument,
            "{}: {error}",
            path.display()
        );
        assert!(
            error.to_string().contains("outside the data roots"),
            "{}: {error}",
            path.display()
        );
    }
    server.stop().await;

    let closed = Server::start().await;
    let mut client = closed.client().await;
    let error = try_query(&mut client, &swap(&inside)).await.expect_err("no roots");
    assert!(error.to_string().contains("data roots with file_access"), "{error}");
    closed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_round_trip_with_a_self_signed_certificate() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let identity = TlsIdentity {
        certificate_pem: certified.cert.pem().into_bytes(),
        key_pem: certified.signing_key.serialize_pem().into_bytes(),
    };
    let server = Server::start_with(ServeOptions {
        tls: Some(identity),
        ..options()
    })
    .await;
    let mut client = server.client().await;
    let sql = "SELECT id, embed('percol', age, \"education-num\", workclass, sex) AS e FROM people ORDER BY id";
    assert_eq!(query(&mut client, sql).await, local(sql).await);

    // A plaintext client gets nothing.
    let plaintext = tonic::transport::Endpoint::from_shared(format!("http://{}", server.address))
        .expect("endpoint")
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        let mut client = arrow_flight::sql::client::FlightSqlServiceClient::new(channel);
        client.set_token(TOKEN.to_string());
        assert!(client.execute("SELECT 1".into(), None).await.is_err());
    }
    server.stop().await;
}
