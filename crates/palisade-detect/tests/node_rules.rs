//! Every built-in node rule against its fixtures (tests/fixtures/node/rules/<RULE_ID>.json): each
//! `alert` case must make the rule fire, each `quiet` case (a near miss) must not. Cases run
//! through a fresh engine loaded with all built-in node rules, so the fixtures also show which
//! other rules a behaviour trips. The benign corpus (tests/fixtures/node/benign.json: kubelet,
//! containerd, runc, probes, `kubectl exec` shells, applications) must raise nothing at all.

use palisade_detect::builtin::{node_rule_sources, node_rules};
use palisade_detect::engine::{Engine, EngineConfig, Match};
use palisade_detect::node::{NodeEvent, NodeSchema};
use palisade_detect::rule::RuleSet;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The `K8S.NODE_*` ids of ../shared/catalog/alerts.md whose signal the sensor collects: each
/// must be a built-in rule.
const CATALOG_NODE_IDS: &[&str] = &[
    "K8S.NODE_AuditDLoggingDisabled",
    "K8S.NODE_BashProfileAccess",
    "K8S.NODE_CommonBot",
    "K8S.NODE_ContainerSSH",
    "K8S.NODE_CronJobAccess",
    "K8S.NODE_CryptoCoinMinerArtifacts",
    "K8S.NODE_CryptoCoinMinerDownload",
    "K8S.NODE_CryptoCoinMinerExecution",
    "K8S.NODE_DataEgressArtifacts",
    "K8S.NODE_DigitalCurrencyMining",
    "K8S.NODE_DownloadAndRunCombo",
    "K8S.NODE_EICAR",
    "K8S.NODE_ExecuteHiddenFile",
    "K8S.NODE_ExploitAttempt",
    "K8S.NODE_ExposedDocker",
    "K8S.NODE_FairwareMalware",
    "K8S.NODE_HistoryFileCleared",
    "K8S.NODE_ImageBuildOnNode",
    "K8S.NODE_ImdsCall",
    "K8S.NODE_KnownLinuxAttackTool",
    "K8S.NODE_KnownLinuxCredentialAccessTool",
    "K8S.NODE_KnownLinuxDDoSToolkit",
    "K8S.NODE_KnownLinuxScreenshotTool",
    "K8S.NODE_KubeConfigAccess",
    "K8S.NODE_KubernetesAPI",
    "K8S.NODE_KubernetesDashboard",
    "K8S.NODE_LinuxBackdoorArtifact",
    "K8S.NODE_LinuxRansomwareArtifacts",
    "K8S.NODE_LinuxReconnaissance",
    "K8S.NODE_LinuxSuspiciousActivity",
    "K8S.NODE_MinerInContainerImage",
    "K8S.NODE_MismatchedScriptFeatures",
    "K8S.NODE_MitreCalderaTools",
    "K8S.NODE_NamespaceCreation",
    "K8S.NODE_NewSingleUserModeStartupScript",
    "K8S.NODE_NewSudoerAccount",
    "K8S.NODE_OverridingCommonFiles",
    "K8S.NODE_PrivilegedContainerArtifacts",
    "K8S.NODE_PrivilegedExecutionInContainer",
    "K8S.NODE_ReadingHistoryFile",
    "K8S.NODE_ReconnaissanceArtifactsBurst",
    "K8S.NODE_RemoteEncodedPythonDownload",
    "K8S.NODE_ReverseShell",
    "K8S.NODE_ScriptGeneratedFromCommandLine",
    "K8S.NODE_SharedObjectLoadedAsKM",
    "K8S.NODE_ShellcodeOnCommandLine",
    "K8S.NODE_SshKeyAccess",
    "K8S.NODE_SuspectCompilation",
    "K8S.NODE_SuspectConnection",
    "K8S.NODE_SuspectDownload",
    "K8S.NODE_SuspectDownloadArtifacts",
    "K8S.NODE_SuspectExecutablePath",
    "K8S.NODE_SuspectNohup",
    "K8S.NODE_SuspectPasswordChange",
    "K8S.NODE_SuspectPasswordFileAccess",
    "K8S.NODE_SuspectPortForwarding",
    "K8S.NODE_SuspectPostGreAdministration",
    "K8S.NODE_SuspectProcessTermination",
    "K8S.NODE_SuspectUserAddition",
    "K8S.NODE_SystemLogRemoval",
    "K8S.NODE_SystemLogRemovalBurst",
    "K8S.NODE_TimerServiceDisabled",
    "K8S.NODE_TimestampTampering",
    "K8S.NODE_Webshell",
    "K8S.NODE_XorgExploit",
];

