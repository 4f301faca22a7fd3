//! Container id → pod: a cache of the pods scheduled on this node, so a lookup per event is a
//! hash-map read and never a network call. Two sources fill it:
//! - the Kubernetes API ([`PodCache::watch_node`]): a list and then a watch of this node's pods
//!   (`fieldSelector=spec.nodeName=<node>`), the default: it needs only `get/list/watch pods`;
//! - the kubelet ([`PodCache::poll_kubelet`]): its `/pods` endpoint, read on an interval and
//!   whenever a container is not found (at most every [`KUBELET_MIN_REFRESH`]), for clusters
//!   where the sensor should not depend on the API server. The kubelet authorises `/pods` as
//!   `nodes/proxy`, which also allows exec into pods through the kubelet: grant it knowingly.
//!
//! The cache works without Kubernetes too: an empty [`PodCache`] answers nothing, and the
//! enricher then reports the container id and the pod uid it reads from the cgroup path.
//!
//! Deleted pods stay for [`DELETED_GRACE`]: a container's last events (its exits) are often
//! read after the API server has already said the pod is gone.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a deleted pod still resolves.
pub const DELETED_GRACE: Duration = Duration::from_secs(60);

/// Pods held at most (a node runs ~110; this only bounds a misbehaving API).
pub const MAX_PODS: usize = 4096;

/// The kubelet is asked again on a container miss, but not more often than this.
pub const KUBELET_MIN_REFRESH: Duration = Duration::from_secs(2);

/// Largest `/pods` answer read from the kubelet (110 pods with long specs are a few MB).
pub const KUBELET_MAX_BODY: usize = 64 << 20;

/// How to read this node's pods from its kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletSource {
    /// The kubelet's base URL, e.g. `https://10.0.0.5:10250` (`/pods` is appended).
    pub url: String,
    /// Bearer token (the service account's); `None`: no Authorization header.
    pub token: Option<String>,
    /// PEM CA bundle that signed the kubelet's serving certificate; `None`: the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Accept any serving certificate (kubelets often serve a self-signed one).
    pub insecure_skip_tls_verify: bool,
    /// How often the pod list is read when nothing asks sooner.
    pub interval: Duration,
}

/// Which pod a container belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRef {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

/// One container of a pod, as the API server reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodContainer {
    /// Runtime-neutral id (the part after `containerd://`, `cri-o://`, `docker://`).
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: Option<String>,
    pub privileged: bool,
    /// When the current instance started (nanoseconds since the epoch).
    pub started_nanos: Option<i64>,
}

struct PodRecord {
    pod: PodRef,
    containers: Vec<PodContainer>,
    deleted_at: Option<Instant>,
}

#[derive(Default)]
struct PodIndex {
    pods: HashMap<String, PodRecord>,
    /// container id → pod uid
    containers: HashMap<String, String>,
    synced: bool,
}

/// Counters of the pod cache and its watcher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodCacheCounters {
    pub pods: u64,
    pub containers: u64,
    /// Full lists: the API server's (the first, and after the watch expired) or the kubelet's
    /// `/pods` reads.
    pub lists: u64,
    /// Watch events applied.
    pub watch_events: u64,
    /// Failed list or watch requests (retried with backoff).
    pub errors: u64,
    /// Pods dropped because the cache was full.
    pub dropped_pods: u64,
}

#[derive(Default)]
struct Stats {
    lists: AtomicU64,
    watch_events: AtomicU64,
    errors: AtomicU64,
    dropped_pods: AtomicU64,
}

/// Shared, cloneable handle to the pod index: the watcher thread writes, the enricher reads.
#[derive(Clone, Default)]
pub struct PodCache {
    index: Arc<RwLock<PodIndex>>,
    stats: Arc<Stats>,
    /// Woken on a container miss: the kubelet poller reads `/pods` again (the API watcher
    /// needs no asking).
    wanted: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for PodCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodCache")
            .field("counters", &self.counters())
            .finish()
    }
}

