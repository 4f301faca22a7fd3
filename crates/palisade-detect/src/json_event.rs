//! A schema-free event: any JSON document, fields named by plain JSON paths.
//!
//! The engine is generic over [`EventSchema`]; this is the smallest real schema, so the engine's own
//! tests, benchmarks and fuzzing exercise the rule language without depending on the audit model,
//! and a new source can prototype rules before it has a typed model.

use crate::event::{Event, EventSchema};
use crate::path::JsonPath;
use crate::value::Val;

/// Fields are JSON paths below the document root; no index dimensions, so every rule is a
/// candidate for every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonSchema;

impl EventSchema for JsonSchema {
    type Field = JsonPath;
    const SOURCE: &'static str = "json";
    const INDEX_DIMENSIONS: &'static [&'static str] = &[];

    fn compile_field(path: &str) -> Result<JsonPath, String> {
        if path.is_empty() {
            return Err("empty field path".to_string());
        }
        JsonPath::parse(path).map_err(|e| e.to_string())
    }

    fn default_subject_field() -> &'static str {
        "subject"
    }

    fn default_resource_field() -> &'static str {
        "resource"
    }
}

/// One JSON document as an event. Its time and id come from the document's top-level `time`
/// (integer nanoseconds since the epoch, or an RFC 3339 string) and `id` (string) when present,
/// and can be set explicitly.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonEvent {
    pub doc: serde_json::Value,
    pub time_nanos: i64,
    pub id: String,
}

impl JsonEvent {
    /// Wraps `doc`, reading `time` and `id` from it when it has them.
    pub fn new(doc: serde_json::Value) -> JsonEvent {
        let time_nanos = match doc.get("time") {
            Some(serde_json::Value::Number(n)) => n.as_i64().unwrap_or(0),
            Some(serde_json::Value::String(s)) => {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .ok()
                    .and_then(|t| i64::try_from(t.unix_timestamp_nanos()).ok())
                    .unwrap_or(0)
            }
            _ => 0,
        };
        let id = doc
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        JsonEvent {
            doc,
            time_nanos,
            id,
        }
    }

    /// The same event at another time (tests of windows and learning periods).
    pub fn at(mut self, time_nanos: i64) -> JsonEvent {
        self.time_nanos = time_nanos;
        self
    }
}

impl Event for JsonEvent {
    type Schema = JsonSchema;

    fn get(&self, field: &JsonPath) -> Val<'_> {
        field.lookup(&self.doc)
    }

    fn index_value(&self, _dimension: usize) -> Option<&str> {
        None
    }

    fn time_nanos(&self) -> i64 {
        self.time_nanos
    }

    fn event_id(&self) -> &str {
        &self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_time_id_and_fields() {
        let e =
            JsonEvent::new(json!({"id": "e1", "time": "2024-01-02T03:04:05.5Z", "a": {"b": 3}}));
        assert_eq!(e.event_id(), "e1");
        assert_eq!(e.time_nanos(), 1_704_164_645_500_000_000);
        let f = JsonSchema::compile_field("a.b").expect("compiles");
        assert_eq!(e.get(&f), Val::Int(3));
        let e = JsonEvent::new(json!({"time": 42}));
        assert_eq!(e.time_nanos(), 42);
        assert_eq!(e.event_id(), "");
        assert!(JsonSchema::compile_field("a..b").is_err());
        assert!(JsonSchema::compile_field("").is_err());
    }
}
