//! From a target string to an SBOM: registry references, OCI layouts, archives, root file systems.

use crate::cli::ImageArgs;
use crate::progress;
use anyhow::{Context, Result, bail};
use palisade_image::cache::BlobCache;
use palisade_image::catalog::all_catalogers;
use palisade_image::layer::LayerCache;
use palisade_image::registry::RegistryOptions;
use palisade_image::scan::ScanOptions;
use palisade_image::{Limits, Sbom};
use std::path::{Path, PathBuf};

/// What the user asked to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    Registry(String),
    /// `oci:PATH[:tag|@digest]`.
    Layout {
        path: PathBuf,
        reference: Option<String>,
    },
    /// `docker-archive:PATH` (docker save).
    DockerArchive(PathBuf),
    /// `oci-archive:PATH`.
    OciArchive(PathBuf),
    /// `fs:PATH`, `dir:PATH`, or (for `sbom`/`bench`) an existing directory.
    Fs(PathBuf),
}

impl TargetSpec {
    /// Parses an image reference as `scan image` takes it.
    pub fn parse_image(s: &str) -> Result<TargetSpec> {
        let s = s.trim();
        if s.is_empty() {
            bail!("empty image reference");
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            let (path, reference) = split_layout_ref(rest);
            if path.is_empty() {
                bail!("`oci:` needs a path: oci:PATH[:tag]");
            }
            return Ok(TargetSpec::Layout {
                path: PathBuf::from(path),
                reference,
            });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            return Ok(TargetSpec::DockerArchive(non_empty(
                rest,
                "docker-archive",
            )?));
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            return Ok(TargetSpec::OciArchive(non_empty(rest, "oci-archive")?));
        }
        if let Some(rest) = s.strip_prefix("docker://") {
            return Ok(TargetSpec::Registry(rest.to_string()));
        }
        Ok(TargetSpec::Registry(s.to_string()))
    }

    /// Parses a target of `sbom`/`bench`: an image reference, or `fs:PATH` / `dir:PATH` / an
    /// existing directory for a root file system.
    pub fn parse_any(s: &str) -> Result<TargetSpec> {
        if let Some(rest) = s.strip_prefix("fs:").or_else(|| s.strip_prefix("dir:")) {
            return Ok(TargetSpec::Fs(non_empty(rest, "fs")?));
        }
        if !s.contains(':') && Path::new(s).is_dir() {
            return Ok(TargetSpec::Fs(PathBuf::from(s)));
        }
        TargetSpec::parse_image(s)
    }
}

fn non_empty(path: &str, scheme: &str) -> Result<PathBuf> {
    if path.is_empty() {
        bail!("`{scheme}:` needs a path: {scheme}:PATH");
    }
    Ok(PathBuf::from(path))
}

/// `PATH:tag` / `PATH@sha256:…` → (PATH, reference); a `:` followed by a `/` is part of the path.
fn split_layout_ref(s: &str) -> (&str, Option<String>) {
    if let Some((p, d)) = s.rsplit_once('@')
        && d.contains(':')
        && !d.contains('/')
    {
        return (p, Some(d.to_string()));
    }
    match s.rsplit_once(':') {
        Some((p, tag)) if !tag.is_empty() && !tag.contains('/') && !p.is_empty() => {
            (p, Some(tag.to_string()))
        }
        _ => (s, None),
    }
}

/// Everything needed to turn a target into an SBOM.
pub struct Loader {
    pub image: ImageArgs,
    pub limits: Limits,
    pub show_progress: bool,
}

