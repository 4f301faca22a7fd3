//! The security graph: Internet exposure → workloads → containers → images → vulnerabilities, and
//! workloads → service accounts → dangerous permissions → secrets, plus host access to nodes.
//! Built-in attack paths ([`attack_paths`]) walk it; `palisade explore` queries it ([`query`]).

pub mod build;
pub mod cidr;
pub mod dot;
pub mod model;
pub mod paths;
pub mod query;
pub mod vulns;

pub use model::{
    Edge, EdgeId, EdgeKind, Node, NodeId, NodeKind, NodeRef, Origin, PropValue, SecurityGraph,
};
pub use paths::{AttackPath, CHECKS, PathStep, attack_paths, path_findings};
pub use query::{Cell, NamedQuery, Query, QueryError, QueryResult};
pub use vulns::{ImageVulns, ScanReport, VulnError, VulnFinding, VulnIndex};
