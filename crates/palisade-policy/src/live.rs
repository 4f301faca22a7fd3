//! Policies from a live cluster: ConstraintTemplates (`templates.gatekeeper.sh`), every constraint
//! kind served under `constraints.gatekeeper.sh`, Gatekeeper `Config`s and Namespaces (for
//! `namespaceSelector`), listed and then watched through kube-rs. Each change rebuilds the
//! [`PolicySet`] after a short quiet period; a set that does not compile is logged and the
//! previous one stays in force. Also the reads `palisade policy audit --cluster` needs: the policy
//! objects, and the objects of the kinds the constraints match.

use crate::policy::{PolicyError, PolicySet, PolicySettings};
use futures::{StreamExt, pin_mut};
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, WatchEvent, WatchParams};
use kube::discovery::{self, ApiResource, verbs};
use palisade_kube::live::{ClusterError, ClusterOptions, connect};
use palisade_kube::{Inventory, KubeObject};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Group of ConstraintTemplates.
pub const TEMPLATE_GROUP: &str = "templates.gatekeeper.sh";
/// Group of constraints (one kind per template).
pub const CONSTRAINT_GROUP: &str = "constraints.gatekeeper.sh";
/// Group of Gatekeeper's Config (exempt namespaces).
pub const CONFIG_GROUP: &str = "config.gatekeeper.sh";

/// Quiet period after a change before the set is rebuilt (a `kubectl apply -f dir/` is one rebuild).
const DEBOUNCE: Duration = Duration::from_millis(300);
/// Server-side watch timeout; the watch is then resumed from the last resource version.
const WATCH_TIMEOUT_SECS: u32 = 290;
/// Wait before retrying a failed list or watch.
const RETRY: Duration = Duration::from_secs(2);

/// Why the cluster's policies could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("listing {what}: {source}")]
    List {
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("discovering the {group} API group: {source}")]
    Discovery {
        group: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("the cluster's policies do not compile: {}", join(.0))]
    Compile(Vec<PolicyError>),
}

fn join(errors: &[PolicyError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A kind the source reads.
#[derive(Debug, Clone)]
struct Source {
    resource: ApiResource,
    /// Policy object (template, constraint, Config) rather than inventory (Namespace).
    policy: bool,
}

impl Source {
    fn key(&self) -> String {
        format!("{}/{}", self.resource.group, self.resource.kind)
    }
}

/// Whether a discovery error means the group is not served (Gatekeeper's CRDs not installed).
fn not_served(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => status.code == 404,
        kube::Error::Discovery(_) => true,
        _ => false,
    }
}

/// The listable kinds of a group; empty when the group is not served.
async fn group_sources(
    client: &Client,
    group: &str,
    kind: Option<&str>,
    policy: bool,
) -> Result<Vec<Source>, LiveError> {
    match discovery::group(client, group).await {
        Ok(g) => Ok(g
            .recommended_resources()
            .into_iter()
            .filter(|(r, caps)| {
                caps.supports_operation(verbs::LIST)
                    && !r.plural.contains('/')
                    && kind.is_none_or(|k| r.kind == k)
            })
            .map(|(resource, _)| Source { resource, policy })
            .collect()),
        Err(e) if not_served(&e) => Ok(Vec::new()),
        Err(e) => Err(LiveError::Discovery {
            group: group.to_string(),
            source: Box::new(e),
        }),
    }
}

/// Everything the policy source reads: templates, Configs, Namespaces and each constraint kind.
async fn policy_sources(client: &Client) -> Result<Vec<Source>, LiveError> {
    let mut sources =
        group_sources(client, TEMPLATE_GROUP, Some("ConstraintTemplate"), true).await?;
    sources.extend(group_sources(client, CONFIG_GROUP, Some("Config"), true).await?);
    sources.extend(group_sources(client, CONSTRAINT_GROUP, None, true).await?);
    sources.push(Source {
        resource: ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "Namespace".into(),
            plural: "namespaces".into(),
        },
        policy: false,
    });
    Ok(sources)
}

/// A served object as the engine reads it: apiVersion and kind set, managedFields dropped.
fn to_object(resource: &ApiResource, object: DynamicObject) -> Option<KubeObject> {
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
    KubeObject::from_value(value, None).ok()
}

type ObjectKey = (Option<String>, String);

/// Lists one kind completely; returns the objects and the list's resource version.
async fn list_source(
    client: &Client,
    source: &Source,
) -> Result<(BTreeMap<ObjectKey, KubeObject>, String), LiveError> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &source.resource);
    let mut objects = BTreeMap::new();
    let mut params = ListParams::default().limit(500);
    let version = loop {
        let page = api.list(&params).await.map_err(|e| LiveError::List {
            what: format!(
                "{} ({})",
                source.resource.plural, source.resource.api_version
            ),
            source: Box::new(e),
        })?;
        let version = page.metadata.resource_version.clone().unwrap_or_default();
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        for item in page.items {
            if let Some(o) = to_object(&source.resource, item) {
                objects.insert((o.namespace.clone(), o.name.clone()), o);
            }
        }
        match next {
            Some(token) => params = params.continue_token(&token),
            None => break version,
        }
    };
    Ok((objects, version))
}

