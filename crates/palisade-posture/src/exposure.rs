//! Exposure checks: what an attacker on the Internet can reach. PostgreSQL with trust
//! authentication or open address ranges behind a LoadBalancer, NodePort or external IP; Ingresses
//! that serve plain HTTP; dashboards and admin UIs published outside the cluster; Services on
//! risky or disallowed ports.
//!
//! Reachability comes from [`ExposureIndex`]; workloads in excluded namespaces and
//! controller-owned Pods are skipped like in the workload checks.

use crate::check::{Category, CheckInfo, Evidence, PostureFinding};
use crate::config::PostureConfig;
use crate::net::{Exposure, ExposureIndex, ExposureVia, is_broad_range, tls_host_covers};
use crate::pod::{Container, PodTemplate};
use palisade_kube::{Inventory, KubeObject};
use serde_json::Value;
use std::collections::HashMap;

const EXPOSURE: Category = Category::Exposure;

macro_rules! check {
    ($($t:tt)*) => { crate::check::declare_check!(EXPOSURE; $($t)*); };
}

check!(
    POSTGRES_TRUST,
    "K8S_ExposedPostgresTrustAuth",
    "Exposed PostgreSQL with trust authentication",
    Medium,
    "Remove trust from pg_hba.conf host lines and POSTGRES_HOST_AUTH_METHOD (use scram-sha-256), and stop publishing the database through a LoadBalancer, NodePort or external IP; reach it from inside the cluster or through a private endpoint.",
    [
        "Defender alert: Exposed Postgres service with trust authentication configuration in Kubernetes detected"
    ],
    []
);
check!(
    POSTGRES_BROAD,
    "K8S_ExposedPostgresBroadIPRange",
    "Exposed PostgreSQL open to a broad address range",
    Medium,
    "Restrict the Service with loadBalancerSourceRanges to the client networks that need it (or make it internal), and limit pg_hba.conf host lines to those networks instead of 0.0.0.0/0, ::/0 or all.",
    ["Defender alert: Exposed Postgres service with risky configuration in Kubernetes detected"],
    []
);
check!(
    HTTP_ONLY,
    "ingress.http-only",
    "Ingress serves plain HTTP",
    High,
    "Add a tls section covering every host of the Ingress (for example with a cert-manager issuer) and redirect HTTP to HTTPS.",
    ["Defender: Kubernetes clusters should be accessible only over HTTPS"],
    []
);
check!(
    DASHBOARD,
    "K8S_ExposedDashboard",
    "Kubernetes dashboard exposed outside the cluster",
    High,
    "Do not publish the Kubernetes dashboard through a LoadBalancer, NodePort or Ingress; reach it with kubectl port-forward or behind an authenticating proxy.",
    ["Defender alert: Exposed Kubernetes dashboard detected"],
    []
);
check!(
    KUBEFLOW,
    "K8S_ExposedKubeflow",
    "Kubeflow dashboard exposed outside the cluster",
    Medium,
    "Keep the Kubeflow central dashboard behind the authenticated Istio gateway (Dex / OIDC) and do not publish it directly through a LoadBalancer, NodePort or Ingress.",
    ["Defender alert: Exposed Kubeflow dashboard detected"],
    []
);
check!(
    REDIS,
    "K8S_ExposedRedis",
    "Redis exposed outside the cluster",
    Low,
    "Make the Redis Service ClusterIP (or an internal load balancer), require a password or ACLs, and restrict clients with NetworkPolicies.",
    ["Defender alert: Exposed Redis service in AKS detected"],
    []
);
check!(
    SENSITIVE_SERVICE,
    "K8S_ExposedService",
    "Sensitive application exposed outside the cluster",
    Medium,
    "Publish admin and monitoring UIs only behind authentication (an authenticating proxy or SSO at the Ingress) and restricted source ranges, or reach them with port-forward.",
    ["Defender alert: Exposed Kubernetes service detected"],
    []
);
check!(
    ALLOWED_PORTS,
    "service.allowed-ports",
    "Service listens on a port that is not allowed",
    Medium,
    "Change the Service port to one listed in parameters.allowedServicePorts, or add it there.",
    ["Defender: Services should listen on allowed ports only"],
    ["allowedServicePorts"]
);
check!(
    DENIED_PORT,
    "service.denied-port-exposed",
    "Service exposes a risky port outside the cluster",
    Medium,
    "Make the Service ClusterIP (or an internal load balancer) and reach the port from inside the cluster, through a bastion or a VPN; administration and database ports should never face the Internet.",
    ["Defender: Services should listen on allowed ports only"],
    ["deniedServicePorts"]
);

