//! The Flight SQL service: authenticates each call, finds the caller's session, and runs
//! its SQL under the call limits, streaming results as Arrow batches.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult,
    Any, CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandPreparedStatementQuery, CommandStatementIngest, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TableExistsOption, TableNotExistOption,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use datafusion::common::ParamValues;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{DataFrame, SessionContext};
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::Statement;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message as _;
use tonic::metadata::MetadataValue;
use tonic::transport::{Identity, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

use super::guard::{Admission, CallLog, input_error, status_of};
use super::prepared::{Prepared, number_placeholders, parameter_schema};
use super::session::{ClientSession, IngestMode, Sessions};
use super::{ServeOptions, catalog, exchange, listener};
use tabssl_functions::setting::Setting;

type HandshakeStream = Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>;
type DoGetStream = <TabsslFlightSql as FlightService>::DoGetStream;
type DoExchangeStream = <TabsslFlightSql as FlightService>::DoExchangeStream;

/// DataFusion's batch size for tables joined to a `DoExchange` stream.
const EXCHANGE_BATCH_ROWS: usize = 8192;

/// Input batches a row-local exchange runs at once: one per core.
fn batches_in_flight() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// tabssl's Flight SQL service.
#[derive(Clone)]
pub struct TabsslFlightSql {
    options: Arc<ServeOptions>,
    sessions: Arc<Sessions>,
    admission: Arc<Admission>,
    info: Arc<SqlInfoData>,
}

impl std::fmt::Debug for TabsslFlightSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TabsslFlightSql")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl TabsslFlightSql {
    /// A service over `base` (a session with tabssl registered and the tables clients may
    /// query), run as `options` say.
    ///
    /// # Errors
    /// A zero limit, or a session that cannot be derived from `base`.
    pub fn new(base: &SessionContext, options: ServeOptions) -> tabssl_functions::Result<Self> {
        options.limits.check()?;
        let mut info = SqlInfoDataBuilder::new();
        info.append(SqlInfo::FlightSqlServerName, "tabssl");
        info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        // The Arrow IPC format version (Schema.fbs MetadataVersion V5).
        info.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
        info.append(SqlInfo::FlightSqlServerReadOnly, true);
        info.append(SqlInfo::FlightSqlServerSql, true);
        info.append(SqlInfo::FlightSqlServerSubstrait, false);
        info.append(SqlInfo::FlightSqlServerTransaction, 0_i32);
        info.append(SqlInfo::FlightSqlServerCancel, false);
        info.append(SqlInfo::FlightSqlServerBulkIngestion, true);
        info.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
        let info = info
            .build()
            .map_err(|e| tabssl_functions::Error::Internal(format!("the server's SQL info: {e}")))?;
        Ok(Self {
            sessions: Arc::new(Sessions::new(base, options.file_access.clone())?),
            admission: Arc::new(Admission::new(options.limits.clone())),
            options: Arc::new(options),
            info: Arc::new(info),
        })
    }

    /// Queries (and ingests, exchanges) running now.
    #[must_use]
    pub fn running_queries(&self) -> usize {
        self.admission.running()
    }

    /// Connections that hold a client session (they are dropped when a connection closes).
    #[must_use]
    pub fn open_sessions(&self) -> usize {
        self.sessions.open_count()
    }

    /// Authenticates a call and finds its session.
    async fn session<T>(&self, request: &Request<T>) -> Result<Arc<ClientSession>, Status> {
        self.options.tokens.check(request.metadata())?;
        self.sessions.get(request.remote_addr()).await.map_err(status_of)
    }

    /// Runs `sql` once per parameter set (in order) and streams the results. The first
    /// execution is planned now (its schema heads the answer), the others as the stream
    /// reaches them, under the call's deadline.
    async fn execute(
        &self,
        session: &ClientSession,
        sql: &str,
        executions: Vec<Option<ParamValues>>,
        mut log: CallLog,
    ) -> Result<Response<DoGetStream>, Status> {
        log.sql(sql);
        let mut executions = executions.into_iter();
        let planned = async {
            let ctx = session.query_context(self.admission.limits()).map_err(status_of)?;
            let parameters = executions
                .next()
                .ok_or_else(|| Status::invalid_argument("the bound parameters have no rows: nothing to execute"))?;
            let first = bind(plan(&ctx, sql).await?, parameters)?;
            Ok::<_, Status>((ctx, first))
        }
        .await;
        let (ctx, first) = match planned {
            Ok(planned) => planned,
            Err(status) => {
                log.outcome(status.code());
                return Err(status);
            }
        };
        let schema = Arc::new(first.schema().as_arrow().clone());
        let call = self.admission.admit(log).await?;
        let sql = sql.to_string();
        let rest = futures::stream::iter(executions).then(move |parameters| {
            let (ctx, sql) = (ctx.clone(), sql.clone());
            async move {
                let df = plan(&ctx, &sql).await.and_then(|df| bind(df, parameters));
                df.map_err(|status| DataFusionError::External(Box::new(status)))
            }
        });
        let batches = futures::stream::once(async { Ok(first) })
            .chain(rest)
            .and_then(DataFrame::execute_stream)
            .try_flatten();
        Ok(Response::new(self.encode(schema, call.guard(batches))))
    }

    /// Flight data of a stream of batches, in messages that fit the message limit.
    fn encode(
        &self,
        schema: SchemaRef,
        batches: impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static,
    ) -> DoGetStream {
        let target = (self.admission.limits().max_message_bytes / 2).min(2 << 20);
        Box::pin(
            FlightDataEncoderBuilder::new()
                .with_schema(schema)
                .with_max_flight_data_size(target)
                .build(batches)
                .map_err(Status::from),
        )
    }

    /// Reads a DoPut's batches, refusing more than `max_rows` rows in all.
    async fn read_put(
        request: Request<PeekableFlightDataStream>,
        max_rows: usize,
        what: &str,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), Status> {
        let mut stream = FlightRecordBatchStream::new_from_flight_data(request.into_inner().map_err(FlightError::from));
        let mut batches = Vec::new();
        let mut rows = 0usize;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| input_error(what, e))?;
            rows += batch.num_rows();
            if rows > max_rows {
                return Err(Status::resource_exhausted(format!(
                    "{what}: more than {max_rows} rows ({})",
                    Setting::MaxIngestRows
                )));
            }
            batches.push(batch);
        }
        let schema = stream
            .schema()
            .cloned()
            .ok_or_else(|| Status::invalid_argument(format!("{what}: the stream carried no schema")))?;
        Ok((schema, batches))
    }
}

