//! Building the graph from an inventory, the RBAC index, the exposure index and scan results.

use super::cidr::Cidr;
use super::model::{EdgeKind, NodeId, NodeKind, Origin, PropValue, SecurityGraph};
use super::vulns::{VulnIndex, digest_of_image_id, normalize_reference, split_digest};
use crate::config::PostureConfig;
use crate::net::{Exposure, ExposureIndex, ExposureVia, LabelSelector};
use crate::pod::PodTemplate;
use crate::rbac::{RbacIndex, Subject};
use palisade_core::Severity;
use palisade_kube::{Inventory, KubeObject};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// The name of the single Internet node.
pub const INTERNET: &str = "internet";
/// The name of the node standing for "the node the pod is scheduled on" when no `nodeName` is known.
pub const ANY_NODE: &str = "(scheduled node)";
/// The cloud metadata endpoint the metadata path checks.
pub const METADATA_IP: &str = "169.254.169.254";

/// One dangerous ability looked up for every service account: id, description, and the requests
/// (verb, API group, resource) any of which grants it.
struct Ability {
    id: &'static str,
    label: &'static str,
    requests: &'static [(&'static str, &'static str, &'static str)],
}

const ABILITIES: &[Ability] = &[
    Ability {
        id: "read-secrets",
        label: "read secrets",
        requests: &[
            ("get", "", "secrets"),
            ("list", "", "secrets"),
            ("watch", "", "secrets"),
        ],
    },
    Ability {
        id: "create-pods",
        label: "create pods",
        requests: &[("create", "", "pods")],
    },
    Ability {
        id: "create-workloads",
        label: "create workloads",
        requests: &[
            ("create", "apps", "deployments"),
            ("create", "apps", "daemonsets"),
            ("create", "apps", "statefulsets"),
            ("create", "apps", "replicasets"),
            ("create", "batch", "jobs"),
            ("create", "batch", "cronjobs"),
            ("create", "", "replicationcontrollers"),
        ],
    },
    Ability {
        id: "exec",
        label: "exec into pods",
        requests: &[("create", "", "pods/exec"), ("get", "", "pods/exec")],
    },
    Ability {
        id: "impersonate",
        label: "impersonate",
        requests: &[
            ("impersonate", "", "users"),
            ("impersonate", "", "groups"),
            ("impersonate", "", "serviceaccounts"),
        ],
    },
    Ability {
        id: "escalate",
        label: "bind or escalate roles",
        requests: &[
            ("bind", "rbac.authorization.k8s.io", "clusterroles"),
            ("escalate", "rbac.authorization.k8s.io", "clusterroles"),
            ("bind", "rbac.authorization.k8s.io", "roles"),
            ("escalate", "rbac.authorization.k8s.io", "roles"),
        ],
    },
    Ability {
        id: "create-tokens",
        label: "create service account tokens",
        requests: &[("create", "", "serviceaccounts/token")],
    },
    Ability {
        id: "nodes-proxy",
        label: "proxy to kubelets",
        requests: &[("get", "", "nodes/proxy"), ("create", "", "nodes/proxy")],
    },
];

/// Keys of Secret `data` / `stringData` and names that suggest cloud credentials.
const CLOUD_CREDENTIAL_HINTS: &[&str] = &[
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws-access-key",
    "credentials.json",
    "key.json",
    "service-account.json",
    "serviceaccount.json",
    "gcp",
    "gcs",
    "google_application_credentials",
    "azure_client_secret",
    "azure.json",
    "azurestorageaccountkey",
    "client_secret",
    "cloud-credentials",
    "cloud_credentials",
    "aws-credentials",
];

/// A workload being assembled: its top-level object and the Pods that collapse into it.
struct Pending<'a> {
    node: NodeId,
    top: Option<&'a KubeObject>,
    objects: Vec<&'a KubeObject>,
}

impl SecurityGraph {
    /// Builds the graph of an inventory. `vulns` attaches scan results to images; `config` marks
    /// workloads of excluded namespaces (`excluded=true`), which attack paths skip.
    pub fn build(
        inventory: &Inventory,
        rbac: &RbacIndex,
        vulns: Option<&VulnIndex>,
        config: &PostureConfig,
    ) -> SecurityGraph {
        let exposures = ExposureIndex::build(inventory);
        Self::build_with_exposures(inventory, rbac, &exposures, vulns, config)
    }

