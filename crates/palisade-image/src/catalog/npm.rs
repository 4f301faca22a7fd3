//! npm packages: installed packages (`node_modules/<name>/package.json`, including scoped and
//! pnpm layouts) and lock files (`package-lock.json`, `npm-shrinkwrap.json`, v1–v3).
//!
//! A package found both in a lock file and installed under the same application is reported once,
//! at its installed `package.json`. Lock-file entries marked `dev` are not reported (production
//! images usually do not install them; when they are installed, their `package.json` reports them).

use super::{CatalogContext, CatalogError, CatalogOutput, Cataloger, FileMeta, Interest};
use crate::fs::{EntryKind, ImageFs};
use palisade_core::{Ecosystem, Package, PackageLocation};
use serde_json::Value;
use std::collections::HashSet;

const NAME: &str = "npm";

pub use super::FormatError;

/// Nesting depth of a v1 lock file's `dependencies` tree.
const MAX_LOCK_DEPTH: usize = 256;

/// Finds npm packages installed in `node_modules` and listed in lock files.
pub struct NpmCataloger;

/// One name and version read from npm metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NpmPackage {
    pub name: String,
    pub version: String,
    pub license: Option<String>,
}

/// Whether `path` is the manifest of an installed package:
/// `…/node_modules/<name>/package.json` or `…/node_modules/@scope/<name>/package.json`.
pub fn is_installed_manifest(path: &str) -> bool {
    let Some(dir) = path.strip_suffix("/package.json") else {
        return false;
    };
    let Some((parent, name)) = dir.rsplit_once('/') else {
        return false;
    };
    if name.is_empty() || name.starts_with('.') {
        return false;
    }
    if parent.ends_with("/node_modules") {
        return !name.starts_with('@');
    }
    match parent.rsplit_once('/') {
        Some((grand, scope)) => scope.starts_with('@') && grand.ends_with("/node_modules"),
        None => false,
    }
}

fn is_lockfile_name(name: &str) -> bool {
    name == "package-lock.json" || name == "npm-shrinkwrap.json"
}

/// Parses an installed package's `package.json`. `Ok(None)` for manifests without a name or
/// version (they do not describe a published package).
pub fn parse_package_json(data: &[u8]) -> Result<Option<NpmPackage>, FormatError> {
    let v: Value = serde_json::from_slice(data).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = v.as_object().ok_or("package.json is not an object")?;
    let name = obj.get("name").and_then(Value::as_str).unwrap_or("");
    let version = obj.get("version").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() || version.is_empty() {
        return Ok(None);
    }
    Ok(Some(NpmPackage {
        name: name.to_string(),
        version: version.to_string(),
        license: license_of(obj.get("license")),
    }))
}

fn license_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(o) => o.get("type").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// Parses a `package-lock.json` / `npm-shrinkwrap.json` of any version: the `packages` map of
/// v2/v3 when present, else the `dependencies` tree of v1. Skips the root project, links to
/// workspace members, non-registry sources (`file:`, git, URLs) and dev dependencies.
pub fn parse_package_lock(data: &[u8]) -> Result<Vec<NpmPackage>, FormatError> {
    let v: Value = serde_json::from_slice(data).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = v.as_object().ok_or("lock file is not an object")?;
    let mut out = Vec::new();
    if let Some(packages) = obj.get("packages") {
        let packages = packages.as_object().ok_or("`packages` is not an object")?;
        for (key, entry) in packages {
            // "" is the root project; keys without node_modules are workspace members.
            let Some(idx) = key.rfind("node_modules/") else {
                continue;
            };
            let Some(e) = entry.as_object() else {
                continue;
            };
            if flag(e.get("link")) || flag(e.get("dev")) {
                continue;
            }
            let installed_as = &key[idx + "node_modules/".len()..];
            let name = e
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(installed_as);
            let Some(version) = e.get("version").and_then(Value::as_str) else {
                continue;
            };
            if let Some(p) = registry_package(name, version, license_of(e.get("license"))) {
                out.push(p);
            }
        }
        return Ok(out);
    }
    if let Some(deps) = obj.get("dependencies") {
        let deps = deps.as_object().ok_or("`dependencies` is not an object")?;
        walk_v1(deps, 0, &mut out)?;
        return Ok(out);
    }
    if obj.contains_key("lockfileVersion") {
        return Ok(out); // a lock file of a project with no dependencies
    }
    Err("neither `packages` nor `dependencies` nor `lockfileVersion`: not a package lock".into())
}

fn walk_v1(
    deps: &serde_json::Map<String, Value>,
    depth: usize,
    out: &mut Vec<NpmPackage>,
) -> Result<(), FormatError> {
    if depth > MAX_LOCK_DEPTH {
        return Err(FormatError::from(format!(
            "dependencies nested deeper than {MAX_LOCK_DEPTH} levels"
        )));
    }
    for (name, entry) in deps {
        let Some(e) = entry.as_object() else {
            continue;
        };
        if !flag(e.get("dev"))
            && let Some(version) = e.get("version").and_then(Value::as_str)
            && let Some(p) = registry_package(name, version, None)
        {
            out.push(p);
        }
        if let Some(nested) = e.get("dependencies").and_then(Value::as_object) {
            walk_v1(nested, depth + 1, out)?;
        }
    }
    Ok(())
}

