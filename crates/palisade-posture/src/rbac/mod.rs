//! RBAC analysis: the effective permissions of every subject (users, groups, service accounts)
//! across Roles, ClusterRoles (aggregation resolved) and their bindings, and findings for the
//! dangerous ones.

mod index;

pub use index::{Grant, RbacIndex, RoleInfo, Rule, Subject, SubjectKind};

use crate::check::{CheckInfo, PostureFinding};
use crate::config::PostureConfig;
use palisade_kube::Inventory;

/// The checks of this module.
pub const CHECKS: &[CheckInfo] = &[];

/// Runs this module's checks.
pub fn check(_inventory: &Inventory, _config: &PostureConfig) -> Vec<PostureFinding> {
    Vec::new()
}
