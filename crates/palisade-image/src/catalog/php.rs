//! TODO(skeleton): php cataloger.

use super::{Cataloger, FileMeta, Interest};

/// Skeleton: to be written.
pub struct PhpCataloger;

impl Cataloger for PhpCataloger {
    fn name(&self) -> &'static str {
        "php"
    }
    fn interest(&self, _file: &FileMeta<'_>) -> Interest {
        Interest::Skip
    }
}
