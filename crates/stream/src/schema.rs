//! The schema of a stream's records: read from a file, or inferred from the first records.
//!
//! A schema file is JSON — `{"fields": [{"name": "age", "type": "Int64", "nullable": true},
//! ...]}` or just the list — with Arrow type names (`Int64`, `Float64`, `Utf8`, `Boolean`,
//! `Timestamp(Millisecond, None)`, ...; `int`, `double`, `string` and the like work too),
//! or a Parquet or Arrow IPC file whose schema is taken.

use std::fs::File;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::error::{DataFusionError, Result};
use serde::Deserialize;

use super::InputFormat;
use super::source::Chunk;
use tabssl_functions::input::duplicate_name;
use tabssl_functions::setting::Setting;

#[derive(Deserialize)]
#[serde(untagged)]
enum SchemaFile {
    Object { fields: Vec<FieldSpec> },
    List(Vec<FieldSpec>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldSpec {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
    #[serde(default = "nullable_default")]
    nullable: bool,
}

fn nullable_default() -> bool {
    true
}

fn error(path: &Path, message: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Plan(format!("schema file {}: {message}", path.display()))
}

/// Reads the schema in `path`: a `.parquet`, `.arrow`/`.arrows`/`.ipc` file, or JSON.
///
/// # Errors
/// When the file cannot be read, is not valid JSON of the shape above, names a type Arrow
/// does not know, or repeats a field.
pub fn load_schema(path: &Path) -> Result<SchemaRef> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let file = File::open(path).map_err(|e| error(path, e))?;
    let schema = match extension.as_str() {
        "parquet" => datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| error(path, e))?
            .schema()
            .as_ref()
            .clone(),
        "arrow" | "arrows" | "ipc" | "feather" => match arrow::ipc::reader::FileReader::try_new(file, None) {
            Ok(reader) => reader.schema().as_ref().clone(),
            Err(_) => {
                let file = File::open(path).map_err(|e| error(path, e))?;
                arrow::ipc::reader::StreamReader::try_new(file, None)
                    .map_err(|e| error(path, format!("neither an Arrow IPC file nor stream: {e}")))?
                    .schema()
                    .as_ref()
                    .clone()
            }
        },
        _ => {
            let spec: SchemaFile = serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| {
                error(
                    path,
                    format!("{e}; expected {{\"fields\": [{{\"name\": \"age\", \"type\": \"Int64\", \"nullable\": true}}, ...]}}"),
                )
            })?;
            let specs = match spec {
                SchemaFile::Object { fields } | SchemaFile::List(fields) => fields,
            };
            let fields = specs
                .into_iter()
                .map(|f| {
                    Ok(Field::new(
                        &f.name,
                        parse_type(&f.data_type).map_err(|e| error(path, e))?,
                        f.nullable,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            Schema::new(fields)
        }
    };
    check_schema(&schema).map_err(|e| error(path, e))?;
    Ok(Arc::new(schema))
}

/// An Arrow type from its name, with the common SQL and lowercase spellings.
///
/// # Errors
/// When the name is not a type.
pub fn parse_type(name: &str) -> tabssl_functions::Result<DataType> {
    let alias = match name.to_ascii_lowercase().as_str() {
        "int" | "integer" | "int64" | "bigint" | "long" => Some(DataType::Int64),
        "int32" => Some(DataType::Int32),
        "float" | "float32" | "real" => Some(DataType::Float32),
        "double" | "float64" => Some(DataType::Float64),
        "string" | "str" | "text" | "utf8" | "varchar" => Some(DataType::Utf8),
        "bool" | "boolean" => Some(DataType::Boolean),
        "date" | "date32" => Some(DataType::Date32),
        _ => None,
    };
    match alias {
        Some(data_type) => Ok(data_type),
        None => DataType::from_str(name).map_err(|_| {
            tabssl_functions::Error::Invalid(format!("unknown type {name:?}: expected an Arrow type such as Int64, Float64, Utf8, Boolean or Timestamp(Millisecond, None)"))
        }),
    }
}

/// Same field names and types, in order (nullability and metadata aside).
pub fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

fn check_schema(schema: &Schema) -> tabssl_functions::Result<()> {
    if schema.fields().is_empty() {
        return Err(tabssl_functions::Error::invalid("the schema has no fields"));
    }
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    match duplicate_name(&names) {
        Some(message) => Err(tabssl_functions::Error::Invalid(format!("the schema {message}"))),
        None => Ok(()),
    }
}

/// Infers a schema from the first records: NDJSON by their JSON types (a field seen only
/// as null becomes Utf8, a field seen as both a string and a number or boolean becomes
/// Utf8 and keeps those values as text), CSV by parsing each column (`header` gives the
/// names, else `column_1`, ...). Every field is nullable. Records that cannot take part
/// (not a JSON object, a CSV row with another number of fields) are left for the error
/// policy.
///
/// # Errors
/// When there is no record to infer from, or the CSV header names a column twice.
pub fn infer_schema(
    format: InputFormat,
    header: Option<&[String]>,
    chunks: &[&Chunk],
    null_regex: Option<&regex::Regex>,
) -> Result<SchemaRef> {
    let records = chunks
        .iter()
        .flat_map(|c| (0..c.records.len()).map(move |i| c.record(i)));
    let schema = match format {
        InputFormat::Ndjson => infer_ndjson(records)?,
        InputFormat::Csv => infer_csv(records, header, null_regex)?,
        InputFormat::Arrow => {
            return Err(DataFusionError::Internal(
                "an Arrow IPC stream carries its schema".into(),
            ));
        }
    };
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let data_type = if f.data_type() == &DataType::Null {
                DataType::Utf8
            } else {
                f.data_type().clone()
            };
            Field::new(f.name(), data_type, true)
        })
        .collect();
    let schema = Schema::new(fields);
    check_schema(&schema)?;
    Ok(Arc::new(schema))
}

fn infer_ndjson<'a>(records: impl Iterator<Item = &'a [u8]>) -> Result<Schema> {
    // Only objects describe fields; arrays, scalars and broken lines go to the policy.
    let objects: Vec<(&[u8], serde_json::Map<String, serde_json::Value>)> = records
        .filter_map(|r| match serde_json::from_slice::<serde_json::Value>(r) {
            Ok(serde_json::Value::Object(map)) => Some((r, map)),
            _ => None,
        })
        .collect();
    if objects.is_empty() {
        return Err(no_records());
    }
    let values = objects
        .iter()
        .map(|(_, map)| Ok(serde_json::Value::Object(map.clone())));
    let inferred = arrow::json::reader::infer_json_schema_from_iterator(values)?;
    // serde_json sorts keys: put the fields back in the order they first appear.
    let mut order: Vec<String> = Vec::new();
    for (record, _) in &objects {
        if let Ok(KeyOrder(keys)) = serde_json::from_slice::<KeyOrder>(record) {
            for key in keys {
                if !order.contains(&key) {
                    order.push(key);
                }
            }
        }
    }
    let position = |name: &String| order.iter().position(|k| k == name).unwrap_or(usize::MAX);
    let mut fields: Vec<Field> = inferred.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.sort_by_key(|f| position(f.name()));
    for field in fields.iter().filter(|f| f.data_type() == &DataType::Utf8) {
        let mixed = objects
            .iter()
            .any(|(_, map)| map.get(field.name()).is_some_and(|v| v.is_number() || v.is_boolean()));
        if mixed {
            log::warn!(
                "field {:?} holds both strings and numbers or booleans in the first records: it is read as \
                 text (Utf8), numbers included; give the schema explicitly ({}) to read it as another type",
                field.name(),
                Setting::Schema
            );
        }
    }
    Ok(Schema::new(fields))
}

