//! From matches to alerts: the same rule firing for the same subject on the same resource within
//! a window becomes one alert with a count, first and last seen times and the triggering event
//! ids, so a noisy client produces one line instead of thousands.

mod output;

pub use output::{AlertFormat, cef_severity, ecs_severity, write_alert};

use crate::engine::{Match, MatchContext};
use crate::event::EventSchema;
use crate::rule::{RuleMeta, RuleSet};
use palisade_core::ResourceRef;
use palisade_core::alert::Alert;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Most event ids kept per alert.
pub const MAX_EVENT_IDS: usize = 20;
/// Most aggregates open at once; beyond it the oldest is closed early (and counted).
pub const DEFAULT_MAX_OPEN: usize = 100_000;

/// One (possibly aggregated) detection, ready to write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectAlert {
    /// The shared alert model (`alert_id` = rule id, `time` = first seen, evidence).
    pub alert: Alert,
    pub rule_id: String,
    pub description: String,
    /// The rule's output rendered for the first matching event.
    pub message: String,
    pub subject: String,
    /// The aggregation resource (the rule's `resource` field).
    pub resource: String,
    pub count: u64,
    /// RFC 3339.
    pub first_seen: String,
    pub last_seen: String,
    pub first_seen_nanos: i64,
    pub last_seen_nanos: i64,
    /// Ids of the triggering events, at most [`MAX_EVENT_IDS`].
    pub event_ids: Vec<String>,
    /// The schema source (`audit`, `node`).
    pub source: String,
    /// The ECS `event.dataset` for the source (`kubernetes.audit`).
    pub dataset: String,
    /// Who, from where and on what, when the source has it.
    pub context: MatchContext,
    pub tags: Vec<String>,
    /// True for the updated copy of an alert already emitted (Immediate mode).
    pub update: bool,
}

/// The ECS dataset name of a schema source.
pub fn dataset_for_source(source: &str) -> String {
    match source {
        "audit" => "kubernetes.audit".to_string(),
        other => format!("palisade.{other}"),
    }
}

/// RFC 3339 text of an event time (nanoseconds since the epoch).
pub fn rfc3339(nanos: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

impl DetectAlert {
    /// A new alert for one match of the rule `meta`.
    pub fn from_match(meta: &RuleMeta, source: &str, m: Match) -> DetectAlert {
        let time = rfc3339(m.time_nanos);
        let context = m.context;
        let alert = Alert {
            alert_id: meta.id.clone(),
            title: meta.title.clone(),
            severity: meta.severity,
            time: time.clone(),
            resource: ResourceRef {
                cluster: context.cluster.clone(),
                namespace: context.namespace.clone(),
                // Node alerts name the pod the process ran in, when it had one.
                kind: context
                    .resource_type
                    .clone()
                    .or_else(|| context.pod_name.as_ref().map(|_| "pods".to_string())),
                name: context
                    .resource_name
                    .clone()
                    .or_else(|| context.pod_name.clone()),
                ..Default::default()
            },
            tactics: meta.tactics.clone(),
            techniques: meta.techniques.clone(),
            evidence: serde_json::Value::Object(m.fields),
            remediation: meta.remediation.clone(),
        };
        DetectAlert {
            alert,
            rule_id: meta.id.clone(),
            description: meta.description.clone(),
            message: m.output,
            subject: m.subject,
            resource: m.resource,
            count: 1,
            first_seen: time.clone(),
            last_seen: time,
            first_seen_nanos: m.time_nanos,
            last_seen_nanos: m.time_nanos,
            event_ids: if m.event_id.is_empty() {
                Vec::new()
            } else {
                vec![m.event_id]
            },
            source: source.to_string(),
            dataset: dataset_for_source(source),
            context,
            tags: meta.tags.clone(),
            update: false,
        }
    }

    /// Folds a repeat of the same rule, subject and resource into this alert.
    fn absorb(&mut self, m: Match) {
        self.count += 1;
        if m.time_nanos < self.first_seen_nanos {
            self.first_seen_nanos = m.time_nanos;
            self.first_seen = rfc3339(m.time_nanos);
            self.alert.time = self.first_seen.clone();
        }
        if m.time_nanos > self.last_seen_nanos {
            self.last_seen_nanos = m.time_nanos;
            self.last_seen = rfc3339(m.time_nanos);
        }
        if !m.event_id.is_empty()
            && self.event_ids.len() < MAX_EVENT_IDS
            && !self.event_ids.contains(&m.event_id)
        {
            self.event_ids.push(m.event_id);
        }
    }
}

/// When aggregated alerts are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AggregationMode {
    /// The first match emits at once; repeats within the window are counted and one updated
    /// alert is emitted when the window closes (if there were repeats).
    #[default]
    Immediate,
    /// Emit only when the window closes (offline analysis: one alert per burst).
    Windowed,
}

