//! Threat detection for Palisade: one rule engine judges every event source.
//!
//! Sources (the Kubernetes audit log today, the node sensor next) normalise what they read into
//! types that implement [`event::Event`]; rules written in YAML are compiled once against the
//! source's [`event::EventSchema`], indexed, and evaluated per event; matches become alerts that
//! are aggregated and written as JSON or CEF.

pub mod alert;
pub mod audit;
pub mod builtin;
pub mod engine;
pub mod event;
pub mod json_event;
pub mod mitre;
pub mod node;
pub mod path;
pub mod rule;
pub mod value;
// part serve
pub mod generate;
pub mod pipeline;
#[cfg(feature = "server")]
pub mod server;
