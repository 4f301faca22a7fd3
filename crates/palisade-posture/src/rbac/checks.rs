//! RBAC findings: dangerous permissions per subject, wildcard roles, default service accounts
//! with permissions and dangerous service accounts whose token workloads mount.

use super::index::{
    ANONYMOUS, AUTHENTICATED, Grant, RbacIndex, Rule, SERVICE_ACCOUNTS, Subject, SubjectKind,
    UNAUTHENTICATED, namespace_of,
};
use crate::check::{Category, CheckInfo, Evidence, PostureFinding};
use crate::config::PostureConfig;
use crate::pod::PodTemplate;
use palisade_core::{ResourceRef, Severity};
use palisade_kube::{Inventory, KubeObject};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

const fn rbac_check(
    id: &'static str,
    title: &'static str,
    severity: Severity,
    remediation: &'static str,
    controls: &'static [&'static str],
) -> CheckInfo {
    CheckInfo::without_parameters(id, title, severity, Category::Rbac, remediation, controls)
}

pub const CLUSTER_ADMIN: CheckInfo = rbac_check(
    "rbac.cluster-admin",
    "Subject has cluster-admin rights",
    Severity::High,
    "Bind this subject to a role that lists only the verbs and resources it needs, in the namespaces it needs them; keep every-verb-on-every-resource access to break-glass identities of the control plane.",
    &["CIS 5.1.1"],
);
pub const WILDCARD_ROLE: CheckInfo = rbac_check(
    "rbac.wildcard-role",
    "Role uses wildcards for verbs, resources or API groups",
    Severity::Medium,
    "Replace `*` in the role's verbs, resources and apiGroups with explicit lists: a wildcard also grants every verb and resource added to the API later, including custom resources.",
    &["CIS 5.1.3"],
);
pub const WILDCARD_ACCESS: CheckInfo = rbac_check(
    "rbac.wildcard-access",
    "Subject is granted wildcard verbs, resources or API groups",
    Severity::Medium,
    "Bind the subject to a role with explicit verbs, resources and apiGroups instead of one using `*`.",
    &["CIS 5.1.3"],
);
pub const SECRETS_CLUSTER_WIDE: CheckInfo = rbac_check(
    "rbac.secrets-read-cluster-wide",
    "Subject can read Secrets in every namespace",
    Severity::High,
    "Remove get, list and watch on secrets from the subject's ClusterRoleBindings; grant secret access per namespace with a RoleBinding, ideally restricted by resourceNames.",
    &["CIS 5.1.2"],
);
pub const SECRETS_NAMESPACE: CheckInfo = rbac_check(
    "rbac.secrets-read",
    "Subject can read all Secrets of a namespace",
    Severity::Medium,
    "Limit get, list and watch on secrets to the subjects that need them, and restrict get to the secrets they use with resourceNames.",
    &["CIS 5.1.2"],
);
pub const CREATE_PODS: CheckInfo = rbac_check(
    "rbac.create-pods",
    "Subject can create pods or workloads",
    Severity::Medium,
    "Creating pods, directly or through a workload, runs code as any service account of the namespace and mounts its secrets; grant it only to deployment pipelines and operators that need it.",
    &["CIS 5.1.4"],
);
pub const PODS_EXEC: CheckInfo = rbac_check(
    "rbac.pods-exec",
    "Subject can exec into pods",
    Severity::High,
    "Remove create and get on pods/exec: it runs commands inside running containers with their service account and secrets. Use it only for break-glass access.",
    &[],
);
pub const PODS_ATTACH: CheckInfo = rbac_check(
    "rbac.pods-attach",
    "Subject can attach to pods",
    Severity::Medium,
    "Remove create and get on pods/attach: it reads and writes the terminal of running containers.",
    &[],
);
pub const PODS_PORTFORWARD: CheckInfo = rbac_check(
    "rbac.pods-portforward",
    "Subject can port-forward to pods",
    Severity::Medium,
    "Remove create and get on pods/portforward: it reaches pod ports past Services and NetworkPolicies.",
    &[],
);
pub const BIND_ESCALATE: CheckInfo = rbac_check(
    "rbac.bind-escalate",
    "Subject can bind or escalate roles",
    Severity::High,
    "Remove the bind and escalate verbs on roles and clusterroles: they let a subject grant itself permissions it does not hold.",
    &["CIS 5.1.8"],
);
pub const IMPERSONATE: CheckInfo = rbac_check(
    "rbac.impersonate",
    "Subject can impersonate users, groups or service accounts",
    Severity::High,
    "Remove the impersonate verb: it lets a subject act as any user, group or service account it may name, including cluster administrators.",
    &["CIS 5.1.8"],
);
pub const NODES_PROXY: CheckInfo = rbac_check(
    "rbac.nodes-proxy",
    "Subject can reach the kubelet API through nodes/proxy",
    Severity::High,
    "Remove access to nodes/proxy: it reaches the kubelet API, which runs commands in any pod of the node and bypasses audit logging and admission.",
    &["CIS 5.1.10"],
);
pub const CSR_APPROVE: CheckInfo = rbac_check(
    "rbac.csr-approve",
    "Subject can approve certificate signing requests",
    Severity::High,
    "Remove update on certificatesigningrequests/approval together with approve on signers: the two let a subject issue itself client certificates, for instance as a node or a system:masters member.",
    &["CIS 5.1.11"],
);
pub const WEBHOOK_WRITE: CheckInfo = rbac_check(
    "rbac.webhook-write",
    "Subject can write admission webhook configurations",
    Severity::High,
    "Remove create, update, patch and delete on validatingwebhookconfigurations and mutatingwebhookconfigurations: a webhook sees and can change every object sent to the API server, and removing one disables a policy.",
    &["CIS 5.1.12"],
);
pub const TOKEN_CREATE: CheckInfo = rbac_check(
    "rbac.serviceaccount-token-create",
    "Subject can create service account tokens",
    Severity::High,
    "Remove create on serviceaccounts/token: it mints tokens for any service account in scope, and with them their permissions.",
    &["CIS 5.1.13"],
);
pub const DEFAULT_SA: CheckInfo = rbac_check(
    "rbac.default-service-account",
    "Default service account has permissions",
    Severity::Medium,
    "Do not bind roles to a namespace's `default` service account (or to system:serviceaccounts groups): create a dedicated service account for each workload that needs API access.",
    &["CIS 5.1.5"],
);
pub const MOUNTED_DANGEROUS_SA: CheckInfo = rbac_check(
    "rbac.workload-dangerous-service-account",
    "Workload mounts the token of a service account with dangerous permissions",
    Severity::High,
    "Set automountServiceAccountToken: false on the pod (or the service account) unless the workload calls the API, and give it a service account holding only what it needs.",
    &["CIS 5.1.6"],
);