fn infer_csv<'a>(
    records: impl Iterator<Item = &'a [u8]>,
    header: Option<&[String]>,
    null_regex: Option<&regex::Regex>,
) -> Result<Schema> {
    if let Some(names) = header
        && let Some(message) = duplicate_name(names)
    {
        return Err(DataFusionError::Plan(format!("the CSV header {message}")));
    }
    // Rows with an unterminated quote, or another number of fields than the header (or
    // than most rows), are left for the error policy instead of deciding the types.
    let counted: Vec<(&[u8], usize)> = records
        .filter(|r| memchr::memchr_iter(b'"', r).count().is_multiple_of(2))
        .map(|r| (r, csv_field_count(r)))
        .collect();
    if counted.is_empty() {
        return Err(no_records());
    }
    let expected = match header {
        Some(names) => names.len(),
        None => most_common(counted.iter().map(|&(_, n)| n)),
    };
    let mut text = Vec::new();
    for (record, _) in counted.iter().filter(|&&(_, n)| n == expected) {
        text.extend_from_slice(record);
    }
    if text.is_empty() {
        return Err(DataFusionError::Plan(format!(
            "the CSV header has {expected} fields but none of the first {} records has: give the schema explicitly ({}) \
             or check the delimiter",
            counted.len(),
            Setting::Schema
        )));
    }
    let mut format = arrow::csv::reader::Format::default().with_header(false);
    if let Some(regex) = null_regex {
        format = format.with_null_regex(regex.clone());
    }
    let (inferred, _) = format.infer_schema(text.as_slice(), None)?;
    let names = header.unwrap_or_default();
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = names.get(i).cloned().unwrap_or_else(|| format!("column_{}", i + 1));
            Field::new(name, f.data_type().clone(), true)
        })
        .collect();
    Ok(Schema::new(fields))
}