/// Catalog node ids deliberately not covered, with the reason (also listed in docs/node-rules.md).
const NOT_COVERED: &[(&str, &str)] = &[
    (
        "K8S.NODE_DriftBlocked",
        "the sensor observes and alerts; it does not block executions (no enforcement hook)",
    ),
    (
        "K8S.NODE_MalwareBlocked",
        "the sensor does not block, and malware verdicts need file-content scanning",
    ),
];

/// The newer alert names of the catalog (no published ids) and the rule that covers each.
const NEWER_NAMES: &[(&str, &str)] = &[
    ("Possible Web Shell activity detected", "K8S.NODE_Webshell"),
    (
        "Suspicious Kubernetes service account operation detected",
        "K8S.NODE_ServiceAccountOperation",
    ),
    (
        "Network scanning tool detected",
        "K8S.NODE_NetworkScanningTool",
    ),
    (
        "Sensitive files access detected",
        "K8S.NODE_SensitiveFileAccess",
    ),
    (
        "Possible secret reconnaissance detected",
        "K8S.NODE_SecretReconnaissance",
    ),
    (
        "Suspicious access to workload identity token or service account token detected",
        "K8S.NODE_ServiceAccountTokenAccess",
    ),
    (
        "Kubernetes CPU optimization detected",
        "K8S.NODE_CpuOptimization",
    ),
    (
        "Command within a container accessed ld.so.preload",
        "K8S.NODE_LdSoPreloadAccess",
    ),
    (
        "Possible Crypto miners download detected",
        "K8S.NODE_CryptoCoinMinerDownload",
    ),
    (
        "A drift binary detected executing in the container",
        "K8S.NODE_BinaryDrift",
    ),
    (
        "Potential Backdoor Utilities or Proxy Binaries Detected",
        "K8S.NODE_BackdoorProxyUtilities",
    ),
    (
        "Potential backdoor installations from running processes",
        "K8S.NODE_BackdoorInstallation",
    ),
    (
        "Possible executable detected in a command line, encoded in Base64",
        "K8S.NODE_Base64EncodedExecutable",
    ),
    (
        "Potential base64 encoded shell script execution",
        "K8S.NODE_Base64ShellScript",
    ),
    (
        "Suspicious Cron operations in command line detected",
        "K8S.NODE_SuspiciousCronOperation",
    ),
    (
        "Kubernetes crypto-miner process kills detected",
        "K8S.NODE_MinerProcessKill",
    ),
    (
        "Possible access to a cryptocurrency mining pool detected",
        "K8S.NODE_MiningPoolAccess",
    ),
    (
        "Possible web service exploitation by using path traversal",
        "K8S.NODE_PathTraversalExploitation",
    ),
    (
        "Detected possible disabling of security tools",
        "K8S.NODE_DisableSecurityTools",
    ),
    (
        "Suspicious file attribute changes using chattr detected",
        "K8S.NODE_ChattrAttributeChange",
    ),
    (
        "Possible Impairing of Command History Logging",
        "K8S.NODE_ImpairHistoryLogging",
    ),
    ("Usage of OAST domain detected", "K8S.NODE_OastDomain"),
    (
        "Possible exploitation of java based program has been detected",
        "K8S.NODE_JavaProgramExploitation",
    ),
    (
        "Suspicious Proxyware or Traffic monetizers detected in command line",
        "K8S.NODE_ProxywareMonetizer",
    ),
    (
        "Potential React2Shell command injection detected",
        "K8S.NODE_React2ShellInjection",
    ),
    (
        "Detected possible tampering of security configurations",
        "K8S.NODE_SecurityConfigTampering",
    ),
    (
        "Detected suspicious termination of security process",
        "K8S.NODE_SuspectProcessTermination",
    ),
    (
        "Sha1-Hulud Campaign Detected: Possible command injection to exfiltrate credentials",
        "K8S.NODE_CredentialExfiltration",
    ),
    (
        "Suspicious PHP execution detected",
        "K8S.NODE_SuspiciousPhpExecution",
    ),
    (
        "Process Invocation By a DB Process Detected",
        "K8S.NODE_DbProcessInvocation",
    ),
    (
        "Suspicious Netcat activity detected on a Kubernetes node",
        "K8S.NODE_NetcatActivity",
    ),
    (
        "Permissions to run a binary from a suspicious folder has been granted after download",
        "K8S.NODE_ChmodAfterDownload",
    ),
    (
        "A command line executed within a container contains a suspicious DNS",
        "K8S.NODE_SuspiciousDnsInCommandLine",
    ),
    (
        "A command line executed within a container contains a suspicious IP address",
        "K8S.NODE_SuspiciousIpInCommandLine",
    ),
];

