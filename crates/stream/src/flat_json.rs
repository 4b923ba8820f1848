//! The common case of NDJSON, decoded without a tape: one flat object per line, whose
//! values are numbers, strings without escapes, booleans and nulls, for a schema of
//! Int64, Float64, Utf8 and Boolean columns. Each value goes straight into its column's
//! builder.
//!
//! It is a fast path, not a second JSON decoder: it accepts only what it can decode exactly
//! as arrow-json would, and gives up on the whole micro-batch at the first thing it does not
//! handle (an escape, a nested value, a number in a string column, a repeated key, a missing
//! non-nullable column, anything malformed). The caller then decodes the micro-batch with
//! arrow-json, which also finds and words the errors. A test holds the two to the same
//! output on random records.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, NullBufferBuilder, RecordBatch, StringArray,
};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, SchemaRef};

/// A column being built.
enum Column {
    Int64(Int64Builder),
    Float64(Float64Builder),
    Utf8(Strings),
    Boolean(BooleanBuilder),
}

/// A string column built from raw bytes: values are copied as they stand in the record
/// and validated as UTF-8 once per column when the batch is finished, not once per value.
struct Strings {
    offsets: Vec<i32>,
    values: Vec<u8>,
    nulls: NullBufferBuilder,
}

impl Strings {
    fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self {
            offsets,
            values: Vec::with_capacity(bytes),
            nulls: NullBufferBuilder::new(rows),
        }
    }

    /// Appends the value `line[start..end]`; `None` past the 2 GiB that 32-bit offsets
    /// reach. A short value is copied as one fixed 16-byte block, then the bytes past it
    /// are cut off again: cheaper than a copy of variable length, for the short values most
    /// text columns hold.
    fn append(&mut self, line: &[u8], start: usize, end: usize) -> Option<()> {
        let length = end - start;
        match line
            .get(start..start + 16)
            .and_then(|block| <&[u8; 16]>::try_from(block).ok())
        {
            Some(block) if length <= 16 => {
                let kept = self.values.len() + length;
                self.values.extend_from_slice(block);
                self.values.truncate(kept);
            }
            _ => self.values.extend_from_slice(&line[start..end]),
        }
        self.offsets.push(i32::try_from(self.values.len()).ok()?);
        self.nulls.append_non_null();
        Some(())
    }

    fn append_null(&mut self) {
        self.offsets.push(*self.offsets.last().unwrap_or(&0));
        self.nulls.append_null();
    }

    /// The column; `None` when a value is not UTF-8 (arrow-json then words the error).
    fn finish(mut self) -> Option<StringArray> {
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        StringArray::try_new(offsets, Buffer::from_vec(self.values), self.nulls.finish()).ok()
    }
}

/// A decoder of flat NDJSON records for one schema.
pub struct FlatJson {
    schema: SchemaRef,
    /// Field names as bytes, in schema order.
    names: Vec<Vec<u8>>,
    /// Each field's key as it is written without spaces.
    keys: Vec<Key>,
    nullable: Vec<bool>,
}

