#![no_main]
//! ConstraintTemplates and constraints from YAML through compilation and one evaluation: any
//! input gives a policy set or errors, never a crash or a hang.
use libfuzzer_sys::fuzz_target;
use palisade_kube::{ManifestLimits, parse_manifest_bytes};
use palisade_policy::{EnforcementPoint, PolicySet, PolicySettings, ReviewRequest};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let limits = ManifestLimits {
        max_file_bytes: 1 << 16,
        max_documents: 50,
        ..Default::default()
    };
    let parsed = parse_manifest_bytes(data, "fuzz.yaml", &limits);
    let settings = PolicySettings {
        eval_timeout: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    match PolicySet::compile(&parsed.objects, &parsed.objects, &settings) {
        Ok((set, _)) => {
            let mut evaluator = set.evaluator();
            for object in parsed.objects.iter().take(5) {
                if let Ok(review) = ReviewRequest::from_object(object.value.clone()) {
                    let outcome = evaluator.review_all(&review, EnforcementPoint::Audit);
                    for v in outcome.violations {
                        assert!(!v.constraint_kind.is_empty());
                    }
                }
            }
        }
        Err(errors) => assert!(errors.iter().all(|e| !e.to_string().is_empty())),
    }
});
