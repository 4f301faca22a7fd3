//! Image manifests, indexes and configs (OCI image spec v1 and Docker v2 schema 2), parsed
//! strictly enough that a malformed or hostile document ends in a clear error.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::digest::Sha256Digest;
use super::platform::{self, Platform};
use crate::ImageError;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker v2 schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker v2 schema 1 (signed) manifest media types: deprecated, refused with a clear error.
pub const DOCKER_SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker image config media type.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// The media types a registry is asked for (`Accept`).
pub const ACCEPT: [&str; 4] = [
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    DOCKER_MANIFEST,
];

/// Layer media types Palisade reads (the layer reader also sniffs compression from magic bytes).
pub const LAYER_MEDIA_TYPES: [&str; 11] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// Most layers an image may have (Docker's own limit is 127; leave room).
pub const MAX_LAYERS: usize = 1024;
/// Most entries an index may list.
pub const MAX_INDEX_ENTRIES: usize = 4096;
/// Deepest chain of indexes pointing at indexes.
pub const MAX_INDEX_DEPTH: usize = 4;

/// A content descriptor: what a manifest or index says about a blob it points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Sha256Digest,
    pub size: u64,
    pub platform: Option<Platform>,
    pub annotations: BTreeMap<String, String>,
    pub urls: Vec<String>,
}

/// A platform-specific image manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifest {
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// An OCI index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageIndex {
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

/// Either kind of manifest document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: Option<String>,
    digest: String,
    size: i64,
    #[serde(default)]
    platform: Option<RawPlatform>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    urls: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    manifests: Option<Vec<RawDescriptor>>,
    // Schema 1 marker.
    #[serde(default)]
    fs_layers: Option<serde_json::Value>,
}

/// Serde reads a struct from a JSON array too; documents must be objects.
pub(crate) fn require_object(what: &str, bytes: &[u8]) -> Result<(), ImageError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        _ => Err(malformed(what, "invalid JSON: not a JSON object")),
    }
}

fn malformed(what: &str, message: impl Into<String>) -> ImageError {
    ImageError::Malformed {
        what: what.to_string(),
        message: message.into(),
    }
}

fn descriptor(
    what: &str,
    raw: RawDescriptor,
    default_type: &str,
) -> Result<Descriptor, ImageError> {
    let digest = Sha256Digest::parse(&raw.digest).map_err(|e| malformed(what, e.to_string()))?;
    let size = u64::try_from(raw.size)
        .map_err(|_| malformed(what, format!("negative size {} for {digest}", raw.size)))?;
    let platform = raw.platform.map(|p| Platform {
        os: p.os,
        architecture: p.architecture,
        variant: p.variant.filter(|v| !v.is_empty()),
    });
    Ok(Descriptor {
        media_type: raw.media_type.unwrap_or_else(|| default_type.to_string()),
        digest,
        size,
        platform,
        annotations: raw.annotations.unwrap_or_default(),
        urls: raw.urls.unwrap_or_default(),
    })
}

