//! Constraints (`constraints.gatekeeper.sh`): which objects a template applies to (`spec.match`),
//! with which parameters, and what happens on a violation (`spec.enforcementAction`).

use crate::review::ReviewRequest;
use palisade_kube::{KubeObject, SourceLocation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The API group of constraints.
pub const CONSTRAINT_GROUP: &str = "constraints.gatekeeper.sh";

/// What a violation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnforcementAction {
    /// Recorded only (audit results, metrics, decision log); the request is admitted.
    Dryrun,
    /// Admitted with a warning returned to the client.
    Warn,
    /// Rejected.
    Deny,
}

impl EnforcementAction {
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementAction::Deny => "deny",
            EnforcementAction::Dryrun => "dryrun",
            EnforcementAction::Warn => "warn",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "deny" => Some(EnforcementAction::Deny),
            "dryrun" => Some(EnforcementAction::Dryrun),
            "warn" => Some(EnforcementAction::Warn),
            _ => None,
        }
    }
}

/// Where a constraint is being enforced (Gatekeeper's enforcement point names, used by
/// `scopedEnforcementActions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnforcementPoint {
    /// The validating admission webhook.
    Webhook,
    /// Audit of existing objects.
    Audit,
    /// Offline tests (`policy verify`, `policy test`).
    Gator,
}

impl EnforcementPoint {
    pub fn name(self) -> &'static str {
        match self {
            EnforcementPoint::Webhook => "validation.gatekeeper.sh",
            EnforcementPoint::Audit => "audit.gatekeeper.sh",
            EnforcementPoint::Gator => "gator.gatekeeper.sh",
        }
    }

    /// The `processes` name of a Gatekeeper Config exemption.
    pub(crate) fn process(self) -> &'static str {
        match self {
            EnforcementPoint::Webhook => "webhook",
            EnforcementPoint::Audit => "audit",
            EnforcementPoint::Gator => "gator",
        }
    }
}

/// Why a constraint cannot be used. Every message names the constraint.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{kind} {name}: {message}")]
pub struct ConstraintError {
    pub kind: String,
    pub name: String,
    pub message: String,
}

/// A namespace or name pattern: exact, `prefix*` or `*suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wildcard(pub String);

impl Wildcard {
    pub fn matches(&self, text: &str) -> bool {
        let p = self.0.as_str();
        if let Some(prefix) = p.strip_suffix('*') {
            text.starts_with(prefix)
        } else if let Some(suffix) = p.strip_prefix('*') {
            text.ends_with(suffix)
        } else {
            p == text
        }
    }

