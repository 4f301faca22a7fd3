//! (being written) The security graph and attack paths.

use crate::check::CheckInfo;

/// Attack-path "checks" (their ids appear on path findings).
pub const CHECKS: &[CheckInfo] = &[];
