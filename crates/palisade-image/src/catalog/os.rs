//! TODO(skeleton): OS detection from /etc/os-release and friends.

use crate::fs::ImageFs;
use palisade_core::Distro;

/// Whether the OS detector needs this path kept.
pub fn wants(path: &str) -> bool {
    matches!(
        path,
        "/etc/os-release" | "/usr/lib/os-release" | "/etc/alpine-release" | "/etc/debian_version"
    )
}

/// The distro of a merged root, if it can be told.
pub fn detect(_fs: &ImageFs) -> Option<Distro> {
    None
}
