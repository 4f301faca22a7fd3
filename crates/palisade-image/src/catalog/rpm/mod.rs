//! rpm cataloger: reads the three rpm database backends ourselves (no crate reads them) —
//! SQLite `rpmdb.sqlite` (rpm ≥ 4.16: RHEL 9, Fedora ≥ 33, Rocky/Alma 9), ndb `Packages.db`
//! (SUSE), BerkeleyDB hash `Packages` (RHEL/CentOS 7–8, Amazon Linux 2) — then decodes each
//! package's header blob.
//!
//! The format is recognised from the content, not the file name, so a database renamed or
//! converted in place is still read.

pub mod bdb;
pub mod header;
pub mod ndb;
pub mod sqlite;

use super::{CatalogContext, CatalogError, CatalogOutput, Cataloger, FileMeta, Interest};
use crate::fs::{EntryKind, ImageFs};
use header::RpmHeader;
use palisade_core::{Ecosystem, Package, PackageLocation};
use std::collections::HashSet;
use thiserror::Error;

/// Directories rpm keeps its database in (`/var/lib/rpm` is a symlink to the second on Fedora
/// and SUSE).
pub const DB_DIRS: &[&str] = &["/var/lib/rpm", "/usr/lib/sysimage/rpm"];
/// Database file names, in the order a directory holding several is read (only the first found
/// is used: an in-place backend conversion can leave the old file behind).
pub const DB_FILES: &[&str] = &["rpmdb.sqlite", "Packages.db", "Packages"];
/// The SQLite write-ahead log beside `rpmdb.sqlite`, read with it when present.
pub const SQLITE_WAL: &str = "rpmdb.sqlite-wal";

/// A malformed rpm database or header. The message says where.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RpmError {
    #[error("sqlite: {0}")]
    Sqlite(String),
    #[error("ndb: {0}")]
    Ndb(String),
    #[error("berkeleydb: {0}")]
    Bdb(String),
    #[error("header: {0}")]
    Header(String),
    #[error("not an rpm database (no SQLite, ndb or BerkeleyDB hash magic)")]
    UnknownFormat,
}

/// The three database backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbFormat {
    Sqlite,
    Ndb,
    BerkeleyDb,
}

/// Recognises the backend from the first bytes.
pub fn detect_format(data: &[u8]) -> Option<DbFormat> {
    if data.starts_with(b"SQLite format 3\0") {
        Some(DbFormat::Sqlite)
    } else if ndb::is_ndb(data) {
        Some(DbFormat::Ndb)
    } else if bdb::is_bdb_hash(data) {
        Some(DbFormat::BerkeleyDb)
    } else {
        None
    }
}