impl PodCache {
    /// An empty cache: no Kubernetes; lookups miss and attribution stays at the cgroup level.
    pub fn new() -> PodCache {
        PodCache::default()
    }

    /// The pod and container that own container `id`.
    pub fn lookup_container(&self, id: &str) -> Option<(PodRef, PodContainer)> {
        let found = self.index.read().ok().and_then(|index| {
            let uid = index.containers.get(id)?;
            let record = index.pods.get(uid)?;
            let container = record.containers.iter().find(|c| c.id == id)?;
            Some((record.pod.clone(), container.clone()))
        });
        if found.is_none() {
            self.wanted.notify_one();
        }
        found
    }

    /// The pod with uid `uid` (when its container statuses do not list the container yet).
    pub fn lookup_pod(&self, uid: &str) -> Option<PodRef> {
        let index = self.index.read().ok()?;
        index.pods.get(uid).map(|r| r.pod.clone())
    }

    /// Whether the first list completed (until then misses may just be early).
    pub fn is_synced(&self) -> bool {
        self.index.read().map(|i| i.synced).unwrap_or(false)
    }

    /// Counters so far.
    pub fn counters(&self) -> PodCacheCounters {
        let (pods, containers) = self
            .index
            .read()
            .map(|i| (i.pods.len() as u64, i.containers.len() as u64))
            .unwrap_or_default();
        PodCacheCounters {
            pods,
            containers,
            lists: self.stats.lists.load(Ordering::Relaxed),
            watch_events: self.stats.watch_events.load(Ordering::Relaxed),
            errors: self.stats.errors.load(Ordering::Relaxed),
            dropped_pods: self.stats.dropped_pods.load(Ordering::Relaxed),
        }
    }

    /// Adds or replaces a pod.
    pub fn upsert(&self, pod: &Pod) {
        let Some(record) = record_of(pod) else {
            return;
        };
        let Ok(mut index) = self.index.write() else {
            return;
        };
        purge_deleted(&mut index);
        let uid = record.pod.uid.clone();
        if !index.pods.contains_key(&uid) && index.pods.len() >= MAX_PODS {
            self.stats.dropped_pods.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Some(old) = index.pods.remove(&uid) {
            for c in &old.containers {
                index.containers.remove(&c.id);
            }
        }
        for c in &record.containers {
            index.containers.insert(c.id.clone(), uid.clone());
        }
        index.pods.insert(uid, record);
    }

    /// Marks a pod deleted: it still resolves for [`DELETED_GRACE`].
    pub fn mark_deleted(&self, uid: &str) {
        if let Ok(mut index) = self.index.write() {
            if let Some(record) = index.pods.get_mut(uid) {
                record.deleted_at.get_or_insert_with(Instant::now);
            }
            purge_deleted(&mut index);
        }
    }

    /// Replaces the whole index with a fresh list: pods missing from it count as deleted.
    pub fn replace_all(&self, pods: &[Pod]) {
        let listed: std::collections::HashSet<String> =
            pods.iter().filter_map(|p| p.metadata.uid.clone()).collect();
        let gone: Vec<String> = match self.index.read() {
            Ok(index) => index
                .pods
                .keys()
                .filter(|uid| !listed.contains(*uid))
                .cloned()
                .collect(),
            Err(_) => return,
        };
        for uid in gone {
            self.mark_deleted(&uid);
        }
        for pod in pods {
            self.upsert(pod);
        }
        if let Ok(mut index) = self.index.write() {
            index.synced = true;
        }
    }

    /// Starts a thread that lists and watches the pods of node `node_name` with the client
    /// configuration `options` names (kubeconfig or in-cluster). Connecting (reading the
    /// configuration, building the client) happens before this returns, so a bad configuration
    /// is an error here; the API server being unreachable later is retried with backoff and
    /// counted in [`PodCacheCounters::errors`].
    pub fn watch_node(
        &self,
        options: &palisade_kube::ClusterOptions,
        node_name: &str,
    ) -> Result<PodWatcher, super::AttribError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(super::AttribError::Runtime)?;
        let (client, server) = runtime
            .block_on(palisade_kube::connect(options))
            .map_err(|e| super::AttribError::Kubernetes(Box::new(e)))?;
        let work = watch_loop(client, server, node_name.to_string(), self.clone());
        PodWatcher::spawn("palisade-pod-watch", runtime, work)
    }
}

