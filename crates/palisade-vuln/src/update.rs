//! TODO(skeleton, owner: advdb): `palisade db update`. Signatures guessed by "cli" so the CLI
//! compiles; the advdb part defines the real ones.

use crate::db::DbMetadata;
use std::path::Path;
use std::sync::Arc;
use thiserror::Error;

/// What to fetch.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {}

/// Progress of downloads and DB work.
pub trait UpdateProgress: Send + Sync {
    fn start(&self, task: &str, total: u64);
    fn advance(&self, task: &str, bytes: u64);
    fn finish(&self, task: &str);
}

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
