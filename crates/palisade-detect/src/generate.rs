//! A deterministic generator of realistic Kubernetes audit logs, for benchmarks and load tests.
//!
//! The mix follows what a busy cluster's audit log looks like: most events are reads
//! (get/list/watch) by control-plane components and kubelets at `Metadata` level, kubelets keep
//! updating node status and leases, a smaller share creates or patches workloads and config
//! maps with request and response objects (`RequestResponse`), and a small fraction is
//! suspicious (privileged pods, cluster-admin bindings, exec, secrets read across namespaces,
//! anonymous and forbidden requests, mining images, host mounts). Events are written as JSON
//! by hand (no serde) so generating a million costs little next to what is measured. The
//! same seed gives the same log.

use std::io::Write;

/// xorshift64*: small, fast and good enough to pick from a mix; no `rand` dependency.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        (self.next_u64() >> 11) % n.max(1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    pub seed: u64,
    /// Time of the first event (Unix nanoseconds).
    pub start_unix_nanos: i64,
    /// Mean events per second of log time (spacing between timestamps).
    pub events_per_second: u64,
    /// Suspicious events per 10,000.
    pub suspicious_per_10k: u64,
    /// Nodes (kubelets) in the simulated cluster.
    pub nodes: u64,
}

impl Default for GeneratorConfig {
    /// Seed 1, starting 2026-01-15T08:00:00Z, 1,000 events/s (a 1,000-node cluster), 0.5 %
    /// suspicious, 200 nodes.
    fn default() -> Self {
        GeneratorConfig {
            seed: 1,
            start_unix_nanos: 1_768_464_000_000_000_000,
            events_per_second: 1000,
            suspicious_per_10k: 50,
            nodes: 200,
        }
    }
}

/// Counts of what was generated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GeneratedStats {
    pub events: u64,
    pub bytes: u64,
    pub reads: u64,
    pub writes: u64,
    pub suspicious: u64,
}

/// Generates audit events one by one.
#[derive(Debug, Clone)]
pub struct AuditGenerator {
    rng: XorShift,
    config: GeneratorConfig,
    time: i64,
    stats: GeneratedStats,
}

const NAMESPACES: &[&str] = &[
    "default",
    "kube-system",
    "shop",
    "payments",
    "monitoring",
    "ingress-nginx",
    "data",
    "ci",
];
const APPS: &[&str] = &[
    "web",
    "api",
    "cart",
    "checkout",
    "worker",
    "redis",
    "postgres",
    "prometheus",
    "grafana",
];
const CONTROLLERS: &[&str] = &[
    "replicaset-controller",
    "deployment-controller",
    "endpoint-controller",
    "endpointslice-controller",
    "namespace-controller",
    "daemon-set-controller",
    "job-controller",
    "generic-garbage-collector",
    "statefulset-controller",
];
const READ_RESOURCES: &[(&str, &str, &str)] = &[
    // (resource, apiGroup, apiVersion)
    ("pods", "", "v1"),
    ("nodes", "", "v1"),
    ("services", "", "v1"),
    ("endpoints", "", "v1"),
    ("configmaps", "", "v1"),
    ("secrets", "", "v1"),
    ("namespaces", "", "v1"),
    ("persistentvolumeclaims", "", "v1"),
    ("replicasets", "apps", "v1"),
    ("deployments", "apps", "v1"),
    ("daemonsets", "apps", "v1"),
    ("statefulsets", "apps", "v1"),
    ("endpointslices", "discovery.k8s.io", "v1"),
    ("leases", "coordination.k8s.io", "v1"),
    ("jobs", "batch", "v1"),
];
const IMAGES: &[&str] = &[
    "registry.example.com/shop/web:2.3.1",
    "registry.example.com/shop/api:1.14.0",
    "docker.io/library/redis:7.2.4",
    "docker.io/library/postgres:16.2",
    "quay.io/prometheus/prometheus:v2.51.0",
    "docker.io/grafana/grafana:10.4.1",
    "registry.k8s.io/ingress-nginx/controller:v1.10.0",
];

