//! Differential test: the posture engine (audit) and Palisade's bundle evaluated by the policy
//! engine (enforce) must flag the same (object, container) for every check id, on the same
//! objects and the same configuration — one source of truth for both.
//!
//! Corpus: every posture fixture (tests/fixtures/checks of palisade-posture, with its config), and
//! a generated corpus of pod specs varied field by field, wrapped in every workload kind, under
//! the default configuration and under non-default ones.
//!
//! Controller-owned Pods: posture skips them (their owner is checked); the bundle checks them,
//! because at admission an `ownerReferences` entry is set by whoever creates the Pod and must not
//! be a way around the policy. For those Pods the bundle's result is compared with posture's on
//! the same Pod without its `ownerReferences`.

use palisade_kube::{Inventory, KubeObject};
use palisade_policy::bundle::{self, ExportOptions};
use palisade_policy::{EnforcementPoint, PolicySet, PolicySettings, ReviewRequest};
use palisade_posture::PostureConfig;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// (check id, kind, namespace/name, container)
type Key = (String, String, String, String);

fn key(check: &str, o: &KubeObject, container: Option<&str>) -> Key {
    (
        check.to_string(),
        o.kind.clone(),
        format!("{}/{}", o.namespace.as_deref().unwrap_or(""), o.name),
        container.unwrap_or("").to_string(),
    )
}

fn is_owned_pod(o: &KubeObject) -> bool {
    o.kind == "Pod"
        && o.get("metadata.ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|r| r.get("controller") == Some(&json!(true))))
}

fn without_owner(o: &KubeObject) -> KubeObject {
    let mut v = o.value.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("ownerReferences");
    }
    KubeObject::from_value(v, None).unwrap()
}

fn posture_keys(objects: &[KubeObject], config: &PostureConfig) -> BTreeSet<Key> {
    let ids: BTreeSet<&str> = bundle::check_ids().collect();
    let mut all: Vec<KubeObject> = objects.to_vec();
    // Owned Pods, as posture would see them without an owner.
    all.extend(
        objects
            .iter()
            .filter(|o| is_owned_pod(o))
            .map(without_owner),
    );
    let inventory = Inventory {
        cluster: None,
        objects: all,
        warnings: Vec::new(),
    };
    palisade_posture::analyze(&inventory, config)
        .into_iter()
        .filter(|f| ids.contains(f.check_id.as_ref()))
        .map(|f| {
            (
                f.check_id.to_string(),
                f.resource.kind.clone().unwrap_or_default(),
                format!(
                    "{}/{}",
                    f.resource.namespace.as_deref().unwrap_or(""),
                    f.resource.name.as_deref().unwrap_or("")
                ),
                f.resource.container.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// What the bundle flags: its Rego (`rego_only`), or at admission speed, where unmodified
/// workload templates are decided by the posture checks natively.
fn bundle_keys_with(
    objects: &[KubeObject],
    config: &PostureConfig,
    rego_only: bool,
) -> BTreeSet<Key> {
    let mut policy = bundle::bundle_objects();
    policy.extend(bundle::constraints(config, &ExportOptions::default()).unwrap());
    let settings = PolicySettings {
        rego_only,
        ..Default::default()
    };
    let (set, warnings) = PolicySet::compile(&policy, objects, &settings)
        .unwrap_or_else(|e| panic!("bundle does not compile: {e:#?}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut evaluator = set.evaluator();
    let mut out = BTreeSet::new();
    for o in objects {
        let review = ReviewRequest::from_object(o.value.clone()).unwrap();
        let violations = evaluator
            .review(&review, EnforcementPoint::Audit)
            .unwrap_or_else(|e| panic!("{} {}: {e}", o.kind, o.name));
        for v in violations {
            let check = v
                .check_id
                .clone()
                .expect("bundle violations carry a check id");
            assert_eq!(v.details["checkId"], json!(check), "{}", v.message);
            assert!(!v.message.is_empty());
            out.insert(key(&check, o, v.details["container"].as_str()));
        }
    }
    out
}

fn bundle_keys(objects: &[KubeObject], config: &PostureConfig) -> BTreeSet<Key> {
    bundle_keys_with(objects, config, true)
}

fn assert_parity(label: &str, objects: &[KubeObject], config: &PostureConfig) -> usize {
    let posture = posture_keys(objects, config);
    let bundle = bundle_keys(objects, config);
    // The native admission path must flag exactly what the Rego flags.
    let native = bundle_keys_with(objects, config, false);
    assert_eq!(
        native, bundle,
        "{label}: native and Rego evaluation of the bundle disagree"
    );
    let only_posture: Vec<_> = posture.difference(&bundle).collect();
    let only_bundle: Vec<_> = bundle.difference(&posture).collect();
    assert!(
        only_posture.is_empty() && only_bundle.is_empty(),
        "{label}: posture and bundle disagree\n  posture only: {only_posture:#?}\n  bundle only: {only_bundle:#?}"
    );
    posture.len()
}

fn load_objects(path: &Path) -> Vec<KubeObject> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for doc in yaml_serde::Deserializer::from_str(&text) {
        let v = Value::deserialize(doc).unwrap();
        if v.is_null() {
            continue;
        }
        out.push(KubeObject::from_value(v, None).unwrap());
    }
    out
}

fn posture_fixtures() -> Vec<PathBuf> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../palisade-posture/tests/fixtures/checks");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && !p.to_string_lossy().ends_with(".config.yaml")
        })
        .collect();
    paths.sort();
    paths
}

#[test]
fn posture_fixtures_agree() {
    let mut findings = 0;
    for path in posture_fixtures() {
        let objects = load_objects(&path);
        let config_path = path.with_extension("config.yaml");
        let config = if config_path.exists() {
            PostureConfig::load(&config_path).unwrap()
        } else {
            PostureConfig::default()
        };
        findings += assert_parity(&path.display().to_string(), &objects, &config);
        // And every fixture under the default configuration too.
        findings += assert_parity(
            &format!("{} (default config)", path.display()),
            &objects,
            &PostureConfig::default(),
        );
    }
    assert!(findings > 200, "too few findings to compare: {findings}");
}

/// A hardened pod spec (no check fires under the default configuration, except those needing
/// parameters), to vary one field at a time.
fn hardened_spec() -> Value {
    json!({
        "automountServiceAccountToken": false,
        "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"}, "appArmorProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "app", "image": "registry.example.com/shop/app:1.4.2",
            "ports": [{"containerPort": 8080}],
            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]}}
        }]
    })
}

