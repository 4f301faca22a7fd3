//! In-process admission evaluation per request: 50 constraints over six templates (the sample
//! set of `palisade bench admission`), a mix of compliant and violating pod creations.
//! Target on the 2-core reference machine: ≤ 0.5 ms per request.

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_kube::{ManifestLimits, parse_manifests};
use palisade_policy::webhook::{decide, sample_policies, sample_review};
use palisade_policy::{EnforcementPoint, PolicySet, PolicySettings, parse_admission_review};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let parsed = parse_manifests(
        &sample_policies(50),
        "bench.yaml",
        &ManifestLimits::default(),
    );
    assert!(parsed.errors.is_empty());
    let (set, _) = PolicySet::compile(&parsed.objects, &[], &PolicySettings::default())
        .expect("sample set compiles");
    assert_eq!(set.constraints().len(), 50);
    let bodies: Vec<Vec<u8>> = (0..256)
        .map(|i| serde_json::to_vec(&sample_review(i)).unwrap())
        .collect();
    let requests: Vec<_> = bodies
        .iter()
        .map(|b| parse_admission_review(b).unwrap().request)
        .collect();
    let mut evaluator = set.evaluator();

    let mut i = 0;
    c.bench_function("review 50 constraints (parsed request)", |b| {
        b.iter(|| {
            i = (i + 1) % requests.len();
            black_box(
                evaluator
                    .review(&requests[i], EnforcementPoint::Webhook)
                    .unwrap(),
            )
        })
    });
    let mut i = 0;
    c.bench_function("parse + review 50 constraints + decide", |b| {
        b.iter(|| {
            i = (i + 1) % bodies.len();
            let review = parse_admission_review(&bodies[i]).unwrap();
            let violations = evaluator
                .review(&review.request, EnforcementPoint::Webhook)
                .unwrap();
            let findings: Vec<_> = violations
                .into_iter()
                .map(|v| palisade_policy::webhook::Finding {
                    constraint_kind: v.constraint_kind,
                    constraint_name: v.constraint_name,
                    action: v.action,
                    message: v.message,
                })
                .collect();
            black_box(decide(&findings))
        })
    });

    // Palisade's own bundle: a constraint for every data-plane check, as `policy bundle export`
    // writes them for the default posture configuration.
    let mut objects = palisade_policy::bundle::bundle_objects();
    objects.extend(
        palisade_policy::bundle::constraints(
            &palisade_posture::PostureConfig::default(),
            &palisade_policy::bundle::ExportOptions::default(),
        )
        .expect("bundle constraints"),
    );
    let (bundle, _) =
        PolicySet::compile(&objects, &[], &PolicySettings::default()).expect("bundle compiles");
    let mut evaluator = bundle.evaluator();
    let name = format!(
        "review with the bundle ({} constraints)",
        bundle.constraints().len()
    );
    let mut i = 0;
    c.bench_function(&name, |b| {
        b.iter(|| {
            i = (i + 1) % requests.len();
            black_box(
                evaluator
                    .review(&requests[i], EnforcementPoint::Webhook)
                    .unwrap(),
            )
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
