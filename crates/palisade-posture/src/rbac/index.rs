//! The RBAC index: Roles and ClusterRoles (aggregation resolved), joined with their bindings into
//! grants per subject, and Kubernetes' own matching rules for "can this subject do that".
//!
//! Matching follows the RBAC authorizer exactly:
//! - a verb, API group or resource of `*` matches anything (a resource of `*` includes every
//!   subresource);
//! - `pods/exec` matches only `pods/exec`, and `*/scale` matches the `scale` subresource of any
//!   resource; there is no `pods/*` form (such a rule names a literal resource `pods/*`);
//! - a rule with `resourceNames` only allows requests that name one of those objects, so it never
//!   allows `list`, `watch` (of a collection), `create` or `deletecollection` in general;
//! - a RoleBinding grants in its own namespace only, even when it references a ClusterRole;
//!   non-resource URLs are only granted through ClusterRoleBindings;
//! - the group `system:masters` is always allowed everything: kube-apiserver authorizes it before
//!   RBAC is consulted.

use crate::pod::PodTemplate;
use palisade_kube::{Inventory, KubeObject};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::OnceLock;

/// API group of the RBAC kinds.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Group every authenticated request carries.
pub const AUTHENTICATED: &str = "system:authenticated";
/// Group of anonymous requests.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// User name of anonymous requests.
pub const ANONYMOUS: &str = "system:anonymous";
/// Group of every service account.
pub const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// Group kube-apiserver treats as superusers whatever RBAC says.
pub const MASTERS: &str = "system:masters";

/// What a subject is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum SubjectKind {
    User,
    Group,
    ServiceAccount,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::User => "User",
            SubjectKind::Group => "Group",
            SubjectKind::ServiceAccount => "ServiceAccount",
        }
    }
}

/// A user, group or service account that bindings grant to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Subject {
    pub kind: SubjectKind,
    pub name: String,
    /// Set for service accounts only.
    pub namespace: Option<String>,
}

impl Subject {
    pub fn user(name: impl Into<String>) -> Self {
        Subject {
            kind: SubjectKind::User,
            name: name.into(),
            namespace: None,
        }
    }

    pub fn group(name: impl Into<String>) -> Self {
        Subject {
            kind: SubjectKind::Group,
            name: name.into(),
            namespace: None,
        }
    }

    pub fn service_account(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Subject {
            kind: SubjectKind::ServiceAccount,
            name: name.into(),
            namespace: Some(namespace.into()),
        }
    }

    /// The user name the API server sees: `system:serviceaccount:<ns>:<name>` for a service account.
    pub fn username(&self) -> Option<String> {
        match self.kind {
            SubjectKind::User => Some(self.name.clone()),
            SubjectKind::ServiceAccount => Some(format!(
                "system:serviceaccount:{}:{}",
                self.namespace.as_deref().unwrap_or(""),
                self.name
            )),
            SubjectKind::Group => None,
        }
    }

    /// Groups the API server adds to every request of this subject (for a group: the groups all
    /// of its members are in as well).
    pub fn implicit_groups(&self) -> Vec<String> {
        match self.kind {
            SubjectKind::ServiceAccount => vec![
                SERVICE_ACCOUNTS.to_string(),
                format!(
                    "{SERVICE_ACCOUNTS}:{}",
                    self.namespace.as_deref().unwrap_or("")
                ),
                AUTHENTICATED.to_string(),
            ],
            SubjectKind::User if self.name == ANONYMOUS => vec![UNAUTHENTICATED.to_string()],
            SubjectKind::User => vec![AUTHENTICATED.to_string()],
            SubjectKind::Group => {
                if self.name == AUTHENTICATED || self.name == UNAUTHENTICATED {
                    Vec::new()
                } else if self
                    .name
                    .strip_prefix(SERVICE_ACCOUNTS)
                    .is_some_and(|rest| rest.starts_with(':'))
                {
                    vec![SERVICE_ACCOUNTS.to_string(), AUTHENTICATED.to_string()]
                } else {
                    vec![AUTHENTICATED.to_string()]
                }
            }
        }
    }

    /// True for the superuser group `system:masters`.
    pub fn is_masters(&self) -> bool {
        self.kind == SubjectKind::Group && self.name == MASTERS
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind.as_str(), ns, self.name),
            None => write!(f, "{} {}", self.kind.as_str(), self.name),
        }
    }
}

