//! TODO(skeleton): java cataloger.

use super::{Cataloger, FileMeta, Interest};

/// Skeleton: to be written.
pub struct JavaCataloger;

impl Cataloger for JavaCataloger {
    fn name(&self) -> &'static str {
        "java"
    }
    fn interest(&self, _file: &FileMeta<'_>) -> Interest {
        Interest::Skip
    }
}
