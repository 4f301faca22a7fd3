//! Built-in attack paths: chains in the security graph an attacker could walk.

use super::dot;
use super::model::{EdgeId, EdgeKind, NodeId, NodeKind, NodeRef, SecurityGraph};
use crate::check::{Category, CheckInfo, Evidence, PostureFinding};
use crate::config::PostureConfig;
use palisade_core::{ResourceRef, Severity};
use serde::Serialize;

const CONTROLS: &[&str] = &[];

/// The attack-path "checks": their ids are the `check_id` of path findings.
pub const CHECKS: &[CheckInfo] = &[
    CheckInfo {
        id: "path.exposed-vulnerable-workload",
        title: "Internet-exposed workload runs an image with a critical or remotely exploitable vulnerability",
        severity: Severity::Critical,
        category: Category::AttackPath,
        remediation: "Update the image to a version with the fix (or rebuild it on a patched base), or stop exposing the workload until it is patched.",
        controls: CONTROLS,
        parameters: &[],
    },
    CheckInfo {
        id: "path.exposed-privileged-workload",
        title: "Internet-exposed workload is privileged or has access to its node",
        severity: Severity::Critical,
        category: Category::AttackPath,
        remediation: "Drop privileged mode, hostNetwork, hostPID, hostIPC and hostPath volumes from the workload, or move it behind an internal Service.",
        controls: CONTROLS,
        parameters: &[],
    },
    CheckInfo {
        id: "path.exposed-dangerous-permissions",
        title: "Internet-exposed workload runs as a service account with dangerous permissions",
        severity: Severity::High,
        category: Category::AttackPath,
        remediation: "Give the workload its own service account bound only to what it needs, or set automountServiceAccountToken: false when it needs no API access.",
        controls: CONTROLS,
        parameters: &[],
    },
    CheckInfo {
        id: "path.metadata-reachable",
        title: "Workload can reach the cloud metadata endpoint",
        severity: Severity::Medium,
        category: Category::AttackPath,
        remediation: "Add a NetworkPolicy with policyTypes [Egress] selecting the pods whose egress rules do not allow 169.254.169.254 (ipBlock cidr 0.0.0.0/0 with except 169.254.169.254/32), and avoid hostNetwork.",
        controls: CONTROLS,
        parameters: &[],
    },
    CheckInfo {
        id: "path.cloud-credentials-readable",
        title: "Workload's service account can read a Secret holding cloud credentials",
        severity: Severity::High,
        category: Category::AttackPath,
        remediation: "Restrict the Role granting secret access with resourceNames, or move the cloud credentials to workload identity (IRSA, GKE Workload Identity, Azure Workload Identity).",
        controls: CONTROLS,
        parameters: &[],
    },
];

fn check(id: &str) -> &'static CheckInfo {
    CHECKS.iter().find(|c| c.id == id).unwrap_or(&CHECKS[0])
}

/// One node of a path, with the edge that leads on to the next node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStep {
    pub node: NodeRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge: Option<EdgeKind>,
}

/// One attack path found in the graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttackPath {
    /// The `path.*` check id.
    pub id: &'static str,
    pub title: String,
    pub severity: Severity,
    /// The workload the path goes through (the finding's resource).
    pub entry: NodeRef,
    /// The chain, first node first.
    pub steps: Vec<PathStep>,
    /// What makes it dangerous, for people.
    pub message: String,
    #[serde(skip)]
    pub nodes: Vec<NodeId>,
    #[serde(skip)]
    pub edges: Vec<EdgeId>,
}

impl AttackPath {
    /// `internet -exposes-> Service prod/web -routes_to-> Deployment prod/web -runs-> ...`
    pub fn chain(&self) -> String {
        let mut s = String::new();
        for step in &self.steps {
            s.push_str(&step.node.to_string());
            if let Some(e) = step.edge {
                s.push_str(&format!(" -{e}-> "));
            }
        }
        s
    }