/// One PolicyRule of a Role or ClusterRole.
/// Serialized in the Kubernetes spelling (`apiGroups`, `resourceNames`, `nonResourceURLs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    #[serde(rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl Rule {
    /// A rule from its JSON form (`{verbs, apiGroups, resources, resourceNames, nonResourceURLs}`).
    pub fn from_value(v: &Value) -> Rule {
        Rule {
            verbs: strings(v.get("verbs")),
            api_groups: strings(v.get("apiGroups")),
            resources: strings(v.get("resources")),
            resource_names: strings(v.get("resourceNames")),
            non_resource_urls: strings(v.get("nonResourceURLs")),
        }
    }

    pub fn matches_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    pub fn matches_group(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| g == "*" || g == group)
    }

    /// `resource` is `pods` or `pods/exec`.
    pub fn matches_resource(&self, resource: &str) -> bool {
        let sub = resource.split_once('/').map(|(_, s)| s);
        self.resources.iter().any(|r| {
            r == "*"
                || r == resource
                || sub.is_some_and(|sub| r.strip_prefix("*/").is_some_and(|rs| rs == sub))
        })
    }

    /// Whether the rule covers an object of that name (`None`: a request naming no object, such
    /// as list or create, which a rule with resourceNames never covers).
    pub fn matches_name(&self, name: Option<&str>) -> bool {
        self.resource_names.is_empty()
            || name.is_some_and(|n| self.resource_names.iter().any(|r| r == n))
    }

    /// Whether the rule allows a resource request.
    pub fn allows(&self, verb: &str, group: &str, resource: &str, name: Option<&str>) -> bool {
        self.matches_verb(verb)
            && self.matches_group(group)
            && self.matches_resource(resource)
            && self.matches_name(name)
    }

    /// Whether the rule allows a non-resource request (`/metrics`, `/logs/...`); a URL ending in
    /// `*` is a prefix.
    pub fn allows_url(&self, verb: &str, path: &str) -> bool {
        self.matches_verb(verb)
            && self.non_resource_urls.iter().any(|u| {
                u == "*"
                    || u == path
                    || u.strip_suffix('*')
                        .is_some_and(|prefix| path.starts_with(prefix))
            })
    }

    /// Verbs, groups and resources all `*`, on every object.
    pub fn is_full_wildcard(&self) -> bool {
        self.verbs.iter().any(|v| v == "*")
            && self.api_groups.iter().any(|g| g == "*")
            && self.resources.iter().any(|r| r == "*")
            && self.resource_names.is_empty()
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.non_resource_urls.is_empty() {
            return write!(
                f,
                "verbs=[{}] nonResourceURLs=[{}]",
                self.verbs.join(","),
                self.non_resource_urls.join(",")
            );
        }
        let groups: Vec<&str> = self
            .api_groups
            .iter()
            .map(|g| if g.is_empty() { "\"\"" } else { g.as_str() })
            .collect();
        write!(
            f,
            "verbs=[{}] apiGroups=[{}] resources=[{}]",
            self.verbs.join(","),
            groups.join(","),
            self.resources.join(",")
        )?;
        if !self.resource_names.is_empty() {
            write!(f, " resourceNames=[{}]", self.resource_names.join(","))?;
        }
        Ok(())
    }
}

/// One rule granted to one subject by one binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// The subject the binding names (a group for permissions a subject holds through a group).
    pub subject: Subject,
    pub rule: Rule,
    /// `None`: cluster-wide (ClusterRoleBinding); otherwise the RoleBinding's namespace.
    pub namespace: Option<String>,
    /// `ClusterRole/admin` or `Role/<ns>/<name>`.
    pub role: String,
    /// `ClusterRoleBinding/<name>` or `RoleBinding/<ns>/<name>`.
    pub binding: String,
}

impl Grant {
    /// Whether the grant applies in `namespace` (`None`: a cluster-scoped or all-namespaces request,
    /// which only cluster-wide grants cover).
    pub fn applies_in(&self, namespace: Option<&str>) -> bool {
        match &self.namespace {
            None => true,
            Some(g) => namespace == Some(g.as_str()),
        }
    }

    /// Whether the grant allows a resource request.
    pub fn allows(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> bool {
        self.applies_in(namespace) && self.rule.allows(verb, group, resource, name)
    }

    /// Whether the grant allows a non-resource request (ClusterRoleBindings only).
    pub fn allows_url(&self, verb: &str, path: &str) -> bool {
        self.namespace.is_none() && self.rule.allows_url(verb, path)
    }
}

/// A Role or ClusterRole with its effective rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    /// `ClusterRole/<name>` or `Role/<ns>/<name>`.
    pub key: String,
    pub kind: &'static str,
    pub name: String,
    pub namespace: Option<String>,
    /// Own rules plus, for an aggregated ClusterRole, the rules of every ClusterRole its selectors
    /// match (transitively).
    pub rules: Vec<Rule>,
    /// Index of the object in the inventory; `None` for a Kubernetes bootstrap role the inventory
    /// does not contain (used for manifests only: see [`RbacIndex::build`]).
    pub object: Option<usize>,
}

