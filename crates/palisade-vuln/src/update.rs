//! TODO(skeleton, owner: advdb): `palisade db update`. Signatures guessed by "cli" so the CLI
//! compiles; the advdb part defines the real ones.

use crate::db::DbMetadata;
use std::path::Path;
use std::sync::Arc;
use thiserror::Error;

/// What to fetch.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {}

/// Progress callbacks (the CLI draws bars on a TTY). All methods default to doing nothing.
/// (Mirrors the advdb part's trait so the CLI compiles against it.)
pub trait UpdateProgress: Send + Sync {
    /// A download started; `total` is the Content-Length when the server sent one.
    fn download_started(&self, _source: &str, _url: &str, _total: Option<u64>) {}
    /// `bytes` more bytes of `source` arrived.
    fn download_progress(&self, _source: &str, _bytes: u64) {}
    /// A download finished and passed its checks.
    fn download_finished(&self, _source: &str, _bytes: u64) {}
    /// A downloaded source is being imported.
    fn importing(&self, _source: &str) {}
    /// A source was imported with this many advisories.
    fn imported(&self, _source: &str, _advisories: u64, _errors: u64) {}
    /// The DB file is being written.
    fn writing(&self, _path: &Path) {}
}

/// A progress sink that ignores everything.
pub struct NoProgress;
impl UpdateProgress for NoProgress {}

/// A failed update.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct UpdateError(pub String);

/// Fetches the public sources and writes the DB at `dest`.
pub async fn update(
    dest: &Path,
    opts: &UpdateOptions,
    progress: Arc<dyn UpdateProgress>,
) -> Result<DbMetadata, UpdateError> {
    let _ = (dest, opts, progress);
    todo!("skeleton")
}
