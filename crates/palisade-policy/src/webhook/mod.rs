//! The validating admission webhook (`palisade admission serve`, feature `server`).
//!
//! The API server POSTs an AdmissionReview (`admission.k8s.io/v1` or `v1beta1`) to `/validate`;
//! the review is evaluated against the constraints in service by a pool of worker threads (one
//! regorus engine each) under a per-request deadline, and answered Gatekeeper's way: denied with
//! code 403 and a `[constraint] message` line per `deny` violation, `warn` violations as
//! warnings, `dryrun` violations recorded in the metrics and the decision log only. When the
//! constraints cannot decide (timeout, full queue, engine error), the configured failure policy
//! answers. `/healthz`, `/readyz` and Prometheus `/metrics` complete the server.
//!
//! The HTTP, TLS and metrics layers see the policy engine through [`Policies`], so they are
//! tested on their own; [`crate::PolicySet`] implements it.

mod configuration;
mod decision_log;
mod metrics;
mod namespaces;
mod pool;
mod response;
mod samples;
mod server;
mod source;
mod tls;

pub use configuration::{IGNORE_LABEL, RegistrationOptions, guess_resource, webhook_configuration};
pub use decision_log::{DecisionLog, DecisionRecord, LoggedViolation};
pub use metrics::{ErrorCause, Metrics};
pub use namespaces::{CachedNamespaces, LookupFuture, NamespaceLookup};
pub use response::{Outcome, decide, failure, review_response};
pub use samples::{sample_policies, sample_review};
pub use server::{WebhookError, WebhookOptions, WebhookParts, WebhookServer};
pub use source::{PollSettings, load_policy_set, loaded, watch_paths};
pub use tls::{CertFiles, ReloadingResolver, SelfSigned, TlsError, certified_key_from_pem};

use crate::review::ReviewRequest;
use crate::{EnforcementPoint, PolicySet};

/// What the webhook answers when the constraints cannot decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Admit the request, with a warning saying why it was not checked.
    #[default]
    Ignore,
    /// Deny the request with code 500.
    Fail,
}

/// How a violation is enforced in the webhook (the engine's action at the webhook).
pub use crate::constraint::EnforcementAction as Action;

/// Why a review could not be decided by the constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationFailure {
    pub message: String,
    /// The engine's execution timer stopped the evaluation.
    pub timed_out: bool,
}

/// One violation as the webhook reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub constraint_kind: String,
    pub constraint_name: String,
    pub action: Action,
    pub message: String,
}

/// A compiled policy set as the webhook uses it: shared by every worker, each of which makes
/// its own evaluator (on its own thread) and evaluates requests with it.
pub trait Policies: Send + Sync + 'static {
    /// Per-thread evaluation state; never crosses threads.
    type Evaluator: 'static;
    fn evaluator(&self) -> Self::Evaluator;
    /// The violations of every matching constraint, enforcement actions resolved for the webhook.
    fn evaluate(
        &self,
        evaluator: &mut Self::Evaluator,
        request: &ReviewRequest,
    ) -> Result<Vec<Finding>, EvaluationFailure>;
    fn template_count(&self) -> usize;
    fn constraint_count(&self) -> usize;
}

impl Policies for PolicySet {
    type Evaluator = crate::Evaluator;

    fn evaluator(&self) -> crate::Evaluator {
        PolicySet::evaluator(self)
    }

    fn evaluate(
        &self,
        evaluator: &mut crate::Evaluator,
        request: &ReviewRequest,
    ) -> Result<Vec<Finding>, EvaluationFailure> {
        match evaluator.review(request, EnforcementPoint::Webhook) {
            Ok(violations) => Ok(violations
                .into_iter()
                .map(|v| Finding {
                    constraint_kind: v.constraint_kind,
                    constraint_name: v.constraint_name,
                    action: v.action,
                    message: v.message,
                })
                .collect()),
            Err(e) => Err(EvaluationFailure {
                message: e.to_string(),
                timed_out: e.timed_out,
            }),
        }
    }

    fn template_count(&self) -> usize {
        self.templates().count()
    }

    fn constraint_count(&self) -> usize {
        self.constraints().len()
    }
}
