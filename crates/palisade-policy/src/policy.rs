//! A compiled set of templates and constraints, and the evaluator that reviews requests against
//! it the way Gatekeeper does.

use crate::constraint::{
    Constraint, ConstraintError, EnforcementAction, EnforcementPoint, Wildcard,
};
use crate::external::ExternalDataProvider;
use crate::native;
use crate::rego::{self, CompiledTemplate};
use crate::review::{GroupVersionKind, ReviewRequest};
use crate::schema;
use crate::template::{Template, TemplateError};
use palisade_core::Severity;
use palisade_kube::{KubeObject, SourceLocation};
use palisade_posture::PostureConfig;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Annotation naming the Palisade check a template or constraint enforces.
pub const CHECK_ID_ANNOTATION: &str = "palisade.io/check-id";
/// Annotation giving the severity of a template's or constraint's violations.
pub const SEVERITY_ANNOTATION: &str = "palisade.io/severity";

/// Why a policy object could not be used.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum PolicyError {
    #[error("{}{error}", location)]
    Template {
        error: TemplateError,
        location: String,
    },
    #[error("{}{error}", location)]
    Constraint {
        error: ConstraintError,
        location: String,
    },
    #[error("{}{kind} {name}: no ConstraintTemplate defines kind {kind}", location)]
    UnknownKind {
        kind: String,
        name: String,
        location: String,
    },
    #[error(
        "{}ConstraintTemplate {name} defines kind {kind} already defined by ConstraintTemplate {other}",
        location
    )]
    DuplicateKind {
        name: String,
        kind: String,
        other: String,
        location: String,
    },
    #[error("{}Config {name}: {message}", location)]
    Config {
        name: String,
        message: String,
        location: String,
    },
}

/// `file:line: ` of a policy object, or nothing, to prefix messages with.
fn prefix(source: &Option<SourceLocation>) -> String {
    match source {
        Some(s) => format!("{}:{}: ", s.file, s.line),
        None => String::new(),
    }
}

/// Something worth telling the user that does not stop the policy from working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyWarning {
    pub source: Option<SourceLocation>,
    pub message: String,
}

impl std::fmt::Display for PolicyWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", prefix(&self.source), self.message)
    }
}

/// A failed evaluation of one constraint.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq, Serialize)]
#[error("{constraint_kind} {constraint_name}: {message}")]
pub struct EvalError {
    pub constraint_kind: String,
    pub constraint_name: String,
    pub message: String,
    /// Whether the evaluation ran out of time.
    pub timed_out: bool,
}

/// One violation of one constraint.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub constraint_kind: String,
    pub constraint_name: String,
    /// The template's `metadata.name`.
    pub template: String,
    pub message: String,
    /// The violation's `details` (null when the template gives none).
    pub details: Value,
    /// What the violation does at the enforcement point it was found at.
    pub action: EnforcementAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

/// The full outcome of a review, errors of individual constraints kept beside the violations.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReviewOutcome {
    pub violations: Vec<Violation>,
    pub errors: Vec<EvalError>,
}

/// How sets are built beyond the policy objects themselves.
#[derive(Clone, Default)]
pub struct PolicySettings {
    /// Namespaces no constraint applies to (exact, `prefix*`, `*suffix`), as Gatekeeper's
    /// `--exempt-namespace`; in addition to Gatekeeper Config objects.
    pub exempt_namespaces: Vec<String>,
    pub providers: Vec<Arc<dyn ExternalDataProvider>>,
    /// Longest one constraint's evaluation may run.
    pub eval_timeout: Option<Duration>,
    /// Evaluate Palisade's bundle templates with their Rego everywhere. By default the webhook
    /// and audit decide unmodified bundle templates of workload checks with the equivalent
    /// posture check (see `native.rs`); tests (`EnforcementPoint::Gator`) always run the Rego.
    pub rego_only: bool,
}

