//! Prepared statements without server state: the handle holds the SQL and, once bound,
//! the parameter rows (Arrow IPC), so any connection can execute it and closing frees
//! nothing. A query runs once per parameter row, the results in row order.

use std::collections::HashMap;
use std::io::Cursor;
use std::ops::ControlFlow;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::{Expr, Value, visit_expressions_mut};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use prost::bytes::Bytes;
use serde::{Deserialize, Serialize};
use tonic::Status;

/// A prepared statement: SQL and the bound parameter rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The statement.
    pub sql: String,
    /// The bound parameters, one execution per row.
    pub parameters: Option<RecordBatch>,
}

#[derive(Serialize, Deserialize)]
struct Handle {
    sql: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parameters: Option<String>,
}

fn bad_handle(what: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!(
        "the prepared statement handle is not one this server issued: {what}"
    ))
}

impl Prepared {
    /// A statement with no parameters bound yet.
    pub fn new(sql: String) -> Self {
        Self { sql, parameters: None }
    }

    /// The opaque handle clients hold.
    ///
    /// # Errors
    /// `INTERNAL` when the parameters cannot be written as Arrow IPC.
    pub fn encode(&self) -> Result<Bytes, Status> {
        let parameters = match &self.parameters {
            None => None,
            Some(batch) => {
                let mut bytes = Vec::new();
                let mut writer = StreamWriter::try_new(&mut bytes, batch.schema_ref())
                    .map_err(|e| Status::internal(format!("encoding parameters: {e}")))?;
                writer
                    .write(batch)
                    .and_then(|()| writer.finish())
                    .map_err(|e| Status::internal(format!("encoding parameters: {e}")))?;
                drop(writer);
                Some(STANDARD.encode(bytes))
            }
        };
        let handle = Handle {
            sql: self.sql.clone(),
            parameters,
        };
        serde_json::to_vec(&handle)
            .map(Bytes::from)
            .map_err(|e| Status::internal(format!("encoding a prepared statement handle: {e}")))
    }

    /// The statement a handle holds.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for bytes this server did not issue.
    pub fn decode(handle: &[u8]) -> Result<Self, Status> {
        let handle: Handle = serde_json::from_slice(handle).map_err(bad_handle)?;
        let parameters = match handle.parameters {
            None => None,
            Some(text) => {
                let bytes = STANDARD.decode(text).map_err(bad_handle)?;
                let reader = StreamReader::try_new(Cursor::new(bytes), None).map_err(bad_handle)?;
                let schema = reader.schema();
                let batches = reader.collect::<Result<Vec<_>, _>>().map_err(bad_handle)?;
                Some(concat_batches(&schema, &batches).map_err(bad_handle)?)
            }
        };
        Ok(Self {
            sql: handle.sql,
            parameters,
        })
    }

    /// The parameter values of each execution: one per bound row; none bound, one
    /// execution without parameters.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a value DataFusion cannot hold as a scalar.
    pub fn executions(&self) -> Result<Vec<Option<ParamValues>>, Status> {
        let Some(batch) = &self.parameters else {
            return Ok(vec![None]);
        };
        (0..batch.num_rows())
            .map(|row| {
                batch
                    .columns()
                    .iter()
                    .map(|column| ScalarValue::try_from_array(column, row))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|values| Some(ParamValues::List(values.into_iter().map(Into::into).collect())))
                    .map_err(|e| Status::invalid_argument(format!("parameter row {row}: {e}")))
            })
            .collect()
    }
}

/// `sql` with JDBC/ODBC-style `?` placeholders numbered `$1`, `$2`, ... in order of
/// appearance (DataFusion plans numbered ones only); SQL without them comes back as it is.
///
/// # Errors
/// `INVALID_ARGUMENT` for SQL that does not parse.
pub fn number_placeholders(sql: &str) -> Result<String, Status> {
    if !sql.contains('?') {
        return Ok(sql.to_string());
    }
    let mut statements =
        Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let mut numbered = 0;
    let _ = visit_expressions_mut(&mut statements, |expr| {
        if let Expr::Value(value) = expr
            && let Value::Placeholder(name) = &mut value.value
            && name == "?"
        {
            numbered += 1;
            *name = format!("${numbered}");
        }
        ControlFlow::<()>::Continue(())
    });
    if numbered == 0 {
        return Ok(sql.to_string());
    }
    Ok(statements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; "))
}

/// The parameters a plan takes, `$1`, `$2`, ... in order; a type DataFusion cannot infer
/// is `Null` (the client's bound type is used).
///
/// # Errors
/// When DataFusion cannot list the placeholders.
pub fn parameter_schema(plan: &LogicalPlan) -> datafusion::error::Result<SchemaRef> {
    let types: HashMap<String, Option<DataType>> = plan.get_parameter_types()?;
    let mut names: Vec<&String> = types.keys().collect();
    names.sort_by_key(|name| {
        (
            name.trim_start_matches('$').parse::<usize>().unwrap_or(usize::MAX),
            name.to_string(),
        )
    });
    let fields: Vec<Field> = names
        .into_iter()
        .map(|name| Field::new(name, types[name].clone().unwrap_or(DataType::Null), true))
        .collect();
    Ok(std::sync::Arc::new(Schema::new(fields)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn question_marks_become_numbered_placeholders() {
        let numbered = number_placeholders("SELECT a FROM t WHERE b = ? AND c > ? AND d = '?'").expect("parses");
        assert_eq!(numbered, "SELECT a FROM t WHERE b = $1 AND c > $2 AND d = '?'");
        assert_eq!(number_placeholders("SELECT '?'").expect("parses"), "SELECT '?'");
        assert_eq!(number_placeholders("SELECT $1").expect("parses"), "SELECT $1");
    }

    #[test]
    fn a_handle_round_trips_with_its_parameters() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("$1", DataType::Int64, true),
            Field::new("$2", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(StringArray::from(vec!["a", "b"])),
            ],
        )
        .expect("batch");
        let prepared = Prepared {
            sql: "SELECT $1, $2".to_string(),
            parameters: Some(batch),
        };
        let decoded = Prepared::decode(&prepared.encode().expect("encode")).expect("decode");
        assert_eq!(decoded, prepared);
        let executions = decoded.executions().expect("values");
        assert_eq!(executions.len(), 2);
        assert!(Prepared::decode(b"garbage").is_err());
        let unbound = Prepared::new("SELECT 1".into()).executions().expect("none");
        assert!(unbound.len() == 1 && unbound[0].is_none());
    }
}
