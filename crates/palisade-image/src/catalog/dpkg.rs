//! dpkg cataloger: `/var/lib/dpkg/status` (Debian, Ubuntu) and the per-package files of
//! distroless images under `/var/lib/dpkg/status.d/` (named after the package, next to
//! `<name>.md5sums` files which are skipped).
//!
//! The files are deb822 stanzas (RFC 822-style `Field: value`, continuation lines starting with a
//! space or tab, stanzas separated by blank lines). Only installed packages count: `Status` with
//! the state word `installed` (`install ok installed`, `hold ok installed`), not `config-files`
//! or `half-installed`. status.d files carry no `Status`; they are installed by construction.
//! Source package name and version come from `Source: name (version)`; Debian advisories are
//! published per source package.

use super::{CatalogContext, CatalogError, CatalogOutput, Cataloger, FileMeta, Interest};
use crate::fs::{EntryKind, ImageFs};
use palisade_core::{Ecosystem, Package, PackageLocation};
use thiserror::Error;

pub const STATUS_PATH: &str = "/var/lib/dpkg/status";
pub const STATUS_DIR: &str = "/var/lib/dpkg/status.d/";

/// A malformed status file; the line number is 1-based.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DpkgError {
    #[error("line {line}: continuation line outside a field")]
    StrayContinuation { line: usize },
    #[error("line {line}: expected `Field: value`")]
    NotAField { line: usize },
    #[error("stanza at line {line} has no {field} field")]
    MissingField { line: usize, field: &'static str },
}

/// One package stanza, as far as a scanner needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpkgEntry {
    pub package: String,
    pub version: String,
    pub architecture: Option<String>,
    /// `Status` as written; `None` in status.d files.
    pub status: Option<String>,
    /// Source package name (the package's own name if there is no `Source` field).
    pub source_name: String,
    /// Source version (the package's own version unless `Source: name (version)` says otherwise).
    pub source_version: String,
}

impl DpkgEntry {
    /// Whether dpkg considers the package installed (the third `Status` word is `installed`).
    pub fn is_installed(&self) -> bool {
        match &self.status {
            None => true,
            Some(s) => s.split_whitespace().nth(2) == Some("installed"),
        }
    }
}

/// Parses a whole status file (or one status.d file) into its stanzas, installed or not. Fields
/// other than those in [`DpkgEntry`] are skipped; invalid UTF-8 is replaced.
pub fn parse_status(data: &[u8]) -> Result<Vec<DpkgEntry>, DpkgError> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    let mut stanza: Vec<(&str, String)> = Vec::new();
    let mut stanza_line = 1;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            if !stanza.is_empty() {
                out.push(finish(&stanza, stanza_line)?);
                stanza.clear();
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            // Continuation of the previous field (descriptions, Conffiles); not needed beyond
            // checking it belongs to a field.
            if stanza.is_empty() {
                return Err(DpkgError::StrayContinuation { line: line_no });
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .filter(|(n, _)| !n.is_empty() && !n.contains(char::is_whitespace))
            .ok_or(DpkgError::NotAField { line: line_no })?;
        if stanza.is_empty() {
            stanza_line = line_no;
        }
        stanza.push((name, value.trim().to_string()));
    }
    if !stanza.is_empty() {
        out.push(finish(&stanza, stanza_line)?);
    }
    Ok(out)
}

