//! The Kubernetes audit log as one normalised event model.
//!
//! Native `audit.k8s.io` events, EKS (CloudWatch Logs) exports, GKE Cloud Logging `AuditLog`
//! entries and AKS diagnostic records all become an [`AuditEvent`] whose fields carry the
//! `audit.k8s.io/v1` names, so one rule reads every cloud the same way. Events borrow the input
//! bytes: request and response objects and annotations stay raw JSON and are parsed only when a
//! rule reads them.
//!
//! Shapes recognised per document ([`parse::parse_document`] with `InputFormat::Auto`):
//! - `audit.k8s.io/v1` and `v1beta1` `Event` and `EventList` (log files, webhook batches), also
//!   with Panther's `p_*` fields;
//! - EKS: CloudWatch Logs subscription payloads (plain, gzipped, or Lambda's `awslogs.data`),
//!   `aws logs filter-log-events`/`get-log-events` output, single log records (`message`), Logs
//!   Insights rows (`@message`), S3 export-task lines (`<timestamp> <event>`);
//! - GKE: Cloud Logging `LogEntry` with an `AuditLog` `protoPayload` (one entry, JSON lines, or the
//!   array `gcloud logging read --format=json` prints);
//! - AKS: `kube-audit`/`kube-audit-admin` diagnostic records (alone or in `{"records": [...]}`),
//!   `AzureDiagnostics` rows (`log_s`), `AKSAudit`/`AKSAuditAdmin` table rows;
//! - Azure Activity records and `AzureActivity` rows of Kubernetes operations on Arc-connected and
//!   AKS clusters (operation level only: no user groups or objects);
//! - a JSON array of any of these.
//!
//! Records of other services found in the same exports are counted as `not_kubernetes`.

mod cloud;
mod de;
pub mod follow;
pub mod parse;
mod schema;
pub(crate) mod time;

pub use follow::{FollowError, FollowOptions, FollowStats, follow};
pub use parse::{InputFormat, ParseError, ParseStats, parse_document, parse_reader};
pub use schema::{AuditField, AuditSchema};

use serde_json::value::RawValue;
use std::borrow::Cow;
use std::cell::OnceCell;

/// Where an event came from; rules can tell sources apart through the `source.format` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceFormat {
    /// An `audit.k8s.io` Event as kube-apiserver writes it (log file or webhook).
    #[default]
    Native,
    /// An EKS control-plane audit log exported from CloudWatch Logs.
    Eks,
    /// A GKE Cloud Logging `AuditLog` entry (`protoPayload`).
    Gke,
    /// An AKS diagnostic record (`kube-audit`, `kube-audit-admin`, or the `AKSAudit` tables).
    Aks,
    /// An Azure Activity log record for an Arc-connected or AKS cluster (operation-level only).
    AzureActivity,
}

impl SourceFormat {
    /// The value rules compare `source.format` with.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Native => "native",
            SourceFormat::Eks => "eks",
            SourceFormat::Gke => "gke",
            SourceFormat::Aks => "aks",
            SourceFormat::AzureActivity => "azure-activity",
        }
    }
}

/// A JSON subtree kept unparsed: borrowed from the input, or owned when it had to be unescaped
/// (a JSON document embedded in a string) or the event was made `'static`.
#[derive(Debug, Clone)]
pub enum RawJson<'a> {
    /// A slice of the input document.
    Borrowed(&'a RawValue),
    /// Unescaped from a string, or copied by `into_owned`.
    Owned(Box<RawValue>),
}

impl RawJson<'_> {
    /// The raw JSON text.
    pub fn get(&self) -> &str {
        match self {
            RawJson::Borrowed(r) => r.get(),
            RawJson::Owned(r) => r.get(),
        }
    }

    /// An owned copy that outlives the input.
    pub fn into_owned(self) -> RawJson<'static> {
        match self {
            RawJson::Borrowed(r) => RawJson::Owned(r.to_owned()),
            RawJson::Owned(r) => RawJson::Owned(r),
        }
    }

    fn parse(&self) -> Option<serde_json::Value> {
        serde_json::from_str(self.get()).ok()
    }
}

