//! Advisory importers: OSV (JSON and YAML files, directory trees, zip archives), the Debian security
//! tracker (JSON export; DSA/DLA list files), Alpine secdb JSON.
//!
//! TODO(skeleton, owner: advdb): the bodies. Contract: `import_path` detects the format of a file,
//! directory or zip archive and feeds each normalised record to `sink`.

use crate::record::AdvisoryRecord;
use std::path::Path;
use thiserror::Error;

/// An input that could not be read. Per-advisory problems are counted in [`ImportStats`], not
/// raised, so one bad file does not lose a whole database.
#[derive(Debug, Error)]
pub enum ImportError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Counts from one import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportStats {
    pub files: u64,
    pub advisories: u64,
    pub skipped_withdrawn: u64,
    /// Files or entries that failed to parse, with the reason (first few kept).
    pub errors: Vec<String>,
    pub error_count: u64,
}

/// Imports everything under `path`; returns the source name(s) seen and counts.
pub fn import_path(
    path: &Path,
    sink: &mut dyn FnMut(AdvisoryRecord),
) -> Result<ImportStats, ImportError> {
    let _ = (path, sink);
    todo!("skeleton")
}
