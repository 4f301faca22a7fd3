//! Gatekeeper-compatible admission policy: ConstraintTemplates (Rego, evaluated with regorus) and
//! their Constraints, evaluated the way Gatekeeper does for its webhook, its audit and `gator`.
//! Users arrive with Gatekeeper policies; they run here unchanged.

pub mod review;
#[cfg(feature = "server")]
pub mod webhook;
