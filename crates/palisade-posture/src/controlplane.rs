//! (being written)

use crate::check::{CheckInfo, PostureFinding};
use crate::config::PostureConfig;
use palisade_kube::Inventory;

/// The checks of this module.
pub const CHECKS: &[CheckInfo] = &[];

/// Runs this module's checks.
pub fn check(_inventory: &Inventory, _config: &PostureConfig) -> Vec<PostureFinding> {
    Vec::new()
}
