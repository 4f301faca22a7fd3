//! The detection pipeline of one thread: events are evaluated by the rule engine and matches
//! are aggregated into alerts. [`Detector`] parses Kubernetes audit documents first;
//! [`NodeDetector`] judges node-sensor events the sensor has already built.
//!
//! A detector owns its engine (stateful rule memory) and aggregator, so it is used by one
//! thread at a time; the rules are shared (`Arc`). Parsing borrows from the input and the
//! engine reads fields in place, so the hot path allocates only for what a rule actually
//! matches. Both detectors share one generic judge, so node alerts are aggregated and counted
//! exactly like audit alerts.

use crate::alert::{AggregationMode, Aggregator, DetectAlert};
use crate::audit::parse::{InputFormat, ParseError, ParseStats, parse_document, parse_reader};
use crate::audit::{AuditEvent, AuditSchema};
use crate::engine::{Engine, EngineConfig, EngineStats, Match};
use crate::event::{Event, EventSchema};
use crate::node::{NodeEvent, NodeSchema};
use crate::rule::RuleSet;
use palisade_core::Severity;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

/// How a detector aggregates and how much state its engine may keep.
#[derive(Debug, Clone)]
pub struct DetectorConfig {
    /// Aggregation window: repeats of one rule on one subject and resource within it become one
    /// alert with a count.
    pub window: Duration,
    /// `Immediate` (a server: first match alerts at once, repeats are summed at window close) or
    /// `Windowed` (offline: only at window close, then `finish` flushes the rest).
    pub mode: AggregationMode,
    pub engine: EngineConfig,
}

impl Default for DetectorConfig {
    /// Five-minute window, immediate alerts, the engine's default state bounds.
    fn default() -> Self {
        DetectorConfig {
            window: Duration::from_secs(300),
            mode: AggregationMode::Immediate,
            engine: EngineConfig::default(),
        }
    }
}

/// Counters of a detector (or several, merged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectorStats {
    /// Documents parsed (a webhook batch or a line of a file).
    pub documents: u64,
    /// Events parsed out of them.
    pub events: u64,
    /// Unusable documents or events, by kind (`malformed_json`, `invalid_utf8`, …).
    pub parse_errors: BTreeMap<String, u64>,
    /// Events evaluated by the engine.
    pub events_evaluated: u64,
    /// Rule matches before aggregation.
    pub matches: u64,
    /// Alerts emitted, by (rule id, severity name).
    pub alerts: BTreeMap<(String, String), u64>,
    /// The raw parse counters.
    pub parse: ParseStats,
}

impl DetectorStats {
    /// Adds `other` into these counters.
    pub fn merge(&mut self, other: &DetectorStats) {
        self.documents += other.documents;
        self.events += other.events;
        for (kind, n) in &other.parse_errors {
            *self.parse_errors.entry(kind.clone()).or_default() += n;
        }
        self.events_evaluated += other.events_evaluated;
        self.matches += other.matches;
        for (key, n) in &other.alerts {
            *self.alerts.entry(key.clone()).or_default() += n;
        }
        self.parse.merge(&other.parse);
    }

    /// All parse errors.
    pub fn parse_error_total(&self) -> u64 {
        self.parse_errors.values().sum()
    }

    /// All alerts emitted.
    pub fn alerts_total(&self) -> u64 {
        self.alerts.values().sum()
    }

