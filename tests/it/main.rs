//! Integration tests, compiled into one binary so the dependency tree links once.

mod bad_cli;
mod bad_models;
mod bad_sql;
mod cli;
mod common;
mod concurrency;
mod corrupt;
mod corrupt_adult;
mod determinism;
mod embed;
mod errors;
mod export;
mod library;
mod pretrain;
mod provider;
mod sql_files;
mod stream;
mod stream_bad_input;
mod synthetic;