    /// [`SecurityGraph::build`] with an exposure index the caller already built for the checks.
    pub fn build_with_exposures(
        inventory: &Inventory,
        rbac: &RbacIndex,
        exposures: &ExposureIndex,
        vulns: Option<&VulnIndex>,
        config: &PostureConfig,
    ) -> SecurityGraph {
        let mut g = SecurityGraph::new(inventory.cluster.clone());
        let internet = g.node(NodeKind::Internet, None, INTERNET);
        let _ = internet;

        // Namespaces, Nodes, Secrets and ServiceAccounts declared in the inventory.
        for o in &inventory.objects {
            match o.kind.as_str() {
                "Namespace" => {
                    let n = g.node(NodeKind::Namespace, None, &o.name);
                    g.set_origin(n, origin(o));
                }
                "Node" => {
                    let n = g.node(NodeKind::Node, None, &o.name);
                    g.set_origin(n, origin(o));
                }
                "Secret" => {
                    let n = g.node(NodeKind::Secret, Some(ns_of(o)), &o.name);
                    g.set_origin(n, origin(o));
                    g.set_bool(n, "declared", true);
                    let ty = o.get("type").and_then(Value::as_str).unwrap_or("Opaque");
                    g.set_str(n, "type", ty);
                    g.set_bool(n, "cloud_credentials", looks_like_cloud_credentials(o));
                    link_namespace(&mut g, n, Some(ns_of(o)));
                }
                "ServiceAccount" => {
                    let n = g.node(NodeKind::ServiceAccount, Some(ns_of(o)), &o.name);
                    g.set_origin(n, origin(o));
                    g.set_bool(n, "declared", true);
                    if let Some(b) = o
                        .get("automountServiceAccountToken")
                        .and_then(Value::as_bool)
                    {
                        g.set_bool(n, "automount", b);
                    }
                    link_namespace(&mut g, n, Some(ns_of(o)));
                }
                _ => {}
            }
        }

        // Workloads: every object with a pod template, collapsed into its top-level owner.
        let by_identity: HashMap<(&str, &str, &str), &KubeObject> = inventory
            .objects
            .iter()
            .filter(|o| PodTemplate::of(o).is_some())
            .map(|o| ((o.kind.as_str(), ns_of(o), o.name.as_str()), o))
            .collect();
        let mut pending: Vec<Pending<'_>> = Vec::new();
        let mut pending_by_key: HashMap<(String, String, String), usize> = HashMap::new();
        for o in &inventory.objects {
            if PodTemplate::of(o).is_none() {
                continue;
            }
            let (kind, name, top) = top_owner(o, &by_identity);
            let key = (kind.to_string(), ns_of(o).to_string(), name.to_string());
            let idx = match pending_by_key.get(&key) {
                Some(i) => *i,
                None => {
                    let mut node_name = name.to_string();
                    if g.find(NodeKind::Workload, Some(ns_of(o)), &node_name)
                        .is_some()
                    {
                        node_name = format!("{name} ({kind})");
                    }
                    let node = g.node(NodeKind::Workload, Some(ns_of(o)), &node_name);
                    g.set_str(node, "object_kind", kind);
                    pending.push(Pending {
                        node,
                        top,
                        objects: Vec::new(),
                    });
                    pending_by_key.insert(key, pending.len() - 1);
                    pending.len() - 1
                }
            };
            pending[idx].objects.push(o);
        }

        let policies = EgressPolicies::build(inventory);
        let mut sa_done: HashMap<NodeId, ()> = HashMap::new();
        let mut vuln_nodes = VulnNodes::new();
        let mut grant_namespaces: Vec<Option<String>> = Vec::new();
        for p in &pending {
            let w = p.node;
            // The template that defines the workload: the top-level owner's, else the first object's.
            let main = p.top.or_else(|| p.objects.first().copied());
            let Some(main) = main else { continue };
            let Some(template) = PodTemplate::of(main) else {
                continue;
            };
            let ns = Some(ns_of(main));
            g.set_origin(w, origin(main));
            link_namespace(&mut g, w, ns);
            g.set_bool(w, "excluded", config.is_excluded_namespace(ns));
            workload_properties(&mut g, w, &template);

            // Containers and images (digests from Pod statuses when present).
            let digests = pod_digests(&p.objects);
            for c in template.containers() {
                let cname = format!("{}/{}", g.node_name(w), c.name);
                let cn = g.node(NodeKind::Container, ns, &cname);
                g.edge(w, EdgeKind::Runs, cn);
                g.set_str(cn, "container", c.name);
                g.set_str(
                    cn,
                    "container_type",
                    match c.kind {
                        crate::pod::ContainerKind::Init => "init",
                        crate::pod::ContainerKind::Regular => "regular",
                        crate::pod::ContainerKind::Ephemeral => "ephemeral",
                    },
                );
                g.set_str(cn, "image", c.image());
                let privileged = c.security("privileged").and_then(Value::as_bool) == Some(true);
                g.set_bool(cn, "privileged", privileged);
                if let Some(b) = c
                    .security("allowPrivilegeEscalation")
                    .and_then(Value::as_bool)
                {
                    g.set_bool(cn, "allow_privilege_escalation", b);
                }
                if let Some(b) = c.security("runAsNonRoot").and_then(Value::as_bool) {
                    g.set_bool(cn, "run_as_non_root", b);
                }
                let caps: Vec<&str> = c
                    .security("capabilities")
                    .and_then(|v| v.get("add"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if !caps.is_empty() {
                    g.set_list(cn, "capabilities", caps);
                }
                if !c.image().is_empty() {
                    let digest = digests.get(c.name).map(String::as_str);
                    let img = image_node(&mut g, c.image(), digest, vulns, &mut vuln_nodes);
                    g.edge(cn, EdgeKind::UsesImage, img);
                }
            }

            // Service account and its dangerous permissions.
            let sa_name = template.service_account();
            if let Some(ns) = ns {
                let sa = g.node(NodeKind::ServiceAccount, Some(ns), sa_name);
                g.edge(w, EdgeKind::RunsAs, sa);
                g.set_str(w, "service_account", sa_name);
                link_namespace(&mut g, sa, Some(ns));
                if sa_done.insert(sa, ()).is_none() {
                    permissions(&mut g, sa, ns, sa_name, rbac, &mut grant_namespaces);
                }
                let automount = template
                    .field("automountServiceAccountToken")
                    .and_then(Value::as_bool)
                    .or_else(|| match g.prop(sa, "automount") {
                        Some(PropValue::Bool(b)) => Some(*b),
                        _ => None,
                    })
                    .unwrap_or(true);
                g.set_bool(w, "automount_token", automount);
            }

            // Secrets the pods reference.
            for (secret, how) in referenced_secrets(&template) {
                let s = g.node(NodeKind::Secret, ns, secret);
                g.edge(w, EdgeKind::Mounts, s);
                g.push_list(s, "referenced_as", how);
                link_namespace(&mut g, s, ns);
            }

            // Host access.
            if g.prop_bool(w, "host_access") {
                let mut nodes: BTreeSet<&str> = p
                    .objects
                    .iter()
                    .filter_map(|o| o.get("spec.nodeName").and_then(Value::as_str))
                    .collect();
                if let Some(n) = template.field("nodeName").and_then(Value::as_str) {
                    nodes.insert(n);
                }
                if nodes.is_empty() {
                    nodes.insert(ANY_NODE);
                }
                for n in nodes {
                    let node = g.node(NodeKind::Node, None, n);
                    g.edge(w, EdgeKind::HostAccess, node);
                }
            }

            // Exposure to the internet.
            let mut list: Vec<&Exposure> = Vec::new();
            for o in std::iter::once(main).chain(p.objects.iter().copied()) {
                for e in exposures.exposures_of(o) {
                    if !list.contains(&e) {
                        list.push(e);
                    }
                }
            }
            expose(&mut g, w, ns, &list);

            // Egress to the metadata endpoint.
            let host_network = g.prop_bool(w, "host_network");
            let labels: serde_json::Map<String, Value> = template
                .labels()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect();
            let verdict = policies.metadata_verdict(ns, &labels, host_network);
            g.set_bool(w, "metadata_reachable", verdict.reachable);
            if !verdict.policies.is_empty() {
                g.set_list(
                    w,
                    "egress_policies",
                    verdict.policies.iter().map(String::as_str),
                );
            }
        }

        // Services and Ingresses that route nowhere still appear (with their namespace).
        for o in &inventory.objects {
            let kind = match o.kind.as_str() {
                "Service" => NodeKind::Service,
                "Ingress" => NodeKind::Ingress,
                _ => continue,
            };
            let n = g.node(kind, Some(ns_of(o)), &o.name);
            if g.origin(n).is_none() {
                g.set_origin(n, origin(o));
            }
            if kind == NodeKind::Service {
                let ty = o
                    .get("spec.type")
                    .and_then(Value::as_str)
                    .unwrap_or("ClusterIP");
                g.set_str(n, "type", ty);
            }
            link_namespace(&mut g, n, Some(ns_of(o)));
        }

        // Read-secrets permissions reach the Secrets in their scope.
        let secrets: Vec<NodeId> = g.nodes_of(NodeKind::Secret).to_vec();
        let perms: Vec<NodeId> = g.nodes_of(NodeKind::Permission).to_vec();
        let mut secrets_by_ns: HashMap<Option<u32>, Vec<NodeId>> = HashMap::new();
        for s in &secrets {
            secrets_by_ns
                .entry(g.nodes[*s as usize].namespace)
                .or_default()
                .push(*s);
        }
        for p in perms {
            if g.prop_str(p, "ability") != Some("read-secrets") {
                continue;
            }
            let targets: Vec<NodeId> = if g.prop_bool(p, "cluster_wide") {
                secrets.clone()
            } else {
                let scope = g.prop_str(p, "scope").and_then(|s| g.lookup(s));
                secrets_by_ns.get(&scope).cloned().unwrap_or_default()
            };
            for s in targets {
                g.edge(p, EdgeKind::CanRead, s);
            }
        }

        g.finish();
        g
    }
}

/// The namespace of a namespaced object; manifests that leave it out go to `default`, as
/// `kubectl apply` without `-n` would put them.
fn ns_of(o: &KubeObject) -> &str {
    o.namespace.as_deref().unwrap_or("default")
}

fn origin(o: &KubeObject) -> Origin {
    Origin {
        kind: o.kind.clone(),
        namespace: o.namespace.clone(),
        name: o.name.clone(),
        source: o.source.clone(),
    }
}

fn link_namespace(g: &mut SecurityGraph, node: NodeId, ns: Option<&str>) {
    if let Some(ns) = ns {
        let n = g.node(NodeKind::Namespace, None, ns);
        g.edge(node, EdgeKind::InNamespace, n);
    }
}

/// The controller owner reference of an object: (kind, name).
fn controller_of(o: &KubeObject) -> Option<(&str, &str)> {
    o.metadata()?
        .get("ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| Some((r.get("kind")?.as_str()?, r.get("name")?.as_str()?)))
}

/// The top-level owner of a workload object: follows controller owner references through the
/// inventory (Pod → ReplicaSet → Deployment, Pod → Job → CronJob). An owner that is not in the
/// inventory still names the workload (a Pod of an unlisted ReplicaSet collapses into it).
fn top_owner<'a>(
    o: &'a KubeObject,
    by_identity: &HashMap<(&str, &str, &str), &'a KubeObject>,
) -> (&'a str, &'a str, Option<&'a KubeObject>) {
    let mut current = o;
    for _ in 0..4 {
        let Some((kind, name)) = controller_of(current) else {
            break;
        };
        if !crate::pod::WORKLOAD_KINDS.iter().any(|(k, _)| *k == kind) {
            break;
        }
        match by_identity.get(&(kind, ns_of(current), name)) {
            Some(next) => current = next,
            None => return (kind, name, None),
        }
    }
    (current.kind.as_str(), current.name.as_str(), Some(current))
}

fn workload_properties(g: &mut SecurityGraph, w: NodeId, t: &PodTemplate<'_>) {
    let flag = |f: &str| t.field(f).and_then(Value::as_bool) == Some(true);
    let host_network = flag("hostNetwork");
    let host_pid = flag("hostPID");
    let host_ipc = flag("hostIPC");
    let host_paths: Vec<&str> = t
        .field("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("hostPath")?.get("path")?.as_str())
        .collect();
    let privileged = t
        .containers()
        .any(|c| c.security("privileged").and_then(Value::as_bool) == Some(true));
    let host_ports: Vec<String> = t
        .containers()
        .flat_map(|c| {
            c.spec
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("hostPort")?.as_u64())
        })
        .map(|p| p.to_string())
        .collect();
    let mut reasons = Vec::new();
    if privileged {
        reasons.push("privileged");
    }
    if host_network {
        reasons.push("hostNetwork");
    }
    if host_pid {
        reasons.push("hostPID");
    }
    if host_ipc {
        reasons.push("hostIPC");
    }
    if !host_paths.is_empty() {
        reasons.push("hostPath");
    }
    g.set_bool(w, "privileged", privileged);
    g.set_bool(w, "host_network", host_network);
    g.set_bool(w, "host_pid", host_pid);
    g.set_bool(w, "host_ipc", host_ipc);
    g.set_bool(w, "host_path", !host_paths.is_empty());
    if !host_paths.is_empty() {
        g.set_list(w, "host_paths", host_paths);
    }
    if !host_ports.is_empty() {
        g.set_list(w, "host_ports", host_ports.iter().map(String::as_str));
    }
    g.set_bool(w, "host_access", !reasons.is_empty());
    if !reasons.is_empty() {
        g.set_list(w, "host_access_reasons", reasons);
    }
    let labels: Vec<String> = t.labels().map(|(k, v)| format!("{k}={v}")).collect();
    if !labels.is_empty() {
        g.set_list(w, "labels", labels.iter().map(String::as_str));
    }
    if let Some(r) = t.object.get("spec.replicas").and_then(Value::as_f64) {
        g.set_num(w, "replicas", r);
    }
    // Defaults the exposure step overwrites.
    g.set_bool(w, "exposed", false);
}

/// Container name → image digest from the statuses of the workload's Pods.
fn pod_digests<'a>(objects: &[&'a KubeObject]) -> HashMap<&'a str, String> {
    let mut out = HashMap::new();
    for o in objects.iter().filter(|o| o.kind == "Pod") {
        for field in [
            "initContainerStatuses",
            "containerStatuses",
            "ephemeralContainerStatuses",
        ] {
            let statuses = o
                .get("status")
                .and_then(|s| s.get(field))
                .and_then(Value::as_array);
            for s in statuses.into_iter().flatten() {
                let (Some(name), Some(id)) = (
                    s.get("name").and_then(Value::as_str),
                    s.get("imageID").and_then(Value::as_str),
                ) else {
                    continue;
                };
                if let Some(d) = digest_of_image_id(id) {
                    out.entry(name).or_insert_with(|| d.to_string());
                }
            }
        }
    }
    out
}