    /// Alerts emitted at or above `severity`.
    pub fn alerts_at_least(&self, severity: Severity) -> u64 {
        self.alerts
            .iter()
            .filter(|((_, s), _)| s.parse::<Severity>().is_ok_and(|s| s >= severity))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Non-error counters of [`ParseStats`] that are not error kinds.
const NOT_ERRORS: &[&str] = &["documents", "events", "errors", "control_messages"];

/// Per-kind error counters of `stats`, read through its serialised form so a new kind added to
/// the parser shows up in metrics without touching this code.
fn error_kinds(stats: &ParseStats) -> BTreeMap<String, u64> {
    let mut kinds = BTreeMap::new();
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(stats) {
        for (key, value) in map {
            if NOT_ERRORS.contains(&key.as_str()) {
                continue;
            }
            if let Some(n) = value.as_u64().filter(|&n| n > 0) {
                kinds.insert(key, n);
            }
        }
    }
    kinds
}

/// Parse → evaluate → aggregate for one thread.
pub struct Detector {
    parse: ParseStats,
    judge: Judge<AuditSchema>,
}

/// Everything of a detector but the parse counters, so a parser's sink can borrow it while the
/// parser updates those. Generic over the event schema: the audit and node detectors share it.
struct Judge<S: EventSchema> {
    rules: Arc<RuleSet<S>>,
    engine: Engine<S>,
    aggregator: Aggregator,
    matches: Vec<Match>,
    matched: u64,
    evaluated: u64,
    /// Alerts emitted by rule id: (severity, count).
    alerts: BTreeMap<String, (Severity, u64)>,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("rules", &self.judge.rules.rules().len())
            .field("evaluated", &self.judge.evaluated)
            .finish_non_exhaustive()
    }
}

impl<S: EventSchema> Judge<S> {
    fn new(rules: Arc<RuleSet<S>>, config: DetectorConfig) -> Self {
        Judge {
            engine: Engine::new(Arc::clone(&rules), config.engine),
            aggregator: Aggregator::new(config.window, config.mode),
            rules,
            matches: Vec::new(),
            matched: 0,
            evaluated: 0,
            alerts: BTreeMap::new(),
        }
    }

    /// Evaluates one event and aggregates its matches (shared by every entry point); the
    /// alerts it appends to `out` are counted.
    fn judge<E: Event<Schema = S>>(&mut self, event: &E, out: &mut Vec<DetectAlert>) {
        let start = out.len();
        self.engine.evaluate(event, &mut self.matches);
        self.evaluated += 1;
        self.matched += self.matches.len() as u64;
        for m in self.matches.drain(..) {
            self.aggregator.push(&self.rules, m, out);
        }
        self.count_alerts(&out[start..]);
    }

    /// Emits the aggregates whose window closed by `now_nanos`.
    fn tick(&mut self, now_nanos: i64, out: &mut Vec<DetectAlert>) {
        let start = out.len();
        self.aggregator.flush_due(now_nanos, out);
        self.count_alerts(&out[start..]);
    }

    /// Emits every open aggregate.
    fn finish(&mut self, out: &mut Vec<DetectAlert>) {
        let start = out.len();
        self.aggregator.flush_all(out);
        self.count_alerts(&out[start..]);
    }

    /// Alerts emitted, keyed by (rule id, severity name).
    fn alert_counts(&self) -> BTreeMap<(String, String), u64> {
        self.alerts
            .iter()
            .map(|(rule, (severity, n))| ((rule.clone(), severity.as_str().to_string()), *n))
            .collect()
    }

    fn count_alerts(&mut self, emitted: &[DetectAlert]) {
        for alert in emitted {
            match self.alerts.get_mut(alert.rule_id.as_str()) {
                Some((_, n)) => *n += 1,
                None => {
                    self.alerts
                        .insert(alert.rule_id.clone(), (alert.alert.severity, 1));
                }
            }
        }
    }
}

impl Detector {
    pub fn new(rules: Arc<RuleSet<AuditSchema>>, config: DetectorConfig) -> Self {
        Detector {
            parse: ParseStats::default(),
            judge: Judge::new(rules, config),
        }
    }

    /// The rules this detector evaluates.
    pub fn rules(&self) -> &Arc<RuleSet<AuditSchema>> {
        &self.judge.rules
    }

    /// One JSON document: an `EventList` batch, a single event, or a cloud export record. Bad
    /// elements are counted and skipped; the rest is evaluated. Alerts are appended to `out`.
    pub fn process_document(
        &mut self,
        bytes: &[u8],
        format: InputFormat,
        out: &mut Vec<DetectAlert>,
    ) {
        let Detector { parse, judge } = self;
        // Errors are counted in `parse` by the parser; nothing more to do with them here.
        let _: Result<(), ParseError> =
            parse_document(bytes, format, parse, &mut |event| judge.judge(event, out));
    }

