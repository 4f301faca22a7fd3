//! A read-only snapshot of a live cluster through kube-rs.
//!
//! [`snapshot`] connects with a kubeconfig (explicit path, `KUBECONFIG`, `~/.kube/config`; any
//! context) or, when there is none, the in-cluster service-account configuration; discovers which
//! version of each kind the posture engine needs is served; and lists them page by page with
//! bounded concurrency. Secrets are listed as metadata only (`PartialObjectMetadataList`): their
//! data is never requested, and the `last-applied-configuration` annotation, which would repeat
//! it, is dropped. A kind the server does not serve or the scanner may not list is a warning in
//! the inventory, never a failure; failing to reach or authenticate to the server is an error.

use crate::object::{Inventory, KubeObject};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams, ObjectList};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{self, ApiCapabilities, ApiGroup, ApiResource, Scope, verbs};
use kube::{Client, Config};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How to reach the cluster and what to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// Kubeconfig file; `None`: `KUBECONFIG`, then `~/.kube/config`, then in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context; `None`: the current context.
    pub context: Option<String>,
    /// Restrict namespaced kinds to one namespace (cluster-scoped kinds are still listed).
    pub namespace: Option<String>,
    /// Objects per list request.
    pub page_size: u32,
    /// Name the inventory's cluster; `None`: the kubeconfig context name (in-cluster: none).
    pub cluster_name: Option<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            kubeconfig: None,
            context: None,
            namespace: None,
            page_size: 500,
            cluster_name: None,
        }
    }
}

/// Why a snapshot could not be taken at all.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("no kubeconfig found ({kubeconfig}) and not running inside a cluster ({in_cluster})")]
    NoConfiguration {
        kubeconfig: String,
        in_cluster: String,
    },
    #[error("cannot configure the Kubernetes client: {0}")]
    Client(#[source] Box<kube::Error>),
    #[error("the API server at {server} rejected the credentials: {message}")]
    Unauthorized { server: String, message: String },
    #[error("cannot reach the API server at {server}: {source}")]
    Connection {
        server: String,
        #[source]
        source: Box<kube::Error>,
    },
}

/// What the posture engine reads: `(API groups in order of preference, kind, metadata only)`.
/// Ingress and NetworkPolicy fall back to `extensions` on servers older than 1.19.
const KINDS: &[(&[&str], &str, bool)] = &[
    (&[""], "Namespace", false),
    (&[""], "Node", false),
    (&[""], "Pod", false),
    (&[""], "ReplicationController", false),
    (&[""], "Service", false),
    (&[""], "ServiceAccount", false),
    (&[""], "ConfigMap", false),
    (&[""], "Secret", true),
    (&["apps"], "Deployment", false),
    (&["apps"], "ReplicaSet", false),
    (&["apps"], "StatefulSet", false),
    (&["apps"], "DaemonSet", false),
    (&["batch"], "Job", false),
    (&["batch"], "CronJob", false),
    (&["networking.k8s.io", "extensions"], "Ingress", false),
    (&["networking.k8s.io", "extensions"], "NetworkPolicy", false),
    (&["rbac.authorization.k8s.io"], "Role", false),
    (&["rbac.authorization.k8s.io"], "ClusterRole", false),
    (&["rbac.authorization.k8s.io"], "RoleBinding", false),
    (&["rbac.authorization.k8s.io"], "ClusterRoleBinding", false),
    (
        &["admissionregistration.k8s.io"],
        "ValidatingWebhookConfiguration",
        false,
    ),
    (
        &["admissionregistration.k8s.io"],
        "MutatingWebhookConfiguration",
        false,
    ),
    (&["apiextensions.k8s.io"], "CustomResourceDefinition", false),
];

/// The kinds a snapshot lists, as `group/kind` (core group: `kind`), for documentation and RBAC.
pub fn snapshot_kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
    KINDS.iter().map(|(groups, kind, _)| (groups[0], *kind))
}

/// Lists in flight at once.
const CONCURRENCY: usize = 4;

/// Annotation `kubectl apply` writes with the whole object: for a Secret, its data.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A client for the cluster `options` name (kubeconfig, context or in-cluster configuration,
/// resolved as for [`snapshot`]) and the API server's URL, for callers that read more than a
/// snapshot (the policy engine's watch of ConstraintTemplates).
pub async fn connect(options: &ClusterOptions) -> Result<(Client, String), ClusterError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (config, _context) = client_config(options).await?;
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| ClusterError::Client(Box::new(e)))?;
    Ok((client, server))
}

