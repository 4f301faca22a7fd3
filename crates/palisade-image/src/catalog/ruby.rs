//! TODO(skeleton): ruby cataloger.

use super::{Cataloger, FileMeta, Interest};

/// Skeleton: to be written.
pub struct RubyCataloger;

impl Cataloger for RubyCataloger {
    fn name(&self) -> &'static str {
        "ruby"
    }
    fn interest(&self, _file: &FileMeta<'_>) -> Interest {
        Interest::Skip
    }
}