    /// A stream of JSON lines or concatenated documents; `on_alerts` gets the alerts as they
    /// are emitted (and must drain the vector).
    pub fn process_reader<R: BufRead>(
        &mut self,
        reader: R,
        format: InputFormat,
        on_alerts: &mut dyn FnMut(&mut Vec<DetectAlert>),
    ) -> std::io::Result<()> {
        let Detector { parse, judge } = self;
        let mut out = Vec::new();
        parse_reader(reader, format, parse, &mut |event| {
            judge.judge(event, &mut out);
            if !out.is_empty() {
                on_alerts(&mut out);
                out.clear();
            }
        })
    }

    /// One already parsed event.
    pub fn process_event(&mut self, event: &AuditEvent<'_>, out: &mut Vec<DetectAlert>) {
        self.parse.events += 1;
        self.judge.judge(event, out);
    }

    /// Emits the aggregates whose window closed by `now_nanos` (wall clock for a server).
    pub fn tick(&mut self, now_nanos: i64, out: &mut Vec<DetectAlert>) {
        self.judge.tick(now_nanos, out);
    }

    /// Emits every open aggregate (end of input, shutdown).
    pub fn finish(&mut self, out: &mut Vec<DetectAlert>) {
        self.judge.finish(out);
    }

    /// Parse, engine and aggregation counters.
    pub fn stats(&self) -> DetectorStats {
        DetectorStats {
            documents: self.parse.documents,
            events: self.parse.events,
            parse_errors: error_kinds(&self.parse),
            events_evaluated: self.judge.evaluated,
            matches: self.judge.matched,
            alerts: self.judge.alert_counts(),
            parse: self.parse.clone(),
        }
    }
}

/// Evaluate → aggregate for node-sensor events, one thread: the sensor builds each
/// [`NodeEvent`] (attributed to its container and pod) and hands it here; alerts come out with
/// the node, container, pod and process in their context.
pub struct NodeDetector {
    judge: Judge<NodeSchema>,
    events: u64,
}

impl std::fmt::Debug for NodeDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeDetector")
            .field("rules", &self.judge.rules.rules().len())
            .field("evaluated", &self.judge.evaluated)
            .finish_non_exhaustive()
    }
}

impl NodeDetector {
    /// A detector judging with `rules` (e.g. [`crate::builtin::node_rules`] plus user files).
    pub fn new(rules: Arc<RuleSet<NodeSchema>>, config: DetectorConfig) -> Self {
        NodeDetector {
            judge: Judge::new(rules, config),
            events: 0,
        }
    }

    /// The rules this detector evaluates.
    pub fn rules(&self) -> &Arc<RuleSet<NodeSchema>> {
        &self.judge.rules
    }

    /// Judges one event; the alerts due (in Immediate mode the first match of each aggregate at
    /// once) are appended to `out`.
    pub fn process_event(&mut self, event: &NodeEvent, out: &mut Vec<DetectAlert>) {
        self.events += 1;
        self.judge.judge(event, out);
    }

    /// Emits the aggregates whose window closed by `now_nanos` (the sensor's wall clock: event
    /// times are Unix nanoseconds too).
    pub fn tick(&mut self, now_nanos: i64, out: &mut Vec<DetectAlert>) {
        self.judge.tick(now_nanos, out);
    }

    /// Emits every open aggregate (shutdown).
    pub fn finish(&mut self, out: &mut Vec<DetectAlert>) {
        self.judge.finish(out);
    }

    /// Events judged, matches and alerts by rule (`documents` and the parse counters stay zero:
    /// node events arrive already built).
    pub fn stats(&self) -> DetectorStats {
        DetectorStats {
            documents: 0,
            events: self.events,
            parse_errors: BTreeMap::new(),
            events_evaluated: self.judge.evaluated,
            matches: self.judge.matched,
            alerts: self.judge.alert_counts(),
            parse: ParseStats::default(),
        }
    }

