//! PHP Composer packages: `composer.lock` (`packages` and `packages-dev`) and
//! `vendor/composer/installed.json` (Composer 1: an array; Composer 2: `{"packages": […]}`).
//!
//! When an application has both, only `installed.json` is read: it is what was actually
//! installed (a `--no-dev` install leaves the lock file's dev packages out). Versions drop
//! Composer's cosmetic `v` prefix (`v5.4.1` → `5.4.1`, as advisories write them); branch
//! versions (`dev-main`) are not releases and are skipped.

use super::{CatalogContext, CatalogError, CatalogOutput, Cataloger, FileMeta, Interest};
use crate::fs::{EntryKind, ImageFs};
use palisade_core::{Ecosystem, Package, PackageLocation};
use serde_json::Value;
use std::collections::HashSet;

const NAME: &str = "php";

pub use super::FormatError;
const INSTALLED_SUFFIX: &str = "/vendor/composer/installed.json";

/// Finds Composer packages.
pub struct PhpCataloger;

/// One Composer package (`vendor/name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposerPackage {
    pub name: String,
    pub version: String,
    pub license: Option<String>,
}

fn package_list(v: &Value, out: &mut Vec<ComposerPackage>) -> Result<(), FormatError> {
    let list = v.as_array().ok_or("package list is not an array")?;
    for p in list {
        let Some(o) = p.as_object() else {
            return Err("package entry is not an object".into());
        };
        let name = o.get("name").and_then(Value::as_str).unwrap_or("");
        let version = o.get("version").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() || version.is_empty() {
            return Err("package entry without name or version".into());
        }
        if version.starts_with("dev-") || version.ends_with("-dev") {
            continue;
        }
        let version = match version.strip_prefix(['v', 'V']) {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
            _ => version,
        };
        let license = o.get("license").and_then(|l| match l {
            Value::String(s) => Some(s.clone()),
            Value::Array(a) => {
                let ls: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                (!ls.is_empty()).then(|| ls.join(" OR "))
            }
            _ => None,
        });
        out.push(ComposerPackage {
            name: name.to_string(),
            version: version.to_string(),
            license,
        });
    }
    Ok(())
}

/// Parses a `composer.lock`: `packages` and `packages-dev`.
pub fn parse_composer_lock(data: &[u8]) -> Result<Vec<ComposerPackage>, FormatError> {
    let v: Value = serde_json::from_slice(data).map_err(|e| format!("invalid JSON: {e}"))?;
    let o = v.as_object().ok_or("composer.lock is not an object")?;
    let mut out = Vec::new();
    let mut any = false;
    for key in ["packages", "packages-dev"] {
        if let Some(list) = o.get(key) {
            any = true;
            if !list.is_null() {
                package_list(list, &mut out)?;
            }
        }
    }
    if !any {
        return Err("no `packages`: not a composer.lock".into());
    }
    Ok(out)
}

/// Parses `vendor/composer/installed.json` of Composer 1 (array) or 2 (object).
pub fn parse_installed_json(data: &[u8]) -> Result<Vec<ComposerPackage>, FormatError> {
    let v: Value = serde_json::from_slice(data).map_err(|e| format!("invalid JSON: {e}"))?;
    let mut out = Vec::new();
    match &v {
        Value::Array(_) => package_list(&v, &mut out)?,
        Value::Object(o) => package_list(
            o.get("packages").ok_or("no `packages` in installed.json")?,
            &mut out,
        )?,
        _ => return Err("installed.json is neither an array nor an object".into()),
    }
    Ok(out)
}

fn package(p: ComposerPackage, path: &str) -> Package {
    let mut pkg = Package::new(
        Ecosystem::Packagist,
        p.name,
        p.version,
        PackageLocation {
            path: path.to_string(),
            layer_digest: None,
        },
    );
    pkg.license = p.license;
    pkg
}