    /// The path as a finding on its entry workload, the chain as evidence.
    pub fn to_finding(&self, graph: &SecurityGraph) -> PostureFinding {
        let info = check(self.id);
        let origin = self
            .nodes
            .iter()
            .find(|n| graph.node_kind(**n) == NodeKind::Workload)
            .and_then(|n| graph.origin(*n));
        let resource = ResourceRef {
            cluster: graph.cluster.clone(),
            namespace: match origin {
                Some(o) => o.namespace.clone(),
                None => self.entry.namespace.clone(),
            },
            kind: Some(
                self.entry
                    .object_kind
                    .clone()
                    .unwrap_or_else(|| self.entry.kind.as_str().to_string()),
            ),
            name: Some(
                origin
                    .map(|o| o.name.clone())
                    .unwrap_or_else(|| self.entry.name.clone()),
            ),
            ..Default::default()
        };
        let mut evidence = vec![Evidence::new("chain", self.chain())];
        for (i, step) in self.steps.iter().enumerate() {
            evidence.push(Evidence::new(
                format!("steps[{i}]"),
                serde_json::to_value(step).unwrap_or_default(),
            ));
        }
        PostureFinding {
            check_id: self.id.into(),
            title: self.title.clone().into(),
            severity: self.severity,
            category: Category::AttackPath,
            resource,
            message: self.message.clone(),
            evidence,
            remediation: info.remediation.into(),
            controls: info.controls.iter().map(|c| (*c).into()).collect(),
            source: origin.and_then(|o| o.source.clone()),
        }
    }

    /// The path in Graphviz DOT.
    pub fn to_dot(&self, graph: &SecurityGraph) -> String {
        dot::subgraph(graph, &self.nodes, &self.edges)
    }
}

/// A chain under construction.
#[derive(Default, Clone)]
struct Chain {
    nodes: Vec<NodeId>,
    edges: Vec<EdgeId>,
}

impl Chain {
    fn start(n: NodeId) -> Chain {
        Chain {
            nodes: vec![n],
            edges: Vec::new(),
        }
    }

    fn then(mut self, g: &SecurityGraph, kind: EdgeKind, to: NodeId) -> Chain {
        if let Some(&from) = self.nodes.last()
            && let Some(e) = g.edge_between(from, kind, to)
        {
            self.edges.push(e);
        }
        self.nodes.push(to);
        self
    }
}

/// The shortest way in from the Internet node to a workload (through Ingress and Service), if any.
fn entry_chain(g: &SecurityGraph, w: NodeId) -> Option<Chain> {
    // Breadth-first search backwards over exposes / routes_to, at most 3 hops.
    let mut frontier: Vec<(NodeId, Vec<EdgeId>)> = vec![(w, Vec::new())];
    for _ in 0..3 {
        let mut next = Vec::new();
        for (n, path) in &frontier {
            for (eid, e) in g.incoming(*n) {
                if !matches!(e.kind, EdgeKind::Exposes | EdgeKind::RoutesTo) {
                    continue;
                }
                let mut p = path.clone();
                p.push(eid);
                if g.node_kind(e.from) == NodeKind::Internet {
                    p.reverse();
                    let mut nodes = vec![e.from];
                    nodes.extend(p.iter().map(|id| g.edges[*id as usize].to));
                    return Some(Chain { nodes, edges: p });
                }
                next.push((e.from, p));
            }
        }
        frontier = next;
    }
    None
}

fn finish(
    g: &SecurityGraph,
    id: &'static str,
    severity: Severity,
    entry: NodeId,
    chain: Chain,
    message: String,
) -> AttackPath {
    let steps = chain
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| PathStep {
            node: g.node_ref(*n),
            edge: chain.edges.get(i).map(|e| g.edges[*e as usize].kind),
        })
        .collect();
    AttackPath {
        id,
        title: check(id).title.to_string(),
        severity,
        entry: g.node_ref(entry),
        steps,
        message,
        nodes: chain.nodes,
        edges: chain.edges,
    }
}

fn severity_of(g: &SecurityGraph, v: NodeId) -> Severity {
    g.prop_str(v, "severity")
        .and_then(|s| Severity::ALL.into_iter().find(|x| x.as_str() == s))
        .unwrap_or_default()
}

