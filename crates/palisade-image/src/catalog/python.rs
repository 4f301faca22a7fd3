//! Python packages installed by pip, wheels or distro packages: the core metadata file of each
//! distribution (`*.dist-info/METADATA`, `*.egg-info/PKG-INFO`, a single-file `*.egg-info`, or
//! `*.egg/EGG-INFO/PKG-INFO`)
//! found in any `site-packages` or `dist-packages` directory.

use super::{CatalogContext, CatalogError, CatalogOutput, Cataloger, FileMeta, Interest};
use crate::fs::{EntryKind, ImageFs};
use palisade_core::{Ecosystem, Package, PackageLocation};
use std::collections::HashSet;

const NAME: &str = "python";

pub use super::FormatError;

/// Cap on the header lines read from one metadata file (the body is the long description).
const MAX_HEADER_LINES: usize = 10_000;

/// Finds installed Python distributions from their core metadata.
pub struct PythonCataloger;

/// The fields of a core metadata file (PEP 241/314/345/566) Palisade uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonMetadata {
    /// `Name` exactly as written (matching normalises it, PEP 503).
    pub name: String,
    pub version: String,
    /// `License`, or the `License-Expression` of newer metadata.
    pub license: Option<String>,
}

/// Whether a path is a core metadata file Palisade reads. Cheap: suffix checks first.
pub fn is_metadata_path(path: &str) -> bool {
    let (dir, file) = match path.rsplit_once('/') {
        Some(x) => x,
        None => return false,
    };
    let shaped = if file == "METADATA" {
        dir.ends_with(".dist-info")
    } else if file == "PKG-INFO" {
        // `x.egg-info/PKG-INFO`, or `x-1.0-py3.11.egg/EGG-INFO/PKG-INFO` of an unzipped egg.
        dir.ends_with(".egg-info") || dir.ends_with(".egg/EGG-INFO")
    } else {
        file.ends_with(".egg-info")
    };
    shaped && in_site_dir(path)
}

fn in_site_dir(path: &str) -> bool {
    path.contains("/site-packages/") || path.contains("/dist-packages/")
}

