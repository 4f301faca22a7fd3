//! Cloud export shapes that are not native events inside a wrapper: GKE Cloud Logging
//! `AuditLog` entries, AKS resource-specific table rows (`AKSAudit`, `AKSAuditAdmin`) and Azure
//! Activity log records for Arc-connected and AKS clusters.

use super::de::{Pairs, S, StrList, cow};
use super::parse::{
    Ctx, ParseError, ParseStats, RawObjectRef, RawStatus, RawUser, Sink, check_depth, emit, lower,
    object_ref, present, response_status, user_info,
};
use super::{
    Annotations, AuditEvent, LazyJson, ObjectRef, RawJson, ResponseStatus, SourceFormat, UserInfo,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The parts of a Cloud Logging `LogEntry` that matter for a GKE audit entry.
pub(crate) struct GkeEntry<'a> {
    pub payload: &'a RawValue,
    pub resource: Option<&'a RawValue>,
    pub insert_id: Option<Cow<'a, str>>,
    pub labels: Option<&'a RawValue>,
    pub operation: Option<&'a RawValue>,
    pub timestamp: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct GkePayload<'a> {
    #[serde(borrow, rename = "methodName")]
    method_name: Option<S<'a>>,
    #[serde(borrow, rename = "resourceName")]
    resource_name: Option<S<'a>>,
    #[serde(borrow, rename = "serviceName")]
    service_name: Option<S<'a>>,
    #[serde(borrow, rename = "authenticationInfo")]
    authn: Option<GkeAuthn<'a>>,
    #[serde(borrow, rename = "requestMetadata")]
    request_metadata: Option<GkeRequestMeta<'a>>,
    #[serde(borrow)]
    status: Option<GkeStatus<'a>>,
    #[serde(borrow)]
    request: Option<&'a RawValue>,
    #[serde(borrow)]
    response: Option<&'a RawValue>,
    #[serde(borrow, rename = "authorizationInfo")]
    authz: Option<Vec<GkeAuthz<'a>>>,
    #[serde(borrow)]
    timestamp: Option<S<'a>>,
}

#[derive(Deserialize)]
struct GkeAuthn<'a> {
    #[serde(borrow, rename = "principalEmail")]
    principal_email: Option<S<'a>>,
    #[serde(borrow, rename = "principalSubject")]
    principal_subject: Option<S<'a>>,
    /// Set alone (no principal) on some re-exported anonymous requests.
    #[serde(borrow, rename = "authoritySelector")]
    authority_selector: Option<S<'a>>,
}

#[derive(Deserialize)]
struct GkeRequestMeta<'a> {
    #[serde(borrow, rename = "callerIp")]
    caller_ip: Option<S<'a>>,
    /// Some re-exports spell it `callerIP`.
    #[serde(borrow, rename = "callerIP")]
    caller_ip_upper: Option<S<'a>>,
    #[serde(borrow, rename = "callerSuppliedUserAgent")]
    user_agent: Option<S<'a>>,
}

#[derive(Deserialize)]
struct GkeStatus<'a> {
    code: Option<i64>,
    #[serde(borrow)]
    message: Option<S<'a>>,
}

#[derive(Deserialize)]
struct GkeAuthz<'a> {
    granted: Option<bool>,
    #[serde(borrow)]
    resource: Option<S<'a>>,
}

#[derive(Deserialize)]
struct GkeResource<'a> {
    #[serde(borrow)]
    labels: Option<GkeResourceLabels<'a>>,
}

#[derive(Deserialize)]
struct GkeResourceLabels<'a> {
    #[serde(borrow)]
    cluster_name: Option<S<'a>>,
}

#[derive(Deserialize)]
struct GkeOperation<'a> {
    #[serde(borrow)]
    id: Option<S<'a>>,
}

/// `io.k8s.core.v1.pods.exec.create` split into its parts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Method {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: Option<String>,
    pub verb: String,
}

