//! Rule field paths for audit events: compiled once into [`AuditField`], read by
//! `impl Event for AuditEvent` without allocating for scalar fields.

use super::AuditEvent;
use crate::event::{Event, EventSchema};
use crate::path::{JsonPath, Step};
use crate::value::Val;

/// The schema rules with `source: audit` are compiled against.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditSchema;

/// A compiled audit field path. JSON paths below `requestObject`, `responseObject`, `object`,
/// `pod.*`, `user.extra` and `annotations` are parsed once here.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditField {
    ApiVersion,
    Kind,
    Level,
    AuditId,
    Stage,
    RequestUri,
    Verb,
    /// The whole `user` is not a field; these are its parts.
    UserName,
    UserUid,
    UserGroups,
    UserExtra(JsonPath),
    ImpersonatedUserName,
    ImpersonatedUserUid,
    ImpersonatedUserGroups,
    SourceIps,
    /// `sourceIPs[N]`.
    SourceIp(usize),
    UserAgent,
    ObjectResource,
    ObjectSubresource,
    ObjectNamespace,
    ObjectName,
    ObjectUid,
    ObjectApiGroup,
    ObjectApiVersion,
    ObjectResourceVersion,
    ResponseCode,
    ResponseStatus,
    ResponseReason,
    ResponseMessage,
    RequestObject(JsonPath),
    ResponseObject(JsonPath),
    Object(JsonPath),
    /// A path below `pod.spec` (`pod.volumes` is `PodSpec("volumes")`).
    PodSpec(JsonPath),
    /// `pod.containers`: a [`Val::List`] of [`Val::Json`] container objects (containers, then
    /// initContainers, then ephemeralContainers). With a path (`pod.containers.image`) the list
    /// holds that path's value in each container that has it; with a leading index
    /// (`pod.containers[0].image`) the one element's value.
    PodContainers(JsonPath),
    /// `pod.image_repositories`: a [`Val::List`] of each container's image without tag and
    /// digest (`docker.io/library/nginx:1.25@sha256:…` → `docker.io/library/nginx`), so rarity
    /// rules learn repositories rather than every new tag.
    PodImageRepositories,
    /// `annotations` (the whole map) or `annotations["key"]`.
    Annotations(JsonPath),
    RequestReceivedTimestamp,
    StageTimestamp,
    SourceFormat,
    Cluster,
    ServiceAccountNamespace,
    ServiceAccountName,
    IsServiceAccount,
}

/// Roots `compile_field` accepts, listed in its error message.
const KNOWN_ROOTS: &str = "apiVersion, kind, level, auditID, stage, requestURI, verb, \
user.username, user.uid, user.groups, user.extra.<key>, user.serviceaccount.namespace, \
user.serviceaccount.name, user.is_serviceaccount, impersonatedUser.username, \
impersonatedUser.uid, impersonatedUser.groups, sourceIPs, userAgent, objectRef.resource, \
objectRef.subresource, objectRef.namespace, objectRef.name, objectRef.uid, objectRef.apiGroup, \
objectRef.apiVersion, objectRef.resourceVersion, responseStatus.code, responseStatus.status, \
responseStatus.reason, responseStatus.message, requestObject.<path>, responseObject.<path>, \
object.<path>, pod.spec.<path>, pod.containers, pod.image_repositories, \
pod.<path below pod.spec>, annotations[\"<key>\"], \
requestReceivedTimestamp, stageTimestamp, source.format, cluster";

/// Splits `root.rest` / `root[...]` / `root`; returns the JSON path after `root` when `path`
/// starts with it.
fn below(path: &str, root: &str) -> Option<Result<JsonPath, String>> {
    let rest = path.strip_prefix(root)?;
    let rest = if rest.is_empty() {
        ""
    } else if let Some(r) = rest.strip_prefix('.') {
        r
    } else if rest.starts_with('[') {
        rest
    } else {
        return None;
    };
    Some(JsonPath::parse(rest).map_err(|e| e.to_string()))
}