/// Newer names not covered, with the reason.
const NEWER_NOT_COVERED: &[(&str, &str)] = &[
    (
        "Blocked binary drift executing in the container",
        "the sensor does not block executions",
    ),
    (
        "Microsoft Defender for Cloud Kubernetes Malware execution detected",
        "needs file hashes or content scanning against a malware database, which the sensor does not do",
    ),
    (
        "Microsoft Defender for Cloud Kubernetes Malware execution blocked",
        "the sensor does not block, nor scan file contents",
    ),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    rule: String,
    alert: Vec<Case>,
    quiet: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    event: Option<NodeEvent>,
    events: Option<Vec<NodeEvent>>,
}

impl Case {
    fn events(&self) -> Vec<&NodeEvent> {
        self.event
            .iter()
            .chain(self.events.iter().flatten())
            .collect()
    }
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/node")
}

fn load_fixtures() -> Vec<(PathBuf, Fixture)> {
    let dir = fixture_dir().join("rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("fixture readable");
            let fixture: Fixture =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, fixture)
        })
        .collect()
}

fn rules() -> Arc<RuleSet<NodeSchema>> {
    Arc::new(node_rules().expect("built-in node rules load"))
}

/// Rule ids fired by a fresh engine over `events`, in order.
fn fired(rules: &Arc<RuleSet<NodeSchema>>, events: &[&NodeEvent]) -> Vec<String> {
    let mut engine = Engine::new(Arc::clone(rules), EngineConfig::default());
    let mut matches: Vec<Match> = Vec::new();
    for e in events {
        engine.evaluate(*e, &mut matches);
    }
    matches
        .iter()
        .map(|m| rules.rules()[m.rule].id.clone())
        .collect()
}