/// Sets a dotted path (`containers.0.securityContext.privileged`) in a JSON value; `null`
/// removes the field.
fn set(v: &mut Value, path: &str, value: Value) {
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = v;
    for (i, p) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        if let Ok(n) = p.parse::<usize>() {
            let arr = cur.as_array_mut().unwrap();
            while arr.len() <= n {
                arr.push(json!({}));
            }
            if last {
                arr[n] = value;
                return;
            }
            cur = &mut arr[n];
        } else {
            if !cur.is_object() {
                *cur = json!({});
            }
            let map = cur.as_object_mut().unwrap();
            if last {
                if value.is_null() {
                    map.remove(*p);
                } else {
                    map.insert(p.to_string(), value);
                }
                return;
            }
            cur = map.entry(p.to_string()).or_insert(json!({}));
        }
    }
}

/// Field variations of the pod spec: each is one generated workload.
fn variations() -> Vec<(&'static str, Vec<(&'static str, Value)>)> {
    vec![
        ("hardened", vec![]),
        (
            "privileged",
            vec![("containers.0.securityContext.privileged", json!(true))],
        ),
        (
            "ape-unset",
            vec![(
                "containers.0.securityContext.allowPrivilegeEscalation",
                Value::Null,
            )],
        ),
        (
            "ape-true",
            vec![(
                "containers.0.securityContext.allowPrivilegeEscalation",
                json!(true),
            )],
        ),
        (
            "ape-string",
            vec![(
                "containers.0.securityContext.allowPrivilegeEscalation",
                json!("false"),
            )],
        ),
        (
            "sys-admin",
            vec![(
                "containers.0.securityContext.capabilities.add",
                json!(["CAP_SYS_ADMIN"]),
            )],
        ),
        (
            "add-all",
            vec![(
                "containers.0.securityContext.capabilities.add",
                json!(["all", "NET_RAW"]),
            )],
        ),
        (
            "add-net-bind",
            vec![(
                "containers.0.securityContext.capabilities.add",
                json!(["NET_BIND_SERVICE"]),
            )],
        ),
        (
            "add-lower",
            vec![(
                "containers.0.securityContext.capabilities.add",
                json!(["cap_chown", "net_admin"]),
            )],
        ),
        (
            "drop-some",
            vec![(
                "containers.0.securityContext.capabilities.drop",
                json!(["NET_RAW", "cap_sys_admin"]),
            )],
        ),
        (
            "drop-none",
            vec![("containers.0.securityContext.capabilities", Value::Null)],
        ),
        (
            "rw-root",
            vec![(
                "containers.0.securityContext.readOnlyRootFilesystem",
                json!(false),
            )],
        ),
        ("host-network", vec![("hostNetwork", json!(true))]),
        (
            "host-pid-ipc",
            vec![("hostPID", json!(true)), ("hostIPC", json!(true))],
        ),
        (
            "host-port",
            vec![("containers.0.ports.0.hostPort", json!(30080))],
        ),
        (
            "host-port-low",
            vec![(
                "containers.0.ports",
                json!([{"containerPort": 80, "hostPort": 80}, {"containerPort": 22}]),
            )],
        ),
        (
            "host-path-log",
            vec![
                (
                    "volumes",
                    json!([{"name": "logs", "hostPath": {"path": "/var/log/pods/"}}]),
                ),
                (
                    "containers.0.volumeMounts",
                    json!([{"name": "logs", "mountPath": "/logs"}]),
                ),
            ],
        ),
        (
            "host-path-log-ro",
            vec![
                (
                    "volumes",
                    json!([{"name": "logs", "hostPath": {"path": "/var/log"}}]),
                ),
                (
                    "containers.0.volumeMounts",
                    json!([{"name": "logs", "mountPath": "/logs", "readOnly": true}]),
                ),
            ],
        ),
        (
            "host-path-logs",
            vec![(
                "volumes",
                json!([{"name": "l", "hostPath": {"path": "/var/logs"}}]),
            )],
        ),
        (
            "docker-sock",
            vec![(
                "volumes",
                json!([{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}]),
            )],
        ),
        (
            "root-mount",
            vec![(
                "volumes",
                json!([{"name": "root", "hostPath": {"path": "/"}}]),
            )],
        ),
        (
            "nfs-volume",
            vec![(
                "volumes",
                json!([{"name": "n", "nfs": {"server": "nfs", "path": "/x"}}, {"name": "c", "configMap": {"name": "c"}}]),
            )],
        ),
        (
            "automount-unset",
            vec![("automountServiceAccountToken", Value::Null)],
        ),
        (
            "automount-true",
            vec![("automountServiceAccountToken", json!(true))],
        ),
        (
            "automount-sa-off",
            vec![
                ("automountServiceAccountToken", Value::Null),
                ("serviceAccountName", json!("quiet")),
            ],
        ),
        (
            "automount-sa-on",
            vec![
                ("automountServiceAccountToken", Value::Null),
                ("serviceAccountName", json!("loud")),
            ],
        ),
        (
            "apparmor-unconfined",
            vec![(
                "securityContext.appArmorProfile",
                json!({"type": "Unconfined"}),
            )],
        ),
        (
            "apparmor-none",
            vec![("securityContext.appArmorProfile", Value::Null)],
        ),
        (
            "apparmor-local",
            vec![(
                "containers.0.securityContext.appArmorProfile",
                json!({"type": "Localhost", "localhostProfile": "k8s-app"}),
            )],
        ),
        (
            "seccomp-unconfined",
            vec![(
                "containers.0.securityContext.seccompProfile",
                json!({"type": "Unconfined"}),
            )],
        ),
        (
            "seccomp-none",
            vec![("securityContext.seccompProfile", Value::Null)],
        ),
        (
            "proc-mount",
            vec![("containers.0.securityContext.procMount", json!("Unmasked"))],
        ),
        (
            "selinux",
            vec![
                ("securityContext.seLinuxOptions", json!({"type": "spc_t"})),
                (
                    "containers.0.securityContext.seLinuxOptions",
                    json!({"user": "system_u", "role": "sysadm_r"}),
                ),
            ],
        ),
        (
            "sysctls",
            vec![(
                "securityContext.sysctls",
                json!([{"name": "net.ipv4.tcp_syncookies", "value": "1"}, {"name": "kernel.msgmax", "value": "1"}]),
            )],
        ),
        (
            "non-root-false",
            vec![("containers.0.securityContext.runAsNonRoot", json!(false))],
        ),
        (
            "non-root-unset",
            vec![("securityContext.runAsNonRoot", Value::Null)],
        ),
        (
            "user-root",
            vec![("containers.0.securityContext.runAsUser", json!(0))],
        ),
        (
            "user-unset",
            vec![
                ("securityContext.runAsUser", Value::Null),
                ("securityContext.runAsNonRoot", Value::Null),
            ],
        ),
        ("group-root", vec![("securityContext.runAsGroup", json!(0))]),
        (
            "group-unset",
            vec![("securityContext.runAsGroup", Value::Null)],
        ),
        (
            "supplemental",
            vec![(
                "securityContext.supplementalGroups",
                json!([10001, 0, 70000]),
            )],
        ),
        ("fs-group-root", vec![("securityContext.fsGroup", json!(0))]),
        (
            "fs-group-unset",
            vec![("securityContext.fsGroup", Value::Null)],
        ),
        ("no-limits", vec![("containers.0.resources", Value::Null)]),
        (
            "big-limits",
            vec![(
                "containers.0.resources.limits",
                json!({"cpu": 4, "memory": "8Gi"}),
            )],
        ),
        (
            "odd-limits",
            vec![(
                "containers.0.resources.limits",
                json!({"cpu": "1.5", "memory": "2e9"}),
            )],
        ),
        (
            "bad-limits",
            vec![(
                "containers.0.resources.limits",
                json!({"cpu": "lots", "memory": true}),
            )],
        ),
        (
            "milli-limits",
            vec![(
                "containers.0.resources.limits",
                json!({"cpu": "1100m", "memory": "512Mi"}),
            )],
        ),
        (
            "hub-image",
            vec![("containers.0.image", json!("nginx:1.27"))],
        ),
        (
            "hub-org-image",
            vec![("containers.0.image", json!("bitnami/redis:7"))],
        ),
        (
            "ghcr-image",
            vec![(
                "containers.0.image",
                json!("ghcr.io/acme-evil/api@sha256:0123"),
            )],
        ),
        (
            "port-9090",
            vec![(
                "containers.0.ports",
                json!([{"containerPort": 9090}, {"containerPort": 443}]),
            )],
        ),
        (
            "init-and-ephemeral",
            vec![
                (
                    "initContainers",
                    json!([{"name": "init", "image": "busybox", "securityContext": {"privileged": true}}]),
                ),
                (
                    "ephemeralContainers",
                    json!([{"name": "debug", "image": "busybox:1.36", "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}]),
                ),
            ],
        ),
        (
            "windows",
            vec![
                ("os", json!({"name": "windows"})),
                (
                    "containers.0.securityContext",
                    json!({"windowsOptions": {"hostProcess": true}}),
                ),
            ],
        ),
        (
            "annotations",
            vec![("securityContext", json!({"runAsNonRoot": true}))],
        ),
        ("quantities", vec![("containers", quantity_containers())]),
        (
            "two-containers",
            vec![(
                "containers.1",
                json!({"name": "sidecar", "image": "envoyproxy/envoy:v1.30", "securityContext": {"runAsUser": 0, "capabilities": {"drop": ["all"]}}}),
            )],
        ),
    ]
}

/// One container per quantity spelling, valid and not, as CPU and memory limits.
fn quantity_containers() -> Value {
    let spellings = [
        "+1",
        "+-1",
        "1.",
        ".5",
        "-.5",
        "100n",
        "1e3",
        "1E-3",
        "2E",
        "1e",
        "1Ki",
        "0.5Gi",
        " 250m ",
        "1 Gi",
        "--1",
        "1.2.3",
        "m",
        "1100m",
        "1.1",
        "2e9",
        "1999999999",
        "2G",
        "1.5",
        "3u",
        "0",
    ];
    Value::Array(
        spellings
            .iter()
            .enumerate()
            .map(|(i, q)| {
                json!({"name": format!("q{i}"), "image": "registry.example.com/shop/app:1.4.2",
                    "resources": {"limits": {"cpu": q, "memory": q}},
                    "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                        "capabilities": {"drop": ["ALL"]}}})
            })
            .collect(),
    )
}

/// Wraps a pod spec in a workload kind.
fn wrap(kind: &str, name: &str, namespace: &str, spec: Value, annotations: Value) -> KubeObject {
    let meta = json!({"labels": {"app": name}, "annotations": annotations});
    let template = json!({"metadata": meta, "spec": spec});
    let v = match kind {
        "Pod" => json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}, "annotations": annotations},
            "spec": template["spec"]}),
        "CronJob" => {
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": namespace},
            "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}})
        }
        "Job" => {
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": template}})
        }
        "ReplicationController" => {
            json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 1, "template": template}})
        }
        _ => {
            json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": template}})
        }
    };
    KubeObject::from_value(v, None).unwrap()
}

