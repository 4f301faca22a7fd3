//! Image references (`[registry/]repository[:tag][@sha256:…]`) with Docker's defaults: no
//! registry means Docker Hub, and single-name Hub repositories live under `library/`.

use std::fmt;

use super::digest::Sha256Digest;
use crate::ImageError;

/// Canonical name of Docker Hub.
pub const DOCKER_HUB: &str = "docker.io";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// Registry host\[:port\], lower-cased; Docker Hub aliases become `docker.io`.
    pub registry: String,
    /// Repository path (`library/alpine`, `org/app`).
    pub repository: String,
    /// Tag; `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// Manifest digest, when pinned.
    pub digest: Option<Sha256Digest>,
}

/// Maps the many names of a registry (`index.docker.io`, `https://registry-1.docker.io/v1/`,
/// `Ghcr.io/`) to one host\[:port\] form used for credentials and `--insecure` matching.
pub fn normalize_registry_host(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("").to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" | "docker.io" => {
            DOCKER_HUB.to_string()
        }
        _ => host,
    }
}

fn invalid(reference: &str, reason: impl Into<String>) -> ImageError {
    ImageError::InvalidReference {
        reference: reference.to_string(),
        reason: reason.into(),
    }
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let sep = |x: u8| x == b'.' || x == b'_' || x == b'-';
    !b.is_empty()
        && b.iter()
            .all(|&x| x.is_ascii_lowercase() || x.is_ascii_digit() || sep(x))
        && !sep(b[0])
        && !sep(b[b.len() - 1])
        && !c.contains("..")
}

fn valid_host(h: &str) -> bool {
    let (host, port) = match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(']') || host.ends_with(']') => (host, Some(port)),
        _ => (h, None),
    };
    let host_ok = if host.starts_with('[') && host.ends_with(']') {
        host.len() > 2
            && host[1..host.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':')
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            && !host.starts_with(['.', '-'])
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

impl ImageReference {
    /// Parses a reference as `docker pull` does.
    pub fn parse(reference: &str) -> Result<Self, ImageError> {
        let r = reference.trim();
        if r.is_empty() {
            return Err(invalid(reference, "empty"));
        }
        if r.len() > 1024 {
            return Err(invalid(reference, "longer than 1024 characters"));
        }
        if r.contains("://") {
            return Err(invalid(
                reference,
                "give a reference like registry/repo:tag, not a URL",
            ));
        }
        let (name, digest) = match r.split_once('@') {
            Some((n, d)) => (
                n,
                Some(Sha256Digest::parse(d).map_err(|e| invalid(reference, e.to_string()))?),
            ),
            None => (r, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &name[last_slash + i + 1..];
                let ok = !tag.is_empty()
                    && tag.len() <= 128
                    && tag
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
                    && !tag.starts_with(['.', '-']);
                if !ok {
                    return Err(invalid(reference, format!("invalid tag {tag:?}")));
                }
                (&name[..last_slash + i], Some(tag.to_string()))
            }
            None => (name, None),
        };
        let (registry, repo) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                if !valid_host(first) {
                    return Err(invalid(
                        reference,
                        format!("invalid registry host {first:?}"),
                    ));
                }
                (normalize_registry_host(first), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        if repo.is_empty() {
            return Err(invalid(reference, "missing repository name"));
        }
        if let Some(bad) = repo.split('/').find(|c| !valid_component(c)) {
            let reason = if bad.bytes().any(|b| b.is_ascii_uppercase()) {
                format!("repository names must be lowercase ({bad:?})")
            } else {
                format!("invalid repository path component {bad:?}")
            };
            return Err(invalid(reference, reason));
        }
        let repository = if registry == DOCKER_HUB && !repo.contains('/') {
            format!("library/{repo}")
        } else {
            repo
        };
        if repository.len() > 255 {
            return Err(invalid(
                reference,
                "repository name longer than 255 characters",
            ));
        }
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(ImageReference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The reference in the form oci-client uses (a digest, when present, wins over the tag).
    pub fn to_oci(&self) -> oci_client::Reference {
        match (&self.tag, &self.digest) {
            (Some(t), Some(d)) => oci_client::Reference::with_tag_and_digest(
                self.registry.clone(),
                self.repository.clone(),
                t.clone(),
                d.to_string(),
            ),
            (_, Some(d)) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                d.to_string(),
            ),
            (t, None) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                t.clone().unwrap_or_else(|| "latest".to_string()),
            ),
        }
    }

    /// The host serving the registry API (`docker.io` is served by `index.docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            "index.docker.io"
        } else {
            &self.registry
        }
    }

    /// What to ask the manifests endpoint for: the digest if pinned, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// Whether the registry host is a loopback address (where `--insecure` is the usual fix
    /// for a TLS error).
    pub fn is_loopback(&self) -> bool {
        let host = self
            .registry
            .rsplit_once(':')
            .filter(|(h, p)| !h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(self.registry.as_str(), |(h, _)| h);
        host == "localhost" || host.starts_with("127.") || host == "[::1]"
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn docker_hub_defaults() {
        let r = ImageReference::parse("alpine").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
        let r = ImageReference::parse("nginx:1.25").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/nginx:1.25");
        let r = ImageReference::parse("bitnami/redis:7").unwrap();
        assert_eq!(r.to_string(), "docker.io/bitnami/redis:7");
        let r = ImageReference::parse("index.docker.io/library/debian:12").unwrap();
        assert_eq!(r.registry, "docker.io");
        let r = ImageReference::parse("registry-1.docker.io/ubuntu").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/ubuntu:latest");
        assert_eq!(r.api_host(), "index.docker.io");
    }

    #[test]
    fn registries_ports_digests() {
        let r = ImageReference::parse("127.0.0.1:5000/x/y:1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("127.0.0.1:5000", "x/y")
        );
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert!(r.is_loopback());
        let r = ImageReference::parse("localhost/app").unwrap();
        assert_eq!(r.registry, "localhost");
        assert_eq!(r.repository, "app");
        let r = ImageReference::parse(&format!("ghcr.io/org/app@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_ref(), D);
        assert!(!r.is_loopback());
        let r = ImageReference::parse(&format!("GHCR.io/org/app:v1@{D}")).unwrap();
        assert_eq!(r.registry, "ghcr.io");
        assert_eq!(r.to_string(), format!("ghcr.io/org/app:v1@{D}"));
        assert_eq!(r.to_oci().digest(), Some(D));
        let r = ImageReference::parse("[::1]:5000/a").unwrap();
        assert!(r.is_loopback());
        // A port-looking suffix on a single name is a tag, as in Docker.
        let r = ImageReference::parse("test.com:5000").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/test.com:5000");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "UPPER/case",
            "a//b",
            "a/b:",
            "a/b:-x",
            "https://ghcr.io/a/b",
            "ghcr.io/",
            "a@sha256:abc",
            "a@md5:abc",
            "ho st/a",
            "a/../b",
            "-a",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad:?}");
        }
        let e = ImageReference::parse("MyImage").unwrap_err().to_string();
        assert!(e.contains("lowercase"), "{e}");
    }

    #[test]
    fn normalizes_hosts() {
        assert_eq!(
            normalize_registry_host("https://index.docker.io/v1/"),
            "docker.io"
        );
        assert_eq!(
            normalize_registry_host("http://127.0.0.1:5000/v2/"),
            "127.0.0.1:5000"
        );
        assert_eq!(normalize_registry_host("GHCR.IO"), "ghcr.io");
    }
}
