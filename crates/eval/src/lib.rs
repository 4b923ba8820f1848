//! Downstream evaluation: do an encoder's embeddings help when labels are scarce?
//!
//! `dataset` loads a training and a test split through SQL (raw features, labels, and
//! `embed` outputs of registry models), `protocol` runs the few-label protocol with the
//! `downstream` classifiers and renders the `metrics` as markdown and a `plot`;
//! `stack` blends trees on the raw columns with the models on the embeddings, and
//! `choice` says, budget by budget, what to use and whether the embeddings help.

pub mod choice;
pub(crate) mod dataset;
pub(crate) mod downstream;
pub(crate) mod gbdt;
pub(crate) mod job;
pub(crate) mod matrix;
pub(crate) mod metrics;
pub(crate) mod plot;
pub(crate) mod png;
pub(crate) mod protocol;
pub(crate) mod stack;

pub use dataset::model_inputs;
pub use downstream::Classifier;
pub use job::{EvaluateJob, run_evaluation};
pub use protocol::{Budget, Cell, Kind, ProtocolConfig, Representation, run_protocol};
