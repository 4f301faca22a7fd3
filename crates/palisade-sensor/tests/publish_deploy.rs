//! The deploy/sensor manifests grant exactly what the sensor needs: CAP_BPF, CAP_PERFMON and
//! CAP_SYS_RESOURCE with everything else dropped, hostPID, no privileged mode, read-only host
//! mounts except the spool, probes on the health endpoint, resource limits, and RBAC of
//! get/list/watch on pods only.

use serde_json::Value;
use std::path::PathBuf;

fn docs(file: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/sensor")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("manifest");
    let mut out = Vec::new();
    for doc in text.split("\n---") {
        let v: Value = yaml_serde::from_str(doc).expect("valid YAML");
        if !v.is_null() {
            out.push(v);
        }
    }
    out
}

#[test]
fn daemonset_has_exactly_the_needed_privileges() {
    let ds = docs("daemonset.yaml");
    assert_eq!(ds.len(), 1);
    let ds = &ds[0];
    assert_eq!(ds["kind"], "DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true);
    assert!(pod["hostNetwork"].is_null() || pod["hostNetwork"] == false);
    assert!(pod["hostIPC"].is_null() || pod["hostIPC"] == false);
    assert_eq!(pod["serviceAccountName"], "palisade-sensor");
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let mut add: Vec<&str> = sc["capabilities"]["add"]
        .as_array()
        .expect("added capabilities")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    add.sort_unstable();
    assert_eq!(add, ["BPF", "PERFMON", "SYS_RESOURCE"]);

    // Host mounts: read-only, except the spool.
    let volumes = pod["volumes"].as_array().expect("volumes");
    for m in c["volumeMounts"].as_array().expect("mounts") {
        let name = m["name"].as_str().unwrap();
        let volume = volumes.iter().find(|v| v["name"] == name).expect("volume");
        if !volume["hostPath"].is_null() && name != "spool" {
            assert_eq!(m["readOnly"], true, "{name} must be read-only");
        }
    }
    let host_paths: Vec<&str> = volumes
        .iter()
        .filter_map(|v| v["hostPath"]["path"].as_str())
        .collect();
    for needed in ["/sys/kernel/btf", "/sys/fs/cgroup", "/proc"] {
        assert!(host_paths.contains(&needed), "{needed} in {host_paths:?}");
    }

    // Probes on the health endpoint the sensor serves.
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(&args[..2], ["sensor", "run"]);
    assert!(args.contains(&"--health-addr=0.0.0.0:9464"));
    assert!(args.iter().any(|a| a.starts_with("--token-file=")));
    assert!(args.iter().any(|a| a.starts_with("--spool-dir=")));
    assert_eq!(c["ports"][0]["containerPort"], 9464);
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert!(c["resources"]["limits"]["cpu"].is_string());
    assert!(c["resources"]["requests"]["memory"].is_string());
}

#[test]
fn rbac_reads_pods_only_and_the_token_is_a_secret() {
    let rbac = docs("rbac.yaml");
    let roles: Vec<&Value> = rbac
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
        .collect();
    assert_eq!(roles.len(), 1);
    let rules = roles[0]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["apiGroups"], serde_json::json!([""]));
    assert_eq!(rules[0]["resources"], serde_json::json!(["pods"]));
    assert_eq!(
        rules[0]["verbs"],
        serde_json::json!(["get", "list", "watch"])
    );
    assert!(
        rbac.iter()
            .any(|d| d["kind"] == "ServiceAccount" && d["metadata"]["name"] == "palisade-sensor")
    );
    let binding = rbac
        .iter()
        .find(|d| d["kind"] == "ClusterRoleBinding")
        .expect("binding");
    assert_eq!(binding["roleRef"]["name"], "palisade-sensor");
    let secret = docs("secret.yaml");
    assert_eq!(secret[0]["kind"], "Secret");
    assert!(secret[0]["stringData"]["token"].is_string());
    let ds = docs("daemonset.yaml");
    let volumes = ds[0]["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["secret"]["secretName"] == secret[0]["metadata"]["name"])
    );
}
