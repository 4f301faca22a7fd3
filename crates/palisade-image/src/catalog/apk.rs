//! apk cataloger: the installed database of Alpine and Wolfi, `/lib/apk/db/installed` (or
//! `/usr/lib/apk/db/installed` in newer merged-/usr layouts).
//!
//! The file is blank-line separated records of `K:value` lines with one-letter keys: `P` name,
//! `V` version, `A` arch, `o` origin (the source package, which Alpine's secdb is keyed by),
//! `L` license; file lists (`F`, `R`, `Z`, …) and other keys are skipped.

use super::{CatalogContext, CatalogError, CatalogOutput, Cataloger, FileMeta, Interest};
use crate::fs::{EntryKind, ImageFs};
use palisade_core::{Ecosystem, Package, PackageLocation};
use thiserror::Error;

/// Where apk keeps its database, in the order they are read (the first found is used for each
/// real path; a symlink from one to the other is read once).
pub const INSTALLED_PATHS: &[&str] = &["/lib/apk/db/installed", "/usr/lib/apk/db/installed"];

/// A malformed installed database; the line number is 1-based.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ApkError {
    #[error("line {line}: expected `K:value`")]
    NotAField { line: usize },
    #[error("record at line {line} has no {field} field")]
    MissingField { line: usize, field: &'static str },
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkEntry {
    pub name: String,
    pub version: String,
    pub arch: Option<String>,
    /// `o:` — the origin (source) package.
    pub origin: Option<String>,
    pub license: Option<String>,
}

#[derive(Default)]
struct Partial {
    name: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    origin: Option<String>,
    license: Option<String>,
    line: usize,
}

/// Parses an apk installed database.
pub fn parse_installed(data: &[u8]) -> Result<Vec<ApkEntry>, ApkError> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    let mut cur: Option<Partial> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            if let Some(p) = cur.take() {
                out.push(finish(p)?);
            }
            continue;
        }
        let mut chars = line.chars();
        let (Some(key), Some(':')) = (chars.next(), chars.next()) else {
            return Err(ApkError::NotAField { line: line_no });
        };
        let value = chars.as_str().trim();
        let p = cur.get_or_insert_with(|| Partial {
            line: line_no,
            ..Default::default()
        });
        let v = || Some(value.to_string()).filter(|v| !v.is_empty());
        match key {
            'P' => p.name = v(),
            'V' => p.version = v(),
            'A' => p.arch = v(),
            'o' => p.origin = v(),
            'L' => p.license = v(),
            _ => {}
        }
    }
    if let Some(p) = cur.take() {
        out.push(finish(p)?);
    }
    Ok(out)
}

fn finish(p: Partial) -> Result<ApkEntry, ApkError> {
    Ok(ApkEntry {
        name: p.name.ok_or(ApkError::MissingField {
            line: p.line,
            field: "P",
        })?,
        version: p.version.ok_or(ApkError::MissingField {
            line: p.line,
            field: "V",
        })?,
        arch: p.arch,
        origin: p.origin,
        license: p.license,
    })
}

/// The packages of one database located at `path`. The origin's version is the package's
/// (subpackages are built from their origin at the same version).
pub fn to_packages(entries: &[ApkEntry], path: &str) -> Vec<Package> {
    entries
        .iter()
        .map(|e| {
            let mut p = Package::new(
                Ecosystem::Apk,
                e.name.clone(),
                e.version.clone(),
                PackageLocation {
                    layer_digest: None,
                    path: path.to_string(),
                },
            );
            p.arch = e.arch.clone();
            p.license = e.license.clone();
            p.source_name = Some(e.origin.clone().unwrap_or_else(|| e.name.clone()));
            p.source_version = Some(e.version.clone());
            p
        })
        .collect()
}

/// Catalogs apk databases.
pub struct ApkCataloger;

