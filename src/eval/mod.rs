//! Downstream evaluation: do an encoder's embeddings help when labels are scarce?
//!
//! [`dataset`] loads a training and a test split through SQL (raw features, labels, and
//! `embed` outputs of registry models), [`protocol`] runs the few-label protocol with the
//! [`downstream`] classifiers and renders the [`metrics`] as markdown and a [`plot`];
//! [`stack`] blends trees on the raw columns with the models on the embeddings, and
//! [`choice`] says, budget by budget, what to use and whether the embeddings help.

pub mod choice;
pub mod dataset;
pub mod downstream;
pub mod gbdt;
pub mod matrix;
pub mod metrics;
pub mod plot;
pub mod png;
pub mod protocol;
pub mod stack;

pub use downstream::Classifier;
pub use protocol::{Budget, Cell, Kind, ProtocolConfig, Representation, run_protocol};