type VulnNodes = HashMap<(String, Severity, bool, u64, bool), NodeId>;

fn image_node(
    g: &mut SecurityGraph,
    image: &str,
    status_digest: Option<&str>,
    vulns: Option<&VulnIndex>,
    vuln_nodes: &mut VulnNodes,
) -> NodeId {
    let reference = normalize_reference(image);
    let digest = split_digest(image).1.or(status_digest);
    let n = g.node(NodeKind::Image, None, &reference);
    if g.prop(n, "reference").is_some() {
        if let Some(d) = digest
            && g.prop(n, "digest").is_none()
        {
            g.set_str(n, "digest", d);
        }
        return n;
    }
    g.set_str(n, "reference", image);
    let (name, _) = split_digest(&reference);
    let (registry, repo) = name.split_once('/').unwrap_or(("", name));
    g.set_str(n, "registry", registry);
    let last_colon = repo.rfind(':').filter(|i| !repo[*i..].contains('/'));
    match last_colon {
        Some(i) => {
            g.set_str(n, "repository", &repo[..i]);
            g.set_str(n, "tag", &repo[i + 1..]);
        }
        None => g.set_str(n, "repository", repo),
    }
    if let Some(d) = digest {
        g.set_str(n, "digest", d);
    }
    let found = vulns.and_then(|v| v.lookup(&reference, digest));
    g.set_bool(n, "scanned", found.is_some());
    let Some(found) = found else { return n };
    let mut counts = [0u32; 6];
    let mut fixable = 0;
    let mut max_cvss: f64 = 0.0;
    for f in &found.findings {
        counts[f.severity as usize] += 1;
        if f.fixed_version.is_some() {
            fixable += 1;
        }
        max_cvss = max_cvss.max(f.cvss);
        // One node per id and rating: the same id rated alike in several images is one node.
        let key = (
            f.id.clone(),
            f.severity,
            f.network,
            f.cvss.to_bits(),
            f.fixed_version.is_some(),
        );
        let v = match vuln_nodes.get(&key) {
            Some(v) => *v,
            None => {
                let v = g.add_node(NodeKind::Vulnerability, None, &f.id);
                g.set_str(v, "severity", f.severity.as_str());
                g.set_num(v, "cvss", f.cvss);
                g.set_bool(v, "network", f.network);
                g.set_bool(v, "fixable", f.fixed_version.is_some());
                vuln_nodes.insert(key, v);
                v
            }
        };
        g.edge(n, EdgeKind::HasVulnerability, v);
        if !f.package.is_empty() {
            g.push_list(v, "packages", &f.package);
        }
        if let Some(fv) = &f.fixed_version {
            g.push_list(v, "fixed_versions", fv);
        }
    }
    g.set_num(
        n,
        "critical_count",
        counts[Severity::Critical as usize] as f64,
    );
    g.set_num(n, "high_count", counts[Severity::High as usize] as f64);
    g.set_num(n, "vuln_count", found.findings.len() as f64);
    g.set_num(n, "fixable_count", fixable as f64);
    g.set_num(n, "max_cvss", max_cvss);
    n
}