/// The checks of this module.
pub const CHECKS: &[CheckInfo] = &[
    CLUSTER_ADMIN,
    WILDCARD_ROLE,
    WILDCARD_ACCESS,
    SECRETS_CLUSTER_WIDE,
    SECRETS_NAMESPACE,
    CREATE_PODS,
    PODS_EXEC,
    PODS_ATTACH,
    PODS_PORTFORWARD,
    BIND_ESCALATE,
    IMPERSONATE,
    NODES_PROXY,
    CSR_APPROVE,
    WEBHOOK_WRITE,
    TOKEN_CREATE,
    DEFAULT_SA,
    MOUNTED_DANGEROUS_SA,
];

const READ_VERBS: &[&str] = &["get", "list", "watch"];
/// Resources whose creation starts pods, by API group.
const POD_CREATORS: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "replicationcontrollers"),
    ("apps", "deployments"),
    ("apps", "daemonsets"),
    ("apps", "statefulsets"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
];
const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// Whether a rule allows `verb` on any of `targets` (group, resource) for requests naming no object.
fn allows_any(rule: &Rule, verbs: &[&str], targets: &[(&str, &str)]) -> bool {
    verbs
        .iter()
        .any(|v| targets.iter().any(|(g, r)| rule.allows(v, g, r, None)))
}