/// Takes a read-only snapshot of the cluster.
pub async fn snapshot(options: &ClusterOptions) -> Result<Inventory, ClusterError> {
    // kube builds its TLS configuration from the process-wide provider: make it ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (config, context) = client_config(options).await?;
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| ClusterError::Client(Box::new(e)))?;
    let cluster = options.cluster_name.clone().or(context);
    let mut inventory = Inventory::new(cluster);

    // Discovery, one group at a time so one broken group (an aggregated API that is down) costs
    // only its own kinds.
    let mut group_names: Vec<&str> = KINDS
        .iter()
        .flat_map(|(g, _, _)| g.iter().copied())
        .collect();
    group_names.sort_unstable();
    group_names.dedup();
    let mut groups: BTreeMap<&str, ApiGroup> = BTreeMap::new();
    for name in group_names {
        match discovery::group(&client, name).await {
            Ok(group) => {
                groups.insert(name, group);
            }
            Err(e) => {
                if name.is_empty() {
                    // The core group always exists: failing here means no usable connection.
                    return Err(connection_error(&server, e));
                }
                if let Some(fatal) = fatal_error(&server, &e) {
                    return Err(fatal);
                }
                if !matches!(e, kube::Error::Discovery(_)) {
                    inventory.warnings.push(format!(
                        "API group {name}: discovery failed: {}",
                        describe(&e)
                    ));
                }
            }
        }
    }

    let mut jobs = Vec::new();
    for (index, (kind_groups, kind, metadata_only)) in KINDS.iter().enumerate() {
        match resolve(&groups, kind_groups, kind) {
            Some((resource, caps)) if caps.supports_operation(verbs::LIST) => {
                jobs.push((index, resource, caps, *metadata_only))
            }
            Some((resource, _)) => inventory.warnings.push(format!(
                "{}: the server does not allow listing {}; skipped",
                resource.api_version, resource.plural
            )),
            None => inventory.warnings.push(format!(
                "{kind}: not served by this cluster (API group {}); skipped",
                display_groups(kind_groups)
            )),
        }
    }

    let client_ref = &client;
    let mut results: Vec<(usize, ListOutcome)> = futures::stream::iter(jobs)
        .map(|(index, resource, caps, metadata_only)| async move {
            let outcome = list_kind(client_ref, &resource, &caps, metadata_only, options).await;
            (index, outcome)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    results.sort_by_key(|(index, _)| *index);
    for (_, outcome) in results {
        match outcome {
            ListOutcome::Objects(objects) => inventory.objects.extend(objects),
            ListOutcome::Warning(w) => inventory.warnings.push(w),
            ListOutcome::Fatal(e) => {
                return Err(
                    fatal_error(&server, &e).unwrap_or_else(|| connection_error(&server, e))
                );
            }
        }
        // `Fatal` returned above keeps the first error; later ones would say the same.
    }
    Ok(inventory)
}

fn display_groups(groups: &[&str]) -> String {
    groups
        .iter()
        .map(|g| if g.is_empty() { "core" } else { g })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The served version of a kind: the group's preferred version when it has the kind, else the
/// most stable version that does (CronJob is batch/v1beta1 while Job is batch/v1 before 1.21).
fn resolve(
    groups: &BTreeMap<&str, ApiGroup>,
    kind_groups: &[&str],
    kind: &str,
) -> Option<(ApiResource, ApiCapabilities)> {
    kind_groups.iter().find_map(|name| {
        let group = groups.get(name)?;
        group.recommended_kind(kind).or_else(|| {
            group.versions().find_map(|version| {
                group
                    .versioned_resources(version)
                    .into_iter()
                    .find(|(r, _)| r.kind == kind)
            })
        })
    })
}

async fn client_config(options: &ClusterOptions) -> Result<(Config, Option<String>), ClusterError> {
    let kubeconfig = match &options.kubeconfig {
        Some(path) => Kubeconfig::read_from(path).map_err(|source| ClusterError::Kubeconfig {
            path: path.display().to_string(),
            source,
        })?,
        None => match Kubeconfig::read() {
            Ok(kc) => kc,
            Err(e) if options.context.is_none() => {
                let in_cluster =
                    Config::incluster().map_err(|ic| ClusterError::NoConfiguration {
                        kubeconfig: e.to_string(),
                        in_cluster: ic.to_string(),
                    })?;
                return Ok((in_cluster, None));
            }
            Err(source) => {
                return Err(ClusterError::Kubeconfig {
                    path: std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".into()),
                    source,
                });
            }
        },
    };
    let context = options
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone());
    let path = options
        .kubeconfig
        .as_ref()
        .map_or_else(|| "(default)".to_string(), |p| p.display().to_string());
    let config = Config::from_custom_kubeconfig(
        kubeconfig,
        &KubeConfigOptions {
            context: options.context.clone(),
            cluster: None,
            user: None,
        },
    )
    .await
    .map_err(|source| ClusterError::Kubeconfig { path, source })?;
    Ok((config, context))
}

enum ListOutcome {
    Objects(Vec<KubeObject>),
    Warning(String),
    Fatal(kube::Error),
}

/// Lists every object of one kind, page by page; a `410 Gone` (the continue token expired while
/// paging) restarts the list once from the beginning.
async fn list_kind(
    client: &Client,
    resource: &ApiResource,
    caps: &ApiCapabilities,
    metadata_only: bool,
    options: &ClusterOptions,
) -> ListOutcome {
    let api: Api<DynamicObject> = match (&caps.scope, &options.namespace) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, resource),
        _ => Api::all_with(client.clone(), resource),
    };
    let what = format!("{} ({})", resource.plural, resource.api_version);
    let mut restarted = false;
    'list: loop {
        let mut objects = Vec::new();
        let mut continue_token: Option<String> = None;
        loop {
            let params = ListParams {
                limit: Some(options.page_size.max(1)),
                continue_token: continue_token.clone(),
                ..Default::default()
            };
            let page = if metadata_only {
                api.list_metadata(&params).await.map(|list| {
                    let next = list.metadata.continue_.clone();
                    let values = list
                        .items
                        .into_iter()
                        .map(|item| metadata_object(resource, item.metadata))
                        .collect::<Vec<_>>();
                    (values, next)
                })
            } else {
                api.list(&params)
                    .await
                    .map(|list: ObjectList<DynamicObject>| {
                        let next = list.metadata.continue_.clone();
                        let values = list
                            .items
                            .into_iter()
                            .map(|item| full_object(resource, item))
                            .collect::<Vec<_>>();
                        (values, next)
                    })
            };
            let (values, next) = match page {
                Ok(page) => page,
                Err(kube::Error::Api(status)) if status.code == 410 && !restarted => {
                    restarted = true;
                    continue 'list;
                }
                Err(kube::Error::Api(status)) if status.code == 403 => {
                    tracing::debug!(%what, message = %status.message, "list forbidden");
                    return ListOutcome::Warning(format!(
                        "{what}: not allowed to list (403 Forbidden); skipped"
                    ));
                }
                Err(kube::Error::Api(status))
                    if matches!(status.code, 404 | 405 | 410 | 500..=599) =>
                {
                    return ListOutcome::Warning(format!(
                        "{what}: listing failed ({} {}); skipped",
                        status.code, status.message
                    ));
                }
                Err(e) => return ListOutcome::Fatal(e),
            };
            for value in values {
                match value.and_then(|v| KubeObject::from_value(v, None).ok()) {
                    Some(object) => objects.push(object),
                    None => {
                        tracing::debug!(kind = %resource.kind, "served object without a name skipped")
                    }
                }
            }
            match next.filter(|t| !t.is_empty()) {
                Some(token) => continue_token = Some(token),
                None => return ListOutcome::Objects(objects),
            }
        }
    }
}

