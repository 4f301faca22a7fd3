//! Kubernetes objects for Palisade's posture engine, from wherever they come: manifests on disk
//! (files, directories, stdin, rendered Helm or Kustomize output) or a live cluster's API.
//!
//! Both sources produce one [`Inventory`] of [`KubeObject`]s kept as JSON values: the checks read
//! fields by path, which is what a finding's evidence must name anyway, and no object is rejected
//! because its schema is newer or older than ours. The live client sits behind the `live` feature
//! so engines that only need the model compile without kube-rs.

#[cfg(feature = "live")]
pub mod live;
pub mod manifest;
pub mod object;

#[cfg(feature = "live")]
pub use live::{ClusterError, ClusterOptions, connect, snapshot};
pub use manifest::{
    LoadedManifests, ManifestError, ManifestIssue, ManifestLimits, ParsedManifests, load_manifests,
    load_manifests_with_stdin, parse_manifest_bytes, parse_manifests,
};
pub use object::{Inventory, KubeObject, ObjectError, SourceLocation};
