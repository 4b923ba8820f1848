//! Arrow IPC stream input, message by message: each message's declared metadata and body
//! sizes are checked against `--max-record-bytes` before anything is read or allocated, so a
//! header claiming a terabyte costs nothing. An oversized record batch is skipped (its rows
//! go to the error policy); the others are decoded with arrow's message readers.

use std::collections::HashMap;
use std::io::{self, BufRead, Read};
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::MessageHeader;

use super::policy::Position;
use super::source::{Output, SourceItem, SourceOptions};
use tabssl_functions::setting::Setting;

/// Reads one Arrow IPC stream (a segment of the input) into schema and batch items.
///
/// # Errors
/// A message for [`SourceItem::Failed`]: a broken or truncated stream, a message part over
/// the limit that is not a record batch.
pub(super) fn read_ipc<R: BufRead>(
    mut reader: R,
    source: Arc<str>,
    options: &SourceOptions,
    out: &Output,
) -> tabssl_functions::Result<()> {
    let limit = options.max_record_bytes;
    let mut schema: Option<SchemaRef> = None;
    let mut dictionaries: HashMap<i64, ArrayRef> = HashMap::new();
    let mut offset = 0u64;
    loop {
        let position = Position {
            source: Arc::clone(&source),
            line: 0,
            offset,
        };
        let broken =
            |e: String| tabssl_functions::Error::InvalidData(format!("{position}: not a valid Arrow IPC stream: {e}"));
        let (metadata, body) = match next_ipc_frame(&mut reader, limit)
            .map_err(|e| tabssl_functions::Error::InvalidData(format!("{position}: {e}")))?
        {
            // An empty input is an empty stream, not a broken one.
            IpcFrame::End => return Ok(()),
            IpcFrame::Oversized { length, rows } => {
                offset += length;
                if schema.is_none() {
                    return Err(broken("a record batch before the schema".into()));
                }
                out.stats.add_read(rows);
                let error = format!(
                    "an Arrow IPC record batch of {rows} rows declares a {length}-byte message, more than {} \
                     ({limit}) allows; raise it or send smaller batches",
                    Setting::MaxRecordBytes
                );
                let rejected = SourceItem::Rejected {
                    record: Vec::new(),
                    position,
                    error,
                    rows,
                };
                if !out.send(rejected) {
                    return Ok(());
                }
                continue;
            }
            IpcFrame::Message { metadata, body, length } => {
                offset += length;
                (metadata, body)
            }
        };
        let message = arrow::ipc::root_as_message(&metadata).map_err(|e| broken(e.to_string()))?;
        let body = Buffer::from(body);
        match (message.header_type(), &schema) {
            (MessageHeader::Schema, None) => {
                let header = message
                    .header_as_schema()
                    .filter(|header| header.fields().is_some())
                    .ok_or_else(|| broken("a schema message without fields".into()))?;
                let found = Arc::new(arrow::ipc::convert::fb_to_schema(header));
                schema = Some(Arc::clone(&found));
                if !out.send(SourceItem::IpcSchema(found, Arc::clone(&source))) {
                    return Ok(());
                }
            }
            (MessageHeader::Schema, Some(_)) => return Err(broken("a second schema message".into())),
            (MessageHeader::DictionaryBatch, Some(schema)) => {
                let header = message
                    .header_as_dictionary_batch()
                    .ok_or_else(|| broken("an empty dictionary message".into()))?;
                arrow::ipc::reader::read_dictionary(&body, header, schema, &mut dictionaries, &message.version())
                    .map_err(|e| broken(e.to_string()))?;
            }
            (MessageHeader::RecordBatch, Some(schema)) => {
                let header = message
                    .header_as_record_batch()
                    .ok_or_else(|| broken("an empty record batch message".into()))?;
                let batch = arrow::ipc::reader::read_record_batch(
                    &body,
                    header,
                    Arc::clone(schema),
                    &dictionaries,
                    None,
                    &message.version(),
                )
                .map_err(|e| broken(e.to_string()))?;
                out.stats.add_read(batch.num_rows() as u64);
                if !out.send(SourceItem::Batch(batch)) {
                    return Ok(());
                }
            }
            (MessageHeader::NONE, _) => {}
            (kind, _) => return Err(broken(format!("a {kind:?} message where it cannot be"))),
        }
        if options.follow.shutdown.is_requested() {
            return Ok(());
        }
    }
}

/// One message of an Arrow IPC stream, as [`next_ipc_frame`] found it.
enum IpcFrame {
    /// The end-of-stream marker, or the end of the input between messages.
    End,
    /// A message within the size limit.
    Message {
        /// The flatbuffer `Message`.
        metadata: Vec<u8>,
        /// The body it describes.
        body: Vec<u8>,
        /// Bytes of the whole message, prefix included.
        length: u64,
    },
    /// A record batch message over the limit; its bytes were skipped.
    Oversized {
        /// Bytes of the whole message.
        length: u64,
        /// Rows the batch declares.
        rows: u64,
    },
}

