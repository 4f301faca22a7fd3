//! The security graph, attack paths and queries on a real-shaped inventory.

use palisade_core::Severity;
use palisade_kube::{Inventory, KubeObject};
use palisade_posture::PostureConfig;
use palisade_posture::graph::query::{self, Cell};
use palisade_posture::graph::{
    AttackPath, EdgeKind, NodeKind, SecurityGraph, VulnIndex, attack_paths, path_findings,
};
use palisade_posture::rbac::RbacIndex;
use std::path::Path;

fn fixture_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph")
}

fn inventory(text: &str) -> Inventory {
    let mut inv = Inventory::new(Some("test".into()));
    let mut doc = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line.trim_end() == "---" {
            if !doc.trim().is_empty() {
                let v: serde_json::Value = yaml_serde::from_str(&doc).unwrap();
                if !v.is_null() {
                    inv.objects.push(KubeObject::from_value(v, None).unwrap());
                }
            }
            doc.clear();
        } else {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    inv
}

fn cluster() -> (Inventory, VulnIndex) {
    let text = std::fs::read_to_string(fixture_dir().join("cluster.yaml")).unwrap();
    let vulns = VulnIndex::load(&fixture_dir()).unwrap();
    (inventory(&text), vulns)
}

fn graph() -> SecurityGraph {
    let (inv, vulns) = cluster();
    let rbac = RbacIndex::build(&inv);
    SecurityGraph::build(&inv, &rbac, Some(&vulns), &PostureConfig::default())
}

fn paths_of<'a>(paths: &'a [AttackPath], id: &str) -> Vec<&'a AttackPath> {
    paths.iter().filter(|p| p.id == id).collect()
}

