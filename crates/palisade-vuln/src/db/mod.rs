//! The local advisory database.
//!
//! TODO(skeleton, owner: advdb): the bodies and the file format. The signatures below are the
//! contract the matcher and the CLI code against.

use crate::record::{AdvisoryRecord, AffectedPackage};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// Errors opening, reading or writing the DB.
#[derive(Debug, Error)]
pub enum DbError {
    #[error("advisory database {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("advisory database {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where one part of the DB came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `osv:PyPI`, `debian-tracker`, `debian-dsa`, `alpine-secdb:v3.19/main`, …
    pub name: String,
    /// URL or local path it was read from.
    pub location: String,
    pub advisories: u64,
    /// RFC 3339 time the source was fetched or read.
    pub fetched_at: String,
}

/// What `palisade db status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbMetadata {
    pub schema_version: u32,
    /// RFC 3339 build time.
    pub built_at: String,
    pub sources: Vec<SourceInfo>,
    pub advisories: u64,
    pub affected_packages: u64,
}

/// One advisory that names a looked-up package, with the affected entry for that package.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The advisory (its `affected` list may be empty: the DB need not load the others).
    pub advisory: Arc<AdvisoryRecord>,
    pub affected: AffectedPackage,
}

/// A read-only, opened advisory DB.
pub struct AdvisoryDb {
    _private: (),
}

impl AdvisoryDb {
    /// Opens a DB file written by [`DbBuilder::write`].
    pub fn open(path: &Path) -> Result<AdvisoryDb, DbError> {
        let _ = path;
        todo!("skeleton")
    }
    pub fn metadata(&self) -> &DbMetadata {
        todo!("skeleton")
    }
    /// Every advisory naming `name` (normalised, see [`crate::keys::normalize_name`]) in the
    /// ecosystem key (see [`crate::keys`]). Withdrawn advisories are not returned.
    pub fn lookup(&self, ecosystem_key: &str, name: &str) -> Result<Vec<Candidate>, DbError> {
        let _ = (ecosystem_key, name);
        todo!("skeleton")
    }
}

/// Collects records and writes a DB file.
#[derive(Default)]
pub struct DbBuilder {
    _private: (),
}

impl DbBuilder {
    pub fn new() -> Self {
        DbBuilder::default()
    }
    /// Adds one record (and notes which source it came from via `record.source`).
    pub fn add(&mut self, record: AdvisoryRecord) {
        let _ = record;
        todo!("skeleton")
    }
    /// Records where a source came from, for [`DbMetadata::sources`].
    pub fn add_source(&mut self, info: SourceInfo) {
        let _ = info;
        todo!("skeleton")
    }
    /// Writes the DB atomically (temp file + rename) and returns its metadata.
    pub fn write(self, path: &Path) -> Result<DbMetadata, DbError> {
        let _ = path;
        todo!("skeleton")
    }
}

/// The default DB path: `<user cache dir>/palisade/advisories.db`.
pub fn default_path() -> Option<PathBuf> {
    todo!("skeleton")
}