/// The checks of this module.
pub const CHECKS: &[CheckInfo] = &[
    POSTGRES_TRUST,
    POSTGRES_BROAD,
    HTTP_ONLY,
    DASHBOARD,
    KUBEFLOW,
    REDIS,
    SENSITIVE_SERVICE,
    ALLOWED_PORTS,
    DENIED_PORT,
];

/// Runs this module's checks.
pub fn check(inventory: &Inventory, config: &PostureConfig) -> Vec<PostureFinding> {
    let index = ExposureIndex::build(inventory);
    check_with_index(inventory, config, &index)
}

/// Runs this module's checks with an index built beforehand (the graph builds one too).
pub fn check_with_index(
    inventory: &Inventory,
    config: &PostureConfig,
    index: &ExposureIndex,
) -> Vec<PostureFinding> {
    let cluster = inventory.cluster.as_deref();
    let mut out = Vec::new();
    let mut config_maps: HashMap<(&str, &str), &KubeObject> = HashMap::new();
    for cm in inventory.of_kind("ConfigMap") {
        config_maps.insert(
            (cm.namespace.as_deref().unwrap_or(""), cm.name.as_str()),
            cm,
        );
    }
    for object in &inventory.objects {
        if config.is_excluded_namespace(object.namespace.as_deref()) {
            continue;
        }
        match object.kind.as_str() {
            "Ingress" => http_only(object, cluster, &mut out),
            "Service" => service_ports(object, config, cluster, &mut out),
            _ => {
                let Some(t) = PodTemplate::of(object) else {
                    continue;
                };
                if t.is_owned_pod() || index.is_empty() {
                    continue;
                }
                let exposures = index.exposures_of(object);
                if exposures.is_empty() {
                    continue;
                }
                workload(&t, exposures, &config_maps, cluster, &mut out);
            }
        }
    }
    out
}

fn array(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_array).into_iter().flatten()
}

fn what(o: &KubeObject) -> String {
    match &o.namespace {
        Some(ns) => format!("{} {}/{}", o.kind, ns, o.name),
        None => format!("{} {}", o.kind, o.name),
    }
}

fn via_text(e: &Exposure) -> String {
    match e.via {
        ExposureVia::LoadBalancer => format!("LoadBalancer {}", e.object),
        ExposureVia::NodePort => format!("NodePort {}", e.object),
        ExposureVia::ExternalIPs => format!("external IPs of {}", e.object),
        ExposureVia::Ingress => format!("Ingress {}", e.object),
        ExposureVia::HostNetwork => "host networking".to_string(),
        ExposureVia::HostPort => "host ports".to_string(),
    }
}

