//! Ignore files: vulnerabilities a team has reviewed and accepted, each with a reason and an
//! optional expiry, so accepted risk is written down and comes back when it lapses.
//!
//! Two formats are read:
//!
//! * YAML (`*.yaml` / `*.yml`), the documented format:
//!
//!   ```yaml
//!   ignore:
//!     - id: CVE-2023-4863          # matches the reported id or any alias (GHSA-…, DSA-…)
//!       package: libwebp           # optional: package name, or a purl prefix (pkg:deb/debian/libwebp)
//!       reason: not reachable, images are never decoded
//!       expires: 2025-06-30        # optional: from this day on the entry no longer applies
//!   ```
//!
//!   Unknown fields are an error, so a typo (`expire:`) does not silently ignore forever.
//! * Plain text (any other name, e.g. `.palisadeignore`): one id per line, `#` starts a comment;
//!   the comment on an id's line is its reason.

use palisade_core::Package;
use serde::Deserialize;
use std::path::Path;
use thiserror::Error;
use time::Date;
use time::macros::format_description;

/// An ignore file that could not be used.
#[derive(Debug, Error)]
pub enum IgnoreError {
    #[error("ignore file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("ignore file {path}: {message}")]
    Invalid { path: String, message: String },
}

/// One accepted vulnerability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreEntry {
    /// Vulnerability id or alias (compared case-insensitively).
    pub id: String,
    /// Restricts the entry to one package: its name, or a prefix of its purl (`pkg:…`).
    pub package: Option<String>,
    pub reason: String,
    /// First day on which the entry no longer applies.
    pub expires: Option<Date>,
}

impl IgnoreEntry {
    /// Whether the entry has lapsed on `today`.
    pub fn is_expired(&self, today: Date) -> bool {
        self.expires.is_some_and(|e| today >= e)
    }

    /// Whether the entry covers a vulnerability known by `ids` in `package`.
    pub fn covers(&self, ids: &[&str], package: &Package) -> bool {
        if !ids.iter().any(|i| i.eq_ignore_ascii_case(&self.id)) {
            return false;
        }
        match &self.package {
            None => true,
            Some(p) if p.starts_with("pkg:") => package.purl.starts_with(p.as_str()),
            Some(p) => package.name == *p || package.source_name.as_deref() == Some(p.as_str()),
        }
    }
}

/// The entries of one or more ignore files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreList {
    pub entries: Vec<IgnoreEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlFile {
    #[serde(default)]
    ignore: Vec<YamlEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlEntry {
    id: String,
    #[serde(default)]
    package: Option<String>,
    reason: Option<String>,
    #[serde(default)]
    expires: Option<yaml_serde::Value>,
}

/// Upper bound on an ignore file's size: they are hand-written lists.
const MAX_IGNORE_FILE_BYTES: u64 = 8 << 20;

impl IgnoreList {
    /// Reads an ignore file, choosing the format from the extension (`.yaml`/`.yml` → YAML).
    pub fn load(path: &Path) -> Result<IgnoreList, IgnoreError> {
        let shown = path.display().to_string();
        let io = |source| IgnoreError::Io {
            path: shown.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.len() > MAX_IGNORE_FILE_BYTES {
            return Err(IgnoreError::Invalid {
                path: shown,
                message: format!("file is {} bytes, more than the 8 MiB limit", meta.len()),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if yaml {
            IgnoreList::parse_yaml(&text, &shown)
        } else {
            IgnoreList::parse_text(&text, &shown)
        }
    }

    /// Parses the YAML format; `origin` names the file in errors.
    pub fn parse_yaml(text: &str, origin: &str) -> Result<IgnoreList, IgnoreError> {
        let invalid = |message: String| IgnoreError::Invalid {
            path: origin.to_string(),
            message,
        };
        if text.trim().is_empty() {
            return Ok(IgnoreList::default());
        }
        let file: YamlFile = yaml_serde::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut entries = Vec::with_capacity(file.ignore.len());
        for (i, e) in file.ignore.into_iter().enumerate() {
            let n = i + 1;
            let id = e.id.trim().to_string();
            if id.is_empty() {
                return Err(invalid(format!("entry {n}: `id` is empty")));
            }
            let reason = match e.reason.map(|r| r.trim().to_string()) {
                Some(r) if !r.is_empty() => r,
                _ => {
                    return Err(invalid(format!(
                        "entry {n} ({id}): `reason` is required: say why this is accepted"
                    )));
                }
            };
            let expires = match e.expires {
                None | Some(yaml_serde::Value::Null) => None,
                Some(yaml_serde::Value::String(s)) => Some(parse_date(&s).ok_or_else(|| {
                    invalid(format!(
                        "entry {n} ({id}): `expires` {s:?} is not a date (YYYY-MM-DD)"
                    ))
                })?),
                Some(other) => {
                    return Err(invalid(format!(
                        "entry {n} ({id}): `expires` must be a date (YYYY-MM-DD), got {other:?}"
                    )));
                }
            };
            let package = e
                .package
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty());
            entries.push(IgnoreEntry {
                id,
                package,
                reason,
                expires,
            });
        }
        Ok(IgnoreList { entries })
    }

    /// Parses the plain format: one id per line, `#` comments (a trailing comment is the reason).
    pub fn parse_text(text: &str, origin: &str) -> Result<IgnoreList, IgnoreError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let (content, comment) = match line.split_once('#') {
                Some((c, r)) => (c.trim(), Some(r.trim())),
                None => (line.trim(), None),
            };
            if content.is_empty() {
                continue;
            }
            let mut words = content.split_whitespace();
            let id = words.next().unwrap_or_default().to_string();
            if let Some(extra) = words.next() {
                return Err(IgnoreError::Invalid {
                    path: origin.to_string(),
                    message: format!(
                        "line {}: expected one id per line, found {extra:?} after {id:?}",
                        i + 1
                    ),
                });
            }
            let reason = comment
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| format!("listed in {origin}"));
            entries.push(IgnoreEntry {
                id,
                package: None,
                reason,
                expires: None,
            });
        }
        Ok(IgnoreList { entries })
    }

    /// Appends the entries of another list (several `--ignore-file`s).
    pub fn extend(&mut self, other: IgnoreList) {
        self.entries.extend(other.entries);
    }

    /// One warning per entry that has lapsed on `today` (they no longer apply).
    pub fn expiry_warnings(&self, today: Date) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| e.is_expired(today))
            .map(|e| {
                format!(
                    "ignore entry for {}{} expired on {}; it no longer applies",
                    e.id,
                    e.package
                        .as_deref()
                        .map(|p| format!(" ({p})"))
                        .unwrap_or_default(),
                    e.expires.map(|d| d.to_string()).unwrap_or_default()
                )
            })
            .collect()
    }

    /// The first unexpired entry covering a vulnerability known by `ids` in `package`.
    pub fn find(&self, ids: &[&str], package: &Package, today: Date) -> Option<&IgnoreEntry> {
        self.entries
            .iter()
            .find(|e| !e.is_expired(today) && e.covers(ids, package))
    }
}

fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s.trim(), format_description!("[year]-[month]-[day]")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::{Ecosystem, PackageLocation};
    use time::macros::date;

    fn pkg(name: &str) -> Package {
        Package::new(Ecosystem::PyPI, name, "1.0", PackageLocation::default())
    }

    #[test]
    fn yaml_with_expiry_and_package() {
        let l = IgnoreList::parse_yaml(
            "ignore:\n  - id: CVE-2020-1\n    reason: reviewed\n    expires: 2025-01-31\n  - id: GHSA-aaaa-bbbb-cccc\n    package: pkg:pypi/jinja2\n    reason: sandbox unused\n",
            "t.yaml",
        )
        .unwrap();
        assert_eq!(l.entries.len(), 2);
        assert_eq!(l.entries[0].expires, Some(date!(2025 - 01 - 31)));
        let p = pkg("jinja2");
        assert!(l.find(&["CVE-2020-1"], &p, date!(2025 - 01 - 30)).is_some());
        assert!(l.find(&["cve-2020-1"], &p, date!(2025 - 01 - 30)).is_some());
        // Expired on its expiry day.
        assert!(l.find(&["CVE-2020-1"], &p, date!(2025 - 01 - 31)).is_none());
        assert_eq!(l.expiry_warnings(date!(2025 - 02 - 01)).len(), 1);
        assert!(l.expiry_warnings(date!(2025 - 01 - 01)).is_empty());
        // Package restriction by purl prefix.
        assert!(
            l.find(&["X", "GHSA-aaaa-bbbb-cccc"], &p, date!(2030 - 01 - 01))
                .is_some()
        );
        assert!(
            l.find(
                &["GHSA-aaaa-bbbb-cccc"],
                &pkg("flask"),
                date!(2030 - 01 - 01)
            )
            .is_none()
        );
    }

    #[test]
    fn yaml_errors_are_clear() {
        let e = IgnoreList::parse_yaml("ignore:\n  - id: CVE-1\n", "f.yaml").unwrap_err();
        assert!(e.to_string().contains("`reason` is required"), "{e}");
        let e = IgnoreList::parse_yaml(
            "ignore:\n  - id: CVE-1\n    reason: r\n    expire: 2025-01-01\n",
            "f.yaml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("expire"), "{e}");
        let e = IgnoreList::parse_yaml(
            "ignore:\n  - id: CVE-1\n    reason: r\n    expires: soon\n",
            "f.yaml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a date"), "{e}");
        assert!(
            IgnoreList::parse_yaml("", "f.yaml")
                .unwrap()
                .entries
                .is_empty()
        );
    }

    #[test]
    fn text_format() {
        let l = IgnoreList::parse_text(
            "# accepted\nCVE-2021-1  # vendor says no\n\nGHSA-x\n",
            ".palisadeignore",
        )
        .unwrap();
        assert_eq!(l.entries.len(), 2);
        assert_eq!(l.entries[0].reason, "vendor says no");
        assert_eq!(l.entries[1].reason, "listed in .palisadeignore");
        assert!(IgnoreList::parse_text("CVE-1 CVE-2\n", "x").is_err());
    }

    #[test]
    fn package_by_name_or_source_name() {
        let mut p = Package::new(Ecosystem::Deb, "libssl3", "3.0", PackageLocation::default());
        p.source_name = Some("openssl".into());
        let e = IgnoreEntry {
            id: "CVE-1".into(),
            package: Some("openssl".into()),
            reason: "r".into(),
            expires: None,
        };
        assert!(e.covers(&["CVE-1"], &p));
        assert!(!e.covers(&["CVE-2"], &p));
    }
}
