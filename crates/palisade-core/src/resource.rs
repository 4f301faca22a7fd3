//! What a finding or alert is about.

use serde::{Deserialize, Serialize};

/// Names the resource a finding or alert concerns, from the cluster down to one image digest. Every
/// field is optional so one type serves an image scanned from a registry (only `image` and
/// `image_digest`) as well as a container in a running pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Image reference as the user wrote it (or as the pod spec names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `sha256:…` of the image manifest, the stable identity of what runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

impl ResourceRef {
    /// A reference to an image alone, as produced by registry and file scans.
    pub fn image(reference: impl Into<String>, digest: Option<String>) -> Self {
        ResourceRef {
            image: Some(reference.into()),
            image_digest: digest,
            ..Default::default()
        }
    }
}