/// Dangerous abilities of one service account, as Permission nodes it `can`.
fn permissions(
    g: &mut SecurityGraph,
    sa: NodeId,
    ns: &str,
    name: &str,
    rbac: &RbacIndex,
    scratch: &mut Vec<Option<String>>,
) {
    let subject = Subject::service_account(ns, name);
    let cluster_admin = rbac.is_cluster_admin(&subject);
    g.set_bool(sa, "cluster_admin", cluster_admin);
    if cluster_admin {
        let p = g.node(NodeKind::Permission, None, "cluster-admin");
        g.set_str(p, "ability", "cluster-admin");
        g.set_str(p, "scope", "cluster");
        g.set_bool(p, "cluster_wide", true);
        g.edge(sa, EdgeKind::Can, p);
        g.push_list(sa, "abilities", "cluster-admin");
    }
    // Scopes to test: cluster-wide, then every namespace a grant of the subject names.
    scratch.clear();
    scratch.push(None);
    for grant in rbac.grants_of(&subject) {
        if let Some(n) = &grant.namespace
            && !scratch.iter().any(|s| s.as_deref() == Some(n.as_str()))
        {
            scratch.push(Some(n.clone()));
        }
    }
    for ability in ABILITIES {
        let mut cluster_wide = false;
        for scope in scratch.iter() {
            if cluster_wide {
                break;
            }
            let allowed = ability
                .requests
                .iter()
                .any(|(verb, group, res)| rbac.can(&subject, verb, group, res, scope.as_deref()));
            if !allowed {
                continue;
            }
            let (label, scope_name) = match scope {
                None => {
                    cluster_wide = true;
                    (format!("{} cluster-wide", ability.label), "cluster")
                }
                Some(n) => (format!("{} in {n}", ability.label), n.as_str()),
            };
            let p = g.node(NodeKind::Permission, None, &label);
            g.set_str(p, "ability", ability.id);
            g.set_str(p, "scope", scope_name);
            g.set_bool(p, "cluster_wide", scope.is_none());
            g.edge(sa, EdgeKind::Can, p);
            g.push_list(sa, "abilities", ability.id);
        }
    }
}

