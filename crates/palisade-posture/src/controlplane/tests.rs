//! Control-plane checks on kubeadm-style static pods and kubelet configurations.

use super::*;
use crate::config::PostureConfig;
use palisade_kube::{Inventory, KubeObject};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Loads every YAML file of a fixture directory. Kubelet configuration files have no
/// metadata; like the manifest loader, name them after their file.
fn load_dir(dir: &str) -> Inventory {
    let root = format!(
        "{}/tests/fixtures/controlplane/{dir}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut inv = Inventory::new(None);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        inv.objects.extend(parse(&text, &stem));
    }
    inv
}

fn parse(text: &str, name: &str) -> Vec<KubeObject> {
    text.split("\n---\n")
        .filter_map(|doc| {
            let mut v: Value = yaml_serde::from_str(doc).unwrap();
            if v.is_null() {
                return None;
            }
            if v.get("metadata").is_none() {
                v["metadata"] = json!({"name": name});
            }
            Some(KubeObject::from_value(v, None).unwrap())
        })
        .collect()
}

fn inv_of(text: &str) -> Inventory {
    Inventory {
        cluster: None,
        objects: parse(text, "config"),
        warnings: Vec::new(),
    }
}

fn ids(inv: &Inventory) -> BTreeSet<String> {
    check(inv, &PostureConfig::default())
        .into_iter()
        .map(|f| f.check_id.into_owned())
        .collect()
}

#[test]
fn every_check_fires_on_an_insecure_fixture_and_none_on_the_hardened_set() {
    let insecure = ids(&load_dir("insecure"));
    for c in CHECKS {
        assert!(insecure.contains(c.id), "{} does not fire", c.id);
    }
    let hardened = check(&load_dir("hardened"), &PostureConfig::default());
    assert!(hardened.is_empty(), "{hardened:#?}");

    let unique: BTreeSet<&str> = CHECKS.iter().map(|c| c.id).collect();
    assert_eq!(unique.len(), CHECKS.len());
    for c in CHECKS {
        let scope = c.id.split('.').next().unwrap();
        assert!(
            [
                "apiserver",
                "controller-manager",
                "scheduler",
                "etcd",
                "kubelet"
            ]
            .contains(&scope),
            "{}",
            c.id
        );
        assert!(
            c.controls
                .iter()
                .all(|x| x.starts_with("CIS ") && x.ends_with("(v1.8)"))
        );
    }
}

#[test]
fn unset_flags_count_with_their_defaults() {
    let findings = check(&load_dir("insecure"), &PostureConfig::default());
    let f = findings
        .iter()
        .find(|f| {
            f.check_id == "apiserver.anonymous-auth"
                && f.resource.name.as_deref() == Some("kube-apiserver")
        })
        .unwrap();
    assert_eq!(f.resource.container.as_deref(), Some("kube-apiserver"));
    assert_eq!(f.resource.kind.as_deref(), Some("Pod"));
    assert_eq!(
        f.evidence[0].path,
        "spec.containers[0].command[--anonymous-auth]"
    );
    assert_eq!(f.evidence[0].value, Value::Null);
    assert!(f.message.contains("defaults to true"), "{}", f.message);
    assert_eq!(f.controls, vec!["CIS 1.2.1 (v1.8)"]);

    // A flag that is set is cited where it is written.
    let p = findings
        .iter()
        .find(|f| {
            f.check_id == "apiserver.profiling"
                && f.resource.name.as_deref() == Some("kube-apiserver")
        })
        .unwrap();
    assert_eq!(p.evidence[0].value, json!("--profiling"));
    assert!(
        p.evidence[0]
            .path
            .starts_with("spec.containers[0].command[")
    );

    // `--flag value` form; AlwaysAllow as default of an unset mode.
    let b = findings
        .iter()
        .find(|f| f.check_id == "apiserver.audit-log-maxbackup")
        .unwrap();
    assert_eq!(b.evidence[0].value, json!("--audit-log-maxbackup 3"));
    let legacy: BTreeSet<&str> = findings
        .iter()
        .filter(|f| f.resource.name.as_deref() == Some("kube-apiserver-legacy"))
        .map(|f| f.check_id.as_ref())
        .collect();
    assert!(legacy.contains("apiserver.audit-log-path"));
    assert!(!legacy.contains("apiserver.authorization-always-allow"));
    assert!(!legacy.contains("apiserver.authorization-rbac"));
    // No audit log file: its rotation settings are not judged.
    assert!(!legacy.contains("apiserver.audit-log-maxage"));
    let modern = inv_of(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: kube-system}\nspec:\n  containers:\n  - name: a\n    image: x\n    command: [kube-apiserver, --etcd-servers=https://e:2379]\n",
    );
    let m: Vec<_> = check(&modern, &PostureConfig::default())
        .into_iter()
        .filter(|f| f.check_id == "apiserver.authorization-always-allow")
        .collect();
    assert_eq!(m.len(), 1);
    assert!(m[0].message.contains("defaults to AlwaysAllow"));
}

#[test]
fn etcd_reads_environment_variables() {
    let findings = check(&load_dir("insecure"), &PostureConfig::default());
    let f = findings
        .iter()
        .find(|f| f.check_id == "etcd.peer-auto-tls")
        .unwrap();
    assert_eq!(f.evidence[0].path, "spec.containers[0].env[0].value");
    assert_eq!(f.evidence[0].value, json!("ETCD_PEER_AUTO_TLS=true"));
}