/// The answer to updates (`executemany` included): clients query and ingest.
fn updates_unsupported() -> Status {
    Status::unimplemented(format!(
        "updates are not supported: clients of tabssl serve run queries (several parameter rows bound to one \
         query run it once per row) and ingest into session tables (CommandStatementIngest); DDL and DML are \
         the operator's ({})",
        Setting::SetupSql
    ))
}

/// Refuses anything but one query: DDL, DML, `COPY`, `SET` and the like are the
/// operator's (the server's start-up SQL).
fn check_client_sql(sql: &str) -> Result<(), Status> {
    let statements = DFParser::parse_sql(sql).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let is_query = |statement: &DFStatement| match statement {
        DFStatement::Statement(statement) => matches!(**statement, Statement::Query(_)),
        _ => false,
    };
    match statements.len() {
        1 => {
            let statement = &statements[0];
            let allowed = match statement {
                DFStatement::Explain(explain) => is_query(&explain.statement),
                other => is_query(other),
            };
            if allowed {
                Ok(())
            } else {
                Err(Status::permission_denied(format!(
                    "clients of tabssl serve run queries (SELECT, WITH, VALUES, EXPLAIN) over the server's tables and \
                     their own ingested tables; DDL, DML, COPY and SET are the operator's ({})",
                    Setting::SetupSql
                )))
            }
        }
        n => Err(Status::invalid_argument(format!("expected one SQL statement, got {n}"))),
    }
}

/// `df` with its placeholders bound to `parameters`, if any.
fn bind(df: DataFrame, parameters: Option<ParamValues>) -> Result<DataFrame, Status> {
    match parameters {
        Some(values) => df.with_param_values(values).map_err(status_of),
        None => Ok(df),
    }
}

