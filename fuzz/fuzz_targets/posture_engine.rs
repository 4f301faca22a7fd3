#![no_main]
//! The posture engine on whatever the manifest loader accepts: checks, RBAC, graph and attack
//! paths must never panic on hostile objects (wrong types, huge numbers, odd selectors).
use libfuzzer_sys::fuzz_target;
use palisade_kube::{Inventory, ManifestLimits, parse_manifest_bytes};
use palisade_posture::graph::{SecurityGraph, attack_paths};
use palisade_posture::rbac::RbacIndex;
use palisade_posture::{PostureConfig, analyze};

fuzz_target!(|data: &[u8]| {
    let limits = ManifestLimits {
        max_file_bytes: 1 << 18,
        max_documents: 200,
        ..Default::default()
    };
    let parsed = parse_manifest_bytes(data, "fuzz.yaml", &limits);
    let inventory = Inventory {
        cluster: None,
        objects: parsed.objects,
        warnings: parsed.warnings,
    };
    let config = PostureConfig::default();
    let findings = analyze(&inventory, &config);
    for f in &findings {
        assert!(!f.check_id.is_empty());
    }
    let rbac = RbacIndex::build(&inventory);
    let graph = SecurityGraph::build(&inventory, &rbac, None, &config);
    let _ = attack_paths(&graph);
});
