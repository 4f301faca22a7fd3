//! Palisade's posture engine: which Kubernetes objects are misconfigured, which subjects hold
//! dangerous permissions, how the control plane is set up, and which chains of them an attacker
//! could walk.
//!
//! Everything here is a pure function of an [`Inventory`] and a [`PostureConfig`]: no I/O, so the
//! same checks run on manifests in CI, on a live cluster snapshot and, through the policy bundle,
//! at admission.

pub mod check;
pub mod config;
pub mod controlplane;
pub mod exceptions;
pub mod exposure;
pub mod graph;
pub mod namespace;
pub mod net;
pub mod pod;
pub mod quantity;
pub mod rbac;
pub mod synthetic;
pub mod workload;

pub use check::{Category, CheckInfo, Evidence, PostureFinding};
pub use config::{ConfigError, PostureConfig};
pub use palisade_kube::{Inventory, KubeObject, SourceLocation};

/// Every check Palisade knows, for `palisade checks` and documentation.
pub fn all_checks() -> Vec<&'static CheckInfo> {
    workload::CHECKS
        .iter()
        .chain(exposure::CHECKS)
        .chain(namespace::CHECKS)
        .chain(rbac::CHECKS)
        .chain(controlplane::CHECKS)
        .chain(graph::CHECKS)
        .collect()
}

/// Runs every enabled check on an inventory (attack paths are separate: see [`graph`]).
pub fn analyze(inventory: &Inventory, config: &PostureConfig) -> Vec<PostureFinding> {
    let rbac = rbac::RbacIndex::build(inventory);
    let exposures = net::ExposureIndex::build(inventory);
    analyze_with(inventory, config, &rbac, &exposures)
}

/// [`analyze`] with the RBAC and exposure indexes the caller builds once and also hands to
/// [`graph::SecurityGraph::build_with_exposures`].
pub fn analyze_with(
    inventory: &Inventory,
    config: &PostureConfig,
    rbac: &rbac::RbacIndex,
    exposures: &net::ExposureIndex,
) -> Vec<PostureFinding> {
    let mut findings = workload::check(inventory, config);
    findings.extend(exposure::check_with_index(inventory, config, exposures));
    findings.extend(namespace::check(inventory, config));
    findings.extend(rbac::check_with_index(inventory, rbac, config));
    findings.extend(controlplane::check(inventory, config));
    config.apply_overrides(&mut findings);
    findings.sort_by(PostureFinding::order);
    findings
}
