//! TODO(skeleton): apk cataloger.

use super::{Cataloger, FileMeta, Interest};

/// Skeleton: to be written.
pub struct ApkCataloger;

impl Cataloger for ApkCataloger {
    fn name(&self) -> &'static str {
        "apk"
    }
    fn interest(&self, _file: &FileMeta<'_>) -> Interest {
        Interest::Skip
    }
}