/// One compiled constraint.
struct CompiledConstraint {
    constraint: Constraint,
    template: usize,
    /// The native group deciding this constraint at the webhook and audit, and its check id.
    native: Option<(usize, &'static str)>,
    parameters: regorus::Value,
    check_id: Option<String>,
    severity: Option<Severity>,
}

/// A namespace exemption from a Gatekeeper Config (or the settings).
struct Exemption {
    pattern: Wildcard,
    /// Process names (`*`, `webhook`, `audit`, …).
    processes: Vec<String>,
}

struct Inner {
    templates: Vec<Template>,
    compiled: Vec<Mutex<CompiledTemplate>>,
    constraints: Vec<CompiledConstraint>,
    public_constraints: Vec<Constraint>,
    exemptions: Vec<Exemption>,
    namespaces: HashMap<String, Value>,
    /// Constraint indexes per kind (`group/Kind`), plus those matching any kind.
    by_kind: HashMap<(String, String), Vec<usize>>,
    any_kind: Vec<usize>,
    /// Posture configurations of natively decided constraints, one per distinct parameter set.
    native_groups: Vec<PostureConfig>,
    /// ServiceAccounts of the inventory, for the automount check decided natively.
    service_accounts: Vec<KubeObject>,
}

/// An immutable compiled set of templates and constraints. Cheap to clone; share it across
/// threads and take one [`Evaluator`] per thread.
#[derive(Clone)]
pub struct PolicySet {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet")
            .field("templates", &self.inner.templates.len())
            .field("constraints", &self.inner.constraints.len())
            .finish()
    }
}

impl PolicySet {
    pub fn builder() -> PolicySetBuilder {
        PolicySetBuilder::default()
    }

    /// Compiles the templates, constraints and Gatekeeper Configs among `objects`; `inventory`
    /// becomes `data.inventory` and the Namespace lookup for `namespaceSelector`.
    pub fn compile(
        objects: &[KubeObject],
        inventory: &[KubeObject],
        settings: &PolicySettings,
    ) -> Result<(PolicySet, Vec<PolicyWarning>), Vec<PolicyError>> {
        let mut builder = PolicySet::builder();
        builder.settings(settings.clone());
        let mut errors = Vec::new();
        for object in objects {
            if let Err(e) = builder.add(object) {
                errors.push(e);
            }
        }
        builder.inventory(inventory);
        match builder.build() {
            Ok(built) if errors.is_empty() => Ok(built),
            Ok(_) => Err(errors),
            Err(mut more) => {
                errors.append(&mut more);
                Err(errors)
            }
        }
    }

    /// An empty set (admits everything).
    pub fn empty() -> PolicySet {
        match PolicySetBuilder::default().build() {
            Ok((set, _)) => set,
            Err(_) => unreachable!("an empty builder has nothing that can fail"),
        }
    }

    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        self.inner.templates.iter()
    }

    pub fn constraints(&self) -> &[Constraint] {
        &self.inner.public_constraints
    }

    /// The template of a constraint kind.
    pub fn template_for(&self, kind: &str) -> Option<&Template> {
        self.inner.templates.iter().find(|t| t.kind == kind)
    }

    /// A per-thread evaluator holding its own copies of the compiled engines.
    pub fn evaluator(&self) -> Evaluator {
        let engines = self
            .inner
            .compiled
            .iter()
            .map(|c| match c.lock() {
                Ok(guard) => guard.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            })
            .collect();
        Evaluator {
            set: self.clone(),
            engines,
        }
    }

    /// The Namespace object of a name, from the inventory.
    pub fn namespace(&self, name: &str) -> Option<&Value> {
        self.inner.namespaces.get(name)
    }

    /// The kinds (`group`, `Kind`) the constraints match; `None` if some constraint matches any kind.
    pub fn matched_kinds(&self) -> Option<Vec<(String, String)>> {
        if !self.inner.any_kind.is_empty() {
            return None;
        }
        let mut kinds: Vec<_> = self.inner.by_kind.keys().cloned().collect();
        kinds.sort();
        Some(kinds)
    }

    fn exempt(&self, review: &ReviewRequest, point: EnforcementPoint) -> bool {
        let namespace = if review.is_namespace() {
            Some(review.name.as_str())
        } else {
            review.namespace.as_deref()
        };
        let Some(ns) = namespace else { return false };
        self.inner.exemptions.iter().any(|e| {
            e.pattern.matches(ns) && e.processes.iter().any(|p| p == "*" || p == point.process())
        })
    }
}

/// Collects policy objects and settings, then compiles them.
#[derive(Default)]
pub struct PolicySetBuilder {
    templates: Vec<Template>,
    constraints: Vec<Constraint>,
    exemptions: Vec<Exemption>,
    settings: PolicySettings,
    inventory: Vec<KubeObject>,
}