impl AuditGenerator {
    pub fn new(config: GeneratorConfig) -> AuditGenerator {
        AuditGenerator {
            rng: XorShift::new(config.seed),
            time: config.start_unix_nanos,
            config,
            stats: GeneratedStats::default(),
        }
    }

    pub fn stats(&self) -> GeneratedStats {
        self.stats
    }

    /// Appends `n` events as JSON lines.
    pub fn write_lines(&mut self, n: usize, out: &mut Vec<u8>) {
        for _ in 0..n {
            self.write_event(out);
            out.push(b'\n');
        }
    }

    /// Appends one `audit.k8s.io/v1` `EventList` holding `n` events: the body the API server's
    /// webhook backend posts.
    pub fn write_event_list(&mut self, n: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(
            br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":["#,
        );
        for i in 0..n {
            if i > 0 {
                out.push(b',');
            }
            self.write_event(out);
        }
        out.extend_from_slice(b"]}");
    }

    /// Appends one event (JSON, no newline).
    pub fn write_event(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        let step = 1_000_000_000 / self.config.events_per_second.max(1);
        self.time += (self.rng.below(2 * step.max(1)) + 1) as i64;
        let roll = self.rng.below(10_000);
        let suspicious = self.config.suspicious_per_10k;
        if roll < suspicious {
            self.suspicious(out);
            self.stats.suspicious += 1;
        } else if roll < suspicious + 6_900 {
            self.read(out);
            self.stats.reads += 1;
        } else if roll < suspicious + 8_400 {
            self.kubelet_update(out);
            self.stats.writes += 1;
        } else if roll < suspicious + 9_500 {
            self.workload_write(out);
            self.stats.writes += 1;
        } else {
            self.review_or_event(out);
            self.stats.writes += 1;
        }
        self.stats.events += 1;
        self.stats.bytes += (out.len() - start) as u64 + 1;
    }

    fn uuid(&mut self, out: &mut Vec<u8>) {
        let a = self.rng.next_u64();
        let b = self.rng.next_u64();
        let _ = write!(
            out,
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        );
    }

    fn timestamp(out: &mut Vec<u8>, nanos: i64) {
        let secs = nanos.div_euclid(1_000_000_000);
        let micros = nanos.rem_euclid(1_000_000_000) / 1000;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let _ = write!(
            out,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        );
    }