/// Aggregation counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AggregatorStats {
    pub matches: u64,
    pub alerts: u64,
    pub open: u64,
    /// Aggregates closed before their window ended because too many were open.
    pub closed_early: u64,
}

type Key = (usize, String, String);

#[derive(Debug)]
struct Open {
    alert: DetectAlert,
    deadline: i64,
    seq: u64,
    /// Matches not yet reflected in an emitted alert.
    pending: u64,
}

/// Groups matches into alerts by rule, subject and resource within a window of event time.
#[derive(Debug)]
pub struct Aggregator {
    window_nanos: i64,
    mode: AggregationMode,
    max_open: usize,
    open: HashMap<Key, Open>,
    deadlines: BTreeMap<(i64, u64), Key>,
    seq: u64,
    /// Latest event time pushed: windows ending before it are closed on the next push.
    watermark: i64,
    stats: AggregatorStats,
}

impl Aggregator {
    /// A zero `window` disables aggregation: every match is an alert at once.
    pub fn new(window: Duration, mode: AggregationMode) -> Self {
        Aggregator {
            window_nanos: i64::try_from(window.as_nanos()).unwrap_or(i64::MAX),
            mode,
            max_open: DEFAULT_MAX_OPEN,
            open: HashMap::new(),
            deadlines: BTreeMap::new(),
            seq: 0,
            watermark: i64::MIN,
            stats: AggregatorStats::default(),
        }
    }

    /// Caps how many aggregates are open at once (memory bound).
    pub fn with_max_open(mut self, max_open: usize) -> Self {
        self.max_open = max_open.max(1);
        self
    }

    pub fn stats(&self) -> AggregatorStats {
        AggregatorStats {
            open: self.open.len() as u64,
            ..self.stats.clone()
        }
    }

    /// Adds one match; appends to `out` the alerts that are due (this one in Immediate mode,
    /// and any aggregate whose window closed before this match's time).
    pub fn push<S: EventSchema>(
        &mut self,
        rules: &RuleSet<S>,
        m: Match,
        out: &mut Vec<DetectAlert>,
    ) {
        self.stats.matches += 1;
        let Some(meta) = rules.rules().get(m.rule) else {
            return;
        };
        if m.time_nanos > self.watermark {
            self.watermark = m.time_nanos;
            self.flush_due(self.watermark, out);
        }
        if self.window_nanos == 0 {
            self.emit(DetectAlert::from_match(meta, S::SOURCE, m), out);
            return;
        }
        let key: Key = (m.rule, m.subject.clone(), m.resource.clone());
        if let Some(open) = self.open.get_mut(&key) {
            if m.time_nanos < open.deadline {
                open.alert.absorb(m);
                open.pending += 1;
                return;
            }
            // This key's window is over (late flush): close it and start anew.
            if let Some(open) = self.open.remove(&key) {
                self.deadlines.remove(&(open.deadline, open.seq));
                self.close(open, out);
            }
        }
        let alert = DetectAlert::from_match(meta, S::SOURCE, m);
        let deadline = alert.first_seen_nanos.saturating_add(self.window_nanos);
        let pending = match self.mode {
            AggregationMode::Immediate => {
                self.emit(alert.clone(), out);
                0
            }
            AggregationMode::Windowed => 1,
        };
        self.seq += 1;
        self.deadlines.insert((deadline, self.seq), key.clone());
        self.open.insert(
            key,
            Open {
                alert,
                deadline,
                seq: self.seq,
                pending,
            },
        );
        while self.open.len() > self.max_open {
            let Some((_, key)) = self.deadlines.pop_first() else {
                break;
            };
            if let Some(open) = self.open.remove(&key) {
                self.stats.closed_early += 1;
                self.close(open, out);
            }
        }
    }

    /// Emits every aggregate whose window ended at or before `now_nanos` (event-time clock).
    pub fn flush_due(&mut self, now_nanos: i64, out: &mut Vec<DetectAlert>) {
        while let Some(entry) = self.deadlines.first_entry() {
            if entry.key().0 > now_nanos {
                break;
            }
            let key = entry.remove();
            if let Some(open) = self.open.remove(&key) {
                self.close(open, out);
            }
        }
    }

    /// Emits every open aggregate (end of input, shutdown).
    pub fn flush_all(&mut self, out: &mut Vec<DetectAlert>) {
        self.flush_due(i64::MAX, out);
    }

    fn close(&mut self, open: Open, out: &mut Vec<DetectAlert>) {
        if open.pending == 0 {
            return;
        }
        let mut alert = open.alert;
        alert.update = self.mode == AggregationMode::Immediate;
        self.emit(alert, out);
    }

    fn emit(&mut self, alert: DetectAlert, out: &mut Vec<DetectAlert>) {
        self.stats.alerts += 1;
        out.push(alert);
    }
}
