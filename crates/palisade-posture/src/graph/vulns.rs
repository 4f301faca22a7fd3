//! Vulnerability results of `palisade scan image --format json` (schema `palisade.scan/v1`),
//! indexed by normalised image reference and by manifest digest.

use palisade_core::Severity;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

/// Why scan results could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum VulnError {
    #[error("cannot read scan results {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a palisade.scan/v1 report: {message}")]
    Invalid { path: String, message: String },
}

/// One reported vulnerability of one package in one image.
#[derive(Debug, Clone, PartialEq)]
pub struct VulnFinding {
    pub id: String,
    pub package: String,
    pub installed_version: String,
    pub severity: Severity,
    /// Highest CVSS base score given (0.0 when none).
    pub cvss: f64,
    /// Fixed version, when one is published.
    pub fixed_version: Option<String>,
    /// True when a CVSS vector is present and says attack vector Network (`AV:N`).
    pub network: bool,
}

/// The findings of one scanned image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageVulns {
    /// The reference as scanned, normalised (see [`normalize_reference`]).
    pub reference: String,
    pub digest: Option<String>,
    pub findings: Vec<VulnFinding>,
}

/// Scan results by image.
#[derive(Debug, Clone, Default)]
pub struct VulnIndex {
    images: Vec<ImageVulns>,
    by_reference: HashMap<String, usize>,
    by_digest: HashMap<String, usize>,
}

/// One `palisade.scan/v1` report (`palisade scan image --format json`): the fields readers of
/// scan results use. Shared by the security graph and the admission vulnerability gate.
#[derive(Debug, Deserialize)]
pub struct ScanReport {
    pub schema: String,
    pub target: ScanTarget,
    #[serde(default)]
    pub vulnerabilities: Vec<ReportedVuln>,
}

/// The scanned image.
#[derive(Debug, Deserialize)]
pub struct ScanTarget {
    pub name: String,
    #[serde(default)]
    pub digest: Option<String>,
}

/// One reported vulnerability.
#[derive(Debug, Deserialize)]
pub struct ReportedVuln {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub package: Option<ReportedPackage>,
    #[serde(default)]
    pub installed_version: Option<String>,
    #[serde(default)]
    pub fixed_version: Option<String>,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    pub cvss: Vec<ReportedCvss>,
}

/// The vulnerable package.
#[derive(Debug, Deserialize)]
pub struct ReportedPackage {
    pub name: String,
}

/// One CVSS rating.
#[derive(Debug, Deserialize)]
pub struct ReportedCvss {
    #[serde(default)]
    pub vector: Option<String>,
    #[serde(default)]
    pub base_score: Option<f64>,
}

impl ScanReport {
    /// Parses a report, refusing other schemas.
    pub fn parse(text: &str) -> Result<ScanReport, String> {
        let report: ScanReport = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if report.schema != "palisade.scan/v1" {
            return Err(format!("schema is {:?}", report.schema));
        }
        Ok(report)
    }

    /// The scanned reference, normalised, and the manifest digest (from the report, else from
    /// an `image@sha256:…` reference).
    pub fn image(&self) -> (String, Option<String>) {
        let reference = normalize_reference(&self.target.name);
        let digest = self
            .target
            .digest
            .clone()
            .filter(|d| !d.is_empty())
            .or_else(|| split_digest(&self.target.name).1.map(str::to_string));
        (reference, digest)
    }
}