#[test]
fn kubelet_file_and_flag_defaults_differ() {
    let empty_file =
        inv_of("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n");
    let file = ids(&empty_file);
    assert!(!file.contains("kubelet.anonymous-auth"));
    assert!(!file.contains("kubelet.read-only-port"));
    assert!(!file.contains("kubelet.authorization-always-allow"));
    assert!(!file.contains("kubelet.authentication-webhook"));
    assert!(file.contains("kubelet.client-ca-file"));
    assert!(file.contains("kubelet.rotate-certificates"));
    assert!(file.contains("kubelet.pod-pids-limit"));
    assert!(file.contains("kubelet.protect-kernel-defaults"));

    let pod = |args: &str| {
        inv_of(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: k, namespace: infra}}\nspec:\n  containers:\n  - name: kubelet\n    image: x\n    command: [kubelet{args}]\n"
        ))
    };
    let flags = ids(&pod(""));
    assert!(flags.contains("kubelet.anonymous-auth"));
    assert!(flags.contains("kubelet.read-only-port"));
    assert!(flags.contains("kubelet.authorization-always-allow"));
    assert!(flags.contains("kubelet.authentication-webhook"));
    // With --config the unset settings come from a file we do not see.
    let with_config = ids(&pod(
        ", --config=/var/lib/kubelet/config.yaml, --read-only-port=10255",
    ));
    assert_eq!(
        with_config,
        BTreeSet::from(["kubelet.read-only-port".to_string()])
    );
    let f = check(
        &pod(", --read-only-port=0, --anonymous-auth=false"),
        &PostureConfig::default(),
    );
    assert!(
        !f.iter()
            .any(|f| f.check_id == "kubelet.read-only-port"
                || f.check_id == "kubelet.anonymous-auth")
    );
}

#[test]
fn kubelet_config_in_kubeadm_configmap() {
    let cm = inv_of(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kubelet-config, namespace: kube-system}\ndata:\n  kubelet: |\n    apiVersion: kubelet.config.k8s.io/v1beta1\n    kind: KubeletConfiguration\n    readOnlyPort: 10255\n",
    );
    let findings = check(&cm, &PostureConfig::default());
    let f = findings
        .iter()
        .find(|f| f.check_id == "kubelet.read-only-port")
        .unwrap();
    assert_eq!(f.resource.kind.as_deref(), Some("ConfigMap"));
    assert_eq!(f.evidence[0].path, "data.kubelet.readOnlyPort");
    assert_eq!(f.evidence[0].value, json!(10255));
    // Other ConfigMaps are not kubelet configuration.
    let other = inv_of(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: prod}\ndata:\n  kubelet: 'readOnlyPort: 10255'\n",
    );
    assert!(check(&other, &PostureConfig::default()).is_empty());
}

#[test]
fn command_line_shapes() {
    let sh = inv_of(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: s, namespace: kube-system}\nspec:\n  containers:\n  - name: scheduler\n    image: x\n    command: [/bin/sh, -c, \"exec /usr/local/bin/kube-scheduler --profiling=false --bind-address=127.0.0.1\"]\n",
    );
    assert!(check(&sh, &PostureConfig::default()).is_empty());
    let open = inv_of(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: s, namespace: kube-system}\nspec:\n  containers:\n  - name: scheduler\n    image: x\n    command: [/bin/sh, -c, \"exec /usr/local/bin/kube-scheduler --bind-address=0.0.0.0\"]\n",
    );
    let f = check(&open, &PostureConfig::default());
    assert_eq!(
        f.iter()
            .map(|f| f.check_id.as_ref())
            .collect::<BTreeSet<_>>(),
        BTreeSet::from(["scheduler.bind-address", "scheduler.profiling"])
    );
    // A pod copied from a controller's template is checked through the controller.
    let owned = inv_of(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: s, namespace: kube-system, ownerReferences: [{apiVersion: apps/v1, kind: DaemonSet, name: d, uid: u, controller: true}]}\nspec:\n  containers:\n  - name: scheduler\n    image: x\n    command: [kube-scheduler]\n",
    );
    assert!(check(&owned, &PostureConfig::default()).is_empty());
    // Other programs are ignored, even with look-alike flags.
    let app = inv_of(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx\n        args: [--profiling, --anonymous-auth=true]\n",
    );
    assert!(check(&app, &PostureConfig::default()).is_empty());
    // Disabled checks do not run.
    let config = PostureConfig {
        disabled_checks: vec!["scheduler.profiling".into()],
        ..PostureConfig::default()
    };
    assert_eq!(check(&open, &config).len(), 1);
}

#[test]
fn durations() {
    assert_eq!(duration_secs("0"), Some(0.0));
    assert_eq!(duration_secs("0s"), Some(0.0));
    assert_eq!(duration_secs("4h0m0s"), Some(14400.0));
    assert_eq!(duration_secs("1m30s"), Some(90.0));
    assert_eq!(duration_secs("250ms"), Some(0.25));
    assert_eq!(duration_secs("5x"), None);
    assert_eq!(duration_secs("60"), None);
}
