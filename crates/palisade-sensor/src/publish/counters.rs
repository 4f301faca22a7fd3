//! What the publisher did: records accepted, delivered, retried, spooled and — every one of them —
//! dropped, by reason. Atomics, so the kernel reader's side and the health endpoint never wait on
//! the publisher's threads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Why records did not reach the sink. Every lost record is counted under exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PublishDropReason {
    /// The in-memory queue was full when the record was submitted (the publisher is behind).
    QueueFull,
    /// The record could not be serialised (a bug; counted rather than lost silently).
    Serialize,
    /// The backend was unreachable, no spool is configured and the in-memory outbox was full.
    BackendUnavailable,
    /// The backend was unreachable and the disk spool was at its size cap.
    SpoolFull,
    /// Writing to or reading from the spool failed (disk error).
    SpoolError,
    /// A spooled batch was torn or corrupt when read back (after a crash or disk fault).
    SpoolCorrupt,
    /// The backend refused the batch for good (400, 413, 422, …): retrying cannot help.
    Rejected,
    /// Writing a JSON line to the output file or stdout failed.
    OutputError,
    /// The sensor was stopping and the records could be neither delivered nor spooled.
    Shutdown,
}

impl PublishDropReason {
    /// Every reason, in exposition order.
    pub const ALL: [PublishDropReason; 9] = [
        PublishDropReason::QueueFull,
        PublishDropReason::Serialize,
        PublishDropReason::BackendUnavailable,
        PublishDropReason::SpoolFull,
        PublishDropReason::SpoolError,
        PublishDropReason::SpoolCorrupt,
        PublishDropReason::Rejected,
        PublishDropReason::OutputError,
        PublishDropReason::Shutdown,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            PublishDropReason::QueueFull => "queue_full",
            PublishDropReason::Serialize => "serialize",
            PublishDropReason::BackendUnavailable => "backend_unavailable",
            PublishDropReason::SpoolFull => "spool_full",
            PublishDropReason::SpoolError => "spool_error",
            PublishDropReason::SpoolCorrupt => "spool_corrupt",
            PublishDropReason::Rejected => "rejected",
            PublishDropReason::OutputError => "output_error",
            PublishDropReason::Shutdown => "shutdown",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The live counters (shared by the publisher's threads, its handles and the health endpoint).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub events_submitted: AtomicU64,
    pub alerts_submitted: AtomicU64,
    pub records_delivered: AtomicU64,
    pub batches_delivered: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub heartbeats_sent: AtomicU64,
    pub send_failures: AtomicU64,
    pub retries: AtomicU64,
    pub batches_spooled: AtomicU64,
    /// Records in the spooled batches (batches are cut by count, size or age, so they vary).
    pub records_spooled: AtomicU64,
    pub batches_unspooled: AtomicU64,
    pub dropped_records: [AtomicU64; PublishDropReason::ALL.len()],
    pub dropped_batches: [AtomicU64; PublishDropReason::ALL.len()],
    pub backend_up: AtomicBool,
    pub consecutive_failures: AtomicU64,
    pub last_success_unix_nanos: AtomicU64,
}

impl Counters {
    pub fn drop_records(&self, reason: PublishDropReason, records: u64) {
        self.dropped_records[reason.index()].fetch_add(records, Ordering::Relaxed);
        self.dropped_batches[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Gauges read from the queue, outbox and spool when the counters are taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishGauges {
    /// Records waiting in the in-memory queue, and their bytes.
    pub queue_records: u64,
    pub queue_bytes: u64,
    pub queue_max_records: u64,
    pub queue_max_bytes: u64,
    /// Sealed batches waiting in memory for the backend.
    pub outbox_batches: u64,
    /// Bytes and segment files in the disk spool; its cap (0: no spool).
    pub spool_bytes: u64,
    pub spool_segments: u64,
    pub spool_max_bytes: u64,
}

/// A snapshot of the publisher's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishCounters {
    /// Records accepted into the queue (before any drop).
    pub events_submitted: u64,
    pub alerts_submitted: u64,
    /// Records that reached the sink (acknowledged by the backend, or written as a line).
    pub records_delivered: u64,
    pub batches_delivered: u64,
    /// Request bytes (gzip) the backend acknowledged.
    pub bytes_sent: u64,
    pub heartbeats_sent: u64,
    /// Failed delivery attempts (network errors, timeouts, retryable status codes).
    pub send_failures: u64,
    /// Attempts that were retries of a batch already tried.
    pub retries: u64,
    pub batches_spooled: u64,
    pub records_spooled: u64,
    pub batches_unspooled: u64,
    /// Records lost, by reason (every reason present, zero or not).
    pub dropped_records: Vec<(PublishDropReason, u64)>,
    /// Batches (or single submissions) lost, by reason.
    pub dropped_batches: Vec<(PublishDropReason, u64)>,
    /// The last delivery attempt succeeded (always true for file and stdout sinks once written).
    pub backend_up: bool,
    pub consecutive_failures: u64,
    /// Wall-clock time of the last successful delivery (0: none yet).
    pub last_success_unix_nanos: u64,
    pub gauges: PublishGauges,
}

impl PublishCounters {
    pub(crate) fn snapshot(c: &Counters, gauges: PublishGauges) -> PublishCounters {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PublishCounters {
            events_submitted: load(&c.events_submitted),
            alerts_submitted: load(&c.alerts_submitted),
            records_delivered: load(&c.records_delivered),
            batches_delivered: load(&c.batches_delivered),
            bytes_sent: load(&c.bytes_sent),
            heartbeats_sent: load(&c.heartbeats_sent),
            send_failures: load(&c.send_failures),
            retries: load(&c.retries),
            batches_spooled: load(&c.batches_spooled),
            records_spooled: load(&c.records_spooled),
            batches_unspooled: load(&c.batches_unspooled),
            dropped_records: PublishDropReason::ALL
                .iter()
                .map(|r| (*r, load(&c.dropped_records[r.index()])))
                .collect(),
            dropped_batches: PublishDropReason::ALL
                .iter()
                .map(|r| (*r, load(&c.dropped_batches[r.index()])))
                .collect(),
            backend_up: c.backend_up.load(Ordering::Relaxed),
            consecutive_failures: load(&c.consecutive_failures),
            last_success_unix_nanos: load(&c.last_success_unix_nanos),
            gauges,
        }
    }

    /// Records dropped for `reason`.
    pub fn dropped(&self, reason: PublishDropReason) -> u64 {
        self.dropped_records
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// Records dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_records.iter().map(|(_, n)| n).sum()
    }

    /// As JSON for the heartbeat in a batch (the ingest contract's `heartbeat.publisher`).
    pub fn to_json(&self) -> serde_json::Value {
        let drops: serde_json::Map<String, serde_json::Value> = self
            .dropped_records
            .iter()
            .map(|(r, n)| (r.as_str().to_string(), serde_json::Value::from(*n)))
            .collect();
        serde_json::json!({
            "events_submitted": self.events_submitted,
            "alerts_submitted": self.alerts_submitted,
            "records_delivered": self.records_delivered,
            "batches_delivered": self.batches_delivered,
            "send_failures": self.send_failures,
            "retries": self.retries,
            "batches_spooled": self.batches_spooled,
            "records_spooled": self.records_spooled,
            "spool_bytes": self.gauges.spool_bytes,
            "queue_records": self.gauges.queue_records,
            "dropped_records": drops,
        })
    }
}