impl PolicySetBuilder {
    /// Adds a ConstraintTemplate, a constraint or a Gatekeeper Config; returns `Ok(false)` for
    /// any other kind.
    pub fn add(&mut self, object: &KubeObject) -> Result<bool, PolicyError> {
        if Template::is_template(object) {
            let t = Template::from_object(object).map_err(|e| PolicyError::Template {
                error: e,
                location: prefix(&object.source),
            })?;
            self.templates.push(t);
            Ok(true)
        } else if Constraint::is_constraint(object) {
            let c = Constraint::from_object(object).map_err(|e| PolicyError::Constraint {
                error: e,
                location: prefix(&object.source),
            })?;
            self.constraints.push(c);
            Ok(true)
        } else if object.kind == "Config" && object.api_version.starts_with("config.gatekeeper.sh/")
        {
            self.add_config(object)?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn add_config(&mut self, object: &KubeObject) -> Result<(), PolicyError> {
        let err = |message: String| PolicyError::Config {
            name: object.name.clone(),
            message,
            location: prefix(&object.source),
        };
        let entries = match object.value.get("spec").and_then(|s| s.get("match")) {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::Array(entries)) => entries,
            Some(_) => return Err(err("`spec.match` must be a list".into())),
        };
        for (i, entry) in entries.iter().enumerate() {
            let list = |key: &str| -> Result<Vec<String>, PolicyError> {
                match entry.get(key) {
                    None | Some(Value::Null) => Ok(Vec::new()),
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|x| {
                            x.as_str().map(String::from).ok_or_else(|| {
                                err(format!("`spec.match[{i}].{key}` entries must be strings"))
                            })
                        })
                        .collect(),
                    Some(_) => Err(err(format!("`spec.match[{i}].{key}` must be a list"))),
                }
            };
            let processes = list("processes")?;
            for ns in list("excludedNamespaces")? {
                self.exemptions.push(Exemption {
                    pattern: Wildcard(ns),
                    processes: processes.clone(),
                });
            }
        }
        Ok(())
    }

    pub fn settings(&mut self, settings: PolicySettings) -> &mut Self {
        self.settings = settings;
        self
    }

    pub fn exempt_namespaces(&mut self, patterns: Vec<String>) -> &mut Self {
        self.settings.exempt_namespaces.extend(patterns);
        self
    }

    pub fn external_data(&mut self, provider: Arc<dyn ExternalDataProvider>) -> &mut Self {
        self.settings.providers.push(provider);
        self
    }

    pub fn eval_timeout(&mut self, limit: Duration) -> &mut Self {
        self.settings.eval_timeout = Some(limit);
        self
    }

    /// Objects that become `data.inventory` (and the Namespace lookup).
    pub fn inventory(&mut self, objects: &[KubeObject]) -> &mut Self {
        self.inventory.extend_from_slice(objects);
        self
    }

