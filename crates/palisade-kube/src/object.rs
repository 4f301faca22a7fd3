//! The object model shared by manifests and live snapshots.

use palisade_core::ResourceRef;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Where a manifest object was written, so findings point at the file and line a person edits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceLocation {
    /// Path as given on the command line (`-` for stdin).
    pub file: String,
    /// 1-based line of the first line of the object's document (or of the List item).
    pub line: u32,
    /// 0-based index of the YAML document within the file.
    pub document: u32,
    /// The template a rendered document came from, from the `# Source: chart/templates/x.yaml`
    /// comment `helm template` writes above each document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

impl SourceLocation {
    pub fn new(file: impl Into<String>, line: u32, document: u32) -> Self {
        SourceLocation {
            file: file.into(),
            line,
            document,
            origin: None,
        }
    }
}

/// Why a value is not a Kubernetes object.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ObjectError {
    #[error("not a mapping")]
    NotAMapping,
    #[error("missing or empty `{0}`")]
    MissingField(&'static str),
    #[error("`{field}` must be a string")]
    NotAString { field: &'static str },
}

/// One Kubernetes object: its identity pulled out for indexing, the whole object kept as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeObject {
    /// `apps/v1`, `v1`, …
    pub api_version: String,
    pub kind: String,
    /// `metadata.name` (or `metadata.generateName` when only that is set).
    pub name: String,
    pub namespace: Option<String>,
    /// The object as written or as served (Secrets: metadata only, never data).
    pub value: Value,
    /// Set for objects loaded from manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceLocation>,
}

impl KubeObject {
    /// Builds an object from a parsed document, checking the fields every object has.
    pub fn from_value(value: Value, source: Option<SourceLocation>) -> Result<Self, ObjectError> {
        let map = value.as_object().ok_or(ObjectError::NotAMapping)?;
        let api_version = required_str(map, "apiVersion")?;
        let kind = required_str(map, "kind")?;
        let metadata = map.get("metadata").and_then(Value::as_object);
        let name = metadata
            .and_then(|m| {
                m.get("name")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .or_else(|| m.get("generateName").and_then(Value::as_str))
            })
            .filter(|s| !s.is_empty())
            .ok_or(ObjectError::MissingField("metadata.name"))?
            .to_string();
        let namespace = metadata
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Ok(KubeObject {
            api_version,
            kind,
            name,
            namespace,
            value,
            source,
        })
    }

    /// The API group: `apps` for `apps/v1`, empty for the core group (`v1`).
    pub fn group(&self) -> &str {
        match self.api_version.rsplit_once('/') {
            Some((group, _)) => group,
            None => "",
        }
    }

    /// A field by JSON-pointer-like dotted path (`spec.template.spec`); `None` when any step is missing.
    pub fn get(&self, dotted_path: &str) -> Option<&Value> {
        dotted_path
            .split('.')
            .try_fold(&self.value, |v, key| v.as_object()?.get(key))
    }

    pub fn metadata(&self) -> Option<&Map<String, Value>> {
        self.value.get("metadata")?.as_object()
    }

    pub fn labels(&self) -> BTreeMap<&str, &str> {
        string_map(self.metadata().and_then(|m| m.get("labels")))
    }

    pub fn annotations(&self) -> BTreeMap<&str, &str> {
        string_map(self.metadata().and_then(|m| m.get("annotations")))
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata()?.get("annotations")?.get(key)?.as_str()
    }

    pub fn uid(&self) -> Option<&str> {
        self.metadata()?.get("uid")?.as_str()
    }

    /// `kind/namespace/name` or `kind/name`: a stable key for sorting, graphs and exceptions.
    pub fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }

    /// The reference findings carry for this object.
    pub fn resource_ref(&self, cluster: Option<&str>) -> ResourceRef {
        ResourceRef {
            cluster: cluster.map(str::to_string),
            namespace: self.namespace.clone(),
            kind: Some(self.kind.clone()),
            name: Some(self.name.clone()),
            ..Default::default()
        }
    }
}

fn required_str(map: &Map<String, Value>, field: &'static str) -> Result<String, ObjectError> {
    match map.get(field) {
        None | Some(Value::Null) => Err(ObjectError::MissingField(field)),
        Some(Value::String(s)) if s.is_empty() => Err(ObjectError::MissingField(field)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ObjectError::NotAString { field }),
    }
}

fn string_map(value: Option<&Value>) -> BTreeMap<&str, &str> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Every object of one cluster or one set of manifests, with what could not be read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Inventory {
    /// Cluster name (kubeconfig context or `--cluster-name`); `None` for manifests.
    pub cluster: Option<String>,
    pub objects: Vec<KubeObject>,
    /// Things skipped or not readable, worded for the person running the scan.
    pub warnings: Vec<String>,
}

impl Inventory {
    pub fn new(cluster: Option<String>) -> Self {
        Inventory {
            cluster,
            ..Default::default()
        }
    }

    /// Objects of one kind (any API group).
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a KubeObject> + 'a {
        self.objects.iter().filter(move |o| o.kind == kind)
    }

    /// Looks up an object by kind, namespace and name.
    pub fn find(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<&KubeObject> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.name == name && o.namespace.as_deref() == namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identity_and_paths() {
        let o = KubeObject::from_value(
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"},
                                "annotations": {"a": "b"}},
                   "spec": {"template": {"spec": {"hostPID": true}}}}),
            None,
        )
        .unwrap();
        assert_eq!(o.group(), "apps");
        assert_eq!(o.key(), "Deployment/prod/web");
        assert_eq!(o.get("spec.template.spec.hostPID"), Some(&json!(true)));
        assert_eq!(o.get("spec.nothing.here"), None);
        assert_eq!(o.labels().get("app"), Some(&"web"));
        assert_eq!(o.annotation("a"), Some("b"));
    }

    #[test]
    fn rejects_non_objects() {
        assert_eq!(
            KubeObject::from_value(json!([1]), None),
            Err(ObjectError::NotAMapping)
        );
        assert_eq!(
            KubeObject::from_value(json!({"apiVersion": "v1", "kind": "Pod"}), None),
            Err(ObjectError::MissingField("metadata.name"))
        );
        assert_eq!(
            KubeObject::from_value(json!({"apiVersion": 1, "kind": "Pod"}), None),
            Err(ObjectError::NotAString {
                field: "apiVersion"
            })
        );
    }
}
