//! Statements, prepared statements with parameters, ingest + embed, catalog browsing.

use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, RecordBatch, StringArray};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::sql::{
    CommandGetDbSchemas, CommandGetTables, CommandStatementIngest, SqlInfo, TableDefinitionOptions, TableExistsOption,
    TableNotExistOption,
};

use super::harness::{Server, assert_same, code_of, fetch, local, query, try_query};

/// Embeds every synthetic column the `percol` fixture model takes.
const EMBED: &str = "embed('percol', age, \"education-num\", workclass, sex)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_over_flight_sql_equals_the_local_result() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let sql = format!("SELECT id, {EMBED} AS e, corrupt_mask(age, 0.3, 42, id) AS m FROM people ORDER BY id");
    let remote = query(&mut client, &sql).await;
    assert_eq!(remote.num_rows(), super::harness::PEOPLE);
    assert_eq!(
        remote,
        local(&sql).await,
        "the served result differs from the local one"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_statement_runs_once_per_bound_parameter_row() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let sql = format!("SELECT id, {EMBED} AS e FROM people WHERE id = $1 AND id < $2");
    let mut statement = client.prepare(sql, None).await.expect("prepare");
    let parameters = statement.parameter_schema().expect("schema").clone();
    let names: Vec<&str> = parameters.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["$1", "$2"]);
    assert_eq!(parameters.field(0).data_type(), &DataType::Int64);

    let ids = [17_i64, 4, 4321, 17];
    let bound = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("$1", DataType::Int64, false),
            Field::new("$2", DataType::Int64, false),
        ])),
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(Int64Array::from(vec![1_000_000; ids.len()])),
        ],
    )
    .expect("parameters");
    statement.set_parameters(bound).expect("bind");
    let info = statement.execute().await.expect("execute");
    let schema = Arc::new(info.clone().try_decode_schema().expect("schema"));
    let remote = concat_batches(&schema, &fetch(&mut client, info).await).expect("concat");

    let expected_sql = ids
        .iter()
        .enumerate()
        .map(|(order, id)| format!("SELECT {order} AS o, id, {EMBED} AS e FROM people WHERE id = {id}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let expected = local(&format!("SELECT id, e FROM ({expected_sql}) ORDER BY o")).await;
    assert_same(&remote, &expected, "prepared statement");
    statement.close().await.expect("close");
    server.stop().await;
}

/// Entities a client uploads: ids and the model's input columns, in two batches.
fn entities() -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("entity", DataType::Int64, false),
        Field::new("age", DataType::Int64, true),
        Field::new("education-num", DataType::Int64, true),
        Field::new("workclass", DataType::Utf8, true),
        Field::new("sex", DataType::Utf8, true),
    ]));
    let batch = |start: i64, n: i64| {
        let ids: Vec<i64> = (start..start + n).collect();
        RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(ids.clone())),
                Arc::new(Int64Array::from(
                    ids.iter().map(|i| Some(17 + i % 60)).collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(
                    ids.iter()
                        .map(|i| (i % 5 != 0).then_some(1 + i % 16))
                        .collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    ids.iter()
                        .map(|i| ["Private", "State-gov", "Never-worked"][(i % 3) as usize])
                        .collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    ids.iter()
                        .map(|i| if i % 2 == 0 { "Male" } else { "Female" })
                        .collect::<Vec<_>>(),
                )),
            ],
        )
        .expect("batch")
    };
    vec![batch(0, 700), batch(700, 300)]
}