const KINDS: &[&str] = &[
    "Deployment",
    "Pod",
    "StatefulSet",
    "DaemonSet",
    "CronJob",
    "Job",
    "ReplicaSet",
    "ReplicationController",
];

fn generated_corpus() -> Vec<KubeObject> {
    let mut out = Vec::new();
    for (i, (name, changes)) in variations().into_iter().enumerate() {
        let mut spec = hardened_spec();
        for (path, value) in changes {
            set(&mut spec, path, value);
        }
        let annotations = if name == "annotations" {
            json!({
                "container.apparmor.security.beta.kubernetes.io/app": "localhost/custom",
                "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
            })
        } else {
            json!({})
        };
        let kind = KINDS[i % KINDS.len()];
        let namespace = ["shop", "default", "kube-system", "team-a"][i % 4];
        out.push(wrap(
            kind,
            name,
            namespace,
            spec.clone(),
            annotations.clone(),
        ));
        // The same spec in a second kind, and as a controller-owned Pod.
        out.push(wrap(
            KINDS[(i + 3) % KINDS.len()],
            &format!("{name}-2"),
            "shop",
            spec.clone(),
            annotations.clone(),
        ));
        if i % 3 == 0 {
            let mut pod = wrap("Pod", &format!("{name}-7f9c"), "shop", spec, annotations).value;
            pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": name, "uid": "7d1c", "controller": true}]);
            out.push(KubeObject::from_value(pod, None).unwrap());
        }
    }
    for (ns, name, automount) in [
        ("shop", "quiet", false),
        ("shop", "loud", true),
        ("team-a", "quiet", false),
    ] {
        out.push(
            KubeObject::from_value(
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns},
                    "automountServiceAccountToken": automount}),
                None,
            )
            .unwrap(),
        );
    }
    let services = [
        json!({"type": "LoadBalancer", "ports": [{"port": 443, "targetPort": 8443}, {"port": 5432}]}),
        json!({"type": "NodePort", "ports": [{"port": 80, "targetPort": 22}]}),
        json!({"ports": [{"port": 6379}], "externalIPs": ["203.0.113.7"]}),
        json!({"type": "ExternalName", "externalName": "db.example.com", "externalIPs": ["203.0.113.8"], "ports": [{"port": 3306}]}),
        json!({"ports": [{"port": 8080, "targetPort": 8080}]}),
    ];
    for (i, spec) in services.into_iter().enumerate() {
        out.push(
            KubeObject::from_value(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": format!("svc-{i}"), "namespace": "shop"}, "spec": spec}),
                None,
            )
            .unwrap(),
        );
    }
    let ingresses = [
        json!({"rules": [{"host": "shop.example.com"}]}),
        json!({"tls": [{"hosts": ["*.example.com"]}], "rules": [{"host": "a.example.com"}, {"host": "a.b.example.com"}, {"host": "example.com"}]}),
        json!({"tls": [{"secretName": "wildcard"}], "rules": [{"host": "x.example.com"}]}),
        json!({"tls": [{"hosts": ["shop.example.com"]}], "rules": [{"host": "SHOP.example.com"}], "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}),
        json!({"tls": [{"hosts": ["shop.example.com"]}], "rules": [{"host": "shop.example.com"}]}),
    ];
    for (i, spec) in ingresses.into_iter().enumerate() {
        out.push(
            KubeObject::from_value(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": format!("ing-{i}"), "namespace": "shop"}, "spec": spec}),
                None,
            )
            .unwrap(),
        );
    }
    out
}

fn configs() -> Vec<(&'static str, PostureConfig)> {
    let parse = |s: &str| PostureConfig::from_yaml(s).unwrap();
    vec![
        ("default", PostureConfig::default()),
        (
            "parameters",
            parse(
                "excludedNamespaces: [kube-*, team-*]\n\
                 parameters:\n\
                 \x20 allowedRegistries: [registry.example.com/shop/, docker.io/library/, ghcr.io/acme]\n\
                 \x20 allowedCapabilities: [NET_BIND_SERVICE, CAP_CHOWN]\n\
                 \x20 requiredDropCapabilities: [NET_RAW, SYS_ADMIN]\n\
                 \x20 allowedHostPaths: [{pathPrefix: /var/log/, readOnly: true}, {pathPrefix: /var, readOnly: false}]\n\
                 \x20 hostPortRange: {min: 30000, max: 32767}\n\
                 \x20 allowedServicePorts: [443, 8080, 80]\n\
                 \x20 deniedServicePorts: [22, 5432]\n\
                 \x20 maxCpu: 1100m\n\
                 \x20 maxMemory: 2G\n\
                 \x20 allowedAppArmorProfiles: [runtime/default, localhost/k8s-*, unconfined]\n\
                 \x20 runAsUser: {rule: MustRunAs, ranges: [{min: 1000, max: 20000}]}\n\
                 \x20 runAsGroup: {rule: MayRunAs, ranges: [{min: 1, max: 20000}]}\n\
                 \x20 supplementalGroups: {rule: MustRunAs, ranges: [{min: 1, max: 65535}]}\n\
                 \x20 fsGroup: {rule: MustRunAs, ranges: [{min: 10000, max: 10001}]}\n",
            ),
        ),
        (
            "permissive",
            parse(
                "excludedNamespaces: []\n\
                 disabledChecks: [container.read-only-root-filesystem]\n\
                 parameters:\n\
                 \x20 allowedCapabilities: []\n\
                 \x20 requiredDropCapabilities: []\n\
                 \x20 deniedServicePorts: []\n\
                 \x20 maxCpu: '1.5'\n\
                 \x20 maxMemory: 2e9\n\
                 \x20 allowedAppArmorProfiles: ['*']\n\
                 \x20 runAsUser: {rule: RunAsAny}\n\
                 \x20 runAsGroup: {rule: RunAsAny}\n\
                 \x20 supplementalGroups: {rule: RunAsAny}\n\
                 \x20 fsGroup: {rule: MayRunAs, ranges: [{min: 0, max: 0}, {min: 10001, max: 10001}]}\n",
            ),
        ),
    ]
}

#[test]
fn generated_corpus_agrees_under_several_configs() {
    let corpus = generated_corpus();
    let mut compared = 0;
    for (label, config) in configs() {
        compared += assert_parity(label, &corpus, &config);
    }
    assert!(compared > 500, "too few findings to compare: {compared}");
}

#[test]
fn owned_pods_are_checked_by_the_bundle() {
    let corpus = generated_corpus();
    let owned: Vec<KubeObject> = corpus.iter().filter(|o| is_owned_pod(o)).cloned().collect();
    assert!(!owned.is_empty());
    let keys = bundle_keys(&owned, &PostureConfig::default());
    // ape-true (index 3) is generated as an owned Pod.
    assert!(
        keys.iter()
            .any(|k| k.0 == "container.privilege-escalation" && k.2 == "shop/ape-true-7f9c"),
        "{keys:#?}"
    );
}

/// Parameters posture's config loader rejects are rejected by the templates' schemas too, with
/// an error naming the constraint.
#[test]
fn invalid_parameters_are_rejected_like_posture_rejects_them() {
    let cases = [
        ("container.resource-limits", json!({"maxCpu": "lots"})),
        ("container.resource-limits", json!({"maxMemory": "1 Gi"})),
        (
            "container.host-ports",
            json!({"hostPortRange": {"min": 80}}),
        ),
        (
            "container.host-ports",
            json!({"hostPortRange": {"min": 80, "max": 70000}}),
        ),
        (
            "container.user-group-ids",
            json!({"runAsUser": {"rule": "MustRunAsRoot"}}),
        ),
        (
            "pod.host-path",
            json!({"allowedHostPaths": [{"readOnly": true}]}),
        ),
        (
            "container.allowed-ports",
            json!({"allowedServicePorts": ["https"]}),
        ),
        ("image.vulnerabilities", json!({"minSeverity": "severe"})),
        (
            "image.vulnerabilities",
            json!({"exemptions": [{"cve": "CVE-1", "reason": "no expiry"}]}),
        ),
    ];
    for (check, parameters) in cases {
        let template = bundle::templates()
            .into_iter()
            .find(|t| t.check_id == check)
            .unwrap();
        let constraint = KubeObject::from_value(
            json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": template.kind(),
                "metadata": {"name": "bad"}, "spec": {"parameters": parameters}}),
            None,
        )
        .unwrap();
        let result = PolicySet::compile(
            &[template.object.clone(), constraint],
            &[],
            &PolicySettings::default(),
        );
        let errors = match result {
            Ok(_) => panic!("{check}: {parameters} was accepted"),
            Err(errors) => errors,
        };
        assert!(
            errors.iter().any(|e| e.to_string().contains("bad")),
            "{check}: {errors:?}"
        );
    }
    // And what posture accepts is accepted (the generated corpus uses such configs throughout).
    let ok = PostureConfig::from_yaml(
        "parameters: {maxCpu: '1.5', maxMemory: 2e9, hostPortRange: {min: 1, max: 65535}}",
    )
    .unwrap();
    let mut objects = bundle::bundle_objects();
    objects.extend(bundle::constraints(&ok, &ExportOptions::default()).unwrap());
    assert!(PolicySet::compile(&objects, &[], &PolicySettings::default()).is_ok());
}