/// Secret names a pod spec references, with how (`volume`, `projected`, `envFrom`, `env`,
/// `imagePullSecret`).
fn referenced_secrets<'a>(t: &PodTemplate<'a>) -> Vec<(&'a str, &'static str)> {
    let mut out = Vec::new();
    for v in t
        .field("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(n) = v
            .get("secret")
            .and_then(|s| s.get("secretName"))
            .and_then(Value::as_str)
        {
            out.push((n, "volume"));
        }
        let sources = v
            .get("projected")
            .and_then(|p| p.get("sources"))
            .and_then(Value::as_array);
        for s in sources.into_iter().flatten() {
            if let Some(n) = s
                .get("secret")
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str)
            {
                out.push((n, "projected"));
            }
        }
    }
    for c in t.containers() {
        for e in c
            .spec
            .get("envFrom")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = e
                .get("secretRef")
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str)
            {
                out.push((n, "envFrom"));
            }
        }
        for e in c
            .spec
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = e
                .get("valueFrom")
                .and_then(|v| v.get("secretKeyRef"))
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str);
            if let Some(n) = r {
                out.push((n, "env"));
            }
        }
    }
    for s in t
        .field("imagePullSecrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(n) = s.get("name").and_then(Value::as_str) {
            out.push((n, "imagePullSecret"));
        }
    }
    out.retain(|(n, _)| !n.is_empty());
    out
}

