//! The shared model every Palisade engine speaks.
//!
//! Engines take input and produce [`Finding`]s (states that hold now) and [`Alert`]s (events that
//! happened); both name what they concern with one [`ResourceRef`]. Packages found in images and the
//! advisories matched to them are also here, so the image, vulnerability and posture engines agree on
//! one vocabulary without depending on each other.

pub mod advisory;
pub mod alert;
pub mod finding;
pub mod package;
pub mod prometheus;
pub mod resource;
pub mod severity;
#[cfg(feature = "spool")]
pub mod spool;
#[cfg(feature = "tls")]
pub mod tls;

pub use advisory::{Advisory, CvssScore};
pub use alert::{Alert, Tactic, Technique};
pub use finding::{Finding, FindingKind};
pub use package::{Distro, Ecosystem, Package, PackageLocation};
pub use resource::ResourceRef;
pub use severity::{ParseSeverityError, Severity};