impl PodCache {
    /// Starts a thread that reads this node's pods from its kubelet (`GET <url>/pods`) every
    /// `source.interval`, and sooner when a lookup misses (at most every
    /// [`KUBELET_MIN_REFRESH`]). A bad URL or CA is an error here; the kubelet failing later is
    /// retried and counted in [`PodCacheCounters::errors`].
    pub fn poll_kubelet(&self, source: KubeletSource) -> Result<PodWatcher, super::AttribError> {
        let url = reqwest::Url::parse(&source.url)
            .and_then(|u| u.join("pods"))
            .map_err(|e| super::AttribError::Kubelet(format!("{}: {e}", source.url)))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(super::AttribError::Kubelet(format!(
                "{}: the kubelet URL must be https:// (or http:// for the read-only port)",
                source.url
            )));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("palisade-sensor/", env!("CARGO_PKG_VERSION")))
            .tls_danger_accept_invalid_certs(source.insecure_skip_tls_verify);
        if let Some(pem) = &source.ca_pem {
            builder = crate::https::trust_only(builder, pem, "the kubelet CA bundle")
                .map_err(super::AttribError::Kubelet)?;
        }
        let client = builder
            .build()
            .map_err(|e| super::AttribError::Kubelet(format!("building the HTTPS client: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(super::AttribError::Runtime)?;
        let work = kubelet_loop(client, url, source, self.clone());
        PodWatcher::spawn("palisade-kubelet", runtime, work)
    }
}

/// The kubelet's `/pods` answer: a v1 `PodList`.
#[derive(serde::Deserialize)]
struct KubeletPodList {
    #[serde(default)]
    items: Vec<Pod>,
}

/// Reads `/pods` now, then on the interval or on a miss (spaced by [`KUBELET_MIN_REFRESH`]).
async fn kubelet_loop(
    client: reqwest::Client,
    url: reqwest::Url,
    source: KubeletSource,
    cache: PodCache,
) {
    let interval = source.interval.max(KUBELET_MIN_REFRESH);
    loop {
        let started = tokio::time::Instant::now();
        match read_kubelet_pods(&client, &url, source.token.as_deref()).await {
            Ok(pods) => {
                cache.stats.lists.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(pods = pods.len(), %url, "pod cache read from the kubelet");
                cache.replace_all(&pods);
            }
            Err(e) => {
                cache.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%url, error = %e, "reading this node's pods from the kubelet failed; retrying");
            }
        }
        // A miss while reading asks again, but not before the minimum spacing.
        tokio::time::sleep_until(started + KUBELET_MIN_REFRESH).await;
        let _ = tokio::time::timeout(
            interval.saturating_sub(KUBELET_MIN_REFRESH),
            cache.wanted.notified(),
        )
        .await;
    }
}

async fn read_kubelet_pods(
    client: &reqwest::Client,
    url: &reqwest::Url,
    token: Option<&str>,
) -> Result<Vec<Pod>, String> {
    let mut request = client.get(url.clone());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let mut response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(match status.as_u16() {
            401 => "401 Unauthorized: the kubelet did not accept the token".into(),
            403 => "403 Forbidden: the service account needs `get` on `nodes/proxy`".into(),
            _ => format!("HTTP {status}"),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > KUBELET_MAX_BODY {
            return Err(format!(
                "the answer is larger than {} MiB",
                KUBELET_MAX_BODY >> 20
            ));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice::<KubeletPodList>(&body)
        .map(|list| list.items)
        .map_err(|e| format!("the answer is not a PodList: {e}"))
}

/// The running pod watcher; dropping it stops the thread.
pub struct PodWatcher {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PodWatcher {
    /// Runs `work` on `runtime` in a thread of its own until the watcher is stopped or dropped.
    fn spawn(
        name: &str,
        runtime: tokio::runtime::Runtime,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<PodWatcher, super::AttribError> {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = stop_rx => {}
                        _ = work => {}
                    }
                })
            })
            .map_err(super::AttribError::Runtime)?;
        Ok(PodWatcher {
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Stops the watcher and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for PodWatcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// List, then watch from the list's resource version; relist when the version expired (410);
/// back off (1 s doubling to 30 s) while the server cannot be reached.
async fn watch_loop(client: kube::Client, server: String, node: String, cache: PodCache) {
    let api: Api<Pod> = Api::all(client);
    let selector = format!("spec.nodeName={node}");
    let mut backoff = Duration::from_secs(1);
    loop {
        let list = match api.list(&ListParams::default().fields(&selector)).await {
            Ok(list) => list,
            Err(e) => {
                cache.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%server, error = %e, "listing this node's pods failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        cache.stats.lists.fetch_add(1, Ordering::Relaxed);
        cache.replace_all(&list.items);
        tracing::debug!(pods = list.items.len(), %node, "pod cache synced");
        let mut version = list.metadata.resource_version.unwrap_or_default();
        // Watch until the version expires.
        'watch: loop {
            let params = WatchParams::default()
                .fields(&selector)
                .timeout(290)
                .disable_bookmarks();
            let stream = match api.watch(&params, &version).await {
                Ok(stream) => stream,
                Err(kube::Error::Api(status)) if status.code == 410 => break 'watch,
                Err(e) => {
                    cache.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%server, error = %e, "watching this node's pods failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue 'watch;
                }
            };
            backoff = Duration::from_secs(1);
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                match item {
                    Ok(WatchEvent::Added(pod)) | Ok(WatchEvent::Modified(pod)) => {
                        cache.stats.watch_events.fetch_add(1, Ordering::Relaxed);
                        if let Some(v) = &pod.metadata.resource_version {
                            version = v.clone();
                        }
                        cache.upsert(&pod);
                    }
                    Ok(WatchEvent::Deleted(pod)) => {
                        cache.stats.watch_events.fetch_add(1, Ordering::Relaxed);
                        if let Some(v) = &pod.metadata.resource_version {
                            version = v.clone();
                        }
                        if let Some(uid) = &pod.metadata.uid {
                            cache.mark_deleted(uid);
                        }
                    }
                    Ok(WatchEvent::Bookmark(mark)) => version = mark.metadata.resource_version,
                    Ok(WatchEvent::Error(status)) if status.code == 410 => break 'watch,
                    Ok(WatchEvent::Error(status)) => {
                        cache.stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%server, code = status.code, message = %status.message, "pod watch error; relisting");
                        break 'watch;
                    }
                    Err(e) => {
                        cache.stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(error = %e, "pod watch stream broke; watching again");
                        continue 'watch;
                    }
                }
            }
        }
    }
}

fn purge_deleted(index: &mut PodIndex) {
    let expired: Vec<String> = index
        .pods
        .iter()
        .filter(|(_, r)| r.deleted_at.is_some_and(|t| t.elapsed() >= DELETED_GRACE))
        .map(|(uid, _)| uid.clone())
        .collect();
    for uid in expired {
        if let Some(record) = index.pods.remove(&uid) {
            for c in record.containers {
                index.containers.remove(&c.id);
            }
        }
    }
}

/// The container id without its `<runtime>://` scheme.
pub fn strip_runtime_scheme(id: &str) -> &str {
    id.split_once("://").map_or(id, |(_, rest)| rest)
}

fn record_of(pod: &Pod) -> Option<PodRecord> {
    let uid = pod.metadata.uid.clone()?;
    let pod_ref = PodRef {
        name: pod.metadata.name.clone().unwrap_or_default(),
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        uid,
    };
    let spec_containers: Vec<&Container> = pod
        .spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .collect();
    let ephemeral_privileged = |name: &str| {
        pod.spec
            .iter()
            .flat_map(|s| s.ephemeral_containers.iter().flatten())
            .find(|c| c.name == name)
            .and_then(|c| c.security_context.as_ref()?.privileged)
    };
    let privileged = |name: &str| {
        spec_containers
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.security_context.as_ref()?.privileged)
            .or_else(|| ephemeral_privileged(name))
            .unwrap_or(false)
    };
    let statuses: Vec<&ContainerStatus> = pod
        .status
        .iter()
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
                .chain(s.ephemeral_container_statuses.iter().flatten())
        })
        .collect();
    let containers = statuses
        .into_iter()
        .filter_map(|status| {
            let id = strip_runtime_scheme(status.container_id.as_deref()?).to_ascii_lowercase();
            if id.is_empty() {
                return None;
            }
            let state = status.state.as_ref();
            let started = state
                .and_then(|s| s.running.as_ref()?.started_at.as_ref())
                .or_else(|| state.and_then(|s| s.terminated.as_ref()?.started_at.as_ref()));
            Some(PodContainer {
                id,
                name: status.name.clone(),
                image: status.image.clone(),
                image_id: (!status.image_id.is_empty()).then(|| status.image_id.clone()),
                privileged: privileged(&status.name),
                started_nanos: started.and_then(|t| i64::try_from(t.0.as_nanosecond()).ok()),
            })
        })
        .collect();
    Some(PodRecord {
        pod: pod_ref,
        containers,
        deleted_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, container_id: &str, privileged: bool) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop", "uid": uid},
            "spec": {"nodeName": "n1", "containers": [
                {"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": privileged}},
                {"name": "side", "image": "busybox"}
            ]},
            "status": {"containerStatuses": [
                {"name": "app", "image": "docker.io/library/nginx:1.27", "imageID": "sha256:abc",
                 "containerID": container_id, "ready": true, "restartCount": 0,
                 "state": {"running": {"startedAt": "2026-12-06T01:02:03Z"}}},
                {"name": "side", "image": "busybox", "imageID": "", "ready": false,
                 "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}
            ]}
        }))
        .expect("pod json")
    }

    #[test]
    fn indexes_statuses_and_forgets_old_ids() {
        let cache = PodCache::new();
        assert!(cache.lookup_container("abc").is_none());
        cache.upsert(&pod("u1", "containerd://ABC123", true));
        let (pod_ref, c) = cache.lookup_container("abc123").expect("indexed");
        assert_eq!(pod_ref.name, "web-1");
        assert_eq!(pod_ref.namespace, "shop");
        assert_eq!(c.name, "app");
        assert!(c.privileged);
        assert_eq!(c.image_id.as_deref(), Some("sha256:abc"));
        assert_eq!(c.started_nanos, Some(1_796_518_923_000_000_000));
        // A restart gives a new id: the old one no longer resolves.
        cache.upsert(&pod("u1", "cri-o://def456", false));
        assert!(cache.lookup_container("abc123").is_none());
        assert!(
            !cache
                .lookup_container("def456")
                .expect("new id")
                .1
                .privileged
        );
        assert_eq!(cache.lookup_pod("u1").map(|p| p.name), Some("web-1".into()));
        cache.mark_deleted("u1");
        assert!(cache.lookup_container("def456").is_some(), "grace period");
        cache.replace_all(&[]);
        assert!(cache.is_synced());
        assert_eq!(cache.counters().pods, 1);
    }
}
