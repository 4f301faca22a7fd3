#![no_main]
//! Audit documents and streams as collectors deliver them: any bytes give events or counted
//! errors, never a panic; every event read back through the schema answers without panicking,
//! and the counters add up.
use libfuzzer_sys::fuzz_target;
use palisade_detect::audit::{AuditSchema, InputFormat, ParseStats, parse_document, parse_reader};
use palisade_detect::event::{Event, EventSchema};

const FIELDS: &[&str] = &[
    "verb",
    "objectRef.resource",
    "user.username",
    "user.groups",
    "user.serviceaccount.name",
    "sourceIPs",
    "responseStatus.code",
    r#"annotations["authorization.k8s.io/decision"]"#,
    "object.metadata.name",
    "pod.spec",
    "pod.containers",
    "pod.containers.image",
    "pod.containers[0].securityContext.privileged",
    "pod.hostNetwork",
    "requestObject.spec",
    "responseObject",
    "user.extra",
    "annotations",
    "source.format",
    "cluster",
];

fuzz_target!(|data: &[u8]| {
    let fields: Vec<_> = FIELDS
        .iter()
        .map(|f| AuditSchema::compile_field(f).expect("fields compile"))
        .collect();
    let mut read = |e: &palisade_detect::audit::AuditEvent<'_>| {
        for f in &fields {
            let _ = e.get(f);
        }
        let _ = (e.index_value(0), e.index_value(1), e.index_value(2), e.time_nanos(), e.event_id());
        let owned = e.clone().into_owned();
        assert_eq!(owned.event_id(), e.event_id());
    };
    let mut stats = ParseStats::default();
    let result = parse_document(data, InputFormat::Auto, &mut stats, &mut read);
    assert_eq!(stats.documents, 1);
    if result.is_err() {
        assert!(stats.errors >= 1);
    }
    let mut stream_stats = ParseStats::default();
    parse_reader(data, InputFormat::Auto, &mut stream_stats, &mut read).expect("in-memory reader");
    let by_kind = stream_stats.malformed_json
        + stream_stats.invalid_utf8
        + stream_stats.too_deep
        + stream_stats.too_large
        + stream_stats.unknown_version
        + stream_stats.unknown_kind
        + stream_stats.unknown_shape
        + stream_stats.invalid_event
        + stream_stats.not_kubernetes;
    assert_eq!(by_kind, stream_stats.errors);
});