/// A raw JSON subtree parsed into a `serde_json::Value` the first time a rule reads it.
#[derive(Debug, Clone, Default)]
pub struct LazyJson<'a> {
    raw: Option<RawJson<'a>>,
    parsed: OnceCell<Option<serde_json::Value>>,
}

impl<'a> LazyJson<'a> {
    /// Wraps raw JSON (or nothing) for parsing on first use.
    pub fn new(raw: Option<RawJson<'a>>) -> Self {
        LazyJson {
            raw,
            parsed: OnceCell::new(),
        }
    }

    /// Already-parsed JSON (events built in code rather than read from bytes).
    pub fn from_value(value: serde_json::Value) -> LazyJson<'static> {
        let parsed = OnceCell::new();
        let _ = parsed.set(Some(value));
        LazyJson { raw: None, parsed }
    }

    /// Whether a subtree is present (without parsing it).
    pub fn is_present(&self) -> bool {
        self.raw.is_some() || matches!(self.parsed.get(), Some(Some(_)))
    }

    /// The raw text, when the subtree came from bytes.
    pub fn raw(&self) -> Option<&RawJson<'a>> {
        self.raw.as_ref()
    }

    /// The parsed subtree (parsed once; `None` when absent or, defensively, unparsable).
    pub fn value(&self) -> Option<&serde_json::Value> {
        self.parsed
            .get_or_init(|| self.raw.as_ref().and_then(RawJson::parse))
            .as_ref()
    }

    /// A copy that outlives the input.
    pub fn into_owned(self) -> LazyJson<'static> {
        LazyJson {
            raw: self.raw.map(RawJson::into_owned),
            parsed: self.parsed,
        }
    }
}

/// `annotations`: kept raw and turned into pairs the first time one is read, since most events
/// are judged without them and unescaping authorizer reasons is a good part of parsing an event.
/// A value that is a number or boolean is kept as its text, a nested object or array is
/// skipped; anything but a map reads as no annotations.
#[derive(Debug, Clone, Default)]
pub struct Annotations<'a> {
    raw: Option<RawJson<'a>>,
    parsed: OnceCell<Vec<(Cow<'a, str>, Cow<'a, str>)>>,
}

impl<'a> Annotations<'a> {
    /// Raw annotations (a JSON object) for parsing on first use.
    pub fn new(raw: Option<RawJson<'a>>) -> Self {
        Annotations {
            raw,
            parsed: OnceCell::new(),
        }
    }

    /// Annotations given as pairs (events built in code, cloud labels).
    pub fn from_pairs(pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>) -> Self {
        let parsed = OnceCell::new();
        let _ = parsed.set(pairs);
        Annotations { raw: None, parsed }
    }

    /// All annotations in document order.
    pub fn pairs(&self) -> &[(Cow<'a, str>, Cow<'a, str>)] {
        self.parsed.get_or_init(|| match &self.raw {
            None => Vec::new(),
            Some(RawJson::Borrowed(r)) => serde_json::from_str::<de::Pairs<'a>>(r.get())
                .map(|p| p.0)
                .unwrap_or_default(),
            Some(RawJson::Owned(r)) => serde_json::from_str::<de::Pairs<'_>>(r.get())
                .map(|p| p.0.into_iter().map(|(k, v)| (owned(k), owned(v))).collect())
                .unwrap_or_default(),
        })
    }

    /// The value of annotation `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// True when there are no annotations.
    pub fn is_empty(&self) -> bool {
        self.pairs().is_empty()
    }

    /// Adds an annotation (after the existing ones).
    pub fn push(&mut self, key: Cow<'a, str>, value: Cow<'a, str>) {
        self.pairs();
        if let Some(pairs) = self.parsed.get_mut() {
            pairs.push((key, value));
        }
    }

    /// A copy that outlives the input.
    pub fn into_owned(self) -> Annotations<'static> {
        match self.parsed.into_inner() {
            Some(pairs) => Annotations::from_pairs(
                pairs
                    .into_iter()
                    .map(|(k, v)| (owned(k), owned(v)))
                    .collect(),
            ),
            None => Annotations::new(self.raw.map(RawJson::into_owned)),
        }
    }
}