/// Every built-in attack path in the graph, most severe first. Workloads of excluded namespaces
/// (`excluded=true`) are skipped.
pub fn attack_paths(g: &SecurityGraph) -> Vec<AttackPath> {
    let mut out = Vec::new();
    for &w in g.nodes_of(NodeKind::Workload) {
        if g.prop_bool(w, "excluded") {
            continue;
        }
        let entry = if g.prop_bool(w, "exposed") {
            entry_chain(g, w)
        } else {
            None
        };
        if let Some(entry) = &entry {
            exposed_vulnerable(g, w, entry, &mut out);
            exposed_privileged(g, w, entry, &mut out);
            exposed_permissions(g, w, entry, &mut out);
        }
        metadata(g, w, entry.as_ref(), &mut out);
        cloud_credentials(g, w, &mut out);
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.entry.namespace.cmp(&b.entry.namespace))
            .then_with(|| a.entry.name.cmp(&b.entry.name))
            .then_with(|| a.id.cmp(b.id))
    });
    out
}

/// Attack paths as findings, with the config's disabled checks and severity overrides applied.
pub fn path_findings(g: &SecurityGraph, config: &PostureConfig) -> Vec<PostureFinding> {
    let mut findings: Vec<PostureFinding> = attack_paths(g)
        .iter()
        .filter(|p| config.is_enabled(p.id))
        .map(|p| p.to_finding(g))
        .collect();
    config.apply_overrides(&mut findings);
    findings.sort_by(PostureFinding::order);
    findings
}

fn exposed_vulnerable(g: &SecurityGraph, w: NodeId, entry: &Chain, out: &mut Vec<AttackPath>) {
    // The worst qualifying vulnerability: critical, or high with a network attack vector.
    let mut best: Option<(Severity, f64, NodeId, NodeId, NodeId)> = None;
    let mut count = 0;
    for c in g.targets(w, EdgeKind::Runs) {
        for img in g.targets(c, EdgeKind::UsesImage) {
            for v in g.targets(img, EdgeKind::HasVulnerability) {
                let sev = severity_of(g, v);
                let qualifies = sev == Severity::Critical
                    || (sev == Severity::High && g.prop_bool(v, "network"));
                if !qualifies {
                    continue;
                }
                count += 1;
                let cvss = g.prop_num(v, "cvss").unwrap_or(0.0);
                let better = match best {
                    None => true,
                    Some((s, c2, ..)) => (sev, cvss) > (s, c2),
                };
                if better {
                    best = Some((sev, cvss, c, img, v));
                }
            }
        }
    }
    let Some((sev, cvss, c, img, v)) = best else {
        return;
    };
    let chain = entry
        .clone()
        .then(g, EdgeKind::Runs, c)
        .then(g, EdgeKind::UsesImage, img)
        .then(g, EdgeKind::HasVulnerability, v);
    let more = if count > 1 {
        format!(" ({} qualifying vulnerabilities in all)", count)
    } else {
        String::new()
    };
    let message = format!(
        "{} is reachable from the internet and its image {} has {} {} (CVSS {:.1}{}){}",
        g.label(w),
        g.node_name(img),
        sev,
        g.node_name(v),
        cvss,
        if g.prop_bool(v, "network") {
            ", network attack vector"
        } else {
            ""
        },
        more
    );
    out.push(finish(
        g,
        "path.exposed-vulnerable-workload",
        Severity::Critical,
        w,
        chain,
        message,
    ));
}

fn exposed_privileged(g: &SecurityGraph, w: NodeId, entry: &Chain, out: &mut Vec<AttackPath>) {
    if !g.prop_bool(w, "host_access") {
        return;
    }
    let mut chain = entry.clone();
    if let Some(node) = g.targets(w, EdgeKind::HostAccess).next() {
        chain = chain.then(g, EdgeKind::HostAccess, node);
    }
    let reasons = match g.prop(w, "host_access_reasons") {
        Some(v) => super::query::list_text(g, v),
        None => String::new(),
    };
    let message = format!(
        "{} is reachable from the internet and has access to its node ({reasons}): a compromise of the workload is a compromise of the node",
        g.label(w)
    );
    out.push(finish(
        g,
        "path.exposed-privileged-workload",
        Severity::Critical,
        w,
        chain,
        message,
    ));
}