/// Parses a manifest, index or manifest list. `content_type` is the HTTP `Content-Type` (or the
/// descriptor media type) when known; the document's own `mediaType` wins when present.
/// Schema 1 manifests, artifacts whose config is not an image config, and unknown layer types
/// are refused with [`ImageError::Unsupported`].
pub fn parse_manifest(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, ImageError> {
    let what = "manifest";
    require_object(what, bytes)?;
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| malformed(what, format!("invalid JSON: {e}")))?;
    let content_type = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .filter(|c| !c.is_empty() && c != "application/json" && c != "text/plain");
    let media_type = raw.media_type.clone().or(content_type);
    if raw.schema_version == Some(1)
        || raw.fs_layers.is_some()
        || media_type
            .as_deref()
            .is_some_and(|m| DOCKER_SCHEMA1.contains(&m))
    {
        return Err(ImageError::Unsupported {
            what: "manifest".into(),
            value: "Docker schema 1 (deprecated since 2017); re-push the image with a current tool"
                .into(),
        });
    }
    match raw.schema_version {
        Some(2) => {}
        Some(v) => return Err(malformed(what, format!("unsupported schemaVersion {v}"))),
        None => return Err(malformed(what, "missing schemaVersion")),
    }
    let is_index = match media_type.as_deref() {
        Some(OCI_INDEX) | Some(DOCKER_MANIFEST_LIST) => true,
        Some(OCI_MANIFEST) | Some(DOCKER_MANIFEST) => false,
        Some(other) => {
            return Err(ImageError::Unsupported {
                what: "manifest media type".into(),
                value: other.to_string(),
            });
        }
        None => match (&raw.manifests, &raw.config) {
            (Some(_), None) => true,
            (None, Some(_)) => false,
            _ => return Err(malformed(what, "neither an image manifest nor an index")),
        },
    };
    if is_index {
        if raw.config.is_some() || raw.layers.is_some() {
            return Err(malformed(
                "index",
                "an index must not have config or layers",
            ));
        }
        let entries = raw
            .manifests
            .ok_or_else(|| malformed("index", "missing manifests"))?;
        if entries.len() > MAX_INDEX_ENTRIES {
            return Err(malformed(
                "index",
                format!("{} entries (more than {MAX_INDEX_ENTRIES})", entries.len()),
            ));
        }
        let manifests = entries
            .into_iter()
            .map(|d| descriptor("index entry", d, OCI_MANIFEST))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Manifest::Index(ImageIndex {
            media_type: media_type.unwrap_or_else(|| OCI_INDEX.to_string()),
            manifests,
        }))
    } else {
        if raw.manifests.is_some() {
            return Err(malformed(what, "an image manifest must not list manifests"));
        }
        let config = descriptor(
            "manifest config",
            raw.config
                .ok_or_else(|| malformed(what, "missing config"))?,
            OCI_CONFIG,
        )?;
        if config.media_type != OCI_CONFIG && config.media_type != DOCKER_CONFIG {
            return Err(ImageError::Unsupported {
                what: "artifact (not a container image; config media type)".into(),
                value: config.media_type,
            });
        }
        let raw_layers = raw
            .layers
            .ok_or_else(|| malformed(what, "missing layers"))?;
        if raw_layers.len() > MAX_LAYERS {
            return Err(malformed(
                what,
                format!("{} layers (more than {MAX_LAYERS})", raw_layers.len()),
            ));
        }
        let layers = raw_layers
            .into_iter()
            .map(|d| {
                descriptor(
                    "manifest layer",
                    d,
                    "application/vnd.oci.image.layer.v1.tar",
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(bad) = layers
            .iter()
            .find(|l| !LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()))
        {
            return Err(ImageError::Unsupported {
                what: format!("layer media type (layer {})", bad.digest),
                value: bad.media_type.clone(),
            });
        }
        Ok(Manifest::Image(ImageManifest {
            media_type: media_type.unwrap_or_else(|| OCI_MANIFEST.to_string()),
            config,
            layers,
        }))
    }
}

impl ImageIndex {
    /// Picks the entry for `wanted` (default `linux/amd64`), ignoring entries that are not
    /// manifests or indexes (attestations, signatures, other artifacts).
    pub fn select(
        &self,
        reference: &str,
        wanted: Option<&Platform>,
    ) -> Result<&Descriptor, ImageError> {
        let entries: Vec<(Option<Platform>, &Descriptor)> = self
            .manifests
            .iter()
            .filter(|d| {
                [
                    OCI_MANIFEST,
                    DOCKER_MANIFEST,
                    OCI_INDEX,
                    DOCKER_MANIFEST_LIST,
                ]
                .contains(&d.media_type.as_str())
                    && d.annotations
                        .get("vnd.docker.reference.type")
                        .is_none_or(|t| t != "attestation-manifest")
            })
            .map(|d| (d.platform.clone(), d))
            .collect();
        platform::select(reference, &entries, wanted).copied()
    }
}

/// The parts of an image config Palisade uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageConfigInfo {
    pub platform: Platform,
    /// `rootfs.diff_ids`: digests of the uncompressed layers, base first.
    pub diff_ids: Vec<Sha256Digest>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    rootfs: Option<RawRootfs>,
}

#[derive(Deserialize)]
struct RawRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// Parses an image config (already digest-verified) into JSON plus the fields Palisade uses.
pub fn parse_config(bytes: &[u8]) -> Result<(serde_json::Value, ImageConfigInfo), ImageError> {
    require_object("image config", bytes)?;
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| malformed("image config", format!("invalid JSON: {e}")))?;
    let raw: RawConfig = serde_json::from_value(value.clone())
        .map_err(|e| malformed("image config", e.to_string()))?;
    let mut diff_ids = Vec::new();
    if let Some(rootfs) = raw.rootfs {
        if rootfs.diff_ids.len() > MAX_LAYERS {
            return Err(malformed("image config", "too many diff_ids"));
        }
        for d in rootfs.diff_ids {
            diff_ids.push(
                Sha256Digest::parse(&d)
                    .map_err(|e| malformed("image config diff_id", e.to_string()))?,
            );
        }
    }
    Ok((
        value,
        ImageConfigInfo {
            platform: Platform {
                os: raw.os.unwrap_or_default(),
                architecture: raw.architecture.unwrap_or_default(),
                variant: raw.variant.filter(|v| !v.is_empty()),
            },
            diff_ids,
        },
    ))
}