fn names(paths: &[&AttackPath]) -> Vec<String> {
    let mut v: Vec<String> = paths
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p.entry.namespace.as_deref().unwrap_or(""),
                p.entry.name
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn owned_pods_and_replicasets_collapse_into_their_deployment() {
    let g = graph();
    let w = g.find(NodeKind::Workload, Some("shop"), "web").unwrap();
    assert_eq!(g.origin(w).unwrap().kind, "Deployment");
    assert!(
        g.find(NodeKind::Workload, Some("shop"), "web-7d9f")
            .is_none()
    );
    assert!(
        g.find(NodeKind::Workload, Some("shop"), "web-7d9f-abcde")
            .is_none()
    );
    // A bare Pod is a workload, a CronJob too.
    let agent = g
        .find(NodeKind::Workload, Some("shop"), "node-agent")
        .unwrap();
    assert_eq!(g.origin(agent).unwrap().kind, "Pod");
    assert!(
        g.find(NodeKind::Workload, Some("payments"), "billing")
            .is_some()
    );
    // The Pod status gave the image its digest.
    let img = g
        .find(NodeKind::Image, None, "docker.io/library/nginx:1.25")
        .unwrap();
    assert_eq!(
        g.prop_str(img, "digest"),
        Some("sha256:1111111111111111111111111111111111111111111111111111111111111111")
    );
    assert_eq!(g.prop_num(img, "critical_count"), Some(1.0));
    // Secrets referenced by the pod spec, and the ones read through RBAC.
    let mounted: Vec<&str> = g
        .targets(w, EdgeKind::Mounts)
        .map(|s| g.node_name(s))
        .collect();
    assert!(mounted.contains(&"web-env") && mounted.contains(&"web-tls"));
    let sa = g
        .find(NodeKind::ServiceAccount, Some("shop"), "web")
        .unwrap();
    assert!(!g.prop_bool(sa, "cluster_admin"));
    let perms: Vec<&str> = g
        .targets(sa, EdgeKind::Can)
        .map(|p| g.node_name(p))
        .collect();
    assert_eq!(perms, vec!["read secrets cluster-wide"]);
    let billing = g
        .find(NodeKind::ServiceAccount, Some("payments"), "billing")
        .unwrap();
    let perms: Vec<&str> = g
        .targets(billing, EdgeKind::Can)
        .map(|p| g.node_name(p))
        .collect();
    assert_eq!(perms, vec!["read secrets in payments"]);
    let p = g.targets(billing, EdgeKind::Can).next().unwrap();
    let readable: Vec<&str> = g
        .targets(p, EdgeKind::CanRead)
        .map(|s| g.node_name(s))
        .collect();
    assert!(readable.contains(&"billing-cloud") && readable.contains(&"tls-cert"));
    assert!(!readable.contains(&"web-tls"));
}

#[test]
fn exposed_vulnerable_workload() {
    let paths = attack_paths(&graph());
    let found = paths_of(&paths, "path.exposed-vulnerable-workload");
    // web: LoadBalancer + critical. Not api (high, local vector), not internal (not exposed).
    assert_eq!(names(&found), vec!["shop/web"]);
    let chain = found[0].chain();
    assert_eq!(
        chain,
        "internet internet -exposes-> Service shop/web-lb -routes_to-> Deployment shop/web -runs-> container shop/web/nginx -uses_image-> image docker.io/library/nginx:1.25 -has_vulnerability-> vulnerability CVE-2024-0001"
    );
    assert_eq!(found[0].severity, Severity::Critical);
    let g = graph();
    let dot = palisade_posture::graph::dot::paths(&g, &attack_paths(&g));
    assert!(dot.contains("label=\"Service shop/web-lb\""));
    assert!(dot.contains("[label=\"has_vulnerability\"]"));
    assert!(found[0].to_dot(&g).contains("CVE-2024-0001"));
}

#[test]
fn high_network_vulnerability_counts_as_remotely_exploitable() {
    let (inv, _) = cluster();
    let mut vulns = VulnIndex::new();
    let api = std::fs::read_to_string(fixture_dir().join("api-scan.json")).unwrap();
    vulns.add_json(&api.replace("AV:L", "AV:N")).unwrap();
    let rbac = RbacIndex::build(&inv);
    let g = SecurityGraph::build(&inv, &rbac, Some(&vulns), &PostureConfig::default());
    let paths = attack_paths(&g);
    let found = paths_of(&paths, "path.exposed-vulnerable-workload");
    assert_eq!(names(&found), vec!["shop/api"]);
    assert!(found[0].chain().starts_with("internet internet -exposes-> Ingress shop/api -routes_to-> Service shop/api -routes_to-> Deployment shop/api"));
    // Without scan results there is no vulnerability path at all.
    let g = SecurityGraph::build(&inv, &rbac, None, &PostureConfig::default());
    assert!(paths_of(&attack_paths(&g), "path.exposed-vulnerable-workload").is_empty());
}

#[test]
fn exposed_privileged_or_host_access() {
    let paths = attack_paths(&graph());
    let found = paths_of(&paths, "path.exposed-privileged-workload");
    // node-agent: host network. Not internal (not exposed), not restricted-lb (private source
    // ranges), not coredns (kube-system is excluded).
    assert_eq!(names(&found), vec!["shop/node-agent"]);
    assert_eq!(
        found[0].chain(),
        "internet internet -exposes-> Pod shop/node-agent -host_access-> Node node-2"
    );
}

#[test]
fn exposed_dangerous_permissions() {
    let paths = attack_paths(&graph());
    let found = paths_of(&paths, "path.exposed-dangerous-permissions");
    // web reads secrets cluster-wide; nomount runs as the same account without a token.
    assert_eq!(names(&found), vec!["shop/web"]);
    assert!(found[0].chain().ends_with(
        "-runs_as-> ServiceAccount shop/web -can-> permission read secrets cluster-wide"
    ));
    assert_eq!(found[0].severity, Severity::High);
}

#[test]
fn cluster_admin_is_critical() {
    let (mut inv, _) = cluster();
    let extra = inventory(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: api-admin\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n  - kind: ServiceAccount\n    name: default\n    namespace: shop\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: cluster-admin\nrules:\n  - apiGroups: [\"*\"]\n    resources: [\"*\"]\n    verbs: [\"*\"]\n  - nonResourceURLs: [\"*\"]\n    verbs: [\"*\"]\n",
    );
    inv.objects.extend(extra.objects);
    let rbac = RbacIndex::build(&inv);
    let g = SecurityGraph::build(&inv, &rbac, None, &PostureConfig::default());
    let paths = attack_paths(&g);
    let found = paths_of(&paths, "path.exposed-dangerous-permissions");
    let api = found.iter().find(|p| p.entry.name == "api").unwrap();
    assert_eq!(api.severity, Severity::Critical);
    assert!(api.chain().ends_with("-can-> permission cluster-admin"));
    let r = query::run_text(&g, "cluster-admin-workloads").unwrap();
    let ws: Vec<String> = r.rows.iter().map(|row| row[0].to_string()).collect();
    assert!(ws.contains(&"Deployment shop/api".to_string()));
}

#[test]
fn metadata_endpoint_reachability_follows_egress_policies() {
    let g = graph();
    let reachable = |name: &str, ns: &str| {
        let w = g.find(NodeKind::Workload, Some(ns), name).unwrap();
        g.prop_bool(w, "metadata_reachable")
    };
    assert!(
        !reachable("web", "shop"),
        "0.0.0.0/0 except 169.254.169.254/32"
    );
    assert!(reachable("api", "shop"), "0.0.0.0/0 without except");
    assert!(reachable("internal", "shop"), "no policy selects it");
    assert!(!reachable("dns", "shop"), "only 53/UDP");
    assert!(
        reachable("node-agent", "shop"),
        "host network ignores policies"
    );
    assert!(!reachable("billing", "payments"), "default deny egress");
    let paths = attack_paths(&g);
    let found = paths_of(&paths, "path.metadata-reachable");
    assert_eq!(
        names(&found),
        vec![
            "shop/api",
            "shop/internal",
            "shop/node-agent",
            "shop/nomount",
            "shop/restricted-lb"
        ]
    );
    // Exposed workloads rate higher.
    let api = found.iter().find(|p| p.entry.name == "api").unwrap();
    assert_eq!(api.severity, Severity::High);
    let internal = found.iter().find(|p| p.entry.name == "internal").unwrap();
    assert_eq!(internal.severity, Severity::Medium);
}

#[test]
fn cloud_credentials_readable() {
    let paths = attack_paths(&graph());
    let found = paths_of(&paths, "path.cloud-credentials-readable");
    // billing reads secrets in payments, where billing-cloud holds AWS keys. web reads secrets
    // cluster-wide too (so billing-cloud as well), and internal runs as web; reporter has no such
    // permission, nomount no token.
    assert_eq!(
        names(&found),
        vec!["payments/billing", "shop/internal", "shop/web"]
    );
    let billing = found.iter().find(|p| p.entry.name == "billing").unwrap();
    assert!(
        billing
            .chain()
            .ends_with("-can_read-> Secret payments/billing-cloud")
    );
}

#[test]
fn findings_carry_resource_chain_and_config() {
    let g = graph();
    let findings = path_findings(&g, &PostureConfig::default());
    let web = findings
        .iter()
        .find(|f| f.check_id == "path.exposed-vulnerable-workload")
        .unwrap();
    assert_eq!(web.resource.kind.as_deref(), Some("Deployment"));
    assert_eq!(web.resource.name.as_deref(), Some("web"));
    assert_eq!(web.resource.namespace.as_deref(), Some("shop"));
    assert_eq!(web.resource.cluster.as_deref(), Some("test"));
    assert_eq!(web.evidence[0].path, "chain");
    assert_eq!(web.evidence.len(), 7);
    assert_eq!(web.category, palisade_posture::Category::AttackPath);
    let mut config = PostureConfig::default();
    config
        .disabled_checks
        .push("path.metadata-reachable".into());
    config
        .severity_overrides
        .insert("path.cloud-credentials-readable".into(), Severity::Low);
    let findings = path_findings(&g, &config);
    assert!(
        findings
            .iter()
            .all(|f| f.check_id != "path.metadata-reachable")
    );
    assert!(
        findings
            .iter()
            .filter(|f| f.check_id == "path.cloud-credentials-readable")
            .all(|f| f.severity == Severity::Low)
    );
    // Every path id is a declared check.
    for f in &findings {
        assert!(
            palisade_posture::graph::CHECKS
                .iter()
                .any(|c| c.id == f.check_id)
        );
    }
}

#[test]
fn excluded_namespaces_are_configurable() {
    let (inv, vulns) = cluster();
    let rbac = RbacIndex::build(&inv);
    let config = PostureConfig {
        excluded_namespaces: vec![],
        ..Default::default()
    };
    let g = SecurityGraph::build(&inv, &rbac, Some(&vulns), &config);
    let paths = attack_paths(&g);
    let found = paths_of(&paths, "path.exposed-privileged-workload");
    assert_eq!(
        names(&found),
        vec!["kube-system/coredns", "shop/node-agent"]
    );
}

#[test]
fn builtin_queries_run_on_the_graph() {
    let g = graph();
    for q in query::BUILTIN {
        query::parse(q.query).unwrap_or_else(|e| panic!("{}: {}", q.name, e.render(q.query)));
    }
    let r = query::run_text(&g, "exposed-critical").unwrap();
    assert_eq!(
        r.columns,
        vec!["w", "c.container", "i", "v", "v.cvss", "v.fixed_versions"]
    );
    assert_eq!(r.rows.len(), 1);
    assert_eq!(r.rows[0][0].to_string(), "Deployment shop/web");
    assert_eq!(r.rows[0][3].to_string(), "vulnerability CVE-2024-0001");
    assert_eq!(r.rows[0][4], Cell::Value(serde_json::json!(9.8)));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["rows"][0][0]["kind"], "workload");
    assert_eq!(json["rows"][0][0]["object_kind"], "Deployment");
    let dot = r.to_dot(&g);
    assert!(dot.contains("-> ") && dot.contains("CVE-2024-0001"));

    let r = query::run_text(&g, "internet-to-node").unwrap();
    let mut rows: Vec<String> = r
        .rows
        .iter()
        .map(|row| format!("{} {}", row[0], row[1]))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            "Deployment kube-system/coredns node (scheduled node)",
            "Pod shop/node-agent Node node-2"
        ]
    );

    let r = query::run_text(&g, "secrets-readers").unwrap();
    let mut ws: Vec<String> = r.rows.iter().map(|row| row[0].to_string()).collect();
    ws.sort();
    assert_eq!(
        ws,
        vec![
            "CronJob payments/billing",
            "Deployment shop/internal",
            "Deployment shop/nomount",
            "Deployment shop/web"
        ]
    );

    // The five paths plus coredns: queries see excluded namespaces too.
    let r = query::run_text(&g, "metadata-reachable").unwrap();
    assert_eq!(r.rows.len(), 6);
}