fn exposed_permissions(g: &SecurityGraph, w: NodeId, entry: &Chain, out: &mut Vec<AttackPath>) {
    if matches!(
        g.prop(w, "automount_token"),
        Some(super::model::PropValue::Bool(false))
    ) {
        return; // no token in the pod, nothing to steal
    }
    for sa in g.targets(w, EdgeKind::RunsAs) {
        let perms: Vec<NodeId> = g.targets(sa, EdgeKind::Can).collect();
        if perms.is_empty() {
            continue;
        }
        let rank = |p: NodeId| match g.prop_str(p, "ability") {
            Some("cluster-admin") => 0,
            Some("impersonate") | Some("escalate") => 1,
            Some("create-pods") | Some("create-workloads") | Some("exec") | Some("nodes-proxy") => {
                2
            }
            Some("create-tokens") => 3,
            _ => 4,
        };
        let worst = perms
            .iter()
            .copied()
            .min_by_key(|p| (rank(*p), !g.prop_bool(*p, "cluster_wide")))
            .unwrap_or(perms[0]);
        let severity = if rank(worst) <= 1 {
            Severity::Critical
        } else {
            Severity::High
        };
        let chain = entry
            .clone()
            .then(g, EdgeKind::RunsAs, sa)
            .then(g, EdgeKind::Can, worst);
        let all: Vec<&str> = perms.iter().map(|p| g.node_name(*p)).collect();
        let message = format!(
            "{} is reachable from the internet and its token for {} can: {}",
            g.label(w),
            g.label(sa),
            all.join("; ")
        );
        out.push(finish(
            g,
            "path.exposed-dangerous-permissions",
            severity,
            w,
            chain,
            message,
        ));
    }
}

fn metadata(g: &SecurityGraph, w: NodeId, entry: Option<&Chain>, out: &mut Vec<AttackPath>) {
    if !g.prop_bool(w, "metadata_reachable") {
        return;
    }
    let chain = entry.cloned().unwrap_or_else(|| Chain::start(w));
    let why = if g.prop_bool(w, "host_network") {
        "it uses the host network, which NetworkPolicies do not restrict".to_string()
    } else {
        match g.prop(w, "egress_policies") {
            Some(v) => format!(
                "the egress rules of {} allow it",
                super::query::list_text(g, v)
            ),
            None => "no NetworkPolicy restricts its egress".to_string(),
        }
    };
    let severity = if entry.is_some() {
        Severity::High
    } else {
        Severity::Medium
    };
    let message = format!(
        "{} can reach the cloud metadata endpoint {}:80: {why}{}",
        g.label(w),
        super::build::METADATA_IP,
        if entry.is_some() {
            "; it is also reachable from the internet"
        } else {
            ""
        }
    );
    out.push(finish(
        g,
        "path.metadata-reachable",
        severity,
        w,
        chain,
        message,
    ));
}

fn cloud_credentials(g: &SecurityGraph, w: NodeId, out: &mut Vec<AttackPath>) {
    if matches!(
        g.prop(w, "automount_token"),
        Some(super::model::PropValue::Bool(false))
    ) {
        return;
    }
    for sa in g.targets(w, EdgeKind::RunsAs) {
        let mut found: Option<(NodeId, NodeId)> = None;
        let mut names = Vec::new();
        for p in g.targets(sa, EdgeKind::Can) {
            for s in g.targets(p, EdgeKind::CanRead) {
                if g.prop_bool(s, "cloud_credentials") {
                    found.get_or_insert((p, s));
                    names.push(g.label(s));
                }
            }
        }
        let Some((p, s)) = found else { continue };
        names.sort();
        names.dedup();
        let chain = Chain::start(w)
            .then(g, EdgeKind::RunsAs, sa)
            .then(g, EdgeKind::Can, p)
            .then(g, EdgeKind::CanRead, s);
        let message = format!(
            "{} runs as {}, which can read {}",
            g.label(w),
            g.label(sa),
            names.join(", ")
        );
        out.push(finish(
            g,
            "path.cloud-credentials-readable",
            Severity::High,
            w,
            chain,
            message,
        ));
    }
}
