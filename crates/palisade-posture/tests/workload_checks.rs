//! Workload and exposure checks on real-shaped manifests under tests/fixtures/checks.
//!
//! Each fixture starts with `# fires: id, ...` (checks that must report at least one finding on
//! the file) and `# clean: id, ...` (checks that must report nothing; `*` = every check not listed
//! under fires). `<name>.config.yaml` beside a fixture is its posture config.

use palisade_kube::{Inventory, KubeObject};
use palisade_posture::{PostureConfig, PostureFinding, exposure, workload};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checks")
}

struct Fixture {
    name: String,
    inventory: Inventory,
    config: PostureConfig,
    fires: BTreeSet<String>,
    clean: BTreeSet<String>,
}

fn all_ids() -> BTreeSet<String> {
    workload::CHECKS
        .iter()
        .chain(exposure::CHECKS)
        .map(|c| c.id.to_string())
        .collect()
}

fn id_list(text: &str, header: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix(header))
        .flat_map(|rest| rest.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn load(path: &Path) -> Fixture {
    let text = std::fs::read_to_string(path).unwrap();
    let mut objects = Vec::new();
    for doc in yaml_serde::Deserializer::from_str(&text) {
        let value = serde_json::Value::deserialize(doc).unwrap();
        if value.is_null() {
            continue;
        }
        objects.push(KubeObject::from_value(value, None).unwrap());
    }
    let config_path = path.with_extension("config.yaml");
    let config = if config_path.exists() {
        PostureConfig::load(&config_path).unwrap()
    } else {
        PostureConfig::default()
    };
    let fires: BTreeSet<String> = id_list(&text, "# fires:").into_iter().collect();
    let mut clean: BTreeSet<String> = id_list(&text, "# clean:").into_iter().collect();
    if clean.remove("*") {
        clean.extend(all_ids().difference(&fires).cloned());
    }
    Fixture {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        inventory: Inventory {
            cluster: None,
            objects,
            warnings: Vec::new(),
        },
        config,
        fires,
        clean,
    }
}

fn fixtures() -> Vec<Fixture> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && !p.to_string_lossy().ends_with(".config.yaml")
        })
        .collect();
    paths.sort();
    paths.iter().map(|p| load(p)).collect()
}

fn run(f: &Fixture) -> Vec<PostureFinding> {
    let mut out = workload::check(&f.inventory, &f.config);
    out.extend(exposure::check(&f.inventory, &f.config));
    out
}