fn is_version(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('v') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    let rest = &rest[digits..];
    rest.is_empty()
        || ["alpha", "beta"].iter().any(|p| {
            rest.strip_prefix(p)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// API groups whose GKE method prefix is `io.k8s.<group>` and whose name has no domain.
const LEGACY_GROUPS: &[&str] = &["apps", "batch", "autoscaling", "policy", "extensions"];

/// Parses a GKE `methodName`; `None` for non-resource methods (`io.k8s.readyz`).
pub(crate) fn parse_method(method: &str) -> Option<Method> {
    let segs: Vec<&str> = method.split('.').collect();
    let vi = segs.iter().position(|s| is_version(s))?;
    if vi == 0 || segs.len() < vi + 3 {
        return None;
    }
    let group_segs = &segs[..vi];
    let group = if group_segs.len() >= 2 && group_segs[0] == "io" && group_segs[1] == "k8s" {
        let g = &group_segs[2..];
        match g {
            [] | ["core"] => String::new(),
            [one] if LEGACY_GROUPS.contains(one) => (*one).to_string(),
            _ => {
                let mut parts: Vec<&str> = g.iter().rev().copied().collect();
                parts.push("k8s");
                parts.push("io");
                parts.join(".")
            }
        }
    } else {
        group_segs
            .iter()
            .rev()
            .copied()
            .collect::<Vec<_>>()
            .join(".")
    };
    let rest = &segs[vi + 1..];
    Some(Method {
        group,
        version: segs[vi].to_string(),
        resource: rest[0].to_string(),
        subresource: (rest.len() > 2).then(|| rest[1..rest.len() - 1].join(".")),
        verb: rest[rest.len() - 1].to_ascii_lowercase(),
    })
}

/// `core/v1/namespaces/ns/pods/name/exec` split into its parts.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ResourceName {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Parses a GKE `resourceName`; `method_resource` disambiguates `namespaces/<name>/<sub>`.
pub(crate) fn parse_resource_name(rn: &str, method_resource: Option<&str>) -> Option<ResourceName> {
    if rn.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = rn.split('/').collect();
    if parts.len() < 3 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let group = if parts[0] == "core" { "" } else { parts[0] };
    let rest = &parts[2..];
    let owned = |s: Option<&&str>| s.map(|s| (*s).to_string());
    let mut out = ResourceName {
        group: group.to_string(),
        version: parts[1].to_string(),
        ..ResourceName::default()
    };
    if rest[0] == "namespaces" && rest.len() >= 3 && method_resource != Some("namespaces") {
        out.namespace = Some(rest[1].to_string());
        out.resource = rest[2].to_string();
        out.name = owned(rest.get(3));
        out.subresource = owned(rest.get(4));
    } else {
        out.resource = rest[0].to_string();
        out.name = owned(rest.get(1));
        out.subresource = owned(rest.get(2));
        if out.resource == "namespaces" {
            out.namespace = out.name.clone();
        }
    }
    Some(out)
}

/// HTTP status for a gRPC status code as Cloud Logging reports the API server's answer.
pub(crate) fn grpc_to_http(code: i64, verb: &str) -> i64 {
    match code {
        0 if verb == "create" => 201,
        0 => 200,
        3 => 400,
        5 => 404,
        6 => 409,
        7 => 403,
        16 => 401,
        _ => 500,
    }
}

/// A GKE `AuditLog` entry as an audit event: verb, group, version, resource and subresource
/// from `methodName`; namespace and name from `resourceName`; the principal as the user;
/// `status.code` (gRPC) mapped to HTTP; `request`/`response` as the request/response objects;
/// the entry's `authorization.k8s.io/*` labels as annotations.
pub(crate) fn gke_event(entry: GkeEntry<'_>) -> Result<AuditEvent<'_>, ParseError> {
    let bytes = entry.payload.get().as_bytes();
    let p: GkePayload<'_> = serde_json::from_str(entry.payload.get())
        .map_err(|e| ParseError::from_json_pub(e, bytes))?;
    let method = cow(p.method_name)
        .ok_or_else(|| ParseError::InvalidEvent("GKE audit entry without methodName".into()))?;
    match p.service_name.as_ref().map(|s| s.0.as_ref()) {
        Some("k8s.io") => {}
        Some(other) => return Err(ParseError::NotKubernetes(format!("service {other}"))),
        None if method.starts_with("io.k8s.") => {}
        None => return Err(ParseError::NotKubernetes(format!("method {method}"))),
    }
    let parsed = parse_method(&method);
    let authz_resource = p
        .authz
        .as_ref()
        .and_then(|a| a.iter().find_map(|z| z.resource.as_ref()))
        .map(|s| s.0.clone());
    let resource_name = cow(p.resource_name).or(authz_resource);
    let rn = resource_name
        .as_deref()
        .and_then(|r| parse_resource_name(r, parsed.as_ref().map(|m| m.resource.as_str())));

    let verb = match &parsed {
        Some(m) => m.verb.clone(),
        None => "get".to_string(),
    };
    let mut event = AuditEvent {
        format: SourceFormat::Gke,
        verb: Some(Cow::Owned(verb.clone())),
        ..AuditEvent::default()
    };
    match (&parsed, &rn) {
        (_, Some(rn)) => {
            event.object_ref = ObjectRef {
                resource: Some(Cow::Owned(rn.resource.clone())),
                subresource: rn
                    .subresource
                    .clone()
                    .or_else(|| parsed.as_ref().and_then(|m| m.subresource.clone()))
                    .map(Cow::Owned),
                namespace: rn.namespace.clone().map(Cow::Owned),
                name: rn.name.clone().map(Cow::Owned),
                api_group: Some(Cow::Owned(rn.group.clone())),
                api_version: Some(Cow::Owned(rn.version.clone())),
                ..ObjectRef::default()
            };
        }
        (Some(m), None) => {
            event.object_ref = ObjectRef {
                resource: Some(Cow::Owned(m.resource.clone())),
                subresource: m.subresource.clone().map(Cow::Owned),
                api_group: Some(Cow::Owned(m.group.clone())),
                api_version: Some(Cow::Owned(m.version.clone())),
                ..ObjectRef::default()
            };
        }
        (None, None) => {
            // A non-resource request (`io.k8s.readyz`): the path is the resource name.
            let path = match resource_name.as_deref() {
                Some(r) if r.starts_with('/') => r.to_string(),
                _ => format!(
                    "/{}",
                    method
                        .strip_prefix("io.k8s.")
                        .unwrap_or(&method)
                        .replace('.', "/")
                ),
            };
            event.request_uri = Some(Cow::Owned(path));
        }
    }
    if event.request_uri.is_none() {
        event.request_uri = Some(Cow::Owned(request_uri(&event.object_ref)));
    }
    if let Some(a) = p.authn {
        event.user = UserInfo {
            username: cow(a.principal_email)
                .or(cow(a.principal_subject))
                .or(cow(a.authority_selector).filter(|s| s.starts_with("system:"))),
            ..UserInfo::default()
        };
    }
    if let Some(m) = p.request_metadata {
        event.source_ips = cow(m.caller_ip)
            .or(cow(m.caller_ip_upper))
            .into_iter()
            .collect();
        event.user_agent = cow(m.user_agent);
    }
    let (code, message) = match p.status {
        Some(s) => (s.code.unwrap_or(0), cow(s.message)),
        None => (0, None),
    };
    let http = grpc_to_http(code, &verb);
    event.response_status = ResponseStatus {
        code: Some(http),
        status: Some(Cow::Borrowed(if http < 400 {
            "Success"
        } else {
            "Failure"
        })),
        reason: None,
        message: message.filter(|m| !m.is_empty()),
    };
    let request = present(p.request);
    let response = present(p.response);
    check_depth(request)?;
    check_depth(response)?;
    event.level = Some(Cow::Borrowed(if response.is_some() {
        "RequestResponse"
    } else if request.is_some() {
        "Request"
    } else {
        "Metadata"
    }));
    event.request_object = LazyJson::new(request.map(RawJson::Borrowed));
    event.response_object = LazyJson::new(response.map(RawJson::Borrowed));
    if let Some(labels) = present(entry.labels)
        && let Ok(pairs) = serde_json::from_str::<Pairs<'_>>(labels.get())
    {
        event.annotations = Annotations::from_pairs(pairs.0);
    }
    if event.annotation("authorization.k8s.io/decision").is_none()
        && let Some(granted) = p
            .authz
            .as_ref()
            .and_then(|a| a.iter().find_map(|z| z.granted))
    {
        event.annotations.push(
            Cow::Borrowed("authorization.k8s.io/decision"),
            Cow::Borrowed(if granted { "allow" } else { "forbid" }),
        );
    }
    event.audit_id = entry.insert_id.or_else(|| {
        present(entry.operation)
            .and_then(|o| serde_json::from_str::<GkeOperation<'_>>(o.get()).ok())
            .and_then(|o| cow(o.id))
    });
    event.cluster = present(entry.resource)
        .and_then(|r| serde_json::from_str::<GkeResource<'_>>(r.get()).ok())
        .and_then(|r| r.labels)
        .and_then(|l| cow(l.cluster_name));
    event.export_timestamp = present(entry.timestamp)
        .and_then(|t| serde_json::from_str::<S<'_>>(t.get()).ok())
        .map(|s| s.0)
        .or(cow(p.timestamp));
    Ok(event)
}

/// The request path kube-apiserver would have logged for `objectRef`.
fn request_uri(o: &ObjectRef<'_>) -> String {
    let mut uri = match o.api_group.as_deref() {
        None | Some("") => "/api".to_string(),
        Some(g) => format!("/apis/{g}"),
    };
    uri.push('/');
    uri.push_str(o.api_version.as_deref().unwrap_or("v1"));
    let resource = o.resource.as_deref().unwrap_or("");
    if let Some(ns) = o.namespace.as_deref()
        && resource != "namespaces"
    {
        uri.push_str("/namespaces/");
        uri.push_str(ns);
    }
    uri.push('/');
    uri.push_str(resource);
    if let Some(name) = o.name.as_deref() {
        uri.push('/');
        uri.push_str(name);
        if let Some(sub) = o.subresource.as_deref() {
            uri.push('/');
            uri.push_str(sub);
        }
    }
    uri
}

/// The cluster name in an Azure resource id (`…/managedClusters/<name>` or
/// `…/connectedClusters/<name>`, any case).
pub(crate) fn azure_cluster(resource_id: &str) -> Option<&str> {
    let mut parts = resource_id.split('/');
    while let Some(p) = parts.next() {
        if p.eq_ignore_ascii_case("managedClusters") || p.eq_ignore_ascii_case("connectedClusters")
        {
            return parts.next().filter(|n| !n.is_empty());
        }
    }
    None
}

#[derive(Deserialize)]
struct AksProperties<'a> {
    #[serde(borrow)]
    log: Option<&'a RawValue>,
}

/// The native event inside an AKS diagnostic record's `properties.log` (a JSON string, or an
/// object in some re-exports).
pub(crate) fn aks_properties_log(raw: &RawValue) -> Result<Option<Cow<'_, str>>, ParseError> {
    let props: AksProperties<'_> = serde_json::from_str(raw.get())
        .map_err(|e| ParseError::InvalidEvent(format!("AKS properties: {e}")))?;
    let Some(log) = present(props.log) else {
        return Ok(None);
    };
    if log.get().starts_with('"') {
        let s: S<'_> = serde_json::from_str(log.get())
            .map_err(|e| ParseError::InvalidEvent(format!("AKS properties.log: {e}")))?;
        Ok(Some(s.0))
    } else {
        Ok(Some(Cow::Borrowed(log.get())))
    }
}

#[derive(Deserialize)]
struct AksRow<'a> {
    #[serde(borrow, rename = "Type")]
    table_type: Option<S<'a>>,
    #[serde(borrow, rename = "Verb")]
    verb: Option<S<'a>>,
    #[serde(borrow, rename = "RequestUri")]
    request_uri: Option<S<'a>>,
    #[serde(borrow, rename = "User")]
    user: Option<&'a RawValue>,
    #[serde(borrow, rename = "ImpersonatedUser")]
    impersonated_user: Option<&'a RawValue>,
    #[serde(borrow, rename = "SourceIps")]
    source_ips: Option<&'a RawValue>,
    #[serde(borrow, rename = "UserAgent")]
    user_agent: Option<S<'a>>,
    #[serde(borrow, rename = "ObjectRef")]
    object_ref: Option<&'a RawValue>,
    #[serde(borrow, rename = "ResponseStatus")]
    response_status: Option<&'a RawValue>,
    #[serde(borrow, rename = "RequestObject")]
    request_object: Option<&'a RawValue>,
    #[serde(borrow, rename = "ResponseObject")]
    response_object: Option<&'a RawValue>,
    #[serde(borrow, rename = "Annotations")]
    annotations: Option<&'a RawValue>,
    #[serde(borrow, rename = "AuditId")]
    audit_id: Option<S<'a>>,
    #[serde(borrow, rename = "Stage")]
    stage: Option<S<'a>>,
    #[serde(borrow, rename = "Level")]
    level: Option<S<'a>>,
    #[serde(borrow, rename = "StageReceivedTime")]
    stage_received_time: Option<S<'a>>,
    #[serde(borrow, rename = "RequestReceivedTime")]
    request_received_time: Option<S<'a>>,
    #[serde(borrow, rename = "TimeGenerated")]
    time_generated: Option<S<'a>>,
    #[serde(borrow, rename = "_ResourceId")]
    resource_id: Option<S<'a>>,
}

/// A `dynamic` column: JSON as-is, or (in some exports) JSON serialised into a string. AKS
/// writes the string `skipped-too-big-size-object` for objects it dropped: absent.
fn dynamic(raw: Option<&RawValue>) -> Result<Option<Cow<'_, str>>, ParseError> {
    let Some(raw) = present(raw) else {
        return Ok(None);
    };
    let text = raw.get();
    if !text.starts_with('"') {
        return Ok(Some(Cow::Borrowed(text)));
    }
    let s: S<'_> = serde_json::from_str(text)
        .map_err(|e| ParseError::InvalidEvent(format!("dynamic column: {e}")))?;
    let trimmed = s.0.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        Ok(Some(s.0))
    } else {
        Ok(None)
    }
}

fn col<'t, T: Deserialize<'t>>(
    text: &'t Option<Cow<'_, str>>,
    what: &str,
) -> Result<Option<T>, ParseError> {
    match text {
        None => Ok(None),
        Some(t) => serde_json::from_str(t)
            .map(Some)
            .map_err(|e| ParseError::InvalidEvent(format!("{what}: {e}"))),
    }
}

fn raw_column<'t>(
    raw: Option<&'t RawValue>,
    text: &Option<Cow<'t, str>>,
) -> Result<Option<RawJson<'t>>, ParseError> {
    match (raw, text) {
        (_, None) => Ok(None),
        (Some(r), Some(Cow::Borrowed(_))) => Ok(Some(RawJson::Borrowed(r))),
        (_, Some(t)) => RawValue::from_string(t.to_string())
            .map(|r| Some(RawJson::Owned(r)))
            .map_err(|e| ParseError::InvalidEvent(format!("object column: {e}"))),
    }
}

