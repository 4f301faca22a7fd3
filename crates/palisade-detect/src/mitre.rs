//! MITRE ATT&CK (Enterprise and Containers matrices): the names of the tactic and technique ids
//! rules cite, so alerts carry both and a rule citing an unknown id fails to load.

/// ATT&CK tactics by id.
pub const TACTICS: &[(&str, &str)] = &[
    ("TA0001", "Initial Access"),
    ("TA0002", "Execution"),
    ("TA0003", "Persistence"),
    ("TA0004", "Privilege Escalation"),
    ("TA0005", "Defense Evasion"),
    ("TA0006", "Credential Access"),
    ("TA0007", "Discovery"),
    ("TA0008", "Lateral Movement"),
    ("TA0009", "Collection"),
    ("TA0010", "Exfiltration"),
    ("TA0011", "Command and Control"),
    ("TA0040", "Impact"),
    ("TA0042", "Resource Development"),
    ("TA0043", "Reconnaissance"),
];

/// ATT&CK techniques and sub-techniques by id (extend as rules cite more). Sub-techniques carry
/// their parent's name first, as ATT&CK displays them ("Parent: Sub-technique").
pub const TECHNIQUES: &[(&str, &str)] = &[
    ("T1005", "Data from Local System"),
    ("T1040", "Network Sniffing"),
    ("T1046", "Network Service Discovery"),
    ("T1053", "Scheduled Task/Job"),
    (
        "T1053.007",
        "Scheduled Task/Job: Container Orchestration Job",
    ),
    ("T1069", "Permission Groups Discovery"),
    ("T1070", "Indicator Removal"),
    ("T1078", "Valid Accounts"),
    ("T1078.001", "Valid Accounts: Default Accounts"),
    ("T1078.004", "Valid Accounts: Cloud Accounts"),
    ("T1090", "Proxy"),
    ("T1090.003", "Proxy: Multi-hop Proxy"),
    ("T1098", "Account Manipulation"),
    (
        "T1098.006",
        "Account Manipulation: Additional Container Cluster Roles",
    ),
    ("T1133", "External Remote Services"),
    ("T1190", "Exploit Public-Facing Application"),
    ("T1204", "User Execution"),
    ("T1204.003", "User Execution: Malicious Image"),
    ("T1496", "Resource Hijacking"),
    ("T1528", "Steal Application Access Token"),
    ("T1546", "Event Triggered Execution"),
    ("T1550", "Use Alternate Authentication Material"),
    (
        "T1550.001",
        "Use Alternate Authentication Material: Application Access Token",
    ),
    ("T1552", "Unsecured Credentials"),
    ("T1552.007", "Unsecured Credentials: Container API"),
    ("T1557", "Adversary-in-the-Middle"),
    ("T1609", "Container Administration Command"),
    ("T1610", "Deploy Container"),
    ("T1611", "Escape to Host"),
    ("T1613", "Container and Resource Discovery"),
    ("T1649", "Steal or Forge Authentication Certificates"),
];

/// The name of a tactic id (`TA0004`), if known.
pub fn tactic_name(id: &str) -> Option<&'static str> {
    TACTICS.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// The name of a technique or sub-technique id (`T1611`, `T1078.001`), if known.
pub fn technique_name(id: &str) -> Option<&'static str> {
    TECHNIQUES.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for (id, name) in TACTICS {
            assert!(id.starts_with("TA") && id.len() == 6, "{id}");
            assert!(!name.is_empty());
            assert!(seen.insert(*id), "duplicate {id}");
        }
        for (id, name) in TECHNIQUES {
            let base = id.split('.').next().unwrap_or(id);
            assert!(base.starts_with('T') && base.len() == 5, "{id}");
            assert!(seen.insert(*id), "duplicate {id}");
            if let Some((parent, _)) = id.split_once('.') {
                let parent_name =
                    technique_name(parent).unwrap_or_else(|| panic!("{id} without parent"));
                assert!(
                    name.starts_with(&format!("{parent_name}: ")),
                    "{id}: {name}"
                );
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(tactic_name("TA0004"), Some("Privilege Escalation"));
        assert_eq!(technique_name("T1611"), Some("Escape to Host"));
        assert_eq!(
            technique_name("T1552.007"),
            Some("Unsecured Credentials: Container API")
        );
        assert_eq!(technique_name("T9999"), None);
    }
}