/// The number of fields of one CSV record (0 when it cannot be parsed).
fn csv_field_count(record: &[u8]) -> usize {
    arrow::csv::reader::Format::default()
        .with_header(false)
        .infer_schema(record, Some(1))
        .map_or(0, |(schema, _)| schema.fields().len())
}

/// The most frequent value; the first seen among equally frequent ones.
fn most_common(values: impl Iterator<Item = usize>) -> usize {
    let mut counts: Vec<(usize, usize)> = Vec::new();
    for value in values {
        match counts.iter_mut().find(|(v, _)| *v == value) {
            Some((_, count)) => *count += 1,
            None => counts.push((value, 1)),
        }
    }
    counts
        .iter()
        .fold(
            (0, 0),
            |best, &(value, count)| if count > best.1 { (value, count) } else { best },
        )
        .0
}

/// The keys of a JSON object, in the order they are written.
struct KeyOrder(Vec<String>);

impl<'de> Deserialize<'de> for KeyOrder {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = KeyOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<KeyOrder, A::Error> {
                let mut keys = Vec::new();
                while let Some((key, serde::de::IgnoredAny)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(key);
                }
                Ok(KeyOrder(keys))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

fn no_records() -> DataFusionError {
    DataFusionError::Plan(format!(
        "no record to infer the schema from: the input ended (or shut down) before its first valid record; \
         give the schema explicitly ({})",
        Setting::Schema
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("schema.json");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn reads_the_object_and_list_forms_with_aliases() {
        let (_dir, path) = write(
            r#"{"fields": [{"name": "id", "type": "bigint", "nullable": false},
                           {"name": "t", "type": "Timestamp(Millisecond, None)"},
                           {"name": "s", "type": "string"}]}"#,
        );
        let schema = load_schema(&path).expect("schema");
        assert_eq!(schema.field(0), &Field::new("id", DataType::Int64, false));
        assert_eq!(
            schema.field(1).data_type(),
            &DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None)
        );
        assert_eq!(schema.field(2), &Field::new("s", DataType::Utf8, true));
        let (_dir, path) = write(r#"[{"name": "x", "type": "double"}]"#);
        assert_eq!(
            load_schema(&path).expect("schema").field(0).data_type(),
            &DataType::Float64
        );
    }

    #[test]
    fn bad_schema_files_say_what_is_wrong() {
        for (text, expected) in [
            (
                r#"[{"name": "x", "type": "Integer128"}]"#,
                "unknown type \"Integer128\"",
            ),
            (
                r#"[{"name": "x", "type": "Int64"}, {"name": "x", "type": "Utf8"}]"#,
                "names column \"x\" twice (columns 1 and 2)",
            ),
            (r#"[{"name": "x", "kind": "Int64"}]"#, "expected {\"fields\""),
            ("[]", "no fields"),
        ] {
            let (_dir, path) = write(text);
            let error = load_schema(&path).expect_err(text).to_string();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(error.contains("schema.json"), "the message names the file: {error}");
        }
    }

    fn types(schema: &Schema) -> Vec<(&str, DataType)> {
        schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type().clone()))
            .collect()
    }