impl EventSchema for AuditSchema {
    type Field = AuditField;
    const SOURCE: &'static str = "audit";
    const INDEX_DIMENSIONS: &'static [&'static str] = &["verb", "resource", "stage"];

    fn compile_field(path: &str) -> Result<AuditField, String> {
        use AuditField as F;
        let simple = match path {
            "apiVersion" => Some(F::ApiVersion),
            "kind" => Some(F::Kind),
            "level" => Some(F::Level),
            "auditID" => Some(F::AuditId),
            "stage" => Some(F::Stage),
            "requestURI" => Some(F::RequestUri),
            "verb" => Some(F::Verb),
            "user.username" => Some(F::UserName),
            "user.uid" => Some(F::UserUid),
            "user.groups" => Some(F::UserGroups),
            "user.serviceaccount.namespace" => Some(F::ServiceAccountNamespace),
            "user.serviceaccount.name" => Some(F::ServiceAccountName),
            "user.is_serviceaccount" => Some(F::IsServiceAccount),
            "impersonatedUser.username" => Some(F::ImpersonatedUserName),
            "impersonatedUser.uid" => Some(F::ImpersonatedUserUid),
            "impersonatedUser.groups" => Some(F::ImpersonatedUserGroups),
            "sourceIPs" => Some(F::SourceIps),
            "userAgent" => Some(F::UserAgent),
            "objectRef.resource" => Some(F::ObjectResource),
            "objectRef.subresource" => Some(F::ObjectSubresource),
            "objectRef.namespace" => Some(F::ObjectNamespace),
            "objectRef.name" => Some(F::ObjectName),
            "objectRef.uid" => Some(F::ObjectUid),
            "objectRef.apiGroup" => Some(F::ObjectApiGroup),
            "objectRef.apiVersion" => Some(F::ObjectApiVersion),
            "objectRef.resourceVersion" => Some(F::ObjectResourceVersion),
            "responseStatus.code" => Some(F::ResponseCode),
            "responseStatus.status" => Some(F::ResponseStatus),
            "responseStatus.reason" => Some(F::ResponseReason),
            "responseStatus.message" => Some(F::ResponseMessage),
            "requestReceivedTimestamp" => Some(F::RequestReceivedTimestamp),
            "stageTimestamp" => Some(F::StageTimestamp),
            "source.format" => Some(F::SourceFormat),
            "cluster" => Some(F::Cluster),
            "pod.image_repositories" => Some(F::PodImageRepositories),
            _ => None,
        };
        if let Some(f) = simple {
            return Ok(f);
        }
        if let Some(rest) = path.strip_prefix("sourceIPs")
            && let Ok(p) = JsonPath::parse(rest)
            && let [Step::Index(i)] = p.steps()
        {
            return Ok(F::SourceIp(*i));
        }
        type Ctor = fn(JsonPath) -> AuditField;
        let json_roots: [(&str, Ctor); 7] = [
            ("requestObject", F::RequestObject),
            ("responseObject", F::ResponseObject),
            ("object", F::Object),
            ("pod.spec", F::PodSpec),
            ("pod.containers", F::PodContainers),
            ("user.extra", F::UserExtra),
            ("annotations", F::Annotations),
        ];
        for (root, ctor) in json_roots {
            if let Some(parsed) = below(path, root) {
                let p = parsed.map_err(|e| format!("field {path:?}: {e}"))?;
                if root == "annotations"
                    && (p.steps().len() > 1 || matches!(p.steps().first(), Some(Step::Index(_))))
                {
                    return Err(format!(
                        "field {path:?}: annotations take one key, e.g. annotations[\"authorization.k8s.io/decision\"]"
                    ));
                }
                return Ok(ctor(p));
            }
        }
        if let Some(parsed) = below(path, "pod") {
            let p = parsed.map_err(|e| format!("field {path:?}: {e}"))?;
            if !p.is_root() && matches!(p.steps().first(), Some(Step::Key(_))) {
                return Ok(F::PodSpec(p));
            }
        }
        Err(format!(
            "unknown audit field {path:?}; known fields: {KNOWN_ROOTS}"
        ))
    }

    fn default_subject_field() -> &'static str {
        "user.username"
    }

    fn default_resource_field() -> &'static str {
        "objectRef.name"
    }
}