/// Effective permissions of every subject of an inventory.
#[derive(Debug, Clone, Default)]
pub struct RbacIndex {
    /// Every grant made by a binding, in inventory order.
    grants: Vec<Grant>,
    /// Indices in `grants` of the grants naming each subject.
    direct: HashMap<Subject, Vec<usize>>,
    /// Direct and group-derived grants of every subject some binding names (built on first use).
    by_subject: HashMap<Subject, OnceLock<Vec<Grant>>>,
    /// Group-derived grants for subjects no binding names, keyed by the bound groups they are in
    /// (built on first use).
    by_groups: HashMap<Vec<String>, OnceLock<Vec<Grant>>>,
    /// Groups some binding names.
    bound_groups: HashSet<String>,
    subjects: BTreeSet<Subject>,
    roles: BTreeMap<String, RoleInfo>,
    warnings: Vec<String>,
}

fn selector_matches(selector: &Value, labels: &BTreeMap<&str, &str>) -> bool {
    let Some(sel) = selector.as_object() else {
        return false;
    };
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in ml {
            if labels.get(k.as_str()).copied() != v.as_str() {
                return false;
            }
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values = strings(e.get("values"));
            let present = labels.get(key);
            let ok = match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => present.is_some_and(|p| values.iter().any(|v| v == p)),
                "NotIn" => !present.is_some_and(|p| values.iter().any(|v| v == p)),
                "Exists" => present.is_some(),
                "DoesNotExist" => present.is_none(),
                _ => false,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

/// The ClusterRoles kube-apiserver creates at start-up (as served by Kubernetes v1.20, aggregated
/// roles with their selectors), for manifests that bind to them without defining them.
pub fn bootstrap_cluster_roles() -> &'static [KubeObject] {
    static ROLES: OnceLock<Vec<KubeObject>> = OnceLock::new();
    ROLES.get_or_init(|| {
        let entries: Vec<Value> =
            serde_json::from_str(include_str!("bootstrap-clusterroles-v1.20.json"))
                .unwrap_or_default();
        entries
            .into_iter()
            .filter_map(|e| {
                let mut metadata = serde_json::Map::new();
                metadata.insert("name".into(), e.get("name")?.clone());
                if let Some(l) = e.get("labels") {
                    metadata.insert("labels".into(), l.clone());
                }
                let mut v = serde_json::json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": metadata,
                    "rules": e.get("rules").cloned().unwrap_or(Value::Null),
                });
                if let (Some(a), Some(m)) = (e.get("aggregationRule"), v.as_object_mut()) {
                    m.insert("aggregationRule".into(), a.clone());
                }
                KubeObject::from_value(v, None).ok()
            })
            .collect()
    })
}

fn rules_of(o: &KubeObject) -> Vec<Rule> {
    o.get("rules")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(Rule::from_value).collect())
        .unwrap_or_default()
}

fn ns_ref(o: &KubeObject, manifests: bool) -> Option<&str> {
    match &o.namespace {
        Some(ns) => Some(ns),
        None if manifests => Some("default"),
        None => None,
    }
}

/// The namespace of a namespaced object: manifests that leave it out are applied to `default`.
pub(crate) fn namespace_of(o: &KubeObject, inv: &Inventory) -> Option<String> {
    match &o.namespace {
        Some(ns) => Some(ns.clone()),
        None if inv.cluster.is_none() => Some("default".to_string()),
        None => None,
    }
}

/// A subject entry of a binding, resolved as the authorizer does.
fn parse_subject(
    v: &Value,
    binding_ns: Option<&str>,
    binding: &str,
    warnings: &mut Vec<String>,
) -> Option<Subject> {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = v.get("name").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        warnings.push(format!("{binding}: subject without a name ignored"));
        return None;
    }
    match kind {
        "ServiceAccount" => {
            let ns = v
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .or(binding_ns);
            match ns {
                Some(ns) => Some(Subject::service_account(ns, name)),
                None => {
                    warnings.push(format!(
                        "{binding}: ServiceAccount subject {name} without a namespace ignored"
                    ));
                    None
                }
            }
        }
        "User" => {
            // A service account's user name bound as a User is that service account.
            if let Some(rest) = name.strip_prefix("system:serviceaccount:")
                && let Some((ns, sa)) = rest.split_once(':')
                && !ns.is_empty()
                && !sa.is_empty()
                && !sa.contains(':')
            {
                return Some(Subject::service_account(ns, sa));
            }
            Some(Subject::user(name))
        }
        "Group" => Some(Subject::group(name)),
        other => {
            warnings.push(format!(
                "{binding}: subject {name} of unknown kind `{other}` ignored"
            ));
            None
        }
    }
}

