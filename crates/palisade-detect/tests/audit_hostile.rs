//! Hostile input: whatever the bytes, the parsers count what they drop by kind, never panic,
//! never buffer without bound, and keep every good event around a bad one.

use palisade_detect::audit::parse::parse_reader_limited;
use palisade_detect::audit::{InputFormat, ParseError, ParseStats, parse_document, parse_reader};
use serde_json::{Value, json};

fn event(id: &str) -> Value {
    json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": id,
        "stage": "ResponseComplete", "verb": "get", "requestURI": "/api/v1/namespaces/a/pods/b",
        "user": {"username": "alice"}, "objectRef": {"resource": "pods", "namespace": "a", "name": "b"},
        "responseStatus": {"code": 200}})
}

fn doc(bytes: &[u8]) -> (Vec<String>, ParseStats, Result<(), ParseError>) {
    let mut stats = ParseStats::default();
    let mut ids = Vec::new();
    let r = parse_document(bytes, InputFormat::Auto, &mut stats, &mut |e| {
        ids.push(e.audit_id.as_deref().unwrap_or("").to_string())
    });
    (ids, stats, r)
}

fn stream(bytes: &[u8]) -> (Vec<String>, ParseStats) {
    let mut stats = ParseStats::default();
    let mut ids = Vec::new();
    parse_reader(bytes, InputFormat::Auto, &mut stats, &mut |e| {
        ids.push(e.audit_id.as_deref().unwrap_or("").to_string())
    })
    .expect("in-memory reader");
    (ids, stats)
}

#[test]
fn whole_document_errors_are_typed_and_counted_by_kind() {
    let deep = format!(
        "{{\"kind\":\"Event\",\"verb\":\"get\",\"requestObject\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let mut bad_utf8 = event("u").to_string().into_bytes();
    let at = bad_utf8.iter().position(|&b| b == b'a').expect("has an a");
    bad_utf8[at] = 0xff;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"{\"kind\": \"Event\", \"verb\": ".to_vec(),
            "malformed_json",
        ),
        (b"not json at all".to_vec(), "malformed_json"),
        (b"42".to_vec(), "malformed_json"),
        (b"\"a string\"".to_vec(), "malformed_json"),
        (b"".to_vec(), "malformed_json"),
        (bad_utf8, "invalid_utf8"),
        (deep.into_bytes(), "too_deep"),
        (
            json!({"kind": "Event", "apiVersion": "audit.k8s.io/v2", "verb": "get"})
                .to_string()
                .into_bytes(),
            "unknown_version",
        ),
        (
            json!({"kind": "Event", "apiVersion": "v1", "reason": "Scheduled"})
                .to_string()
                .into_bytes(),
            "unknown_version",
        ),
        (
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {}})
                .to_string()
                .into_bytes(),
            "unknown_kind",
        ),
        (
            json!({"hello": "world"}).to_string().into_bytes(),
            "unknown_shape",
        ),
        (
            json!({"kind": "Event", "verb": 5}).to_string().into_bytes(),
            "invalid_event",
        ),
        (
            json!({"kind": "Event", "verb": "get", "sourceIPs": "1.2.3.4"})
                .to_string()
                .into_bytes(),
            "invalid_event",
        ),
        (
            json!({"kind": "Event", "verb": "get", "responseStatus": {"code": "200"}})
                .to_string()
                .into_bytes(),
            "invalid_event",
        ),
        (
            json!({"kind": "Event", "verb": "get", "user": ["alice"]})
                .to_string()
                .into_bytes(),
            "invalid_event",
        ),
    ];
    for (bytes, kind) in cases {
        let (ids, stats, r) = doc(&bytes);
        let err = r.expect_err(kind);
        assert_eq!(err.kind(), kind, "{err}");
        assert!(ids.is_empty());
        assert_eq!((stats.documents, stats.errors), (1, 1));
        let counted = serde_json::to_value(&stats).expect("stats serialise");
        assert_eq!(counted[kind], json!(1), "{kind}: {stats:?}");
    }
}

