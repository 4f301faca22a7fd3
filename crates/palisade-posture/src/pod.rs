//! Pod templates inside every workload kind, and their containers, with the field paths findings cite.

use palisade_kube::KubeObject;
use serde_json::Value;

/// The kinds that carry a pod template, and where it sits in each.
pub const WORKLOAD_KINDS: &[(&str, &str)] = &[
    ("Pod", "spec"),
    ("Deployment", "spec.template.spec"),
    ("ReplicaSet", "spec.template.spec"),
    ("StatefulSet", "spec.template.spec"),
    ("DaemonSet", "spec.template.spec"),
    ("Job", "spec.template.spec"),
    ("ReplicationController", "spec.template.spec"),
    ("CronJob", "spec.jobTemplate.spec.template.spec"),
];

/// Which list of the pod spec a container comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerKind {
    Init,
    Regular,
    Ephemeral,
}

impl ContainerKind {
    /// The pod spec field holding this list.
    pub fn field(self) -> &'static str {
        match self {
            ContainerKind::Init => "initContainers",
            ContainerKind::Regular => "containers",
            ContainerKind::Ephemeral => "ephemeralContainers",
        }
    }
}

/// A pod spec found in a workload, with the path that leads to it.
#[derive(Debug, Clone, Copy)]
pub struct PodTemplate<'a> {
    pub object: &'a KubeObject,
    /// `spec`, `spec.template.spec`, `spec.jobTemplate.spec.template.spec`.
    pub spec_path: &'static str,
    pub spec: &'a serde_json::Map<String, Value>,
    /// The pod's metadata (the object's own for a Pod, the template's otherwise): labels and
    /// annotations such as AppArmor profiles live here.
    pub metadata: Option<&'a serde_json::Map<String, Value>>,
}

/// One container of a pod spec.
#[derive(Debug, Clone, Copy)]
pub struct Container<'a> {
    pub kind: ContainerKind,
    pub index: usize,
    pub name: &'a str,
    pub spec: &'a serde_json::Map<String, Value>,
}

impl<'a> PodTemplate<'a> {
    /// The pod template of a workload object; `None` for other kinds, and for Pods owned by a
    /// controller when `skip_owned_pods` is set (their owner is checked instead).
    pub fn of(object: &'a KubeObject) -> Option<PodTemplate<'a>> {
        let (_, spec_path) = WORKLOAD_KINDS.iter().find(|(k, _)| *k == object.kind)?;
        let spec = object.get(spec_path)?.as_object()?;
        let metadata_path = match spec_path.strip_suffix(".spec") {
            Some(template) => object.get(template).and_then(|t| t.get("metadata")),
            None => object.get("metadata"),
        };
        Some(PodTemplate {
            object,
            spec_path,
            spec,
            metadata: metadata_path.and_then(Value::as_object),
        })
    }

    /// A field of the pod spec.
    pub fn field(&self, name: &str) -> Option<&'a Value> {
        self.spec.get(name)
    }

    /// Full path of a pod spec field for evidence: `spec.template.spec.hostPID`.
    pub fn path(&self, field: &str) -> String {
        format!("{}.{}", self.spec_path, field)
    }

    /// Full path of a container field: `spec.template.spec.containers[0].securityContext.privileged`.
    pub fn container_path(&self, container: &Container<'_>, field: &str) -> String {
        if field.is_empty() {
            format!(
                "{}.{}[{}]",
                self.spec_path,
                container.kind.field(),
                container.index
            )
        } else {
            format!(
                "{}.{}[{}].{}",
                self.spec_path,
                container.kind.field(),
                container.index,
                field
            )
        }
    }

    /// Init, regular and ephemeral containers, in that order.
    pub fn containers(&self) -> impl Iterator<Item = Container<'a>> + 'a {
        let spec = self.spec;
        [
            ContainerKind::Init,
            ContainerKind::Regular,
            ContainerKind::Ephemeral,
        ]
        .into_iter()
        .flat_map(move |kind| {
            spec.get(kind.field())
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
                .filter_map(move |(index, c)| {
                    let spec = c.as_object()?;
                    Some(Container {
                        kind,
                        index,
                        name: spec.get("name").and_then(Value::as_str).unwrap_or(""),
                        spec,
                    })
                })
        })
    }

    /// The pod's service account (`default` when unset, as the API server would fill it in).
    pub fn service_account(&self) -> &'a str {
        self.spec
            .get("serviceAccountName")
            .or_else(|| self.spec.get("serviceAccount"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
    }

    /// Pod labels (used by Service selectors and NetworkPolicies).
    pub fn labels(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.metadata
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
    }

    /// A pod annotation (AppArmor and seccomp annotations of older clusters).
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.metadata?.get("annotations")?.get(key)?.as_str()
    }

    /// True for a Pod created by a controller: checking it too would report everything twice.
    pub fn is_owned_pod(&self) -> bool {
        self.object.kind == "Pod"
            && self
                .object
                .metadata()
                .and_then(|m| m.get("ownerReferences"))
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
                })
    }
}

impl<'a> Container<'a> {
    /// A field of the container's securityContext.
    pub fn security(&self, field: &str) -> Option<&'a Value> {
        self.spec.get("securityContext")?.get(field)
    }

    pub fn image(&self) -> &'a str {
        self.spec.get("image").and_then(Value::as_str).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> KubeObject {
        KubeObject::from_value(v, None).unwrap()
    }

    #[test]
    fn finds_templates_in_every_workload_kind() {
        let cron = obj(
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"jobTemplate": {"spec": {"template": {"metadata": {"labels": {"a": "b"}},
              "spec": {"initContainers": [{"name": "i", "image": "x"}],
                       "containers": [{"name": "m", "image": "y", "securityContext": {"privileged": true}}]}}}}}}),
        );
        let t = PodTemplate::of(&cron).unwrap();
        assert_eq!(t.spec_path, "spec.jobTemplate.spec.template.spec");
        let cs: Vec<_> = t.containers().collect();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0].kind, ContainerKind::Init);
        assert_eq!(
            t.container_path(&cs[1], "securityContext.privileged"),
            "spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged"
        );
        assert_eq!(cs[1].security("privileged"), Some(&json!(true)));
        assert_eq!(t.labels().collect::<Vec<_>>(), vec![("a", "b")]);
        assert_eq!(t.service_account(), "default");
        let cm = obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
        assert!(PodTemplate::of(&cm).is_none());
    }

    #[test]
    fn owned_pods_are_recognised() {
        let p = obj(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p",
            "ownerReferences": [{"kind": "ReplicaSet", "name": "r", "controller": true}]},
            "spec": {"containers": []}}),
        );
        assert!(PodTemplate::of(&p).unwrap().is_owned_pod());
    }
}