impl Cataloger for PhpCataloger {
    fn name(&self) -> &'static str {
        NAME
    }

    fn interest(&self, file: &FileMeta<'_>) -> Interest {
        if file.path.ends_with("/composer.lock") || file.path.ends_with(INSTALLED_SUFFIX) {
            Interest::Keep
        } else {
            Interest::Skip
        }
    }

    fn catalog(&self, fs: &ImageFs, _ctx: &CatalogContext) -> CatalogOutput {
        let mut out = CatalogOutput::default();
        let mut installed_apps: HashSet<&str> = HashSet::new();
        let mut locks = Vec::new();
        for (path, entry) in fs.iter() {
            let EntryKind::File(data) = &entry.kind else {
                continue;
            };
            if let Some(app) = path.strip_suffix(INSTALLED_SUFFIX) {
                match parse_installed_json(data) {
                    Ok(pkgs) => {
                        installed_apps.insert(app);
                        out.packages
                            .extend(pkgs.into_iter().map(|p| package(p, path)));
                    }
                    Err(e) => out.errors.push(CatalogError::new(NAME, path, e)),
                }
            } else if let Some(app) = path.strip_suffix("/composer.lock") {
                locks.push((app, path, data));
            }
        }
        for (app, path, data) in locks {
            if installed_apps.contains(app) {
                continue;
            }
            match parse_composer_lock(data) {
                Ok(pkgs) => out
                    .packages
                    .extend(pkgs.into_iter().map(|p| package(p, path))),
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

    const LOCK: &str = r#"{
    "_readme": ["This file locks the dependencies of your project to a known state"],
    "content-hash": "abc",
    "packages": [
        {"name": "guzzlehttp/guzzle", "version": "7.4.0", "source": {"type": "git"}, "license": ["MIT"], "type": "library"},
        {"name": "symfony/http-kernel", "version": "v5.4.1", "license": ["MIT"]},
        {"name": "acme/fork", "version": "dev-main"}
    ],
    "packages-dev": [
        {"name": "phpunit/phpunit", "version": "9.5.10", "license": ["BSD-3-Clause"]}
    ],
    "aliases": [], "minimum-stability": "stable", "plugin-api-version": "2.1.0"
}"#;

    #[test]
    fn composer_lock() {
        let got: Vec<_> = parse_composer_lock(LOCK.as_bytes())
            .unwrap()
            .into_iter()
            .map(|p| format!("{}@{}", p.name, p.version))
            .collect();
        assert_eq!(
            got,
            [
                "guzzlehttp/guzzle@7.4.0",
                "symfony/http-kernel@5.4.1",
                "phpunit/phpunit@9.5.10"
            ]
        );
        assert!(parse_composer_lock(b"{}").is_err());
        assert!(parse_composer_lock(br#"{"packages": [{"name": "x"}]}"#).is_err());
        assert!(parse_composer_lock(br#"{"packages": {}}"#).is_err());
        assert!(parse_composer_lock(b"[").is_err());
    }

    #[test]
    fn installed_json_v1_and_v2() {
        let v1 = br#"[{"name": "monolog/monolog", "version": "1.25.1", "version_normalized": "1.25.1.0", "license": ["MIT"]}]"#;
        let v2 = br#"{"packages": [{"name": "monolog/monolog", "version": "2.3.5", "install-path": "../monolog/monolog"}], "dev": true, "dev-package-names": []}"#;
        let p1 = parse_installed_json(v1).unwrap();
        assert_eq!(p1[0].version, "1.25.1");
        assert_eq!(p1[0].license.as_deref(), Some("MIT"));
        let p2 = parse_installed_json(v2).unwrap();
        assert_eq!(p2[0].version, "2.3.5");
        assert!(parse_installed_json(b"3").is_err());
        assert!(parse_installed_json(b"{}").is_err());
    }

    #[test]
    fn installed_json_wins_over_lock() {
        let mut fs = ImageFs::new(40);
        let mut put = |p: &str, d: &[u8]| {
            fs.insert(
                p.to_string(),
                FileEntry {
                    layer: None,
                    mode: 0o644,
                    kind: EntryKind::File(Arc::from(d)),
                },
            )
        };
        put("/app/composer.lock", LOCK.as_bytes());
        put(
            "/app/vendor/composer/installed.json",
            br#"{"packages": [{"name": "guzzlehttp/guzzle", "version": "7.4.0"}]}"#,
        );
        put("/other/composer.lock", LOCK.as_bytes());
        let out = PhpCataloger.catalog(&fs, &CatalogContext::default());
        assert!(out.errors.is_empty());
        let got: Vec<_> = out
            .packages
            .iter()
            .map(|p| format!("{} {}", p.purl, p.location.path))
            .collect();
        assert_eq!(
            got,
            [
                "pkg:composer/guzzlehttp/guzzle@7.4.0 /app/vendor/composer/installed.json",
                "pkg:composer/guzzlehttp/guzzle@7.4.0 /other/composer.lock",
                "pkg:composer/symfony/http-kernel@5.4.1 /other/composer.lock",
                "pkg:composer/phpunit/phpunit@9.5.10 /other/composer.lock",
            ]
        );
        let f = |path| FileMeta {
            path,
            size: 10,
            mode: 0o644,
        };
        assert_eq!(
            PhpCataloger.interest(&f("/app/composer.lock")),
            Interest::Keep
        );
        assert_eq!(
            PhpCataloger.interest(&f("/app/composer.json")),
            Interest::Skip
        );
    }
}