/// Resolves aliases (`npm:real@1.0.0`) and drops versions that are not registry releases.
fn registry_package(name: &str, version: &str, license: Option<String>) -> Option<NpmPackage> {
    let (name, version) = match version.strip_prefix("npm:") {
        Some(alias) => {
            // `@scope/name@1.0.0` or `name@1.0.0`: the version follows the last '@'.
            let at = alias.rfind('@').filter(|&i| i > 0)?;
            (&alias[..at], &alias[at + 1..])
        }
        None => (name, version),
    };
    if name.is_empty()
        || version.is_empty()
        || version.contains(':')
        || version.contains('/')
        || !version.starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    Some(NpmPackage {
        name: name.to_string(),
        version: version.to_string(),
        license,
    })
}

fn flag(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true)))
}

/// The application directory an installed package belongs to: the path before its first
/// `/node_modules/`.
fn app_dir_of_installed(path: &str) -> &str {
    match path.find("/node_modules/") {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => path,
    }
}

fn app_dir_of_lock(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((dir, _)) => dir,
        None => "/",
    }
}

fn package(p: NpmPackage, path: &str) -> Package {
    let mut pkg = Package::new(
        Ecosystem::Npm,
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

impl Cataloger for NpmCataloger {
    fn name(&self) -> &'static str {
        NAME
    }

    fn interest(&self, file: &FileMeta<'_>) -> Interest {
        let name = file.file_name();
        if (name == "package.json" && is_installed_manifest(file.path)) || is_lockfile_name(name) {
            Interest::Keep
        } else {
            Interest::Skip
        }
    }

    fn catalog(&self, fs: &ImageFs, _ctx: &CatalogContext) -> CatalogOutput {
        let mut out = CatalogOutput::default();
        let mut installed: HashSet<(String, String, String)> = HashSet::new();
        let mut locks: Vec<&str> = Vec::new();
        for (path, entry) in fs.iter() {
            let EntryKind::File(data) = &entry.kind else {
                continue;
            };
            let file = path.rsplit('/').next().unwrap_or(path);
            if is_lockfile_name(file) {
                locks.push(path);
                continue;
            }
            if file != "package.json" || !is_installed_manifest(path) {
                continue;
            }
            match parse_package_json(data) {
                Ok(Some(p)) => {
                    let key = (
                        app_dir_of_installed(path).to_string(),
                        p.name.clone(),
                        p.version.clone(),
                    );
                    // pnpm and hoisting can leave one release at several paths: report each path
                    // (they are distinct copies), but remember it for the lock-file dedupe.
                    installed.insert(key);
                    out.packages.push(package(p, path));
                }
                Ok(None) => {}
                Err(e) => out.errors.push(CatalogError::new(NAME, path, e)),
            }
        }
        for path in locks {
            let Some(data) = fs.read(path) else { continue };
            match parse_package_lock(data) {
                Ok(pkgs) => {
                    let app = app_dir_of_lock(path);
                    let mut seen: HashSet<(String, String)> = HashSet::new();
                    for p in pkgs {
                        let key = (app.to_string(), p.name.clone(), p.version.clone());
                        if installed.contains(&key) || !seen.insert((key.1, key.2)) {
                            continue;
                        }
                        out.packages.push(package(p, path));
                    }
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

    const LOCK_V1: &str = r#"{
  "name": "app", "version": "1.0.0", "lockfileVersion": 1, "requires": true,
  "dependencies": {
    "lodash": {"version": "4.17.15", "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.15.tgz", "integrity": "sha512-x"},
    "express": {"version": "4.16.0", "requires": {"debug": "2.6.9"},
      "dependencies": {"debug": {"version": "2.6.9"}, "ms": {"version": "2.0.0", "dev": true}}},
    "local-lib": {"version": "file:../local-lib"},
    "gitdep": {"version": "git+https://github.com/a/b.git#abc"},
    "string-width-cjs": {"version": "npm:string-width@4.2.3"}
  }
}"#;

    const LOCK_V3: &str = r#"{
  "name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
  "packages": {
    "": {"name": "app", "version": "1.0.0", "dependencies": {"minimist": "^1.2.0"}},
    "node_modules/minimist": {"version": "1.2.0", "resolved": "https://registry.npmjs.org/minimist/-/minimist-1.2.0.tgz", "license": "MIT"},
    "node_modules/@babel/core": {"version": "7.0.0"},
    "node_modules/a/node_modules/minimist": {"version": "0.0.8"},
    "node_modules/jest": {"version": "29.0.0", "dev": true},
    "node_modules/mylib": {"resolved": "packages/mylib", "link": true},
    "packages/mylib": {"name": "mylib", "version": "0.1.0"},
    "node_modules/sw": {"name": "string-width", "version": "4.2.3"}
  }
}"#;

    #[test]
    fn parses_lock_v1_entries_exactly() {
        let mut got: Vec<String> = parse_package_lock(LOCK_V1.as_bytes())
            .unwrap()
            .into_iter()
            .map(|p| format!("{}@{}", p.name, p.version))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "debug@2.6.9",
                "express@4.16.0",
                "lodash@4.17.15",
                "string-width@4.2.3"
            ]
        );
    }

    #[test]
    fn parses_lock_v3_packages() {
        let mut got: Vec<String> = parse_package_lock(LOCK_V3.as_bytes())
            .unwrap()
            .into_iter()
            .map(|p| format!("{}@{}", p.name, p.version))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "@babel/core@7.0.0",
                "minimist@0.0.8",
                "minimist@1.2.0",
                "string-width@4.2.3"
            ]
        );
    }

    #[test]
    fn malformed_locks_are_errors() {
        assert!(parse_package_lock(b"{").is_err());
        assert!(parse_package_lock(b"[]").is_err());
        assert!(parse_package_lock(br#"{"packages": 3}"#).is_err());
        assert!(parse_package_lock(br#"{"name": "x"}"#).is_err());
        assert!(
            parse_package_lock(br#"{"lockfileVersion": 2}"#)
                .unwrap()
                .is_empty()
        );
        // Deep nesting is bounded, not a stack overflow.
        let mut deep = String::from(r#"{"dependencies":"#);
        for _ in 0..300 {
            deep.push_str(r#"{"a":{"version":"1.0.0","dependencies":"#);
        }
        deep.push_str("{}");
        for _ in 0..300 {
            deep.push_str("}}");
        }
        deep.push('}');
        // serde_json's own recursion limit (128) or ours: either way an error.
        assert!(parse_package_lock(deep.as_bytes()).is_err());
    }

    #[test]
    fn manifest_paths() {
        assert!(is_installed_manifest(
            "/app/node_modules/lodash/package.json"
        ));
        assert!(is_installed_manifest(
            "/app/node_modules/@babel/core/package.json"
        ));
        assert!(is_installed_manifest(
            "/app/node_modules/.pnpm/a@1.0.0/node_modules/a/package.json"
        ));
        assert!(is_installed_manifest(
            "/usr/lib/node_modules/npm/package.json"
        ));
        assert!(!is_installed_manifest("/app/package.json"));
        assert!(!is_installed_manifest(
            "/app/node_modules/lodash/fp/package.json"
        ));
        assert!(!is_installed_manifest(
            "/app/node_modules/@babel/package.json"
        ));
        assert!(!is_installed_manifest("/app/node_modules/package.json"));
        assert!(!is_installed_manifest(
            "/app/node_modules/.bin/package.json"
        ));
    }

    #[test]
    fn package_json_fields() {
        let p = parse_package_json(
            br#"{"name":"@babel/core","version":"7.0.0","license":{"type":"MIT"}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.name, "@babel/core");
        assert_eq!(p.license.as_deref(), Some("MIT"));
        assert!(
            parse_package_json(br#"{"type":"module"}"#)
                .unwrap()
                .is_none()
        );
        assert!(parse_package_json(b"not json").is_err());
    }

    #[test]
    fn catalog_dedupes_lock_against_installed() {
        let mut fs = ImageFs::new(40);
        kept(&mut fs, "/app/package-lock.json", LOCK_V3.as_bytes());
        kept(
            &mut fs,
            "/app/node_modules/minimist/package.json",
            br#"{"name":"minimist","version":"1.2.0"}"#,
        );
        kept(&mut fs, "/app/node_modules/broken/package.json", b"{oops");
        // The same release installed under another app is a separate finding.
        kept(
            &mut fs,
            "/other/node_modules/@babel/core/package.json",
            br#"{"name":"@babel/core","version":"7.0.0"}"#,
        );
        let out = NpmCataloger.catalog(&fs, &CatalogContext::default());
        assert_eq!(out.errors.len(), 1);
        let mut got: Vec<String> = out
            .packages
            .iter()
            .map(|p| format!("{}@{} {}", p.name, p.version, p.location.path))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "@babel/core@7.0.0 /app/package-lock.json",
                "@babel/core@7.0.0 /other/node_modules/@babel/core/package.json",
                "minimist@0.0.8 /app/package-lock.json",
                "minimist@1.2.0 /app/node_modules/minimist/package.json",
                "string-width@4.2.3 /app/package-lock.json",
            ]
        );
        let babel = out
            .packages
            .iter()
            .find(|p| p.name == "@babel/core")
            .unwrap();
        assert_eq!(babel.purl, "pkg:npm/%40babel/core@7.0.0");
    }

    #[test]
    fn interest() {
        let f = |p| FileMeta {
            path: p,
            size: 1,
            mode: 0o644,
        };
        assert_eq!(
            NpmCataloger.interest(&f("/app/package-lock.json")),
            Interest::Keep
        );
        assert_eq!(
            NpmCataloger.interest(&f("/app/node_modules/x/package.json")),
            Interest::Keep
        );
        assert_eq!(
            NpmCataloger.interest(&f("/app/package.json")),
            Interest::Skip
        );
        assert_eq!(
            NpmCataloger.interest(&f("/app/node_modules/x/index.js")),
            Interest::Skip
        );
    }
}
