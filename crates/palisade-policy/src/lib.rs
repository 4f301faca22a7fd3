//! Gatekeeper-compatible admission policy: ConstraintTemplates (Rego, evaluated with regorus) and
//! their Constraints, evaluated the way Gatekeeper does for its webhook, its audit and `gator`.
//! Users arrive with Gatekeeper policies; they run here unchanged.

pub mod bundle;
pub mod constraint;
pub mod crd;
pub mod external;
#[cfg(feature = "live")]
pub mod live;
mod native;
pub mod policy;
mod rego;
pub mod review;
pub mod schema;
pub mod suite;
pub mod template;
pub mod vulngate;
#[cfg(feature = "server")]
pub mod webhook;

pub use constraint::{Constraint, EnforcementAction, EnforcementPoint, Match};
pub use external::ExternalDataProvider;
pub use policy::{
    EvalError, Evaluator, PolicyError, PolicySet, PolicySetBuilder, PolicySettings, PolicyWarning,
    ReviewOutcome, Violation, inventory_json,
};
pub use review::{
    AdmissionReview, AdmissionVersion, GroupVersionKind, Operation, ReviewError, ReviewRequest,
    parse_admission_review,
};
pub use template::{RegoVersion, Template, TemplateError};