#[test]
fn one_bad_item_does_not_lose_the_rest_of_an_event_list() {
    let list = format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{},{{"kind":"Event","verb":["x"]}},{},42,{{"kind":"Pod"}},{{"kind":"Event","apiVersion":"audit.k8s.io/v9"}},{}]}}"#,
        event("1"),
        event("2"),
        event("3")
    );
    let (ids, stats, r) = doc(list.as_bytes());
    r.expect("the list itself is usable");
    assert_eq!(ids, ["1", "2", "3"]);
    assert_eq!(stats.errors, 4);
    assert_eq!(
        (
            stats.invalid_event,
            stats.unknown_kind,
            stats.unknown_version
        ),
        (2, 1, 1)
    );
}

#[test]
fn one_bad_log_event_does_not_lose_the_rest_of_a_cloudwatch_payload() {
    let payload = json!({"messageType": "DATA_MESSAGE", "logGroup": "/aws/eks/c/cluster", "logEvents": [
        {"id": "1", "timestamp": 1, "message": event("a").to_string()},
        {"id": "2", "timestamp": 2, "message": "{\"kind\":\"Event\",\"verb\":"},
        {"id": "3", "timestamp": 3},
        42,
        ["not", "a", "record"],
        {"id": "3b", "timestamp": "yesterday", "message": 7},
        {"id": "4", "timestamp": 4, "message": json!({"apiVersion": "audit.k8s.io/v2", "kind": "Event"}).to_string()},
        {"id": "5", "timestamp": 5, "message": event("b").to_string()}
    ]});
    let (ids, stats, r) = doc(payload.to_string().as_bytes());
    r.expect("payload usable");
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(
        (
            stats.errors,
            stats.malformed_json,
            stats.invalid_event,
            stats.unknown_version
        ),
        (6, 1, 4, 1)
    );
}

#[test]
fn wrappers_nested_in_strings_without_end_are_cut_off() {
    let mut inner = event("deep").to_string();
    for _ in 0..10 {
        inner = json!({"message": inner}).to_string();
    }
    let (ids, stats, _) = doc(inner.as_bytes());
    assert!(ids.is_empty());
    assert_eq!(stats.too_deep, 1, "{stats:?}");
}

#[test]
fn a_stream_keeps_good_lines_around_bad_ones() {
    let mut text = Vec::new();
    text.extend_from_slice(format!("{}\n", event("1")).as_bytes());
    text.extend_from_slice(
        b"{\"kind\":\"Event\",\"verb\":\"get\",\"user\":{\"username\":\"trunc\n",
    );
    text.extend_from_slice(format!("{}\n", event("2")).as_bytes());
    text.extend_from_slice(b"garbage line\n");
    text.extend_from_slice(b"\xff\xfe\x00 binary\n");
    text.extend_from_slice(
        format!(
            "{}\n",
            json!({"kind": "Event", "apiVersion": "audit.k8s.io/v2"})
        )
        .as_bytes(),
    );
    text.extend_from_slice(b"{\"truncated\": [1, 2\n");
    text.extend_from_slice(format!("{}\n", event("3")).as_bytes());
    text.extend_from_slice(b"]]]}}}\n");
    text.extend_from_slice(format!("{}", event("4")).as_bytes()); // no final newline
    let (ids, stats) = stream(&text);
    assert_eq!(ids, ["1", "2", "3", "4"]);
    assert_eq!(stats.events, 4);
    assert_eq!(stats.errors, 6, "{stats:?}");
    assert_eq!(stats.unknown_version, 1);
    assert_eq!(stats.invalid_utf8 + stats.malformed_json, 5, "{stats:?}");
}

#[test]
fn oversized_documents_are_skipped_without_buffering_them() {
    let big =
        json!({"kind": "Event", "verb": "create", "requestObject": {"data": "x".repeat(200_000)}});
    let text = format!("{}\n{}\n{}\n", event("1"), big, event("2"));
    let mut stats = ParseStats::default();
    let mut ids = Vec::new();
    parse_reader_limited(
        std::io::BufReader::with_capacity(4096, text.as_bytes()),
        InputFormat::Auto,
        64 * 1024,
        &mut stats,
        &mut |e| ids.push(e.audit_id.as_deref().unwrap_or("").to_string()),
    )
    .expect("in-memory reader");
    assert_eq!(ids, ["1", "2"]);
    assert_eq!((stats.too_large, stats.errors, stats.documents), (1, 1, 3));
    // An unterminated pretty document larger than the limit is counted once, not buffered.
    let mut stats = ParseStats::default();
    let endless = format!("{{\n\"items\": [\n{}", "1,\n".repeat(100_000));
    parse_reader_limited(
        endless.as_bytes(),
        InputFormat::Auto,
        64 * 1024,
        &mut stats,
        &mut |_| {},
    )
    .expect("in-memory reader");
    assert_eq!((stats.too_large, stats.errors), (1, 1));
}

