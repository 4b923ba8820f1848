//! A Rust client of `tabssl serve`: uploads entities, gets their embeddings back, then
//! enriches a stream of batches over `DoExchange`.
//!
//! ```sh
//! echo my-secret-token > tokens.txt
//! cargo build --all-targets
//! target/debug/tabssl serve --models models --sql-file sql/serve/adult.sql --token-file tokens.txt &
//! TABSSL_TOKEN=my-secret-token target/debug/examples/flight_sql_client http://127.0.0.1:50051
//! ```

// An example shows its results on stdout.
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::pretty::print_batches;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandStatementIngest, TableDefinitionOptions, TableExistsOption, TableNotExistOption};
use arrow_flight::{FlightClient, FlightDescriptor};
use futures::TryStreamExt;
use tonic::transport::Endpoint;

/// The embedding of the shipped VIME encoder over the Adult columns.
const VIME: &str = "embed('adult_vime', age, workclass, fnlwgt, education, \"education-num\", \
                    \"marital-status\", occupation, relationship, race, sex, \"capital-gain\", \
                    \"capital-loss\", \"hours-per-week\", \"native-country\")";

/// Two entities with the Adult columns.
fn entities() -> Result<RecordBatch, arrow::error::ArrowError> {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let number = |name: &str| Field::new(name, DataType::Float64, true);
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        number("age"),
        text("workclass"),
        number("fnlwgt"),
        text("education"),
        number("education-num"),
        text("marital-status"),
        text("occupation"),
        text("relationship"),
        text("race"),
        text("sex"),
        number("capital-gain"),
        number("capital-loss"),
        number("hours-per-week"),
        text("native-country"),
    ]);
    let strings = |a: &str, b: &str| Arc::new(StringArray::from(vec![a, b]));
    let numbers = |a: f64, b: f64| Arc::new(Float64Array::from(vec![a, b]));
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            numbers(39.0, 50.0),
            strings("State-gov", "Self-emp-not-inc"),
            numbers(77516.0, 83311.0),
            strings("Bachelors", "Bachelors"),
            numbers(13.0, 13.0),
            strings("Never-married", "Married-civ-spouse"),
            strings("Adm-clerical", "Exec-managerial"),
            strings("Not-in-family", "Husband"),
            strings("White", "White"),
            strings("Male", "Male"),
            numbers(2174.0, 0.0),
            numbers(0.0, 0.0),
            numbers(40.0, 13.0),
            strings("United-States", "United-States"),
        ],
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:50051".to_string());
    let token = std::env::var("TABSSL_TOKEN")?;
    let channel = Endpoint::from_shared(url)?.connect().await?;

    // Flight SQL: upload the entities into a session table, then query it.
    let mut sql = FlightSqlServiceClient::new(channel.clone());
    sql.set_token(token.clone());
    let ingest = CommandStatementIngest {
        table_definition_options: Some(TableDefinitionOptions {
            if_not_exist: TableNotExistOption::Create.into(),
            if_exists: TableExistsOption::Replace.into(),
        }),
        table: "entities".to_string(),
        ..CommandStatementIngest::default()
    };
    let rows = sql
        .execute_ingest(ingest, futures::stream::iter([Ok(entities()?)]))
        .await?;
    println!("ingested {rows} rows");
    let info = sql
        .execute(format!("SELECT id, {VIME} AS vime FROM entities ORDER BY id"), None)
        .await?;
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or("an endpoint without a ticket")?;
        let batches: Vec<RecordBatch> = sql.do_get(ticket).await?.try_collect().await?;
        print_batches(&batches)?;
    }

    // DoExchange: stream batches in, get the enriched batches back as they are computed.
    let mut flight = FlightClient::new(channel);
    flight.add_header("authorization", &format!("Bearer {token}"))?;
    let descriptor = FlightDescriptor::new_cmd(format!("SELECT id, {VIME} AS vime FROM input"));
    let input = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(descriptor))
        .build(futures::stream::iter([Ok(entities()?), Ok(entities()?)]));
    let enriched: Vec<RecordBatch> = flight.do_exchange(input).await?.try_collect().await?;
    println!("DoExchange: {} batches", enriched.len());
    print_batches(&enriched)?;
    Ok(())
}