    /// Per-rule engine counters (evaluations, matches, suppressions, stateful memory).
    pub fn engine_stats(&self) -> EngineStats {
        self.judge.engine.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn privileged(id: &str, name: &str, time: &str) -> serde_json::Value {
        json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
            "auditID": id, "stage": "ResponseComplete",
            "requestURI": "/api/v1/namespaces/shop/pods", "verb": "create",
            "user": {"username": "mallory@example.com", "groups": ["system:authenticated"]},
            "sourceIPs": ["203.0.113.7"],
            "objectRef": {"resource": "pods", "namespace": "shop", "name": name, "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": 201},
            "requestObject": {"kind": "Pod", "apiVersion": "v1",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {"containers": [{"name": "c", "image": "busybox",
                                         "securityContext": {"privileged": true}}]}},
            "requestReceivedTimestamp": time, "stageTimestamp": time
        })
    }

    fn rules() -> Arc<RuleSet<AuditSchema>> {
        Arc::new(crate::builtin::audit_rules().unwrap())
    }

    #[test]
    fn batch_with_bad_items_counts_errors_and_keeps_the_rest() {
        let mut detector = Detector::new(rules(), DetectorConfig::default());
        let batch = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [
            privileged("a", "p1", "2026-01-15T08:00:00Z"),
            {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": 7},
            privileged("b", "p2", "2026-01-15T08:00:01Z"),
        ]});
        let mut out = Vec::new();
        detector.process_document(batch.to_string().as_bytes(), InputFormat::Auto, &mut out);
        detector.process_document(b"{oops", InputFormat::Auto, &mut out);
        let stats = detector.stats();
        assert_eq!(stats.documents, 2);
        assert_eq!(stats.events, 2);
        assert_eq!(stats.events_evaluated, 2);
        assert_eq!(stats.parse_error_total(), 2, "{:?}", stats.parse_errors);
        assert!(stats.parse_errors.contains_key("malformed_json"));
        // Immediate mode: one alert per resource at once.
        let privileged: Vec<_> = out
            .iter()
            .filter(|a| a.rule_id == "K8S_PrivilegedContainer")
            .collect();
        assert_eq!(privileged.len(), 2);
        assert!(stats.matches >= 2);
        assert_eq!(
            stats.alerts[&(
                "K8S_PrivilegedContainer".to_string(),
                privileged[0].alert.severity.as_str().to_string()
            )],
            2
        );
        assert_eq!(stats.alerts_total(), out.len() as u64);
        assert_eq!(stats.alerts_at_least(Severity::Critical), 0);
        assert_eq!(stats.alerts_at_least(Severity::Unknown), out.len() as u64);

        let mut merged = stats.clone();
        merged.merge(&stats);
        assert_eq!(merged.events, 4);
        assert_eq!(merged.parse_error_total(), 4);
        assert_eq!(merged.alerts_total(), 2 * stats.alerts_total());
    }

    #[test]
    fn windowed_reader_aggregates_until_finish() {
        let mut detector = Detector::new(
            rules(),
            DetectorConfig {
                mode: AggregationMode::Windowed,
                window: Duration::from_secs(300),
                ..DetectorConfig::default()
            },
        );
        let text: String = ["08:00:00", "08:01:00", "08:02:00"]
            .iter()
            .enumerate()
            .map(|(i, t)| {
                privileged(&format!("e{i}"), "same", &format!("2026-01-15T{t}Z")).to_string() + "\n"
            })
            .collect();
        let mut seen = Vec::new();
        detector
            .process_reader(text.as_bytes(), InputFormat::Native, &mut |a| {
                seen.append(a);
            })
            .unwrap();
        assert!(
            seen.iter().all(|a| a.rule_id != "K8S_PrivilegedContainer"),
            "windowed: nothing before the window closes"
        );
        // A tick before the window's end keeps it open; finish emits one alert, count 3.
        let mut out = Vec::new();
        // 2026-01-15T08:03:00Z: before the window (opened 08:00:00, 5 min) closes.
        detector.tick(1_768_464_180_000_000_000, &mut out);
        assert!(out.iter().all(|a| a.rule_id != "K8S_PrivilegedContainer"));
        detector.finish(&mut out);
        let alert = out
            .iter()
            .find(|a| a.rule_id == "K8S_PrivilegedContainer")
            .unwrap();
        assert_eq!(alert.count, 3);
        assert_eq!(alert.event_ids, ["e0", "e1", "e2"]);
        assert_eq!(detector.stats().events, 3);
    }
}
