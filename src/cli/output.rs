//! Result printing: an aligned table for people, CSV / JSON / NDJSON for programs.
//!
//! CSV, JSON and NDJSON are written batch by batch, so results larger than memory stream
//! through; the table format collects the result to align its columns.

use std::io::Write;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use datafusion::error::Result;

use crate::stream::sink::nested_as_text;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned table (collects the result first).
    Table,
    /// CSV with a header; list columns are written as `[a, b, ...]` text.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

/// Writes the batches of one statement's result in the chosen format.
pub struct ResultWriter<W: Write> {
    format: OutputFormat,
    schema: SchemaRef,
    out: W,
    table: Vec<RecordBatch>,
    rows: usize,
}

impl<W: Write> ResultWriter<W> {
    /// A writer for results of `schema` into `out`.
    pub fn new(format: OutputFormat, schema: SchemaRef, out: W) -> Self {
        Self {
            format,
            schema,
            out,
            table: Vec::new(),
            rows: 0,
        }
    }

    /// Writes (or, for tables, keeps) one batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let first = self.rows == 0;
        self.rows += batch.num_rows();
        match self.format {
            OutputFormat::Table => self.table.push(batch.clone()),
            OutputFormat::Csv => {
                if batch.num_rows() > 0 {
                    let batch = nested_as_text(batch)?;
                    arrow::csv::WriterBuilder::new()
                        .with_header(first)
                        .build(&mut self.out)
                        .write(&batch)?;
                }
            }
            OutputFormat::Json => {
                for (i, line) in ndjson_lines(batch)?.lines().enumerate() {
                    let separator = if first && i == 0 { "[" } else { "," };
                    writeln!(self.out, "{separator}{line}")?;
                }
            }
            OutputFormat::Ndjson => self.out.write_all(ndjson_lines(batch)?.as_bytes())?,
        }
        Ok(())
    }

    /// Finishes the output (prints the table, closes the JSON array) and flushes.
    pub fn finish(mut self) -> Result<()> {
        match self.format {
            OutputFormat::Table if self.rows == 0 => {
                let names: Vec<&str> = self.schema.fields().iter().map(|f| f.name().as_str()).collect();
                writeln!(self.out, "(0 rows: {})", names.join(", "))?;
            }
            OutputFormat::Table => {
                writeln!(self.out, "{}", arrow::util::pretty::pretty_format_batches(&self.table)?)?;
            }
            OutputFormat::Csv if self.rows == 0 => {
                let empty = nested_as_text(&RecordBatch::new_empty(Arc::clone(&self.schema)))?;
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut self.out)
                    .write(&empty)?;
            }
            OutputFormat::Json if self.rows == 0 => writeln!(self.out, "[]")?,
            OutputFormat::Json => writeln!(self.out, "]")?,
            OutputFormat::Csv | OutputFormat::Ndjson => {}
        }
        self.out.flush()?;
        Ok(())
    }
}

fn ndjson_lines(batch: &RecordBatch) -> Result<String, ArrowError> {
    let mut buffer = Vec::new();
    let mut writer = arrow::json::LineDelimitedWriter::new(&mut buffer);
    writer.write(batch)?;
    writer.finish()?;
    String::from_utf8(buffer).map_err(|e| ArrowError::JsonError(e.to_string()))
}