    /// Whether a `generateName` could produce names this pattern matches (`web-*` and `web-`).
    fn matches_generate_name(&self, generate_name: &str) -> bool {
        !generate_name.is_empty()
            && self
                .0
                .strip_suffix('*')
                .is_some_and(|prefix| generate_name.starts_with(prefix))
    }
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<LabelRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRequirement {
    pub key: String,
    pub operator: LabelOperator,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl LabelSelector {
    /// Parses a selector; errors name the offending field.
    pub fn from_value(v: &Value) -> Result<LabelSelector, String> {
        let Some(map) = v.as_object() else {
            return Err("must be a mapping".into());
        };
        let mut sel = LabelSelector::default();
        if let Some(labels) = map.get("matchLabels").filter(|l| !l.is_null()) {
            let labels = labels
                .as_object()
                .ok_or("`matchLabels` must be a mapping")?;
            for (k, v) in labels {
                let v = v
                    .as_str()
                    .ok_or_else(|| format!("`matchLabels.{k}` must be a string"))?;
                sel.match_labels.insert(k.clone(), v.to_string());
            }
        }
        if let Some(exprs) = map.get("matchExpressions").filter(|l| !l.is_null()) {
            let exprs = exprs
                .as_array()
                .ok_or("`matchExpressions` must be a list")?;
            for (i, e) in exprs.iter().enumerate() {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("`matchExpressions[{i}].key` is missing"))?;
                let operator = match e.get("operator").and_then(Value::as_str) {
                    Some("In") => LabelOperator::In,
                    Some("NotIn") => LabelOperator::NotIn,
                    Some("Exists") => LabelOperator::Exists,
                    Some("DoesNotExist") => LabelOperator::DoesNotExist,
                    other => {
                        return Err(format!(
                            "`matchExpressions[{i}].operator` {other:?} is not In, NotIn, Exists or DoesNotExist"
                        ));
                    }
                };
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|vs| {
                        vs.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                match operator {
                    LabelOperator::In | LabelOperator::NotIn if values.is_empty() => {
                        return Err(format!(
                            "`matchExpressions[{i}]`: {operator:?} needs at least one value"
                        ));
                    }
                    LabelOperator::Exists | LabelOperator::DoesNotExist if !values.is_empty() => {
                        return Err(format!(
                            "`matchExpressions[{i}]`: {operator:?} takes no values"
                        ));
                    }
                    _ => {}
                }
                sel.match_expressions.push(LabelRequirement {
                    key: key.to_string(),
                    operator,
                    values,
                });
            }
        }
        Ok(sel)
    }

    /// Whether labels satisfy every requirement (an empty selector matches everything).
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.match_labels
            .iter()
            .all(|(k, v)| get(k) == Some(v.as_str()))
            && self.match_expressions.iter().all(|r| {
                let value = get(&r.key);
                match r.operator {
                    LabelOperator::In => value.is_some_and(|v| r.values.iter().any(|x| x == v)),
                    LabelOperator::NotIn => !value.is_some_and(|v| r.values.iter().any(|x| x == v)),
                    LabelOperator::Exists => value.is_some(),
                    LabelOperator::DoesNotExist => value.is_none(),
                }
            })
    }
}

/// One `spec.match.kinds` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindSelector {
    pub api_groups: Vec<String>,
    pub kinds: Vec<String>,
}

/// `spec.match.scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Cluster,
    Namespaced,
}

/// `spec.match`: every criterion that is set must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub kinds: Vec<KindSelector>,
    pub scope: Scope,
    pub namespaces: Vec<Wildcard>,
    pub excluded_namespaces: Vec<Wildcard>,
    pub label_selector: Option<LabelSelector>,
    pub namespace_selector: Option<LabelSelector>,
    pub name: Option<Wildcard>,
}

/// The outcome of matching when the answer depends on a Namespace nobody supplied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the constraint has a namespaceSelector but Namespace {0} is not known")]
pub struct NamespaceUnknown(pub String);