    /// The common head of an event up to and including `"objectRef":{...},`.
    #[allow(clippy::too_many_arguments)]
    fn head(
        &mut self,
        out: &mut Vec<u8>,
        level: &str,
        stage: &str,
        verb: &str,
        uri: &str,
        user: &str,
        groups: &[&str],
        source_ip: &str,
        user_agent: &str,
    ) {
        out.extend_from_slice(br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":""#);
        out.extend_from_slice(level.as_bytes());
        out.extend_from_slice(br#"","auditID":""#);
        self.uuid(out);
        let _ = write!(
            out,
            r#"","stage":"{stage}","requestURI":"{uri}","verb":"{verb}","user":{{"username":"{user}","#
        );
        if user.starts_with("system:serviceaccount:") {
            out.extend_from_slice(br#""uid":""#);
            self.uuid(out);
            out.extend_from_slice(br#"","#);
        }
        out.extend_from_slice(br#""groups":["#);
        for (i, g) in groups.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let _ = write!(out, "\"{g}\"");
        }
        let _ = write!(
            out,
            r#"]}},"sourceIPs":["{source_ip}"],"userAgent":"{user_agent}","#
        );
    }

    fn object_ref(
        out: &mut Vec<u8>,
        resource: &str,
        namespace: Option<&str>,
        name: Option<&str>,
        group: &str,
        version: &str,
        subresource: Option<&str>,
    ) {
        let _ = write!(out, r#""objectRef":{{"resource":"{resource}""#);
        if let Some(ns) = namespace {
            let _ = write!(out, r#","namespace":"{ns}""#);
        }
        if let Some(n) = name {
            let _ = write!(out, r#","name":"{n}""#);
        }
        if !group.is_empty() {
            let _ = write!(out, r#","apiGroup":"{group}""#);
        }
        let _ = write!(out, r#","apiVersion":"{version}""#);
        if let Some(s) = subresource {
            let _ = write!(out, r#","subresource":"{s}""#);
        }
        out.extend_from_slice(b"},");
    }

    /// `responseStatus`, timestamps and the authorization annotations; closes the event.
    fn tail(&mut self, out: &mut Vec<u8>, code: u16, reason: &str) {
        if code >= 400 {
            let status = if code == 403 { "Forbidden" } else { "NotFound" };
            let _ = write!(
                out,
                r#""responseStatus":{{"metadata":{{}},"status":"Failure","reason":"{status}","code":{code}}},"#
            );
        } else {
            let _ = write!(
                out,
                r#""responseStatus":{{"metadata":{{}},"code":{code}}},"#
            );
        }
        let received = self.time - (self.rng.below(3_000_000) as i64 + 200_000);
        out.extend_from_slice(br#""requestReceivedTimestamp":""#);
        Self::timestamp(out, received);
        out.extend_from_slice(br#"","stageTimestamp":""#);
        Self::timestamp(out, self.time);
        let decision = if code == 403 { "forbid" } else { "allow" };
        let _ = write!(
            out,
            r#"","annotations":{{"authorization.k8s.io/decision":"{decision}","authorization.k8s.io/reason":"{reason}"}}}}"#
        );
    }

    fn node_ip(&mut self) -> String {
        format!("10.0.{}.{}", self.rng.below(4), 10 + self.rng.below(200))
    }

    fn read(&mut self, out: &mut Vec<u8>) {
        let who = self.rng.below(100);
        let &(resource, group, version) = self.rng.pick(READ_RESOURCES);
        let ns = *self.rng.pick(NAMESPACES);
        let verb = *self.rng.pick(&["get", "get", "list", "watch", "watch"]);
        let (user, groups, agent, ip): (String, &[&str], String, String) = if who < 40 {
            let node = self.rng.below(self.config.nodes);
            (
                format!("system:node:node-{node:04}"),
                &["system:nodes", "system:authenticated"],
                "kubelet/v1.29.2 (linux/amd64) kubernetes/4b8e819".to_string(),
                self.node_ip(),
            )
        } else if who < 70 {
            let controller = *self.rng.pick(CONTROLLERS);
            (
                "system:kube-controller-manager".to_string(),
                &["system:authenticated"],
                format!(
                    "kube-controller-manager/v1.29.2 (linux/amd64) kubernetes/4b8e819/system:serviceaccount:kube-system:{controller}"
                ),
                "10.0.0.2".to_string(),
            )
        } else if who < 82 {
            (
                "system:kube-scheduler".to_string(),
                &["system:authenticated"],
                "kube-scheduler/v1.29.2 (linux/amd64) kubernetes/4b8e819/scheduler".to_string(),
                "10.0.0.2".to_string(),
            )
        } else if who < 90 {
            (
                "system:serviceaccount:kube-system:coredns".to_string(),
                &[
                    "system:serviceaccounts",
                    "system:serviceaccounts:kube-system",
                    "system:authenticated",
                ],
                "coredns/v1.11.1 (linux/amd64) kubernetes/4b8e819".to_string(),
                format!("10.244.{}.{}", self.rng.below(4), 2 + self.rng.below(250)),
            )
        } else {
            let app = *self.rng.pick(APPS);
            (
                format!("system:serviceaccount:{ns}:{app}"),
                &["system:serviceaccounts", "system:authenticated"],
                format!("{app}/1.0 (linux/amd64) client-go/0.29"),
                format!("10.244.{}.{}", self.rng.below(4), 2 + self.rng.below(250)),
            )
        };
        let prefix = if group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{group}/{version}")
        };
        let name = format!("{}-{:x}", self.rng.pick(APPS), self.rng.below(0xfffff));
        let (uri, name) = match verb {
            "get" => (
                format!("{prefix}/namespaces/{ns}/{resource}/{name}"),
                Some(name),
            ),
            "list" => (
                format!("{prefix}/namespaces/{ns}/{resource}?limit=500&resourceVersion=0"),
                None,
            ),
            _ => (
                format!(
                    "{prefix}/namespaces/{ns}/{resource}?allowWatchBookmarks=true&resourceVersion={}&timeout=7m31s&timeoutSeconds=451&watch=true",
                    1_000_000 + self.rng.below(9_000_000)
                ),
                None,
            ),
        };
        let stage = if verb == "watch" && self.rng.below(2) == 0 {
            "ResponseStarted"
        } else {
            "ResponseComplete"
        };
        self.head(
            out, "Metadata", stage, verb, &uri, &user, groups, &ip, &agent,
        );
        Self::object_ref(
            out,
            resource,
            Some(ns),
            name.as_deref(),
            group,
            version,
            None,
        );
        let code = if verb == "get" && self.rng.below(20) == 0 {
            404
        } else {
            200
        };
        let reason = format!(
            "RBAC: allowed by ClusterRoleBinding \\\"{0}\\\" of ClusterRole \\\"{0}\\\" to User \\\"{user}\\\"",
            if user.starts_with("system:node:") {
                "system:node"
            } else {
                "system:basic-user"
            }
        );
        self.tail(out, code, &reason);
    }

    fn kubelet_update(&mut self, out: &mut Vec<u8>) {
        let node = self.rng.below(self.config.nodes);
        let user = format!("system:node:node-{node:04}");
        let ip = self.node_ip();
        let agent = "kubelet/v1.29.2 (linux/amd64) kubernetes/4b8e819";
        let groups: &[&str] = &["system:nodes", "system:authenticated"];
        match self.rng.below(3) {
            0 => {
                let uri = format!(
                    "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-{node:04}?timeout=10s"
                );
                self.head(
                    out,
                    "RequestResponse",
                    "ResponseComplete",
                    "update",
                    &uri,
                    &user,
                    groups,
                    &ip,
                    agent,
                );
                let name = format!("node-{node:04}");
                Self::object_ref(
                    out,
                    "leases",
                    Some("kube-node-lease"),
                    Some(&name),
                    "coordination.k8s.io",
                    "v1",
                    None,
                );
                let lease = |out: &mut Vec<u8>, rv: u64| {
                    let _ = write!(
                        out,
                        r#"{{"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{{"name":"{name}","namespace":"kube-node-lease","resourceVersion":"{rv}","ownerReferences":[{{"apiVersion":"v1","kind":"Node","name":"{name}","uid":"5c1f2b9e-8a51-4f53-9d8e-1c0e7f4a2b6d"}}]}},"spec":{{"holderIdentity":"{name}","leaseDurationSeconds":40,"renewTime":"2026-01-15T08:00:00.000000Z"}}}}"#
                    );
                };
                let rv = 1_000_000 + self.rng.below(9_000_000);
                out.extend_from_slice(br#""requestObject":"#);
                lease(out, rv);
                out.extend_from_slice(br#","responseObject":"#);
                lease(out, rv + 1);
                out.push(b',');
            }
            1 => {
                let uri = format!("/api/v1/nodes/node-{node:04}/status?timeout=10s");
                self.head(
                    out,
                    "Metadata",
                    "ResponseComplete",
                    "patch",
                    &uri,
                    &user,
                    groups,
                    &ip,
                    agent,
                );
                let name = format!("node-{node:04}");
                Self::object_ref(out, "nodes", None, Some(&name), "", "v1", Some("status"));
            }
            _ => {
                let ns = *self.rng.pick(NAMESPACES);
                let name = format!("{}-{:x}", self.rng.pick(APPS), self.rng.below(0xfffff));
                let uri = format!("/api/v1/namespaces/{ns}/pods/{name}/status");
                self.head(
                    out,
                    "Metadata",
                    "ResponseComplete",
                    "patch",
                    &uri,
                    &user,
                    groups,
                    &ip,
                    agent,
                );
                Self::object_ref(out, "pods", Some(ns), Some(&name), "", "v1", Some("status"));
            }
        }
        self.tail(out, 200, "");
    }

    fn pod_spec(&mut self, out: &mut Vec<u8>, image: &str, extra_security: &str, volumes: &str) {
        let app = *self.rng.pick(APPS);
        let env_count = 2 + self.rng.below(8);
        let _ = write!(
            out,
            r#"{{"serviceAccountName":"{app}","containers":[{{"name":"{app}","image":"{image}","ports":[{{"containerPort":8080,"protocol":"TCP"}}],"env":["#
        );
        for i in 0..env_count {
            if i > 0 {
                out.push(b',');
            }
            let _ = write!(
                out,
                r#"{{"name":"SETTING_{i}","value":"value-{:x}"}}"#,
                self.rng.next_u64()
            );
        }
        let _ = write!(
            out,
            r#"],"resources":{{"limits":{{"cpu":"500m","memory":"512Mi"}},"requests":{{"cpu":"100m","memory":"128Mi"}}}},"securityContext":{{{extra_security}}},"volumeMounts":[{{"name":"config","mountPath":"/etc/{app}"}}],"imagePullPolicy":"IfNotPresent"}}],"volumes":[{{"name":"config","configMap":{{"name":"{app}-config"}}}}{volumes}],"restartPolicy":"Always","dnsPolicy":"ClusterFirst"}}"#
        );
    }

    fn workload_write(&mut self, out: &mut Vec<u8>) {
        let ns = *self.rng.pick(&NAMESPACES[1..]);
        let app = *self.rng.pick(APPS);
        let image = *self.rng.pick(IMAGES);
        let kind = self.rng.below(10);
        let verb = *self.rng.pick(&["create", "update", "patch"]);
        let (user, groups, agent): (String, &[&str], &str) = if self.rng.below(3) == 0 {
            (
                "system:serviceaccount:ci:deployer".into(),
                &["system:serviceaccounts", "system:authenticated"],
                "argocd-application-controller/v2.10 (linux/amd64)",
            )
        } else {
            (
                "system:serviceaccount:kube-system:replicaset-controller".into(),
                &[
                    "system:serviceaccounts",
                    "system:serviceaccounts:kube-system",
                    "system:authenticated",
                ],
                "kube-controller-manager/v1.29.2 (linux/amd64) kubernetes/4b8e819/system:serviceaccount:kube-system:replicaset-controller",
            )
        };
        let name = format!("{app}-{:x}", self.rng.below(0xfffff));
        let secure = r#""runAsNonRoot":true,"allowPrivilegeEscalation":false,"readOnlyRootFilesystem":true,"capabilities":{"drop":["ALL"]}"#;
        match kind {
            0..=4 => {
                let uri = format!("/api/v1/namespaces/{ns}/pods");
                self.head(
                    out,
                    "RequestResponse",
                    "ResponseComplete",
                    "create",
                    &uri,
                    &user,
                    groups,
                    "10.0.0.2",
                    agent,
                );
                Self::object_ref(out, "pods", Some(ns), Some(&name), "", "v1", None);
                let _ = write!(
                    out,
                    r#""requestObject":{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"{name}","namespace":"{ns}","labels":{{"app":"{app}","pod-template-hash":"{:x}"}}}},"spec":"#,
                    self.rng.below(0xffffff)
                );
                self.pod_spec(out, image, secure, "");
                out.extend_from_slice(b"},");
                self.tail(out, 201, "RBAC: allowed by ClusterRoleBinding \\\"system:controller:replicaset-controller\\\"");
            }
            5..=7 => {
                let uri = format!("/apis/apps/v1/namespaces/{ns}/deployments/{app}");
                self.head(
                    out,
                    "RequestResponse",
                    "ResponseComplete",
                    verb,
                    &uri,
                    &user,
                    groups,
                    "10.0.0.40",
                    agent,
                );
                Self::object_ref(out, "deployments", Some(ns), Some(app), "apps", "v1", None);
                let replicas = 1 + self.rng.below(6);
                let _ = write!(
                    out,
                    r#""requestObject":{{"kind":"Deployment","apiVersion":"apps/v1","metadata":{{"name":"{app}","namespace":"{ns}","labels":{{"app":"{app}"}},"annotations":{{"deployment.kubernetes.io/revision":"{}"}}}},"spec":{{"replicas":{replicas},"selector":{{"matchLabels":{{"app":"{app}"}}}},"template":{{"metadata":{{"labels":{{"app":"{app}"}}}},"spec":"#,
                    1 + self.rng.below(40)
                );
                self.pod_spec(out, image, secure, "");
                out.extend_from_slice(b"}}},");
                self.tail(out, 200, "RBAC: allowed by RoleBinding \\\"deployer\\\"");
            }
            _ => {
                // Config maps, now and then a large one.
                let uri = format!("/api/v1/namespaces/{ns}/configmaps/{app}-config");
                self.head(
                    out,
                    "RequestResponse",
                    "ResponseComplete",
                    verb,
                    &uri,
                    &user,
                    groups,
                    "10.0.0.40",
                    agent,
                );
                let cm = format!("{app}-config");
                Self::object_ref(out, "configmaps", Some(ns), Some(&cm), "", "v1", None);
                let _ = write!(
                    out,
                    r#""requestObject":{{"kind":"ConfigMap","apiVersion":"v1","metadata":{{"name":"{cm}","namespace":"{ns}"}},"data":{{"#
                );
                let keys = if self.rng.below(20) == 0 {
                    200
                } else {
                    3 + self.rng.below(10)
                };
                for i in 0..keys {
                    if i > 0 {
                        out.push(b',');
                    }
                    let _ = write!(
                        out,
                        r#""key{i}.properties":"feature.flag.{i}={:x}""#,
                        self.rng.next_u64()
                    );
                }
                out.extend_from_slice(b"}},");
                self.tail(out, 200, "RBAC: allowed by RoleBinding \\\"deployer\\\"");
            }
        }
    }

    fn review_or_event(&mut self, out: &mut Vec<u8>) {
        let ns = *self.rng.pick(NAMESPACES);
        if self.rng.below(2) == 0 {
            let node = self.rng.below(self.config.nodes);
            let user = format!("system:node:node-{node:04}");
            let ip = self.node_ip();
            let uri = format!("/api/v1/namespaces/{ns}/events");
            self.head(
                out,
                "Metadata",
                "ResponseComplete",
                "create",
                &uri,
                &user,
                &["system:nodes", "system:authenticated"],
                &ip,
                "kubelet/v1.29.2 (linux/amd64) kubernetes/4b8e819",
            );
            Self::object_ref(out, "events", Some(ns), None, "", "v1", None);
            self.tail(out, 201, "");
        } else {
            let app = *self.rng.pick(APPS);
            let user = format!("system:serviceaccount:{ns}:{app}");
            self.head(
                out,
                "Metadata",
                "ResponseComplete",
                "create",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                &user,
                &["system:serviceaccounts", "system:authenticated"],
                "10.244.1.7",
                "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819",
            );
            Self::object_ref(
                out,
                "selfsubjectaccessreviews",
                None,
                None,
                "authorization.k8s.io",
                "v1",
                None,
            );
            self.tail(out, 201, "");
        }
    }

    fn suspicious(&mut self, out: &mut Vec<u8>) {
        let ns = *self.rng.pick(&NAMESPACES[..4]);
        let human: &[&str] = &["system:authenticated", "developers"];
        let kubectl = "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819";
        let name = format!("debug-{:x}", self.rng.below(0xfffff));
        match self.rng.below(8) {
            0 | 1 => {
                // Privileged pod (with a host mount half of the time).
                let uri = format!("/api/v1/namespaces/{ns}/pods");
                self.head(
                    out,
                    "RequestResponse",
                    "ResponseComplete",
                    "create",
                    &uri,
                    "mallory@example.com",
                    human,
                    "203.0.113.7",
                    kubectl,
                );
                Self::object_ref(out, "pods", Some(ns), Some(&name), "", "v1", None);
                let _ = write!(
                    out,
                    r#""requestObject":{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"{name}","namespace":"{ns}"}},"spec":"#
                );
                let volumes = if self.rng.below(2) == 0 {
                    r#",{"name":"host","hostPath":{"path":"/","type":"Directory"}}"#
                } else {
                    ""
                };
                self.pod_spec(
                    out,
                    "docker.io/library/busybox:1.36",
                    r#""privileged":true"#,
                    volumes,
                );
                out.extend_from_slice(b"},");
                self.tail(
                    out,
                    201,
                    "RBAC: allowed by ClusterRoleBinding \\\"developers\\\"",
                );
            }
            2 => {
                let binding = format!("admin-{:x}", self.rng.below(0xffff));
                self.head(
                    out,
                    "RequestResponse",
                    "ResponseComplete",
                    "create",
                    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                    "mallory@example.com",
                    human,
                    "203.0.113.7",
                    kubectl,
                );
                Self::object_ref(
                    out,
                    "clusterrolebindings",
                    None,
                    Some(&binding),
                    "rbac.authorization.k8s.io",
                    "v1",
                    None,
                );
                let _ = write!(
                    out,
                    r#""requestObject":{{"kind":"ClusterRoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{{"name":"{binding}"}},"roleRef":{{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"}},"subjects":[{{"kind":"ServiceAccount","name":"default","namespace":"{ns}"}}]}},"#
                );
                self.tail(
                    out,
                    201,
                    "RBAC: allowed by ClusterRoleBinding \\\"cluster-admin\\\"",
                );
            }
            3 => {
                let pod = format!("{}-{:x}", self.rng.pick(APPS), self.rng.below(0xfffff));
                let uri = format!(
                    "/api/v1/namespaces/{ns}/pods/{pod}/exec?command=sh&container=app&stdin=true&stdout=true&tty=true"
                );
                self.head(
                    out,
                    "Metadata",
                    "ResponseStarted",
                    "create",
                    &uri,
                    "mallory@example.com",
                    human,
                    "203.0.113.7",
                    kubectl,
                );
                Self::object_ref(out, "pods", Some(ns), Some(&pod), "", "v1", Some("exec"));
                self.tail(out, 101, "");
            }
            4 => {
                let app = *self.rng.pick(APPS);
                let user = format!("system:serviceaccount:{ns}:{app}");
                self.head(
                    out,
                    "Metadata",
                    "ResponseComplete",
                    "list",
                    "/api/v1/secrets?limit=500",
                    &user,
                    &["system:serviceaccounts", "system:authenticated"],
                    "10.244.3.9",
                    "curl/8.5.0",
                );
                Self::object_ref(out, "secrets", None, None, "", "v1", None);
                self.tail(
                    out,
                    200,
                    "RBAC: allowed by ClusterRoleBinding \\\"too-broad\\\"",
                );
            }
            5 => {
                self.head(
                    out,
                    "Metadata",
                    "ResponseComplete",
                    "get",
                    "/api/v1/namespaces/kube-system/secrets",
                    "system:anonymous",
                    &["system:unauthenticated"],
                    "198.51.100.23",
                    "python-requests/2.31.0",
                );
                Self::object_ref(out, "secrets", Some("kube-system"), None, "", "v1", None);
                self.tail(out, 403, "");
            }
            6 => {
                let app = *self.rng.pick(APPS);
                let user = format!("system:serviceaccount:{ns}:{app}");
                self.head(
                    out,
                    "Metadata",
                    "ResponseComplete",
                    "list",
                    "/api/v1/namespaces/kube-system/secrets",
                    &user,
                    &["system:serviceaccounts", "system:authenticated"],
                    "10.244.2.14",
                    "curl/8.5.0",
                );
                Self::object_ref(out, "secrets", Some("kube-system"), None, "", "v1", None);
                self.tail(out, 403, "");
            }
            _ => {
                let uri = format!("/apis/apps/v1/namespaces/{ns}/deployments");
                self.head(
                    out,
                    "RequestResponse",
                    "ResponseComplete",
                    "create",
                    &uri,
                    "mallory@example.com",
                    human,
                    "203.0.113.7",
                    kubectl,
                );
                Self::object_ref(
                    out,
                    "deployments",
                    Some(ns),
                    Some(&name),
                    "apps",
                    "v1",
                    None,
                );
                let _ = write!(
                    out,
                    r#""requestObject":{{"kind":"Deployment","apiVersion":"apps/v1","metadata":{{"name":"{name}","namespace":"{ns}"}},"spec":{{"replicas":3,"selector":{{"matchLabels":{{"app":"{name}"}}}},"template":{{"metadata":{{"labels":{{"app":"{name}"}}}},"spec":"#
                );
                self.pod_spec(out, "docker.io/minerboy/xmrig:6.21.0", "", "");
                out.extend_from_slice(b"}}},");
                self.tail(
                    out,
                    201,
                    "RBAC: allowed by ClusterRoleBinding \\\"developers\\\"",
                );
            }
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_a_valid_audit_event_and_the_mix_is_realistic() {
        let mut generator = AuditGenerator::new(GeneratorConfig::default());
        let mut out = Vec::new();
        generator.write_lines(20_000, &mut out);
        let stats = generator.stats();
        assert_eq!(stats.events, 20_000);
        assert_eq!(stats.bytes, out.len() as u64);
        let mut sizes = Vec::new();
        let mut levels = std::collections::BTreeMap::<String, u64>::new();
        let mut last_time = String::new();
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line)));
            assert_eq!(v["kind"], "Event");
            assert_eq!(v["apiVersion"], "audit.k8s.io/v1");
            assert!(v["auditID"].as_str().unwrap().len() == 36);
            assert!(v["objectRef"]["resource"].is_string());
            let time = v["stageTimestamp"].as_str().unwrap().to_string();
            assert!(time >= last_time, "{time} < {last_time}");
            last_time = time;
            *levels
                .entry(v["level"].as_str().unwrap().into())
                .or_default() += 1;
            sizes.push(line.len());
        }
        sizes.sort_unstable();
        let median = sizes[sizes.len() / 2];
        assert!((500..=1500).contains(&median), "median {median}");
        assert!(*sizes.last().unwrap() > 5000, "no large events");
        assert!(levels["Metadata"] > levels["RequestResponse"]);
        assert!(stats.reads > stats.writes);
        let suspicious = stats.suspicious as f64 / stats.events as f64;
        assert!((0.002..0.01).contains(&suspicious), "{suspicious}");
    }

    #[test]
    fn deterministic_and_event_lists_parse() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        AuditGenerator::new(GeneratorConfig::default()).write_event_list(100, &mut a);
        AuditGenerator::new(GeneratorConfig::default()).write_event_list(100, &mut b);
        assert_eq!(a, b);
        let list: serde_json::Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(list["kind"], "EventList");
        assert_eq!(list["items"].as_array().unwrap().len(), 100);
        let mut c = Vec::new();
        AuditGenerator::new(GeneratorConfig {
            seed: 2,
            ..GeneratorConfig::default()
        })
        .write_event_list(100, &mut c);
        assert_ne!(a, c);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_468), (2026, 1, 15));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        let mut out = Vec::new();
        AuditGenerator::timestamp(&mut out, 1_768_464_000_123_456_789);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-01-15T08:00:00.123456Z"
        );
    }
}