    /// Compiles every template and checks every constraint; all errors are returned together.
    pub fn build(self) -> Result<(PolicySet, Vec<PolicyWarning>), Vec<PolicyError>> {
        let PolicySetBuilder {
            templates,
            constraints,
            mut exemptions,
            settings,
            inventory,
        } = self;
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let providers = Arc::new(settings.providers.clone());
        let needs_inventory = templates.iter().any(|t| t.uses_inventory);
        let inventory_value =
            needs_inventory.then(|| regorus::Value::from(inventory_json(&inventory)));
        let mut namespaces = HashMap::new();
        for o in &inventory {
            if o.kind == "Namespace" && o.api_version == "v1" {
                namespaces.insert(o.name.clone(), o.value.clone());
            }
        }
        let mut kept_templates = Vec::new();
        let mut compiled = Vec::new();
        let mut kinds: HashMap<String, usize> = HashMap::new();
        for t in templates {
            if let Some(&other) = kinds.get(&t.kind) {
                let other_name: &Template = &kept_templates[other];
                errors.push(PolicyError::DuplicateKind {
                    name: t.name.clone(),
                    kind: t.kind.clone(),
                    other: other_name.name.clone(),
                    location: prefix(&t.source),
                });
                continue;
            }
            let inv = if t.uses_inventory {
                inventory_value.as_ref()
            } else {
                None
            };
            match rego::compile(&t, &providers, inv, settings.eval_timeout) {
                Ok(c) => {
                    kinds.insert(t.kind.clone(), kept_templates.len());
                    compiled.push(Mutex::new(c));
                    kept_templates.push(t);
                }
                Err(e) => errors.push(PolicyError::Template {
                    error: e,
                    location: prefix(&t.source),
                }),
            }
        }
        let mut compiled_constraints = Vec::new();
        let mut native_groups: Vec<PostureConfig> = Vec::new();
        let mut seen = HashMap::new();
        for mut c in constraints {
            let Some(&ti) = kinds.get(&c.kind) else {
                errors.push(PolicyError::UnknownKind {
                    kind: c.kind.clone(),
                    name: c.name.clone(),
                    location: prefix(&c.source),
                });
                continue;
            };
            if let Some(previous) = seen.insert((c.kind.clone(), c.name.clone()), c.source.clone())
            {
                warnings.push(PolicyWarning {
                    source: c.source.clone(),
                    message: format!(
                        "{} {} is defined more than once{}; the last definition wins",
                        c.kind,
                        c.name,
                        previous
                            .map(|p| format!(" (also at {}:{})", p.file, p.line))
                            .unwrap_or_default()
                    ),
                });
                compiled_constraints.retain(|x: &CompiledConstraint| {
                    !(x.constraint.kind == c.kind && x.constraint.name == c.name)
                });
            }
            let template = &kept_templates[ti];
            if let Some(schema_value) = &template.schema
                && !c.parameters.is_null()
            {
                let report = schema::check(
                    schema_value,
                    &mut c.parameters,
                    "spec.parameters",
                    template.preserve_unknown_fields,
                );
                for w in report.warnings {
                    warnings.push(PolicyWarning {
                        source: c.source.clone(),
                        message: format!("{} {}: {w}", c.kind, c.name),
                    });
                }
                if !report.errors.is_empty() {
                    errors.push(PolicyError::Constraint {
                        error: ConstraintError {
                            kind: c.kind.clone(),
                            name: c.name.clone(),
                            message: format!(
                                "parameters do not match ConstraintTemplate {}'s schema: {}",
                                template.name,
                                report.errors.join("; ")
                            ),
                        },
                        location: prefix(&c.source),
                    });
                    continue;
                }
            } else if !c.parameters.is_null() && !c.parameters.is_object() {
                errors.push(PolicyError::Constraint {
                    error: ConstraintError {
                        kind: c.kind.clone(),
                        name: c.name.clone(),
                        message: "`spec.parameters` must be a mapping".into(),
                    },
                    location: prefix(&c.source),
                });
                continue;
            }
            let annotation = |key: &str| {
                c.annotations
                    .get(key)
                    .or_else(|| template.annotations.get(key))
                    .cloned()
            };
            let check_id = annotation(CHECK_ID_ANNOTATION);
            let severity = match annotation(SEVERITY_ANNOTATION) {
                Some(s) => match s.parse::<Severity>() {
                    Ok(sev) => Some(sev),
                    Err(_) => {
                        warnings.push(PolicyWarning {
                            source: c.source.clone(),
                            message: format!(
                                "{} {}: annotation {SEVERITY_ANNOTATION}: {s:?} is not a severity; ignored",
                                c.kind, c.name
                            ),
                        });
                        None
                    }
                },
                None => None,
            };
            let native_check = if settings.rego_only {
                None
            } else {
                native::native_check(template, &c.parameters)
            };
            let native = native_check.map(|n| {
                let group = match native_groups
                    .iter()
                    .position(|g: &PostureConfig| g.parameters == n.config.parameters)
                {
                    Some(g) => g,
                    None => {
                        native_groups.push(n.config);
                        native_groups.len() - 1
                    }
                };
                (group, n.check_id)
            });
            let parameters = if c.parameters.is_null() {
                regorus::Value::new_object()
            } else {
                regorus::Value::from(c.parameters.clone())
            };
            compiled_constraints.push(CompiledConstraint {
                constraint: c,
                template: ti,
                native,
                parameters,
                check_id,
                severity,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        for ns in settings.exempt_namespaces {
            exemptions.push(Exemption {
                pattern: Wildcard(ns),
                processes: vec!["*".into()],
            });
        }
        let mut by_kind: HashMap<(String, String), Vec<usize>> = HashMap::new();
        let mut any_kind = Vec::new();
        for (i, c) in compiled_constraints.iter().enumerate() {
            let kinds = &c.constraint.matcher.kinds;
            let wildcard = kinds.is_empty()
                || kinds.iter().any(|k| {
                    k.kinds.is_empty()
                        || k.kinds.iter().any(|x| x == "*")
                        || k.api_groups.is_empty()
                        || k.api_groups.iter().any(|g| g == "*")
                });
            if wildcard {
                any_kind.push(i);
                continue;
            }
            for k in kinds {
                for g in &k.api_groups {
                    for kind in &k.kinds {
                        let list = by_kind.entry((g.clone(), kind.clone())).or_default();
                        if !list.contains(&i) {
                            list.push(i);
                        }
                    }
                }
            }
        }
        let public_constraints = compiled_constraints
            .iter()
            .map(|c| c.constraint.clone())
            .collect();
        Ok((
            PolicySet {
                inner: Arc::new(Inner {
                    templates: kept_templates,
                    compiled,
                    constraints: compiled_constraints,
                    public_constraints,
                    exemptions,
                    namespaces,
                    by_kind,
                    any_kind,
                    native_groups,
                    service_accounts: inventory
                        .iter()
                        .filter(|o| o.kind == "ServiceAccount" && o.api_version == "v1")
                        .cloned()
                        .collect(),
                }),
            },
            warnings,
        ))
    }
}

/// Objects by group/version, kind and name.
type ByGroupVersion = BTreeMap<String, BTreeMap<String, Map<String, Value>>>;

/// `data.inventory` as Gatekeeper lays it out: `cluster[groupVersion][kind][name]` and
/// `namespace[namespace][groupVersion][kind][name]`.
pub fn inventory_json(objects: &[KubeObject]) -> Value {
    let mut cluster: ByGroupVersion = BTreeMap::new();
    let mut namespaced: BTreeMap<String, ByGroupVersion> = BTreeMap::new();
    for o in objects {
        let gv = GroupVersionKind::from_api_version(&o.api_version, &o.kind).group_version();
        let slot = match &o.namespace {
            Some(ns) => namespaced
                .entry(ns.clone())
                .or_default()
                .entry(gv)
                .or_default()
                .entry(o.kind.clone())
                .or_default(),
            None => cluster
                .entry(gv)
                .or_default()
                .entry(o.kind.clone())
                .or_default(),
        };
        slot.insert(o.name.clone(), o.value.clone());
    }
    serde_json::json!({"cluster": cluster, "namespace": namespaced})
}

/// Reviews requests against a [`PolicySet`]. Holds its own engines: one per thread.
pub struct Evaluator {
    set: PolicySet,
    engines: Vec<CompiledTemplate>,
}

impl Evaluator {
    /// The set this evaluator was made from.
    pub fn policy_set(&self) -> &PolicySet {
        &self.set
    }

    /// Every violation of every matching constraint; the first constraint that fails to
    /// evaluate fails the review (as in Gatekeeper's webhook).
    pub fn review(
        &mut self,
        request: &ReviewRequest,
        point: EnforcementPoint,
    ) -> Result<Vec<Violation>, EvalError> {
        let outcome = self.review_all(request, point);
        match outcome.errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(outcome.violations),
        }
    }

    /// Every violation, and every constraint that failed to evaluate (audit keeps going).
    pub fn review_all(
        &mut self,
        request: &ReviewRequest,
        point: EnforcementPoint,
    ) -> ReviewOutcome {
        let mut outcome = ReviewOutcome::default();
        let set = self.set.clone();
        let inner = &set.inner;
        if inner.constraints.is_empty() || set.exempt(request, point) {
            return outcome;
        }
        let mut candidates: Vec<usize> = inner.any_kind.clone();
        if let Some(list) = inner
            .by_kind
            .get(&(request.kind.group.clone(), request.kind.kind.clone()))
        {
            candidates.extend(list);
        }
        if candidates.is_empty() {
            return outcome;
        }
        candidates.sort_unstable();
        candidates.dedup();
        // The Namespace for namespaceSelector: the caller's, else the inventory's.
        let namespace_object = request.namespace_object.as_ref().or_else(|| {
            request
                .namespace
                .as_deref()
                .and_then(|n| inner.namespaces.get(n))
        });
        let mut review_value: Option<regorus::Value> = None;
        let use_native = point != EnforcementPoint::Gator;
        let mut native_pending: Vec<(usize, EnforcementAction)> = Vec::new();
        for i in candidates {
            let c = &inner.constraints[i];
            let Some(action) = c.constraint.action_at(point) else {
                continue;
            };
            match c.constraint.matcher.matches_with(request, namespace_object) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    outcome.errors.push(EvalError {
                        constraint_kind: c.constraint.kind.clone(),
                        constraint_name: c.constraint.name.clone(),
                        message: e.to_string(),
                        timed_out: false,
                    });
                    continue;
                }
            }
            if use_native && c.native.is_some() {
                native_pending.push((i, action));
                continue;
            }
            let review = review_value
                .get_or_insert_with(|| regorus::Value::from(request.json.clone()))
                .clone();
            let mut input = regorus::Value::new_object();
            if let Ok(map) = input.as_object_mut() {
                map.insert(regorus::Value::from("review"), review);
                map.insert(regorus::Value::from("parameters"), c.parameters.clone());
            }
            let compiled = &mut self.engines[c.template];
            compiled.engine.set_input(input);
            let result = compiled.engine.eval_rule(compiled.violation_rule.clone());
            let value = match result {
                Ok(v) => v,
                Err(e) => {
                    let message = format!("{e:#}");
                    let timed_out = e.chain().any(|cause| {
                        matches!(
                            cause.downcast_ref::<regorus::LimitError>(),
                            Some(regorus::LimitError::TimeLimitExceeded { .. })
                        )
                    });
                    outcome.errors.push(EvalError {
                        constraint_kind: c.constraint.kind.clone(),
                        constraint_name: c.constraint.name.clone(),
                        message: format!(
                            "evaluating ConstraintTemplate {}: {message}",
                            inner.templates[c.template].name
                        ),
                        timed_out,
                    });
                    continue;
                }
            };
            let items: Vec<regorus::Value> = match &value {
                regorus::Value::Set(s) => s.iter().cloned().collect(),
                regorus::Value::Array(a) => a.iter().cloned().collect(),
                _ => Vec::new(),
            };
            for item in items {
                let json: Value = serde_json::to_value(&item).unwrap_or(Value::Null);
                let message = match json.get("msg") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                let details = json.get("details").cloned().unwrap_or(Value::Null);
                outcome.violations.push(Violation {
                    constraint_kind: c.constraint.kind.clone(),
                    constraint_name: c.constraint.name.clone(),
                    template: inner.templates[c.template].name.clone(),
                    message,
                    details,
                    action,
                    check_id: c.check_id.clone(),
                    severity: c.severity,
                });
            }
        }
        if !native_pending.is_empty() {
            self.review_native(request, &native_pending, &mut outcome);
        }
        outcome
    }