/// At admission: CREATE and UPDATE of a non-compliant Pod are denied, its DELETE is not (removing
/// a bad workload must stay possible), and a Pod without metadata.namespace takes the request's.
#[test]
fn admission_operations() {
    let mut objects = bundle::bundle_objects();
    let config =
        PostureConfig::from_yaml("enabledChecks: [container.privileged, pod.default-namespace]")
            .unwrap();
    objects.extend(bundle::constraints(&config, &ExportOptions::default()).unwrap());
    let (set, _) = PolicySet::compile(&objects, &[], &PolicySettings::default()).unwrap();
    let mut evaluator = set.evaluator();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug"},
        "spec": {"containers": [{"name": "sh", "image": "busybox:1.36", "securityContext": {"privileged": true}}]}});
    let request = |operation: &str| {
        let mut r = json!({"uid": "0d6c", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "debug", "namespace": "default", "operation": operation,
            "userInfo": {"username": "alice"}});
        if operation == "DELETE" {
            r["oldObject"] = pod.clone();
        } else {
            r["object"] = pod.clone();
        }
        ReviewRequest::from_admission_request(r).unwrap()
    };
    for op in ["CREATE", "UPDATE"] {
        let v = evaluator
            .review(&request(op), EnforcementPoint::Webhook)
            .unwrap();
        let mut ids: Vec<_> = v.iter().filter_map(|v| v.check_id.clone()).collect();
        ids.sort();
        assert_eq!(
            ids,
            ["container.privileged", "pod.default-namespace"],
            "{op}"
        );
        assert!(
            v.iter().any(|v| v.message == "Container sh of Pod default/debug runs privileged, with all capabilities and access to host devices"),
            "{v:#?}"
        );
    }
    assert!(
        evaluator
            .review(&request("DELETE"), EnforcementPoint::Webhook)
            .unwrap()
            .is_empty()
    );
}
