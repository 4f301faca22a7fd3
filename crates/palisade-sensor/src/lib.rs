//! Palisade's node sensor: eBPF programs watch processes, network and files on a node; records
//! are attributed to their container and pod, judged by `palisade-detect`'s rule engine with the
//! node rules, and published as batches of events and alerts.
//!
//! Data flow: [`kernel`] (ring buffer → [`kernel::event::KernelEvent`]) → [`attrib`] (cgroup →
//! container → pod, process lineage → [`palisade_detect::node::NodeEvent`]) → node rules →
//! [`publish`] (backend over HTTPS, or JSON lines to a file or stdout; disk spool; metrics).
//! [`agent`] wires them into the `palisade sensor` loop.

pub mod agent;
pub mod attrib;
mod https;
pub mod kernel;
pub mod publish;
