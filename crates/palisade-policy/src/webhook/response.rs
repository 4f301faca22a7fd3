//! From the violations of one review to the AdmissionReview response, Gatekeeper's way: denied
//! with code 403 and one `[constraint] message` line per `deny` violation, `warn` violations as
//! warnings, `dryrun` violations only recorded.

use super::{Action, FailurePolicy, Finding};
use crate::review::AdmissionVersion;
use serde_json::{Value, json};

/// What the webhook answers for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    /// HTTP-like status code in `response.status.code` (403 denied, 500 failure policy).
    pub code: Option<u16>,
    pub message: Option<String>,
    pub warnings: Vec<String>,
}

/// Gatekeeper's line for a violation: `[constraint-name] message`.
fn line(finding: &Finding) -> String {
    format!("[{}] {}", finding.constraint_name, finding.message)
}

/// The decision from the violations of every matching constraint.
pub fn decide(findings: &[Finding]) -> Outcome {
    let denials: Vec<String> = findings
        .iter()
        .filter(|f| f.action == Action::Deny)
        .map(line)
        .collect();
    let warnings: Vec<String> = findings
        .iter()
        .filter(|f| f.action == Action::Warn)
        .map(line)
        .collect();
    if denials.is_empty() {
        Outcome {
            allowed: true,
            code: None,
            message: None,
            warnings,
        }
    } else {
        Outcome {
            allowed: false,
            code: Some(403),
            message: Some(denials.join("\n")),
            warnings,
        }
    }
}

/// The answer when the constraints could not decide (timeout, overload, internal error).
pub fn failure(policy: FailurePolicy, reason: &str) -> Outcome {
    match policy {
        FailurePolicy::Ignore => Outcome {
            allowed: true,
            code: None,
            message: None,
            warnings: vec![format!(
                "palisade: {reason}; admitted without policy checks (failure policy Ignore)"
            )],
        },
        FailurePolicy::Fail => Outcome {
            allowed: false,
            code: Some(500),
            message: Some(format!(
                "palisade: {reason}; denied without policy checks (failure policy Fail)"
            )),
            warnings: Vec::new(),
        },
    }
}

/// The AdmissionReview answering request `uid`, in the request's own apiVersion.
pub fn review_response(version: AdmissionVersion, uid: &str, outcome: &Outcome) -> Value {
    let mut response = json!({ "uid": uid, "allowed": outcome.allowed });
    if let Some(code) = outcome.code {
        response["status"] = json!({
            "status": "Failure",
            "code": code,
            "reason": if code == 403 { "Forbidden" } else { "InternalError" },
            "message": outcome.message.clone().unwrap_or_default(),
        });
    }
    if !outcome.warnings.is_empty() {
        response["warnings"] = json!(outcome.warnings);
    }
    json!({
        "apiVersion": version.api_version(),
        "kind": "AdmissionReview",
        "response": response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(name: &str, action: Action, message: &str) -> Finding {
        Finding {
            constraint_kind: "K8sTest".into(),
            constraint_name: name.into(),
            action,
            message: message.into(),
        }
    }

    #[test]
    fn deny_lists_every_denial_and_keeps_warnings() {
        let outcome = decide(&[
            finding("no-privileged", Action::Deny, "privileged container app"),
            finding("must-have-owner", Action::Warn, "missing label owner"),
            finding("limits", Action::Dryrun, "no memory limit"),
            finding("no-host-pid", Action::Deny, "hostPID is set"),
        ]);
        assert!(!outcome.allowed);
        assert_eq!(outcome.code, Some(403));
        assert_eq!(
            outcome.message.as_deref(),
            Some("[no-privileged] privileged container app\n[no-host-pid] hostPID is set")
        );
        assert_eq!(
            outcome.warnings,
            vec!["[must-have-owner] missing label owner"]
        );
        let body = review_response(AdmissionVersion::V1beta1, "u-1", &outcome);
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1beta1");
        assert_eq!(body["response"]["uid"], "u-1");
        assert_eq!(body["response"]["allowed"], false);
        assert_eq!(body["response"]["status"]["code"], 403);
        assert_eq!(
            body["response"]["warnings"][0],
            "[must-have-owner] missing label owner"
        );
    }

    #[test]
    fn dryrun_only_is_allowed_without_status() {
        let outcome = decide(&[finding("limits", Action::Dryrun, "no memory limit")]);
        assert!(outcome.allowed);
        let body = review_response(AdmissionVersion::V1, "u-2", &outcome);
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
        assert!(body["response"].get("status").is_none());
        assert!(body["response"].get("warnings").is_none());
    }

    #[test]
    fn failure_policies() {
        let ignore = failure(FailurePolicy::Ignore, "evaluation timed out after 2.5s");
        assert!(ignore.allowed);
        assert!(ignore.warnings[0].contains("timed out"));
        let fail = failure(FailurePolicy::Fail, "evaluation timed out after 2.5s");
        assert!(!fail.allowed);
        assert_eq!(fail.code, Some(500));
        let body = review_response(AdmissionVersion::V1, "u", &fail);
        assert_eq!(body["response"]["status"]["reason"], "InternalError");
    }
}
