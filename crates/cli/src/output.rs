//! Result printing: an aligned table for people, CSV / JSON / NDJSON for programs.
//!
//! CSV, JSON and NDJSON are written batch by batch by arrow's writers, so results larger
//! than memory stream through; the table format collects the result to align its columns.

use std::io::Write;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::json::{ArrayWriter, LineDelimitedWriter};
use datafusion::error::Result;

use tabssl_stream::nested_as_text;

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

/// The writer behind each format.
enum Encoder<W: Write> {
    Table { out: W, batches: Vec<RecordBatch> },
    Csv { out: W, header_written: bool },
    Json(ArrayWriter<W>),
    Ndjson(LineDelimitedWriter<W>),
}

/// Writes the batches of one statement's result in the chosen format.
pub struct ResultWriter<W: Write> {
    schema: SchemaRef,
    encoder: Encoder<W>,
}

impl<W: Write> ResultWriter<W> {
    /// A writer for results of `schema` into `out`.
    pub fn new(format: OutputFormat, schema: SchemaRef, out: W) -> Self {
        let encoder = match format {
            OutputFormat::Table => Encoder::Table {
                out,
                batches: Vec::new(),
            },
            OutputFormat::Csv => Encoder::Csv {
                out,
                header_written: false,
            },
            OutputFormat::Json => Encoder::Json(ArrayWriter::new(out)),
            OutputFormat::Ndjson => Encoder::Ndjson(LineDelimitedWriter::new(out)),
        };
        Self { schema, encoder }
    }

    /// Writes (or, for tables, keeps) one batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match &mut self.encoder {
            Encoder::Table { batches, .. } => batches.push(batch.clone()),
            Encoder::Csv { out, header_written } => {
                if batch.num_rows() > 0 {
                    write_csv(out, batch, !*header_written)?;
                    *header_written = true;
                }
            }
            Encoder::Json(writer) => writer.write(batch)?,
            Encoder::Ndjson(writer) => writer.write(batch)?,
        }
        Ok(())
    }

    /// Finishes the output (prints the table, closes the JSON array) and flushes.
    pub fn finish(self) -> Result<()> {
        let mut out = match self.encoder {
            Encoder::Table { mut out, batches } => {
                if batches.iter().all(|b| b.num_rows() == 0) {
                    let names: Vec<&str> = self.schema.fields().iter().map(|f| f.name().as_str()).collect();
                    writeln!(out, "(0 rows: {})", names.join(", "))?;
                } else {
                    writeln!(out, "{}", arrow::util::pretty::pretty_format_batches(&batches)?)?;
                }
                out
            }
            Encoder::Csv {
                mut out,
                header_written,
            } => {
                if !header_written {
                    write_csv(&mut out, &RecordBatch::new_empty(Arc::clone(&self.schema)), true)?;
                }
                out
            }
            Encoder::Json(mut writer) => {
                writer.finish()?;
                let mut out = writer.into_inner();
                writeln!(out)?;
                out
            }
            Encoder::Ndjson(mut writer) => {
                writer.finish()?;
                writer.into_inner()
            }
        };
        out.flush()?;
        Ok(())
    }
}

/// Writes `batch` as CSV, with the header line when `header`.
fn write_csv<W: Write>(out: &mut W, batch: &RecordBatch, header: bool) -> Result<()> {
    let batch = nested_as_text(batch)?;
    arrow::csv::WriterBuilder::new()
        .with_header(header)
        .build(out)
        .write(&batch)?;
    Ok(())
}