/// A listed object as JSON with its type filled in (list items omit it) and managedFields gone.
fn full_object(resource: &ApiResource, object: DynamicObject) -> Option<Value> {
    let mut value = serde_json::to_value(&object).ok()?;
    let map = value.as_object_mut()?;
    map.insert(
        "apiVersion".into(),
        Value::String(resource.api_version.clone()),
    );
    map.insert("kind".into(), Value::String(resource.kind.clone()));
    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    Some(value)
}

/// An object known by its metadata only (Secrets). `last-applied-configuration` would carry the
/// data the metadata request is meant to avoid, so it is removed.
fn metadata_object(
    resource: &ApiResource,
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<Value> {
    let mut meta = serde_json::to_value(&metadata).ok()?;
    let map = meta.as_object_mut()?;
    map.remove("managedFields");
    if let Some(annotations) = map.get_mut("annotations").and_then(Value::as_object_mut) {
        annotations.remove(LAST_APPLIED);
    }
    Some(serde_json::json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": meta,
    }))
}

fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} {}", status.code, status.message),
        other => other.to_string(),
    }
}

/// Errors that end the snapshot whatever kind they happened on.
fn fatal_error(server: &str, e: &kube::Error) -> Option<ClusterError> {
    match e {
        kube::Error::Api(status) if status.code == 401 => Some(ClusterError::Unauthorized {
            server: server.to_string(),
            message: status.message.clone(),
        }),
        kube::Error::Auth(err) => Some(ClusterError::Unauthorized {
            server: server.to_string(),
            message: err.to_string(),
        }),
        _ => None,
    }
}