/// The templates, constraints and Configs in the cluster, and its Namespaces.
pub async fn read_policies(
    options: &ClusterOptions,
) -> Result<(Vec<KubeObject>, Vec<KubeObject>), LiveError> {
    let (client, _) = connect(options).await?;
    let mut policies = Vec::new();
    let mut namespaces = Vec::new();
    for source in policy_sources(&client).await? {
        let (objects, _) = list_source(&client, &source).await?;
        if source.policy {
            policies.extend(objects.into_values());
        } else {
            namespaces.extend(objects.into_values());
        }
    }
    Ok((policies, namespaces))
}

/// The objects a set's constraints can apply to, for an audit: every served kind the constraints
/// match (by group and kind), and the Namespaces. Kinds the cluster does not serve are passed
/// over; lists that fail are warnings. When some constraint matches every kind, the kinds of a
/// posture snapshot are read instead (and a warning says so).
pub async fn read_matched_objects(
    options: &ClusterOptions,
    set: &PolicySet,
) -> Result<Inventory, LiveError> {
    let Some(kinds) = set.matched_kinds() else {
        let mut inventory = palisade_kube::live::snapshot(options).await?;
        inventory.warnings.push(
            "a constraint matches every kind: audited the kinds a posture snapshot reads".into(),
        );
        return Ok(inventory);
    };
    let (client, _) = connect(options).await?;
    let mut inventory = Inventory::new(options.cluster_name.clone());
    let mut by_group: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (group, kind) in kinds {
        by_group.entry(group).or_default().insert(kind);
    }
    by_group
        .entry(String::new())
        .or_default()
        .insert("Namespace".into());
    for (group, kinds) in by_group {
        let wildcard = group == "*" || kinds.contains("*");
        let sources = if group == "*" {
            inventory.warnings.push(
                "a constraint matches every API group: only the core group is audited".into(),
            );
            group_sources(&client, "", None, false).await?
        } else {
            group_sources(&client, &group, None, false).await?
        };
        let mut found = BTreeSet::new();
        for source in sources {
            if !wildcard && !kinds.contains(&source.resource.kind) {
                continue;
            }
            if source.resource.kind == "Secret" {
                // Policies rarely need Secret data; an audit never reads it.
                continue;
            }
            found.insert(source.resource.kind.clone());
            match list_source(&client, &source).await {
                Ok((objects, _)) => inventory.objects.extend(objects.into_values()),
                Err(e) => inventory.warnings.push(e.to_string()),
            }
        }
        // `match.kinds` is a cross product of groups and kinds: combinations the cluster does not
        // serve (`apps` x `Pod`) are normal, not worth a warning.
        for kind in kinds.iter().filter(|k| *k != "*" && !found.contains(*k)) {
            tracing::debug!("{kind} in group `{group}`: not served by the cluster or not listable");
        }
    }
    Ok(inventory)
}

/// Objects per source, by namespace and name.
#[derive(Default)]
struct State {
    objects: HashMap<String, BTreeMap<ObjectKey, KubeObject>>,
    policy_keys: BTreeSet<String>,
}

impl State {
    fn split(&self) -> (Vec<KubeObject>, Vec<KubeObject>) {
        let mut policies = Vec::new();
        let mut inventory = Vec::new();
        for (key, objects) in &self.objects {
            let into = if self.policy_keys.contains(key) {
                &mut policies
            } else {
                &mut inventory
            };
            into.extend(objects.values().cloned());
        }
        // Deterministic order: templates before the constraints that need them is not required
        // by the engine, but stable input gives stable errors.
        policies.sort_by(|a, b| {
            (&a.api_version, &a.kind, &a.name).cmp(&(&b.api_version, &b.kind, &b.name))
        });
        (policies, inventory)
    }
}

struct Shared {
    client: Client,
    state: Mutex<State>,
    changed: Notify,
}

/// Lists ConstraintTemplates, every constraint kind, Gatekeeper Configs and Namespaces, then
/// watches them; each change yields a rebuilt [`PolicySet`] (the previous one is kept, and the
/// errors logged, if the new one fails to compile). The first set must compile. The watch runs
/// on the current Tokio runtime until every receiver is dropped.
pub async fn watch_cluster(
    options: &ClusterOptions,
    settings: PolicySettings,
) -> Result<watch::Receiver<Arc<PolicySet>>, LiveError> {
    let (client, _) = connect(options).await?;
    let shared = Arc::new(Shared {
        client,
        state: Mutex::new(State::default()),
        changed: Notify::new(),
    });
    let mut watchers: HashMap<String, JoinHandle<()>> = HashMap::new();
    start_sources(&shared, &mut watchers).await?;
    let (policies, inventory) = lock(&shared.state).split();
    let (set, warnings) =
        PolicySet::compile(&policies, &inventory, &settings).map_err(LiveError::Compile)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        templates = set.templates().count(),
        constraints = set.constraints().len(),
        "policies loaded from the cluster"
    );
    let (tx, rx) = watch::channel(Arc::new(set));
    tokio::spawn(rebuild_loop(shared, watchers, settings, tx));
    Ok(rx)
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A watcher that panicked mid-update leaves a map that is still consistent per entry.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lists every source not yet watched and starts its watcher.
async fn start_sources(
    shared: &Arc<Shared>,
    watchers: &mut HashMap<String, JoinHandle<()>>,
) -> Result<bool, LiveError> {
    let mut started = false;
    for source in policy_sources(&shared.client).await? {
        let key = source.key();
        if watchers.contains_key(&key) {
            continue;
        }
        let (objects, version) = list_source(&shared.client, &source).await?;
        {
            let mut state = lock(&shared.state);
            state.objects.insert(key.clone(), objects);
            if source.policy {
                state.policy_keys.insert(key.clone());
            }
        }
        let handle = tokio::spawn(watch_source(Arc::clone(shared), source, version));
        watchers.insert(key, handle);
        started = true;
    }
    Ok(started)
}

