//! Rust crates: `Cargo.lock` files (format v1–v4) and the dependency list `cargo auditable`
//! embeds in binaries (a `.dep-v0` section of zlib-compressed JSON in ELF, PE or Mach-O files).
//!
//! Workspace members and path dependencies (no `source` in the lock file, `local` in audit data)
//! and the root crate of a binary are not reported: they are not published crates.

use super::{Cataloger, FileMeta, Interest};
use crate::catalog::CatalogContext;
use crate::catalog::{CatalogError, CatalogOutput};
use crate::fs::{EntryKind, ImageFs};
use flate2::read::ZlibDecoder;
use object::{Object, ObjectSection};
use palisade_core::{Ecosystem, Package, PackageLocation};
use serde::Deserialize;
use std::io::Read;

const NAME: &str = "cargo";

pub use super::FormatError;

/// Largest decompressed audit data accepted (the data of a binary with thousands of crates is a
/// few hundred KiB).
pub const MAX_AUDIT_JSON: u64 = 16 << 20;

/// Finds Rust crates in lock files and in binaries built with `cargo auditable`.
pub struct CargoCataloger;

/// One crate from a lock file or audit data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crate {
    pub name: String,
    pub version: String,
    /// `registry+https://…`, `git+https://…` (lock files) or `crates.io`, `git`, `registry`
    /// (audit data).
    pub source: String,
}

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<LockPackage>,
}

#[derive(Deserialize)]
struct LockPackage {
    name: String,
    version: String,
    #[serde(default)]
    source: Option<String>,
}

/// Parses a `Cargo.lock`; crates without a `source` (workspace members, path dependencies) are
/// left out.
pub fn parse_cargo_lock(data: &[u8]) -> Result<Vec<Crate>, FormatError> {
    let text = std::str::from_utf8(data).map_err(|e| format!("not UTF-8: {e}"))?;
    let lock: Lock = toml::from_str(text).map_err(|e| format!("invalid Cargo.lock: {e}"))?;
    Ok(lock
        .package
        .into_iter()
        .filter_map(|p| {
            let source = p.source?;
            if p.name.is_empty() || p.version.is_empty() {
                return None;
            }
            Some(Crate {
                name: p.name,
                version: p.version,
                source,
            })
        })
        .collect())
}

#[derive(Deserialize)]
struct Audit {
    packages: Vec<AuditPackage>,
}

#[derive(Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
    source: String,
    #[serde(default)]
    root: bool,
}

/// Parses the (decompressed) JSON of `cargo auditable` data, skipping the root crate and local
/// (path) crates.
pub fn parse_audit_json(json: &[u8]) -> Result<Vec<Crate>, FormatError> {
    let audit: Audit =
        serde_json::from_slice(json).map_err(|e| format!("invalid audit data: {e}"))?;
    Ok(audit
        .packages
        .into_iter()
        .filter(|p| !p.root && p.source != "local" && !p.name.is_empty())
        .map(|p| Crate {
            name: p.name,
            version: p.version,
            source: p.source,
        })
        .collect())
}

/// The crates recorded in a binary by `cargo auditable`; an empty list for binaries without
/// audit data (or that are not ELF, PE or Mach-O files).
pub fn parse_auditable_binary(data: &[u8]) -> Result<Vec<Crate>, FormatError> {
    let Ok(file) = object::File::parse(data) else {
        return Ok(Vec::new());
    };
    let Some(section) = file.section_by_name(".dep-v0") else {
        return Ok(Vec::new());
    };
    let compressed = section
        .data()
        .map_err(|e| format!("unreadable .dep-v0 section: {e}"))?;
    let mut json = Vec::new();
    ZlibDecoder::new(compressed)
        .take(MAX_AUDIT_JSON + 1)
        .read_to_end(&mut json)
        .map_err(|e| format!("corrupt .dep-v0 section: {e}"))?;
    if json.len() as u64 > MAX_AUDIT_JSON {
        return Err(FormatError::from(format!(
            "audit data decompresses to more than {MAX_AUDIT_JSON} bytes"
        )));
    }
    parse_audit_json(&json)
}

/// ELF, PE (`MZ`) or Mach-O (32/64-bit, either byte order, or fat) magic.
pub fn is_binary_head(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF")
        || head.starts_with(b"MZ")
        || matches!(
            head.get(..4),
            Some(
                [0xfe, 0xed, 0xfa, 0xce]
                    | [0xfe, 0xed, 0xfa, 0xcf]
                    | [0xce, 0xfa, 0xed, 0xfe]
                    | [0xcf, 0xfa, 0xed, 0xfe]
                    | [0xca, 0xfe, 0xba, 0xbe]
            )
        )
}