impl Cataloger for ApkCataloger {
    fn name(&self) -> &'static str {
        "apk"
    }

    fn interest(&self, file: &FileMeta<'_>) -> Interest {
        if INSTALLED_PATHS.contains(&file.path) {
            Interest::Keep
        } else {
            Interest::Skip
        }
    }

    fn catalog(&self, fs: &ImageFs, _ctx: &CatalogContext) -> CatalogOutput {
        let mut out = CatalogOutput::default();
        let mut seen = Vec::new();
        for path in INSTALLED_PATHS {
            let Some((real, entry)) = fs.lookup(path) else {
                continue;
            };
            if seen.contains(&real) {
                continue;
            }
            let data = match &entry.kind {
                EntryKind::File(data) => data,
                EntryKind::Skipped { size } => {
                    out.errors.push(CatalogError::new(
                        "apk",
                        real.clone(),
                        format!("database of {size} bytes was not kept (size limit)"),
                    ));
                    seen.push(real);
                    continue;
                }
                _ => continue,
            };
            match parse_installed(data) {
                Ok(entries) => out.packages.extend(to_packages(&entries, &real)),
                Err(e) => out.errors.push(CatalogError::new("apk", real.clone(), e)),
            }
            seen.push(real);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FileEntry;
    use std::sync::Arc;

    /// Shape of a real Alpine 3.19 database (checksums and file lists shortened).
    const INSTALLED: &str = "C:Q1uRUTRFd5Oc4pKj5/ObQo6PWbYEM=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407287
I:667648
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1705950958
c:83b858f83b658bd34eca5d8ad4d145f673ae7e5e
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1mDjW3tq0vpGbi4udnRmgeiJr/oE=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1TyjUSPNb9gTCUWf+wsXs7WAYfPg=
P:libcrypto3
V:3.1.4-r5
A:x86_64
S:1790469
I:4452352
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1707168627
c:8e4ab5b1f8f0b9f2b8c2e58fa4a1ba3e0c2d5ab2
D:so:libc.musl-x86_64.so.1
p:so:libcrypto.so.3=3
F:lib
R:libcrypto.so.3
a:0:0:755
Z:Q1cXl5qqdcTRc5vWEBXP9mhJpPuo4=

C:Q1abc=
P:alpine-baselayout-data
V:3.4.3-r2
A:x86_64
L:GPL-2.0-only
";

    #[test]
    fn parses_records() {
        let entries = parse_installed(INSTALLED.as_bytes()).unwrap();
        assert_eq!(entries.len(), 3);
        let pkgs = to_packages(&entries, "/lib/apk/db/installed");
        assert_eq!(pkgs[0].name, "musl");
        assert_eq!(pkgs[0].version, "1.2.4_git20230717-r4");
        assert_eq!(pkgs[1].name, "libcrypto3");
        assert_eq!(pkgs[1].source_name.as_deref(), Some("openssl"));
        assert_eq!(pkgs[1].source_version.as_deref(), Some("3.1.4-r5"));
        assert_eq!(pkgs[1].license.as_deref(), Some("Apache-2.0"));
        assert_eq!(pkgs[1].arch.as_deref(), Some("x86_64"));
        assert_eq!(pkgs[1].ecosystem, Ecosystem::Apk);
        // No origin: the package is its own origin.
        assert_eq!(
            pkgs[2].source_name.as_deref(),
            Some("alpine-baselayout-data")
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(
            parse_installed(b"P:a\nV:1\nbogus\n"),
            Err(ApkError::NotAField { line: 3 })
        );
        assert_eq!(
            parse_installed(b"P:a\n\nP:b\nV:1\n"),
            Err(ApkError::MissingField {
                line: 1,
                field: "V"
            })
        );
        assert_eq!(parse_installed(b"\n\n").unwrap(), vec![]);
    }

    #[test]
    fn alpine_shaped_root_via_usr_lib_symlink() {
        let mut fs = ImageFs::new(40);
        fs.insert(
            "/usr/lib/apk/db/installed".into(),
            FileEntry {
                layer: None,
                mode: 0o644,
                kind: EntryKind::File(Arc::from(INSTALLED.as_bytes())),
            },
        );
        fs.insert(
            "/lib".into(),
            FileEntry {
                layer: None,
                mode: 0o777,
                kind: EntryKind::Symlink("usr/lib".into()),
            },
        );
        let out = ApkCataloger.catalog(&fs, &CatalogContext::default());
        assert!(out.errors.is_empty());
        // Both paths lead to the same file: read once.
        assert_eq!(out.packages.len(), 3);
        assert_eq!(out.packages[0].location.path, "/usr/lib/apk/db/installed");
    }
}