async fn rebuild_loop(
    shared: Arc<Shared>,
    mut watchers: HashMap<String, JoinHandle<()>>,
    settings: PolicySettings,
    tx: watch::Sender<Arc<PolicySet>>,
) {
    loop {
        tokio::select! {
            _ = shared.changed.notified() => {}
            _ = tx.closed() => break,
        }
        // Let a burst of changes settle.
        loop {
            tokio::select! {
                _ = shared.changed.notified() => continue,
                _ = tokio::time::sleep(DEBOUNCE) => break,
            }
        }
        // New templates bring new constraint kinds (their CRDs appear after the template).
        if let Err(e) = start_sources(&shared, &mut watchers).await {
            tracing::warn!("watching new constraint kinds: {e}");
        }
        let (policies, inventory) = lock(&shared.state).split();
        match PolicySet::compile(&policies, &inventory, &settings) {
            Ok((set, warnings)) => {
                for w in warnings {
                    tracing::warn!("{w}");
                }
                tracing::info!(
                    templates = set.templates().count(),
                    constraints = set.constraints().len(),
                    "policies reloaded from the cluster"
                );
                if tx.send(Arc::new(set)).is_err() {
                    break;
                }
            }
            Err(errors) => {
                tracing::error!(
                    "the cluster's policies do not compile; keeping the previous set: {}",
                    join(&errors)
                );
            }
        }
    }
    for (_, handle) in watchers {
        handle.abort();
    }
}

/// Watches one kind from `version`, applying events to the shared state; relists when the
/// version is too old (410 Gone) and resumes after timeouts and errors.
async fn watch_source(shared: Arc<Shared>, source: Source, mut version: String) {
    let api: Api<DynamicObject> = Api::all_with(shared.client.clone(), &source.resource);
    let key = source.key();
    loop {
        let params = WatchParams {
            bookmarks: true,
            ..WatchParams::default()
        }
        .timeout(WATCH_TIMEOUT_SECS);
        let mut relist = false;
        match api.watch(&params, &version).await {
            Ok(stream) => {
                pin_mut!(stream);
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)) => {
                            if let Some(v) = o.metadata.resource_version.clone() {
                                version = v;
                            }
                            if let Some(o) = to_object(&source.resource, o) {
                                let mut state = lock(&shared.state);
                                let entry = state.objects.entry(key.clone()).or_default();
                                entry.insert((o.namespace.clone(), o.name.clone()), o);
                                drop(state);
                                shared.changed.notify_one();
                            }
                        }
                        Ok(WatchEvent::Deleted(o)) => {
                            if let Some(v) = o.metadata.resource_version.clone() {
                                version = v;
                            }
                            let name = o.metadata.name.clone().unwrap_or_default();
                            let ns = o.metadata.namespace.clone();
                            let mut state = lock(&shared.state);
                            if let Some(entry) = state.objects.get_mut(&key) {
                                entry.remove(&(ns, name));
                            }
                            drop(state);
                            shared.changed.notify_one();
                        }
                        Ok(WatchEvent::Bookmark(b)) => version = b.metadata.resource_version,
                        Ok(WatchEvent::Error(status)) if status.code == 410 => {
                            relist = true;
                            break;
                        }
                        Ok(WatchEvent::Error(status)) => {
                            tracing::warn!("watching {key}: {}", status.message);
                            break;
                        }
                        Err(e) => {
                            tracing::warn!("watching {key}: {e}");
                            break;
                        }
                    }
                }
            }
            Err(kube::Error::Api(status)) if status.code == 410 => relist = true,
            Err(kube::Error::Api(status)) if status.code == 404 => {
                // The kind is gone (its CRD was deleted): forget its objects.
                lock(&shared.state).objects.remove(&key);
                shared.changed.notify_one();
                tokio::time::sleep(RETRY * 5).await;
                continue;
            }
            Err(e) => {
                tracing::warn!("watching {key}: {e}");
                tokio::time::sleep(RETRY).await;
            }
        }
        if relist {
            match list_source(&shared.client, &source).await {
                Ok((objects, v)) => {
                    version = v;
                    lock(&shared.state).objects.insert(key.clone(), objects);
                    shared.changed.notify_one();
                }
                Err(e) => {
                    tracing::warn!("relisting {key}: {e}");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}