/// If the user asked for a platform and the image (a single manifest, or an index entry
/// without a platform) says it is another one, refuse rather than scan the wrong thing.
pub fn check_config_platform(
    reference: &str,
    wanted: Option<&Platform>,
    config: &ImageConfigInfo,
) -> Result<(), ImageError> {
    if let Some(want) = wanted
        && !config.platform.os.is_empty()
        && !want.matches(&config.platform)
    {
        return Err(ImageError::PlatformNotFound {
            reference: reference.to_string(),
            platform: want.to_string(),
            available: config.platform.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn image_manifest(layer_type: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
               "config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{D1}","size":10}},
               "layers":[{{"mediaType":"{layer_type}","digest":"{D2}","size":20}}]}}"#
        )
    }

    #[test]
    fn parses_docker_v2s2_manifest() {
        let m = parse_manifest(
            image_manifest("application/vnd.docker.image.rootfs.diff.tar.gzip").as_bytes(),
            None,
        )
        .unwrap();
        let Manifest::Image(m) = m else {
            panic!("not an image")
        };
        assert_eq!(m.config.digest.as_str(), D1);
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.layers[0].size, 20);
    }

    #[test]
    fn parses_oci_manifest_without_media_type_field() {
        let body = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{D1}","size":1}},
               "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"{D2}","size":2}}]}}"#
        );
        let m = parse_manifest(
            body.as_bytes(),
            Some(&format!("{OCI_MANIFEST}; charset=utf-8")),
        )
        .unwrap();
        assert!(matches!(m, Manifest::Image(ref i) if i.media_type == OCI_MANIFEST));
        let m = parse_manifest(body.as_bytes(), None).unwrap();
        assert!(matches!(m, Manifest::Image(_)));
    }

    #[test]
    fn parses_index_and_selects_platform() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
              {{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":5,"platform":{{"os":"linux","architecture":"amd64"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":5,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":5,"platform":{{"os":"unknown","architecture":"unknown"}},
                "annotations":{{"vnd.docker.reference.type":"attestation-manifest"}}}}]}}"#
        );
        let Manifest::Index(idx) = parse_manifest(body.as_bytes(), None).unwrap() else {
            panic!("not an index")
        };
        assert_eq!(idx.select("r", None).unwrap().digest.as_str(), D1);
        let arm = Platform::parse("linux/arm64").unwrap();
        assert_eq!(idx.select("r", Some(&arm)).unwrap().digest.as_str(), D2);
        let err = idx
            .select("r", Some(&Platform::parse("linux/ppc64le").unwrap()))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no manifest for platform linux/ppc64le in r (available: linux/amd64, linux/arm64/v8)"
        );
    }

    #[test]
    fn rejects_malformed_and_unsupported() {
        let cases: Vec<(String, &str)> = vec![
            ("not json".into(), "invalid JSON"),
            ("[]".into(), "invalid JSON"),
            (r#"{"schemaVersion":1,"fsLayers":[]}"#.into(), "schema 1"),
            (r#"{"schemaVersion":3,"layers":[]}"#.into(), "schemaVersion 3"),
            (r#"{"layers":[]}"#.into(), "missing schemaVersion"),
            (r#"{"schemaVersion":2}"#.into(), "neither"),
            (
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[]}}"#),
                "missing config",
            ),
            (
                image_manifest("application/vnd.cncf.helm.chart.content.v1.tar+gzip"),
                "layer media type",
            ),
            (
                image_manifest("x").replace(D2, "sha256:../../etc/passwd"),
                "digest",
            ),
            (
                image_manifest("application/vnd.oci.image.layer.v1.tar").replace("\"size\":20", "\"size\":-1"),
                "negative size",
            ),
            (
                image_manifest("application/vnd.oci.image.layer.v1.tar").replace(DOCKER_CONFIG, "application/vnd.cncf.helm.config.v1+json"),
                "not a container image",
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json"}"#.into(),
                "unsupported manifest media type",
            ),
        ];
        for (body, want) in cases {
            let err = parse_manifest(body.as_bytes(), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{body}: {err}");
        }
    }

    #[test]
    fn parses_config() {
        let body = format!(
            r#"{{"architecture":"arm64","variant":"v8","os":"linux","rootfs":{{"type":"layers","diff_ids":["{D1}"]}}}}"#
        );
        let (_, info) = parse_config(body.as_bytes()).unwrap();
        assert_eq!(info.platform.to_string(), "linux/arm64/v8");
        assert_eq!(info.diff_ids.len(), 1);
        let amd = Platform::parse("linux/amd64").unwrap();
        assert!(check_config_platform("r", Some(&amd), &info).is_err());
        assert!(check_config_platform("r", None, &info).is_ok());
        assert!(parse_config(br#"{"rootfs":{"diff_ids":["md5:x"]}}"#).is_err());
    }
}