/// `user` / `impersonatedUser` of an audit event.
#[derive(Debug, Clone, Default)]
pub struct UserInfo<'a> {
    /// `user.username` (`system:serviceaccount:ns:name`, `kubernetes-admin`, an email).
    pub username: Option<Cow<'a, str>>,
    /// `user.uid`.
    pub uid: Option<Cow<'a, str>>,
    /// `user.groups` (empty when absent).
    pub groups: Vec<Cow<'a, str>>,
    /// `user.extra` (a map of string lists), parsed on first use.
    pub extra: LazyJson<'a>,
}

impl UserInfo<'_> {
    /// A copy that outlives the input.
    pub fn into_owned(self) -> UserInfo<'static> {
        UserInfo {
            username: self.username.map(owned),
            uid: self.uid.map(owned),
            groups: self.groups.into_iter().map(owned).collect(),
            extra: self.extra.into_owned(),
        }
    }
}

/// `objectRef`: what the request was about.
#[derive(Debug, Clone, Default)]
pub struct ObjectRef<'a> {
    /// Plural resource (`pods`); for subresources still the parent resource.
    pub resource: Option<Cow<'a, str>>,
    /// `exec`, `status`, `token`, `proxy`, … (`objectRef.subresource`).
    pub subresource: Option<Cow<'a, str>>,
    /// Missing for cluster-scoped objects.
    pub namespace: Option<Cow<'a, str>>,
    /// Missing for list/create-by-generateName requests.
    pub name: Option<Cow<'a, str>>,
    /// `objectRef.uid`.
    pub uid: Option<Cow<'a, str>>,
    /// API group; the core group is the empty string.
    pub api_group: Option<Cow<'a, str>>,
    /// `objectRef.apiVersion` (`v1`).
    pub api_version: Option<Cow<'a, str>>,
    /// `objectRef.resourceVersion`.
    pub resource_version: Option<Cow<'a, str>>,
}

impl ObjectRef<'_> {
    /// A copy that outlives the input.
    pub fn into_owned(self) -> ObjectRef<'static> {
        ObjectRef {
            resource: self.resource.map(owned),
            subresource: self.subresource.map(owned),
            namespace: self.namespace.map(owned),
            name: self.name.map(owned),
            uid: self.uid.map(owned),
            api_group: self.api_group.map(owned),
            api_version: self.api_version.map(owned),
            resource_version: self.resource_version.map(owned),
        }
    }
}

/// `responseStatus`: how the API server answered.
#[derive(Debug, Clone, Default)]
pub struct ResponseStatus<'a> {
    /// HTTP status code (GKE's gRPC codes are mapped to HTTP).
    pub code: Option<i64>,
    /// `Success` or `Failure` (when the API server set it).
    pub status: Option<Cow<'a, str>>,
    /// `Forbidden`, `NotFound`, … (machine-readable reason).
    pub reason: Option<Cow<'a, str>>,
    /// Human-readable error message.
    pub message: Option<Cow<'a, str>>,
}

impl ResponseStatus<'_> {
    /// A copy that outlives the input.
    pub fn into_owned(self) -> ResponseStatus<'static> {
        ResponseStatus {
            code: self.code,
            status: self.status.map(owned),
            reason: self.reason.map(owned),
            message: self.message.map(owned),
        }
    }
}