/// One row of the resource-specific `AKSAudit` / `AKSAuditAdmin` tables (Log Analytics
/// exports, data-export rules): PascalCase columns holding the native event's fields.
pub(crate) fn aks_table_row(
    bytes: &[u8],
    ctx: &Ctx<'_>,
    stats: &mut ParseStats,
    sink: &mut Sink<'_>,
) -> Result<(), ParseError> {
    let row: AksRow<'_> =
        serde_json::from_slice(bytes).map_err(|e| ParseError::from_json_pub(e, bytes))?;
    if row
        .table_type
        .as_ref()
        .is_some_and(|t| t.0.eq_ignore_ascii_case("AzureActivity"))
    {
        let r: AzureActivityRow<'_> =
            serde_json::from_slice(bytes).map_err(|e| ParseError::from_json_pub(e, bytes))?;
        let operation_name = cow(r.operation_name_value).ok_or_else(|| {
            ParseError::InvalidEvent("AzureActivity row without OperationNameValue".into())
        })?;
        let event = azure_activity_event(AzureActivity {
            operation_name,
            resource_id: cow(r.resource_id).or(cow(r.resource_id_upper)),
            caller_ip: cow(r.caller_ip_address),
            caller: r.caller,
            result_signature: None,
            result_type: cow(r.activity_status_value),
            time: cow(r.time_generated),
            correlation_id: cow(r.correlation_id),
            category: None,
        })?;
        emit(event, ctx, stats, sink);
        return Ok(());
    }
    if let Some(t) = &row.table_type
        && !t.0.eq_ignore_ascii_case("AKSAudit")
        && !t.0.eq_ignore_ascii_case("AKSAuditAdmin")
    {
        return Err(ParseError::NotKubernetes(format!("table {}", t.0)));
    }
    check_depth(row.request_object)?;
    check_depth(row.response_object)?;
    let user_t = dynamic(row.user)?;
    let imp_t = dynamic(row.impersonated_user)?;
    let ips_t = dynamic(row.source_ips)?;
    let oref_t = dynamic(row.object_ref)?;
    let status_t = dynamic(row.response_status)?;
    let ann_t = dynamic(row.annotations)?;
    let req_t = dynamic(row.request_object)?;
    let resp_t = dynamic(row.response_object)?;
    let user: Option<RawUser<'_>> = col(&user_t, "User")?;
    let imp: Option<RawUser<'_>> = col(&imp_t, "ImpersonatedUser")?;
    let ips: Option<StrList<'_>> = col(&ips_t, "SourceIps")?;
    let oref: Option<RawObjectRef<'_>> = col(&oref_t, "ObjectRef")?;
    let status: Option<RawStatus<'_>> = col(&status_t, "ResponseStatus")?;
    let event = AuditEvent {
        format: SourceFormat::Aks,
        api_version: Some(Cow::Borrowed("audit.k8s.io/v1")),
        level: cow(row.level),
        audit_id: cow(row.audit_id),
        stage: cow(row.stage),
        request_uri: cow(row.request_uri),
        verb: cow(row.verb).map(lower),
        user: user_info(user),
        impersonated_user: imp.map(|u| user_info(Some(u))),
        source_ips: ips.map(|s| s.0).unwrap_or_default(),
        user_agent: cow(row.user_agent),
        object_ref: object_ref(oref),
        response_status: response_status(status),
        request_object: LazyJson::new(raw_column(row.request_object, &req_t)?),
        response_object: LazyJson::new(raw_column(row.response_object, &resp_t)?),
        annotations: Annotations::new(raw_column(row.annotations, &ann_t)?),
        request_received_timestamp: cow(row.request_received_time),
        stage_timestamp: cow(row.stage_received_time),
        export_timestamp: cow(row.time_generated),
        cluster: row
            .resource_id
            .as_ref()
            .and_then(|r| azure_cluster(&r.0))
            .map(|c| Cow::Owned(c.to_string())),
        ..AuditEvent::default()
    };
    emit(event, ctx, stats, sink);
    Ok(())
}

