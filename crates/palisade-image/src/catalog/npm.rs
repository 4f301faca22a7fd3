//! TODO(skeleton): npm cataloger.

use super::{Cataloger, FileMeta, Interest};

/// Skeleton: to be written.
pub struct NpmCataloger;

impl Cataloger for NpmCataloger {
    fn name(&self) -> &'static str {
        "npm"
    }
    fn interest(&self, _file: &FileMeta<'_>) -> Interest {
        Interest::Skip
    }
}