fn exposure_evidence(e: &Exposure) -> Evidence {
    match e.via {
        ExposureVia::LoadBalancer | ExposureVia::NodePort => {
            Evidence::new(format!("{} spec.type", e.object), e.via.as_str())
        }
        ExposureVia::ExternalIPs => Evidence::new(
            format!("{} spec.externalIPs", e.object),
            Value::from(e.hosts.clone()),
        ),
        ExposureVia::Ingress => Evidence::new(
            format!("{} spec.rules[*].host", e.object),
            Value::from(e.hosts.clone()),
        ),
        ExposureVia::HostNetwork => Evidence::new(format!("{} hostNetwork", e.object), true),
        ExposureVia::HostPort => Evidence::new(
            format!("{} hostPort", e.object),
            Value::from(e.ports.clone()),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Ingress over HTTP

fn http_only(o: &KubeObject, cluster: Option<&str>, out: &mut Vec<PostureFinding>) {
    let Some(spec) = o.value.get("spec") else {
        return;
    };
    let tls: Vec<&Value> = array(spec.get("tls")).collect();
    let catch_all = tls.iter().any(|t| array(t.get("hosts")).next().is_none());
    if catch_all {
        return;
    }
    let tls_hosts: Vec<&str> = tls
        .iter()
        .flat_map(|t| array(t.get("hosts")))
        .filter_map(Value::as_str)
        .collect();
    let mut uncovered: Vec<&str> = Vec::new();
    let mut any_host = false;
    for rule in array(spec.get("rules")) {
        match rule
            .get("host")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
        {
            Some(h) => {
                if !tls_hosts.iter().any(|p| tls_host_covers(p, h)) && !uncovered.contains(&h) {
                    uncovered.push(h);
                }
            }
            None => any_host = true,
        }
    }
    if spec.get("defaultBackend").is_some() || spec.get("backend").is_some() {
        any_host = true;
    }
    if uncovered.is_empty() && !any_host {
        return;
    }
    let message = if tls.is_empty() {
        format!(
            "{} has no tls section: it serves its hosts over plain HTTP",
            what(o)
        )
    } else if any_host && uncovered.is_empty() {
        format!(
            "{} serves requests for any host name (a rule or default backend without host) that its TLS certificates do not cover",
            what(o)
        )
    } else {
        format!("{} serves {} without TLS", what(o), uncovered.join(", "))
    };
    let mut evidence = vec![Evidence::new(
        "spec.tls",
        spec.get("tls").cloned().unwrap_or(Value::Null),
    )];
    if !uncovered.is_empty() {
        evidence.push(Evidence::new("spec.rules[*].host", Value::from(uncovered)));
    }
    out.push(HTTP_ONLY.finding(o, cluster, None, message, evidence));
}

// ---------------------------------------------------------------------------------------------
// Service ports

/// What runs on a well-known port, for messages.
fn port_name(port: u64) -> &'static str {
    match port {
        22 => "SSH",
        23 => "telnet",
        2375 | 2376 => "Docker API",
        2379 | 2380 => "etcd",
        3306 => "MySQL",
        5432 => "PostgreSQL",
        6379 => "Redis",
        9200 => "Elasticsearch",
        10250 | 10255 => "kubelet",
        11211 => "memcached",
        27017 => "MongoDB",
        _ => "",
    }
}

fn service_ports(
    o: &KubeObject,
    config: &PostureConfig,
    cluster: Option<&str>,
    out: &mut Vec<PostureFinding>,
) {
    let Some(spec) = o.value.get("spec") else {
        return;
    };
    let p = &config.parameters;
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    let external_ips = array(spec.get("externalIPs")).next().is_some();
    let exposed =
        matches!(ty, "LoadBalancer" | "NodePort") || (external_ips && ty != "ExternalName");
    if !p.allowed_service_ports.is_empty() {
        for (i, port) in array(spec.get("ports")).enumerate() {
            let Some(n) = port.get("port").and_then(Value::as_u64) else {
                continue;
            };
            if !p.allowed_service_ports.iter().any(|&a| u64::from(a) == n) {
                out.push(ALLOWED_PORTS.finding(
                    o,
                    cluster,
                    None,
                    format!(
                        "{} listens on port {n}, which is not in the allowed list",
                        what(o)
                    ),
                    vec![Evidence::new(format!("spec.ports[{i}].port"), n)],
                ));
            }
        }
    }
    if !exposed || p.denied_service_ports.is_empty() {
        return;
    }
    let how = if matches!(ty, "LoadBalancer" | "NodePort") {
        format!("a {ty} Service")
    } else {
        "external IPs".to_string()
    };
    for (i, port) in array(spec.get("ports")).enumerate() {
        for field in ["port", "targetPort"] {
            let Some(n) = port.get(field).and_then(Value::as_u64) else {
                continue;
            };
            if p.denied_service_ports.iter().any(|&d| u64::from(d) == n) {
                let name = port_name(n);
                let label = if name.is_empty() {
                    format!("port {n}")
                } else {
                    format!("port {n} ({name})")
                };
                out.push(DENIED_PORT.finding(
                    o,
                    cluster,
                    None,
                    format!(
                        "{} exposes {label} outside the cluster through {how}",
                        what(o)
                    ),
                    vec![
                        Evidence::new(format!("spec.ports[{i}].{field}"), n),
                        Evidence::new("spec.type", ty),
                    ],
                ));
                break;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Exposed applications

/// The last path component of an image's repository, lower-cased: `bitnami/postgresql:16` → `postgresql`.
fn image_name(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split(':').next().unwrap_or(last)
}

fn image_repo(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => without_digest,
    }
}

const POSTGRES_IMAGES: &[&str] = &[
    "postgres",
    "postgresql",
    "postgresql-repmgr",
    "postgis",
    "timescaledb",
    "timescaledb-ha",
    "pgvector",
    "spilo",
    "crunchy-postgres",
    "postgres-operator",
    "cloudnative-pg",
];

fn is_postgres(c: &Container<'_>) -> bool {
    let name = image_name(c.image()).to_ascii_lowercase();
    POSTGRES_IMAGES.contains(&name.as_str())
        || name.starts_with("postgres")
        || name.starts_with("timescaledb")
        || array(c.spec.get("ports"))
            .any(|p| p.get("containerPort").and_then(Value::as_u64) == Some(5432))
}

fn is_redis(c: &Container<'_>) -> bool {
    let name = image_name(c.image()).to_ascii_lowercase();
    matches!(
        name.as_str(),
        "redis" | "redis-stack" | "redis-stack-server" | "redis-cluster"
    ) || array(c.spec.get("ports"))
        .any(|p| p.get("containerPort").and_then(Value::as_u64) == Some(6379))
}

fn args_text<'a>(c: &Container<'a>) -> impl Iterator<Item = &'a str> {
    array(c.spec.get("command"))
        .chain(array(c.spec.get("args")))
        .filter_map(Value::as_str)
}

/// The env value of a container, literal or from a ConfigMap (`valueFrom.configMapKeyRef`, `envFrom`).
fn env_value<'a>(
    c: &Container<'a>,
    name: &str,
    namespace: &str,
    config_maps: &HashMap<(&str, &str), &'a KubeObject>,
) -> Option<(String, &'a str)> {
    for (i, e) in array(c.spec.get("env")).enumerate() {
        if e.get("name").and_then(Value::as_str) != Some(name) {
            continue;
        }
        if let Some(v) = e.get("value").and_then(Value::as_str) {
            return Some((format!("env[{i}].value"), v));
        }
        if let Some(r) = e.get("valueFrom").and_then(|v| v.get("configMapKeyRef")) {
            let cm = r.get("name").and_then(Value::as_str)?;
            let key = r.get("key").and_then(Value::as_str)?;
            let v = config_maps
                .get(&(namespace, cm))?
                .value
                .get("data")?
                .get(key)?
                .as_str()?;
            return Some((format!("env[{i}].valueFrom.configMapKeyRef"), v));
        }
    }
    for (i, e) in array(c.spec.get("envFrom")).enumerate() {
        let Some(cm) = e
            .get("configMapRef")
            .and_then(|r| r.get("name"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let prefix = e.get("prefix").and_then(Value::as_str).unwrap_or("");
        let Some(key) = name.strip_prefix(prefix) else {
            continue;
        };
        if let Some(v) = config_maps
            .get(&(namespace, cm))
            .and_then(|o| o.value.get("data"))
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
        {
            return Some((format!("envFrom[{i}].configMapRef"), v));
        }
    }
    None
}

/// One host line of pg_hba.conf.
#[derive(Debug, PartialEq, Eq)]
pub struct HbaLine<'a> {
    pub line: usize,
    pub address: String,
    pub method: &'a str,
}

/// The host lines of a pg_hba.conf (local lines do not matter for network exposure).
pub fn parse_pg_hba(text: &str) -> Vec<HbaLine<'_>> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("");
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(&kind) = fields.first() else {
            continue;
        };
        if !kind.starts_with("host") || fields.len() < 5 {
            continue;
        }
        // host DATABASE USER ADDRESS METHOD, or host DATABASE USER IP MASK METHOD.
        let address = fields[3];
        let (address, method) = if !address.contains('/')
            && address.parse::<std::net::IpAddr>().is_ok()
            && fields
                .get(4)
                .is_some_and(|m| m.parse::<std::net::IpAddr>().is_ok())
        {
            let mask = fields[4];
            let prefix = mask_prefix(mask);
            (
                format!(
                    "{address}/{}",
                    prefix.map(|p| p.to_string()).unwrap_or_default()
                ),
                fields.get(5).copied().unwrap_or(""),
            )
        } else {
            (address.to_string(), fields[4])
        };
        out.push(HbaLine {
            line: n + 1,
            address,
            method,
        });
    }
    out
}

fn mask_prefix(mask: &str) -> Option<u32> {
    match mask.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(m) => Some(u32::from(m).count_ones()),
        std::net::IpAddr::V6(m) => Some(u128::from(m).count_ones()),
    }
}

