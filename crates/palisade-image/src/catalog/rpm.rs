//! TODO(skeleton): rpm cataloger.

use super::{Cataloger, FileMeta, Interest};

/// Skeleton: to be written.
pub struct RpmCataloger;

impl Cataloger for RpmCataloger {
    fn name(&self) -> &'static str {
        "rpm"
    }
    fn interest(&self, _file: &FileMeta<'_>) -> Interest {
        Interest::Skip
    }
}
