#![no_main]
//! Kubernetes manifest loader: document splitting, YAML and JSON parsing under limits, Lists.
use libfuzzer_sys::fuzz_target;
use palisade_kube::{ManifestLimits, parse_manifest_bytes};

fuzz_target!(|data: &[u8]| {
    let limits = ManifestLimits {
        max_file_bytes: 1 << 20,
        max_documents: 1_000,
        ..Default::default()
    };
    let parsed = parse_manifest_bytes(data, "fuzz.yaml", &limits);
    for object in &parsed.objects {
        // Every object has its identity and a location inside the input.
        assert!(!object.kind.is_empty() && !object.api_version.is_empty());
        let source = object.source.as_ref().expect("manifest objects have a source");
        assert!(source.line >= 1);
        assert!(source.line as usize <= data.iter().filter(|&&b| b == b'\n').count() + 1);
    }
    for issue in &parsed.errors {
        assert!(!issue.message.is_empty());
    }
});
