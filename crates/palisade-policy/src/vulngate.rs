//! The vulnerability gate's external data provider (`palisade-vulnerabilities`): scan results of
//! `palisade scan image --format json` (schema `palisade.scan/v1`, docs/json-schema.md) read from
//! a directory, indexed by image reference and by digest, reloaded when the directory changes.
//!
//! The bundle's `image.vulnerabilities` template (kind `PalisadeVulnerabilityGate`) asks it for
//! the images of a pod with `external_data({"provider": "palisade-vulnerabilities", "keys": [...]})`
//! and gets, per image, the severity counts and every vulnerability with its fixed version.

use crate::external::ExternalDataProvider;
use palisade_core::Severity;
use palisade_posture::graph::vulns::{ScanReport, normalize_reference, split_digest};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// The provider name templates pass to `external_data`.
pub const PROVIDER_NAME: &str = "palisade-vulnerabilities";

/// Why scan results could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum VulnGateError {
    #[error("cannot read scan results {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a palisade.scan/v1 report: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The scan result of one image, as templates receive it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageResult {
    /// The scanned reference, normalised (`nginx:1.25` is `docker.io/library/nginx:1.25`).
    pub reference: String,
    pub digest: Option<String>,
    /// The value handed to templates: `image`, `digest`, `counts` (per severity) and
    /// `vulnerabilities` (`id`, `aliases`, `severity`, `package`, `installedVersion`, `fixedVersion`).
    pub value: Value,
}

/// Scan results by normalised reference and by digest.
#[derive(Debug, Clone, Default)]
pub struct ScanResults {
    images: Vec<ImageResult>,
    by_reference: HashMap<String, usize>,
    by_digest: HashMap<String, usize>,
}

impl ScanResults {
    /// Every `*.json` report under `dir` (recursively), in path order; a later report for the
    /// same reference or digest wins.
    pub fn load(dir: &Path) -> Result<ScanResults, VulnGateError> {
        let mut results = ScanResults::default();
        for path in report_files(dir)? {
            let text = std::fs::read_to_string(&path).map_err(|source| VulnGateError::Read {
                path: path.clone(),
                source,
            })?;
            results
                .add_json(&text)
                .map_err(|message| VulnGateError::Invalid { path, message })?;
        }
        Ok(results)
    }

    /// Adds one `palisade.scan/v1` report.
    pub fn add_json(&mut self, text: &str) -> Result<(), String> {
        let report = ScanReport::parse(text)?;
        let (reference, digest) = report.image();
        let mut counts: BTreeMap<&str, u64> = [
            "critical",
            "high",
            "medium",
            "low",
            "informational",
            "unknown",
        ]
        .into_iter()
        .map(|s| (s, 0))
        .collect();
        let mut vulnerabilities = Vec::new();
        for v in report.vulnerabilities {
            let severity = severity_name(v.severity);
            *counts.entry(severity).or_insert(0) += 1;
            vulnerabilities.push(json!({
                "id": v.id,
                "aliases": v.aliases,
                "severity": severity,
                "package": v.package.map(|p| p.name).unwrap_or_default(),
                "installedVersion": v.installed_version.unwrap_or_default(),
                "fixedVersion": v.fixed_version.filter(|f| !f.is_empty()),
            }));
        }
        let value = json!({
            "image": reference,
            "digest": digest,
            "counts": counts,
            "vulnerabilities": vulnerabilities,
        });
        let index = self.images.len();
        self.by_reference.insert(reference.clone(), index);
        if let Some(d) = &digest {
            self.by_digest.insert(d.clone(), index);
        }
        self.images.push(ImageResult {
            reference,
            digest,
            value,
        });
        Ok(())
    }

    /// The result for an image reference as a pod spec writes it: by its digest when it has
    /// one (`app@sha256:…`), else by its normalised reference.
    pub fn get(&self, image: &str) -> Option<&ImageResult> {
        if let Some(i) = split_digest(image.trim())
            .1
            .and_then(|d| self.by_digest.get(d))
        {
            return self.images.get(*i);
        }
        self.by_reference
            .get(&normalize_reference(image))
            .and_then(|i| self.images.get(*i))
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Informational => "informational",
        Severity::Unknown => "unknown",
    }
}

fn report_files(dir: &Path) -> Result<Vec<PathBuf>, VulnGateError> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| VulnGateError::Read {
            path: d.clone(),
            source,
        })?;
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What identifies the directory's content: every report's path, size and modification time.
fn fingerprint(dir: &Path) -> Result<Vec<(PathBuf, u64, Option<SystemTime>)>, VulnGateError> {
    report_files(dir)?
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).map_err(|source| VulnGateError::Read {
                path: p.clone(),
                source,
            })?;
            Ok((p, meta.len(), meta.modified().ok()))
        })
        .collect()
}

type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The `palisade-vulnerabilities` provider over a results directory.
pub struct VulnerabilityProvider {
    dir: PathBuf,
    results: RwLock<Arc<ScanResults>>,
    state: Mutex<ReloadState>,
    recheck: Duration,
}

struct ReloadState {
    fingerprint: Fingerprint,
    checked: Instant,
    last_error: Option<String>,
}

impl VulnerabilityProvider {
    /// Loads the reports of `dir`; the directory is looked at again (and reloaded if a report
    /// was added, removed or changed) at most every `recheck`.
    pub fn new(dir: impl Into<PathBuf>, recheck: Duration) -> Result<Self, VulnGateError> {
        let dir = dir.into();
        let fingerprint = fingerprint(&dir)?;
        let results = ScanResults::load(&dir)?;
        Ok(VulnerabilityProvider {
            dir,
            results: RwLock::new(Arc::new(results)),
            state: Mutex::new(ReloadState {
                fingerprint,
                checked: Instant::now(),
                last_error: None,
            }),
            recheck,
        })
    }

