//! .NET NuGet packages from the `*.deps.json` file the SDK writes next to every application:
//! `libraries` entries `"Name/Version"` of `"type": "package"` (projects and framework references
//! are not NuGet packages). Entries only present under `targets` count too.

use super::{CatalogContext, CatalogError, CatalogOutput, Cataloger, FileMeta, Interest};
use crate::fs::{EntryKind, ImageFs};
use palisade_core::{Ecosystem, Package, PackageLocation};
use serde_json::Value;
use std::collections::BTreeSet;

const NAME: &str = "dotnet";

pub use super::FormatError;

/// Finds NuGet packages in `.deps.json` files.
pub struct DotnetCataloger;

/// Parses a `.deps.json` into `(name, version)` pairs of NuGet packages, sorted and unique.
pub fn parse_deps_json(data: &[u8]) -> Result<Vec<(String, String)>, FormatError> {
    let v: Value = serde_json::from_slice(data).map_err(|e| format!("invalid JSON: {e}"))?;
    let o = v.as_object().ok_or(".deps.json is not an object")?;
    let libraries = o.get("libraries").and_then(Value::as_object);
    let targets = o.get("targets").and_then(Value::as_object);
    if libraries.is_none() && targets.is_none() {
        return Err("neither `libraries` nor `targets`: not a .deps.json".into());
    }
    let mut out = BTreeSet::new();
    let mut typed = BTreeSet::new();
    if let Some(libs) = libraries {
        for (key, lib) in libs {
            let kind = lib.get("type").and_then(Value::as_str).unwrap_or("");
            typed.insert(key.as_str());
            if kind == "package"
                && let Some(nv) = split_key(key)
            {
                out.insert(nv);
            }
        }
    }
    if let Some(targets) = targets {
        for target in targets.values() {
            let Some(entries) = target.as_object() else {
                continue;
            };
            for (key, entry) in entries {
                if typed.contains(key.as_str()) {
                    continue; // `libraries` already said what it is
                }
                if entry.get("type").and_then(Value::as_str) == Some("package")
                    && let Some(nv) = split_key(key)
                {
                    out.insert(nv);
                }
            }
        }
    }
    Ok(out.into_iter().collect())
}

fn split_key(key: &str) -> Option<(String, String)> {
    let (name, version) = key.rsplit_once('/')?;
    (!name.is_empty() && !version.is_empty()).then(|| (name.to_string(), version.to_string()))
}

impl Cataloger for DotnetCataloger {
    fn name(&self) -> &'static str {
        NAME
    }

    fn interest(&self, file: &FileMeta<'_>) -> Interest {
        if file.path.ends_with(".deps.json") {
            Interest::Keep
        } else {
            Interest::Skip
        }
    }

    fn catalog(&self, fs: &ImageFs, _ctx: &CatalogContext) -> CatalogOutput {
        let mut out = CatalogOutput::default();
        for (path, entry) in fs.iter() {
            let EntryKind::File(data) = &entry.kind else {
                continue;
            };
            if !path.ends_with(".deps.json") {
                continue;
            }
            match parse_deps_json(data) {
                Ok(pkgs) => out.packages.extend(pkgs.into_iter().map(|(n, v)| {
                    Package::new(
                        Ecosystem::NuGet,
                        n,
                        v,
                        PackageLocation {
                            path: path.to_string(),
                            layer_digest: None,
                        },
                    )
                })),
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

    const DEPS: &str = r#"{
  "runtimeTarget": {"name": ".NETCoreApp,Version=v6.0", "signature": ""},
  "compilationOptions": {},
  "targets": {
    ".NETCoreApp,Version=v6.0": {
      "MyApp/1.0.0": {"dependencies": {"Newtonsoft.Json": "12.0.1", "MyLib": "1.0.0"}, "runtime": {"MyApp.dll": {}}},
      "Newtonsoft.Json/12.0.1": {"runtime": {"lib/netstandard2.0/Newtonsoft.Json.dll": {"assemblyVersion": "12.0.0.0", "fileVersion": "12.0.1.23321"}}},
      "System.Text.Encodings.Web/4.5.0": {},
      "MyLib/1.0.0": {"runtime": {"MyLib.dll": {}}}
    },
    ".NETCoreApp,Version=v6.0/linux-x64": {
      "Newtonsoft.Json/12.0.1": {}
    }
  },
  "libraries": {
    "MyApp/1.0.0": {"type": "project", "serviceable": false, "sha512": ""},
    "Newtonsoft.Json/12.0.1": {"type": "package", "serviceable": true, "sha512": "sha512-x", "path": "newtonsoft.json/12.0.1", "hashPath": "newtonsoft.json.12.0.1.nupkg.sha512"},
    "System.Text.Encodings.Web/4.5.0": {"type": "package", "serviceable": true},
    "MyLib/1.0.0": {"type": "project", "serviceable": false}
  }
}"#;

    #[test]
    fn deps_json() {
        let got = parse_deps_json(DEPS.as_bytes()).unwrap();
        assert_eq!(
            got,
            [
                ("Newtonsoft.Json".to_string(), "12.0.1".to_string()),
                ("System.Text.Encodings.Web".into(), "4.5.0".into())
            ]
        );
        assert!(parse_deps_json(b"{}").is_err());
        assert!(parse_deps_json(b"[]").is_err());
        assert!(parse_deps_json(b"{\"libraries\": 1").is_err());
    }

    #[test]
    fn catalog() {
        let mut fs = ImageFs::new(40);
        fs.insert(
            "/app/MyApp.deps.json".into(),
            FileEntry {
                layer: None,
                mode: 0o644,
                kind: EntryKind::File(Arc::from(DEPS.as_bytes())),
            },
        );
        let out = DotnetCataloger.catalog(&fs, &CatalogContext::default());
        assert_eq!(out.packages.len(), 2);
        assert_eq!(out.packages[0].purl, "pkg:nuget/Newtonsoft.Json@12.0.1");
        assert_eq!(out.packages[0].location.path, "/app/MyApp.deps.json");
        let f = |path| FileMeta {
            path,
            size: 10,
            mode: 0o644,
        };
        assert_eq!(
            DotnetCataloger.interest(&f("/app/MyApp.deps.json")),
            Interest::Keep
        );
        assert_eq!(
            DotnetCataloger.interest(&f("/app/MyApp.runtimeconfig.json")),
            Interest::Skip
        );
    }
}
