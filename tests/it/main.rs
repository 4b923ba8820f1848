//! Integration tests, compiled into one binary so the dependency tree links once.

mod bad_cli;
mod bad_models;
mod bad_sql;
mod cli;
mod common;
mod concurrency;
mod corrupt_adult;
mod determinism;
mod distributed;
mod embed;
mod export;
mod library;
mod model_rollout;
mod pretrain;
mod serve;
mod serve_python;
mod slt;
mod stream;
mod stream_bad_input;
mod stream_crash;
mod stream_decode_threads;
mod synthetic;
