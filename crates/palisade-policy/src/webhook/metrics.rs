//! Prometheus metrics of the webhook, written in the text exposition format (version 0.0.4).
//!
//! A small hand-written registry rather than a metrics crate: the webhook has a fixed set of
//! families, each with a few labels whose values come from a small set (versions, operations,
//! kinds, constraint names), so a mutex-guarded map per family is simple, allocation-light on the
//! hot path and keeps the server's dependency tree (and build time) small.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the request latency histogram: sub-millisecond evaluation up to
/// the API server's 10 s webhook timeout.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Why a request was not evaluated normally (`palisade_admission_errors_total{cause}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorCause {
    /// The body was not a valid AdmissionReview.
    Malformed,
    /// The body was larger than the limit.
    TooLarge,
    /// Evaluation did not finish before the per-request deadline.
    Timeout,
    /// Every worker was busy and the queue was full.
    QueueFull,
    /// The policy engine returned an error.
    Evaluation,
    /// No policy set has been loaded yet.
    NotReady,
    /// The Namespace object could not be fetched for namespaceSelector.
    NamespaceLookup,
    /// A worker went away (panicked) while evaluating.
    Internal,
}

impl ErrorCause {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCause::Malformed => "malformed_request",
            ErrorCause::TooLarge => "request_too_large",
            ErrorCause::Timeout => "timeout",
            ErrorCause::QueueFull => "queue_full",
            ErrorCause::Evaluation => "evaluation_error",
            ErrorCause::NotReady => "not_ready",
            ErrorCause::NamespaceLookup => "namespace_lookup",
            ErrorCause::Internal => "internal",
        }
    }
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Every metric the webhook exposes on `/metrics`. Shared (`Arc`) between the HTTP handlers, the
/// worker pool and the policy sources.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (version, operation, kind, decision) → count
    requests: Mutex<BTreeMap<[String; 4], u64>>,
    latency: Mutex<Histogram>,
    /// (constraint kind, constraint name, enforcement action) → count
    violations: Mutex<BTreeMap<[String; 3], u64>>,
    errors: Mutex<BTreeMap<ErrorCause, u64>>,
    queue_depth: AtomicI64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    templates: AtomicU64,
    constraints: AtomicU64,
    ready: AtomicU64,
    decision_log_dropped: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a metrics lock leaves consistent counters: keep counting.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Metrics {
    pub fn new() -> Self {
        Metrics::default()
    }

    /// One answered AdmissionReview.
    pub fn record_request(
        &self,
        version: &str,
        operation: &str,
        kind: &str,
        decision: &str,
        latency: Duration,
    ) {
        let key = [
            version.to_string(),
            operation.to_string(),
            kind.to_string(),
            decision.to_string(),
        ];
        *lock(&self.requests).entry(key).or_insert(0) += 1;
        let seconds = latency.as_secs_f64();
        let mut histogram = lock(&self.latency);
        for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.buckets.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    pub fn record_violation(&self, constraint_kind: &str, constraint: &str, action: &str) {
        let key = [
            constraint_kind.to_string(),
            constraint.to_string(),
            action.to_string(),
        ];
        *lock(&self.violations).entry(key).or_insert(0) += 1;
    }

    pub fn record_error(&self, cause: ErrorCause) {
        *lock(&self.errors).entry(cause).or_insert(0) += 1;
    }

    pub fn queue_add(&self, delta: i64) {
        self.queue_depth.fetch_add(delta, Ordering::Relaxed);
    }

    pub fn queue_depth(&self) -> i64 {
        self.queue_depth.load(Ordering::Relaxed)
    }

    /// A new policy set is in service (the first load counts too).
    pub fn record_reload(&self, templates: usize, constraints: usize) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        self.set_policy_size(templates, constraints);
    }

    /// A changed policy source failed to compile; the previous set stays in service.
    pub fn record_reload_failure(&self) {
        self.reload_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_policy_size(&self, templates: usize, constraints: usize) {
        self.templates.store(templates as u64, Ordering::Relaxed);
        self.constraints
            .store(constraints as u64, Ordering::Relaxed);
        self.ready.store(1, Ordering::Relaxed);
    }

    pub fn record_decision_log_drop(&self) {
        self.decision_log_dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn reload_counts(&self) -> (u64, u64) {
        (
            self.reloads.load(Ordering::Relaxed),
            self.reload_failures.load(Ordering::Relaxed),
        )
    }

    /// The text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        family(
            &mut out,
            "palisade_admission_requests_total",
            "AdmissionReview requests answered, by AdmissionReview version, operation, kind and decision.",
            "counter",
        );
        for ([version, operation, kind, decision], count) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "palisade_admission_requests_total{{version=\"{}\",operation=\"{}\",kind=\"{}\",decision=\"{}\"}} {count}",
                escape(version),
                escape(operation),
                escape(kind),
                escape(decision)
            );
        }

        family(
            &mut out,
            "palisade_admission_request_duration_seconds",
            "Time from receiving an AdmissionReview to writing its response.",
            "histogram",
        );
        {
            let histogram = lock(&self.latency);
            for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.buckets.iter()) {
                let _ = writeln!(
                    out,
                    "palisade_admission_request_duration_seconds_bucket{{le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "palisade_admission_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "palisade_admission_request_duration_seconds_sum {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "palisade_admission_request_duration_seconds_count {}",
                histogram.count
            );
        }

        family(
            &mut out,
            "palisade_admission_violations_total",
            "Constraint violations found in admission requests, by constraint and enforcement action.",
            "counter",
        );
        for ([kind, name, action], count) in lock(&self.violations).iter() {
            let _ = writeln!(
                out,
                "palisade_admission_violations_total{{constraint_kind=\"{}\",constraint=\"{}\",enforcement_action=\"{}\"}} {count}",
                escape(kind),
                escape(name),
                escape(action)
            );
        }

        family(
            &mut out,
            "palisade_admission_errors_total",
            "Requests answered by the failure policy or rejected, by cause.",
            "counter",
        );
        for (cause, count) in lock(&self.errors).iter() {
            let _ = writeln!(
                out,
                "palisade_admission_errors_total{{cause=\"{}\"}} {count}",
                cause.as_str()
            );
        }

        gauge(
            &mut out,
            "palisade_admission_queue_depth",
            "Requests waiting for an evaluation worker.",
            self.queue_depth.load(Ordering::Relaxed).max(0) as u64,
        );
        counter(
            &mut out,
            "palisade_policy_reloads_total",
            "Policy sets put in service (the first load included).",
            self.reloads.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "palisade_policy_reload_failures_total",
            "Policy changes that failed to load; the previous set stayed in service.",
            self.reload_failures.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "palisade_policy_templates",
            "ConstraintTemplates in the policy set in service.",
            self.templates.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "palisade_policy_constraints",
            "Constraints in the policy set in service.",
            self.constraints.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "palisade_policy_ready",
            "1 once a policy set is loaded.",
            self.ready.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "palisade_admission_decision_log_dropped_total",
            "Decision log records dropped because the log writer fell behind.",
            self.decision_log_dropped.load(Ordering::Relaxed),
        );
        out
    }
}

fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    family(out, name, help, "gauge");
    let _ = writeln!(out, "{name} {value}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    family(out, name, help, "counter");
    let _ = writeln!(out, "{name} {value}");
}

/// Label value escaping of the text format: backslash, double quote and line feed.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_escapes_labels() {
        let metrics = Metrics::new();
        metrics.record_request("v1", "CREATE", "Pod", "deny", Duration::from_micros(700));
        metrics.record_request("v1", "CREATE", "Pod", "deny", Duration::from_millis(30));
        metrics.record_violation("K8sPrivileged", "no-\"priv\"", "deny");
        metrics.record_error(ErrorCause::Timeout);
        metrics.record_reload(3, 7);
        metrics.queue_add(2);
        let text = metrics.render();
        assert!(text.contains(
            "palisade_admission_requests_total{version=\"v1\",operation=\"CREATE\",kind=\"Pod\",decision=\"deny\"} 2"
        ));
        assert!(
            text.contains("palisade_admission_request_duration_seconds_bucket{le=\"0.0005\"} 0")
        );
        assert!(
            text.contains("palisade_admission_request_duration_seconds_bucket{le=\"0.001\"} 1")
        );
        assert!(text.contains("palisade_admission_request_duration_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("palisade_admission_request_duration_seconds_count 2"));
        assert!(text.contains(
            "palisade_admission_violations_total{constraint_kind=\"K8sPrivileged\",constraint=\"no-\\\"priv\\\"\",enforcement_action=\"deny\"} 1"
        ));
        assert!(text.contains("palisade_admission_errors_total{cause=\"timeout\"} 1"));
        assert!(text.contains("palisade_admission_queue_depth 2"));
        assert!(text.contains("palisade_policy_constraints 7"));
        assert!(text.contains("palisade_policy_reloads_total 1"));
        assert!(text.contains("# TYPE palisade_admission_request_duration_seconds histogram"));
    }
}