/// One Kubernetes audit event, normalised from any supported source.
///
/// Strings borrow the input document where it had no escapes; `requestObject`, `responseObject`
/// and `user.extra` stay raw JSON until a rule reads them (parsed once, then cached), so events no
/// rule looks into cost no more than their metadata. Use [`AuditEvent::into_owned`] to keep an
/// event beyond the input buffer. Build events in code with `AuditEvent::default()` and the
/// public fields.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent<'a> {
    /// Which source the event came from (`source.format`).
    pub format: SourceFormat,
    /// `audit.k8s.io/v1` or `audit.k8s.io/v1beta1` (missing in some exports).
    pub api_version: Option<Cow<'a, str>>,
    /// `None`, `Metadata`, `Request` or `RequestResponse`.
    pub level: Option<Cow<'a, str>>,
    /// `auditID` (GKE: insertId or operation.id; Azure Activity: correlationId).
    pub audit_id: Option<Cow<'a, str>>,
    /// `RequestReceived`, `ResponseStarted`, `ResponseComplete` or `Panic`; sources without
    /// stages report `ResponseComplete`.
    pub stage: Option<Cow<'a, str>>,
    /// `requestURI` (synthesised from the object reference for GKE and Azure Activity).
    pub request_uri: Option<Cow<'a, str>>,
    /// Lowercase Kubernetes verb (`create`, `get`, `list`, `watch`, …).
    pub verb: Option<Cow<'a, str>>,
    /// The authenticated user.
    pub user: UserInfo<'a>,
    /// The user impersonated through `Impersonate-User`, if any.
    pub impersonated_user: Option<UserInfo<'a>>,
    /// `sourceIPs`: the client first, then proxies.
    pub source_ips: Vec<Cow<'a, str>>,
    /// `userAgent`.
    pub user_agent: Option<Cow<'a, str>>,
    /// `objectRef` (all parts missing for non-resource requests).
    pub object_ref: ObjectRef<'a>,
    /// `responseStatus`.
    pub response_status: ResponseStatus<'a>,
    /// `requestObject` (levels Request and RequestResponse), parsed on first use.
    pub request_object: LazyJson<'a>,
    /// `responseObject` (level RequestResponse), parsed on first use.
    pub response_object: LazyJson<'a>,
    /// `annotations` (`authorization.k8s.io/decision`, …), parsed on first use.
    pub annotations: Annotations<'a>,
    /// `requestReceivedTimestamp` (v1beta1: `timestamp` or `metadata.creationTimestamp`).
    pub request_received_timestamp: Option<Cow<'a, str>>,
    /// `stageTimestamp`.
    pub stage_timestamp: Option<Cow<'a, str>>,
    /// The export's own timestamp (CloudWatch, Cloud Logging, Azure), the fallback event time.
    pub export_timestamp: Option<Cow<'a, str>>,
    /// Cluster name when the export carries one.
    pub cluster: Option<Cow<'a, str>>,
    /// Event time in ns since the Unix epoch, computed by [`AuditEvent::finish`].
    pub time_nanos: i64,
    /// `annotations` as a JSON object, built only when a rule reads the whole map.
    annotations_json: OnceCell<serde_json::Value>,
}