/// Plans a client's query (after [`check_client_sql`]; DataFusion checks again).
async fn plan(ctx: &SessionContext, sql: &str) -> Result<DataFrame, Status> {
    check_client_sql(sql)?;
    let sql = number_placeholders(sql)?;
    let sql = sql.as_str();
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    ctx.sql_with_options(sql, options).await.map_err(status_of)
}

/// A ticket for a command, as the Flight SQL convention encodes it (`Any`).
fn ticket_of(message: &Any) -> Ticket {
    Ticket {
        ticket: message.encode_to_vec().into(),
    }
}

/// The `FlightInfo` of a command: its result schema and one endpoint whose ticket is
/// `command`.
fn info_of(schema: &Schema, command: &Any, descriptor: FlightDescriptor) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(e.to_string()))?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket_of(command)))
        .with_descriptor(descriptor)
        .with_ordered(true);
    Ok(Response::new(info))
}

/// A metadata command's one result batch as Flight data.
fn one_batch(batch: datafusion::error::Result<RecordBatch>) -> Result<Response<DoGetStream>, Status> {
    let batch = batch.map_err(status_of)?;
    let data = FlightDataEncoderBuilder::new()
        .with_schema(batch.schema())
        .build(futures::stream::once(async { Ok(batch) }))
        .map_err(Status::from);
    Ok(Response::new(Box::pin(data)))
}

/// A schema as the IPC message Flight SQL carries in prepared statement results.
fn schema_bytes(schema: &Schema) -> Result<prost::bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

/// What an ingest does when the table exists or not.
fn ingest_mode(command: &CommandStatementIngest) -> Result<IngestMode, Status> {
    let Some(options) = command.table_definition_options else {
        return Ok(IngestMode::Create);
    };
    let not_exist = TableNotExistOption::try_from(options.if_not_exist).unwrap_or(TableNotExistOption::Unspecified);
    let exists = TableExistsOption::try_from(options.if_exists).unwrap_or(TableExistsOption::Unspecified);
    match (not_exist, exists) {
        (
            TableNotExistOption::Create | TableNotExistOption::Unspecified,
            TableExistsOption::Fail | TableExistsOption::Unspecified,
        ) => Ok(IngestMode::Create),
        (TableNotExistOption::Fail, TableExistsOption::Append) => Ok(IngestMode::Append),
        (TableNotExistOption::Create | TableNotExistOption::Unspecified, TableExistsOption::Replace) => {
            Ok(IngestMode::Replace)
        }
        (TableNotExistOption::Create | TableNotExistOption::Unspecified, TableExistsOption::Append) => {
            Ok(IngestMode::CreateAppend)
        }
        (not_exist, exists) => Err(Status::invalid_argument(format!(
            "ingest: unsupported table definition options {} with {}",
            not_exist.as_str_name(),
            exists.as_str_name()
        ))),
    }
}

