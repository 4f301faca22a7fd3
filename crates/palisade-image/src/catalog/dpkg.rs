//! TODO(skeleton): dpkg cataloger.

use super::{Cataloger, FileMeta, Interest};

/// Skeleton: to be written.
pub struct DpkgCataloger;

impl Cataloger for DpkgCataloger {
    fn name(&self) -> &'static str {
        "dpkg"
    }
    fn interest(&self, _file: &FileMeta<'_>) -> Interest {
        Interest::Skip
    }
}