/// A row of Log Analytics' `AzureActivity` table (PascalCase columns).
#[derive(Deserialize)]
struct AzureActivityRow<'a> {
    #[serde(borrow, rename = "OperationNameValue")]
    operation_name_value: Option<S<'a>>,
    #[serde(borrow, rename = "Caller")]
    caller: Option<&'a RawValue>,
    #[serde(borrow, rename = "CallerIpAddress")]
    caller_ip_address: Option<S<'a>>,
    #[serde(borrow, rename = "ActivityStatusValue")]
    activity_status_value: Option<S<'a>>,
    #[serde(borrow, rename = "CorrelationId")]
    correlation_id: Option<S<'a>>,
    #[serde(borrow, rename = "TimeGenerated")]
    time_generated: Option<S<'a>>,
    #[serde(borrow, rename = "_ResourceId")]
    resource_id: Option<S<'a>>,
    #[serde(borrow, rename = "ResourceId")]
    resource_id_upper: Option<S<'a>>,
}

/// The fields of an Azure Activity log record that describe a Kubernetes operation.
pub(crate) struct AzureActivity<'a> {
    pub operation_name: Cow<'a, str>,
    pub resource_id: Option<Cow<'a, str>>,
    pub caller_ip: Option<Cow<'a, str>>,
    pub caller: Option<&'a RawValue>,
    pub result_signature: Option<&'a RawValue>,
    pub result_type: Option<Cow<'a, str>>,
    pub time: Option<Cow<'a, str>>,
    pub correlation_id: Option<Cow<'a, str>>,
    pub category: Option<Cow<'a, str>>,
}

