//! The fast path for Palisade's own bundle at admission: a constraint whose template is an
//! unmodified bundle template for a posture workload check is decided by that posture check in
//! Rust instead of by its Rego. Both encode the same check with the same parameters — the
//! differential test (`tests/bundle_parity.rs`) holds the Rego, the posture checks and this path to the
//! same verdicts — and the Rust one is two orders of magnitude faster. Templates a user edited,
//! and every other template, run their Rego.

use crate::bundle;
use crate::template::Template;
use palisade_kube::KubeObject;
use palisade_posture::PostureConfig;
use palisade_posture::config::Parameters;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

/// A bundle template's check id, Rego and libs.
type BundleSource = (&'static str, String, Vec<String>);

/// The Rego and libs of each bundle template, by constraint kind.
fn bundle_sources() -> &'static HashMap<String, BundleSource> {
    static SOURCES: OnceLock<HashMap<String, BundleSource>> = OnceLock::new();
    SOURCES.get_or_init(|| {
        let workload: Vec<&str> = palisade_posture::workload::CHECKS
            .iter()
            .map(|c| c.id)
            .collect();
        bundle::templates()
            .into_iter()
            .filter(|t| workload.contains(&t.check_id))
            .filter_map(|t| {
                let parsed = Template::from_object(&t.object).ok()?;
                Some((parsed.kind, (t.check_id, parsed.rego, parsed.libs)))
            })
            .collect()
    })
}

/// The posture check that decides a constraint natively, if its template is an unmodified
/// bundle template of a workload check and its parameters are posture parameters.
pub(crate) fn native_check(template: &Template, parameters: &Value) -> Option<NativeCheck> {
    let (check_id, rego, libs) = bundle_sources().get(&template.kind)?;
    if template.rego != *rego || template.libs != *libs {
        return None;
    }
    let parameters: Parameters = if parameters.is_null() {
        Parameters::default()
    } else {
        serde_json::from_value(parameters.clone()).ok()?
    };
    let config = PostureConfig {
        parameters,
        ..PostureConfig::default()
    };
    config.parameters.validate().ok()?;
    Some(NativeCheck { check_id, config })
}

/// A posture check and the configuration carrying a constraint's parameters.
#[derive(Debug, Clone)]
pub(crate) struct NativeCheck {
    pub check_id: &'static str,
    pub config: PostureConfig,
}

/// One posture result the evaluator turns into a violation.
pub(crate) struct NativeFinding {
    pub check_id: String,
    pub message: String,
    pub container: Option<String>,
    pub field: Option<String>,
}

/// Runs the workload checks once for a configuration (every constraint sharing its parameters
/// takes its findings from this run).
pub(crate) fn run(
    object: &KubeObject,
    config: &PostureConfig,
    service_accounts: &[KubeObject],
) -> Vec<NativeFinding> {
    palisade_posture::workload::check_admission_object(object, config, service_accounts.iter())
        .into_iter()
        .map(|f| NativeFinding {
            check_id: f.check_id.into_owned(),
            message: f.message,
            container: f.resource.container,
            field: f.evidence.first().map(|e| e.path.clone()),
        })
        .collect()
}
