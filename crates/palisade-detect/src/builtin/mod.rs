//! The built-in detection rules, compiled into the binary so `palisade detect` works without any
//! rules directory and users override them by id from their own files.
//!
//! The YAML sources live in `src/builtin/audit/` and `src/builtin/node/`, one file per theme;
//! `00-common.yaml` holds the lists and macros the others share and comes first.

use crate::audit::AuditSchema;
use crate::node::NodeSchema;
use crate::rule::{RuleError, RuleSet, RuleSource};

/// The built-in audit rule files: (file name, YAML text), in load order.
const AUDIT_FILES: &[(&str, &str)] = &[
    ("00-common.yaml", include_str!("audit/00-common.yaml")),
    ("workloads.yaml", include_str!("audit/workloads.yaml")),
    ("exposure.yaml", include_str!("audit/exposure.yaml")),
    ("rbac.yaml", include_str!("audit/rbac.yaml")),
    ("access.yaml", include_str!("audit/access.yaml")),
    ("tampering.yaml", include_str!("audit/tampering.yaml")),
    ("stateful.yaml", include_str!("audit/stateful.yaml")),
];

/// The built-in audit rule sources, named `builtin:<file>`, for [`RuleSet::load`] or
/// [`RuleSet::from_dirs`] (user rules are loaded after them and override by id).
pub fn audit_rule_sources() -> Vec<RuleSource> {
    AUDIT_FILES
        .iter()
        .map(|(name, text)| RuleSource {
            name: format!("builtin:{name}"),
            text: (*text).to_string(),
        })
        .collect()
}

/// The built-in audit rules, compiled. An error here is a bug in a built-in file (the tests load
/// them), never a user mistake.
pub fn audit_rules() -> Result<RuleSet<AuditSchema>, RuleError> {
    RuleSet::load(&audit_rule_sources())
}

/// The built-in node rule files (source `node`): (file name, YAML text), in load order.
const NODE_FILES: &[(&str, &str)] = &[
    ("00-common.yaml", include_str!("node/00-common.yaml")),
    ("execution.yaml", include_str!("node/execution.yaml")),
    ("credentials.yaml", include_str!("node/credentials.yaml")),
    ("network.yaml", include_str!("node/network.yaml")),
    ("evasion.yaml", include_str!("node/evasion.yaml")),
    ("persistence.yaml", include_str!("node/persistence.yaml")),
    ("escalation.yaml", include_str!("node/escalation.yaml")),
    ("mining.yaml", include_str!("node/mining.yaml")),
    ("tools.yaml", include_str!("node/tools.yaml")),
];

/// The built-in node rule sources, named `builtin:node/<file>`, for [`RuleSet::load`] or
/// [`RuleSet::from_dirs`] (user rules are loaded after them and override by id).
pub fn node_rule_sources() -> Vec<RuleSource> {
    NODE_FILES
        .iter()
        .map(|(name, text)| RuleSource {
            name: format!("builtin:node/{name}"),
            text: (*text).to_string(),
        })
        .collect()
}

/// The built-in node rules, compiled. An error here is a bug in a built-in file (the tests load
/// them), never a user mistake.
pub fn node_rules() -> Result<RuleSet<NodeSchema>, RuleError> {
    RuleSet::load(&node_rule_sources())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_node_file_is_listed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/builtin/node");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("builtin node rule dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = NODE_FILES.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(
            on_disk, listed,
            "a YAML file under src/builtin/node is not embedded"
        );
    }

    #[test]
    fn builtin_node_rules_load_and_are_all_node_rules() {
        let rules = node_rules().expect("built-in node rules compile");
        assert!(rules.rules().len() >= 60, "{} rules", rules.rules().len());
        assert!(rules.rules().iter().all(|r| r.source == "node"));
        // The audit rule set ignores them (other source) and vice versa.
        let mut both = audit_rule_sources();
        both.extend(node_rule_sources());
        let audit: RuleSet<AuditSchema> = RuleSet::load(&both).expect("mixed sources load");
        assert_eq!(
            audit.rules().len(),
            audit_rules().expect("audit").rules().len()
        );
    }

    #[test]
    fn every_builtin_file_is_listed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/builtin/audit");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("builtin rule dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = AUDIT_FILES.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(
            on_disk, listed,
            "a YAML file under src/builtin/audit is not embedded"
        );
    }

    #[test]
    fn builtin_rules_load() {
        let rules = audit_rules().expect("built-in rules compile");
        assert!(rules.rules().len() >= 40, "{} rules", rules.rules().len());
    }
}