impl RbacIndex {
    /// Indexes the Roles, ClusterRoles and bindings of an inventory. For manifests (an inventory
    /// without a cluster name) the ClusterRoles every cluster creates at start-up
    /// ([`bootstrap_cluster_roles`]) stand in for those the manifests bind to but do not define;
    /// a live snapshot is taken as it is.
    pub fn build(inv: &Inventory) -> RbacIndex {
        let mut warnings = Vec::new();
        let mut roles: BTreeMap<String, RoleInfo> = BTreeMap::new();

        // ClusterRoles, then aggregation over their labels.
        // One pass sorts out the objects the index reads.
        let mut cluster_roles: Vec<(Option<usize>, &KubeObject)> = Vec::new();
        let mut namespaced_roles: Vec<(usize, &KubeObject)> = Vec::new();
        let mut binding_objects: Vec<&KubeObject> = Vec::new();
        let mut service_accounts: HashSet<(&str, &str)> = HashSet::new();
        let manifests = inv.cluster.is_none();
        for (idx, o) in inv.objects.iter().enumerate() {
            match o.kind.as_str() {
                "ClusterRole" if o.group() == RBAC_GROUP => cluster_roles.push((Some(idx), o)),
                "Role" if o.group() == RBAC_GROUP => namespaced_roles.push((idx, o)),
                "RoleBinding" | "ClusterRoleBinding" if o.group() == RBAC_GROUP => {
                    binding_objects.push(o)
                }
                "ServiceAccount" if o.api_version == "v1" => {
                    if let Some(ns) = ns_ref(o, manifests) {
                        service_accounts.insert((ns, o.name.as_str()));
                    }
                }
                _ => {
                    if let Some(t) = PodTemplate::of(o)
                        && let Some(ns) = ns_ref(o, manifests)
                    {
                        service_accounts.insert((ns, t.service_account()));
                    }
                }
            }
        }
        if inv.cluster.is_none() {
            // Manifests bind to roles every cluster has (cluster-admin, admin, edit, view, ...).
            let present: HashSet<&str> =
                cluster_roles.iter().map(|(_, o)| o.name.as_str()).collect();
            let missing: Vec<&KubeObject> = bootstrap_cluster_roles()
                .iter()
                .filter(|o| !present.contains(o.name.as_str()))
                .collect();
            cluster_roles.extend(missing.into_iter().map(|o| (None, o)));
        }
        let own: Vec<Vec<Rule>> = cluster_roles.iter().map(|(_, o)| rules_of(o)).collect();
        let labels: Vec<BTreeMap<&str, &str>> =
            cluster_roles.iter().map(|(_, o)| o.labels()).collect();
        // Edges: aggregated role -> roles its selectors match.
        let edges: Vec<Vec<usize>> = cluster_roles
            .iter()
            .map(|(_, o)| {
                match o
                    .get("aggregationRule.clusterRoleSelectors")
                    .and_then(Value::as_array)
                {
                    Some(selectors) => (0..cluster_roles.len())
                        .filter(|&j| selectors.iter().any(|s| selector_matches(s, &labels[j])))
                        .collect(),
                    None => Vec::new(),
                }
            })
            .collect();
        for (i, (idx, o)) in cluster_roles.iter().enumerate() {
            let mut rules = own[i].clone();
            if !edges[i].is_empty() {
                let mut seen: HashSet<&Rule> = own[i].iter().collect();
                let mut visited = vec![false; cluster_roles.len()];
                visited[i] = true;
                let mut stack: Vec<usize> = edges[i].clone();
                let mut extra = Vec::new();
                while let Some(j) = stack.pop() {
                    if std::mem::replace(&mut visited[j], true) {
                        continue;
                    }
                    for r in &own[j] {
                        if seen.insert(r) {
                            extra.push(r.clone());
                        }
                    }
                    stack.extend(edges[j].iter().copied().filter(|&k| !visited[k]));
                }
                rules.extend(extra);
            }
            let key = format!("ClusterRole/{}", o.name);
            roles.insert(
                key.clone(),
                RoleInfo {
                    key,
                    kind: "ClusterRole",
                    name: o.name.clone(),
                    namespace: None,
                    rules,
                    object: *idx,
                },
            );
        }

        for (idx, o) in namespaced_roles {
            let Some(ns) = &namespace_of(o, inv) else {
                warnings.push(format!("Role/{} has no namespace; ignored", o.name));
                continue;
            };
            let key = format!("Role/{ns}/{}", o.name);
            roles.insert(
                key.clone(),
                RoleInfo {
                    key,
                    kind: "Role",
                    name: o.name.clone(),
                    namespace: Some(ns.clone()),
                    rules: rules_of(o),
                    object: Some(idx),
                },
            );
        }

        // Bindings.
        let mut grants = Vec::new();
        for o in binding_objects {
            let cluster_wide = o.kind == "ClusterRoleBinding";
            let binding = if cluster_wide {
                format!("ClusterRoleBinding/{}", o.name)
            } else {
                match &namespace_of(o, inv) {
                    Some(ns) => format!("RoleBinding/{ns}/{}", o.name),
                    None => {
                        warnings.push(format!("RoleBinding/{} has no namespace; ignored", o.name));
                        continue;
                    }
                }
            };
            let ref_kind = o.get("roleRef.kind").and_then(Value::as_str).unwrap_or("");
            let ref_name = o.get("roleRef.name").and_then(Value::as_str).unwrap_or("");
            let binding_ns = if cluster_wide {
                None
            } else {
                namespace_of(o, inv)
            };
            let role_key = match (ref_kind, &binding_ns) {
                ("ClusterRole", _) => format!("ClusterRole/{ref_name}"),
                ("Role", Some(ns)) if !cluster_wide => format!("Role/{ns}/{ref_name}"),
                _ => {
                    warnings.push(format!(
                        "{binding}: roleRef {ref_kind}/{ref_name} is not valid here; ignored"
                    ));
                    continue;
                }
            };
            let Some(role) = roles.get(&role_key) else {
                warnings.push(format!(
                    "{binding} references {role_key}, which does not exist; it grants nothing"
                ));
                continue;
            };
            let namespace = binding_ns.clone();
            for s in o
                .get("subjects")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(subject) =
                    parse_subject(s, binding_ns.as_deref(), &binding, &mut warnings)
                else {
                    continue;
                };
                for rule in &role.rules {
                    // Non-resource rules have no meaning in a namespace.
                    if namespace.is_some() && !rule.non_resource_urls.is_empty() {
                        continue;
                    }
                    grants.push(Grant {
                        subject: subject.clone(),
                        rule: rule.clone(),
                        namespace: namespace.clone(),
                        role: role_key.clone(),
                        binding: binding.clone(),
                    });
                }
            }
        }