fn connection_error(server: &str, e: kube::Error) -> ClusterError {
    fatal_error(server, &e).unwrap_or_else(|| ClusterError::Connection {
        server: server.to_string(),
        source: Box::new(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn secret_metadata_never_carries_data() {
        let resource = ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "Secret".into(),
            plural: "secrets".into(),
        };
        let meta = ObjectMeta {
            name: Some("db".into()),
            namespace: Some("prod".into()),
            annotations: Some(BTreeMap::from([
                (
                    LAST_APPLIED.to_string(),
                    r#"{"data":{"password":"aHVudGVyMg=="}}"#.to_string(),
                ),
                ("owner".to_string(), "team-a".to_string()),
            ])),
            ..Default::default()
        };
        let value = metadata_object(&resource, meta).unwrap();
        let object = KubeObject::from_value(value, None).unwrap();
        assert_eq!(object.key(), "Secret/prod/db");
        assert_eq!(object.annotation("owner"), Some("team-a"));
        assert_eq!(object.annotation(LAST_APPLIED), None);
        assert!(object.get("data").is_none() && object.get("stringData").is_none());
        assert!(!object.value.to_string().contains("aHVudGVyMg"));
    }

    #[test]
    fn listed_objects_get_their_type_and_lose_managed_fields() {
        let resource = ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
        };
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "prod",
                         "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"replicas": 2}
        }))
        .unwrap();
        let value = full_object(&resource, object).unwrap();
        let object = KubeObject::from_value(value, None).unwrap();
        assert_eq!(object.api_version, "apps/v1");
        assert_eq!(object.kind, "Deployment");
        assert_eq!(object.get("spec.replicas"), Some(&serde_json::json!(2)));
        assert!(object.get("metadata.managedFields").is_none());
    }

    #[test]
    fn kinds_cover_what_the_engine_reads() {
        let kinds: Vec<_> = snapshot_kinds().map(|(_, k)| k).collect();
        for k in [
            "CronJob",
            "Secret",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "Node",
        ] {
            assert!(kinds.contains(&k), "{k}");
        }
        assert_eq!(kinds.len(), 23);
    }

    /// A fake API server for one list: pages of ConfigMaps, and a `410 Gone` for the first
    /// `expire` requests that carry a continue token.
    fn paging_client(expire: usize) -> (Client, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use std::sync::{Arc, Mutex};
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = Arc::clone(&seen);
        let expired = Arc::new(Mutex::new(0usize));
        let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let uri = req.uri().to_string();
            log.lock().unwrap().push(uri.clone());
            let expired = Arc::clone(&expired);
            async move {
                let item =
                    |name: &str| serde_json::json!({"metadata": {"name": name, "namespace": "ns"}});
                let (status, body) = if uri.contains("continue=") {
                    let mut count = expired.lock().unwrap();
                    if *count < expire {
                        *count += 1;
                        (
                            410,
                            serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "reason": "Expired", "code": 410, "message": "continue token too old"}),
                        )
                    } else {
                        (
                            200,
                            serde_json::json!({"kind": "ConfigMapList", "apiVersion": "v1",
                            "metadata": {}, "items": [item("c")]}),
                        )
                    }
                } else {
                    (
                        200,
                        serde_json::json!({"kind": "ConfigMapList", "apiVersion": "v1",
                        "metadata": {"continue": "t1"}, "items": [item("a"), item("b")]}),
                    )
                };
                let response = http::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(body.to_string().into_bytes()))
                    .unwrap();
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        (Client::new(service, "default"), seen)
    }

    fn configmaps() -> (ApiResource, ApiCapabilities) {
        let resource = ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
        };
        let caps = ApiCapabilities {
            scope: Scope::Namespaced,
            subresources: Vec::new(),
            operations: vec![verbs::LIST.to_string()],
        };
        (resource, caps)
    }

    #[tokio::test]
    async fn paged_list_restarts_once_after_410_gone() {
        let (client, seen) = paging_client(1);
        let (resource, caps) = configmaps();
        let options = ClusterOptions {
            page_size: 2,
            ..Default::default()
        };
        let ListOutcome::Objects(objects) =
            list_kind(&client, &resource, &caps, false, &options).await
        else {
            panic!("list failed")
        };
        let names: Vec<_> = objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(
            objects
                .iter()
                .all(|o| o.kind == "ConfigMap" && o.api_version == "v1")
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(seen.iter().all(|u| u.contains("limit=2")), "{seen:?}");
    }

    #[tokio::test]
    async fn paged_list_gives_up_after_a_second_410() {
        let (client, _) = paging_client(2);
        let (resource, caps) = configmaps();
        let options = ClusterOptions {
            page_size: 2,
            namespace: Some("ns".into()),
            ..Default::default()
        };
        match list_kind(&client, &resource, &caps, false, &options).await {
            ListOutcome::Warning(w) => {
                assert!(w.starts_with("configmaps (v1): listing failed (410"), "{w}")
            }
            _ => panic!("expected a warning"),
        }
    }
}