/// The raw header blobs of a database of any backend, with their header numbers.
pub fn read_header_blobs(data: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, RpmError> {
    read_header_blobs_with_wal(data, None)
}

/// [`read_header_blobs`], with the SQLite write-ahead log if there is one (ignored for the
/// other backends).
pub fn read_header_blobs_with_wal(
    data: &[u8],
    wal: Option<&[u8]>,
) -> Result<Vec<(u32, Vec<u8>)>, RpmError> {
    match detect_format(data) {
        Some(DbFormat::Sqlite) => sqlite::read_packages_with_wal(data, wal),
        Some(DbFormat::Ndb) => ndb::read_packages(data),
        Some(DbFormat::BerkeleyDb) => bdb::read_packages(data),
        None => Err(RpmError::UnknownFormat),
    }
}

/// The packages of one database: decoded headers (gpg-pubkey pseudo packages left out) and the
/// header numbers whose blobs could not be decoded.
#[derive(Debug, Default)]
pub struct RpmDatabase {
    pub headers: Vec<RpmHeader>,
    pub bad_headers: Vec<(u32, RpmError)>,
}

/// Reads a database of any backend and decodes every header. A corrupt database is an error; a
/// single undecodable header is recorded in [`RpmDatabase::bad_headers`] and skipped.
pub fn parse_database(data: &[u8]) -> Result<RpmDatabase, RpmError> {
    parse_database_with_wal(data, None)
}

/// [`parse_database`] with the SQLite write-ahead log, if there is one.
pub fn parse_database_with_wal(data: &[u8], wal: Option<&[u8]>) -> Result<RpmDatabase, RpmError> {
    let mut out = RpmDatabase::default();
    for (hnum, blob) in read_header_blobs_with_wal(data, wal)? {
        match header::parse_header(&blob) {
            Ok(h) if h.name == "gpg-pubkey" => {}
            Ok(h) => out.headers.push(h),
            Err(e) => out.bad_headers.push((hnum, e)),
        }
    }
    Ok(out)
}

/// The [`Package`] for one header found in the database at `path`.
pub fn to_package(h: &RpmHeader, path: &str) -> Package {
    let mut p = Package::new(
        Ecosystem::Rpm,
        h.name.clone(),
        h.evr(),
        PackageLocation {
            layer_digest: None,
            path: path.to_string(),
        },
    );
    p.arch = h.arch.clone().filter(|a| !a.is_empty() && a != "(none)");
    p.license = h.license.clone().filter(|l| !l.is_empty());
    if let Some((name, vr)) = h.source() {
        p.source_name = Some(name);
        p.source_version = Some(match h.epoch {
            Some(e) => format!("{e}:{vr}"),
            None => vr,
        });
    }
    p
}

/// Catalogs rpm databases.
pub struct RpmCataloger;

fn is_db_path(path: &str) -> bool {
    match path.rsplit_once('/') {
        Some((dir, file)) => {
            DB_DIRS.contains(&dir) && (DB_FILES.contains(&file) || file == SQLITE_WAL)
        }
        None => false,
    }
}

impl Cataloger for RpmCataloger {
    fn name(&self) -> &'static str {
        "rpm"
    }

    fn interest(&self, file: &FileMeta<'_>) -> Interest {
        if is_db_path(file.path) {
            Interest::Keep
        } else {
            Interest::Skip
        }
    }

    fn catalog(&self, fs: &ImageFs, _ctx: &CatalogContext) -> CatalogOutput {
        let mut out = CatalogOutput::default();
        let mut seen_dirs = HashSet::new();
        for dir in DB_DIRS {
            let Some(real_dir) = fs.resolve(dir) else {
                continue;
            };
            if !seen_dirs.insert(real_dir.clone()) {
                continue;
            }
            for file in DB_FILES {
                let Some((real, entry)) = fs.lookup(&format!("{real_dir}/{file}")) else {
                    continue;
                };
                match &entry.kind {
                    EntryKind::File(data) => {
                        let wal = match fs.lookup(&format!("{real}-wal")) {
                            Some((_, e)) if *file == "rpmdb.sqlite" => match &e.kind {
                                EntryKind::File(w) => Some(&w[..]),
                                _ => None,
                            },
                            _ => None,
                        };
                        match parse_database_with_wal(data, wal) {
                            Ok(db) => {
                                for (hnum, e) in db.bad_headers {
                                    out.errors.push(CatalogError::new(
                                        "rpm",
                                        real.clone(),
                                        format!("package header {hnum} skipped: {e}"),
                                    ));
                                }
                                out.packages
                                    .extend(db.headers.iter().map(|h| to_package(h, &real)));
                            }
                            Err(e) => out.errors.push(CatalogError::new("rpm", real.clone(), e)),
                        }
                        break;
                    }
                    EntryKind::Skipped { size } => {
                        out.errors.push(CatalogError::new(
                            "rpm",
                            real.clone(),
                            format!("database of {size} bytes was not kept (size limit)"),
                        ));
                        break;
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interest_only_in_databases() {
        let meta = |path| FileMeta {
            path,
            size: 10,
            mode: 0o644,
        };
        let c = RpmCataloger;
        assert_eq!(c.interest(&meta("/var/lib/rpm/Packages")), Interest::Keep);
        assert_eq!(
            c.interest(&meta("/usr/lib/sysimage/rpm/rpmdb.sqlite")),
            Interest::Keep
        );
        assert_eq!(c.interest(&meta("/var/lib/rpm/Name")), Interest::Skip);
        assert_eq!(c.interest(&meta("/tmp/Packages")), Interest::Skip);
    }

    #[test]
    fn unknown_format() {
        assert_eq!(
            parse_database(b"garbage garbage garbage").unwrap_err(),
            RpmError::UnknownFormat
        );
    }

    #[test]
    fn package_fields() {
        let h = RpmHeader {
            name: "openssl-libs".into(),
            epoch: Some(1),
            version: "1.0.2k".into(),
            release: "19.el7".into(),
            arch: Some("x86_64".into()),
            license: Some("OpenSSL".into()),
            source_rpm: Some("openssl-1.0.2k-19.el7.src.rpm".into()),
            vendor: None,
        };
        let p = to_package(&h, "/var/lib/rpm/Packages");
        assert_eq!(p.version, "1:1.0.2k-19.el7");
        assert_eq!(p.source_name.as_deref(), Some("openssl"));
        assert_eq!(p.source_version.as_deref(), Some("1:1.0.2k-19.el7"));
    }
}