/// Like [`allows_any`], but a rule limited by resourceNames counts too (binding one named role or
/// impersonating one named user is still the dangerous capability).
fn allows_any_named(rule: &Rule, verbs: &[&str], targets: &[(&str, &str)]) -> bool {
    verbs.iter().any(|v| {
        rule.matches_verb(v)
            && targets
                .iter()
                .any(|(g, r)| rule.matches_group(g) && rule.matches_resource(r))
    })
}

fn has_wildcard(rule: &Rule) -> bool {
    rule.verbs.iter().any(|v| v == "*")
        || rule.resources.iter().any(|r| r == "*")
        || rule.api_groups.iter().any(|g| g == "*")
}

/// The dangerous capabilities a single grant can carry, by check.
fn grant_matches(info: &CheckInfo, g: &Grant) -> bool {
    let r = &g.rule;
    match info.id {
        "rbac.cluster-admin" => g.namespace.is_none() && r.is_full_wildcard(),
        "rbac.wildcard-access" => {
            has_wildcard(r) && !(g.namespace.is_none() && r.is_full_wildcard())
        }
        "rbac.secrets-read-cluster-wide" => {
            g.namespace.is_none() && allows_any(r, READ_VERBS, &[("", "secrets")])
        }
        "rbac.secrets-read" => {
            g.namespace.is_some() && allows_any(r, READ_VERBS, &[("", "secrets")])
        }
        "rbac.create-pods" => allows_any(r, &["create"], POD_CREATORS),
        // Exec, attach and port-forward are authorized as `create` (POST) or, for WebSocket
        // upgrades on clusters before the create check was enforced, as `get`.
        "rbac.pods-exec" => allows_any(r, &["create", "get"], &[("", "pods/exec")]),
        "rbac.pods-attach" => allows_any(r, &["create", "get"], &[("", "pods/attach")]),
        "rbac.pods-portforward" => allows_any(r, &["create", "get"], &[("", "pods/portforward")]),
        "rbac.bind-escalate" => allows_any_named(
            r,
            &["bind", "escalate"],
            &[
                ("rbac.authorization.k8s.io", "roles"),
                ("rbac.authorization.k8s.io", "clusterroles"),
            ],
        ),
        "rbac.impersonate" => {
            allows_any_named(
                r,
                &["impersonate"],
                &[
                    ("", "users"),
                    ("", "groups"),
                    ("", "serviceaccounts"),
                    ("authentication.k8s.io", "uids"),
                ],
            ) || r.matches_verb("impersonate")
                && r.matches_group("authentication.k8s.io")
                && r.resources.iter().any(|x| x.starts_with("userextras/"))
        }
        "rbac.nodes-proxy" => allows_any(r, &["get", "create"], &[("", "nodes/proxy")]),
        "rbac.webhook-write" => allows_any(
            r,
            WRITE_VERBS,
            &[
                (
                    "admissionregistration.k8s.io",
                    "validatingwebhookconfigurations",
                ),
                (
                    "admissionregistration.k8s.io",
                    "mutatingwebhookconfigurations",
                ),
            ],
        ),
        "rbac.serviceaccount-token-create" => {
            allows_any_named(r, &["create"], &[("", "serviceaccounts/token")])
        }
        _ => false,
    }
}

fn csr_approval(g: &Grant) -> bool {
    g.namespace.is_none()
        && allows_any(
            &g.rule,
            &["update", "patch"],
            &[("certificates.k8s.io", "certificatesigningrequests/approval")],
        )
}

fn signer_approve(g: &Grant) -> bool {
    g.namespace.is_none()
        && allows_any_named(&g.rule, &["approve"], &[("certificates.k8s.io", "signers")])
}

/// The grants of `grants` that give `info`'s capability (empty: the check does not hold).
fn matching<'a>(info: &CheckInfo, grants: &[&'a Grant]) -> Vec<&'a Grant> {
    if info.id == CSR_APPROVE.id {
        let update: Vec<&Grant> = grants.iter().copied().filter(|g| csr_approval(g)).collect();
        let approve: Vec<&Grant> = grants
            .iter()
            .copied()
            .filter(|g| signer_approve(g))
            .collect();
        if update.is_empty() || approve.is_empty() {
            return Vec::new();
        }
        let mut all = update;
        all.extend(approve);
        return all;
    }
    grants
        .iter()
        .copied()
        .filter(|g| grant_matches(info, g))
        .collect()
}

