//! Client sessions: one per connection, derived from the operator's session.
//!
//! A client session sees the operator's tables (registered by the start-up SQL) and the
//! tables it ingested itself; its `corrupt_swap` reads marginal files only under the data
//! roots. Ingested tables live in the session's own copy of the catalog, so no client sees
//! another's, and they are dropped when the connection closes. Each query runs in a
//! context derived from the session with its own memory pool.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemTable, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider, SchemaProvider,
};
use datafusion::common::TableReference;
use datafusion::error::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionContext;

use super::Limits;
use tabssl_functions::file_access::FileAccess;

/// The sessions of open connections, by peer address.
#[derive(Debug)]
pub struct Sessions {
    /// The operator's session, with clients' `corrupt_swap` confined.
    client_base: SessionState,
    open: Mutex<HashMap<SocketAddr, Arc<ClientSession>>>,
}

impl Sessions {
    /// Sessions derived from `base`, whose clients read files as `access` allows.
    pub fn new(base: &SessionContext, access: FileAccess) -> Result<Self> {
        let mut state = base.state();
        state.register_udf(tabssl_functions::corrupt::confined_swap_udf(access))?;
        Ok(Self {
            client_base: state,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The session of the connection from `peer` (a new one for its first call; a
    /// one-call session when the peer is unknown).
    pub async fn get(&self, peer: Option<SocketAddr>) -> Result<Arc<ClientSession>> {
        let Some(peer) = peer else {
            return Ok(Arc::new(ClientSession::new(&self.client_base).await?));
        };
        if let Some(session) = self.lock().get(&peer) {
            return Ok(Arc::clone(session));
        }
        let session = Arc::new(ClientSession::new(&self.client_base).await?);
        Ok(Arc::clone(self.lock().entry(peer).or_insert(session)))
    }

    /// Drops the session of a closed connection and its ingested tables.
    pub fn close(&self, peer: SocketAddr) {
        self.lock().remove(&peer);
    }

    /// How many connections hold a session.
    pub fn open_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<ClientSession>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One client's session: the operator's tables, the client's ingested tables.
pub struct ClientSession {
    ctx: SessionContext,
    ingested: Mutex<HashMap<String, Ingested>>,
}

/// An ingested table's batches.
#[derive(Debug, Clone)]
struct Ingested {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl Ingested {
    fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// What `ingest` does when the table exists or not (Flight SQL's table definition options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestMode {
    /// Create; fail if it exists.
    Create,
    /// Append; fail if it does not exist.
    Append,
    /// Create or replace.
    Replace,
    /// Create or append.
    CreateAppend,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("session", &self.ctx.session_id())
            .finish_non_exhaustive()
    }
}

impl ClientSession {
    async fn new(base: &SessionState) -> Result<Self> {
        let catalogs = fork_catalogs(base).await?;
        let state = SessionStateBuilder::new_from_existing(base.clone())
            .with_catalog_list(catalogs)
            .build();
        Ok(Self {
            ctx: SessionContext::new_with_state(state),
            ingested: Mutex::new(HashMap::new()),
        })
    }

    /// The session's context (for planning and catalog browsing).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// A context for one query: the session's tables and settings, and a memory pool of
    /// its own of `limits.query_memory_bytes`.
    pub fn query_context(&self, limits: &Limits) -> Result<SessionContext> {
        let state = self.ctx.state();
        let runtime = RuntimeEnvBuilder::from_runtime_env(state.runtime_env())
            .with_memory_limit(limits.query_memory_bytes, 1.0)
            .build_arc()?;
        Ok(SessionContext::new_with_state(
            SessionStateBuilder::new_from_existing(state)
                .with_runtime_env(runtime)
                .build(),
        ))
    }

    /// A query context whose catalog is a copy of the session's, so the call can register
    /// tables of its own (the stream `input` of an exchange) without others seeing them.
    pub async fn private_query_context(&self, limits: &Limits) -> Result<SessionStateBuilder> {
        let state = self.query_context(limits)?.state();
        let catalogs = fork_catalogs(&state).await?;
        Ok(SessionStateBuilder::new_from_existing(state).with_catalog_list(catalogs))
    }

    /// True when `name` is a table the client ingested.
    pub fn is_ingested(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }

    /// Rows held in the session's ingested tables.
    pub fn ingested_rows(&self) -> usize {
        self.lock().values().map(Ingested::rows).sum()
    }

    /// Stores `batches` as table `name` of the session.
    ///
    /// # Errors
    /// A `Plan` error when the mode refuses (exists / does not exist / schema differs), or
    /// the name is one of the operator's tables.
    pub fn ingest(&self, name: &str, mode: IngestMode, schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<()> {
        let mut ingested = self.lock();
        let exists = ingested.contains_key(name);
        if !exists && self.ctx.table_exist(TableReference::bare(name))? {
            return Err(datafusion::error::DataFusionError::Plan(format!(
                "table {name:?} is one of the server's tables; ingest into another name"
            )));
        }
        let table = match (mode, ingested.get(name)) {
            (IngestMode::Create, Some(_)) => {
                return Err(datafusion::error::DataFusionError::Plan(format!(
                    "table {name:?} already exists in this session (ingest with mode append or replace)"
                )));
            }
            (IngestMode::Append, None) => {
                return Err(datafusion::error::DataFusionError::Plan(format!(
                    "table {name:?} does not exist in this session (ingest with mode create to make it)"
                )));
            }
            (IngestMode::Append | IngestMode::CreateAppend, Some(existing)) => {
                if existing.schema.fields() != schema.fields() {
                    return Err(datafusion::error::DataFusionError::Plan(format!(
                        "cannot append to {name:?}: its schema is {:?}, the new rows have {:?}",
                        existing.schema, schema
                    )));
                }
                let mut all = existing.batches.clone();
                all.extend(batches);
                Ingested {
                    schema: Arc::clone(&existing.schema),
                    batches: all,
                }
            }
            _ => Ingested { schema, batches },
        };
        let provider = MemTable::try_new(Arc::clone(&table.schema), vec![table.batches.clone()])?;
        self.ctx.deregister_table(TableReference::bare(name))?;
        self.ctx
            .register_table(TableReference::bare(name), Arc::new(provider))?;
        ingested.insert(name.to_string(), table);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Ingested>> {
        self.ingested.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A copy of a session's catalogs: new catalog and schema objects holding the same
/// tables, so tables registered in the copy stay there.
async fn fork_catalogs(state: &SessionState) -> Result<Arc<dyn CatalogProviderList>> {
    let list = MemoryCatalogProviderList::new();
    let source = state.catalog_list();
    for catalog_name in source.catalog_names() {
        let Some(catalog) = source.catalog(&catalog_name) else {
            continue;
        };
        let copy = MemoryCatalogProvider::new();
        for schema_name in catalog.schema_names() {
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            let schema_copy = MemorySchemaProvider::new();
            for table_name in schema.table_names() {
                if let Some(table) = schema.table(&table_name).await? {
                    schema_copy.register_table(table_name, table)?;
                }
            }
            copy.register_schema(&schema_name, Arc::new(schema_copy))?;
        }
        list.register_catalog(catalog_name, Arc::new(copy));
    }
    Ok(Arc::new(list))
}