    /// The results now in use.
    pub fn results(&self) -> Arc<ScanResults> {
        match self.results.read() {
            Ok(r) => Arc::clone(&r),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Reloads when the directory changed. A directory that no longer loads keeps the previous
    /// results (the error is returned and remembered in [`Self::last_error`]).
    pub fn reload_if_changed(&self) -> Result<bool, VulnGateError> {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.checked = Instant::now();
        let now = fingerprint(&self.dir);
        let now = match now {
            Ok(f) => f,
            Err(e) => {
                state.last_error = Some(e.to_string());
                return Err(e);
            }
        };
        if now == state.fingerprint {
            return Ok(false);
        }
        match ScanResults::load(&self.dir) {
            Ok(results) => {
                let mut slot = match self.results.write() {
                    Ok(s) => s,
                    Err(poisoned) => poisoned.into_inner(),
                };
                *slot = Arc::new(results);
                state.fingerprint = now;
                state.last_error = None;
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "scan results not reloaded; keeping the previous ones");
                state.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// The last reload failure, if the current results are older than the directory.
    pub fn last_error(&self) -> Option<String> {
        self.state.lock().ok().and_then(|s| s.last_error.clone())
    }

    fn maybe_reload(&self) {
        let due = self
            .state
            .lock()
            .map(|s| s.checked.elapsed() >= self.recheck)
            .unwrap_or(true);
        if due {
            // Errors are logged and remembered; lookups answer from the previous results.
            let _ = self.reload_if_changed();
        }
    }
}

impl ExternalDataProvider for VulnerabilityProvider {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    fn lookup(&self, keys: &[String]) -> Vec<(String, Result<Value, String>)> {
        self.maybe_reload();
        let results = self.results();
        keys.iter()
            .map(|key| {
                let answer = match results.get(key) {
                    Some(r) => Ok(r.value.clone()),
                    None => Err(format!("no scan result for {key}")),
                };
                (key.clone(), answer)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, digest: Option<&str>, vulns: &[(&str, &str, Option<&str>)]) -> String {
        let vulnerabilities: Vec<Value> = vulns
            .iter()
            .map(|(id, sev, fix)| {
                json!({"id": id, "aliases": [], "package": {"name": "libssl3", "version": "3.0.11-1",
                    "ecosystem": "Deb", "purl": "pkg:deb/debian/libssl3@3.0.11-1", "source_name": "openssl",
                    "location": {"path": "/var/lib/dpkg/status"}},
                    "installed_version": "3.0.11-1", "fixed_version": fix, "status": if fix.is_some() {"fixed"} else {"not_fixed"},
                    "severity": sev, "cvss": [], "summary": null, "references": [], "sources": ["debian-tracker"], "published": null})
            })
            .collect();
        json!({"schema": "palisade.scan/v1",
            "target": {"kind": "image", "name": name, "digest": digest, "platform": "linux/amd64", "layers": []},
            "distro": {"id": "debian", "version_id": "12", "codename": "bookworm"}, "db": null,
            "summary": {"packages": 1, "vulnerabilities": vulns.len(), "ignored": 0, "by_severity": {}},
            "packages": [], "vulnerabilities": vulnerabilities, "ignored": [], "warnings": []})
        .to_string()
    }

    #[test]
    fn indexes_by_reference_and_digest() {
        let mut r = ScanResults::default();
        r.add_json(&report(
            "nginx:1.25",
            Some("sha256:aaaa"),
            &[
                ("CVE-2024-0001", "critical", Some("3.0.13-1")),
                ("CVE-2024-0002", "medium", None),
            ],
        ))
        .unwrap();
        let by_ref = r.get("docker.io/library/nginx:1.25").unwrap();
        assert_eq!(by_ref.value["counts"]["critical"], json!(1));
        assert_eq!(by_ref.value["counts"]["high"], json!(0));
        assert_eq!(
            by_ref.value["vulnerabilities"][0]["fixedVersion"],
            json!("3.0.13-1")
        );
        assert_eq!(
            by_ref.value["vulnerabilities"][1]["fixedVersion"],
            Value::Null
        );
        assert!(r.get("nginx:1.25").is_some());
        assert!(r.get("index.docker.io/library/nginx:1.25").is_some());
        assert!(
            r.get("other@sha256:aaaa").is_some(),
            "digest wins over the name"
        );
        assert!(r.get("nginx:1.26").is_none());
        assert!(r.add_json("{\"schema\": \"other\"}").is_err());
    }

    #[test]
    fn reloads_when_the_directory_changes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            report("app:1", None, &[("CVE-1", "high", None)]),
        )
        .unwrap();
        let p = VulnerabilityProvider::new(dir.path(), Duration::ZERO).unwrap();
        let answers = p.lookup(&["app:1".into(), "app:2".into()]);
        assert!(answers[0].1.is_ok());
        assert_eq!(answers[1].1, Err("no scan result for app:2".to_string()));
        std::fs::create_dir(dir.path().join("more")).unwrap();
        std::fs::write(dir.path().join("more/b.json"), report("app:2", None, &[])).unwrap();
        let answers = p.lookup(&["app:2".into()]);
        assert!(answers[0].1.is_ok(), "{answers:?}");
        // A broken report keeps the previous results.
        std::fs::write(dir.path().join("c.json"), "{not json").unwrap();
        assert!(p.reload_if_changed().is_err());
        assert!(p.last_error().is_some());
        assert!(p.lookup(&["app:1".into()])[0].1.is_ok());
    }
}
