//! The Flight SQL service: plans and runs clients' SQL in sessions derived from one base
//! session (its tables, tabssl functions and options), streaming results as Arrow batches.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::FlightSqlService;
use arrow_flight::sql::{
    Any, CommandGetCatalogs, CommandGetSqlInfo, CommandStatementQuery, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, Ticket};
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::{Stream, TryStreamExt};
use prost::Message as _;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use super::auth::Tokens;

type HandshakeStream = Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>;
type DoGetStream = <TabsslFlightSql as FlightService>::DoGetStream;

/// tabssl's Flight SQL service.
#[derive(Clone)]
pub struct TabsslFlightSql {
    base: SessionContext,
    tokens: Tokens,
    info: Arc<SqlInfoData>,
}

impl std::fmt::Debug for TabsslFlightSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TabsslFlightSql")
            .field("session", &self.base.session_id())
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl TabsslFlightSql {
    /// A service over `base` (a session with tabssl registered and the tables clients may
    /// query), accepting `tokens`.
    ///
    /// # Errors
    /// When the server's SQL info cannot be built (a bug).
    pub fn new(base: SessionContext, tokens: Tokens) -> crate::Result<Self> {
        let mut info = SqlInfoDataBuilder::new();
        info.append(SqlInfo::FlightSqlServerName, "tabssl");
        info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        // The Arrow IPC format version (Schema.fbs MetadataVersion V5).
        info.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
        info.append(SqlInfo::FlightSqlServerReadOnly, true);
        let info = info
            .build()
            .map_err(|e| crate::Error::Internal(format!("the server's SQL info: {e}")))?;
        Ok(Self {
            base,
            tokens,
            info: Arc::new(info),
        })
    }

    /// A fresh session over the base's tables, functions and options: a client's `SET`
    /// stays in its call.
    fn session(&self) -> SessionContext {
        SessionContext::new_with_state(self.base.state())
    }

    /// Plans a client's statement: queries and `SET` only (no DDL, no DML: clients get
    /// read access to the tables registered at start).
    async fn plan(&self, sql: &str) -> Result<DataFrame, Status> {
        let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false);
        self.session().sql_with_options(sql, options).await.map_err(status_of)
    }
}

/// A DataFusion error as a gRPC status: what the client got wrong is `INVALID_ARGUMENT`,
/// the rest `INTERNAL`; the message is tabssl's.
fn status_of(error: DataFusionError) -> Status {
    let message = error.to_string();
    match error.find_root() {
        DataFusionError::Plan(_)
        | DataFusionError::SQL(..)
        | DataFusionError::SchemaError(..)
        | DataFusionError::Configuration(_)
        | DataFusionError::NotImplemented(_) => Status::invalid_argument(message),
        _ => Status::internal(message),
    }
}

/// A ticket for a command, as the Flight SQL convention encodes it (`Any`).
fn ticket_of(message: &Any) -> Ticket {
    Ticket {
        ticket: message.encode_to_vec().into(),
    }
}

/// The `FlightInfo` of a metadata command: its result schema and one endpoint whose ticket
/// is the command itself.
fn info_of(schema: &Schema, command: &Any, descriptor: FlightDescriptor) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(e.to_string()))?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket_of(command)))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// A metadata command's one result batch as Flight data.
fn one_batch(schema: SchemaRef, batch: Result<RecordBatch, FlightError>) -> Result<Response<DoGetStream>, Status> {
    let batch = batch.map_err(|e| Status::internal(e.to_string()))?;
    let data = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async { Ok(batch) }))
        .map_err(Status::from);
    Ok(Response::new(Box::pin(data)))
}

/// Streams a query's batches as Flight data.
async fn stream_of(df: DataFrame) -> Result<Response<DoGetStream>, Status> {
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.execute_stream().await.map_err(status_of)?;
    let data = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(batches.map_err(|e| FlightError::ExternalError(Box::new(e))))
        .map_err(Status::from);
    Ok(Response::new(Box::pin(data)))
}

#[tonic::async_trait]
impl FlightSqlService for TabsslFlightSql {
    type FlightService = Self;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>, Status> {
        let token = self.tokens.exchange(request.metadata())?;
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
        self.tokens.check(request.metadata())?;
        let df = self.plan(&query.query).await?;
        let ticket = TicketStatementQuery {
            statement_handle: query.query.into_bytes().into(),
        };
        let info = FlightInfo::new()
            .try_with_schema(df.schema().as_arrow())
            .map_err(|e| Status::internal(e.to_string()))?
            .with_endpoint(FlightEndpoint::new().with_ticket(ticket_of(&ticket.as_any())))
            .with_descriptor(request.into_inner())
            .with_ordered(true);
        Ok(Response::new(info))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.tokens.check(request.metadata())?;
        let sql = std::str::from_utf8(&ticket.statement_handle)
            .map_err(|_| Status::invalid_argument("the statement handle is not UTF-8 SQL text"))?;
        stream_of(self.plan(sql).await?).await
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.tokens.check(request.metadata())?;
        let schema = query.clone().into_builder(&self.info).schema();
        info_of(&schema, &query.as_any(), request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.tokens.check(request.metadata())?;
        let builder = query.into_builder(&self.info);
        one_batch(builder.schema(), builder.build())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.tokens.check(request.metadata())?;
        let schema = query.into_builder().schema();
        info_of(&schema, &query.as_any(), request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.tokens.check(request.metadata())?;
        let mut builder = query.into_builder();
        let mut names = self.base.catalog_names();
        names.sort();
        for name in names {
            builder.append(name);
        }
        one_batch(builder.schema(), builder.build())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// Serves `service` on `listener` until `shutdown` completes; running calls finish first.
///
/// # Errors
/// When the transport fails.
pub async fn serve(
    service: TabsslFlightSql,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> crate::Result<()> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(arrow_flight::flight_service_server::FlightServiceServer::new(service))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| crate::Error::Internal(format!("the Flight SQL server failed: {e}")))
}
