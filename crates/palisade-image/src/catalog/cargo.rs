//! TODO(skeleton): cargo cataloger.

use super::{Cataloger, FileMeta, Interest};

/// Skeleton: to be written.
pub struct CargoCataloger;

impl Cataloger for CargoCataloger {
    fn name(&self) -> &'static str {
        "cargo"
    }
    fn interest(&self, _file: &FileMeta<'_>) -> Interest {
        Interest::Skip
    }
}