#[test]
fn user_queries() {
    let g = graph();
    let run = |q: &str| query::run_text(&g, q).unwrap();
    // Variable-length hops from the internet.
    let r = run("internet -*1..3-> w:workload return w.name");
    let mut names: Vec<String> = r.rows.iter().map(|row| row[0].to_string()).collect();
    names.sort();
    // Queries do not exclude namespaces: coredns is exposed too.
    assert_eq!(
        names,
        vec!["api", "coredns", "node-agent", "nomount", "web"]
    );
    // Regex, glob, in, exists, not, where.
    assert_eq!(run("w:workload[name ~ /^no/]").rows.len(), 2);
    assert_eq!(run("w:workload[name ~ \"*-lb\"]").rows.len(), 1);
    assert_eq!(
        run("w:workload[object_kind in [CronJob, Pod]]").rows.len(),
        2
    );
    assert_eq!(run("w:workload[host_paths exists]").rows.len(), 0);
    assert_eq!(
        run("w:workload[namespace = shop and not exposed = true]")
            .rows
            .len(),
        3
    );
    assert_eq!(
        run("w:workload -runs_as-> sa:serviceaccount where sa.name = web and w.exposed = true return w").rows.len(),
        2
    );
    assert_eq!(run("v:vulnerability[severity >= high]").rows.len(), 2);
    assert_eq!(run("i:image[critical_count > 0]").rows.len(), 1);
    // Reverse edges.
    let r = run(
        "s:secret[cloud_credentials=true] <-can_read- p:permission <-can- sa:serviceaccount return sa",
    );
    assert_eq!(r.rows.len(), 2);
    // Limit.
    let r = run("w:workload limit 2");
    assert_eq!(r.rows.len(), 2);
    assert!(r.truncated);
}

