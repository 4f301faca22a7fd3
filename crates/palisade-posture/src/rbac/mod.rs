//! RBAC analysis: the effective permissions of every subject (users, groups, service accounts)
//! across Roles, ClusterRoles (aggregation resolved) and their bindings ([`RbacIndex`]), and
//! findings for the dangerous ones ([`CHECKS`]).

mod checks;
mod index;
#[cfg(test)]
pub(crate) mod tests;

pub use checks::{
    CHECKS, check, check_with_index, dangerous_capabilities, grant_evidence, is_system_subject,
};
pub use index::{
    ANONYMOUS, AUTHENTICATED, Grant, MASTERS, RBAC_GROUP, RbacIndex, RoleInfo, Rule,
    SERVICE_ACCOUNTS, Subject, SubjectKind, UNAUTHENTICATED, bootstrap_cluster_roles,
};