/// An Azure Activity record of a Kubernetes resource operation
/// (`MICROSOFT.KUBERNETES/CONNECTEDCLUSTERS/RBAC.AUTHORIZATION.K8S.IO/ROLEBINDINGS/WRITE`):
/// the group, resource and action give apiGroup, resource and verb. Azure's `write` does not
/// tell create from update; it maps to `create` (the verb rules about new objects watch).
pub(crate) fn azure_activity_event(a: AzureActivity<'_>) -> Result<AuditEvent<'_>, ParseError> {
    let segs: Vec<&str> = a.operation_name.split('/').collect();
    let is_cluster_provider = segs.len() >= 4
        && ((segs[0].eq_ignore_ascii_case("Microsoft.Kubernetes")
            && segs[1].eq_ignore_ascii_case("connectedClusters"))
            || (segs[0].eq_ignore_ascii_case("Microsoft.ContainerService")
                && segs[1].eq_ignore_ascii_case("managedClusters")));
    if !is_cluster_provider {
        return Err(ParseError::NotKubernetes(format!(
            "Azure operation {}",
            a.operation_name
        )));
    }
    let rest = &segs[2..];
    if rest[0].eq_ignore_ascii_case("diagnosticLogs") {
        return Err(ParseError::NotKubernetes(format!(
            "Azure operation {}",
            a.operation_name
        )));
    }
    let action = rest[rest.len() - 1].to_ascii_lowercase();
    let path = &rest[..rest.len() - 1];
    let (group, resource_and_sub) = if path.len() >= 2 && path[0].contains('.') {
        (path[0].to_ascii_lowercase(), &path[1..])
    } else {
        (String::new(), path)
    };
    let resource = resource_and_sub[0].to_ascii_lowercase();
    let subresource = resource_and_sub.get(1).map(|s| s.to_ascii_lowercase());
    let verb = match action.as_str() {
        "write" => "create",
        "delete" => "delete",
        "read" => "get",
        "action" if subresource.is_some() => "create",
        other => other,
    }
    .to_string();
    // Name and namespace from the resource id below the cluster.
    let (mut namespace, mut name) = (None, None);
    if let Some(rid) = a.resource_id.as_deref() {
        let parts: Vec<&str> = rid.split('/').collect();
        if let Some(ci) = parts.iter().position(|p| {
            p.eq_ignore_ascii_case("connectedClusters") || p.eq_ignore_ascii_case("managedClusters")
        }) {
            let mut below: &[&str] = parts.get(ci + 2..).unwrap_or(&[]);
            if below.len() >= 3
                && below[0].eq_ignore_ascii_case("namespaces")
                && resource != "namespaces"
            {
                namespace = Some(below[1].to_string());
                below = &below[2..];
            }
            if below.first().is_some_and(|g| g.contains('.')) {
                below = &below[1..];
            }
            if below.len() >= 2 && below[0].eq_ignore_ascii_case(&resource) {
                name = Some(below[1].to_string());
            }
        }
    }
    let code = a.result_signature.and_then(|r| {
        r.get()
            .trim_matches('"')
            .parse::<i64>()
            .ok()
            .filter(|c| (100..600).contains(c))
    });
    let caller = a
        .caller
        .and_then(|c| serde_json::from_str::<S<'_>>(c.get()).ok())
        .map(|s| s.0);
    let cluster = a
        .resource_id
        .as_deref()
        .and_then(azure_cluster)
        .map(|c| Cow::Owned(c.to_string()));
    let _ = a.category;
    let mut event = AuditEvent {
        format: SourceFormat::AzureActivity,
        level: Some(Cow::Borrowed("Metadata")),
        audit_id: a.correlation_id,
        verb: Some(Cow::Owned(verb)),
        user: UserInfo {
            username: caller,
            ..UserInfo::default()
        },
        source_ips: a.caller_ip.into_iter().collect(),
        object_ref: ObjectRef {
            resource: Some(Cow::Owned(resource)),
            subresource: subresource.map(Cow::Owned),
            namespace: namespace.map(Cow::Owned),
            name: name.map(Cow::Owned),
            api_group: Some(Cow::Owned(group)),
            ..ObjectRef::default()
        },
        response_status: ResponseStatus {
            code,
            status: a.result_type,
            ..ResponseStatus::default()
        },
        export_timestamp: a.time,
        cluster,
        ..AuditEvent::default()
    };
    event.request_uri = Some(Cow::Owned(request_uri(&event.object_ref)));
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gke_methods_split_into_group_version_resource_verb() {
        let m = parse_method("io.k8s.core.v1.pods.exec.create").expect("resource method");
        assert_eq!(
            (
                m.group.as_str(),
                m.version.as_str(),
                m.resource.as_str(),
                m.subresource.as_deref(),
                m.verb.as_str()
            ),
            ("", "v1", "pods", Some("exec"), "create")
        );
        let m =
            parse_method("io.k8s.authorization.rbac.v1.clusterrolebindings.create").expect("rbac");
        assert_eq!(m.group, "rbac.authorization.k8s.io");
        assert_eq!(m.subresource, None);
        let m = parse_method("io.k8s.apps.v1.deployments.patch").expect("apps");
        assert_eq!(m.group, "apps");
        let m = parse_method("io.k8s.networking.v1beta1.ingresses.list").expect("networking");
        assert_eq!(
            (m.group.as_str(), m.version.as_str()),
            ("networking.k8s.io", "v1beta1")
        );
        let m = parse_method("io.istio.networking.v1alpha3.virtualservices.create").expect("crd");
        assert_eq!(m.group, "networking.istio.io");
        assert_eq!(parse_method("io.k8s.readyz"), None);
        assert_eq!(parse_method("io.k8s.core.v1"), None);
    }

    #[test]
    fn gke_resource_names_give_namespace_and_name() {
        let r =
            parse_resource_name("core/v1/namespaces/ns/pods/name/exec", Some("pods")).expect("rn");
        assert_eq!(r.namespace.as_deref(), Some("ns"));
        assert_eq!(r.resource, "pods");
        assert_eq!(r.name.as_deref(), Some("name"));
        assert_eq!(r.subresource.as_deref(), Some("exec"));
        let r =
            parse_resource_name("core/v1/namespaces/ns/finalize", Some("namespaces")).expect("ns");
        assert_eq!(
            (
                r.resource.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            ("namespaces", Some("ns"), Some("finalize"))
        );
        let r = parse_resource_name(
            "rbac.authorization.k8s.io/v1/clusterrolebindings/admin",
            None,
        )
        .expect("crb");
        assert_eq!(
            (r.group.as_str(), r.namespace, r.name.as_deref()),
            ("rbac.authorization.k8s.io", None, Some("admin"))
        );
        assert_eq!(parse_resource_name("/readyz", None), None);
    }

    #[test]
    fn grpc_codes_map_to_http() {
        assert_eq!(grpc_to_http(0, "create"), 201);
        assert_eq!(grpc_to_http(0, "get"), 200);
        assert_eq!(grpc_to_http(7, "get"), 403);
        assert_eq!(grpc_to_http(16, "get"), 401);
        assert_eq!(grpc_to_http(5, "get"), 404);
        assert_eq!(grpc_to_http(6, "create"), 409);
        assert_eq!(grpc_to_http(3, "create"), 400);
        assert_eq!(grpc_to_http(13, "get"), 500);
    }

    #[test]
    fn azure_resource_ids_name_the_cluster() {
        assert_eq!(
            azure_cluster(
                "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/prod-1"
            ),
            Some("prod-1")
        );
        assert_eq!(
            azure_cluster(
                "/SUBSCRIPTIONS/X/PROVIDERS/MICROSOFT.KUBERNETES/CONNECTEDCLUSTERS/ARC/x"
            ),
            Some("ARC")
        );
        assert_eq!(azure_cluster("/subscriptions/x"), None);
    }
}