#[test]
fn huge_but_valid_events_still_parse() {
    let items: Vec<Value> = (0..20_000)
        .map(|i| json!({"name": format!("c{i}"), "image": "busybox"}))
        .collect();
    let big = json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "big", "verb": "create",
        "objectRef": {"resource": "pods"}, "requestObject": {"kind": "Pod", "spec": {"containers": items}}});
    let (ids, stats, r) = doc(big.to_string().as_bytes());
    r.expect("valid");
    assert_eq!((ids.len(), stats.errors), (1, 0));
}

#[test]
fn arbitrary_byte_soup_never_panics() {
    // A deterministic pseudo-random walk over JSON-ish tokens and raw bytes.
    let tokens: [&[u8]; 16] = [
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b":",
        b",",
        b"\\",
        b"\n",
        b"kind",
        b"Event",
        b"items",
        b"message",
        b"\xff",
        b"2024-01-01T00:00:00Z ",
        b"protoPayload",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2_000 {
        let mut input = Vec::new();
        for _ in 0..(seed % 64) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            input.extend_from_slice(tokens[(seed % 16) as usize]);
        }
        let _ = doc(&input);
        let (_, stats) = stream(&input);
        assert!(stats.events <= stats.documents * 64);
    }
}

#[test]
fn annotations_of_the_wrong_shape_read_as_none_or_as_text() {
    use palisade_detect::audit::{AuditEvent, AuditSchema};
    use palisade_detect::event::{Event, EventSchema};
    let f = AuditSchema::compile_field(r#"annotations["a"]"#).expect("field");
    for (annotations, want) in [
        (json!(["a", "b"]), None),
        (json!("a=b"), None),
        (json!({"a": 5}), Some("5")),
        (json!({"a": true}), Some("true")),
        (json!({"a": {"nested": 1}}), None),
        (json!({"n": {"nested": [1]}, "a": "kept"}), Some("kept")),
        (json!({"a": null}), None),
    ] {
        let mut e = event("x");
        e["annotations"] = annotations.clone();
        let mut stats = ParseStats::default();
        let mut got = Vec::new();
        parse_document(
            e.to_string().as_bytes(),
            InputFormat::Auto,
            &mut stats,
            &mut |ev: &AuditEvent<'_>| {
                got.push(ev.get(&f).as_str().map(str::to_string));
            },
        )
        .expect("the event itself is fine");
        assert_eq!(got, [want.map(str::to_string)], "{annotations}");
    }
}

#[test]
fn event_list_items_of_other_kinds_or_versions_are_counted_on_the_fast_path_too() {
    // Every item deserialises, so the list is read in one pass; the checks still apply per item.
    let list = format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{},{{"kind":"Pod","apiVersion":"v1"}},{{"kind":"Event","apiVersion":"audit.k8s.io/v9","verb":"get"}},{}]}}"#,
        event("1"),
        event("2")
    );
    let (ids, stats, r) = doc(list.as_bytes());
    r.expect("the list itself is usable");
    assert_eq!(ids, ["1", "2"]);
    assert_eq!(
        (stats.errors, stats.unknown_kind, stats.unknown_version),
        (2, 1, 1)
    );
    // A list of another audit version is refused as a whole.
    let list = format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v2","items":[{}]}}"#,
        event("3")
    );
    let (ids, stats, r) = doc(list.as_bytes());
    assert_eq!(r.expect_err("v2").kind(), "unknown_version");
    assert!(ids.is_empty());
    assert_eq!(stats.unknown_version, 1);
}