fn opt<'a>(s: &'a Option<std::borrow::Cow<'_, str>>) -> Val<'a> {
    match s {
        Some(s) => Val::Str(s),
        None => Val::Missing,
    }
}

fn list<'a>(items: &'a [std::borrow::Cow<'_, str>]) -> Val<'a> {
    Val::List(items.iter().map(|s| Val::Str(s)).collect())
}

fn json_at<'a>(root: Option<&'a serde_json::Value>, path: &JsonPath) -> Val<'a> {
    match root {
        Some(r) => path.lookup(r),
        None => Val::Missing,
    }
}

impl<'e> Event for AuditEvent<'e> {
    type Schema = AuditSchema;

    fn get(&self, field: &AuditField) -> Val<'_> {
        use AuditField as F;
        match field {
            F::ApiVersion => opt(&self.api_version),
            F::Kind => Val::Str("Event"),
            F::Level => opt(&self.level),
            F::AuditId => opt(&self.audit_id),
            F::Stage => opt(&self.stage),
            F::RequestUri => opt(&self.request_uri),
            F::Verb => opt(&self.verb),
            F::UserName => opt(&self.user.username),
            F::UserUid => opt(&self.user.uid),
            F::UserGroups => {
                if self.user.groups.is_empty() {
                    Val::Missing
                } else {
                    list(&self.user.groups)
                }
            }
            F::UserExtra(p) => json_at(self.user.extra.value(), p),
            F::ImpersonatedUserName => match &self.impersonated_user {
                Some(u) => opt(&u.username),
                None => Val::Missing,
            },
            F::ImpersonatedUserUid => match &self.impersonated_user {
                Some(u) => opt(&u.uid),
                None => Val::Missing,
            },
            F::ImpersonatedUserGroups => match &self.impersonated_user {
                Some(u) if !u.groups.is_empty() => list(&u.groups),
                _ => Val::Missing,
            },
            F::SourceIps => {
                if self.source_ips.is_empty() {
                    Val::Missing
                } else {
                    list(&self.source_ips)
                }
            }
            F::SourceIp(i) => match self.source_ips.get(*i) {
                Some(s) => Val::Str(s),
                None => Val::Missing,
            },
            F::UserAgent => opt(&self.user_agent),
            F::ObjectResource => opt(&self.object_ref.resource),
            F::ObjectSubresource => opt(&self.object_ref.subresource),
            F::ObjectNamespace => opt(&self.object_ref.namespace),
            F::ObjectName => opt(&self.object_ref.name),
            F::ObjectUid => opt(&self.object_ref.uid),
            F::ObjectApiGroup => opt(&self.object_ref.api_group),
            F::ObjectApiVersion => opt(&self.object_ref.api_version),
            F::ObjectResourceVersion => opt(&self.object_ref.resource_version),
            F::ResponseCode => match self.response_status.code {
                Some(c) => Val::Int(c),
                None => Val::Missing,
            },
            F::ResponseStatus => opt(&self.response_status.status),
            F::ResponseReason => opt(&self.response_status.reason),
            F::ResponseMessage => opt(&self.response_status.message),
            F::RequestObject(p) => json_at(self.request_object.value(), p),
            F::ResponseObject(p) => json_at(self.response_object.value(), p),
            F::Object(p) => json_at(self.object(), p),
            F::PodSpec(p) => json_at(self.pod_spec(), p),
            F::PodContainers(p) => self.containers_field(p),
            F::PodImageRepositories => {
                if self.pod_spec().is_none() {
                    return Val::Missing;
                }
                Val::List(
                    self.pod_containers()
                        .filter_map(|c| c.get("image").and_then(|i| i.as_str()))
                        .map(|i| Val::Str(image_repository(i)))
                        .collect(),
                )
            }
            F::Annotations(p) => match p.steps().first() {
                None if self.annotations.is_empty() => Val::Missing,
                None => Val::Json(self.annotations_json()),
                Some(crate::path::Step::Key(k)) => match self.annotation(k) {
                    Some(v) => Val::Str(v),
                    None => Val::Missing,
                },
                Some(crate::path::Step::Index(_)) => Val::Missing,
            },
            F::RequestReceivedTimestamp => opt(&self.request_received_timestamp),
            F::StageTimestamp => opt(&self.stage_timestamp),
            F::SourceFormat => Val::Str(self.format.as_str()),
            F::Cluster => opt(&self.cluster),
            F::ServiceAccountNamespace => match self.service_account() {
                Some((ns, _)) => Val::Str(ns),
                None => Val::Missing,
            },
            F::ServiceAccountName => match self.service_account() {
                Some((_, name)) => Val::Str(name),
                None => Val::Missing,
            },
            F::IsServiceAccount => Val::Bool(self.service_account().is_some()),
        }
    }

    fn index_value(&self, dimension: usize) -> Option<&str> {
        match dimension {
            0 => self.verb.as_deref(),
            1 => self.object_ref.resource.as_deref(),
            2 => self.stage.as_deref(),
            _ => None,
        }
    }

    fn time_nanos(&self) -> i64 {
        self.time_nanos
    }

    fn event_id(&self) -> &str {
        self.audit_id.as_deref().unwrap_or("")
    }
}

