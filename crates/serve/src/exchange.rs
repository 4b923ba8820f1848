//! `DoExchange` enrichment: the client's first message holds a descriptor with SQL over
//! the table `input` and the schema of its batches; the batches that follow are the
//! query's input and its output batches go back as they are produced, in order. Pulling
//! the input only as fast as the output is consumed gives back-pressure.
//!
//! A query that treats each row on its own (projections and filters over `input`: the
//! enrichment case) runs on each input batch separately, several batches at once on
//! different threads, their outputs handed on in input order ([`per_batch`]). Any other
//! query runs as one streaming plan over the unbounded table `input`
//! ([`tabssl_stream::execute_stream`]), one batch at a time.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use arrow_flight::error::FlightError;
use arrow_flight::sql::{Any, Command};
use arrow_flight::{FlightData, FlightDescriptor, flight_descriptor::DescriptorType};
use datafusion::catalog::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message as _;
use tonic::Status;

use super::guard::input_error;
pub use tabssl_stream::per_batch_session;
use tabssl_stream::{PerBatchPlan, is_row_local, run_in_order};

/// The SQL a `DoExchange` descriptor holds: a command that is UTF-8 SQL text, or a
/// Flight SQL `CommandStatementQuery`.
///
/// # Errors
/// `INVALID_ARGUMENT` for a missing descriptor, a path descriptor or bytes that are not SQL.
pub fn sql_of(descriptor: Option<&FlightDescriptor>) -> std::result::Result<String, Status> {
    let expected = "the first DoExchange message must carry a command descriptor holding SQL over the table `input` \
                    (e.g. SELECT *, embed('model', ...) AS e FROM input)";
    let Some(descriptor) = descriptor else {
        return Err(Status::invalid_argument(format!("{expected}; it has no descriptor")));
    };
    if descriptor.r#type != DescriptorType::Cmd as i32 {
        return Err(Status::invalid_argument(format!(
            "{expected}; it has a path descriptor"
        )));
    }
    if let Ok(any) = Any::decode(descriptor.cmd.clone())
        && let Ok(Command::CommandStatementQuery(query)) = Command::try_from(any)
    {
        return Ok(query.query);
    }
    String::from_utf8(descriptor.cmd.to_vec())
        .map_err(|_| Status::invalid_argument(format!("{expected}; its command is not UTF-8 text")))
}

/// The client's batches as a record batch stream with the schema of its first schema
/// message; a later schema that differs is an error, not a silent change of columns.
///
/// # Errors
/// `INVALID_ARGUMENT` when the stream ends or fails before a schema arrives.
pub async fn input_of<S>(data: S) -> std::result::Result<SendableRecordBatchStream, Status>
where
    S: Stream<Item = std::result::Result<FlightData, Status>> + Send + 'static,
{
    // Arrow C++ clients (pyarrow) send the descriptor alone first, with no IPC message.
    let messages = data.filter(|item| {
        let empty = matches!(item, Ok(d) if d.data_header.is_empty() && d.data_body.is_empty());
        std::future::ready(!empty)
    });
    let mut decoder = FlightDataDecoder::new(messages.map(|item| item.map_err(FlightError::from)));
    let schema: SchemaRef = loop {
        match decoder.next().await {
            Some(Ok(decoded)) => match decoded.payload {
                DecodedPayload::Schema(schema) => break schema,
                DecodedPayload::None => {}
                DecodedPayload::RecordBatch(_) => {
                    return Err(Status::invalid_argument(
                        "DoExchange: a record batch came before the schema",
                    ));
                }
            },
            Some(Err(error)) => return Err(input_error("DoExchange input", error)),
            None => {
                return Err(Status::invalid_argument(
                    "DoExchange: the stream ended before the schema of the input batches",
                ));
            }
        }
    };
    let declared = schema.clone();
    let batches = decoder.filter_map(move |item| {
        let result = match item {
            Ok(decoded) => match decoded.payload {
                DecodedPayload::RecordBatch(batch) => Some(Ok(batch)),
                DecodedPayload::None => None,
                DecodedPayload::Schema(schema) if schema.fields() == declared.fields() => None,
                DecodedPayload::Schema(schema) => Some(Err(client_error(format!(
                    "DoExchange: the input changed schema mid-stream: declared {:?}, then {:?}",
                    declared.fields(),
                    schema.fields()
                )))),
            },
            Err(error) => Some(Err(DataFusionError::External(Box::new(input_error(
                "DoExchange input",
                error,
            ))))),
        };
        std::future::ready(result)
    });
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
}

/// A client's mistake in the input stream, carried through DataFusion as the status the
/// client gets.
fn client_error(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(Status::invalid_argument(message)))
}

/// The logical plan of `sql` (one query, already checked) when it treats each row of
/// `input` on its own: projections, filters and aliases over `input`, no subquery. `ctx`
/// gets `input` as an empty table of `schema` to plan against.
///
/// # Errors
/// When the SQL does not plan.
pub async fn row_local_plan(ctx: &SessionContext, sql: &str, schema: SchemaRef) -> Result<Option<LogicalPlan>> {
    let input = tabssl_stream::INPUT_TABLE;
    ctx.deregister_table(input)?;
    ctx.register_table(input, Arc::new(MemTable::try_new(schema, vec![Vec::new()])?))?;
    let Some(statement) = DFParser::parse_sql(sql)?.pop_front() else {
        return Ok(None);
    };
    let plan = ctx.state().statement_to_plan(statement).await?;
    Ok(is_row_local(&plan).then_some(plan))
}

/// Runs a row-local `plan` on each batch of `input` separately, `in_flight` batches at
/// once on the runtime's threads, and yields their outputs in input order. At most
/// `in_flight` batches are read ahead of the output. Plan in a session set up by
/// [`per_batch_session`].
///
/// # Errors
/// When the plan does not plan physically.
pub async fn per_batch(
    state: SessionState,
    plan: LogicalPlan,
    input: SendableRecordBatchStream,
    in_flight: usize,
) -> Result<SendableRecordBatchStream> {
    let plan = PerBatchPlan::new(&state, plan, input.schema()).await?;
    let schema = plan.schema();
    let outputs = run_in_order(plan, input.map_ok(|batch| (batch, ())), in_flight)
        .map_ok(|(batches, ())| futures::stream::iter(batches.into_iter().map(Ok)))
        .try_flatten();
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, outputs)))
}