        // Group the grants.
        let mut direct: HashMap<Subject, Vec<usize>> = HashMap::new();
        let mut subjects: BTreeSet<Subject> = BTreeSet::new();
        for (i, g) in grants.iter().enumerate() {
            match direct.get_mut(&g.subject) {
                Some(list) => list.push(i),
                None => {
                    direct.insert(g.subject.clone(), vec![i]);
                }
            }
        }
        let bound_groups: HashSet<String> = direct
            .keys()
            .filter(|s| s.kind == SubjectKind::Group)
            .map(|s| s.name.clone())
            .collect();
        let by_subject: HashMap<Subject, OnceLock<Vec<Grant>>> = direct
            .keys()
            .map(|s| (s.clone(), OnceLock::new()))
            .collect();
        subjects.extend(direct.keys().cloned());

        // Subjects no binding names still hold what their groups hold: one list per combination
        // of bound groups such a subject can be in.
        let mut by_groups: HashMap<Vec<String>, OnceLock<Vec<Grant>>> = HashMap::new();
        let mut canonical = vec![
            Subject::user("-"),
            Subject::user(ANONYMOUS),
            Subject::group("-"),
            Subject::group(format!("{SERVICE_ACCOUNTS}:-")),
            Subject::service_account("-", "-"),
        ];
        for g in &bound_groups {
            if let Some(ns) = g
                .strip_prefix(SERVICE_ACCOUNTS)
                .and_then(|r| r.strip_prefix(':'))
            {
                canonical.push(Subject::service_account(ns, "-"));
            }
        }
        for s in &canonical {
            by_groups
                .entry(Self::bound_key(&bound_groups, s))
                .or_default();
        }

        // Service accounts that exist or that workloads run as.
        subjects.extend(
            service_accounts
                .into_iter()
                .map(|(ns, name)| Subject::service_account(ns, name)),
        );

