//! Prometheus text metrics of the audit webhook: what arrived, how fast it was acknowledged,
//! where it waited (queue, spool), what was dropped and why, and what detection made of it.
//!
//! Counters on the request path are atomics (the handler never waits on a lock held by a
//! worker); the workers publish their detector statistics now and then into one slot each.

use crate::pipeline::DetectorStats;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why a batch was not processed. Every drop is counted under one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropReason {
    /// The body exceeded `--max-body-bytes` (answered 413).
    TooLarge,
    /// The body could not be read (client went away mid-request).
    ReadError,
    /// The in-memory queue was full and no spool is configured.
    QueueFull,
    /// The queue and the spool were both full.
    SpoolFull,
    /// Writing the spool failed (disk error).
    SpoolError,
    /// A spooled frame was torn or corrupt when read back (counted per skipped segment tail).
    SpoolCorrupt,
    /// The server was stopping and the batch could be neither processed nor spooled.
    Shutdown,
    /// Detection panicked on the batch (a bug); the worker carries on with the next one.
    WorkerPanic,
}

impl DropReason {
    pub const ALL: [DropReason; 8] = [
        DropReason::TooLarge,
        DropReason::ReadError,
        DropReason::QueueFull,
        DropReason::SpoolFull,
        DropReason::SpoolError,
        DropReason::SpoolCorrupt,
        DropReason::Shutdown,
        DropReason::WorkerPanic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::TooLarge => "too_large",
            DropReason::ReadError => "read_error",
            DropReason::QueueFull => "queue_full",
            DropReason::SpoolFull => "spool_full",
            DropReason::SpoolError => "spool_error",
            DropReason::SpoolCorrupt => "spool_corrupt",
            DropReason::Shutdown => "shutdown",
            DropReason::WorkerPanic => "worker_panic",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Upper bounds (seconds) of the acknowledgement latency histogram.
pub const ACK_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A fixed-bucket latency histogram of atomics.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; ACK_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = ACK_BUCKETS.iter().position(|&b| secs <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            d.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str) {
        let mut cumulative = 0;
        for (i, bound) in ACK_BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Gauges read from the ingest queue and spool when /metrics is scraped.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct IngestGauges {
    pub queue_batches: usize,
    pub queue_bytes: usize,
    pub queue_max_batches: usize,
    pub queue_max_bytes: usize,
    pub spool_bytes: u64,
    pub spool_segments: usize,
    pub spool_max_bytes: u64,
    /// Seconds since the oldest waiting batch was received (0 when nothing waits in memory).
    pub oldest_wait_seconds: f64,
}

/// What one worker last published.
#[derive(Debug, Default, Clone)]
struct WorkerSlot {
    stats: DetectorStats,
    batches: u64,
    /// Seconds between receiving and starting to process the last batch.
    lag_seconds: f64,
}

/// All counters of a running `detect serve`.
#[derive(Debug, Default)]
pub struct Metrics {
    batches_received: AtomicU64,
    bytes_received: AtomicU64,
    batches_queued: AtomicU64,
    batches_spooled: AtomicU64,
    batches_unspooled: AtomicU64,
    drop_batches: [AtomicU64; DropReason::ALL.len()],
    drop_bytes: [AtomicU64; DropReason::ALL.len()],
    ack: Histogram,
    alerts_written: AtomicU64,
    output_errors: AtomicU64,
    workers: Mutex<Vec<WorkerSlot>>,
}

impl Metrics {
    pub fn new(workers: usize) -> Metrics {
        let metrics = Metrics::default();
        if let Ok(mut slots) = metrics.workers.lock() {
            slots.resize(workers.max(1), WorkerSlot::default());
        }
        metrics
    }

    /// A request body accepted by the size check (queued, spooled or dropped afterwards).
    pub fn record_received(&self, bytes: usize) {
        self.batches_received.fetch_add(1, Ordering::Relaxed);
        self.bytes_received
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn record_queued(&self) {
        self.batches_queued.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_spooled(&self) {
        self.batches_spooled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_unspooled(&self) {
        self.batches_unspooled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_drop(&self, reason: DropReason, bytes: u64) {
        self.drop_batches[reason.index()].fetch_add(1, Ordering::Relaxed);
        self.drop_bytes[reason.index()].fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes lost under `reason` without a batch count of their own (a torn spool tail).
    pub fn record_drop_bytes(&self, reason: DropReason, bytes: u64) {
        self.drop_bytes[reason.index()].fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn record_ack(&self, latency: Duration) {
        self.ack.observe(latency);
    }

    pub fn record_alerts_written(&self, n: u64) {
        self.alerts_written.fetch_add(n, Ordering::Relaxed);
    }

    pub fn record_output_error(&self) {
        self.output_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drop_batches[reason.index()].load(Ordering::Relaxed)
    }

    pub fn batches_received(&self) -> u64 {
        self.batches_received.load(Ordering::Relaxed)
    }

    pub fn batches_spooled(&self) -> u64 {
        self.batches_spooled.load(Ordering::Relaxed)
    }

    pub fn batches_unspooled(&self) -> u64 {
        self.batches_unspooled.load(Ordering::Relaxed)
    }

    /// Batches the workers finished (all workers).
    pub fn batches_processed(&self) -> u64 {
        self.workers
            .lock()
            .map(|slots| slots.iter().map(|s| s.batches).sum())
            .unwrap_or(0)
    }

    /// The detector statistics summed over the workers.
    pub fn detector_stats(&self) -> DetectorStats {
        let slots = match self.workers.lock() {
            Ok(slots) => slots.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let mut total = DetectorStats::default();
        for slot in &slots {
            total.merge(&slot.stats);
        }
        total
    }

    /// A worker's latest statistics.
    pub fn publish_worker(&self, worker: usize, stats: DetectorStats, batches: u64, lag: Duration) {
        let mut slots = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        if worker >= slots.len() {
            slots.resize(worker + 1, WorkerSlot::default());
        }
        slots[worker] = WorkerSlot {
            stats,
            batches,
            lag_seconds: lag.as_secs_f64(),
        };
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, gauges: &IngestGauges) -> String {
        let mut out = String::with_capacity(8192);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut out,
            "palisade_detect_batches_received_total",
            "Audit EventList batches accepted by the size check.",
            load(&self.batches_received),
        );
        counter(
            &mut out,
            "palisade_detect_bytes_received_total",
            "Bytes of accepted batch bodies.",
            load(&self.bytes_received),
        );
        counter(
            &mut out,
            "palisade_detect_batches_queued_total",
            "Batches put on the in-memory queue.",
            load(&self.batches_queued),
        );
        counter(
            &mut out,
            "palisade_detect_batches_spooled_total",
            "Batches written to the disk spool because the queue was full.",
            load(&self.batches_spooled),
        );
        counter(
            &mut out,
            "palisade_detect_batches_unspooled_total",
            "Batches read back from the disk spool.",
            load(&self.batches_unspooled),
        );
        header(
            &mut out,
            "palisade_detect_dropped_batches_total",
            "counter",
            "Batches not processed, by reason.",
        );
        for reason in DropReason::ALL {
            let _ = writeln!(
                out,
                "palisade_detect_dropped_batches_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                load(&self.drop_batches[reason.index()])
            );
        }
        header(
            &mut out,
            "palisade_detect_dropped_bytes_total",
            "counter",
            "Bytes of batches not processed, by reason.",
        );
        for reason in DropReason::ALL {
            let _ = writeln!(
                out,
                "palisade_detect_dropped_bytes_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                load(&self.drop_bytes[reason.index()])
            );
        }
        header(
            &mut out,
            "palisade_detect_ack_latency_seconds",
            "histogram",
            "Time from the request's arrival to its 200 (body read and enqueued).",
        );
        self.ack
            .render(&mut out, "palisade_detect_ack_latency_seconds");

        gauge(
            &mut out,
            "palisade_detect_queue_batches",
            "Batches waiting in memory.",
            gauges.queue_batches as f64,
        );
        gauge(
            &mut out,
            "palisade_detect_queue_bytes",
            "Bytes waiting in memory.",
            gauges.queue_bytes as f64,
        );
        gauge(
            &mut out,
            "palisade_detect_queue_capacity_batches",
            "Queue bound in batches.",
            gauges.queue_max_batches as f64,
        );
        gauge(
            &mut out,
            "palisade_detect_queue_capacity_bytes",
            "Queue bound in bytes.",
            gauges.queue_max_bytes as f64,
        );
        gauge(
            &mut out,
            "palisade_detect_spool_bytes",
            "Bytes in the disk spool.",
            gauges.spool_bytes as f64,
        );
        gauge(
            &mut out,
            "palisade_detect_spool_segments",
            "Segment files in the disk spool.",
            gauges.spool_segments as f64,
        );
        gauge(
            &mut out,
            "palisade_detect_spool_capacity_bytes",
            "Spool bound in bytes (0: no spool).",
            gauges.spool_max_bytes as f64,
        );
        gauge(
            &mut out,
            "palisade_detect_queue_oldest_seconds",
            "Age of the oldest batch waiting in memory.",
            gauges.oldest_wait_seconds,
        );

        let slots = match self.workers.lock() {
            Ok(slots) => slots.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        header(
            &mut out,
            "palisade_detect_worker_lag_seconds",
            "gauge",
            "Time the worker's last batch waited between arrival and processing.",
        );
        for (i, slot) in slots.iter().enumerate() {
            let _ = writeln!(
                out,
                "palisade_detect_worker_lag_seconds{{worker=\"{i}\"}} {}",
                slot.lag_seconds
            );
        }
        let mut stats = DetectorStats::default();
        for slot in &slots {
            stats.merge(&slot.stats);
        }
        counter(
            &mut out,
            "palisade_detect_batches_processed_total",
            "Batches the workers finished.",
            slots.iter().map(|s| s.batches).sum(),
        );
        counter(
            &mut out,
            "palisade_detect_documents_total",
            "JSON documents parsed (a batch is one document).",
            stats.documents,
        );
        counter(
            &mut out,
            "palisade_detect_events_received_total",
            "Audit events parsed out of the batches.",
            stats.events,
        );
        header(
            &mut out,
            "palisade_detect_parse_errors_total",
            "counter",
            "Unusable documents or events, by kind (the rest of a batch is kept).",
        );
        for (kind, n) in &stats.parse_errors {
            let _ = writeln!(
                out,
                "palisade_detect_parse_errors_total{{kind=\"{}\"}} {n}",
                escape_label(kind)
            );
        }
        counter(
            &mut out,
            "palisade_detect_events_evaluated_total",
            "Events evaluated against the rules.",
            stats.events_evaluated,
        );
        counter(
            &mut out,
            "palisade_detect_rule_matches_total",
            "Rule matches before aggregation.",
            stats.matches,
        );
        header(
            &mut out,
            "palisade_detect_alerts_total",
            "counter",
            "Alerts emitted (after aggregation), by rule and severity.",
        );
        for ((rule, severity), n) in &stats.alerts {
            let _ = writeln!(
                out,
                "palisade_detect_alerts_total{{rule=\"{}\",severity=\"{}\"}} {n}",
                escape_label(rule),
                escape_label(severity)
            );
        }
        counter(
            &mut out,
            "palisade_detect_alerts_written_total",
            "Alerts written to the outputs.",
            load(&self.alerts_written),
        );
        counter(
            &mut out,
            "palisade_detect_output_errors_total",
            "Failed writes to an alert output (file or syslog).",
            load(&self.output_errors),
        );
        out
    }
}

use palisade_core::prometheus::{counter, escape_label, gauge, header};
/// Shared exposition helpers (also used by the node sensor); `sample` and `family` read a
/// rendered exposition back in tests and summaries.
pub use palisade_core::prometheus::{family, sample};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_drops() {
        let m = Metrics::new(1);
        m.record_received(100);
        m.record_drop(DropReason::SpoolFull, 100);
        m.record_ack(Duration::from_micros(300));
        m.record_ack(Duration::from_millis(3));
        let mut stats = DetectorStats {
            events: 7,
            ..DetectorStats::default()
        };
        stats.parse_errors.insert("syntax".into(), 2);
        stats.alerts.insert(("K8S_X".into(), "high".into()), 3);
        m.publish_worker(0, stats, 1, Duration::from_millis(5));
        let text = m.render(&IngestGauges {
            queue_batches: 2,
            ..IngestGauges::default()
        });
        assert_eq!(
            sample(&text, "palisade_detect_batches_received_total", ""),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "palisade_detect_dropped_batches_total",
                "reason=\"spool_full\""
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "palisade_detect_ack_latency_seconds_bucket",
                "le=\"0.0005\""
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "palisade_detect_ack_latency_seconds_bucket",
                "le=\"0.005\""
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "palisade_detect_queue_batches", ""),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                "palisade_detect_parse_errors_total",
                "kind=\"syntax\""
            ),
            Some(2.0)
        );
        assert_eq!(
            family(&text, "palisade_detect_alerts_total").get("rule=\"K8S_X\",severity=\"high\""),
            Some(&3.0)
        );
        assert_eq!(
            sample(&text, "palisade_detect_events_received_total", ""),
            Some(7.0)
        );
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
