//! `tabssl serve` in-process on 127.0.0.1:0, driven by arrow-flight's clients: queries,
//! prepared statements, ingest, catalogs and `DoExchange` equal the local results;
//! tokens, TLS and file confinement hold; limits answer with the documented errors; bad
//! input never takes the server down.

mod bad_input;
mod exchange;
mod harness;
mod load;
mod queries;
mod rollout;
mod security;