#[test]
fn manifests_without_namespace_land_in_default() {
    let inv = inventory(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: deployer
spec:
  selector:
    matchLabels: {app: deployer}
  template:
    metadata:
      labels: {app: deployer}
    spec:
      serviceAccountName: deployer
      containers:
        - name: main
          image: example/deployer:3
---
apiVersion: v1
kind: Service
metadata:
  name: deployer
spec:
  type: LoadBalancer
  selector: {app: deployer}
  ports:
    - port: 80
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: pod-creator
rules:
  - apiGroups: [""]
    resources: ["pods", "pods/exec"]
    verbs: ["create"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: deployer
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-creator}
subjects:
  - kind: ServiceAccount
    name: deployer
    namespace: default
"#,
    );
    let rbac = RbacIndex::build(&inv);
    let g = SecurityGraph::build(&inv, &rbac, None, &PostureConfig::default());
    let findings = path_findings(&g, &PostureConfig::default());
    let f = findings
        .iter()
        .find(|f| f.check_id == "path.exposed-dangerous-permissions")
        .expect("permission path");
    assert_eq!(f.resource.namespace, None);
    assert_eq!(f.resource.name.as_deref(), Some("deployer"));
    assert!(f.message.contains("create pods cluster-wide"));
    assert!(f.message.contains("exec into pods cluster-wide"));
    // No egress policy at all: metadata reachable too.
    assert!(
        findings
            .iter()
            .any(|f| f.check_id == "path.metadata-reachable")
    );
}
