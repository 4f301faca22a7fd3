//! How workloads are reached: label selectors, and an index from each workload to the ways it is
//! exposed outside the cluster (LoadBalancer, NodePort and external-IP Services, Ingresses, host
//! networking and host ports).
//!
//! The index is built once per inventory. Services are bucketed by namespace and by one of their
//! selector pairs, Ingress backends by namespace and Service name, so building it is linear in the
//! number of objects rather than quadratic.

use crate::pod::PodTemplate;
use palisade_kube::{Inventory, KubeObject};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Anything labels can be read from.
pub trait Labels {
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for Map<String, Value> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }
}

impl Labels for BTreeMap<&str, &str> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).copied()
    }
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl Labels for HashMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// No labels at all (an object without `metadata.labels`).
pub struct NoLabels;

impl Labels for NoLabels {
    fn label(&self, _key: &str) -> Option<&str> {
        None
    }
}

/// Why a selector cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("selector is not a mapping")]
    NotAMapping,
    #[error("matchLabels value for `{0}` is not a string")]
    BadMatchLabel(String),
    #[error("matchExpressions entry {0} is malformed")]
    BadExpression(usize),
    #[error("unknown matchExpressions operator `{0}`")]
    UnknownOperator(String),
}

/// A `matchExpressions` operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: SelectorOperator,
    pub values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: &dyn Labels) -> bool {
        let value = labels.label(&self.key);
        match self.operator {
            SelectorOperator::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            // A missing key satisfies NotIn, as in the API server.
            SelectorOperator::NotIn => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            SelectorOperator::Exists => value.is_some(),
            SelectorOperator::DoesNotExist => value.is_none(),
        }
    }
}

/// A parsed selector: `matchLabels` pairs and `matchExpressions` requirements, all of which must
/// hold. The empty selector matches everything (as `podSelector: {}` does).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    pub match_labels: Vec<(String, String)>,
    pub requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses a `metav1.LabelSelector` (`{matchLabels: {...}, matchExpressions: [...]}`).
    pub fn from_value(value: &Value) -> Result<LabelSelector, SelectorError> {
        let map = value.as_object().ok_or(SelectorError::NotAMapping)?;
        let mut selector = LabelSelector::default();
        if let Some(labels) = map.get("matchLabels").filter(|v| !v.is_null()) {
            selector.match_labels = parse_pairs(labels)?;
        }
        if let Some(exprs) = map.get("matchExpressions").filter(|v| !v.is_null()) {
            let exprs = exprs.as_array().ok_or(SelectorError::BadExpression(0))?;
            for (i, e) in exprs.iter().enumerate() {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or(SelectorError::BadExpression(i))?;
                let op = e
                    .get("operator")
                    .and_then(Value::as_str)
                    .ok_or(SelectorError::BadExpression(i))?;
                let operator = match op {
                    "In" => SelectorOperator::In,
                    "NotIn" => SelectorOperator::NotIn,
                    "Exists" => SelectorOperator::Exists,
                    "DoesNotExist" => SelectorOperator::DoesNotExist,
                    other => return Err(SelectorError::UnknownOperator(other.to_string())),
                };
                let values = match e.get("values") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(vs)) => vs
                        .iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                        .ok_or(SelectorError::BadExpression(i))?,
                    Some(_) => return Err(SelectorError::BadExpression(i)),
                };
                selector.requirements.push(Requirement {
                    key: key.to_string(),
                    operator,
                    values,
                });
            }
        }
        Ok(selector)
    }

    /// Parses the plain map selector of Services and ReplicationControllers (`{app: web}`).
    pub fn from_map(value: &Value) -> Result<LabelSelector, SelectorError> {
        Ok(LabelSelector {
            match_labels: parse_pairs(value)?,
            requirements: Vec::new(),
        })
    }

    /// True when the selector has no terms (and so selects everything).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.requirements.is_empty()
    }

    /// Whether a set of labels satisfies every term.
    pub fn matches(&self, labels: &dyn Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.label(k) == Some(v.as_str()))
            && self.requirements.iter().all(|r| r.matches(labels))
    }
}

fn parse_pairs(value: &Value) -> Result<Vec<(String, String)>, SelectorError> {
    let map = value.as_object().ok_or(SelectorError::NotAMapping)?;
    map.iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) => Ok((k.clone(), s.to_string())),
            None => Err(SelectorError::BadMatchLabel(k.clone())),
        })
        .collect()
}