/// Checks evaluated per subject on the grants bindings give it directly.
const SUBJECT_CHECKS: &[&CheckInfo] = &[
    &CLUSTER_ADMIN,
    &WILDCARD_ACCESS,
    &SECRETS_CLUSTER_WIDE,
    &SECRETS_NAMESPACE,
    &CREATE_PODS,
    &PODS_EXEC,
    &PODS_ATTACH,
    &PODS_PORTFORWARD,
    &BIND_ESCALATE,
    &IMPERSONATE,
    &NODES_PROXY,
    &CSR_APPROVE,
    &WEBHOOK_WRITE,
    &TOKEN_CREATE,
];

/// Whether `pattern` (with `*` wildcards) matches `text`.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return true;
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    if parts.is_empty() {
        return rest.is_empty();
    }
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether a subject belongs to Kubernetes itself per the configuration. Broad groups and the
/// anonymous user never do.
pub fn is_system_subject(config: &PostureConfig, s: &Subject) -> bool {
    let broad = match s.kind {
        SubjectKind::User => s.name == ANONYMOUS,
        SubjectKind::Group => {
            s.name == AUTHENTICATED
                || s.name == UNAUTHENTICATED
                || s.name == SERVICE_ACCOUNTS
                || s.name.starts_with("system:serviceaccounts:")
        }
        SubjectKind::ServiceAccount => false,
    };
    if broad {
        return false;
    }
    let text = match &s.namespace {
        Some(ns) => format!("{}:{}/{}", s.kind.as_str(), ns, s.name),
        None => format!("{}:{}", s.kind.as_str(), s.name),
    };
    config.rbac_system_subjects.iter().any(|p| glob(p, &text))
}

fn rule_json(r: &Rule) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("verbs".into(), json!(r.verbs));
    if !r.non_resource_urls.is_empty() {
        m.insert("nonResourceURLs".into(), json!(r.non_resource_urls));
    } else {
        m.insert("apiGroups".into(), json!(r.api_groups));
        m.insert("resources".into(), json!(r.resources));
    }
    if !r.resource_names.is_empty() {
        m.insert("resourceNames".into(), json!(r.resource_names));
    }
    Value::Object(m)
}

/// Evidence for one grant: the binding as path, role, scope and rule as value.
pub fn grant_evidence(g: &Grant) -> Evidence {
    Evidence::new(
        g.binding.clone(),
        json!({
            "subject": g.subject.to_string(),
            "role": g.role,
            "namespace": g.namespace,
            "rule": rule_json(&g.rule),
        }),
    )
}

fn scope(g: &Grant) -> String {
    match &g.namespace {
        Some(ns) => format!("in namespace {ns}"),
        None => "cluster-wide".to_string(),
    }
}

fn describe(grants: &[&Grant]) -> String {
    let mut seen = HashSet::new();
    let parts: Vec<String> = grants
        .iter()
        .filter(|g| seen.insert((&g.role, &g.binding, &g.namespace)))
        .map(|g| format!("{} via {} {}", g.role, g.binding, scope(g)))
        .collect();
    if parts.len() > 3 {
        format!("{} and {} more", parts[..3].join("; "), parts.len() - 3)
    } else {
        parts.join("; ")
    }
}

fn subject_ref(s: &Subject, cluster: Option<&str>) -> ResourceRef {
    ResourceRef {
        cluster: cluster.map(str::to_string),
        namespace: s.namespace.clone(),
        kind: Some(s.kind.as_str().to_string()),
        name: Some(s.name.clone()),
        ..Default::default()
    }
}

/// Grants cited per finding (the message counts them all).
const MAX_EVIDENCE: usize = 20;

