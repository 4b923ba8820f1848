//! Pieces of SQL text that tabssl writes for the user's names and values, quoted with
//! sqlparser's own rules so any column name or path survives the round trip.

use datafusion::sql::sqlparser::ast::{Ident, Value};

/// `name` as a double-quoted SQL identifier (`"education-num"`, `"a""b"`).
pub fn ident(name: &str) -> String {
    Ident::with_quote('"', name).to_string()
}

/// `text` as a single-quoted SQL string literal (`'it''s'`).
pub fn string_literal(text: &str) -> String {
    Value::SingleQuotedString(text.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_doubled() {
        assert_eq!(ident("education-num"), "\"education-num\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(string_literal("it's"), "'it''s'");
        assert_eq!(string_literal("\\?"), "'\\?'");
    }
}