/// Whether a plain map selector (`spec.selector` of a Service) matches labels, without parsing it
/// first. An empty or missing map selects nothing, as for Services (their endpoints are then managed
/// by hand).
pub fn map_selector_matches(selector: &Map<String, Value>, labels: &dyn Labels) -> bool {
    !selector.is_empty()
        && selector
            .iter()
            .all(|(k, v)| v.as_str().is_some_and(|v| labels.label(k) == Some(v)))
}

/// How a workload is reached from outside the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum ExposureVia {
    LoadBalancer,
    NodePort,
    Ingress,
    HostNetwork,
    HostPort,
    ExternalIPs,
}

impl ExposureVia {
    pub fn as_str(self) -> &'static str {
        match self {
            ExposureVia::LoadBalancer => "LoadBalancer",
            ExposureVia::NodePort => "NodePort",
            ExposureVia::Ingress => "Ingress",
            ExposureVia::HostNetwork => "HostNetwork",
            ExposureVia::HostPort => "HostPort",
            ExposureVia::ExternalIPs => "ExternalIPs",
        }
    }

    /// True for exposures through a Service of type LoadBalancer or NodePort or with external IPs.
    pub fn is_service(self) -> bool {
        matches!(
            self,
            ExposureVia::LoadBalancer | ExposureVia::NodePort | ExposureVia::ExternalIPs
        )
    }
}

/// One way a workload is reachable from outside the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exposure {
    pub via: ExposureVia,
    /// `key()` of the Service, Ingress or (host network / host port) workload that exposes it.
    pub object: String,
    /// Ports reachable from outside: the Service `port`s of a LoadBalancer or external-IP Service,
    /// the `nodePort`s of a NodePort Service (its `port`s when node ports are not set yet), 80 and
    /// 443 (when it has TLS) for an Ingress, the `hostPort`s for host ports, the declared
    /// `containerPort`s for host networking (empty: not declared).
    pub ports: Vec<u16>,
    /// Client ranges allowed (`loadBalancerSourceRanges`, or an Ingress allow-list annotation);
    /// empty means any address.
    pub source_ranges: Vec<String>,
    /// For an Ingress: whether TLS covers every host it serves.
    pub tls: Option<bool>,
    /// Host names (Ingress rules); empty otherwise or when the Ingress serves any host.
    pub hosts: Vec<String>,
    /// `key()` of the Service between an Ingress and the workload (None for other exposures).
    pub service: Option<String>,
    /// An internal load balancer (cloud annotations of AKS, EKS, GKE and others): reachable from
    /// the private network, not from the internet.
    pub internal: bool,
}

/// Ingress annotations carrying a client allow-list (comma-separated CIDRs).
const INGRESS_SOURCE_RANGE_ANNOTATIONS: &[&str] = &[
    "nginx.ingress.kubernetes.io/whitelist-source-range",
    "nginx.ingress.kubernetes.io/allowlist-source-range",
    "haproxy.org/allow-list",
    "haproxy.org/whitelist",
    "traefik.ingress.kubernetes.io/whitelist-source-range",
];

/// Service annotation equivalent to `spec.loadBalancerSourceRanges`.
const SERVICE_SOURCE_RANGE_ANNOTATION: &str =
    "service.beta.kubernetes.io/load-balancer-source-ranges";

/// From each workload to the ways it is exposed.
#[derive(Debug, Default)]
pub struct ExposureIndex {
    /// Exposure lists, one per workload that has any.
    lists: Vec<Vec<Exposure>>,
    /// `key()` of a workload → index into `lists`.
    by_key: HashMap<String, usize>,
}

type NsName<'a> = (&'a str, &'a str);