impl Match {
    fn parse(v: Option<&Value>) -> Result<Match, String> {
        let empty = Map::new();
        let m = match v {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => return Err("`spec.match` must be a mapping".into()),
        };
        let strings = |key: &str| -> Result<Vec<String>, String> {
            match m.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(String::from)
                            .ok_or_else(|| format!("`spec.match.{key}` entries must be strings"))
                    })
                    .collect(),
                Some(_) => Err(format!("`spec.match.{key}` must be a list")),
            }
        };
        let mut kinds = Vec::new();
        match m.get("kinds") {
            None | Some(Value::Null) => {}
            Some(Value::Array(entries)) => {
                for (i, e) in entries.iter().enumerate() {
                    let list = |key: &str| -> Result<Vec<String>, String> {
                        match e.get(key) {
                            None | Some(Value::Null) => Ok(Vec::new()),
                            Some(Value::Array(items)) => items
                                .iter()
                                .map(|x| {
                                    x.as_str().map(String::from).ok_or_else(|| {
                                        format!(
                                            "`spec.match.kinds[{i}].{key}` entries must be strings"
                                        )
                                    })
                                })
                                .collect(),
                            Some(_) => Err(format!("`spec.match.kinds[{i}].{key}` must be a list")),
                        }
                    };
                    kinds.push(KindSelector {
                        api_groups: list("apiGroups")?,
                        kinds: list("kinds")?,
                    });
                }
            }
            Some(_) => return Err("`spec.match.kinds` must be a list".into()),
        }
        let scope = match m.get("scope").and_then(Value::as_str) {
            Some("Cluster") => Scope::Cluster,
            Some("Namespaced") => Scope::Namespaced,
            // Gatekeeper treats anything else (including typos) as `*`.
            _ => Scope::All,
        };
        let selector = |key: &str| -> Result<Option<LabelSelector>, String> {
            match m.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => LabelSelector::from_value(v)
                    .map(Some)
                    .map_err(|e| format!("`spec.match.{key}`: {e}")),
            }
        };
        let name = match m.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(Wildcard(s.clone())),
            Some(_) => return Err("`spec.match.name` must be a string".into()),
        };
        if let Some(source) = m.get("source").and_then(Value::as_str)
            && !matches!(source, "All" | "Original" | "Generated")
        {
            return Err(format!(
                "`spec.match.source` {source:?} is not All, Original or Generated"
            ));
        }
        Ok(Match {
            kinds,
            scope,
            namespaces: strings("namespaces")?.into_iter().map(Wildcard).collect(),
            excluded_namespaces: strings("excludedNamespaces")?
                .into_iter()
                .map(Wildcard)
                .collect(),
            label_selector: selector("labelSelector")?,
            namespace_selector: selector("namespaceSelector")?,
            name,
        })
    }

    /// Whether the constraint applies to the review, with Gatekeeper's semantics: cluster-scoped
    /// objects pass the namespace criteria, a Namespace is matched by its own name and labels.
    pub fn matches(&self, review: &ReviewRequest) -> Result<bool, NamespaceUnknown> {
        self.matches_with(review, review.namespace_object.as_ref())
    }

    /// [`Match::matches`] with the Namespace of the review given separately.
    pub fn matches_with(
        &self,
        review: &ReviewRequest,
        namespace_object: Option<&Value>,
    ) -> Result<bool, NamespaceUnknown> {
        let gvk = &review.kind;
        let kinds_ok = self.kinds.is_empty()
            || self.kinds.iter().any(|k| {
                (k.kinds.is_empty() || k.kinds.iter().any(|x| x == "*" || *x == gvk.kind))
                    && (k.api_groups.is_empty()
                        || k.api_groups.iter().any(|g| g == "*" || *g == gvk.group))
            });
        if !kinds_ok {
            return Ok(false);
        }
        let is_namespace = review.is_namespace();
        let namespace = if is_namespace {
            Some(review.name.as_str())
        } else {
            review.namespace.as_deref()
        };
        let has_namespace = review.namespace.is_some();
        let scope_ok = match self.scope {
            Scope::All => true,
            Scope::Cluster => is_namespace || !has_namespace,
            Scope::Namespaced => !is_namespace && has_namespace,
        };
        if !scope_ok {
            return Ok(false);
        }
        if let Some(ns) = namespace {
            if !self.namespaces.is_empty() && !self.namespaces.iter().any(|p| p.matches(ns)) {
                return Ok(false);
            }
            if self.excluded_namespaces.iter().any(|p| p.matches(ns)) {
                return Ok(false);
            }
        }
        if let Some(sel) = &self.label_selector
            && !sel.matches(review.labels())
        {
            return Ok(false);
        }
        if let Some(sel) = &self.namespace_selector {
            if is_namespace {
                if !sel.matches(review.labels()) {
                    return Ok(false);
                }
            } else if let Some(ns) = &review.namespace {
                let Some(ns_object) = namespace_object else {
                    return Err(NamespaceUnknown(ns.clone()));
                };
                let labels = ns_object
                    .get("metadata")
                    .and_then(|m| m.get("labels"))
                    .and_then(Value::as_object);
                if !sel.matches(labels) {
                    return Ok(false);
                }
            }
        }
        if let Some(name) = &self.name
            && !(name.matches(&review.name) || name.matches_generate_name(&review.generate_name))
        {
            return Ok(false);
        }
        Ok(true)
    }
}

/// `spec.scopedEnforcementActions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedAction {
    pub action: EnforcementAction,
    /// Enforcement point names; `*` is every point.
    pub points: Vec<String>,
}