#[test]
fn fixtures_fire_and_stay_clean_as_declared() {
    let known = all_ids();
    let mut failures = Vec::new();
    for f in fixtures() {
        for id in f.fires.iter().chain(&f.clean) {
            assert!(known.contains(id), "{}: unknown check id {id}", f.name);
        }
        let findings = run(&f);
        let fired: BTreeSet<&str> = findings.iter().map(|x| x.check_id.as_ref()).collect();
        for id in &f.fires {
            if !fired.contains(id.as_str()) {
                failures.push(format!("{}: expected {id} to fire", f.name));
            }
        }
        for id in &f.clean {
            for x in findings.iter().filter(|x| &x.check_id == id) {
                failures.push(format!(
                    "{}: expected {id} to stay quiet, got: {}",
                    f.name, x.message
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_check_has_a_positive_and_a_negative_fixture() {
    let fixtures = fixtures();
    let mut missing = Vec::new();
    for id in all_ids() {
        if !fixtures.iter().any(|f| f.fires.contains(&id)) {
            missing.push(format!("{id}: no fixture fires it"));
        }
        if !fixtures.iter().any(|f| f.clean.contains(&id)) {
            missing.push(format!("{id}: no fixture shows it quiet"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn check_metadata_is_complete() {
    let mut seen = BTreeSet::new();
    for c in workload::CHECKS.iter().chain(exposure::CHECKS) {
        assert!(seen.insert(c.id), "duplicate id {}", c.id);
        assert!(!c.title.is_empty() && !c.remediation.is_empty(), "{}", c.id);
        for control in c.controls {
            assert!(
                control.starts_with("CIS ")
                    || control.starts_with("PSS baseline: ")
                    || control.starts_with("PSS restricted: ")
                    || control.starts_with("Defender: ")
                    || control.starts_with("Defender alert: "),
                "{}: {control}",
                c.id
            );
        }
        // Every parameter a check names must be a key of the config file.
        let keys = serde_json::to_value(PostureConfig::default().parameters).unwrap();
        for p in c.parameters {
            assert!(
                keys.get(p).is_some(),
                "{}: parameter {p} is not a config key",
                c.id
            );
        }
    }
}

/// Every Pod Security Standards control of the baseline and restricted profiles is named by a check.
#[test]
fn every_pss_control_is_covered() {
    let controls: BTreeSet<&str> = workload::CHECKS
        .iter()
        .flat_map(|c| c.controls.iter().copied())
        .collect();
    for control in [
        "PSS baseline: HostProcess",
        "PSS baseline: Host Namespaces",
        "PSS baseline: Privileged Containers",
        "PSS baseline: Capabilities",
        "PSS baseline: HostPath Volumes",
        "PSS baseline: Host Ports",
        "PSS baseline: AppArmor",
        "PSS baseline: SELinux",
        "PSS baseline: /proc Mount Type",
        "PSS baseline: Seccomp",
        "PSS baseline: Sysctls",
        "PSS restricted: Volume Types",
        "PSS restricted: Privilege Escalation",
        "PSS restricted: Running as Non-root",
        "PSS restricted: Running as Non-root user",
        "PSS restricted: Seccomp",
        "PSS restricted: Capabilities",
    ] {
        assert!(controls.contains(control), "{control} is not covered");
    }
}

fn finding<'a>(findings: &'a [PostureFinding], id: &str, container: &str) -> &'a PostureFinding {
    findings
        .iter()
        .find(|f| f.check_id == id && f.resource.container.as_deref() == Some(container))
        .unwrap_or_else(|| panic!("no {id} finding for container {container}"))
}

#[test]
fn init_and_ephemeral_containers_are_checked_with_their_paths() {
    let f = load(&fixtures_dir().join("debug-pod.yaml"));
    let findings = run(&f);
    let nonroot = finding(&findings, "container.run-as-non-root", "debugger");
    assert_eq!(
        nonroot.evidence[0].path,
        "spec.ephemeralContainers[0].securityContext.runAsNonRoot"
    );
    assert_eq!(nonroot.evidence[0].value, serde_json::json!(false));
    let tag = finding(&findings, "container.image-tag", "debugger");
    assert_eq!(tag.evidence[0].path, "spec.ephemeralContainers[0].image");
    // The init and main containers drop ALL and forbid escalation.
    assert!(
        !findings
            .iter()
            .any(|f| f.check_id == "container.capabilities-drop"
                && f.resource.container.as_deref() != Some("debugger"))
    );
    // Only the main container needs a liveness probe.
    assert_eq!(
        findings
            .iter()
            .filter(|f| f.check_id == "container.liveness-probe")
            .map(|f| f.resource.container.as_deref())
            .collect::<Vec<_>>(),
        vec![Some("checkout")]
    );

    let cron = load(&fixtures_dir().join("cronjob-default.yaml"));
    let findings = run(&cron);
    let init = finding(&findings, "container.image-tag", "wait-for-db");
    assert_eq!(
        init.evidence[0].path,
        "spec.jobTemplate.spec.template.spec.initContainers[0].image"
    );
    assert_eq!(init.resource.kind.as_deref(), Some("CronJob"));
}

#[test]
fn node_agent_findings_are_specific() {
    let f = load(&fixtures_dir().join("node-agent.yaml"));
    let findings = run(&f);
    let socket = findings
        .iter()
        .find(|f| f.check_id == "pod.container-runtime-socket")
        .unwrap();
    assert!(
        socket.message.contains("/var/run/docker.sock"),
        "{}",
        socket.message
    );
    assert_eq!(
        socket.evidence[0].path,
        "spec.template.spec.volumes[0].hostPath.path"
    );
    let pe = finding(&findings, "container.privilege-escalation", "agent");
    assert!(pe.message.contains("privileged"), "{}", pe.message);
    let secret = finding(&findings, "container.secret-in-env", "agent");
    assert!(secret.message.contains("API_TOKEN"));
    // The secret itself never appears in the evidence.
    assert!(
        !serde_json::to_string(&secret.evidence)
            .unwrap()
            .contains("s3cr3t")
    );
    let apparmor = finding(&findings, "container.apparmor-unconfined", "agent");
    assert_eq!(
        apparmor.evidence[0].path,
        "spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/agent]"
    );
    let ns = findings
        .iter()
        .find(|f| f.check_id == "pod.host-namespaces")
        .unwrap();
    assert!(ns.message.contains("hostPID and hostIPC"), "{}", ns.message);
    let hp: Vec<_> = findings
        .iter()
        .filter(|f| f.check_id == "pod.host-path")
        .collect();
    assert_eq!(hp.len(), 3);
}

#[test]
fn postgres_findings_name_the_service_and_the_cause() {
    let f = load(&fixtures_dir().join("postgres-exposed.yaml"));
    let findings = run(&f);
    let trust = finding(&findings, "K8S_ExposedPostgresTrustAuth", "postgres");
    assert!(
        trust
            .message
            .contains("LoadBalancer Service/data/orders-db"),
        "{}",
        trust.message
    );
    assert!(
        trust
            .evidence
            .iter()
            .any(|e| e.path == "spec.template.spec.containers[0].env[0].value")
    );
    assert_eq!(trust.resource.kind.as_deref(), Some("StatefulSet"));
    let broad = finding(&findings, "K8S_ExposedPostgresBroadIPRange", "postgres");
    assert!(broad.message.contains("0.0.0.0/0"), "{}", broad.message);
    assert!(
        broad.message.contains("any client address"),
        "{}",
        broad.message
    );

    let bitnami = load(&fixtures_dir().join("postgres-bitnami-hba.yaml"));
    let findings = run(&bitnami);
    let trust = finding(&findings, "K8S_ExposedPostgresTrustAuth", "postgresql");
    assert!(trust.evidence.iter().any(|e| e.path
        == "ConfigMap/analytics/analytics-postgresql-configuration data.pg_hba.conf line 1"
        && e.value == serde_json::json!("192.168.10.0/24 trust")));
}

#[test]
fn excluded_namespaces_and_disabled_checks() {
    let mut f = load(&fixtures_dir().join("node-agent.yaml"));
    f.config.excluded_namespaces.push("monitoring".into());
    assert!(run(&f).is_empty());
    let mut f = load(&fixtures_dir().join("node-agent.yaml"));
    f.config.disabled_checks.push("container.privileged".into());
    let mut findings = run(&f);
    f.config.apply_overrides(&mut findings);
    assert!(
        !findings
            .iter()
            .any(|x| x.check_id == "container.privileged")
    );
    assert!(findings.iter().any(|x| x.check_id == "pod.host-network"));
}

#[test]
fn config_parameters_parse_and_validate() {
    let c = PostureConfig::from_yaml(
        "parameters:\n  maxCpu: 1500m\n  allowedHostPaths:\n    - pathPrefix: /data\n  hostPortRange: {min: 80, max: 90}\n",
    )
    .unwrap();
    assert_eq!(c.parameters.max_cpu.as_deref(), Some("1500m"));
    assert!(!c.parameters.allowed_host_paths[0].read_only);
    assert!(PostureConfig::from_yaml("parameters:\n  maxMemory: lots\n").is_err());
    assert!(
        PostureConfig::from_yaml("parameters:\n  hostPortRange: {min: 90, max: 80}\n").is_err()
    );
    assert!(PostureConfig::from_yaml("parameters:\n  runAsGroup: {rule: MustRunAs}\n").is_err());
    assert!(PostureConfig::from_yaml("parameters:\n  allowedRegistry: [x]\n").is_err());
    let d = PostureConfig::default().parameters;
    assert_eq!(d.required_drop_capabilities, vec!["ALL"]);
    assert!(
        d.allowed_capabilities
            .iter()
            .any(|c| c == "NET_BIND_SERVICE")
    );
    assert!(d.denied_service_ports.contains(&5432));
}

#[test]
fn malformed_objects_do_not_panic() {
    let odd = [
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a", "namespace": "x"},
            "spec": {"template": {"metadata": {"labels": "nope", "annotations": [1]},
              "spec": {"hostPID": "yes", "volumes": {"a": 1}, "securityContext": {"sysctls": "x", "seLinuxOptions": 3},
                "containers": [{"name": "c", "image": 7, "ports": "80", "env": [{"name": 1}, {"name": "TOKEN", "value": 5}],
                  "securityContext": {"capabilities": {"add": "ALL", "drop": "ALL"}, "privileged": "true",
                    "runAsUser": "0", "appArmorProfile": "x", "seccompProfile": {"type": 1}},
                  "resources": {"limits": {"cpu": [], "memory": "lots"}}}, "junk", null]}}}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "x"},
            "spec": {"type": "LoadBalancer", "selector": {"app": 1}, "ports": [{"port": "x"}, 5], "externalIPs": "1.2.3.4"}}),
        serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i", "namespace": "x"},
            "spec": {"tls": "yes", "rules": [{"host": 5, "http": {"paths": "x"}}], "defaultBackend": 3}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "x",
            "annotations": {"container.apparmor.security.beta.kubernetes.io/\u{e9}": "localhost/\u{e9}"}},
            "spec": {"containers": [{"name": "\u{e9}", "image": "\u{e9}:\u{e9}",
              "securityContext": {"capabilities": {"add": ["cap\u{e9}x", "\u{e9}\u{e9}\u{e9}\u{e9}"]}}}]}}),
    ];
    let inventory = Inventory {
        cluster: Some("c".into()),
        objects: odd
            .into_iter()
            .map(|v| KubeObject::from_value(v, None).unwrap())
            .collect(),
        warnings: Vec::new(),
    };
    let config = PostureConfig::default();
    let findings = workload::check(&inventory, &config);
    assert!(
        findings
            .iter()
            .any(|f| f.check_id == "container.resource-limits"
                && f.message.contains("unreadable memory limit"))
    );
    let _ = exposure::check(&inventory, &config);
}

#[test]
fn service_account_decides_automount_when_the_pod_is_silent() {
    let text = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: api, namespace: a}\nautomountServiceAccountToken: true\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: a}\nspec:\n  template:\n    spec:\n      serviceAccountName: api\n      containers: [{name: api, image: 'registry.example.com/api:1.0.0'}]\n";
    let mut objects = Vec::new();
    for doc in yaml_serde::Deserializer::from_str(text) {
        objects.push(
            KubeObject::from_value(serde_json::Value::deserialize(doc).unwrap(), None).unwrap(),
        );
    }
    let inventory = Inventory {
        cluster: None,
        objects,
        warnings: Vec::new(),
    };
    let findings = workload::check(&inventory, &PostureConfig::default());
    let f = findings
        .iter()
        .find(|f| f.check_id == "pod.automount-service-account-token")
        .unwrap();
    assert!(f.message.contains("service account api"), "{}", f.message);
    assert_eq!(f.evidence.len(), 2);
}