impl ExposureIndex {
    /// Builds the index of an inventory.
    pub fn build(inventory: &Inventory) -> ExposureIndex {
        let objects = &inventory.objects;
        // One pass to sort objects out: the inventory is large and its objects are scattered in
        // memory, so every extra pass costs cache misses.
        let mut ingresses: Vec<&KubeObject> = Vec::new();
        let mut service_objects: Vec<&KubeObject> = Vec::new();
        let mut workloads: Vec<PodTemplate<'_>> = Vec::new();
        for o in objects {
            match o.kind.as_str() {
                "Ingress" => ingresses.push(o),
                "Service" => service_objects.push(o),
                _ => {
                    if let Some(t) = PodTemplate::of(o) {
                        workloads.push(t);
                    }
                }
            }
        }

        // Ingress exposures per backend Service (namespace, name).
        let mut ingress_by_service: HashMap<NsName<'_>, Vec<Exposure>> = HashMap::new();
        for &o in &ingresses {
            let ns = ns_of(o);
            let Some(spec) = o.value.get("spec") else {
                continue;
            };
            let exposure = ingress_exposure_of(o, spec);
            let mut backends: Vec<&str> = Vec::new();
            for default in ["defaultBackend", "backend"] {
                if let Some(name) = spec.get(default).and_then(backend_service) {
                    backends.push(name);
                }
            }
            for rule in array(spec.get("rules")) {
                for path in array(rule.get("http").and_then(|h| h.get("paths"))) {
                    if let Some(name) = path.get("backend").and_then(backend_service) {
                        backends.push(name);
                    }
                }
            }
            backends.sort_unstable();
            backends.dedup();
            for name in backends {
                let mut e = exposure.clone();
                e.service = Some(service_key(o.namespace.as_deref(), name));
                ingress_by_service.entry((ns, name)).or_default().push(e);
            }
        }

        // Services, bucketed by (namespace, one selector pair) with their exposures.
        struct Svc<'a> {
            selector: &'a Map<String, Value>,
            exposures: Vec<Exposure>,
        }
        // Each Service goes in the bucket of its rarest selector pair, so a label shared by
        // every Service of a namespace (`team: x`) does not make the lookup quadratic.
        let mut pair_count: HashMap<(&str, &str, &str), u32> = HashMap::new();
        for &o in &service_objects {
            let ns = ns_of(o);
            for (k, v) in service_selector(o).into_iter().flatten() {
                if let Some(v) = v.as_str() {
                    *pair_count.entry((ns, k.as_str(), v)).or_default() += 1;
                }
            }
        }
        let mut services: Vec<Svc<'_>> = Vec::new();
        let mut svc_bucket: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
        for &o in &service_objects {
            let Some(spec) = o.value.get("spec") else {
                continue;
            };
            let Some(selector) = service_selector(o) else {
                continue;
            };
            let ns = ns_of(o);
            let Some((k, v)) = selector
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .min_by_key(|&(k, v)| pair_count.get(&(ns, k, v)).copied().unwrap_or(0))
            else {
                continue;
            };
            let mut exposures = service_exposures(o, spec);
            if let Some(ing) = ingress_by_service.get(&(ns, o.name.as_str())) {
                exposures.extend(ing.iter().cloned());
            }
            if exposures.is_empty() {
                continue;
            }
            svc_bucket
                .entry((ns, k, v))
                .or_default()
                .push(services.len());
            services.push(Svc {
                selector,
                exposures,
            });
        }

        let mut index = ExposureIndex::default();
        let mut owned_pods: Vec<&KubeObject> = Vec::new();
        let mut matched: Vec<usize> = Vec::new();
        for template in &workloads {
            let o = template.object;
            if template.is_owned_pod() {
                owned_pods.push(o);
            }
            let mut list = Vec::new();
            if let Some(labels) = template
                .metadata
                .and_then(|m| m.get("labels"))
                .and_then(Value::as_object)
                && !services.is_empty()
            {
                let ns = ns_of(o);
                matched.clear();
                for (k, v) in labels {
                    let Some(v) = v.as_str() else { continue };
                    if let Some(candidates) = svc_bucket.get(&(ns, k.as_str(), v)) {
                        matched.extend(
                            candidates
                                .iter()
                                .copied()
                                .filter(|&i| map_selector_matches(services[i].selector, labels)),
                        );
                    }
                }
                matched.sort_unstable();
                matched.dedup();
                for &i in &matched {
                    list.extend(services[i].exposures.iter().cloned());
                }
            }
            host_exposures(template, &mut list);
            if !list.is_empty() {
                index.by_key.insert(o.key(), index.lists.len());
                index.lists.push(list);
            }
        }