/// A parsed constraint.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    /// The constraint kind, which names its template.
    pub kind: String,
    pub name: String,
    pub api_version: String,
    pub matcher: Match,
    /// `spec.parameters` after schema checking (defaults filled, unknown fields pruned).
    pub parameters: Value,
    /// `spec.enforcementAction` (default deny); `None` when it is `scoped`.
    pub enforcement_action: Option<EnforcementAction>,
    pub scoped_actions: Vec<ScopedAction>,
    pub annotations: BTreeMap<String, String>,
    pub source: Option<SourceLocation>,
}

impl Constraint {
    /// Whether an object is a constraint.
    pub fn is_constraint(object: &KubeObject) -> bool {
        object
            .api_version
            .split_once('/')
            .is_some_and(|(g, _)| g == CONSTRAINT_GROUP)
    }

    /// Parses a constraint; parameters are checked against the schema by the caller.
    pub fn from_object(object: &KubeObject) -> Result<Constraint, ConstraintError> {
        let err = |message: String| ConstraintError {
            kind: object.kind.clone(),
            name: object.name.clone(),
            message,
        };
        let spec = match object.value.get("spec") {
            None | Some(Value::Null) => &Value::Null,
            Some(s @ Value::Object(_)) => s,
            Some(_) => return Err(err("`spec` must be a mapping".into())),
        };
        let matcher = Match::parse(spec.get("match")).map_err(err)?;
        let parameters = spec.get("parameters").cloned().unwrap_or(Value::Null);
        let (enforcement_action, scoped_actions) = match spec
            .get("enforcementAction")
            .and_then(Value::as_str)
        {
            None | Some("") => (Some(EnforcementAction::Deny), Vec::new()),
            Some(a) if a.eq_ignore_ascii_case("scoped") => {
                let entries = spec
                    .get("scopedEnforcementActions")
                    .and_then(Value::as_array)
                    .filter(|e| !e.is_empty())
                    .ok_or_else(|| {
                        err("enforcementAction `scoped` needs `scopedEnforcementActions`".into())
                    })?;
                let mut scoped = Vec::new();
                for (i, e) in entries.iter().enumerate() {
                    let action = e
                        .get("action")
                        .and_then(Value::as_str)
                        .and_then(EnforcementAction::parse)
                        .ok_or_else(|| {
                            err(format!(
                                "`scopedEnforcementActions[{i}].action` must be deny, warn or dryrun"
                            ))
                        })?;
                    let points: Vec<String> = e
                        .get("enforcementPoints")
                        .and_then(Value::as_array)
                        .map(|ps| {
                            ps.iter()
                                .filter_map(|p| p.get("name").and_then(Value::as_str))
                                .map(String::from)
                                .collect()
                        })
                        .unwrap_or_default();
                    scoped.push(ScopedAction { action, points });
                }
                (None, scoped)
            }
            Some(a) => {
                let action = EnforcementAction::parse(a).ok_or_else(|| {
                    err(format!(
                        "enforcementAction `{a}` is not deny, dryrun, warn or scoped"
                    ))
                })?;
                (Some(action), Vec::new())
            }
        };
        let annotations = object
            .annotations()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(Constraint {
            kind: object.kind.clone(),
            name: object.name.clone(),
            api_version: object.api_version.clone(),
            matcher,
            parameters,
            enforcement_action,
            scoped_actions,
            annotations,
            source: object.source.clone(),
        })
    }