fn subject_finding(
    info: &CheckInfo,
    s: &Subject,
    cluster: Option<&str>,
    message: String,
    grants: &[&Grant],
    bindings: &HashMap<String, &KubeObject>,
) -> PostureFinding {
    let mut seen = HashSet::new();
    let evidence = grants
        .iter()
        .filter(|g| seen.insert((&g.binding, &g.role, &g.rule)))
        .take(MAX_EVIDENCE)
        .map(|g| grant_evidence(g))
        .collect();
    PostureFinding {
        check_id: info.id.into(),
        title: info.title.into(),
        severity: info.severity,
        category: info.category,
        resource: subject_ref(s, cluster),
        message,
        evidence,
        remediation: info.remediation.into(),
        controls: info.controls.iter().map(|c| (*c).into()).collect(),
        source: grants
            .first()
            .and_then(|g| bindings.get(&g.binding))
            .and_then(|o| o.source.clone()),
    }
}

fn subject_message(info: &CheckInfo, s: &Subject, grants: &[&Grant]) -> String {
    let what = match info.id {
        "rbac.cluster-admin" => "holds every verb on every resource cluster-wide",
        "rbac.wildcard-access" => "is granted `*` verbs, resources or API groups",
        "rbac.secrets-read-cluster-wide" => "can read Secrets in every namespace",
        "rbac.secrets-read" => "can read all Secrets of a namespace",
        "rbac.create-pods" => "can create pods or pod-creating workloads",
        "rbac.pods-exec" => "can exec into pods",
        "rbac.pods-attach" => "can attach to pods",
        "rbac.pods-portforward" => "can port-forward to pods",
        "rbac.bind-escalate" => "can bind or escalate roles",
        "rbac.impersonate" => "can impersonate other identities",
        "rbac.nodes-proxy" => "can proxy to kubelets (nodes/proxy)",
        "rbac.csr-approve" => "can approve certificate signing requests",
        "rbac.webhook-write" => "can change admission webhook configurations",
        "rbac.serviceaccount-token-create" => "can create service account tokens",
        _ => "holds a dangerous permission",
    };
    format!("{s} {what}: {}", describe(grants))
}

fn is_bootstrap(o: &KubeObject) -> bool {
    o.labels().get("kubernetes.io/bootstrapping") == Some(&"rbac-defaults")
}

/// Runs the RBAC checks.
pub fn check(inventory: &Inventory, config: &PostureConfig) -> Vec<PostureFinding> {
    let index = RbacIndex::build(inventory);
    check_with_index(inventory, &index, config)
}

/// Runs the RBAC checks with an index already built (the graph builds one too).
pub fn check_with_index(
    inventory: &Inventory,
    index: &RbacIndex,
    config: &PostureConfig,
) -> Vec<PostureFinding> {
    let cluster = inventory.cluster.as_deref();
    let mut findings = Vec::new();
    let bindings: HashMap<String, &KubeObject> = inventory
        .objects
        .iter()
        .filter_map(|o| {
            let key = match o.kind.as_str() {
                "ClusterRoleBinding" => format!("ClusterRoleBinding/{}", o.name),
                "RoleBinding" => format!("RoleBinding/{}/{}", namespace_of(o, inventory)?, o.name),
                _ => return None,
            };
            (o.group() == super::index::RBAC_GROUP).then_some((key, o))
        })
        .collect();
    let bootstrap_binding = |g: &Grant| bindings.get(&g.binding).is_some_and(|o| is_bootstrap(o));

    // Per subject, on the grants bindings name it in (a group's grants are reported on the group).
    let mut direct: BTreeMap<&Subject, Vec<&Grant>> = BTreeMap::new();
    for g in index.grants() {
        direct.entry(&g.subject).or_default().push(g);
    }
    for (s, grants) in &direct {
        if is_system_subject(config, s) {
            continue;
        }
        for info in SUBJECT_CHECKS {
            if !config.is_enabled(info.id) {
                continue;
            }
            let hits = matching(info, grants);
            if hits.is_empty() {
                continue;
            }
            let message = subject_message(info, s, &hits);
            findings.push(subject_finding(info, s, cluster, message, &hits, &bindings));
        }
    }

    if config.is_enabled(WILDCARD_ROLE.id) {
        wildcard_roles(inventory, index, cluster, &mut findings);
    }
    if config.is_enabled(DEFAULT_SA.id) {
        default_service_accounts(
            inventory,
            index,
            config,
            &bootstrap_binding,
            &bindings,
            &mut findings,
        );
    }
    if config.is_enabled(MOUNTED_DANGEROUS_SA.id) {
        mounted_service_accounts(inventory, index, config, &mut findings);
    }
    findings
}

