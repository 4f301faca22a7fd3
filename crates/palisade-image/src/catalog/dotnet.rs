//! TODO(skeleton): dotnet cataloger.

use super::{Cataloger, FileMeta, Interest};

/// Skeleton: to be written.
pub struct DotnetCataloger;

impl Cataloger for DotnetCataloger {
    fn name(&self) -> &'static str {
        "dotnet"
    }
    fn interest(&self, _file: &FileMeta<'_>) -> Interest {
        Interest::Skip
    }
}