/// Reads the next IPC message, checking its declared metadata and body sizes against
/// `limit` before reading (so a header claiming a terabyte costs nothing).
///
/// # Errors
/// An input that ends inside a message, a metadata or non-batch body over the limit, or
/// bytes that are not an IPC message.
fn next_ipc_frame(reader: &mut impl Read, limit: usize) -> tabssl_functions::Result<IpcFrame> {
    const CONTINUATION: [u8; 4] = [0xFF; 4];
    let truncated = |e: io::Error| {
        tabssl_functions::Error::InvalidData(format!("the Arrow IPC stream ends inside a message ({e})"))
    };
    let mut word = [0u8; 4];
    if !read_or_end(reader, &mut word).map_err(truncated)? {
        return Ok(IpcFrame::End);
    }
    let mut prefix = word.len();
    if word == CONTINUATION {
        reader.read_exact(&mut word).map_err(truncated)?;
        prefix += word.len();
    }
    let metadata_length = u32::from_le_bytes(word) as usize;
    if metadata_length == 0 {
        return Ok(IpcFrame::End);
    }
    if metadata_length > limit {
        return Err(tabssl_functions::Error::InvalidData(format!(
            "an Arrow IPC message header declares {metadata_length} bytes, more than {} ({limit}) allows; \
             raise it if the stream is genuine",
            Setting::MaxRecordBytes
        )));
    }
    let mut metadata = vec![0u8; metadata_length];
    reader.read_exact(&mut metadata).map_err(truncated)?;
    let header = arrow::ipc::root_as_message(&metadata)
        .map_err(|e| tabssl_functions::Error::InvalidData(format!("not an Arrow IPC message: {e}")))?;
    let body_length = u64::try_from(header.bodyLength())
        .map_err(|_| tabssl_functions::Error::InvalidData(format!("negative body length {}", header.bodyLength())))?;
    let length = (prefix + metadata_length) as u64 + body_length;
    if body_length > limit as u64 {
        let Some(batch) = header
            .header_as_record_batch()
            .filter(|_| header.header_type() == MessageHeader::RecordBatch)
        else {
            return Err(tabssl_functions::Error::InvalidData(format!(
                "an Arrow IPC {:?} message declares a {body_length}-byte body, more than {} ({limit}) allows; \
                 raise it",
                header.header_type(),
                Setting::MaxRecordBytes
            )));
        };
        let rows = u64::try_from(batch.length()).unwrap_or(0);
        let skipped = io::copy(&mut reader.take(body_length), &mut io::sink()).map_err(truncated)?;
        if skipped < body_length {
            return Err(truncated(io::ErrorKind::UnexpectedEof.into()));
        }
        return Ok(IpcFrame::Oversized { length, rows });
    }
    let mut body = vec![0u8; body_length as usize];
    reader.read_exact(&mut body).map_err(truncated)?;
    Ok(IpcFrame::Message { metadata, body, length })
}

/// Fills `buffer`; `false` when the input ended before its first byte.
fn read_or_end(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::RecordBatch;

    /// An IPC stream of `batches` batches of `rows` rows each.
    fn ipc_stream(batches: usize, rows: i64) -> Vec<u8> {
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
            "x",
            arrow::datatypes::DataType::Int64,
            false,
        )]));
        let mut bytes = Vec::new();
        let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut bytes, &schema).expect("writer");
        for b in 0..batches {
            let values = arrow::array::Int64Array::from_iter_values((0..rows).map(|i| i + b as i64 * rows));
            let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(values)]).expect("batch");
            writer.write(&batch).expect("write");
        }
        writer.finish().expect("finish");
        drop(writer);
        bytes
    }

    fn frames(bytes: &[u8], limit: usize) -> Vec<String> {
        let mut reader = io::Cursor::new(bytes.to_vec());
        let mut found = Vec::new();
        loop {
            match next_ipc_frame(&mut reader, limit) {
                Ok(IpcFrame::End) => return found,
                Ok(IpcFrame::Message { length, .. }) => found.push(format!("message {length}")),
                Ok(IpcFrame::Oversized { rows, .. }) => found.push(format!("oversized {rows} rows")),
                Err(error) => {
                    found.push(error.to_string());
                    return found;
                }
            }
        }
    }

    #[test]
    fn ipc_messages_are_framed_and_their_sizes_checked_before_reading() {
        let stream = ipc_stream(3, 100);
        let whole = frames(&stream, 1 << 20);
        assert_eq!(whole.len(), 4, "a schema and three batches: {whole:?}");
        let small = frames(&stream, 600);
        assert_eq!(small[1..], ["oversized 100 rows"; 3], "{small:?}");

        // A header claiming a terabyte body is refused without allocating it.
        let mut forged = ipc_stream(0, 0);
        forged.truncate(forged.len() - 8);
        let batch = ipc_stream(1, 1);
        let header_start = ipc_stream(0, 0).len() - 8;
        let mut message = batch[header_start..batch.len() - 8].to_vec();
        let claimed = arrow::ipc::root_as_message(&message[8..])
            .expect("message")
            .bodyLength();
        let position = (8..message.len() - 8)
            .find(|&at| {
                let mut copy = message.clone();
                copy[at..at + 8].copy_from_slice(&(1i64 << 40).to_le_bytes());
                message[at..at + 8] == claimed.to_le_bytes()
                    && arrow::ipc::root_as_message(&copy[8..]).is_ok_and(|m| m.bodyLength() == 1 << 40)
            })
            .expect("body length in the header");
        message[position..position + 8].copy_from_slice(&(1i64 << 40).to_le_bytes());
        forged.extend_from_slice(&message);
        let found = frames(&forged, 1 << 20);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[1].contains("ends inside a message"), "{found:?}");

        let mut garbage = vec![0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F];
        garbage.extend_from_slice(&[0u8; 64]);
        let found = frames(&garbage, 1 << 20);
        assert!(found[0].contains("more than max_record_bytes"), "{found:?}");
        assert!(frames(&[], 10).is_empty(), "an empty input is an empty stream");
    }
}