        // Controller-owned Pods take their top-most owner's exposures.
        if !owned_pods.is_empty() {
            let mut by_identity: HashMap<(&str, &str, &str), &KubeObject> = HashMap::new();
            for o in objects {
                if o.value
                    .get("metadata")
                    .and_then(|m| m.get("ownerReferences"))
                    .is_some()
                    || PodTemplate::of(o).is_some()
                {
                    by_identity.insert((o.kind.as_str(), ns_of(o), o.name.as_str()), o);
                }
            }
            for pod in owned_pods {
                let mut current = pod;
                let mut owner = None;
                for _ in 0..4 {
                    let Some((kind, name)) = controller_of(current) else {
                        break;
                    };
                    match by_identity.get(&(kind, ns_of(current), name)) {
                        Some(next) => {
                            current = next;
                            owner = Some(*next);
                        }
                        None => break,
                    }
                }
                let Some(owner) = owner else { continue };
                let pod_key = pod.key();
                match index.by_key.get(&owner.key()).copied() {
                    Some(i) => {
                        index.by_key.insert(pod_key, i);
                    }
                    None => {
                        index.by_key.remove(&pod_key);
                    }
                }
            }
        }
        index
    }

    /// The exposures of a workload (Pod, Deployment, ...); empty when it is not reachable from
    /// outside the cluster.
    pub fn exposures_of(&self, workload: &KubeObject) -> &[Exposure] {
        self.exposures_of_key(&workload.key())
    }

    /// The exposures of a workload by its `key()`.
    pub fn exposures_of_key(&self, key: &str) -> &[Exposure] {
        self.by_key
            .get(key)
            .and_then(|&i| self.lists.get(i))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Every exposed workload key with its exposures.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Exposure])> {
        self.by_key
            .iter()
            .filter_map(|(k, &i)| Some((k.as_str(), self.lists.get(i)?.as_slice())))
    }

    /// Number of exposed workloads.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

fn service_selector(o: &KubeObject) -> Option<&Map<String, Value>> {
    o.value
        .get("spec")?
        .get("selector")?
        .as_object()
        .filter(|m| !m.is_empty())
}

fn ns_of(o: &KubeObject) -> &str {
    o.namespace.as_deref().unwrap_or("")
}

fn service_key(ns: Option<&str>, name: &str) -> String {
    match ns {
        Some(ns) => format!("Service/{ns}/{name}"),
        None => format!("Service/{name}"),
    }
}

fn array(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_array).into_iter().flatten()
}