impl Loader {
    /// Catalogs the target.
    pub fn load(&self, spec: &TargetSpec, runtime: &tokio::runtime::Runtime) -> Result<Sbom> {
        let catalogers = all_catalogers();
        let platform = self.image.platform.as_deref();
        let progress = progress::image_progress(self.show_progress);
        // Per-layer results are cached only for registry pulls: their blobs were digest-verified
        // on download into our own cache, so a cached result stands for exactly those bytes.
        let mut layer_cache = None;
        let resolved = match spec {
            TargetSpec::Fs(path) => {
                if !path.is_dir() {
                    bail!("{} is not a directory", path.display());
                }
                return palisade_image::rootfs::scan_rootfs(path, &catalogers, &self.limits)
                    .with_context(|| format!("scanning file system {}", path.display()));
            }
            TargetSpec::Layout { path, reference } => palisade_image::source::layout::open(
                path,
                reference.as_deref(),
                platform,
                &self.limits,
            )
            .with_context(|| format!("opening OCI layout {}", path.display()))?,
            TargetSpec::DockerArchive(path) | TargetSpec::OciArchive(path) => {
                palisade_image::source::archive::open(path, platform, &self.limits)
                    .with_context(|| format!("opening image archive {}", path.display()))?
            }
            TargetSpec::Registry(reference) => {
                let cache_dir = match &self.image.cache_dir {
                    Some(d) => d.clone(),
                    None => BlobCache::default_dir().context(
                        "no user cache directory to keep layers in: pass --cache-dir DIR",
                    )?,
                };
                let cache = BlobCache::new(cache_dir.clone())
                    .with_context(|| format!("layer cache {}", cache_dir.display()))?;
                match LayerCache::new(cache_dir.join("changes"), LayerCache::default_salt()) {
                    Ok(c) => layer_cache = Some(c),
                    Err(e) => tracing::warn!("layer result cache disabled: {e}"),
                }
                let opts = RegistryOptions {
                    insecure: self.image.insecure,
                    username: self.image.username.clone(),
                    password: self.image.password.clone(),
                    platform: self.image.platform.clone(),
                    docker_config: self.image.docker_config.clone(),
                    max_concurrent_downloads: 4,
                };
                runtime
                    .block_on(palisade_image::registry::resolve(
                        reference,
                        &opts,
                        &cache,
                        &self.limits,
                        progress.clone(),
                    ))
                    .with_context(|| format!("pulling {reference}"))?
            }
        };
        let name = resolved.target.name.clone();
        let options = ScanOptions { layer_cache };
        palisade_image::scan::scan_image_with(
            resolved,
            &catalogers,
            &self.limits,
            progress.as_ref(),
            &options,
        )
        .with_context(|| format!("reading the layers of {name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        assert_eq!(
            TargetSpec::parse_image("oci:/tmp/layout:v1").unwrap(),
            TargetSpec::Layout {
                path: "/tmp/layout".into(),
                reference: Some("v1".into())
            }
        );
        assert_eq!(
            TargetSpec::parse_image("oci:./l").unwrap(),
            TargetSpec::Layout {
                path: "./l".into(),
                reference: None
            }
        );
        assert_eq!(
            TargetSpec::parse_image("oci:/x@sha256:abcd").unwrap(),
            TargetSpec::Layout {
                path: "/x".into(),
                reference: Some("sha256:abcd".into())
            }
        );
        assert_eq!(
            TargetSpec::parse_image("docker-archive:/tmp/a.tar").unwrap(),
            TargetSpec::DockerArchive("/tmp/a.tar".into())
        );
        assert_eq!(
            TargetSpec::parse_image("oci-archive:a.tar").unwrap(),
            TargetSpec::OciArchive("a.tar".into())
        );
        assert_eq!(
            TargetSpec::parse_image("127.0.0.1:5000/x:1").unwrap(),
            TargetSpec::Registry("127.0.0.1:5000/x:1".into())
        );
        assert!(TargetSpec::parse_image("oci:").is_err());
        assert!(TargetSpec::parse_image("docker-archive:").is_err());
        assert_eq!(
            TargetSpec::parse_any("fs:/srv/root").unwrap(),
            TargetSpec::Fs("/srv/root".into())
        );
        let dir = std::env::temp_dir();
        let d = dir.to_str().unwrap();
        assert_eq!(
            TargetSpec::parse_any(d).unwrap(),
            TargetSpec::Fs(dir.clone())
        );
    }
}