fn finish(fields: &[(&str, String)], line: usize) -> Result<DpkgEntry, DpkgError> {
    // Field names are case-insensitive in deb822.
    let get = |name: &str| {
        fields
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let package = get("Package").ok_or(DpkgError::MissingField {
        line,
        field: "Package",
    })?;
    let status = get("Status");
    let version = match get("Version") {
        Some(v) => v,
        // Packages that were never unpacked (`install ok not-installed`) have no version; they
        // are dropped later, so do not fail the file on them.
        None if status
            .as_deref()
            .is_some_and(|s| !s.ends_with(" installed")) =>
        {
            String::new()
        }
        None => {
            return Err(DpkgError::MissingField {
                line,
                field: "Version",
            });
        }
    };
    let (source_name, source_version) = match get("Source") {
        Some(src) => match src.split_once('(') {
            Some((name, rest)) => (
                name.trim().to_string(),
                rest.trim_end().trim_end_matches(')').trim().to_string(),
            ),
            None => (src.trim().to_string(), version.clone()),
        },
        None => (package.clone(), version.clone()),
    };
    Ok(DpkgEntry {
        package,
        version,
        architecture: get("Architecture"),
        status,
        source_name,
        source_version,
    })
}

/// The packages of one status file located at `path`.
pub fn to_packages(entries: &[DpkgEntry], path: &str) -> Vec<Package> {
    entries
        .iter()
        .filter(|e| e.is_installed())
        .map(|e| {
            let mut p = Package::new(
                Ecosystem::Deb,
                e.package.clone(),
                e.version.clone(),
                PackageLocation {
                    layer_digest: None,
                    path: path.to_string(),
                },
            );
            p.arch = e.architecture.clone();
            p.source_name = Some(e.source_name.clone());
            p.source_version = Some(e.source_version.clone());
            p
        })
        .collect()
}

/// Catalogs dpkg databases.
pub struct DpkgCataloger;

fn is_status_d_file(path: &str) -> bool {
    path.strip_prefix(STATUS_DIR)
        .is_some_and(|name| !name.is_empty() && !name.contains('/') && !name.ends_with(".md5sums"))
}

impl Cataloger for DpkgCataloger {
    fn name(&self) -> &'static str {
        "dpkg"
    }

    fn interest(&self, file: &FileMeta<'_>) -> Interest {
        if file.path == STATUS_PATH || is_status_d_file(file.path) {
            Interest::Keep
        } else {
            Interest::Skip
        }
    }

    fn catalog(&self, fs: &ImageFs, _ctx: &CatalogContext) -> CatalogOutput {
        let mut out = CatalogOutput::default();
        let mut files: Vec<(String, &[u8])> = Vec::new();
        if let Some((real, entry)) = fs.lookup(STATUS_PATH) {
            match &entry.kind {
                EntryKind::File(data) => files.push((real, data)),
                EntryKind::Skipped { size } => out.errors.push(CatalogError::new(
                    "dpkg",
                    real,
                    format!("status file of {size} bytes was not kept (size limit)"),
                )),
                _ => {}
            }
        }
        if let Some(dir) = fs.resolve(STATUS_DIR.trim_end_matches('/')) {
            let prefix = format!("{dir}/");
            let paths: Vec<String> = fs
                .iter_prefix(&prefix)
                .map(|(path, _)| path.to_string())
                .filter(|path| {
                    let name = &path[prefix.len()..];
                    !name.contains('/') && !name.ends_with(".md5sums")
                })
                .collect();
            for path in paths {
                if let Some(EntryKind::File(data)) = fs.entry(&path).map(|e| &e.kind) {
                    files.push((path, data));
                }
            }
        }
        for (path, data) in files {
            match parse_status(data) {
                Ok(entries) => out.packages.extend(to_packages(&entries, &path)),
                Err(e) => out.errors.push(CatalogError::new("dpkg", path, e)),
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

    const STATUS: &str = "Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12986
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Replaces: libc6-amd64
Depends: libgcc-s1
Conffiles:
 /etc/ld.so.conf.d/x86_64-linux-gnu.conf d4e7a7b88a71b5ffd9e2644e71a0cfab
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
 .
 This package includes shared versions of the standard C library.

Package: libc6
Status: install ok installed
Architecture: i386
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries

Package: bash
Essential: yes
Status: hold ok installed
Priority: required
Architecture: amd64
Multi-Arch: foreign
Source: bash (5.2.15-2)
Version: 5.2.15-2+b2
Description: GNU Bourne Again SHell

Package: old-thing
Status: deinstall ok config-files
Architecture: all
Version: 1.0-1
Description: removed, config left

Package: never
Status: install ok not-installed
Architecture: all
Description: selected, never unpacked
";

    #[test]
    fn installed_packages_with_sources() {
        let entries = parse_status(STATUS.as_bytes()).unwrap();
        assert_eq!(entries.len(), 5);
        let pkgs = to_packages(&entries, STATUS_PATH);
        let names: Vec<_> = pkgs
            .iter()
            .map(|p| format!("{}:{}", p.name, p.arch.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(names, ["libc6:amd64", "libc6:i386", "bash:amd64"]);
        assert_eq!(pkgs[0].source_name.as_deref(), Some("glibc"));
        assert_eq!(pkgs[0].source_version.as_deref(), Some("2.36-9+deb12u4"));
        assert_eq!(pkgs[2].version, "5.2.15-2+b2");
        assert_eq!(pkgs[2].source_name.as_deref(), Some("bash"));
        assert_eq!(pkgs[2].source_version.as_deref(), Some("5.2.15-2"));
        assert_eq!(pkgs[2].license, None);
        assert_eq!(pkgs[2].ecosystem, Ecosystem::Deb);
        assert_eq!(pkgs[2].location.path, STATUS_PATH);
    }

    #[test]
    fn crlf_and_missing_trailing_newline() {
        let e = parse_status(b"Package: a\r\nVersion: 1\r\nStatus: install ok installed").unwrap();
        assert_eq!(e[0].version, "1");
        assert!(e[0].is_installed());
        assert_eq!(e[0].source_name, "a");
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert_eq!(
            parse_status(b" continuation first\n"),
            Err(DpkgError::StrayContinuation { line: 1 })
        );
        assert_eq!(
            parse_status(b"Package: a\nno colon here\n"),
            Err(DpkgError::NotAField { line: 2 })
        );
        assert_eq!(
            parse_status(b"Version: 1\n\nPackage: b\nVersion: 2\n"),
            Err(DpkgError::MissingField {
                line: 1,
                field: "Package"
            })
        );
        assert!(parse_status(b"Package: a\nStatus: install ok installed\n").is_err());
        assert_eq!(parse_status(b"").unwrap(), vec![]);
    }

    fn file(data: &str) -> FileEntry {
        FileEntry {
            layer: None,
            mode: 0o644,
            kind: EntryKind::File(Arc::from(data.as_bytes())),
        }
    }

    #[test]
    fn distroless_status_d() {
        let mut fs = ImageFs::new(40);
        fs.insert(
            "/var/lib/dpkg/status.d/base-files".into(),
            file("Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n"),
        );
        fs.insert(
            "/var/lib/dpkg/status.d/libssl3".into(),
            file("Package: libssl3\nSource: openssl\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\n"),
        );
        fs.insert(
            "/var/lib/dpkg/status.d/libssl3.md5sums".into(),
            file("d41d8cd98f00b204e9800998ecf8427e  usr/lib/x86_64-linux-gnu/libssl.so.3\n"),
        );
        fs.insert("/var/lib/dpkg/status.d/broken".into(), file(" oops\n"));
        let out = DpkgCataloger.catalog(&fs, &CatalogContext::default());
        let names: Vec<_> = out.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["base-files", "libssl3"]);
        assert_eq!(out.packages[1].source_name.as_deref(), Some("openssl"));
        assert_eq!(
            out.packages[1].location.path,
            "/var/lib/dpkg/status.d/libssl3"
        );
        assert_eq!(out.errors.len(), 1);
        assert!(out.errors[0].to_string().contains("status.d/broken"));
    }

    #[test]
    fn interest() {
        let m = |path| FileMeta {
            path,
            size: 1,
            mode: 0o644,
        };
        let c = DpkgCataloger;
        assert_eq!(c.interest(&m("/var/lib/dpkg/status")), Interest::Keep);
        assert_eq!(
            c.interest(&m("/var/lib/dpkg/status.d/zlib1g")),
            Interest::Keep
        );
        assert_eq!(
            c.interest(&m("/var/lib/dpkg/status.d/zlib1g.md5sums")),
            Interest::Skip
        );
        assert_eq!(c.interest(&m("/var/lib/dpkg/status-old")), Interest::Skip);
        assert_eq!(
            c.interest(&m("/var/lib/dpkg/info/bash.list")),
            Interest::Skip
        );
    }

    /// This machine's own dpkg database against `dpkg-query`, where there is one.
    #[test]
    fn host_status_matches_dpkg_query() {
        let Ok(data) = std::fs::read(STATUS_PATH) else {
            return;
        };
        let Ok(out) = std::process::Command::new("dpkg-query")
            .args([
                "-W",
                "-f",
                "${Package}\t${Architecture}\t${Version}\t${source:Package}\t${source:Version}\t${Status}\n",
            ])
            .output()
        else {
            return;
        };
        let mut want: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| {
                l.rsplit('\t')
                    .next()
                    .is_some_and(|s| s.split_whitespace().nth(2) == Some("installed"))
            })
            .map(|l| {
                l.rsplit_once('\t')
                    .map(|(a, _)| a.to_string())
                    .unwrap_or_default()
            })
            .collect();
        want.sort();
        let entries = parse_status(&data).unwrap();
        let mut got: Vec<String> = to_packages(&entries, STATUS_PATH)
            .iter()
            .map(|p| {
                format!(
                    "{}\t{}\t{}\t{}\t{}",
                    p.name,
                    p.arch.as_deref().unwrap_or(""),
                    p.version,
                    p.source_name.as_deref().unwrap_or(""),
                    p.source_version.as_deref().unwrap_or("")
                )
            })
            .collect();
        got.sort();
        assert!(!want.is_empty());
        assert_eq!(got, want);
    }
}
