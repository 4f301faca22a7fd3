//! TODO(skeleton): python cataloger.

use super::{Cataloger, FileMeta, Interest};

/// Skeleton: to be written.
pub struct PythonCataloger;

impl Cataloger for PythonCataloger {
    fn name(&self) -> &'static str {
        "python"
    }
    fn interest(&self, _file: &FileMeta<'_>) -> Interest {
        Interest::Skip
    }
}