    /// The action at an enforcement point: the plain action, or the strongest scoped action
    /// naming the point (`None`: not enforced there).
    pub fn action_at(&self, point: EnforcementPoint) -> Option<EnforcementAction> {
        if let Some(a) = self.enforcement_action {
            return Some(a);
        }
        self.scoped_actions
            .iter()
            .filter(|s| {
                s.points.is_empty() || s.points.iter().any(|p| p == "*" || p == point.name())
            })
            .map(|s| s.action)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn constraint(spec: Value) -> Constraint {
        let obj = KubeObject::from_value(
            json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sDemo",
                   "metadata": {"name": "demo"}, "spec": spec}),
            None,
        )
        .unwrap();
        Constraint::from_object(&obj).unwrap()
    }

    fn review(obj: Value) -> ReviewRequest {
        ReviewRequest::from_object(obj).unwrap()
    }

    fn pod(ns: &str, labels: Value) -> ReviewRequest {
        review(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": ns, "labels": labels}}))
    }

    #[test]
    fn kinds_scope_namespaces_and_names() {
        let c = constraint(json!({"match": {
            "kinds": [{"apiGroups": [""], "kinds": ["Pod"]}],
            "namespaces": ["prod-*", "*-live"], "excludedNamespaces": ["prod-sandbox"],
            "name": "web-*"}}));
        assert!(c.matcher.matches(&pod("prod-eu", json!({}))).unwrap());
        assert!(c.matcher.matches(&pod("shop-live", json!({}))).unwrap());
        assert!(!c.matcher.matches(&pod("prod-sandbox", json!({}))).unwrap());
        assert!(!c.matcher.matches(&pod("dev", json!({}))).unwrap());
        let deploy = review(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web-1", "namespace": "prod-eu"}}));
        assert!(!c.matcher.matches(&deploy).unwrap());
        // Cluster-scoped objects pass namespace criteria; scope decides.
        let any = constraint(json!({"match": {"namespaces": ["prod"], "scope": "Namespaced"}}));
        let node = review(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}}));
        assert!(!any.matcher.matches(&node).unwrap());
        let cluster = constraint(json!({"match": {"namespaces": ["prod"], "scope": "Cluster"}}));
        assert!(cluster.matcher.matches(&node).unwrap());
        // A Namespace is matched by its own name.
        let ns =
            review(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}}));
        assert!(cluster.matcher.matches(&ns).unwrap());
    }

    #[test]
    fn label_and_namespace_selectors() {
        let c = constraint(json!({"match": {
            "labelSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]},
            "namespaceSelector": {"matchLabels": {"env": "prod"}}}}));
        let mut r = pod("shop", json!({"tier": "web"}));
        assert_eq!(c.matcher.matches(&r), Err(NamespaceUnknown("shop".into())));
        r.namespace_object = Some(json!({"metadata": {"name": "shop", "labels": {"env": "prod"}}}));
        assert!(c.matcher.matches(&r).unwrap());
        r.namespace_object = Some(json!({"metadata": {"name": "shop", "labels": {"env": "dev"}}}));
        assert!(!c.matcher.matches(&r).unwrap());
        let mut other = pod("shop", json!({"tier": "db"}));
        other.namespace_object = Some(json!({"metadata": {"labels": {"env": "prod"}}}));
        assert!(!c.matcher.matches(&other).unwrap());
    }

    #[test]
    fn enforcement_actions() {
        assert_eq!(
            constraint(json!({})).action_at(EnforcementPoint::Webhook),
            Some(EnforcementAction::Deny)
        );
        assert_eq!(
            constraint(json!({"enforcementAction": "warn"})).action_at(EnforcementPoint::Audit),
            Some(EnforcementAction::Warn)
        );
        let scoped = constraint(
            json!({"enforcementAction": "scoped", "scopedEnforcementActions": [
            {"action": "warn", "enforcementPoints": [{"name": "validation.gatekeeper.sh"}]},
            {"action": "deny", "enforcementPoints": [{"name": "audit.gatekeeper.sh"}]}]}),
        );
        assert_eq!(
            scoped.action_at(EnforcementPoint::Webhook),
            Some(EnforcementAction::Warn)
        );
        assert_eq!(
            scoped.action_at(EnforcementPoint::Audit),
            Some(EnforcementAction::Deny)
        );
        assert_eq!(scoped.action_at(EnforcementPoint::Gator), None);
        let obj = KubeObject::from_value(
            json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sDemo",
                   "metadata": {"name": "d"}, "spec": {"enforcementAction": "block"}}),
            None,
        )
        .unwrap();
        let e = Constraint::from_object(&obj).unwrap_err().to_string();
        assert!(e.starts_with("K8sDemo d: enforcementAction `block`"), "{e}");
    }
}