    /// Decides natively evaluated constraints: one posture run per parameter set.
    fn review_native(
        &self,
        request: &ReviewRequest,
        pending: &[(usize, EnforcementAction)],
        outcome: &mut ReviewOutcome,
    ) {
        let inner = &self.set.inner;
        // The bundle never denies deletions (removing a non-compliant workload must stay possible).
        if request.operation == Some(crate::review::Operation::Delete) {
            return;
        }
        let Some(mut value) = request.object().cloned() else {
            return;
        };
        // Objects created in a namespace often carry it only in the request.
        if let (Some(ns), Some(meta)) = (
            &request.namespace,
            value.get_mut("metadata").and_then(Value::as_object_mut),
        ) && meta
            .get("namespace")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            meta.insert("namespace".into(), Value::String(ns.clone()));
        }
        let Ok(object) = KubeObject::from_value(value, None) else {
            return;
        };
        let mut groups: Vec<usize> = pending
            .iter()
            .filter_map(|(i, _)| inner.constraints[*i].native.map(|(g, _)| g))
            .collect();
        groups.sort_unstable();
        groups.dedup();
        for g in groups {
            let findings = native::run(&object, &inner.native_groups[g], &inner.service_accounts);
            for (i, action) in pending {
                let c = &inner.constraints[*i];
                let Some((group, check_id)) = c.native else {
                    continue;
                };
                if group != g {
                    continue;
                }
                for f in findings.iter().filter(|f| f.check_id == check_id) {
                    outcome.violations.push(Violation {
                        constraint_kind: c.constraint.kind.clone(),
                        constraint_name: c.constraint.name.clone(),
                        template: inner.templates[c.template].name.clone(),
                        message: f.message.clone(),
                        details: serde_json::json!({
                            "checkId": check_id,
                            "container": f.container,
                            "field": f.field,
                        }),
                        action: *action,
                        check_id: c.check_id.clone(),
                        severity: c.severity,
                    });
                }
            }
        }
    }
}
