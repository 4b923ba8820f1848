//! Catalog browsing (`GetCatalogs`, `GetDbSchemas`, `GetTables`, `GetTableTypes`) over a
//! client session: the operator's tables and views, and the client's ingested tables as
//! `LOCAL TEMPORARY`. Filtering by the client's patterns is arrow-flight's.

use arrow::array::RecordBatch;
use arrow_flight::sql::{CommandGetCatalogs, CommandGetDbSchemas, CommandGetTableTypes, CommandGetTables};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};

use super::session::ClientSession;

/// The table types this server reports.
const TABLE_TYPES: [&str; 3] = ["TABLE", "VIEW", "LOCAL TEMPORARY"];

fn arrow_error(error: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!("building a catalog answer: {error}"))
}

/// The session's catalogs, sorted.
pub fn catalogs(session: &ClientSession, query: CommandGetCatalogs) -> Result<RecordBatch> {
    let mut builder = query.into_builder();
    let mut names = session.context().catalog_names();
    names.sort();
    for name in names {
        builder.append(name);
    }
    builder.build().map_err(arrow_error)
}

/// The session's schemas matching the client's filters.
pub fn schemas(session: &ClientSession, query: CommandGetDbSchemas) -> Result<RecordBatch> {
    let mut builder = query.into_builder();
    let ctx = session.context();
    for catalog_name in sorted(ctx.catalog_names()) {
        if let Some(catalog) = ctx.catalog(&catalog_name) {
            for schema_name in sorted(catalog.schema_names()) {
                builder.append(&catalog_name, schema_name);
            }
        }
    }
    builder.build().map_err(arrow_error)
}

/// The session's tables matching the client's filters, with their Arrow schemas when
/// asked.
pub async fn tables(session: &ClientSession, query: CommandGetTables) -> Result<RecordBatch> {
    let mut builder = query.into_builder();
    let ctx = session.context();
    for catalog_name in sorted(ctx.catalog_names()) {
        let Some(catalog) = ctx.catalog(&catalog_name) else {
            continue;
        };
        for schema_name in sorted(catalog.schema_names()) {
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            for table_name in sorted(schema.table_names()) {
                let Some(table) = schema.table(&table_name).await? else {
                    continue;
                };
                let table_type = if session.is_ingested(&table_name) {
                    TABLE_TYPES[2]
                } else if table.table_type() == TableType::View {
                    TABLE_TYPES[1]
                } else {
                    TABLE_TYPES[0]
                };
                builder
                    .append(&catalog_name, &schema_name, &table_name, table_type, &table.schema())
                    .map_err(arrow_error)?;
            }
        }
    }
    builder.build().map_err(arrow_error)
}

/// The table types this server reports.
pub fn table_types(query: CommandGetTableTypes) -> Result<RecordBatch> {
    let mut builder = query.into_builder();
    for table_type in TABLE_TYPES {
        builder.append(table_type);
    }
    builder.build().map_err(arrow_error)
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}