impl AuditEvent<'_> {
    fn containers_field(&self, path: &JsonPath) -> Val<'_> {
        if self.pod_spec().is_none() {
            return Val::Missing;
        }
        match path.steps().first() {
            None => Val::List(self.pod_containers().map(Val::Json).collect()),
            Some(Step::Index(i)) => match self.pod_containers().nth(*i) {
                Some(c) => match lookup_steps(&path.steps()[1..], c) {
                    Some(v) => Val::from_json(v),
                    None => Val::Missing,
                },
                None => Val::Missing,
            },
            Some(Step::Key(_)) => Val::List(
                self.pod_containers()
                    .map(|c| path.lookup(c))
                    .filter(Val::exists)
                    .collect(),
            ),
        }
    }
}

/// `JsonPath::lookup_json` over a slice of steps (the rest of a path after a leading index).
fn lookup_steps<'a>(steps: &[Step], root: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
    let mut node = root;
    for step in steps {
        node = match (step, node) {
            (Step::Key(k), serde_json::Value::Object(map)) => map.get(k)?,
            (Step::Index(i), serde_json::Value::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

/// An image reference without its digest and tag; a registry port (`host:5000/app`) is kept.
pub(crate) fn image_repository(image: &str) -> &str {
    let image = image.split_once('@').map_or(image, |(name, _)| name);
    let last_slash = image.rfind('/').map_or(0, |p| p + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => &image[..last_slash + colon],
        None => image,
    }
}

#[cfg(test)]
mod tests {
    use super::image_repository;

    #[test]
    fn image_repositories_drop_tag_and_digest_but_keep_ports() {
        for (image, repo) in [
            ("nginx", "nginx"),
            ("nginx:1.25", "nginx"),
            (
                "docker.io/library/nginx:1.25@sha256:0123abcd",
                "docker.io/library/nginx",
            ),
            (
                "registry.example.com:5000/team/app",
                "registry.example.com:5000/team/app",
            ),
            (
                "registry.example.com:5000/team/app:v2",
                "registry.example.com:5000/team/app",
            ),
            ("ghcr.io/org/tool@sha256:ffff", "ghcr.io/org/tool"),
            ("", ""),
        ] {
            assert_eq!(image_repository(image), repo, "{image}");
        }
    }
}