    #[test]
    fn infers_ndjson_and_csv_schemas_from_records() {
        let chunk = |text: &str| {
            let mut chunk = Chunk::default();
            for line in text.lines() {
                let start = chunk.data.len();
                chunk.data.extend_from_slice(line.as_bytes());
                chunk.data.push(b'\n');
                chunk.records.push(crate::source::RecordMeta {
                    start,
                    end: chunk.data.len(),
                    line: 1,
                    ..Default::default()
                });
            }
            chunk
        };
        let json = chunk("{\"id\": 1, \"v\": 0.5, \"s\": null}\nnot json\n{\"id\": 2, \"v\": 1, \"s\": null}");
        let schema = infer_schema(InputFormat::Ndjson, None, &[&json], None).expect("schema");
        assert_eq!(
            types(&schema),
            [("id", DataType::Int64), ("v", DataType::Float64), ("s", DataType::Utf8)]
        );

        let csv = chunk("1,?,a\n2,3.5,b");
        let names = vec!["id".to_string(), "x".to_string(), "s".to_string()];
        let null = regex::Regex::new(r"^\?$").expect("regex");
        let schema = infer_schema(InputFormat::Csv, Some(&names), &[&csv], Some(&null)).expect("schema");
        assert_eq!(
            types(&schema),
            [("id", DataType::Int64), ("x", DataType::Float64), ("s", DataType::Utf8)]
        );

        let error = infer_schema(InputFormat::Ndjson, None, &[&chunk("garbage")], None).expect_err("nothing valid");
        assert!(
            error.to_string().contains("give the schema explicitly (schema)"),
            "{error}"
        );

        // Arrays, scalars and a string among numbers: the objects decide, the field is text.
        let mixed = chunk("[1, 2]\n7\n{\"id\": 1, \"v\": 2}\n{\"id\": 2, \"v\": \"n/a\"}\n{\"id\": 3, \"v\": 4}");
        let schema = infer_schema(InputFormat::Ndjson, None, &[&mixed], None).expect("schema");
        assert_eq!(types(&schema), [("id", DataType::Int64), ("v", DataType::Utf8)]);

        // A ragged row does not decide the CSV schema; without a header most rows do.
        let ragged = chunk("1,2.5,a\n2,3\n3,\"unterminated\n3,4.5,c,extra\n4,5.5,d");
        let schema = infer_schema(InputFormat::Csv, Some(&names), &[&ragged], None).expect("schema");
        assert_eq!(
            types(&schema),
            [("id", DataType::Int64), ("x", DataType::Float64), ("s", DataType::Utf8)]
        );
        let schema = infer_schema(InputFormat::Csv, None, &[&ragged], None).expect("schema");
        assert_eq!(schema.fields().len(), 3);
        let twice = vec!["a".to_string(), "b".to_string(), "a".to_string()];
        let error = infer_schema(InputFormat::Csv, Some(&twice), &[&ragged], None).expect_err("duplicate names");
        assert!(
            error.to_string().contains("names column \"a\" twice (columns 1 and 3)"),
            "{error}"
        );
    }
}