/// Parses the RFC 822-style header block of a core metadata file.
pub fn parse_metadata(data: &[u8]) -> Result<PythonMetadata, FormatError> {
    let text = String::from_utf8_lossy(data);
    let mut name = None;
    let mut version = None;
    let mut license: Option<String> = None;
    let mut license_expr = None;
    // The field a continuation line belongs to (only License continues in practice).
    let mut last_was_license = false;
    for (i, raw) in text.lines().enumerate() {
        if i >= MAX_HEADER_LINES {
            break;
        }
        let line = raw.trim_end_matches('\r');
        if line.is_empty() {
            break; // end of headers; the body is the description
        }
        if line.starts_with([' ', '\t']) {
            if last_was_license && let Some(l) = license.as_mut() {
                l.push('\n');
                l.push_str(line.trim());
            }
            continue;
        }
        last_was_license = false;
        let Some((key, value)) = line.split_once(':') else {
            if i == 0 {
                return Err("not a metadata header block".into());
            }
            continue;
        };
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "name" if name.is_none() => name = Some(value.to_string()),
            "version" if version.is_none() => version = Some(value.to_string()),
            "license" if license.is_none() => {
                license = Some(value.to_string());
                last_was_license = true;
            }
            "license-expression" if license_expr.is_none() => {
                license_expr = Some(value.to_string())
            }
            _ => {}
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or("no Name header in metadata")?;
    let version = version
        .filter(|v| !v.is_empty())
        .ok_or("no Version header in metadata")?;
    let license = license_expr
        .or(license)
        .filter(|l| !l.is_empty() && l != "UNKNOWN");
    Ok(PythonMetadata {
        name,
        version,
        license,
    })
}

/// PEP 503 normalised name: lower case, runs of `-`, `_`, `.` become one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The `site-packages` (or `dist-packages`) directory a metadata path lies in.
fn site_dir(path: &str) -> &str {
    for marker in ["/site-packages/", "/dist-packages/"] {
        if let Some(i) = path.rfind(marker) {
            return &path[..i + marker.len() - 1];
        }
    }
    path
}

impl Cataloger for PythonCataloger {
    fn name(&self) -> &'static str {
        NAME
    }

    fn interest(&self, file: &FileMeta<'_>) -> Interest {
        if is_metadata_path(file.path) {
            Interest::Keep
        } else {
            Interest::Skip
        }
    }

    fn catalog(&self, fs: &ImageFs, _ctx: &CatalogContext) -> CatalogOutput {
        let mut out = CatalogOutput::default();
        // A distribution can be described twice in one directory (a `.dist-info` and a legacy
        // `.egg-info` of the same release): report it once.
        let mut seen: HashSet<(String, String, String)> = HashSet::new();
        for (path, entry) in fs.iter() {
            let EntryKind::File(data) = &entry.kind else {
                continue;
            };
            if !is_metadata_path(path) {
                continue;
            }
            match parse_metadata(data) {
                Ok(meta) => {
                    let key = (
                        site_dir(path).to_string(),
                        normalize_name(&meta.name),
                        meta.version.clone(),
                    );
                    if !seen.insert(key) {
                        continue;
                    }
                    let mut p = Package::new(
                        Ecosystem::PyPI,
                        meta.name,
                        meta.version,
                        PackageLocation {
                            path: path.to_string(),
                            layer_digest: None,
                        },
                    );
                    p.license = meta.license;
                    out.packages.push(p);
                }
                Err(e) => out.errors.push(CatalogError::new(NAME, path, e)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FileEntry;
    use std::sync::Arc;

    const WHEEL_METADATA: &str = "Metadata-Version: 2.1\nName: PyYAML\nVersion: 5.3.1\nSummary: YAML parser and emitter for Python\nHome-page: https://pyyaml.org/\nAuthor: Kirill Simonov\nLicense: MIT\nPlatform: Any\nClassifier: Programming Language :: Python\nRequires-Python: >=3.6\n\nYAML is a data serialization format designed for human readability.\nName: not-a-header\n";

    fn kept(fs: &mut ImageFs, path: &str, data: &[u8]) {
        fs.insert(
            path.to_string(),
            FileEntry {
                layer: None,
                mode: 0o644,
                kind: EntryKind::File(Arc::from(data)),
            },
        );
    }

    #[test]
    fn parses_wheel_metadata() {
        let m = parse_metadata(WHEEL_METADATA.as_bytes()).unwrap();
        assert_eq!(m.name, "PyYAML");
        assert_eq!(m.version, "5.3.1");
        assert_eq!(m.license.as_deref(), Some("MIT"));
    }

    #[test]
    fn parses_crlf_and_continuations() {
        let m = parse_metadata(
            b"Metadata-Version: 1.1\r\nName: requests\r\nVersion: 2.19.1\r\nLicense: Apache 2.0\r\n        with extra terms\r\n\r\n",
        )
        .unwrap();
        assert_eq!(m.name, "requests");
        assert_eq!(m.version, "2.19.1");
        assert_eq!(m.license.as_deref(), Some("Apache 2.0\nwith extra terms"));
    }

    #[test]
    fn rejects_missing_fields() {
        assert!(parse_metadata(b"Metadata-Version: 2.1\nName: x\n").is_err());
        assert!(parse_metadata(b"Version: 1\n").is_err());
        assert!(parse_metadata(b"\x00\x01garbage").is_err());
        assert!(parse_metadata(b"").is_err());
    }

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize_name("Zope.Interface"), "zope-interface");
        assert_eq!(normalize_name("typing__extensions"), "typing-extensions");
        assert_eq!(normalize_name("PyYAML"), "pyyaml");
    }

    #[test]
    fn interest_matches_layouts() {
        let yes = [
            "/usr/local/lib/python3.11/site-packages/PyYAML-5.3.1.dist-info/METADATA",
            "/usr/lib/python3/dist-packages/cryptography.egg-info/PKG-INFO",
            "/usr/lib/python3/dist-packages/six-1.16.0.egg-info",
            "/opt/venv/lib/python3.12/site-packages/pip-24.0.dist-info/METADATA",
            "/usr/local/lib/python3.8/site-packages/six-1.16.0-py3.8.egg/EGG-INFO/PKG-INFO",
        ];
        let no = [
            "/usr/local/lib/python3.11/site-packages/yaml/__init__.py",
            "/src/app/PyYAML-5.3.1.dist-info/METADATA",
            "/usr/lib/python3/dist-packages/foo.dist-info/RECORD",
            "/usr/lib/python3/dist-packages/foo/METADATA",
        ];
        for p in yes {
            let f = FileMeta {
                path: p,
                size: 10,
                mode: 0o644,
            };
            assert_eq!(PythonCataloger.interest(&f), Interest::Keep, "{p}");
        }
        for p in no {
            let f = FileMeta {
                path: p,
                size: 10,
                mode: 0o644,
            };
            assert_eq!(PythonCataloger.interest(&f), Interest::Skip, "{p}");
        }
    }

    #[test]
    fn catalogs_and_dedupes_within_a_site_dir() {
        let mut fs = ImageFs::new(40);
        let site = "/usr/lib/python3/dist-packages";
        kept(
            &mut fs,
            &format!("{site}/PyYAML-5.3.1.dist-info/METADATA"),
            WHEEL_METADATA.as_bytes(),
        );
        kept(
            &mut fs,
            &format!("{site}/PyYAML.egg-info/PKG-INFO"),
            b"Metadata-Version: 1.1\nName: pyyaml\nVersion: 5.3.1\n",
        );
        kept(
            &mut fs,
            &format!("{site}/broken-1.0.egg-info"),
            b"Metadata-Version: 1.1\nSummary: none\n",
        );
        kept(
            &mut fs,
            "/venv/lib/python3.11/site-packages/PyYAML-5.3.1.dist-info/METADATA",
            WHEEL_METADATA.as_bytes(),
        );
        let out = PythonCataloger.catalog(&fs, &CatalogContext::default());
        assert_eq!(out.packages.len(), 2, "{:?}", out.packages);
        assert_eq!(out.errors.len(), 1);
        assert!(out.errors[0].path.ends_with("broken-1.0.egg-info"));
        let p = &out.packages[0];
        assert_eq!(p.purl, "pkg:pypi/pyyaml@5.3.1");
        assert_eq!(p.ecosystem, Ecosystem::PyPI);
        assert!(p.location.path.ends_with("METADATA"));
    }

    /// Real metadata of the Debian-packaged Python distributions on this machine.
    #[test]
    fn parses_debian_installed_metadata() {
        let dir = std::path::Path::new("/usr/lib/python3/dist-packages");
        let Ok(rd) = std::fs::read_dir(dir) else {
            eprintln!("no {} here; skipped", dir.display());
            return;
        };
        let mut parsed = 0;
        for e in rd.flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let meta = if name.ends_with(".dist-info") {
                p.join("METADATA")
            } else if name.ends_with(".egg-info") {
                if p.is_dir() {
                    p.join("PKG-INFO")
                } else {
                    p.clone()
                }
            } else {
                continue;
            };
            let data = std::fs::read(&meta).unwrap();
            let m = parse_metadata(&data).unwrap_or_else(|e| panic!("{}: {e}", meta.display()));
            assert!(!m.version.is_empty());
            if name.ends_with(".dist-info")
                && let Some((stem, ver)) = name.trim_end_matches(".dist-info").split_once('-')
            {
                assert_eq!(normalize_name(stem), normalize_name(&m.name));
                assert_eq!(ver, m.version);
            }
            parsed += 1;
        }
        assert!(parsed > 0);
    }
}
