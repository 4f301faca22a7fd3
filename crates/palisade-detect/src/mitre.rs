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
    ("T1003", "OS Credential Dumping"),
    (
        "T1003.008",
        "OS Credential Dumping: /etc/passwd and /etc/shadow",
    ),
    ("T1005", "Data from Local System"),
    ("T1014", "Rootkit"),
    ("T1016", "System Network Configuration Discovery"),
    ("T1018", "Remote System Discovery"),
    ("T1021", "Remote Services"),
    ("T1021.004", "Remote Services: SSH"),
    ("T1027", "Obfuscated Files or Information"),
    (
        "T1027.004",
        "Obfuscated Files or Information: Compile After Delivery",
    ),
    (
        "T1027.010",
        "Obfuscated Files or Information: Command Obfuscation",
    ),
    ("T1033", "System Owner/User Discovery"),
    ("T1036", "Masquerading"),
    (
        "T1036.005",
        "Masquerading: Match Legitimate Resource Name or Location",
    ),
    ("T1036.008", "Masquerading: Masquerade File Type"),
    ("T1037", "Boot or Logon Initialization Scripts"),
    (
        "T1037.004",
        "Boot or Logon Initialization Scripts: RC Scripts",
    ),
    ("T1040", "Network Sniffing"),
    ("T1041", "Exfiltration Over C2 Channel"),
    ("T1046", "Network Service Discovery"),
    ("T1048", "Exfiltration Over Alternative Protocol"),
    ("T1053", "Scheduled Task/Job"),
    ("T1053.003", "Scheduled Task/Job: Cron"),
    (
        "T1053.007",
        "Scheduled Task/Job: Container Orchestration Job",
    ),
    ("T1055", "Process Injection"),
    ("T1055.008", "Process Injection: Ptrace System Calls"),
    ("T1057", "Process Discovery"),
    ("T1059", "Command and Scripting Interpreter"),
    ("T1059.004", "Command and Scripting Interpreter: Unix Shell"),
    ("T1059.006", "Command and Scripting Interpreter: Python"),
    ("T1059.007", "Command and Scripting Interpreter: JavaScript"),
    ("T1068", "Exploitation for Privilege Escalation"),
    ("T1069", "Permission Groups Discovery"),
    ("T1070", "Indicator Removal"),
    (
        "T1070.002",
        "Indicator Removal: Clear Linux or Mac System Logs",
    ),
    ("T1070.003", "Indicator Removal: Clear Command History"),
    ("T1070.006", "Indicator Removal: Timestomp"),
    ("T1071", "Application Layer Protocol"),
    ("T1071.004", "Application Layer Protocol: DNS"),
    ("T1078", "Valid Accounts"),
    ("T1078.001", "Valid Accounts: Default Accounts"),
    ("T1078.004", "Valid Accounts: Cloud Accounts"),
    ("T1082", "System Information Discovery"),
    ("T1083", "File and Directory Discovery"),
    ("T1087", "Account Discovery"),
    ("T1090", "Proxy"),
    ("T1090.003", "Proxy: Multi-hop Proxy"),
    ("T1095", "Non-Application Layer Protocol"),
    ("T1098", "Account Manipulation"),
    ("T1098.004", "Account Manipulation: SSH Authorized Keys"),
    (
        "T1098.006",
        "Account Manipulation: Additional Container Cluster Roles",
    ),
    ("T1105", "Ingress Tool Transfer"),
    ("T1106", "Native API"),
    ("T1110", "Brute Force"),
    ("T1110.002", "Brute Force: Password Cracking"),
    ("T1113", "Screen Capture"),
    ("T1133", "External Remote Services"),
    ("T1136", "Create Account"),
    ("T1136.001", "Create Account: Local Account"),
    ("T1140", "Deobfuscate/Decode Files or Information"),
    ("T1190", "Exploit Public-Facing Application"),
    ("T1203", "Exploitation for Client Execution"),
    ("T1204", "User Execution"),
    ("T1204.003", "User Execution: Malicious Image"),
    ("T1219", "Remote Access Tools"),
    ("T1222", "File and Directory Permissions Modification"),
    (
        "T1222.002",
        "File and Directory Permissions Modification: Linux and Mac File and Directory Permissions Modification",
    ),
    ("T1485", "Data Destruction"),
    ("T1486", "Data Encrypted for Impact"),
    ("T1489", "Service Stop"),
    ("T1496", "Resource Hijacking"),
    ("T1498", "Network Denial of Service"),
    ("T1499", "Endpoint Denial of Service"),
    ("T1505", "Server Software Component"),
    ("T1505.003", "Server Software Component: Web Shell"),
    ("T1528", "Steal Application Access Token"),
    ("T1531", "Account Access Removal"),
    ("T1543", "Create or Modify System Process"),
    (
        "T1543.002",
        "Create or Modify System Process: Systemd Service",
    ),
    ("T1546", "Event Triggered Execution"),
    (
        "T1546.004",
        "Event Triggered Execution: Unix Shell Configuration Modification",
    ),
    ("T1547", "Boot or Logon Autostart Execution"),
    (
        "T1547.006",
        "Boot or Logon Autostart Execution: Kernel Modules and Extensions",
    ),
    ("T1548", "Abuse Elevation Control Mechanism"),
    (
        "T1548.003",
        "Abuse Elevation Control Mechanism: Sudo and Sudo Caching",
    ),
    ("T1550", "Use Alternate Authentication Material"),
    (
        "T1550.001",
        "Use Alternate Authentication Material: Application Access Token",
    ),
    ("T1552", "Unsecured Credentials"),
    ("T1552.001", "Unsecured Credentials: Credentials In Files"),
    ("T1552.003", "Unsecured Credentials: Bash History"),
    ("T1552.004", "Unsecured Credentials: Private Keys"),
    (
        "T1552.005",
        "Unsecured Credentials: Cloud Instance Metadata API",
    ),
    ("T1552.007", "Unsecured Credentials: Container API"),
    ("T1557", "Adversary-in-the-Middle"),
    ("T1562", "Impair Defenses"),
    ("T1562.001", "Impair Defenses: Disable or Modify Tools"),
    (
        "T1562.003",
        "Impair Defenses: Impair Command History Logging",
    ),
    (
        "T1562.012",
        "Impair Defenses: Disable or Modify Linux Audit System",
    ),
    ("T1564", "Hide Artifacts"),
    ("T1564.001", "Hide Artifacts: Hidden Files and Directories"),
    ("T1567", "Exfiltration Over Web Service"),
    ("T1570", "Lateral Tool Transfer"),
    ("T1571", "Non-Standard Port"),
    ("T1572", "Protocol Tunneling"),
    ("T1574", "Hijack Execution Flow"),
    (
        "T1574.006",
        "Hijack Execution Flow: Dynamic Linker Hijacking",
    ),
    ("T1595", "Active Scanning"),
    ("T1609", "Container Administration Command"),
    ("T1610", "Deploy Container"),
    ("T1611", "Escape to Host"),
    ("T1613", "Container and Resource Discovery"),
    ("T1620", "Reflective Code Loading"),
    ("T1649", "Steal or Forge Authentication Certificates"),
    ("T1556", "Modify Authentication Process"),
    ("T1554", "Compromise Host Software Binary"),
    ("T1612", "Build Image on Host"),
    ("T1588", "Obtain Capabilities"),
    ("T1588.002", "Obtain Capabilities: Tool"),
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