/// The Service a backend points to: `service.name` (networking.k8s.io/v1) or `serviceName`
/// (v1beta1 and extensions/v1beta1).
fn backend_service(backend: &Value) -> Option<&str> {
    backend
        .get("service")
        .and_then(|s| s.get("name"))
        .or_else(|| backend.get("serviceName"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn controller_of(o: &KubeObject) -> Option<(&str, &str)> {
    array(
        o.value
            .get("metadata")
            .and_then(|m| m.get("ownerReferences")),
    )
    .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
    .and_then(|r| Some((r.get("kind")?.as_str()?, r.get("name")?.as_str()?)))
}

fn port_u16(v: Option<&Value>) -> Option<u16> {
    v.and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
}

fn split_ranges(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Whether a CIDR (or a single address) is broad: a prefix of at most /8 for IPv4 or /16 for
/// IPv6 (`0.0.0.0/0`, `::/0`, `10.0.0.0/8`), or the word `all`. Unparsable text counts as broad.
pub fn is_broad_range(range: &str) -> bool {
    let range = range.trim();
    if range.eq_ignore_ascii_case("all") {
        return true;
    }
    let (addr, prefix) = match range.split_once('/') {
        Some((a, p)) => (a, p.parse::<u8>().ok()),
        None => (range, None),
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => prefix.is_some_and(|p| p <= 8) || range.ends_with("/0"),
        Ok(std::net::IpAddr::V6(_)) => prefix.is_some_and(|p| p <= 16),
        Err(_) => true,
    }
}

/// Whether TLS covers a host: exact match, or a `*.example.com` wildcard covering one label.
pub fn tls_host_covers(pattern: &str, host: &str) -> bool {
    if pattern.eq_ignore_ascii_case(host) {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest.eq_ignore_ascii_case(suffix)),
        None => false,
    }
}

/// The exposure an Ingress creates (without the Service it leads to); `None` for other kinds or
/// an Ingress without a spec.
pub fn ingress_exposure(o: &KubeObject) -> Option<Exposure> {
    if o.kind != "Ingress" {
        return None;
    }
    Some(ingress_exposure_of(o, o.value.get("spec")?))
}

fn ingress_exposure_of(o: &KubeObject, spec: &Value) -> Exposure {
    let mut hosts: Vec<String> = array(spec.get("rules"))
        .filter_map(|r| r.get("host").and_then(Value::as_str))
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    let tls_entries: Vec<&Value> = array(spec.get("tls")).collect();
    // A rule without a host serves any host name: only a TLS entry without hosts (the default
    // certificate) covers it.
    let has_hostless_rule = array(spec.get("rules")).any(|r| {
        r.get("host")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    }) || spec.get("defaultBackend").is_some()
        || spec.get("backend").is_some();
    let tls = if tls_entries.is_empty() {
        false
    } else {
        let catch_all = tls_entries
            .iter()
            .any(|t| array(t.get("hosts")).next().is_none());
        let tls_hosts: Vec<&str> = tls_entries
            .iter()
            .flat_map(|t| array(t.get("hosts")))
            .filter_map(Value::as_str)
            .collect();
        (catch_all || !has_hostless_rule)
            && hosts
                .iter()
                .all(|h| catch_all || tls_hosts.iter().any(|p| tls_host_covers(p, h)))
    };
    let source_ranges = INGRESS_SOURCE_RANGE_ANNOTATIONS
        .iter()
        .find_map(|a| o.annotation(a))
        .map(|s| split_ranges(s).collect())
        .unwrap_or_default();
    let mut ports = vec![80];
    if !tls_entries.is_empty() {
        ports.push(443);
    }
    Exposure {
        via: ExposureVia::Ingress,
        internal: false,
        object: o.key(),
        ports,
        source_ranges,
        tls: Some(tls),
        hosts,
        service: None,
    }
}

/// Exposures a Service creates on its own (not through an Ingress).
/// Annotations that make a cloud load balancer internal (`(key, value)`; `None` = any value).
const INTERNAL_LB_ANNOTATIONS: &[(&str, Option<&str>)] = &[
    (
        "service.beta.kubernetes.io/azure-load-balancer-internal",
        Some("true"),
    ),
    (
        "service.beta.kubernetes.io/aws-load-balancer-internal",
        None,
    ),
    (
        "service.beta.kubernetes.io/aws-load-balancer-scheme",
        Some("internal"),
    ),
    ("networking.gke.io/load-balancer-type", Some("internal")),
    ("cloud.google.com/load-balancer-type", Some("internal")),
    (
        "service.beta.kubernetes.io/oci-load-balancer-internal",
        Some("true"),
    ),
    (
        "service.beta.kubernetes.io/openstack-internal-load-balancer",
        Some("true"),
    ),
    (
        "service.kubernetes.io/ibm-load-balancer-cloud-provider-ip-type",
        Some("private"),
    ),
];

/// Whether a LoadBalancer Service asks its cloud for an internal (private) load balancer.
pub fn is_internal_load_balancer(o: &KubeObject) -> bool {
    INTERNAL_LB_ANNOTATIONS.iter().any(|(key, want)| {
        o.annotation(key).is_some_and(|v| match want {
            Some(w) => v.trim().eq_ignore_ascii_case(w),
            // The AWS legacy annotation is "internal" when set to anything but "false".
            None => !v.trim().eq_ignore_ascii_case("false"),
        })
    })
}

fn service_exposures(o: &KubeObject, spec: &Value) -> Vec<Exposure> {
    let mut out = Vec::new();
    let kind = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    let ports: Vec<&Value> = array(spec.get("ports")).collect();
    let service_ports = || -> Vec<u16> {
        ports
            .iter()
            .filter_map(|p| port_u16(p.get("port")))
            .collect()
    };
    let source_ranges = || -> Vec<String> {
        let mut r: Vec<String> = array(spec.get("loadBalancerSourceRanges"))
            .filter_map(Value::as_str)
            .flat_map(split_ranges)
            .collect();
        if r.is_empty()
            && let Some(a) = o.annotation(SERVICE_SOURCE_RANGE_ANNOTATION)
        {
            r.extend(split_ranges(a));
        }
        r
    };
    match kind {
        "LoadBalancer" => out.push(Exposure {
            via: ExposureVia::LoadBalancer,
            internal: is_internal_load_balancer(o),
            object: o.key(),
            ports: service_ports(),
            source_ranges: source_ranges(),
            tls: None,
            hosts: Vec::new(),
            service: None,
        }),
        "NodePort" => {
            let node_ports: Vec<u16> = ports
                .iter()
                .filter_map(|p| port_u16(p.get("nodePort")))
                .collect();
            out.push(Exposure {
                via: ExposureVia::NodePort,
                internal: false,
                object: o.key(),
                ports: if node_ports.is_empty() {
                    service_ports()
                } else {
                    node_ports
                },
                source_ranges: Vec::new(),
                tls: None,
                hosts: Vec::new(),
                service: None,
            })
        }
        _ => {}
    }
    if kind != "ExternalName" && array(spec.get("externalIPs")).next().is_some() {
        out.push(Exposure {
            via: ExposureVia::ExternalIPs,
            internal: false,
            object: o.key(),
            ports: service_ports(),
            source_ranges: Vec::new(),
            tls: None,
            hosts: array(spec.get("externalIPs"))
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            service: None,
        });
    }
    out
}

fn host_exposures(template: &PodTemplate<'_>, out: &mut Vec<Exposure>) {
    let host_network = template.field("hostNetwork").and_then(Value::as_bool) == Some(true);
    let mut host_ports = Vec::new();
    let mut container_ports = Vec::new();
    for c in template.containers() {
        for p in array(c.spec.get("ports")) {
            if let Some(hp) = port_u16(p.get("hostPort")).filter(|&p| p != 0) {
                host_ports.push(hp);
            }
            if let Some(cp) = port_u16(p.get("containerPort")) {
                container_ports.push(cp);
            }
        }
    }
    if host_network {
        container_ports.sort_unstable();
        container_ports.dedup();
        out.push(Exposure {
            via: ExposureVia::HostNetwork,
            internal: false,
            object: template.object.key(),
            ports: container_ports,
            source_ranges: Vec::new(),
            tls: None,
            hosts: Vec::new(),
            service: None,
        });
    }
    if !host_ports.is_empty() {
        host_ports.sort_unstable();
        host_ports.dedup();
        out.push(Exposure {
            via: ExposureVia::HostPort,
            internal: false,
            object: template.object.key(),
            ports: host_ports,
            source_ranges: Vec::new(),
            tls: None,
            hosts: Vec::new(),
            service: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Instant;

    fn obj(v: Value) -> KubeObject {
        KubeObject::from_value(v, None).unwrap()
    }

    fn inv(objects: Vec<Value>) -> Inventory {
        Inventory {
            objects: objects.into_iter().map(obj).collect(),
            ..Default::default()
        }
    }

    fn deployment(ns: &str, name: &str, labels: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": labels},
              "template": {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                  "ports": [{"containerPort": 8080}]}]}}}})
    }

    fn service(ns: &str, name: &str, ty: &str, selector: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"type": ty, "selector": selector,
              "ports": [{"port": 443, "targetPort": 8080, "nodePort": 31443}]}})
    }

    #[test]
    fn label_selector_terms() {
        let sel = LabelSelector::from_value(&json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "edge"]},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "team", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"}
        ]}))
        .unwrap();
        let ok: BTreeMap<&str, &str> = [("app", "web"), ("tier", "edge"), ("team", "a")].into();
        assert!(sel.matches(&ok));
        let mut dev = ok.clone();
        dev.insert("env", "dev");
        assert!(!sel.matches(&dev));
        let mut legacy = ok.clone();
        legacy.insert("legacy", "");
        assert!(!sel.matches(&legacy));
        let mut other_tier = ok.clone();
        other_tier.insert("tier", "back");
        assert!(!sel.matches(&other_tier));
        let mut no_team = ok.clone();
        no_team.remove("team");
        assert!(!sel.matches(&no_team));
        let mut wrong_app = ok.clone();
        wrong_app.insert("app", "api");
        assert!(!sel.matches(&wrong_app));

        let empty = LabelSelector::from_value(&json!({})).unwrap();
        assert!(empty.is_empty() && empty.matches(&NoLabels));
        assert_eq!(
            LabelSelector::from_value(
                &json!({"matchExpressions": [{"key": "a", "operator": "Gt"}]})
            ),
            Err(SelectorError::UnknownOperator("Gt".into()))
        );
        assert_eq!(
            LabelSelector::from_value(&json!({"matchLabels": {"a": 1}})),
            Err(SelectorError::BadMatchLabel("a".into()))
        );
        let plain = LabelSelector::from_map(&json!({"app": "web"})).unwrap();
        assert!(plain.matches(&ok) && !plain.matches(&NoLabels));
    }

    #[test]
    fn map_selector_semantics() {
        let labels = json!({"app": "web", "tier": "front"});
        let labels = labels.as_object().unwrap();
        let sel = json!({"app": "web"});
        assert!(map_selector_matches(sel.as_object().unwrap(), labels));
        let sel = json!({"app": "web", "tier": "back"});
        assert!(!map_selector_matches(sel.as_object().unwrap(), labels));
        // An empty Service selector selects nothing.
        assert!(!map_selector_matches(&Map::new(), labels));
    }

    #[test]
    fn services_and_ingresses_reach_workloads() {
        let inventory = inv(vec![
            deployment("prod", "web", json!({"app": "web", "tier": "front"})),
            deployment("prod", "db", json!({"app": "db"})),
            deployment("stage", "web", json!({"app": "web"})),
            service("prod", "web-lb", "LoadBalancer", json!({"app": "web"})),
            service(
                "prod",
                "web-np",
                "NodePort",
                json!({"app": "web", "tier": "front"}),
            ),
            service("prod", "web-internal", "ClusterIP", json!({"app": "web"})),
            service("prod", "db", "ClusterIP", json!({"app": "db"})),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "web", "namespace": "prod",
                  "annotations": {"nginx.ingress.kubernetes.io/whitelist-source-range": "10.0.0.0/8, 192.168.0.0/16"}},
                "spec": {"tls": [{"hosts": ["*.example.com"]}],
                  "rules": [{"host": "shop.example.com", "http": {"paths": [{"path": "/",
                    "pathType": "Prefix", "backend": {"service": {"name": "web-internal", "port": {"number": 443}}}}]}}]}}),
        ]);
        let index = ExposureIndex::build(&inventory);
        let web = inventory.find("Deployment", Some("prod"), "web").unwrap();
        let mut vias: Vec<_> = index.exposures_of(web).iter().map(|e| e.via).collect();
        vias.sort();
        assert_eq!(
            vias,
            vec![
                ExposureVia::LoadBalancer,
                ExposureVia::NodePort,
                ExposureVia::Ingress
            ]
        );
        let np = index
            .exposures_of(web)
            .iter()
            .find(|e| e.via == ExposureVia::NodePort)
            .unwrap();
        assert_eq!(np.ports, vec![31443]);
        assert_eq!(np.object, "Service/prod/web-np");
        let ing = index
            .exposures_of(web)
            .iter()
            .find(|e| e.via == ExposureVia::Ingress)
            .unwrap();
        assert_eq!(ing.tls, Some(true));
        assert_eq!(ing.hosts, vec!["shop.example.com"]);
        assert_eq!(ing.source_ranges, vec!["10.0.0.0/8", "192.168.0.0/16"]);
        assert_eq!(ing.service.as_deref(), Some("Service/prod/web-internal"));
        // Same labels, other namespace: not selected.
        let stage = inventory.find("Deployment", Some("stage"), "web").unwrap();
        assert!(index.exposures_of(stage).is_empty());
        // ClusterIP only: not exposed.
        let db = inventory.find("Deployment", Some("prod"), "db").unwrap();
        assert!(index.exposures_of(db).is_empty());
    }

    #[test]
    fn legacy_ingress_default_backend_and_http_only() {
        let inventory = inv(vec![
            deployment("default", "api", json!({"app": "api"})),
            service("default", "api", "ClusterIP", json!({"app": "api"})),
            json!({"apiVersion": "extensions/v1beta1", "kind": "Ingress",
                "metadata": {"name": "api", "namespace": "default"},
                "spec": {"backend": {"serviceName": "api", "servicePort": 80},
                  "tls": [{"hosts": ["api.example.com"]}],
                  "rules": [{"host": "api.example.com"}, {"host": "other.example.com"}]}}),
        ]);
        let index = ExposureIndex::build(&inventory);
        let api = inventory
            .find("Deployment", Some("default"), "api")
            .unwrap();
        let e = index.exposures_of(api);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].via, ExposureVia::Ingress);
        // Neither the default backend (any host) nor other.example.com is covered by TLS.
        assert_eq!(e[0].tls, Some(false));
        assert_eq!(e[0].ports, vec![80, 443]);
    }

    #[test]
    fn internal_load_balancers_are_recognised() {
        let mut lb = obj(service(
            "prod",
            "api",
            "LoadBalancer",
            json!({"app": "api"}),
        ));
        assert!(!is_internal_load_balancer(&lb));
        lb.value["metadata"]["annotations"] =
            json!({"service.beta.kubernetes.io/azure-load-balancer-internal": "true"});
        assert!(is_internal_load_balancer(&lb));
        lb.value["metadata"]["annotations"] =
            json!({"networking.gke.io/load-balancer-type": "Internal"});
        assert!(is_internal_load_balancer(&lb));
        lb.value["metadata"]["annotations"] =
            json!({"service.beta.kubernetes.io/aws-load-balancer-internal": "false"});
        assert!(!is_internal_load_balancer(&lb));
    }

    #[test]
    fn load_balancer_source_ranges_and_external_ips() {
        let mut lb = service("prod", "pg", "LoadBalancer", json!({"app": "pg"}));
        lb["spec"]["loadBalancerSourceRanges"] = json!(["203.0.113.0/24"]);
        let mut ext = service("prod", "pg-ext", "ClusterIP", json!({"app": "pg"}));
        ext["spec"]["externalIPs"] = json!(["198.51.100.7"]);
        let inventory = inv(vec![
            deployment("prod", "pg", json!({"app": "pg"})),
            lb,
            ext,
        ]);
        let index = ExposureIndex::build(&inventory);
        let pg = &inventory.objects[0];
        let e = index.exposures_of(pg);
        assert_eq!(e.len(), 2);
        let lb = e
            .iter()
            .find(|e| e.via == ExposureVia::LoadBalancer)
            .unwrap();
        assert_eq!(lb.source_ranges, vec!["203.0.113.0/24"]);
        assert_eq!(lb.ports, vec![443]);
        let ext = e
            .iter()
            .find(|e| e.via == ExposureVia::ExternalIPs)
            .unwrap();
        assert_eq!(ext.hosts, vec!["198.51.100.7"]);
    }

    #[test]
    fn host_network_and_host_ports() {
        let inventory = inv(vec![json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "mon"},
            "spec": {"template": {"metadata": {"labels": {"app": "agent"}},
              "spec": {"hostNetwork": true, "containers": [{"name": "a", "image": "agent:1",
                "ports": [{"containerPort": 9100, "hostPort": 9100}]}]}}}})]);
        let index = ExposureIndex::build(&inventory);
        let e = index.exposures_of(&inventory.objects[0]);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].via, ExposureVia::HostNetwork);
        assert_eq!(e[0].object, "DaemonSet/mon/agent");
        assert_eq!(e[1].via, ExposureVia::HostPort);
        assert_eq!(e[1].ports, vec![9100]);
    }

    #[test]
    fn owned_pods_share_their_owners_exposures() {
        let inventory = inv(vec![
            deployment("prod", "web", json!({"app": "web"})),
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": "web-5d8f", "namespace": "prod",
                  "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "controller": true}]},
                "spec": {"template": {"metadata": {"labels": {"app": "web"}},
                  "spec": {"hostNetwork": true, "containers": [{"name": "app", "image": "nginx"}]}}}}),
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web-5d8f-abc", "namespace": "prod", "labels": {"app": "web"},
                  "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f", "controller": true}]},
                "spec": {"hostNetwork": true, "containers": [{"name": "app", "image": "nginx"}]}}),
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "orphan", "namespace": "prod", "labels": {"app": "web"},
                  "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone", "controller": true}]},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]}}),
            service("prod", "web", "LoadBalancer", json!({"app": "web"})),
        ]);
        let index = ExposureIndex::build(&inventory);
        let deploy = &inventory.objects[0];
        let pod = &inventory.objects[2];
        assert_eq!(index.exposures_of(pod), index.exposures_of(deploy));
        assert_eq!(index.exposures_of(pod).len(), 1);
        // Owner not in the inventory: the pod's own labels decide.
        let orphan = &inventory.objects[3];
        assert_eq!(index.exposures_of(orphan).len(), 1);
        assert_eq!(index.exposures_of(orphan)[0].via, ExposureVia::LoadBalancer);
    }

    #[test]
    fn broad_ranges() {
        for broad in [
            "0.0.0.0/0",
            "::/0",
            "all",
            "10.0.0.0/8",
            "2001::/16",
            "garbage",
        ] {
            assert!(is_broad_range(broad), "{broad}");
        }
        for narrow in ["203.0.113.0/24", "10.1.2.3", "10.0.0.0/9", "2001:db8::/32"] {
            assert!(!is_broad_range(narrow), "{narrow}");
        }
    }

    #[test]
    fn tls_wildcards() {
        assert!(tls_host_covers("*.example.com", "a.example.com"));
        assert!(!tls_host_covers("*.example.com", "a.b.example.com"));
        assert!(!tls_host_covers("*.example.com", "example.com"));
        assert!(tls_host_covers("Example.com", "example.com"));
    }

    #[test]
    fn builds_twenty_thousand_objects_quickly() {
        let mut objects = Vec::new();
        for ns in 0..20 {
            let ns = format!("ns{ns}");
            for i in 0..500 {
                let app = format!("app{i}");
                objects.push(deployment(&ns, &app, json!({"app": app, "team": "t"})));
                let ty = if i % 10 == 0 {
                    "LoadBalancer"
                } else {
                    "ClusterIP"
                };
                objects.push(service(&ns, &app, ty, json!({"team": "t", "app": app})));
            }
        }
        let inventory = inv(objects);
        assert_eq!(inventory.objects.len(), 20_000);
        let start = Instant::now();
        let index = ExposureIndex::build(&inventory);
        let elapsed = start.elapsed();
        assert_eq!(index.len(), 20 * 50);
        // Generous bound for a debug build on a shared machine; the release figure is far lower.
        assert!(elapsed.as_millis() < 2_000, "took {elapsed:?}");
    }
}