fn looks_like_cloud_credentials(o: &KubeObject) -> bool {
    let hit = |s: &str| {
        let lower = s.to_ascii_lowercase();
        CLOUD_CREDENTIAL_HINTS.iter().any(|h| lower.contains(h))
    };
    let keys = ["data", "stringData"]
        .into_iter()
        .filter_map(|f| o.value.get(f).and_then(Value::as_object))
        .flat_map(|m| m.keys());
    hit(&o.name) || keys.into_iter().any(|k| hit(k))
}

/// True when a client range is not only private, loopback or link-local addresses.
fn public_range(range: &str) -> bool {
    match Cidr::parse(range) {
        Some(c) => !c.is_private(),
        None => true,
    }
}

fn expose(g: &mut SecurityGraph, w: NodeId, ns: Option<&str>, list: &[&Exposure]) {
    let internet = g.node(NodeKind::Internet, None, INTERNET);
    let mut exposed = false;
    for e in list {
        let from_internet = !e.internal
            && (e.source_ranges.is_empty() || e.source_ranges.iter().any(|r| public_range(r)));
        let description = format!("{} {}", e.via.as_str(), e.object);
        g.push_list(w, "exposure", &description);
        if !e.ports.is_empty() {
            for p in &e.ports {
                g.push_list(w, "exposed_ports", &p.to_string());
            }
        }
        if !e.source_ranges.is_empty() {
            for r in &e.source_ranges {
                g.push_list(w, "source_ranges", r);
            }
        }
        let object_name = e.object.rsplit('/').next().unwrap_or(&e.object);
        let entry = match e.via {
            ExposureVia::HostNetwork | ExposureVia::HostPort => {
                if from_internet {
                    g.edge(internet, EdgeKind::Exposes, w);
                }
                w
            }
            ExposureVia::Ingress => {
                let ing = g.node(NodeKind::Ingress, ns, object_name);
                let svc_name = e
                    .service
                    .as_deref()
                    .and_then(|s| s.rsplit('/').next())
                    .unwrap_or(object_name);
                let svc = g.node(NodeKind::Service, ns, svc_name);
                g.edge(ing, EdgeKind::RoutesTo, svc);
                g.edge(svc, EdgeKind::RoutesTo, w);
                if from_internet {
                    g.edge(internet, EdgeKind::Exposes, ing);
                }
                if let Some(tls) = e.tls {
                    g.set_bool(ing, "tls", tls);
                }
                ing
            }
            _ => {
                let svc = g.node(NodeKind::Service, ns, object_name);
                g.edge(svc, EdgeKind::RoutesTo, w);
                if from_internet {
                    g.edge(internet, EdgeKind::Exposes, svc);
                }
                svc
            }
        };
        if entry != w && !e.source_ranges.is_empty() {
            g.set_list(
                entry,
                "source_ranges",
                e.source_ranges.iter().map(String::as_str),
            );
        }
        exposed |= from_internet;
    }
    g.set_bool(w, "exposed", exposed);
}