impl VulnIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads one report file, or every `*.json` file of a directory (recursively).
    pub fn load(path: &Path) -> Result<VulnIndex, VulnError> {
        let mut index = VulnIndex::new();
        index.load_into(path)?;
        Ok(index)
    }

    /// Adds one report file, or every `*.json` file of a directory (recursively).
    pub fn load_into(&mut self, path: &Path) -> Result<(), VulnError> {
        let read_err = |source| VulnError::Read {
            path: path.display().to_string(),
            source,
        };
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .map_err(read_err)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .collect();
            entries.sort();
            for p in entries {
                if p.is_dir() || p.extension().is_some_and(|e| e == "json") {
                    self.load_into(&p)?;
                }
            }
            return Ok(());
        }
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        self.add_json(&text).map_err(|message| VulnError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    /// Adds one `palisade.scan/v1` report given as JSON text.
    pub fn add_json(&mut self, text: &str) -> Result<(), String> {
        let report = ScanReport::parse(text)?;
        let (reference, digest) = report.image();
        let findings = report
            .vulnerabilities
            .into_iter()
            .map(|v| {
                let cvss = v
                    .cvss
                    .iter()
                    .filter_map(|c| c.base_score)
                    .fold(0.0_f64, f64::max);
                let network = v
                    .cvss
                    .iter()
                    .filter_map(|c| c.vector.as_deref())
                    .any(vector_is_network);
                VulnFinding {
                    package: v.package.map(|p| p.name).unwrap_or_default(),
                    installed_version: v.installed_version.unwrap_or_default(),
                    id: v.id,
                    severity: v.severity,
                    cvss,
                    fixed_version: v.fixed_version.filter(|f| !f.is_empty()),
                    network,
                }
            })
            .collect();
        self.add(ImageVulns {
            reference,
            digest,
            findings,
        });
        Ok(())
    }

    /// Adds the results of one image (a later result for the same reference or digest wins).
    pub fn add(&mut self, image: ImageVulns) {
        let idx = self.images.len();
        self.by_reference.insert(image.reference.clone(), idx);
        if let Some(d) = &image.digest {
            self.by_digest.insert(d.clone(), idx);
        }
        self.images.push(image);
    }

    /// Results for an image: by digest when known, else by normalised reference.
    pub fn lookup(&self, reference: &str, digest: Option<&str>) -> Option<&ImageVulns> {
        let digest = digest.or_else(|| split_digest(reference).1);
        if let Some(i) = digest.and_then(|d| self.by_digest.get(d)) {
            return self.images.get(*i);
        }
        self.by_reference
            .get(&normalize_reference(reference))
            .and_then(|i| self.images.get(*i))
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
}

/// True when a CVSS vector (v2, v3 or v4) has attack vector Network.
pub fn vector_is_network(vector: &str) -> bool {
    vector.split('/').any(|part| part == "AV:N")
}

/// Splits `name@sha256:…` into the name and the digest.
pub fn split_digest(reference: &str) -> (&str, Option<&str>) {
    match reference.split_once('@') {
        Some((name, digest)) if !digest.is_empty() => (name, Some(digest)),
        _ => (reference, None),
    }
}

/// A reference in full form: `nginx` → `docker.io/library/nginx:latest`,
/// `ghcr.io/a/b` → `ghcr.io/a/b:latest`, `index.docker.io/x/y:1` → `docker.io/x/y:1`.
/// A digest-only reference keeps its digest and gets no tag (`repo@sha256:…`).
pub fn normalize_reference(reference: &str) -> String {
    let reference = reference.trim();
    let (name, digest) = split_digest(reference);
    let (registry, rest) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest.to_string())
        }
        _ => ("docker.io", name.to_string()),
    };
    let registry = match registry {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        r => r,
    };
    let mut repo = rest;
    if registry == "docker.io" && !repo.contains('/') {
        repo = format!("library/{repo}");
    }
    let last = repo.rsplit('/').next().unwrap_or("");
    let has_tag = last.contains(':');
    match (digest, has_tag) {
        (Some(d), _) => format!("{registry}/{repo}@{d}"),
        (None, true) => format!("{registry}/{repo}"),
        (None, false) => format!("{registry}/{repo}:latest"),
    }
}

/// The digest in a container status `imageID` (`docker-pullable://nginx@sha256:…`, `sha256:…`).
pub fn digest_of_image_id(image_id: &str) -> Option<&str> {
    let start = image_id.find("sha256:")?;
    let d = &image_id[start..];
    (d.len() > "sha256:".len()).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalised() {
        assert_eq!(
            normalize_reference("nginx"),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(
            normalize_reference("nginx:1.25"),
            "docker.io/library/nginx:1.25"
        );
        assert_eq!(
            normalize_reference("bitnami/redis"),
            "docker.io/bitnami/redis:latest"
        );
        assert_eq!(
            normalize_reference("index.docker.io/bitnami/redis:7"),
            "docker.io/bitnami/redis:7"
        );
        assert_eq!(
            normalize_reference("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(
            normalize_reference("127.0.0.1:5000/app:1"),
            "127.0.0.1:5000/app:1"
        );
        assert_eq!(
            normalize_reference("ghcr.io/o/r@sha256:ab"),
            "ghcr.io/o/r@sha256:ab"
        );
        assert_eq!(
            digest_of_image_id("docker-pullable://nginx@sha256:abc"),
            Some("sha256:abc")
        );
        assert_eq!(digest_of_image_id("nginx"), None);
    }

    #[test]
    fn reads_scan_reports_and_looks_up_by_reference_and_digest() {
        let report = r#"{"schema": "palisade.scan/v1",
          "target": {"kind": "image", "name": "nginx:1.25", "digest": "sha256:feed", "platform": null, "layers": []},
          "distro": null, "db": null, "summary": {}, "packages": [],
          "vulnerabilities": [
            {"id": "CVE-2023-1", "aliases": [], "package": {"name": "openssl", "version": "3.0.1"},
             "installed_version": "3.0.1", "fixed_version": "3.0.2", "status": "fixed", "severity": "critical",
             "cvss": [{"version": "3.1", "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "base_score": 9.8}]},
            {"id": "CVE-2023-2", "aliases": [], "package": {"name": "zlib", "version": "1"},
             "installed_version": "1", "fixed_version": null, "status": "not_fixed", "severity": "high",
             "cvss": [{"version": "3.1", "vector": "CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "base_score": 8.4}]}
          ], "ignored": [], "warnings": []}"#;
        let mut idx = VulnIndex::new();
        idx.add_json(report).unwrap();
        let by_ref = idx.lookup("docker.io/library/nginx:1.25", None).unwrap();
        assert_eq!(by_ref.findings.len(), 2);
        assert!(by_ref.findings[0].network);
        assert_eq!(by_ref.findings[0].cvss, 9.8);
        assert_eq!(by_ref.findings[0].fixed_version.as_deref(), Some("3.0.2"));
        assert!(!by_ref.findings[1].network);
        assert_eq!(by_ref.findings[1].fixed_version, None);
        assert!(
            idx.lookup("registry.local/other:1", Some("sha256:feed"))
                .is_some()
        );
        assert!(idx.lookup("nginx:1.24", None).is_none());
        assert!(
            idx.add_json(r#"{"schema": "other", "target": {"name": "x"}}"#)
                .is_err()
        );
    }
}