fn owned(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

impl<'a> AuditEvent<'a> {
    /// A copy that outlives the input buffer (to queue or keep events).
    pub fn into_owned(self) -> AuditEvent<'static> {
        AuditEvent {
            format: self.format,
            api_version: self.api_version.map(owned),
            level: self.level.map(owned),
            audit_id: self.audit_id.map(owned),
            stage: self.stage.map(owned),
            request_uri: self.request_uri.map(owned),
            verb: self.verb.map(owned),
            user: self.user.into_owned(),
            impersonated_user: self.impersonated_user.map(UserInfo::into_owned),
            source_ips: self.source_ips.into_iter().map(owned).collect(),
            user_agent: self.user_agent.map(owned),
            object_ref: self.object_ref.into_owned(),
            response_status: self.response_status.into_owned(),
            request_object: self.request_object.into_owned(),
            response_object: self.response_object.into_owned(),
            annotations: self.annotations.into_owned(),
            request_received_timestamp: self.request_received_timestamp.map(owned),
            stage_timestamp: self.stage_timestamp.map(owned),
            export_timestamp: self.export_timestamp.map(owned),
            cluster: self.cluster.map(owned),
            time_nanos: self.time_nanos,
            annotations_json: self.annotations_json,
        }
    }

    /// Recomputes derived values after the public fields were set: the event time (stage
    /// timestamp, else request-received, else the export's timestamp; 0 if none parse).
    pub fn finish(&mut self) {
        self.time_nanos = [
            &self.stage_timestamp,
            &self.request_received_timestamp,
            &self.export_timestamp,
        ]
        .into_iter()
        .flatten()
        .find_map(|t| time::parse_timestamp_nanos(t))
        .unwrap_or(0);
    }

    /// The value of annotation `key`.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key)
    }

    /// `object`: the request object if present, else the response object.
    pub fn object(&self) -> Option<&serde_json::Value> {
        if self.request_object.is_present() {
            self.request_object.value()
        } else {
            self.response_object.value()
        }
    }

    /// `pod.spec`: the pod template inside `object` whatever the workload kind (Pod, Deployment,
    /// ReplicaSet, StatefulSet, DaemonSet, Job, ReplicationController, CronJob). The kind comes
    /// from the object, else from `objectRef.resource`. Events whose `objectRef` names another
    /// resource or a subresource (`pods/status`, `deployments/scale`) have none.
    pub fn pod_spec(&self) -> Option<&serde_json::Value> {
        // Most events with objects are not about workloads (leases, configmaps, status
        // patches): decide from objectRef before parsing anything. `ephemeralcontainers` updates
        // carry the whole Pod (debug containers are containers too).
        if let Some(resource) = self.object_ref.resource.as_deref() {
            let workload = matches!(
                resource,
                "pods"
                    | "deployments"
                    | "replicasets"
                    | "statefulsets"
                    | "daemonsets"
                    | "jobs"
                    | "cronjobs"
                    | "replicationcontrollers"
            );
            let whole_object = match self.object_ref.subresource.as_deref() {
                None | Some("ephemeralcontainers") => true,
                Some(_) => false,
            };
            if !workload || !whole_object {
                return None;
            }
        }
        let object = self.object()?;
        let kind = object.get("kind").and_then(|k| k.as_str());
        let workload = match kind {
            Some("Pod") => Workload::Pod,
            Some(
                "Deployment"
                | "ReplicaSet"
                | "StatefulSet"
                | "DaemonSet"
                | "Job"
                | "ReplicationController",
            ) => Workload::Template,
            Some("CronJob") => Workload::CronJob,
            Some(_) => return None,
            None => match self.object_ref.resource.as_deref() {
                Some("pods") if self.object_ref.subresource.is_none() => Workload::Pod,
                Some(
                    "deployments"
                    | "replicasets"
                    | "statefulsets"
                    | "daemonsets"
                    | "jobs"
                    | "replicationcontrollers",
                ) => Workload::Template,
                Some("cronjobs") => Workload::CronJob,
                _ => return None,
            },
        };
        let spec = object.get("spec")?;
        let spec = match workload {
            Workload::Pod => spec,
            Workload::Template => spec.get("template")?.get("spec")?,
            Workload::CronJob => spec
                .get("jobTemplate")?
                .get("spec")?
                .get("template")?
                .get("spec")?,
        };
        spec.is_object().then_some(spec)
    }

    /// `pod.containers`: containers, initContainers and ephemeralContainers of `pod.spec`.
    pub fn pod_containers(&self) -> impl Iterator<Item = &serde_json::Value> {
        let spec = self.pod_spec();
        ["containers", "initContainers", "ephemeralContainers"]
            .into_iter()
            .filter_map(move |k| spec.and_then(|s| s.get(k)).and_then(|c| c.as_array()))
            .flatten()
    }

    /// `user.serviceaccount.namespace` and `.name` from `system:serviceaccount:<ns>:<name>`.
    pub fn service_account(&self) -> Option<(&str, &str)> {
        let rest = self
            .user
            .username
            .as_deref()?
            .strip_prefix("system:serviceaccount:")?;
        let (ns, name) = rest.split_once(':')?;
        (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
    }

    fn annotations_json(&self) -> &serde_json::Value {
        self.annotations_json.get_or_init(|| {
            serde_json::Value::Object(
                self.annotations
                    .pairs()
                    .iter()
                    .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
                    .collect(),
            )
        })
    }
}

enum Workload {
    Pod,
    Template,
    CronJob,
}