fn ingest(table: &str, if_not_exist: TableNotExistOption, if_exists: TableExistsOption) -> CommandStatementIngest {
    CommandStatementIngest {
        table_definition_options: Some(TableDefinitionOptions {
            if_not_exist: if_not_exist.into(),
            if_exists: if_exists.into(),
        }),
        table: table.to_string(),
        ..CommandStatementIngest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingested_entities_are_embedded_and_stay_in_their_session() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let upload = |batches: Vec<RecordBatch>| futures::stream::iter(batches.into_iter().map(Ok));
    let create = ingest("entities", TableNotExistOption::Create, TableExistsOption::Fail);
    let rows = client
        .execute_ingest(create.clone(), upload(entities()))
        .await
        .expect("ingest");
    assert_eq!(rows, 1000);

    let sql = format!("SELECT entity, {EMBED} AS e FROM entities ORDER BY entity");
    let remote = query(&mut client, &sql).await;
    let ctx = crate::common::context(&crate::common::fixture_models());
    let all = entities();
    let table = datafusion::datasource::MemTable::try_new(all[0].schema(), vec![all]).expect("table");
    ctx.register_table("entities", Arc::new(table)).expect("register");
    let expected = crate::common::run(&ctx, &sql).await;
    let expected = concat_batches(&expected[0].schema(), &expected).expect("concat");
    assert_same(&remote, &expected, "ingest + embed");

    // Modes: create twice fails, append adds, replace replaces; server tables are not targets.
    let error = client
        .execute_ingest(create, upload(entities()))
        .await
        .expect_err("exists");
    assert_eq!(code_of(&error), tonic::Code::InvalidArgument, "{error}");
    let append = ingest("entities", TableNotExistOption::Fail, TableExistsOption::Append);
    client.execute_ingest(append, upload(entities())).await.expect("append");
    let count = query(&mut client, "SELECT count(*) FROM entities").await;
    assert_eq!(
        count.column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0),
        2000
    );
    let replace = ingest("entities", TableNotExistOption::Create, TableExistsOption::Replace);
    client
        .execute_ingest(replace, upload(entities()[1..].to_vec()))
        .await
        .expect("replace");
    let count = query(&mut client, "SELECT count(*) FROM entities").await;
    assert_eq!(
        count.column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0),
        300
    );
    let over_people = ingest("people", TableNotExistOption::Create, TableExistsOption::Replace);
    let error = client
        .execute_ingest(over_people, upload(entities()))
        .await
        .expect_err("server table");
    assert!(error.to_string().contains("one of the server's tables"), "{error}");

    // Another connection does not see the table; closing the connection drops it.
    let mut other = server.client().await;
    let error = try_query(&mut other, "SELECT * FROM entities")
        .await
        .expect_err("other session");
    assert!(error.to_string().contains("entities"), "{error}");
    assert_eq!(server.service.open_sessions(), 2);
    drop(client);
    drop(other);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.service.open_sessions() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        server.service.open_sessions(),
        0,
        "closed connections keep their sessions"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_calls_list_the_servers_and_the_sessions_tables() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let info = client
        .get_sql_info(vec![SqlInfo::FlightSqlServerName])
        .await
        .expect("sql info");
    let batches = fetch(&mut client, info).await;
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);

    let strings = |batches: &[RecordBatch], column: usize| -> Vec<String> {
        batches
            .iter()
            .flat_map(|b| {
                b.column(column)
                    .as_string::<i32>()
                    .iter()
                    .flatten()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let info = client.get_catalogs().await.expect("catalogs");
    assert_eq!(strings(&fetch(&mut client, info).await, 0), ["datafusion"]);
    let info = client
        .get_db_schemas(CommandGetDbSchemas::default())
        .await
        .expect("schemas");
    assert_eq!(strings(&fetch(&mut client, info).await, 1), ["public"]);

    let upload = futures::stream::iter(entities().into_iter().map(Ok));
    let create = ingest("entities", TableNotExistOption::Create, TableExistsOption::Fail);
    client.execute_ingest(create, upload).await.expect("ingest");
    let info = client
        .get_tables(CommandGetTables {
            include_schema: true,
            ..CommandGetTables::default()
        })
        .await
        .expect("tables");
    let tables = fetch(&mut client, info).await;
    assert_eq!(strings(&tables, 2), ["entities", "people"]);
    assert_eq!(strings(&tables, 3), ["LOCAL TEMPORARY", "VIEW"]);
    let schema_bytes = tables[0].column(4).as_binary::<i32>().value(1).to_vec();
    let people = Schema::try_from(arrow_flight::IpcMessage(schema_bytes.into())).expect("ipc schema");
    assert!(people.field_with_name("workclass").is_ok(), "{people:?}");
    let info = client
        .get_tables(CommandGetTables {
            table_name_filter_pattern: Some("peo%".into()),
            ..CommandGetTables::default()
        })
        .await
        .expect("filtered");
    assert_eq!(strings(&fetch(&mut client, info).await, 2), ["people"]);
    let info = client.get_table_types().await.expect("types");
    assert_eq!(
        strings(&fetch(&mut client, info).await, 0),
        ["LOCAL TEMPORARY", "TABLE", "VIEW"]
    );

    let error = client
        .get_primary_keys(arrow_flight::sql::CommandGetPrimaryKeys::default())
        .await
        .expect_err("unimplemented");
    assert_eq!(code_of(&error), tonic::Code::Unimplemented, "{error}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_check_answers_without_a_token() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let server = Server::start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "arrow.flight.protocol.FlightService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_string(),
            })
            .await
            .expect("health")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_start_up_sql_serves_adult_embeddings() {
    let sql = std::fs::read_to_string(crate::common::repo().join("sql/serve/adult.sql")).expect("sql/serve/adult.sql");
    let models = crate::common::repo().join("models");
    let server = Server::start_over(super::harness::options(), &models, &sql).await;
    let mut client = server.client().await;
    let query_sql = "SELECT count(*) AS n, count(vime) AS embedded, sum(vime[1]) AS s FROM adult_vime";
    let remote = query(&mut client, query_sql).await;
    let ctx = crate::common::context(&models);
    super::harness::run_script(&ctx, &sql).await;
    let local = crate::common::run(&ctx, query_sql).await;
    assert_eq!(remote, local[0]);
    assert_eq!(
        remote.column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0),
        32561
    );
    server.stop().await;
}