fn wildcard_roles(
    inventory: &Inventory,
    index: &RbacIndex,
    cluster: Option<&str>,
    findings: &mut Vec<PostureFinding>,
) {
    let mut bound_subjects: HashMap<&str, BTreeSet<&Subject>> = HashMap::new();
    for g in index.grants() {
        bound_subjects
            .entry(g.role.as_str())
            .or_default()
            .insert(&g.subject);
    }
    for role in index.roles() {
        let Some(o) = role.object.and_then(|i| inventory.objects.get(i)) else {
            continue;
        };
        if is_bootstrap(o) || o.name.starts_with("system:") {
            continue;
        }
        let mut evidence = Vec::new();
        for (i, r) in o
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let rule = Rule::from_value(r);
            for (field, values) in [
                ("verbs", &rule.verbs),
                ("resources", &rule.resources),
                ("apiGroups", &rule.api_groups),
            ] {
                if values.iter().any(|v| v == "*") {
                    evidence.push(Evidence::new(format!("rules[{i}].{field}"), json!(values)));
                }
            }
        }
        if evidence.is_empty() {
            continue;
        }
        let fields: BTreeSet<&str> = evidence
            .iter()
            .filter_map(|e| e.path.rsplit('.').next())
            .collect();
        let bound = bound_subjects.get(role.key.as_str());
        let bound = if bound.is_none_or(BTreeSet::is_empty) {
            "it is not bound to any subject".to_string()
        } else {
            let names: Vec<String> = bound.into_iter().flatten().map(|s| s.to_string()).collect();
            format!("bound to {}", names.join(", "))
        };
        findings.push(WILDCARD_ROLE.finding(
            o,
            cluster,
            None,
            format!(
                "{} uses `*` in {}; {bound}",
                role.key,
                fields.into_iter().collect::<Vec<_>>().join(", ")
            ),
            evidence,
        ));
    }
}

/// Namespaces the inventory knows of.
fn namespaces(inventory: &Inventory) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for o in &inventory.objects {
        if o.kind == "Namespace" && o.api_version == "v1" {
            out.insert(o.name.clone());
        } else if let Some(ns) = &o.namespace {
            out.insert(ns.clone());
        }
    }
    out
}

fn default_service_accounts(
    inventory: &Inventory,
    index: &RbacIndex,
    config: &PostureConfig,
    bootstrap_binding: &dyn Fn(&Grant) -> bool,
    bindings: &HashMap<String, &KubeObject>,
    findings: &mut Vec<PostureFinding>,
) {
    let cluster = inventory.cluster.as_deref();
    for ns in namespaces(inventory) {
        let sa = Subject::service_account(&ns, "default");
        if is_system_subject(config, &sa) {
            continue;
        }
        // What the default account holds beyond what every authenticated identity and every
        // service account gets from Kubernetes' own bindings.
        let grants: Vec<&Grant> = index
            .grants_of(&sa)
            .iter()
            .filter(|g| {
                let everyone =
                    g.subject.kind == SubjectKind::Group && g.subject.name == AUTHENTICATED;
                !everyone && !bootstrap_binding(g)
            })
            .collect();
        if grants.is_empty() {
            continue;
        }
        let message = format!("{sa} holds {} rule(s): {}", grants.len(), describe(&grants));
        findings.push(subject_finding(
            &DEFAULT_SA,
            &sa,
            cluster,
            message,
            &grants,
            bindings,
        ));
    }
}

/// Capabilities that make a service account dangerous to hand to a workload, with a short name.
const DANGEROUS: &[(&CheckInfo, &str)] = &[
    (&CLUSTER_ADMIN, "cluster-admin"),
    (&WILDCARD_ACCESS, "wildcard access"),
    (&SECRETS_CLUSTER_WIDE, "read secrets cluster-wide"),
    (&SECRETS_NAMESPACE, "read secrets"),
    (&CREATE_PODS, "create pods"),
    (&PODS_EXEC, "exec into pods"),
    (&BIND_ESCALATE, "bind/escalate roles"),
    (&IMPERSONATE, "impersonate"),
    (&NODES_PROXY, "nodes/proxy"),
    (&CSR_APPROVE, "approve CSRs"),
    (&WEBHOOK_WRITE, "write admission webhooks"),
    (&TOKEN_CREATE, "create service account tokens"),
];