#[test]
fn every_rule_fires_on_its_fixtures_and_stays_quiet_on_near_misses() {
    let rules = rules();
    let ids: BTreeSet<String> = rules.rules().iter().map(|r| r.id.clone()).collect();
    let fixtures = load_fixtures();
    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    for (path, fx) in &fixtures {
        assert_eq!(
            path.file_stem().and_then(|s| s.to_str()),
            Some(fx.rule.as_str()),
            "fixture file name must be the rule id"
        );
        assert!(
            ids.contains(&fx.rule),
            "fixture for unknown rule {}",
            fx.rule
        );
        assert!(!fx.alert.is_empty(), "{}: no alert case", fx.rule);
        assert!(!fx.quiet.is_empty(), "{}: no near miss", fx.rule);
        covered.insert(fx.rule.clone());
        for case in &fx.alert {
            let got = fired(&rules, &case.events());
            if !got.contains(&fx.rule) {
                failures.push(format!(
                    "{} should fire on {:?}; fired {got:?}",
                    fx.rule, case.name
                ));
            }
        }
        for case in &fx.quiet {
            let got = fired(&rules, &case.events());
            if got.contains(&fx.rule) {
                failures.push(format!("{} should stay quiet on {:?}", fx.rule, case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let missing: Vec<&String> = ids.difference(&covered).collect();
    assert!(missing.is_empty(), "rules without fixtures: {missing:?}");
}

#[test]
fn the_benign_corpus_raises_nothing() {
    let rules = rules();
    let text = std::fs::read_to_string(fixture_dir().join("benign.json")).expect("benign corpus");
    let events: Vec<NodeEvent> = serde_json::from_str(&text).expect("benign corpus parses");
    assert!(events.len() >= 60, "corpus too small: {}", events.len());
    let mut noisy: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &events {
        for id in fired(&rules, &[e]) {
            noisy
                .entry(id)
                .or_default()
                .push(format!("{} {}", e.kind.as_str(), e.process.cmdline));
        }
    }
    // The whole corpus through one engine too (stateful rules see it as one stream).
    let all: Vec<&NodeEvent> = events.iter().collect();
    for id in fired(&rules, &all) {
        noisy
            .entry(id)
            .or_default()
            .push("whole corpus".to_string());
    }
    assert!(noisy.is_empty(), "benign events raised alerts: {noisy:#?}");
}

#[test]
fn every_catalog_node_id_is_a_rule_or_listed_as_not_covered() {
    let rules = rules();
    let ids: BTreeSet<&str> = rules.rules().iter().map(|r| r.id.as_str()).collect();
    for id in CATALOG_NODE_IDS {
        assert!(ids.contains(id), "catalog id {id} has no rule");
    }
    for (id, reason) in NOT_COVERED {
        assert!(
            !ids.contains(id),
            "{id} is listed as not covered but is a rule"
        );
        assert!(!reason.is_empty());
    }
    for (name, id) in NEWER_NAMES {
        assert!(
            ids.contains(id),
            "newer name {name:?} maps to {id}, which is not a rule"
        );
    }
    assert_eq!(CATALOG_NODE_IDS.len() + NOT_COVERED.len(), 67);
    assert_eq!(NEWER_NAMES.len() + NEWER_NOT_COVERED.len(), 37);
    // The documentation lists every rule, every not-covered id and every newer name.
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/node-rules.md"),
    )
    .expect("docs/node-rules.md");
    for id in &ids {
        assert!(
            doc.contains(&format!("`{id}`")),
            "docs/node-rules.md does not list {id}"
        );
    }
    for (id, _) in NOT_COVERED {
        assert!(doc.contains(id), "docs/node-rules.md does not explain {id}");
    }
    for (name, _) in NEWER_NAMES.iter().chain(NEWER_NOT_COVERED) {
        assert!(
            doc.contains(name),
            "docs/node-rules.md does not mention {name:?}"
        );
    }
}

#[test]
fn every_rule_is_described_and_mitre_mapped() {
    let rules = rules();
    for r in rules.rules() {
        assert!(r.id.starts_with("K8S.NODE_"), "{}", r.id);
        assert_eq!(r.source, "node");
        assert!(!r.tactics.is_empty(), "{}: no MITRE tactic", r.id);
        assert!(!r.techniques.is_empty(), "{}: no MITRE technique", r.id);
        assert!(r.description.len() > 60, "{}: description too short", r.id);
        assert!(r.remediation.len() > 30, "{}: remediation too short", r.id);
    }
}

#[test]
fn node_rules_load_from_a_user_directory_and_override_by_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("local.yaml"),
        "lists:\n  node_kubernetes_api_addresses: [\"10.200.0.1\"]\nrules:\n  - {id: K8S.NODE_EICAR, enabled: false}\n",
    )
    .expect("write");
    let rules: RuleSet<NodeSchema> =
        RuleSet::from_dirs(&node_rule_sources(), &[dir.path().to_path_buf()]).expect("loads");
    assert!(rules.position("K8S.NODE_EICAR").is_none());
    let rules = Arc::new(rules);
    let mut event: NodeEvent = serde_json::from_value(serde_json::json!({
        "id": "e1", "event.type": "connect", "node": "n1",
        "process": {"exe": "/usr/bin/curl", "comm": "curl"},
        "container": {"id": "abc", "runtime": "containerd"},
        "net": {"family": "ipv4", "protocol": "tcp", "dst_ip": "10.200.0.1", "dst_port": 443, "direction": "outbound"}
    }))
    .expect("event");
    assert!(fired(&rules, &[&event]).contains(&"K8S.NODE_KubernetesAPI".to_string()));
    event.net.as_mut().expect("net").dst_ip = "10.96.0.1".into();
    assert!(!fired(&rules, &[&event]).contains(&"K8S.NODE_KubernetesAPI".to_string()));
}

#[test]
fn an_unknown_node_field_is_a_load_error_naming_the_rule() {
    let src = palisade_detect::rule::RuleSource::new(
        "bad.yaml",
        "rules:\n  - id: X\n    title: t\n    severity: low\n    source: node\n    condition: {field: process.exee, eq: x}\n",
    );
    let err = RuleSet::<NodeSchema>::load(&[src]).expect_err("unknown field");
    let text = err.to_string();
    assert!(
        text.contains("process.exee") && text.contains("rule X"),
        "{text}"
    );
    let src = palisade_detect::rule::RuleSource::new(
        "bad.yaml",
        "rules:\n  - id: Y\n    title: t\n    severity: low\n    source: node\n    match: {verb: [get]}\n",
    );
    let err = RuleSet::<NodeSchema>::load(&[src]).expect_err("unknown dimension");
    assert!(err.to_string().contains("event.type"), "{err}");
}