/// What the NetworkPolicies of a namespace say about egress to the metadata endpoint.
pub(crate) struct MetadataVerdict {
    pub reachable: bool,
    /// `namespace/name` of the Egress policies that select the pod.
    pub policies: Vec<String>,
}

struct EgressPolicy<'a> {
    name: &'a str,
    selector: Option<LabelSelector>,
    /// Whether some egress rule lets traffic to 169.254.169.254:80/TCP through.
    allows_metadata: bool,
}

/// Egress NetworkPolicies by namespace.
pub(crate) struct EgressPolicies<'a> {
    by_ns: HashMap<&'a str, Vec<EgressPolicy<'a>>>,
}

impl<'a> EgressPolicies<'a> {
    pub(crate) fn build(inv: &'a Inventory) -> Self {
        let mut by_ns: HashMap<&str, Vec<EgressPolicy<'_>>> = HashMap::new();
        for o in inv.of_kind("NetworkPolicy") {
            let Some(spec) = o.value.get("spec") else {
                continue;
            };
            let egress = spec.get("egress").and_then(Value::as_array);
            let types: Vec<&str> = spec
                .get("policyTypes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            // policyTypes defaults to Ingress, plus Egress when the policy has egress rules.
            let is_egress = if types.is_empty() {
                egress.is_some_and(|e| !e.is_empty())
            } else {
                types.contains(&"Egress")
            };
            if !is_egress {
                continue;
            }
            // A selector that does not parse selects nothing (the API server would reject it).
            let selector = spec
                .get("podSelector")
                .map(|s| {
                    if s.is_null() {
                        Ok(LabelSelector::default())
                    } else {
                        LabelSelector::from_value(s)
                    }
                })
                .unwrap_or(Ok(LabelSelector::default()))
                .ok();
            let allows_metadata = egress.into_iter().flatten().any(rule_allows_metadata);
            by_ns.entry(ns_of(o)).or_default().push(EgressPolicy {
                name: &o.name,
                selector,
                allows_metadata,
            });
        }
        EgressPolicies { by_ns }
    }

    /// Whether a pod with these labels in this namespace can reach the metadata endpoint.
    /// Host-network pods always can: NetworkPolicies do not apply to host-network traffic.
    pub(crate) fn metadata_verdict(
        &self,
        ns: Option<&str>,
        labels: &serde_json::Map<String, Value>,
        host_network: bool,
    ) -> MetadataVerdict {
        let ns = ns.unwrap_or("default");
        let selecting: Vec<&EgressPolicy<'_>> = self
            .by_ns
            .get(ns)
            .into_iter()
            .flatten()
            .filter(|p| p.selector.as_ref().is_some_and(|s| s.matches(labels)))
            .collect();
        let policies = selecting
            .iter()
            .map(|p| format!("{ns}/{}", p.name))
            .collect();
        let reachable =
            host_network || selecting.is_empty() || selecting.iter().any(|p| p.allows_metadata);
        MetadataVerdict {
            reachable,
            policies,
        }
    }
}

/// Whether one egress rule allows TCP port 80 to 169.254.169.254. An empty or missing `to` means
/// every destination; pod and namespace selectors only select pods, never this address; an
/// ipBlock allows it when its `cidr` contains it and no `except` entry does. Missing `ports`
/// means all ports; otherwise a port entry must cover 80/TCP (numeric port, or `port`..`endPort`).
fn rule_allows_metadata(rule: &Value) -> bool {
    let Ok(metadata) = METADATA_IP.parse::<std::net::IpAddr>() else {
        return false;
    };
    let to_ok = match rule.get("to").and_then(Value::as_array) {
        None => true,
        Some(peers) if peers.is_empty() => true,
        Some(peers) => peers.iter().any(|peer| {
            let Some(block) = peer.get("ipBlock") else {
                return false;
            };
            let contains = block
                .get("cidr")
                .and_then(Value::as_str)
                .and_then(Cidr::parse)
                .is_some_and(|c| c.contains(metadata));
            let excepted = block
                .get("except")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter_map(Cidr::parse)
                .any(|c| c.contains(metadata));
            contains && !excepted
        }),
    };
    let ports_ok = match rule.get("ports").and_then(Value::as_array) {
        None => true,
        Some(ports) if ports.is_empty() => true,
        Some(ports) => ports.iter().any(|p| {
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            if proto != "TCP" {
                return false;
            }
            match p.get("port") {
                None | Some(Value::Null) => true,
                Some(Value::Number(n)) => {
                    let start = n.as_u64().unwrap_or(0);
                    let end = p.get("endPort").and_then(Value::as_u64).unwrap_or(start);
                    (start..=end).contains(&80)
                }
                // A named port refers to a port of the destination pod: never the metadata server.
                _ => false,
            }
        }),
    };
    to_ok && ports_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn egress_rules_and_the_metadata_address() {
        let allows = |rule: Value| rule_allows_metadata(&rule);
        assert!(allows(json!({})));
        assert!(allows(json!({"to": []})));
        assert!(allows(
            json!({"to": [{"ipBlock": {"cidr": "169.254.0.0/16"}}]})
        ));
        assert!(!allows(
            json!({"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}}]})
        ));
        assert!(allows(
            json!({"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.0/31"]}}]})
        ));
        assert!(!allows(
            json!({"to": [{"podSelector": {}}, {"namespaceSelector": {}}]})
        ));
        assert!(!allows(
            json!({"to": [{"ipBlock": {"cidr": "not-a-cidr"}}]})
        ));
        assert!(allows(json!({"ports": [{"port": 80}]})));
        assert!(allows(
            json!({"ports": [{"protocol": "TCP", "port": 1, "endPort": 1024}]})
        ));
        assert!(allows(json!({"ports": [{"protocol": "TCP"}]})));
        assert!(!allows(
            json!({"ports": [{"protocol": "TCP", "port": 443}]})
        ));
        assert!(!allows(json!({"ports": [{"protocol": "UDP", "port": 80}]})));
        assert!(!allows(json!({"ports": [{"port": "http"}]})));
    }

    #[test]
    fn cloud_credential_secrets_by_name_or_key() {
        let secret = |v: Value| KubeObject::from_value(v, None).unwrap();
        assert!(looks_like_cloud_credentials(&secret(
            json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "x"}, "data": {"key.json": "e30="}})
        )));
        assert!(looks_like_cloud_credentials(&secret(
            json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "aws-credentials"}})
        )));
        assert!(!looks_like_cloud_credentials(&secret(
            json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "web-tls"}, "data": {"tls.crt": "", "tls.key": ""}})
        )));
        assert!(public_range("0.0.0.0/0"));
        assert!(!public_range("192.168.0.0/24"));
    }
}