fn to_packages(crates: Vec<Crate>, path: &str) -> Vec<Package> {
    crates
        .into_iter()
        .map(|c| {
            Package::new(
                Ecosystem::Cargo,
                c.name,
                c.version,
                PackageLocation {
                    path: path.to_string(),
                    layer_digest: None,
                },
            )
        })
        .collect()
}

impl Cataloger for CargoCataloger {
    fn name(&self) -> &'static str {
        NAME
    }

    fn interest(&self, file: &FileMeta<'_>) -> Interest {
        if file.path.ends_with("/Cargo.lock") {
            Interest::Keep
        } else if file.is_executable() && file.size >= 64 {
            Interest::Analyze
        } else {
            Interest::Skip
        }
    }

    fn accepts_head(&self, head: &[u8]) -> bool {
        is_binary_head(head)
    }

    fn analyze(&self, path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
        parse_auditable_binary(data)
            .map(|c| to_packages(c, path))
            .map_err(|e| CatalogError::new(NAME, path, e))
    }

    fn catalog(&self, fs: &ImageFs, _ctx: &CatalogContext) -> CatalogOutput {
        let mut out = super::analyzed_packages(NAME, fs);
        for (path, entry) in fs.iter() {
            let EntryKind::File(data) = &entry.kind else {
                continue;
            };
            if !path.ends_with("/Cargo.lock") {
                continue;
            }
            match parse_cargo_lock(data) {
                Ok(c) => out.packages.extend(to_packages(c, path)),
                Err(e) => out.errors.push(CatalogError::new(NAME, path, e)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK_V3: &str = r#"# This file is automatically @generated by Cargo.
# It is not intended for manual editing.
version = 3

[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "regex",
 "util",
]

[[package]]
name = "regex"
version = "1.5.4"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "d07a8629359eb56f1e2fb1652bb04212c072a87ba68546a04065d525673ac461"

[[package]]
name = "smallvec"
version = "0.6.10"
source = "git+https://github.com/servo/rust-smallvec#abc"

[[package]]
name = "util"
version = "0.1.0"
"#;

    const LOCK_V1: &str = r#"[root]
name = "app"
version = "0.1.0"
dependencies = [
 "libc 0.2.20 (registry+https://github.com/rust-lang/crates.io-index)",
]

[[package]]
name = "libc"
version = "0.2.20"
source = "registry+https://github.com/rust-lang/crates.io-index"

[metadata]
"checksum libc 0.2.20 (registry+https://github.com/rust-lang/crates.io-index)" = "684f330624d8c3784fb9558ca46c4ce488073a8d22450415c5eb4f4cfb0d11b5"
"#;

    #[test]
    fn parses_lock_v3_skipping_members() {
        let c = parse_cargo_lock(LOCK_V3.as_bytes()).unwrap();
        let got: Vec<_> = c
            .iter()
            .map(|c| format!("{}@{}", c.name, c.version))
            .collect();
        assert_eq!(got, ["regex@1.5.4", "smallvec@0.6.10"]);
    }

    #[test]
    fn parses_lock_v1() {
        let c = parse_cargo_lock(LOCK_V1.as_bytes()).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].name, "libc");
        assert_eq!(c[0].version, "0.2.20");
    }

    #[test]
    fn parses_this_workspace_lock() {
        let data = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock")).unwrap();
        let c = parse_cargo_lock(&data).unwrap();
        assert!(c.iter().any(|c| c.name == "serde"));
        assert!(!c.iter().any(|c| c.name == "palisade-image"));
    }

    #[test]
    fn malformed_locks_are_errors() {
        assert!(parse_cargo_lock(b"[[package]]\nname = 3\n").is_err());
        assert!(parse_cargo_lock(b"[[package\n").is_err());
        assert!(parse_cargo_lock(b"\xff\xfe").is_err());
        // Deep nesting is an error, not a stack overflow.
        let deep = format!("x = {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_cargo_lock(deep.as_bytes()).is_err());
        let deep = format!("x = {}1{}", "{a = ".repeat(100_000), "}".repeat(100_000));
        assert!(parse_cargo_lock(deep.as_bytes()).is_err());
    }

    #[test]
    fn audit_json_skips_root_and_local() {
        let json = br#"{"packages":[
            {"name":"hello","version":"0.1.0","source":"local","root":true,"dependencies":[1,2]},
            {"name":"mylib","version":"0.1.0","source":"local"},
            {"name":"time","version":"0.1.43","source":"crates.io","kind":"runtime"},
            {"name":"cc","version":"1.0.0","source":"crates.io","kind":"build"}]}"#;
        let c = parse_audit_json(json).unwrap();
        let got: Vec<_> = c
            .iter()
            .map(|c| format!("{}@{}", c.name, c.version))
            .collect();
        assert_eq!(got, ["time@0.1.43", "cc@1.0.0"]);
        assert!(parse_audit_json(b"{}").is_err());
    }

    /// A real ELF executable with a `.dep-v0` section added the way `cargo auditable` lays it out
    /// (`tests/fixtures/cargo/auditable-true.elf`, see the README there).
    #[test]
    fn reads_audit_data_from_elf() {
        let data = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/cargo/auditable-true.elf"
        ))
        .unwrap();
        assert!(is_binary_head(&data[..64]));
        let pkgs = CargoCataloger.analyze("/usr/bin/hello", &data).unwrap();
        let got: Vec<_> = pkgs.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(got, ["pkg:cargo/smallvec@0.6.9", "pkg:cargo/time@0.1.43"]);
        assert_eq!(pkgs[0].location.path, "/usr/bin/hello");
        // The same binary without the section has no crates.
        let plain = std::fs::read("/usr/bin/true").unwrap();
        assert!(
            CargoCataloger
                .analyze("/usr/bin/true", &plain)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn catalog_merges_locks_and_analyzed_binaries() {
        use crate::fs::FileEntry;
        use std::sync::Arc;
        let mut fs = ImageFs::new(40);
        fs.insert(
            "/src/Cargo.lock".into(),
            FileEntry {
                layer: None,
                mode: 0o644,
                kind: EntryKind::File(Arc::from(LOCK_V1.as_bytes())),
            },
        );
        let found = to_packages(
            vec![Crate {
                name: "time".into(),
                version: "0.1.43".into(),
                source: "crates.io".into(),
            }],
            "/usr/bin/hello",
        );
        fs.insert(
            "/usr/bin/hello".into(),
            FileEntry {
                layer: None,
                mode: 0o755,
                kind: EntryKind::Analyzed(vec![(NAME, found), ("golang", Vec::new())]),
            },
        );
        fs.insert(
            "/broken/Cargo.lock".into(),
            FileEntry {
                layer: None,
                mode: 0o644,
                kind: EntryKind::File(Arc::from(&b"[[package]]\nname = 1"[..])),
            },
        );
        let out = CargoCataloger.catalog(&fs, &CatalogContext::default());
        let got: Vec<_> = out
            .packages
            .iter()
            .map(|p| format!("{} {}", p.purl, p.location.path))
            .collect();
        assert_eq!(
            got,
            [
                "pkg:cargo/time@0.1.43 /usr/bin/hello",
                "pkg:cargo/libc@0.2.20 /src/Cargo.lock"
            ]
        );
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].path, "/broken/Cargo.lock");
    }

    /// A binary really built by `cargo auditable` (see the fixture README).
    #[test]
    fn reads_real_cargo_auditable_binary() {
        let gz = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/cargo/audhello-auditable.elf.gz"
        ))
        .unwrap();
        let mut data = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut data)
            .unwrap();
        let got: Vec<_> = CargoCataloger
            .analyze("/usr/local/bin/audhello", &data)
            .unwrap()
            .into_iter()
            .map(|p| p.purl)
            .collect();
        assert_eq!(got, ["pkg:cargo/hex@0.4.3", "pkg:cargo/itoa@1.0.19"]);
    }

    #[test]
    fn garbage_is_not_a_panic() {
        assert!(
            parse_auditable_binary(b"\x7fELF\x02\x01\x01garbage")
                .unwrap()
                .is_empty()
        );
        assert!(parse_auditable_binary(b"").unwrap().is_empty());
    }

    #[test]
    fn interest() {
        let f = |path, mode| FileMeta {
            path,
            size: 1000,
            mode,
        };
        assert_eq!(
            CargoCataloger.interest(&f("/src/app/Cargo.lock", 0o644)),
            Interest::Keep
        );
        assert_eq!(
            CargoCataloger.interest(&f("/usr/bin/app", 0o755)),
            Interest::Analyze
        );
        assert_eq!(
            CargoCataloger.interest(&f("/usr/lib/libx.so", 0o644)),
            Interest::Skip
        );
        assert!(!CargoCataloger.accepts_head(b"#!/bin/sh\n"));
    }
}