/// pg_hba.conf files in ConfigMaps the pod mounts: (config map key, key, text).
fn mounted_hba<'a>(
    t: &PodTemplate<'a>,
    namespace: &str,
    config_maps: &HashMap<(&str, &str), &'a KubeObject>,
) -> Vec<(String, &'a str)> {
    let mut names: Vec<&str> = Vec::new();
    for v in array(t.field("volumes")) {
        if let Some(n) = v
            .get("configMap")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
        {
            names.push(n);
        }
        for s in array(v.get("projected").and_then(|p| p.get("sources"))) {
            if let Some(n) = s
                .get("configMap")
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
            {
                names.push(n);
            }
        }
    }
    let mut out = Vec::new();
    for n in names {
        let Some(cm) = config_maps.get(&(namespace, n)) else {
            continue;
        };
        let Some(data) = cm.value.get("data").and_then(Value::as_object) else {
            continue;
        };
        for (key, v) in data {
            if key.contains("hba")
                && let Some(text) = v.as_str()
            {
                out.push((format!("ConfigMap/{namespace}/{n} data.{key}"), text));
            }
        }
    }
    out
}

fn workload(
    t: &PodTemplate<'_>,
    exposures: &[Exposure],
    config_maps: &HashMap<(&str, &str), &KubeObject>,
    cluster: Option<&str>,
    out: &mut Vec<PostureFinding>,
) {
    let o = t.object;
    let ns = o.namespace.as_deref().unwrap_or("");
    let service_exposures: Vec<&Exposure> =
        exposures.iter().filter(|e| e.via.is_service()).collect();
    let web_exposures: Vec<&Exposure> = exposures
        .iter()
        .filter(|e| e.via.is_service() || e.via == ExposureVia::Ingress)
        .collect();
    let via_list = |list: &[&Exposure]| {
        list.iter()
            .map(|e| via_text(e))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let containers: Vec<Container<'_>> = t.containers().collect();

    // PostgreSQL.
    if !service_exposures.is_empty()
        && let Some(pg) = containers.iter().find(|c| is_postgres(c))
    {
        let via = via_list(&service_exposures);
        let mut trust_ev = Vec::new();
        let mut broad_ev = Vec::new();
        let mut broad_reasons = Vec::new();
        if let Some((path, v)) = env_value(pg, "POSTGRES_HOST_AUTH_METHOD", ns, config_maps)
            && v.trim().eq_ignore_ascii_case("trust")
        {
            trust_ev.push(Evidence::new(t.container_path(pg, &path), v));
        }
        if let Some((path, v)) = env_value(pg, "ALLOW_EMPTY_PASSWORD", ns, config_maps)
            && matches!(v.trim().to_ascii_lowercase().as_str(), "yes" | "true" | "1")
        {
            trust_ev.push(Evidence::new(t.container_path(pg, &path), v));
        }
        for (source, text) in mounted_hba(t, ns, config_maps) {
            for line in parse_pg_hba(text) {
                if line.method.eq_ignore_ascii_case("trust") {
                    trust_ev.push(Evidence::new(
                        format!("{source} line {}", line.line),
                        format!("{} {}", line.address, line.method),
                    ));
                }
                if !line.method.eq_ignore_ascii_case("reject") && is_broad_range(&line.address) {
                    broad_ev.push(Evidence::new(
                        format!("{source} line {}", line.line),
                        format!("{} {}", line.address, line.method),
                    ));
                    if broad_reasons.is_empty() {
                        broad_reasons.push(format!("pg_hba.conf accepts {}", line.address));
                    }
                }
            }
        }
        for e in &service_exposures {
            let open = e.source_ranges.is_empty();
            let broad: Vec<&String> = e
                .source_ranges
                .iter()
                .filter(|r| is_broad_range(r))
                .collect();
            if open || !broad.is_empty() {
                broad_reasons.push(if open {
                    format!("{} accepts any client address", via_text(e))
                } else {
                    format!(
                        "{} allows {}",
                        via_text(e),
                        broad
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
                broad_ev.push(if e.via == ExposureVia::LoadBalancer {
                    Evidence::new(
                        format!("{} spec.loadBalancerSourceRanges", e.object),
                        Value::from(e.source_ranges.clone()),
                    )
                } else {
                    exposure_evidence(e)
                });
            }
        }
        if !trust_ev.is_empty() {
            trust_ev.extend(service_exposures.iter().map(|e| exposure_evidence(e)));
            out.push(POSTGRES_TRUST.finding(
                o,
                cluster,
                Some(pg.name),
                format!("PostgreSQL in {} accepts connections without a password (trust authentication) and is reachable through {via}", what(o)),
                trust_ev,
            ));
        }
        if !broad_ev.is_empty() {
            out.push(POSTGRES_BROAD.finding(
                o,
                cluster,
                Some(pg.name),
                format!(
                    "PostgreSQL in {} is reachable from outside the cluster: {}",
                    what(o),
                    broad_reasons.join("; ")
                ),
                broad_ev,
            ));
        }
    }

    // Redis.
    if !service_exposures.is_empty()
        && let Some(r) = containers.iter().find(|c| is_redis(c))
    {
        let mut ev = vec![Evidence::new(t.container_path(r, "image"), r.image())];
        ev.extend(service_exposures.iter().map(|e| exposure_evidence(e)));
        out.push(REDIS.finding(
            o,
            cluster,
            Some(r.name),
            format!(
                "Redis in {} is reachable through {}",
                what(o),
                via_list(&service_exposures)
            ),
            ev,
        ));
    }

    if web_exposures.is_empty() {
        return;
    }
    let via = via_list(&web_exposures);
    let label = |k: &str| {
        t.metadata
            .and_then(|m| m.get("labels"))
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
    };
    for c in &containers {
        let image = c.image();
        let repo = image_repo(image).to_ascii_lowercase();
        let name = image_name(image).to_ascii_lowercase();
        let mut ev = vec![Evidence::new(t.container_path(c, "image"), image)];
        ev.extend(web_exposures.iter().map(|e| exposure_evidence(e)));

        let k8s_dashboard = (repo.contains("kubernetesui/dashboard")
            || name.starts_with("kubernetes-dashboard"))
            || (label("k8s-app") == Some("kubernetes-dashboard")
                && !repo.contains("metrics-scraper"));
        if k8s_dashboard {
            out.push(DASHBOARD.finding(
                o,
                cluster,
                Some(c.name),
                format!(
                    "The Kubernetes dashboard in {} is reachable through {via}",
                    what(o)
                ),
                ev,
            ));
            return;
        }
        if name == "centraldashboard" || label("app") == Some("centraldashboard") {
            out.push(KUBEFLOW.finding(
                o,
                cluster,
                Some(c.name),
                format!(
                    "The Kubeflow central dashboard in {} is reachable through {via}",
                    what(o)
                ),
                ev,
            ));
            return;
        }
        if let Some(app) = sensitive_app(
            c,
            &repo,
            &name,
            t.object.namespace.as_deref().unwrap_or(""),
            config_maps,
        ) {
            out.push(SENSITIVE_SERVICE.finding(
                o,
                cluster,
                Some(c.name),
                format!("{app} in {} is reachable through {via}", what(o)),
                ev,
            ));
            return;
        }
    }
}

/// Admin and monitoring UIs that should not face the Internet unauthenticated.
fn sensitive_app(
    c: &Container<'_>,
    repo: &str,
    name: &str,
    namespace: &str,
    config_maps: &HashMap<(&str, &str), &KubeObject>,
) -> Option<&'static str> {
    let args: Vec<&str> = args_text(c).collect();
    let has_arg = |needle: &str| args.iter().any(|a| a.contains(needle));
    if repo.ends_with("argoproj/argocd") && (has_arg("argocd-server") || c.name == "argocd-server")
    {
        return Some("The Argo CD API server and UI");
    }
    if repo.ends_with("argoproj/argocli") && has_arg("server") {
        let server_auth = args
            .windows(2)
            .any(|w| w[0] == "--auth-mode" && w[1].contains("server"))
            || args
                .iter()
                .any(|a| a.starts_with("--auth-mode=") && a.contains("server"));
        if server_auth {
            return Some("The Argo Workflows server (auth mode server: no login)");
        }
    }
    if name == "grafana" {
        let anonymous = env_value(c, "GF_AUTH_ANONYMOUS_ENABLED", namespace, config_maps)
            .is_some_and(|(_, v)| v.eq_ignore_ascii_case("true"));
        let no_login = env_value(c, "GF_AUTH_DISABLE_LOGIN_FORM", namespace, config_maps)
            .is_some_and(|(_, v)| v.eq_ignore_ascii_case("true"))
            && env_value(c, "GF_AUTH_PROXY_ENABLED", namespace, config_maps).is_none();
        if anonymous || no_login {
            return Some("Grafana with anonymous access");
        }
        return None;
    }
    if repo.contains("jupyter/") || name.contains("notebook") && repo.contains("jupyter") {
        let no_token = args.iter().any(|a| {
            (a.contains(".token=") || a.contains(".password="))
                && (a.ends_with("=''") || a.ends_with("=\"\"") || a.ends_with('='))
        }) || env_value(c, "JUPYTER_TOKEN", namespace, config_maps)
            .is_some_and(|(_, v)| v.is_empty());
        return Some(if no_token {
            "A Jupyter server without token or password"
        } else {
            "A Jupyter server (code execution behind a single token)"
        });
    }
    match name {
        "kibana" => Some("Kibana"),
        "prometheus" => Some("The Prometheus server (no authentication)"),
        "alertmanager" => Some("Alertmanager (no authentication)"),
        "scope" if repo.contains("weaveworks") => {
            Some("Weave Scope (remote shell into every container)")
        }
        "dashboard" if repo.contains("tektoncd") => Some("The Tekton dashboard"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_hba_lines() {
        let text = "# TYPE DATABASE USER ADDRESS METHOD\nlocal all all trust\nhost all all 127.0.0.1/32 trust\nhostssl all all 0.0.0.0 0.0.0.0 scram-sha-256 # everyone\nhost all all all md5\nhost all all ::/0 reject\n";
        let lines = parse_pg_hba(text);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].address, "127.0.0.1/32");
        assert_eq!(lines[0].method, "trust");
        assert_eq!(lines[1].address, "0.0.0.0/0");
        assert_eq!(lines[1].method, "scram-sha-256");
        assert_eq!(lines[1].line, 4);
        assert_eq!(lines[2].address, "all");
        assert_eq!(lines[3].method, "reject");
    }

    #[test]
    fn image_names() {
        assert_eq!(
            image_name("docker.io/bitnami/postgresql:16.2.0"),
            "postgresql"
        );
        assert_eq!(image_name("postgres@sha256:abc"), "postgres");
        assert_eq!(
            image_repo("localhost:5000/kubernetesui/dashboard:v2.7.0"),
            "localhost:5000/kubernetesui/dashboard"
        );
        assert_eq!(image_repo("localhost:5000/app"), "localhost:5000/app");
    }
}