        RbacIndex {
            grants,
            direct,
            by_subject,
            by_groups,
            bound_groups,
            subjects,
            roles,
            warnings,
        }
    }

    fn bound_key(bound: &HashSet<String>, s: &Subject) -> Vec<String> {
        s.implicit_groups()
            .into_iter()
            .filter(|g| bound.contains(g))
            .collect()
    }

    /// Effective grants of a subject: the ones bindings name it in, then the ones of its groups
    /// (a service account's `system:serviceaccounts`, `system:serviceaccounts:<ns>`,
    /// `system:authenticated`; every other subject's `system:authenticated`).
    pub fn grants_of(&self, s: &Subject) -> &[Grant] {
        if let Some(cell) = self.by_subject.get(s) {
            return cell.get_or_init(|| self.collect(Some(s), &s.implicit_groups()));
        }
        let key = Self::bound_key(&self.bound_groups, s);
        match self.by_groups.get(&key) {
            Some(cell) => cell.get_or_init(|| self.collect(None, &key)),
            None => &[],
        }
    }

    /// Copies of the grants naming `subject` and then of those naming each group.
    fn collect(&self, subject: Option<&Subject>, groups: &[String]) -> Vec<Grant> {
        let none: &[usize] = &[];
        let own = subject
            .and_then(|s| self.direct.get(s))
            .map_or(none, Vec::as_slice);
        let mut out: Vec<Grant> = own.iter().map(|&i| self.grants[i].clone()).collect();
        for g in groups {
            if !self.bound_groups.contains(g) {
                continue;
            }
            if let Some(idx) = self.direct.get(&Subject::group(g.as_str())) {
                out.extend(idx.iter().map(|&i| self.grants[i].clone()));
            }
        }
        out
    }

    /// Every grant made by a binding (each once, under the subject the binding names).
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// Subjects bindings name, service accounts of the inventory and those workloads run as; sorted.
    pub fn subjects(&self) -> impl Iterator<Item = &Subject> {
        self.subjects.iter()
    }

    /// Roles and ClusterRoles by key (`ClusterRole/admin`, `Role/<ns>/<name>`), rules effective.
    pub fn roles(&self) -> impl Iterator<Item = &RoleInfo> {
        self.roles.values()
    }

    pub fn role(&self, key: &str) -> Option<&RoleInfo> {
        self.roles.get(key)
    }

    /// What the index could not resolve (bindings to missing roles, subjects without namespace).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether a subject may make a resource request (`resource` is `pods` or `pods/exec`;
    /// `namespace` `None` for cluster-scoped or all-namespaces requests). The request names no
    /// object, so rules restricted by resourceNames do not count: see [`RbacIndex::can_named`].
    pub fn can(
        &self,
        s: &Subject,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> bool {
        self.can_named(s, verb, group, resource, namespace, None)
    }

    /// Like [`RbacIndex::can`], for a request on one named object.
    pub fn can_named(
        &self,
        s: &Subject,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> bool {
        s.is_masters()
            || self
                .grants_of(s)
                .iter()
                .any(|g| g.allows(verb, group, resource, namespace, name))
    }

    /// Whether a subject may make a non-resource request (`get /metrics`).
    pub fn can_url(&self, s: &Subject, verb: &str, path: &str) -> bool {
        s.is_masters() || self.grants_of(s).iter().any(|g| g.allows_url(verb, path))
    }

    /// The subjects bindings name that may make a resource request, each with the grants that
    /// allow it; sorted by subject. Groups are reported as groups (their members are not known).
    pub fn who_can(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> Vec<(Subject, Vec<&Grant>)> {
        let mut out: BTreeMap<&Subject, Vec<&Grant>> = BTreeMap::new();
        for g in &self.grants {
            if g.allows(verb, group, resource, namespace, None) {
                out.entry(&g.subject).or_default().push(g);
            }
        }
        out.into_iter().map(|(s, g)| (s.clone(), g)).collect()
    }

    /// Whether a subject holds every verb on every resource of every group cluster-wide
    /// (`cluster-admin` through a ClusterRoleBinding, or membership of `system:masters`).
    pub fn is_cluster_admin(&self, s: &Subject) -> bool {
        s.is_masters()
            || self
                .grants_of(s)
                .iter()
                .any(|g| g.namespace.is_none() && g.rule.is_full_wildcard())
    }

    /// The grants that make a subject cluster-admin.
    pub fn cluster_admin_grants(&self, s: &Subject) -> Vec<&Grant> {
        self.grants_of(s)
            .iter()
            .filter(|g| g.namespace.is_none() && g.rule.is_full_wildcard())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> KubeObject {
        KubeObject::from_value(v, None).unwrap()
    }

    fn inv(cluster: Option<&str>, objects: Vec<Value>) -> Inventory {
        Inventory {
            cluster: cluster.map(str::to_string),
            objects: objects.into_iter().map(obj).collect(),
            warnings: Vec::new(),
        }
    }

    fn rule(v: Value) -> Rule {
        Rule::from_value(&v)
    }

    fn cr(name: &str, labels: Value, rules: Value) -> Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": name, "labels": labels}, "rules": rules})
    }

    fn crb(name: &str, role: &str, subjects: Value) -> Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": name},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
               "subjects": subjects})
    }

    fn rb(ns: &str, name: &str, kind: &str, role: &str, subjects: Value) -> Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": name, "namespace": ns},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
               "subjects": subjects})
    }

    #[test]
    fn rules_serialize_in_kubernetes_spelling() {
        let r = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/metrics"]}));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["nonResourceURLs"], json!(["/metrics"]));
        assert_eq!(v["apiGroups"], json!([]));
        let s = serde_json::to_value(Subject::service_account("prod", "web")).unwrap();
        assert_eq!(
            s,
            json!({"kind": "ServiceAccount", "name": "web", "namespace": "prod"})
        );
    }

    #[test]
    fn resource_matching_follows_the_authorizer() {
        let star = rule(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        assert!(star.allows("create", "", "pods/exec", None));
        assert!(star.allows("get", "apps", "deployments", None));
        assert!(star.is_full_wildcard());

        let pods_star =
            rule(json!({"verbs": ["create"], "apiGroups": [""], "resources": ["pods/*"]}));
        assert!(!pods_star.allows("create", "", "pods/exec", None));
        assert!(!pods_star.allows("create", "", "pods", None));

        let scale =
            rule(json!({"verbs": ["update"], "apiGroups": ["apps"], "resources": ["*/scale"]}));
        assert!(scale.allows("update", "apps", "deployments/scale", None));
        assert!(scale.allows("update", "apps", "statefulsets/scale", None));
        assert!(!scale.allows("update", "apps", "deployments", None));
        assert!(!scale.allows("update", "apps", "deployments/status", None));
        assert!(!scale.allows("update", "", "deployments/scale", None));

        let pods = rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}));
        assert!(pods.allows("get", "", "pods", None));
        assert!(!pods.allows("get", "", "pods/log", None));
        assert!(!pods.allows("list", "", "pods", None));
        assert!(!pods.allows("get", "apps", "pods", None));

        let named = rule(
            json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["tls"]}),
        );
        assert!(named.allows("get", "", "secrets", Some("tls")));
        assert!(!named.allows("get", "", "secrets", Some("other")));
        assert!(!named.allows("list", "", "secrets", None));
        assert!(!named.is_full_wildcard());

        let urls = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/logs/*"]}));
        assert!(urls.allows_url("get", "/healthz"));
        assert!(urls.allows_url("get", "/logs/kube.log"));
        assert!(!urls.allows_url("get", "/metrics"));
        assert!(!urls.allows("get", "", "healthz", None));
        assert_eq!(
            urls.to_string(),
            "verbs=[get] nonResourceURLs=[/healthz,/logs/*]"
        );
        assert_eq!(
            named.to_string(),
            "verbs=[get,list] apiGroups=[\"\"] resources=[secrets] resourceNames=[tls]"
        );
    }

    #[test]
    fn aggregation_is_transitive_and_survives_cycles() {
        let i = inv(
            Some("c"),
            vec![
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "top"},
                   "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg/top": "true"}}]},
                   "rules": []}),
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "mid", "labels": {"agg/top": "true", "agg/mid": "true"}},
                   "aggregationRule": {"clusterRoleSelectors": [
                       {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["low"]}]}]},
                   "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}]}),
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "low", "labels": {"tier": "low"}},
                   "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg/mid": "true"}}]},
                   "rules": [{"verbs": ["create"], "apiGroups": [""], "resources": ["pods"]}]}),
                cr(
                    "unrelated",
                    json!({"tier": "high"}),
                    json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]),
                ),
                rb(
                    "prod",
                    "b",
                    "ClusterRole",
                    "top",
                    json!([{"kind": "User", "name": "alice"}]),
                ),
            ],
        );
        let idx = RbacIndex::build(&i);
        let top = idx.role("ClusterRole/top").unwrap();
        assert_eq!(top.rules.len(), 2);
        // low and mid aggregate each other: both end up with both rules, no endless loop.
        assert_eq!(idx.role("ClusterRole/low").unwrap().rules.len(), 2);
        assert_eq!(idx.role("ClusterRole/mid").unwrap().rules.len(), 2);
        let alice = Subject::user("alice");
        assert!(idx.can(&alice, "create", "", "pods", Some("prod")));
        assert!(idx.can(&alice, "get", "", "configmaps", Some("prod")));
        // RoleBinding to a ClusterRole: its namespace only.
        assert!(!idx.can(&alice, "create", "", "pods", Some("dev")));
        assert!(!idx.can(&alice, "create", "", "pods", None));
        assert!(!idx.is_cluster_admin(&alice));
    }

    #[test]
    fn subjects_are_resolved_like_the_authorizer() {
        let i = inv(
            Some("c"),
            vec![
                cr(
                    "secret-reader",
                    json!({}),
                    json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["secrets"]}]),
                ),
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                       "metadata": {"name": "exec", "namespace": "prod"},
                       "rules": [{"verbs": ["create"], "apiGroups": [""], "resources": ["pods/exec"]}]}),
                // Legacy subject without namespace: the binding's namespace.
                rb(
                    "prod",
                    "legacy",
                    "Role",
                    "exec",
                    json!([{"kind": "ServiceAccount", "name": "ci"}]),
                ),
                // A service account's user name bound as a User.
                crb(
                    "by-username",
                    "secret-reader",
                    json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
                             "name": "system:serviceaccount:ops:backup"}]),
                ),
                crb(
                    "all-sas-in-dev",
                    "secret-reader",
                    json!([{"kind": "Group", "name": "system:serviceaccounts:dev"}]),
                ),
                rb(
                    "prod",
                    "dangling",
                    "Role",
                    "nope",
                    json!([{"kind": "User", "name": "bob"}]),
                ),
                crb(
                    "no-ns",
                    "secret-reader",
                    json!([{"kind": "ServiceAccount", "name": "x"}]),
                ),
                json!({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "web", "namespace": "dev"}}),
            ],
        );
        let idx = RbacIndex::build(&i);
        let ci = Subject::service_account("prod", "ci");
        assert!(idx.can(&ci, "create", "", "pods/exec", Some("prod")));
        assert!(!idx.can(&ci, "create", "", "pods", Some("prod")));
        let backup = Subject::service_account("ops", "backup");
        assert!(idx.can(&backup, "list", "", "secrets", None));
        assert!(idx.can(&backup, "list", "", "secrets", Some("any")));
        // Through the group system:serviceaccounts:dev, known or not.
        let web = Subject::service_account("dev", "web");
        assert!(idx.can(&web, "get", "", "secrets", Some("x")));
        assert_eq!(
            idx.grants_of(&web)[0].subject,
            Subject::group("system:serviceaccounts:dev")
        );
        assert!(idx.can(
            &Subject::service_account("dev", "never-seen"),
            "get",
            "",
            "secrets",
            None
        ));
        assert!(!idx.can(
            &Subject::service_account("prod", "never-seen"),
            "get",
            "",
            "secrets",
            None
        ));
        assert!(idx.grants_of(&Subject::user("bob")).is_empty());
        assert!(
            idx.warnings()
                .iter()
                .any(|w| w.contains("RoleBinding/prod/dangling") && w.contains("does not exist"))
        );
        assert!(
            idx.warnings()
                .iter()
                .any(|w| w.contains("ClusterRoleBinding/no-ns"))
        );
        let subjects: Vec<String> = idx.subjects().map(|s| s.to_string()).collect();
        assert!(subjects.contains(&"ServiceAccount dev/web".to_string()));
        assert!(subjects.contains(&"ServiceAccount prod/ci".to_string()));

        let who = idx.who_can("get", "", "secrets", Some("prod"));
        let names: Vec<String> = who.iter().map(|(s, _)| s.to_string()).collect();
        assert_eq!(
            names,
            vec![
                "Group system:serviceaccounts:dev",
                "ServiceAccount ops/backup"
            ]
        );
        assert_eq!(who[1].1[0].binding, "ClusterRoleBinding/by-username");
        assert_eq!(who[1].1[0].role, "ClusterRole/secret-reader");
    }

    #[test]
    fn implicit_groups() {
        let i = inv(
            Some("c"),
            vec![
                cr(
                    "nodes-reader",
                    json!({}),
                    json!([{"verbs": ["list"], "apiGroups": [""], "resources": ["nodes"]}]),
                ),
                cr(
                    "everything",
                    json!({}),
                    json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                           {"verbs": ["*"], "nonResourceURLs": ["*"]}]),
                ),
                crb(
                    "authn",
                    "nodes-reader",
                    json!([{"kind": "Group", "name": "system:authenticated"}]),
                ),
                crb(
                    "anon",
                    "everything",
                    json!([{"kind": "Group", "name": "system:unauthenticated"}]),
                ),
            ],
        );
        let idx = RbacIndex::build(&i);
        for s in [
            Subject::user("alice"),
            Subject::group("devs"),
            Subject::service_account("a", "b"),
        ] {
            assert!(idx.can(&s, "list", "", "nodes", None), "{s}");
            assert!(!idx.is_cluster_admin(&s), "{s}");
        }
        let anon = Subject::user(ANONYMOUS);
        assert!(
            idx.grants_of(&anon)
                .iter()
                .all(|g| g.subject == Subject::group(UNAUTHENTICATED))
        );
        assert!(idx.is_cluster_admin(&anon));
        assert!(idx.can_url(&anon, "get", "/metrics"));
        assert!(!idx.can_url(&Subject::user("alice"), "get", "/metrics"));
        // system:masters is a superuser without any binding.
        assert!(idx.is_cluster_admin(&Subject::group(MASTERS)));
        assert!(idx.can(
            &Subject::group(MASTERS),
            "escalate",
            "rbac.authorization.k8s.io",
            "clusterroles",
            None
        ));
    }

    #[test]
    fn manifests_bind_to_bootstrap_roles() {
        let objects = vec![
            crb(
                "ci-admin",
                "cluster-admin",
                json!([{"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}]),
            ),
            rb(
                "prod",
                "editors",
                "ClusterRole",
                "edit",
                json!([{"kind": "Group", "name": "devs"}]),
            ),
            // Extends `edit` through its aggregation label.
            cr(
                "widgets-edit",
                json!({"rbac.authorization.k8s.io/aggregate-to-edit": "true"}),
                json!([{"verbs": ["create"], "apiGroups": ["example.com"], "resources": ["widgets"]}]),
            ),
        ];
        let idx = RbacIndex::build(&inv(None, objects.clone()));
        assert!(idx.is_cluster_admin(&Subject::service_account("tools", "ci")));
        let devs = Subject::group("devs");
        assert!(idx.can(&devs, "create", "", "pods/exec", Some("prod")));
        assert!(idx.can(&devs, "create", "example.com", "widgets", Some("prod")));
        assert!(!idx.can(
            &devs,
            "create",
            "rbac.authorization.k8s.io",
            "rolebindings",
            Some("prod")
        ));
        assert!(idx.role("ClusterRole/edit").unwrap().object.is_none());

        // A live snapshot is taken as served: no such roles, no grants.
        let live = RbacIndex::build(&inv(Some("c"), objects));
        assert!(!live.is_cluster_admin(&Subject::service_account("tools", "ci")));
        assert!(!live.can(&devs, "create", "", "pods/exec", Some("prod")));
        assert!(!live.can(&devs, "create", "example.com", "widgets", Some("prod")));
    }
}
