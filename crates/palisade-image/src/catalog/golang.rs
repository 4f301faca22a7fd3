//! TODO(skeleton): golang cataloger.

use super::{Cataloger, FileMeta, Interest};

/// Skeleton: to be written.
pub struct GoBinaryCataloger;

impl Cataloger for GoBinaryCataloger {
    fn name(&self) -> &'static str {
        "golang"
    }
    fn interest(&self, _file: &FileMeta<'_>) -> Interest {
        Interest::Skip
    }
}