impl FlatJson {
    /// A decoder for `schema`, or `None` when a column has a type it does not handle or a
    /// name that JSON writes with escapes.
    pub fn for_schema(schema: &SchemaRef) -> Option<Self> {
        let supported = schema.fields().iter().all(|f| {
            matches!(
                f.data_type(),
                DataType::Int64 | DataType::Float64 | DataType::Utf8 | DataType::Boolean
            ) && !f.name().bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20)
        });
        supported.then(|| Self {
            schema: Arc::clone(schema),
            names: schema.fields().iter().map(|f| f.name().as_bytes().to_vec()).collect(),
            keys: schema.fields().iter().map(|f| Key::new(f.name())).collect(),
            nullable: schema.fields().iter().map(|f| f.is_nullable()).collect(),
        })
    }

    /// Decodes `records`, each one newline-terminated line, which must be exactly
    /// `expected`; `None` when any record is outside the fast path.
    pub fn decode<'a>(&self, records: impl Iterator<Item = &'a [u8]>, expected: usize) -> Option<RecordBatch> {
        let mut columns: Vec<Column> = self
            .schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Int64 => Column::Int64(Int64Builder::with_capacity(expected)),
                DataType::Float64 => Column::Float64(Float64Builder::with_capacity(expected)),
                DataType::Boolean => Column::Boolean(BooleanBuilder::with_capacity(expected)),
                _ => Column::Utf8(Strings::with_capacity(expected, expected * 16)),
            })
            .collect();
        // `seen[i] == rows + 1`: field `i` was in the current record.
        let mut seen = vec![0usize; self.names.len()];
        let mut rows = 0;
        for line in records {
            if rows == expected {
                return None;
            }
            let stamp = rows + 1;
            // Repeated keys are refused, so a record with as many fields as the schema has them all.
            if self.record(line, &mut columns, &mut seen, stamp)? < self.names.len() {
                for (i, seen) in seen.iter().enumerate() {
                    if *seen != stamp {
                        if !self.nullable[i] {
                            return None;
                        }
                        append_null(&mut columns[i]);
                    }
                }
            }
            rows += 1;
        }
        if rows != expected {
            return None;
        }
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
        for column in columns {
            arrays.push(match column {
                Column::Int64(mut b) => Arc::new(b.finish()),
                Column::Float64(mut b) => Arc::new(b.finish()),
                Column::Utf8(strings) => Arc::new(strings.finish()?),
                Column::Boolean(mut b) => Arc::new(b.finish()),
            });
        }
        RecordBatch::try_new(Arc::clone(&self.schema), arrays).ok()
    }

    /// Decodes one record into the columns, stamping the fields it holds with `stamp`;
    /// returns how many of the schema's fields it holds.
    fn record(&self, line: &[u8], columns: &mut [Column], seen: &mut [usize], stamp: usize) -> Option<usize> {
        let mut at = skip_space(line, 0);
        if line.get(at) != Some(&b'{') {
            return None;
        }
        at = skip_space(line, at + 1);
        let mut next_field = 0;
        let mut found = 0;
        if line.get(at) == Some(&b'}') {
            at += 1;
        } else {
            loop {
                // Keys usually come in schema order, without spaces: try the next field's
                // `"name":` in place first.
                let field = match self.keys.get(next_field) {
                    Some(key) if key.is_at(line, at) => {
                        at += key.bytes.len();
                        Some(next_field)
                    }
                    _ => {
                        let (key, after) = plain_string(line, at)?;
                        at = skip_space(line, after);
                        if line.get(at) != Some(&b':') {
                            return None;
                        }
                        at += 1;
                        // A name matches only a key of the same (valid) bytes; another key must
                        // still be UTF-8, as arrow-json requires.
                        match self.names.iter().position(|name| name.as_slice() == key) {
                            None if !utf8(key) => return None,
                            field => field,
                        }
                    }
                };
                at = skip_space(line, at);
                at = match field {
                    Some(i) => {
                        if std::mem::replace(&mut seen[i], stamp) == stamp {
                            return None;
                        }
                        next_field = i + 1;
                        found += 1;
                        value(line, at, &mut columns[i], self.nullable[i])?
                    }
                    None => skip_scalar(line, at)?,
                };
                at = skip_space(line, at);
                match line.get(at) {
                    Some(b',') => at = skip_space(line, at + 1),
                    Some(b'}') => {
                        at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        (skip_space(line, at) == line.len()).then_some(found)
    }
}

fn append_null(column: &mut Column) {
    match column {
        Column::Int64(b) => b.append_null(),
        Column::Float64(b) => b.append_null(),
        Column::Utf8(strings) => strings.append_null(),
        Column::Boolean(b) => b.append_null(),
    }
}

/// Decodes the value at `at` into `column`; returns the position after it.
fn value(line: &[u8], at: usize, column: &mut Column, nullable: bool) -> Option<usize> {
    if line.get(at) == Some(&b'n') && line[at..].starts_with(b"null") {
        if !nullable {
            return None;
        }
        append_null(column);
        return Some(at + 4);
    }
    match column {
        Column::Int64(b) => {
            let (number, end) = integer(line, at)?;
            b.append_value(number);
            Some(end)
        }
        Column::Float64(b) => {
            let end = number_end(line, at)?;
            let number: f64 = std::str::from_utf8(&line[at..end]).ok()?.parse().ok()?;
            if !number.is_finite() {
                return None;
            }
            b.append_value(number);
            Some(end)
        }
        Column::Utf8(b) => {
            let (string, end) = plain_string(line, at)?;
            b.append(line, at + 1, at + 1 + string.len())?;
            Some(end)
        }
        Column::Boolean(b) => {
            if line[at..].starts_with(b"true") {
                b.append_value(true);
                Some(at + 4)
            } else if line[at..].starts_with(b"false") {
                b.append_value(false);
                Some(at + 5)
            } else {
                None
            }
        }
    }
}

/// Skips a scalar value of a field the schema does not have.
fn skip_scalar(line: &[u8], at: usize) -> Option<usize> {
    match line.get(at)? {
        b'"' => plain_string(line, at).and_then(|(string, end)| utf8(string).then_some(end)),
        b't' if line[at..].starts_with(b"true") => Some(at + 4),
        b'f' if line[at..].starts_with(b"false") => Some(at + 5),
        b'n' if line[at..].starts_with(b"null") => Some(at + 4),
        _ => number_end(line, at),
    }
}

/// The end of the JSON number at `at` (strict grammar: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`).
fn number_end(line: &[u8], mut at: usize) -> Option<usize> {
    let digits = |line: &[u8], at: usize| at + line[at..].iter().take_while(|c| c.is_ascii_digit()).count();
    if line.get(at) == Some(&b'-') {
        at += 1;
    }
    match line.get(at)? {
        b'0' => at += 1,
        b'1'..=b'9' => at = digits(line, at),
        _ => return None,
    }
    if line.get(at) == Some(&b'.') {
        let end = digits(line, at + 1);
        if end == at + 1 {
            return None;
        }
        at = end;
    }
    if matches!(line.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(line.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let end = digits(line, at);
        if end == at {
            return None;
        }
        at = end;
    }
    // A number ends at a delimiter, never inside a word.
    match line.get(at) {
        Some(b',' | b'}' | b' ' | b'\t' | b'\r' | b'\n') => Some(at),
        _ => None,
    }
}

/// The bytes of the string at `at` and the position after its closing quote; `None` for
/// anything but a string without escapes or control characters. The bytes are not checked
/// for UTF-8: callers do, once per column or with [`utf8`].
fn plain_string(line: &[u8], at: usize) -> Option<(&[u8], usize)> {
    if line.get(at) != Some(&b'"') {
        return None;
    }
    let end = string_stop(line, at + 1)?;
    if line[end] != b'"' {
        return None;
    }
    Some((&line[at + 1..end], end + 1))
}

/// Whether a string's bytes are UTF-8 (ASCII, the common case, checked first).
fn utf8(bytes: &[u8]) -> bool {
    bytes.is_ascii() || std::str::from_utf8(bytes).is_ok()
}

/// The position of the first quote, backslash or control character at or after `from`.
/// Eight bytes at a time: values are too short for a vectorised search to pay off, and
/// too long for a byte loop to be cheap.
fn string_stop(line: &[u8], mut from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // The high bit of each byte of `x` below `n` (exact for the lowest such byte).
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS;
    while let Some(window) = line.get(from..from + 8) {
        let word = u64::from_le_bytes(window.try_into().ok()?);
        let stops =
            below(word ^ (ONES * u64::from(b'"')), 1) | below(word ^ (ONES * u64::from(b'\\')), 1) | below(word, 0x20);
        if stops != 0 {
            return Some(from + (stops.trailing_zeros() / 8) as usize);
        }
        from += 8;
    }
    line[from..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|length| from + length)
}

/// The JSON integer at `at` and the position after it; `None` for anything else (a
/// fraction, an exponent, a leading zero) and for values outside Int64.
fn integer(line: &[u8], at: usize) -> Option<(i64, usize)> {
    let negative = line.get(at) == Some(&b'-');
    let first = at + usize::from(negative);
    let mut end = first;
    // Nineteen digits always fit in a u64; the sign and the range are checked once after.
    let mut magnitude: u64 = 0;
    while let Some(digit) = line.get(end).map(|c| c.wrapping_sub(b'0')).filter(|d| *d <= 9) {
        if end - first == 19 {
            return None;
        }
        magnitude = magnitude * 10 + u64::from(digit);
        end += 1;
    }
    let digits = end - first;
    if digits == 0 || (digits > 1 && line[first] == b'0') {
        return None;
    }
    // An integer ends at a delimiter, never inside a word or a longer number.
    if !matches!(line.get(end), Some(b',' | b'}' | b' ' | b'\t' | b'\r' | b'\n')) {
        return None;
    }
    let value = if negative {
        0i64.checked_sub_unsigned(magnitude)?
    } else {
        i64::try_from(magnitude).ok()?
    };
    Some((value, end))
}

/// A field's key as it is written without spaces, `"name":`, matched a word at a time:
/// keys are short, and a library call per key costs more than the comparison.
struct Key {
    bytes: Vec<u8>,
    /// The first eight bytes (fewer, zero-padded, for a shorter key) and which of them count.
    head: u64,
    mask: u64,
}

impl Key {
    fn new(name: &str) -> Self {
        let bytes = format!("\"{name}\":").into_bytes();
        let mut head = [0u8; 8];
        let mut mask = [0u8; 8];
        let length = bytes.len().min(8);
        head[..length].copy_from_slice(&bytes[..length]);
        mask[..length].fill(0xff);
        Self {
            bytes,
            head: u64::from_le_bytes(head),
            mask: u64::from_le_bytes(mask),
        }
    }

    /// Whether `line` holds the key at `at`.
    fn is_at(&self, line: &[u8], at: usize) -> bool {
        let length = self.bytes.len();
        let (Some(window), Some(head)) = (line.get(at..at + length), line.get(at..at + 8)) else {
            return line.get(at..at + length) == Some(self.bytes.as_slice());
        };
        if word(head) & self.mask != self.head {
            return false;
        }
        // The words after the head, the last one overlapping the one before it.
        let mut from = 8;
        while from < length {
            let at = from.min(length - 8);
            if word(&window[at..]) != word(&self.bytes[at..]) {
                return false;
            }
            from += 8;
        }
        true
    }
}

/// The eight bytes at the start of `bytes` (which holds at least eight) as a word.
fn word(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

fn skip_space(line: &[u8], mut at: usize) -> usize {
    while matches!(line.get(at), Some(b' ' | b'\t' | b'\r' | b'\n')) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};
    use proptest::prelude::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("measured_x", DataType::Float64, true),
            Field::new("a_long_string_name", DataType::Utf8, true),
            Field::new("b", DataType::Boolean, true),
        ]))
    }

    /// What arrow-json makes of the same records, or `None` when it refuses them.
    fn arrow_json(schema: &SchemaRef, text: &[u8], expected: usize) -> Option<RecordBatch> {
        let mut decoder = arrow::json::ReaderBuilder::new(Arc::clone(schema))
            .with_batch_size(expected + 1)
            .build_decoder()
            .ok()?;
        let mut rest = text;
        while !rest.is_empty() {
            let used = decoder.decode(rest).ok()?;
            if used == 0 {
                break;
            }
            rest = &rest[used..];
        }
        decoder.flush().ok()?.filter(|batch| batch.num_rows() == expected)
    }

    /// The records of a text, as the reader hands them over: one line each.
    fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
        text.split_inclusive(|&c| c == b'\n')
    }

    #[test]
    fn integers_are_exact_to_the_ends_of_int64_and_refused_past_them() {
        let line = |text: &str| format!("{text},");
        for (text, expected) in [
            ("0", Some(0)),
            ("-0", Some(0)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-9223372036854775809", None),
            ("18446744073709551616", None),
            ("1234567890123456789012", None),
            ("007", None),
            ("-", None),
            ("12a", None),
        ] {
            let text = line(text);
            assert_eq!(integer(text.as_bytes(), 0).map(|(v, _)| v), expected, "{text}");
        }
    }

    #[test]
    fn decodes_flat_records_and_gives_up_on_the_rest() {
        let flat = FlatJson::for_schema(&schema()).expect("supported");
        let text = b"{\"id\": 1, \"x\": 2.5, \"s\": \"a\", \"b\": true}\n{\"s\":\"\",\"id\":-7,\"extra\":[1]}\n";
        // An array in an unknown field is past the fast path.
        assert!(flat.decode(lines(text), 2).is_none());
        let text = b"{\"id\": 1, \"x\": 2.5, \"s\": \"a\", \"b\": true}\n{\"s\":\"\",\"id\":-7,\"extra\":3e2}\n";
        let batch = flat.decode(lines(text), 2).expect("decodes");
        assert_eq!(Some(batch), arrow_json(&schema(), text, 2));
        for refused in [
            &b"{\"id\": 1, \"s\": \"a\\\"b\"}\n"[..],
            b"{\"id\": 1.0}\n",
            b"{\"x\": 1}\n",
            b"{\"id\": 1, \"id\": 2}\n",
            b"{\"id\": 1} {\"id\": 2}\n",
            b"{\"id\": 01}\n",
            b"[1]\n",
            b"{\"id\":",
        ] {
            assert!(
                flat.decode(std::iter::once(refused), 1).is_none(),
                "{}",
                String::from_utf8_lossy(refused)
            );
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_left_to_arrow_json_which_refuses_them() {
        let flat = FlatJson::for_schema(&schema()).expect("supported");
        for record in [
            &b"{\"id\": 1, \"a_long_string_name\": \"caf\xc3\"}\n"[..],
            b"{\"id\": 1, \"extra\": \"\xff\"}\n",
            b"{\"id\": 1, \"\xe9\": 2}\n",
        ] {
            let shown = String::from_utf8_lossy(record);
            assert!(flat.decode(std::iter::once(record), 1).is_none(), "{shown}");
            assert!(arrow_json(&schema(), record, 1).is_none(), "{shown}");
        }
        let record = "{\"id\": 1, \"a_long_string_name\": \"café\", \"é\": \"ü\"}\n".as_bytes();
        let batch = flat
            .decode(std::iter::once(record), 1)
            .expect("UTF-8 beyond ASCII decodes");
        assert_eq!(Some(batch), arrow_json(&schema(), record, 1));
    }

    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            (-1000i64..1000).prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:?}")),
            (-100.0f64..100.0).prop_map(|f| format!("{f:e}")),
            "[a-z ,:{}é]{0,20}".prop_map(|s| format!("\"{s}\"")),
            Just("\"a\\nb\"".to_string()),
            // An escape or a raw control character anywhere in a long string.
            (
                "[a-z]{0,17}",
                prop::sample::select(vec!["\\\"", "\\\\", "\\n", "\t", "\u{1}"]),
                "[a-z]{0,9}"
            )
                .prop_map(|(head, stop, tail)| format!("\"{head}{stop}{tail}\"")),
            Just("true".to_string()),
            Just("false".to_string()),
            Just("null".to_string()),
            Just("[1, 2]".to_string()),
            Just("01".to_string()),
            Just("-".to_string()),
            Just("1.".to_string()),
            Just("".to_string()),
        ]
    }

    fn record() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec!["id", "measured_x", "a_long_string_name", "b", "other"]);
        let space = prop::sample::select(vec!["", " ", "  ", "\t"]);
        prop::collection::vec((key, token(), space), 0..6).prop_map(|fields| {
            let body: Vec<String> = fields
                .iter()
                .map(|(key, value, space)| format!("{space}\"{key}\"{space}:{space}{value}{space}"))
                .collect();
            format!("{{{}}}\n", body.join(","))
        })
    }

    /// A record the fast path must take: typed values (or null), keys in any order, some
    /// missing, an unknown scalar field, any spacing.
    fn flat_record() -> impl Strategy<Value = String> {
        let space = || prop::sample::select(vec!["", " ", "\t"]);
        (
            any::<i64>(),
            prop_oneof![
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(|f| format!("{f:?}")),
                (-1e6f64..1e6).prop_map(|f| format!("{f}")),
                (-50i64..50).prop_map(|n| n.to_string()),
                Just("null".to_string()),
            ],
            prop_oneof![
                r"[a-zé ,:{}\[\]]{0,24}".prop_map(|s| format!("\"{s}\"")),
                Just("null".to_string())
            ],
            prop::sample::select(vec!["true", "false", "null"]),
            prop::collection::vec(any::<bool>(), 4),
            Just(()).prop_perturb(|(), mut rng| rng.random::<u64>()),
            space(),
        )
            .prop_map(|(id, x, s, b, present, order, space)| {
                let mut fields = vec![format!("\"id\":{space}{id}")];
                for (i, (key, value)) in [
                    ("measured_x", x),
                    ("a_long_string_name", s),
                    ("b", b.to_string()),
                    ("other", "-1.5e3".to_string()),
                ]
                .into_iter()
                .enumerate()
                {
                    if present[i] {
                        fields.push(format!("{space}\"{key}\"{space}:{space}{value}"));
                    }
                }
                let turn = (order as usize) % fields.len();
                fields.rotate_left(turn);
                format!("{{{}{space}}}\n", fields.join(","))
            })
    }

    proptest! {
        /// Valid flat records always take the fast path, and give what arrow-json gives.
        #[test]
        fn flat_records_take_the_fast_path_with_arrow_jsons_result(records in prop::collection::vec(flat_record(), 1..8)) {
            let schema = schema();
            let flat = FlatJson::for_schema(&schema).expect("supported");
            let text = records.concat();
            let batch = flat.decode(lines(text.as_bytes()), records.len());
            prop_assert!(batch.is_some(), "refused: {}", text);
            prop_assert_eq!(batch, arrow_json(&schema, text.as_bytes(), records.len()), "{}", text);
        }

        /// Whatever the records, the fast path either gives up or gives exactly what
        /// arrow-json gives.
        #[test]
        fn the_fast_path_agrees_with_arrow_json(records in prop::collection::vec(record(), 1..8)) {
            let schema = schema();
            let flat = FlatJson::for_schema(&schema).expect("supported");
            let text = records.concat();
            if let Some(batch) = flat.decode(lines(text.as_bytes()), records.len()) {
                prop_assert_eq!(Some(batch), arrow_json(&schema, text.as_bytes(), records.len()), "{}", text);
            }
        }
    }
}