#[tonic::async_trait]
impl FlightSqlService for TabsslFlightSql {
    type FlightService = Self;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>, Status> {
        let token = self.options.tokens.exchange(request.metadata())?;
        let bearer: MetadataValue<_> = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::unauthenticated("missing or invalid credentials"))?;
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.into_bytes().into(),
        };
        let mut response: Response<HandshakeStream> = Response::new(Box::pin(futures::stream::iter([Ok(reply)])));
        response.metadata_mut().insert("authorization", bearer);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.session(&request).await?;
        let df = plan(session.context(), &query.query).await?;
        let ticket = TicketStatementQuery {
            statement_handle: query.query.into_bytes().into(),
        };
        info_of(df.schema().as_arrow(), &ticket.as_any(), request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.session(&request).await?;
        let log = CallLog::new("statement", request.remote_addr());
        let sql = std::str::from_utf8(&ticket.statement_handle)
            .map_err(|_| Status::invalid_argument("the statement handle is not UTF-8 SQL text"))?;
        self.execute(&session, sql, vec![None], log).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let session = self.session(&request).await?;
        let df = plan(session.context(), &query.query).await?;
        let parameters = parameter_schema(df.logical_plan()).map_err(status_of)?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: Prepared::new(query.query).encode()?,
            dataset_schema: schema_bytes(df.schema().as_arrow())?,
            parameter_schema: schema_bytes(&parameters)?,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.session(&request).await?;
        let prepared = Prepared::decode(&query.prepared_statement_handle)?;
        let max_rows = self.admission.limits().max_ingest_rows;
        let (schema, batches) = Self::read_put(request, max_rows, "binding parameters").await?;
        let parameters = arrow::compute::concat_batches(&schema, &batches)
            .map_err(|e| Status::invalid_argument(format!("binding parameters: {e}")))?;
        let bound = Prepared {
            parameters: Some(parameters),
            ..prepared
        };
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(bound.encode()?),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.session(&request).await?;
        let prepared = Prepared::decode(&query.prepared_statement_handle)?;
        let df = plan(session.context(), &prepared.sql).await?;
        let df = bind(df, prepared.executions()?.into_iter().next().flatten())?;
        info_of(df.schema().as_arrow(), &query.as_any(), request.into_inner())
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.session(&request).await?;
        let log = CallLog::new("prepared", request.remote_addr());
        let prepared = Prepared::decode(&query.prepared_statement_handle)?;
        self.execute(&session, &prepared.sql, prepared.executions()?, log).await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        self.options.tokens.check(request.metadata())?;
        // The handle holds the whole statement: there is nothing to free.
        Prepared::decode(&query.prepared_statement_handle).map(|_| ())
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = self.session(&request).await?;
        let mut log = CallLog::new("ingest", request.remote_addr());
        log.sql(&command.table);
        let ctx_options = session.context().state().config_options().catalog.clone();
        let other_place = command
            .catalog
            .as_ref()
            .filter(|c| **c != ctx_options.default_catalog)
            .or(command.schema.as_ref().filter(|s| **s != ctx_options.default_schema));
        if let Some(place) = other_place {
            return Err(Status::invalid_argument(format!(
                "ingest: tables are created in the session's default catalog and schema ({}.{}), not {place:?}",
                ctx_options.default_catalog, ctx_options.default_schema
            )));
        }
        if command.transaction_id.is_some() {
            return Err(Status::unimplemented("ingest: transactions are not supported"));
        }
        if command.table.is_empty() {
            return Err(Status::invalid_argument("ingest: the table name is empty"));
        }
        let mode = ingest_mode(&command)?;
        let call = self.admission.admit(log).await?;
        let limit = self.admission.limits().max_ingest_rows;
        let held = session.ingested_rows();
        let room = limit.saturating_sub(held);
        let what = format!(
            "ingest into {:?} (the session holds {held} of {limit} rows)",
            command.table
        );
        let result = Self::read_put(request, room, &what)
            .await
            .and_then(|(schema, batches)| {
                let rows = batches.iter().map(RecordBatch::num_rows).sum::<usize>();
                session
                    .ingest(&command.table, mode, schema, batches)
                    .map_err(status_of)?;
                Ok(rows)
            });
        let mut call = call;
        match result {
            Ok(rows) => {
                call.log.rows(rows);
                call.log.outcome(tonic::Code::Ok);
                i64::try_from(rows).map_err(|_| Status::internal("row count overflow"))
            }
            Err(status) => {
                call.log.outcome(status.code());
                Err(status)
            }
        }
    }

    async fn do_put_prepared_statement_update(
        &self,
        _query: arrow_flight::sql::CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.options.tokens.check(request.metadata())?;
        Err(updates_unsupported())
    }

    async fn do_put_statement_update(
        &self,
        _command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.options.tokens.check(request.metadata())?;
        Err(updates_unsupported())
    }

    async fn do_exchange_fallback(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<DoExchangeStream>, Status> {
        let session = self.session(&request).await?;
        let mut log = CallLog::new("exchange", request.remote_addr());
        let mut data = request.into_inner();
        let first = data
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("DoExchange: the client sent no message"))?;
        let sql = exchange::sql_of(first.flight_descriptor.as_ref())?;
        check_client_sql(&sql)?;
        log.sql(&sql);
        let input = exchange::input_of(futures::stream::once(async { Ok(first) }).chain(data)).await?;
        let limits = self.admission.limits();
        let in_flight = batches_in_flight();
        let per_batch = session.private_query_context(limits).await.map_err(status_of)?;
        let per_batch = SessionContext::new_with_state(
            exchange::per_batch_session(
                tabssl_stream::streaming_session(per_batch, EXCHANGE_BATCH_ROWS),
                in_flight,
            )
            .build(),
        );
        let call = self.admission.admit(log).await?;
        let output = match exchange::row_local_plan(&per_batch, &sql, input.schema())
            .await
            .map_err(status_of)?
        {
            Some(plan) => exchange::per_batch(per_batch.state(), plan, input, in_flight)
                .await
                .map_err(status_of)?,
            None => {
                // One streaming plan over the whole stream, the model on every core.
                let builder = session.private_query_context(limits).await.map_err(status_of)?;
                let ctx = SessionContext::new_with_state(
                    tabssl_stream::streaming_session(builder, EXCHANGE_BATCH_ROWS).build(),
                );
                tabssl_stream::execute_stream(&ctx, input, &sql)
                    .await
                    .map_err(status_of)?
            }
        };
        Ok(Response::new(self.encode(output.schema(), call.guard(output))))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.options.tokens.check(request.metadata())?;
        let schema = query.clone().into_builder(&self.info).schema();
        info_of(&schema, &query.as_any(), request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.options.tokens.check(request.metadata())?;
        one_batch(
            query
                .into_builder(&self.info)
                .build()
                .map_err(|e| DataFusionError::Execution(e.to_string())),
        )
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.options.tokens.check(request.metadata())?;
        let schema = query.into_builder().schema();
        info_of(&schema, &query.as_any(), request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.session(&request).await?;
        one_batch(catalog::catalogs(&session, query))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.options.tokens.check(request.metadata())?;
        let schema = query.clone().into_builder().schema();
        info_of(&schema, &query.as_any(), request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.session(&request).await?;
        one_batch(catalog::schemas(&session, query))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.options.tokens.check(request.metadata())?;
        let schema = query.clone().into_builder().schema();
        info_of(&schema, &query.as_any(), request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.session(&request).await?;
        one_batch(catalog::tables(&session, query).await)
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.options.tokens.check(request.metadata())?;
        let schema = query.into_builder().schema();
        info_of(&schema, &query.as_any(), request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.options.tokens.check(request.metadata())?;
        one_batch(catalog::table_types(query))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// Serves `service` on `listener` (with TLS when configured, and the gRPC health service)
/// until `shutdown` completes. Then it stops accepting connections, lets running calls
/// finish for up to the grace period, and cuts off the rest.
///
/// # Errors
/// A TLS identity that does not load, or a transport failure.
pub async fn serve(
    service: TabsslFlightSql,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> tabssl_functions::Result<()> {
    let options = Arc::clone(&service.options);
    let failed =
        |e: tonic::transport::Error| tabssl_functions::Error::Internal(format!("the Flight SQL server failed: {e}"));
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &options.tls {
        let identity = Identity::from_pem(&tls.certificate_pem, &tls.key_pem);
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(identity))
            .map_err(|e| tabssl_functions::Error::invalid(format!("the TLS certificate or key: {e}")))?;
    }
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<FlightServiceServer<TabsslFlightSql>>().await;
    let incoming = listener::incoming(
        listener,
        Arc::clone(&service.sessions),
        service.admission.in_flight(),
        &options.limits,
    );
    let flight = FlightServiceServer::new(service)
        .max_decoding_message_size(options.limits.max_message_bytes)
        .max_encoding_message_size(options.limits.max_message_bytes);
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        reporter.set_not_serving::<FlightServiceServer<TabsslFlightSql>>().await;
        let _ = stopping.send(());
    };
    let server = builder
        .add_service(health)
        .add_service(flight)
        .serve_with_incoming_shutdown(incoming, signal);
    let grace = options.grace;
    let cut_off = async move {
        if stopped.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result.map_err(failed),
        () = cut_off => {
            log::warn!(target: "tabssl::serve", "calls still running {grace:?} after the shutdown signal were cut off");
            Ok(())
        }
    }
}