/// The dangerous capabilities of a subject's effective grants (its groups included).
pub fn dangerous_capabilities<'a>(
    index: &'a RbacIndex,
    s: &Subject,
) -> Vec<(&'static str, Vec<&'a Grant>)> {
    let grants: Vec<&Grant> = index.grants_of(s).iter().collect();
    DANGEROUS
        .iter()
        .filter_map(|(info, name)| {
            let hits = matching(info, &grants);
            (!hits.is_empty()).then_some((*name, hits))
        })
        .collect()
}

fn mounted_service_accounts(
    inventory: &Inventory,
    index: &RbacIndex,
    config: &PostureConfig,
    findings: &mut Vec<PostureFinding>,
) {
    let cluster = inventory.cluster.as_deref();
    let service_accounts: HashMap<(&str, &str), &KubeObject> = inventory
        .objects
        .iter()
        .filter(|o| o.kind == "ServiceAccount" && o.api_version == "v1")
        .filter_map(|o| Some(((o.namespace.as_deref()?, o.name.as_str()), o)))
        .collect();
    let mut cache: HashMap<Subject, (Vec<&'static str>, Vec<Evidence>)> = HashMap::new();
    for o in &inventory.objects {
        let Some(t) = PodTemplate::of(o) else {
            continue;
        };
        if t.is_owned_pod() {
            continue;
        }
        let Some(ns) = namespace_of(o, inventory) else {
            continue;
        };
        if config.is_excluded_namespace(Some(&ns)) {
            continue;
        }
        let sa_name = t.service_account();
        let sa = Subject::service_account(&ns, sa_name);
        if is_system_subject(config, &sa) {
            continue;
        }
        let pod_automount = t
            .field("automountServiceAccountToken")
            .and_then(Value::as_bool);
        let sa_automount = service_accounts
            .get(&(ns.as_str(), sa_name))
            .and_then(|s| s.get("automountServiceAccountToken"))
            .and_then(Value::as_bool);
        let projected = t
            .field("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .find(|(_, v)| {
                v.get("projected")
                    .and_then(|p| p.get("sources"))
                    .and_then(Value::as_array)
                    .is_some_and(|s| s.iter().any(|s| s.get("serviceAccountToken").is_some()))
            });
        let automounted = pod_automount.or(sa_automount).unwrap_or(true);
        if !automounted && projected.is_none() {
            continue;
        }
        let (names, grant_evidence) = cache
            .entry(sa.clone())
            .or_insert_with(|| {
                let caps = dangerous_capabilities(index, &sa);
                let names: Vec<&'static str> = caps.iter().map(|(n, _)| *n).collect();
                // The first grant of each capability: enough to find and fix it.
                let mut seen = HashSet::new();
                let evidence = caps
                    .iter()
                    .filter_map(|(_, grants)| grants.first())
                    .filter(|g| seen.insert((&g.binding, &g.role, &g.rule)))
                    .map(|g| grant_evidence(g))
                    .collect();
                (names, evidence)
            })
            .clone();
        if names.is_empty() {
            continue;
        }
        let mut evidence = vec![Evidence::new(t.path("serviceAccountName"), json!(sa_name))];
        let how = if automounted {
            evidence.push(Evidence::new(
                t.path("automountServiceAccountToken"),
                pod_automount.map_or(Value::Null, Value::Bool),
            ));
            "its token is mounted automatically"
        } else {
            "its token is mounted through a projected volume"
        };
        if let Some((i, _)) = projected {
            evidence.push(Evidence::new(
                t.path(&format!("volumes[{i}].projected")),
                json!("serviceAccountToken"),
            ));
        }
        evidence.extend(grant_evidence);
        findings.push(MOUNTED_DANGEROUS_SA.finding(
            o,
            cluster,
            None,
            format!(
                "{} {} runs as {sa}; {how}, and it can: {}",
                o.kind,
                o.name,
                names.join(", ")
            ),
            evidence,
        ));
    }
}
