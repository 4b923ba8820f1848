//! The settings a message can tell the user to change, spelled the way the user's front
//! end spells them: a library or Python caller reads `max_record_bytes`, a command-line
//! user reads `--max-record-bytes`.
//!
//! Messages hold a [`Setting`] and format it with `{}`; the front end chooses the spelling
//! once, at start-up, with [`set_spelling`] (the `tabssl` binary chooses
//! [`Spelling::CommandLine`]). The default is [`Spelling::Library`].

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

/// A setting named in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Setting {
    /// The largest record (or Arrow IPC message) a stream reads.
    MaxRecordBytes,
    /// The deepest nesting of arrays and objects in an NDJSON record.
    MaxJsonDepth,
    /// An explicit schema for a stream's input.
    Schema,
    /// What a stream does with a record that does not fit its schema.
    OnError,
    /// Reading a stream's input again from its start, ignoring the committed parts.
    StartOver,
    /// A stream's output directory.
    Output,
    /// The directories a server or worker lets clients read files under.
    DataRoot,
    /// The queries a server runs at once.
    MaxConcurrentQueries,
    /// How long a query waits for a free slot.
    QueueTimeout,
    /// The memory one query may use.
    QueryMemory,
    /// How long one query may run.
    QueryTimeout,
    /// The largest message a server sends or receives.
    MaxMessageBytes,
    /// The most rows a client may ingest in one call.
    MaxIngestRows,
    /// The client connections a server holds at once.
    MaxConnections,
    /// How long a server keeps a connection that sends nothing and runs no call.
    IdleTimeout,
    /// The bearer tokens a server accepts.
    Tokens,
    /// A server's TLS certificate and key.
    Tls,
    /// The set-up SQL an operator runs before a server accepts clients.
    SetupSql,
    /// The row-key column of an export.
    Key,
    /// The width of a pretrained encoder's hidden layer.
    Hidden,
    /// The width of a pretrained encoder's embedding.
    Dim,
    /// The rows of one training batch.
    BatchSize,
    /// The largest tensor training may build.
    MaxTensorElements,
    /// The most rows of a stream's micro-batch.
    BatchRows,
    /// The rows of one Parquet part a stream writes.
    RotateRows,
    /// The columns left out of an evaluation's raw features.
    Exclude,
    /// An evaluation's raw feature columns.
    Columns,
}

impl Setting {
    /// The name a library or Python caller uses: the option's field or keyword.
    #[must_use]
    pub fn library_name(self) -> &'static str {
        match self {
            Self::MaxRecordBytes => "max_record_bytes",
            Self::MaxJsonDepth => "max_json_depth",
            Self::Schema => "schema",
            Self::OnError => "ErrorPolicy::Skip or ErrorPolicy::DeadLetter",
            Self::StartOver => "start_over",
            Self::Output => "output",
            Self::DataRoot => "file_access (FileAccess::within)",
            Self::MaxConcurrentQueries => "max_concurrent_queries",
            Self::QueueTimeout => "queue_timeout",
            Self::QueryMemory => "query_memory_bytes",
            Self::QueryTimeout => "query_timeout",
            Self::MaxMessageBytes => "max_message_bytes",
            Self::MaxIngestRows => "max_ingest_rows",
            Self::MaxConnections => "max_connections",
            Self::IdleTimeout => "idle_timeout",
            Self::Tokens => "tokens",
            Self::Tls => "tls",
            Self::SetupSql => "statements run on the server's context before serve",
            Self::Key => "key",
            Self::Hidden => "hidden",
            Self::Dim => "dim",
            Self::BatchSize => "batch_size",
            Self::MaxTensorElements => "max_tensor_elements",
            Self::BatchRows => "batch_rows",
            Self::RotateRows => "rotation.rows",
            Self::Exclude => "exclude",
            Self::Columns => "columns",
        }
    }

    /// The name on the `tabssl` command line.
    #[must_use]
    pub fn command_line_name(self) -> &'static str {
        match self {
            Self::MaxRecordBytes => "--max-record-bytes",
            Self::MaxJsonDepth => "--max-json-depth",
            Self::Schema => "--schema FILE",
            Self::OnError => "--on-error skip or --on-error dead-letter FILE",
            Self::StartOver => "--start-over",
            Self::Output => "--output",
            Self::DataRoot => "--data-root DIR",
            Self::MaxConcurrentQueries => "--max-concurrent-queries",
            Self::QueueTimeout => "--queue-timeout",
            Self::QueryMemory => "--query-memory",
            Self::QueryTimeout => "--query-timeout",
            Self::MaxMessageBytes => "--max-message-bytes",
            Self::MaxIngestRows => "--max-ingest-rows",
            Self::MaxConnections => "--max-connections",
            Self::IdleTimeout => "--idle-timeout",
            Self::Tokens => "--token-file or TABSSL_TOKEN",
            Self::Tls => "--tls-cert and --tls-key",
            Self::SetupSql => "--sql-file",
            Self::Key => "--key",
            Self::Hidden => "--hidden",
            Self::Dim => "--dim",
            Self::BatchSize => "--batch-size",
            Self::MaxTensorElements => "--max-tensor-elements",
            Self::BatchRows => "--batch-rows",
            Self::RotateRows => "--rotate-rows",
            Self::Exclude => "--exclude",
            Self::Columns => "--columns",
        }
    }

    /// The name in the spelling the front end chose.
    #[must_use]
    pub fn name(self) -> &'static str {
        match spelling() {
            Spelling::Library => self.library_name(),
            Spelling::CommandLine => self.command_line_name(),
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How messages spell a [`Setting`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// Field and keyword names: `max_record_bytes`.
    Library,
    /// Flags of the `tabssl` command line: `--max-record-bytes`.
    CommandLine,
}

static COMMAND_LINE: AtomicBool = AtomicBool::new(false);

/// Chooses how this process's messages spell settings (the front end calls it once).
pub fn set_spelling(spelling: Spelling) {
    COMMAND_LINE.store(spelling == Spelling::CommandLine, Ordering::Relaxed);
}

/// The spelling this process's messages use.
#[must_use]
pub fn spelling() -> Spelling {
    if COMMAND_LINE.load(Ordering::Relaxed) {
        Spelling::CommandLine
    } else {
        Spelling::Library
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_is_spelled_for_the_front_end() {
        assert_eq!(spelling(), Spelling::Library, "the library spelling is the default");
        assert_eq!(Setting::MaxRecordBytes.to_string(), "max_record_bytes");
        assert_eq!(Setting::MaxRecordBytes.command_line_name(), "--max-record-bytes");
        assert_eq!(Setting::QueryMemory.library_name(), "query_memory_bytes");
    }
}
