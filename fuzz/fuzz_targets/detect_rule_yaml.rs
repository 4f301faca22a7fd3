#![no_main]
//! Arbitrary text as a rule file for the JSON schema, through loading, compilation and a few
//! evaluations, aggregation and output: any input gives a rule set or an error naming the file,
//! never a crash or a hang.
use libfuzzer_sys::fuzz_target;
use palisade_detect::alert::{AggregationMode, Aggregator, AlertFormat, write_alert};
use palisade_detect::engine::{Engine, EngineConfig};
use palisade_detect::json_event::{JsonEvent, JsonSchema};
use palisade_detect::rule::{RuleSet, RuleSource};
use std::sync::Arc;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    if data.len() > 1 << 16 {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match RuleSet::<JsonSchema>::load(&[RuleSource::new("fuzz.yaml", text)]) {
        Ok(set) => {
            let set = Arc::new(set);
            let config = EngineConfig {
                max_state_keys: 64,
                ..Default::default()
            };
            let mut engine = Engine::new(set.clone(), config);
            let mut agg = Aggregator::new(Duration::from_secs(60), AggregationMode::Immediate);
            let events = [
                serde_json::json!({"id": "1", "time": 1, "verb": "create", "user": {"username": "a"},
                    "list": [1, "two", {"three": 3}], "n": 42, "s": "10.0.0.1", "b": true}),
                serde_json::json!({"id": "2", "time": 2, "nested": {"a": [{"b": [{"c": "d"}]}]}}),
                serde_json::json!(null),
            ];
            let mut matches = Vec::new();
            for (i, doc) in events.into_iter().enumerate() {
                engine.evaluate(&JsonEvent::new(doc).at(i as i64), &mut matches);
            }
            let mut alerts = Vec::new();
            for m in matches {
                assert!(m.rule < set.rules().len());
                agg.push(&set, m, &mut alerts);
            }
            agg.flush_all(&mut alerts);
            let mut sink = Vec::new();
            for a in &alerts {
                let _ = write_alert(a, AlertFormat::Json, &mut sink);
                let _ = write_alert(a, AlertFormat::Cef, &mut sink);
            }
        }
        Err(e) => assert!(e.to_string().starts_with("fuzz.yaml")),
    }
});
