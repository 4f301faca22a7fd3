//! The publisher: node events and alerts to a backend over HTTPS, or as JSON lines to a file or
//! stdout, with bounded memory, a disk spool while the backend is unreachable, retries with
//! backoff, and every lost record counted by reason.
//!
//! Three stages, none of which waits on the next:
//! - [`PublisherHandle::publish_event`] / [`PublisherHandle::publish_alert`] serialise on the
//!   caller's thread and push into a queue bounded in records and bytes; a full queue drops the
//!   record and counts it (`queue_full`) instead of blocking the kernel reader behind it.
//! - The batcher thread seals batches by size (records, bytes) or age. For a file or stdout it
//!   writes one JSON line per record (`{"record":"event",…}` / `{"record":"alert",…}`). For a
//!   backend it builds the batch document of the ingest contract (docs/sensor-ingest.md), gzips
//!   it and puts it in the outbox: a few batches in memory, then the disk spool.
//! - The sender thread POSTs the oldest batch with the bearer token and an idempotency key,
//!   retries failures with exponential backoff and jitter, and moves everything waiting in memory
//!   to the spool as soon as the backend fails, so an outage costs disk, not memory. Once the
//!   spool holds anything, new batches queue behind it: delivery stays in order across an outage
//!   and across a restart (the spool is picked up at start). A full spool drops and counts.

mod counters;
pub mod encode;
mod sender;

pub use counters::{PublishCounters, PublishDropReason, PublishGauges};
pub use encode::{BATCH_SCHEMA, EncodedBatch, Record, RecordKind, SensorIdentity};

use counters::Counters;
use palisade_core::spool::{Spool, SpoolError, SpoolLimits};
use palisade_detect::alert::DetectAlert;
use palisade_detect::node::NodeEvent;
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// POST gzip batches to `url` (the full ingest endpoint, e.g.
    /// `https://palisade.example/api/v1/sensor/batches`) with `Authorization: Bearer <token>`.
    /// `ca`: a PEM bundle to trust instead of the system roots.
    Http {
        url: String,
        token: String,
        ca: Option<PathBuf>,
    },
    /// Append JSON lines to a file.
    File(PathBuf),
    /// JSON lines on stdout.
    Stdout,
}

/// Backoff between delivery attempts of one batch: `initial · 2^(attempt-1)`, capped at `max`,
/// of which a random half is waited (jitter keeps a fleet of sensors from retrying in step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// 500 ms doubling up to 30 s.
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (`attempt` ≥ 1 failures so far); `unit` in [0, 1)
    /// picks the jitter.
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let base = self
            .initial
            .saturating_mul(1u32 << exp)
            .min(self.max.max(self.initial));
        let half = base / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// How the publisher batches, bounds and retries. [`PublisherConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    pub sink: Sink,
    /// The node and cluster named in every batch's `sensor` object.
    pub node: String,
    pub cluster: Option<String>,
    /// In-memory queue bounds (records waiting to be batched).
    pub queue_max_records: usize,
    pub queue_max_bytes: usize,
    /// A batch is sealed at this many records, this many uncompressed bytes, or this age.
    pub batch_max_records: usize,
    pub batch_max_bytes: usize,
    pub batch_max_age: Duration,
    /// Sealed batches kept in memory while the backend is slow; beyond it they are spooled (or
    /// dropped as `backend_unavailable` without a spool).
    pub outbox_max_batches: usize,
    /// Disk spool directory (`None`: no spool) and its size cap.
    pub spool_dir: Option<PathBuf>,
    pub spool: SpoolLimits,
    pub retry: RetryPolicy,
    /// Timeout of one POST (connect + send + answer).
    pub request_timeout: Duration,
    /// A batch with the `heartbeat` object (sensor counters) is sent at least this often, empty
    /// or not, so the backend sees a quiet sensor is alive (backend sink only).
    pub heartbeat_interval: Duration,
}

impl PublisherConfig {
    /// Defaults: 65 536 records / 64 MiB queued, batches of 2000 records / 4 MiB / 1 s, 8
    /// batches in memory, no spool (256 MiB cap in 8 MiB segments when one is set), 500 ms–30 s
    /// backoff, 15 s requests, 30 s heartbeats.
    pub fn new(sink: Sink, node: impl Into<String>) -> PublisherConfig {
        PublisherConfig {
            sink,
            node: node.into(),
            cluster: None,
            queue_max_records: 65_536,
            queue_max_bytes: 64 << 20,
            batch_max_records: 2000,
            batch_max_bytes: 4 << 20,
            batch_max_age: Duration::from_secs(1),
            outbox_max_batches: 8,
            spool_dir: None,
            spool: SpoolLimits {
                max_bytes: 256 << 20,
                segment_bytes: 8 << 20,
            },
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(15),
            heartbeat_interval: Duration::from_secs(30),
        }
    }
}

/// Why the publisher could not start.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("publisher configuration: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("cannot start the publisher threads: {0}")]
    Thread(#[source] std::io::Error),
}

/// Extra heartbeat content (kernel and pipeline counters) the agent supplies; the publisher adds
/// its own counters under `publisher`.
pub type HeartbeatSource = Box<dyn Fn() -> serde_json::Value + Send>;

#[derive(Debug, Default)]
struct RecordQueue {
    records: VecDeque<Record>,
    bytes: usize,
    closed: bool,
}

#[derive(Debug)]
struct Store {
    /// Sealed batches in memory, oldest first. Invariant: when the spool holds anything, the
    /// outbox is empty (everything in memory is older than everything on disk).
    outbox: VecDeque<EncodedBatch>,
    spool: Option<Spool>,
    /// The batcher has sealed its last batch.
    batcher_done: bool,
    /// Torn spool frames already counted as drops.
    torn_reported: u64,
}

struct Shared {
    queue: Mutex<RecordQueue>,
    queue_cv: Condvar,
    store: Mutex<Store>,
    store_cv: Condvar,
    counters: Counters,
    queue_max_records: usize,
    queue_max_bytes: usize,
    outbox_max_batches: usize,
    spool_max_bytes: u64,
    /// Set at shutdown: the sender stops at this deadline, or at the first failure.
    drain_deadline: Mutex<Option<Instant>>,
    sender_stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Wall-clock nanoseconds since the Unix epoch.
pub fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
}

impl Shared {
    fn new(
        queue_max_records: usize,
        queue_max_bytes: usize,
        outbox_max_batches: usize,
        spool: Option<Spool>,
        spool_max_bytes: u64,
    ) -> Shared {
        Shared {
            queue: Mutex::new(RecordQueue::default()),
            queue_cv: Condvar::new(),
            store: Mutex::new(Store {
                outbox: VecDeque::new(),
                spool,
                batcher_done: false,
                torn_reported: 0,
            }),
            store_cv: Condvar::new(),
            counters: Counters::default(),
            queue_max_records: queue_max_records.max(1),
            queue_max_bytes: queue_max_bytes.max(1),
            outbox_max_batches: outbox_max_batches.max(1),
            spool_max_bytes,
            drain_deadline: Mutex::new(None),
            sender_stop: AtomicBool::new(false),
        }
    }

    fn gauges(&self) -> PublishGauges {
        let (queue_records, queue_bytes) = {
            let q = lock(&self.queue);
            (q.records.len() as u64, q.bytes as u64)
        };
        let store = lock(&self.store);
        PublishGauges {
            queue_records,
            queue_bytes,
            queue_max_records: self.queue_max_records as u64,
            queue_max_bytes: self.queue_max_bytes as u64,
            outbox_batches: store.outbox.len() as u64,
            spool_bytes: store.spool.as_ref().map_or(0, Spool::bytes),
            spool_segments: store.spool.as_ref().map_or(0, |s| s.segments() as u64),
            spool_max_bytes: self.spool_max_bytes,
        }
    }

    fn submit(&self, record: Record) -> bool {
        let mut q = lock(&self.queue);
        if q.closed {
            drop(q);
            self.counters.drop_records(PublishDropReason::Shutdown, 1);
            return false;
        }
        let full = q.records.len() >= self.queue_max_records
            || (!q.records.is_empty() && q.bytes + record.len() > self.queue_max_bytes);
        if full {
            drop(q);
            self.counters.drop_records(PublishDropReason::QueueFull, 1);
            return false;
        }
        let was_empty = q.records.is_empty();
        q.bytes += record.len();
        q.records.push_back(record);
        drop(q);
        if was_empty {
            self.queue_cv.notify_one();
        }
        true
    }

    /// Puts a sealed batch in the outbox, or behind the spool's contents.
    fn store_batch(&self, batch: EncodedBatch) {
        let mut store = lock(&self.store);
        let spool_busy = store.spool.as_ref().is_some_and(|s| !s.is_empty());
        if !spool_busy && store.outbox.len() < self.outbox_max_batches {
            store.outbox.push_back(batch);
        } else if store.spool.is_some() {
            self.spill(&mut store);
            self.spool_append(&mut store, &batch);
        } else {
            drop(store);
            self.counters.drop_records(
                PublishDropReason::BackendUnavailable,
                u64::from(batch.records),
            );
            return;
        }
        drop(store);
        self.store_cv.notify_all();
    }

    /// Moves the outbox to the spool, oldest first (keeps the invariant: memory is older than
    /// disk, so with everything on disk the order is the spool's).
    fn spill(&self, store: &mut Store) {
        if store.spool.is_none() {
            return;
        }
        while let Some(batch) = store.outbox.pop_front() {
            self.spool_append(store, &batch);
        }
    }

    fn spool_append(&self, store: &mut Store, batch: &EncodedBatch) {
        let Some(spool) = store.spool.as_mut() else {
            return;
        };
        match spool.append(&encode::to_frame(batch)) {
            Ok(()) => {
                Counters::add(&self.counters.batches_spooled, 1);
                Counters::add(&self.counters.records_spooled, u64::from(batch.records));
            }
            Err(SpoolError::Full { used, max }) => {
                tracing::warn!(
                    "spool full ({used} of {max} bytes): batch {} of {} records dropped",
                    batch.id,
                    batch.records
                );
                self.counters
                    .drop_records(PublishDropReason::SpoolFull, u64::from(batch.records));
            }
            Err(e) => {
                tracing::error!("batch {} not spooled: {e}", batch.id);
                self.counters
                    .drop_records(PublishDropReason::SpoolError, u64::from(batch.records));
            }
        }
    }

    /// The oldest undelivered batch (a copy: the lock is not held while sending).
    fn head(&self, store: &mut Store) -> Option<EncodedBatch> {
        if let Some(batch) = store.outbox.front() {
            return Some(batch.clone());
        }
        loop {
            let spool = store.spool.as_mut()?;
            let peeked = spool.peek().map(|frame| frame.map(encode::from_frame));
            let torn = spool.corruption().torn_frames;
            if torn > store.torn_reported {
                for _ in store.torn_reported..torn {
                    // Records in a torn frame cannot be known: counted as batches.
                    self.counters
                        .drop_records(PublishDropReason::SpoolCorrupt, 0);
                }
                store.torn_reported = torn;
            }
            match peeked {
                Ok(Some(Some(batch))) => return Some(batch),
                Ok(Some(None)) => {
                    self.counters
                        .drop_records(PublishDropReason::SpoolCorrupt, 0);
                    if let Some(spool) = store.spool.as_mut() {
                        let _ = spool.pop();
                    }
                }
                Ok(None) => return None,
                Err(e) => {
                    tracing::error!("cannot read the spool back: {e}");
                    self.counters.drop_records(PublishDropReason::SpoolError, 0);
                    return None;
                }
            }
        }
    }

    /// Removes the batch `id` (the head) after delivery or rejection.
    fn complete(&self, store: &mut Store, id: &str) {
        if store.outbox.front().is_some_and(|b| b.id == id) {
            store.outbox.pop_front();
            return;
        }
        if let Some(spool) = store.spool.as_mut() {
            let matches = matches!(spool.peek(), Ok(Some(frame)) if encode::from_frame(frame).is_some_and(|b| b.id == id));
            if matches {
                match spool.pop() {
                    Ok(_) => Counters::add(&self.counters.batches_unspooled, 1),
                    Err(e) => {
                        tracing::error!("cannot remove a delivered batch from the spool: {e}")
                    }
                }
            }
        }
    }
}

/// A clonable handle: submit records, read counters.
#[derive(Clone)]
pub struct PublisherHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PublisherHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublisherHandle").finish_non_exhaustive()
    }
}

impl PublisherHandle {
    /// Queues a node event; `false` when it was dropped (and counted).
    pub fn publish_event(&self, event: &NodeEvent) -> bool {
        Counters::add(&self.shared.counters.events_submitted, 1);
        match Record::event(event) {
            Ok(record) => self.shared.submit(record),
            Err(e) => {
                tracing::error!("node event {} not serialisable: {e}", event.id);
                self.shared
                    .counters
                    .drop_records(PublishDropReason::Serialize, 1);
                false
            }
        }
    }

    /// Queues an alert; `false` when it was dropped (and counted).
    pub fn publish_alert(&self, alert: &DetectAlert) -> bool {
        Counters::add(&self.shared.counters.alerts_submitted, 1);
        match Record::alert(alert) {
            Ok(record) => self.shared.submit(record),
            Err(e) => {
                tracing::error!("alert {} not serialisable: {e}", alert.rule_id);
                self.shared
                    .counters
                    .drop_records(PublishDropReason::Serialize, 1);
                false
            }
        }
    }

    /// A snapshot of the counters and gauges.
    pub fn counters(&self) -> PublishCounters {
        PublishCounters::snapshot(&self.shared.counters, self.shared.gauges())
    }
}

/// The running publisher. Dropping it without [`Publisher::shutdown`] stops the threads without
/// draining (what is in memory is lost, and counted as `shutdown`).
pub struct Publisher {
    handle: PublisherHandle,
    batcher: Option<JoinHandle<()>>,
    sender: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

struct BatcherCtx {
    shared: Arc<Shared>,
    identity: SensorIdentity,
    batch_max_records: usize,
    batch_max_bytes: usize,
    batch_max_age: Duration,
    heartbeat_interval: Duration,
    heartbeat: Option<HeartbeatSource>,
    output: Output,
    sequence: u64,
}

enum Output {
    Backend,
    Lines(Box<dyn Write + Send>),
}

impl Publisher {
    /// Opens the output (or the spool, picking up batches a previous run left there) and starts
    /// the threads.
    pub fn start(
        config: PublisherConfig,
        heartbeat: Option<HeartbeatSource>,
    ) -> Result<Publisher, PublishError> {
        if config.batch_max_records == 0 || config.queue_max_records == 0 {
            return Err(PublishError::Config(
                "queue and batch sizes must be at least 1".into(),
            ));
        }
        let (output, spool, client) = match &config.sink {
            Sink::Stdout => (Output::Lines(Box::new(std::io::stdout())), None, None),
            Sink::File(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| PublishError::Io {
                        path: path.display().to_string(),
                        source,
                    })?;
                (
                    Output::Lines(Box::new(std::io::BufWriter::with_capacity(1 << 16, file))),
                    None,
                    None,
                )
            }
            Sink::Http { url, token, ca } => {
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| PublishError::Config(format!("backend URL {url}: {e}")))?;
                if !matches!(parsed.scheme(), "https" | "http") {
                    return Err(PublishError::Config(format!(
                        "backend URL {url}: the scheme must be https (or http on loopback)"
                    )));
                }
                if parsed.scheme() == "http"
                    && !matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
                {
                    return Err(PublishError::Config(format!(
                        "backend URL {url}: plain http is allowed on loopback only (the token \
                         and node activity would cross the network in clear text)"
                    )));
                }
                let token = token.trim();
                if token.is_empty() {
                    return Err(PublishError::Config("the backend token is empty".into()));
                }
                let authorization = reqwest::header::HeaderValue::from_str(&format!(
                    "Bearer {token}"
                ))
                .map_err(|_| {
                    PublishError::Config("the token holds characters a header cannot".into())
                })?;
                let client = sender::client(ca.as_deref(), config.request_timeout)?;
                let spool = match &config.spool_dir {
                    Some(dir) => Some(Spool::open(dir, config.spool)?),
                    None => None,
                };
                (
                    Output::Backend,
                    spool,
                    Some((client, url.clone(), authorization)),
                )
            }
        };
        let spool_max_bytes = if spool.is_some() {
            config.spool.max_bytes
        } else {
            0
        };
        let shared = Arc::new(Shared::new(
            config.queue_max_records,
            config.queue_max_bytes,
            config.outbox_max_batches,
            spool,
            spool_max_bytes,
        ));
        if matches!(output, Output::Lines(_)) {
            shared.counters.backend_up.store(true, Ordering::Relaxed);
        }
        let started = unix_nanos();
        let identity = SensorIdentity {
            id: format!("{}-{:x}", config.node, started),
            node: config.node.clone(),
            cluster: config.cluster.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started: palisade_detect::alert::rfc3339(started),
        };
        let ctx = BatcherCtx {
            shared: Arc::clone(&shared),
            identity,
            batch_max_records: config.batch_max_records,
            batch_max_bytes: config.batch_max_bytes.max(1),
            batch_max_age: config.batch_max_age,
            heartbeat_interval: config.heartbeat_interval.max(Duration::from_millis(10)),
            heartbeat,
            output,
            sequence: 0,
        };
        let batcher = std::thread::Builder::new()
            .name("publish-batch".into())
            .spawn(move || ctx.run())
            .map_err(PublishError::Thread)?;
        let sender = match client {
            Some((client, url, authorization)) => {
                let shared = Arc::clone(&shared);
                let retry = config.retry;
                Some(
                    std::thread::Builder::new()
                        .name("publish-send".into())
                        .spawn(move || sender_loop(&shared, &client, &url, &authorization, retry))
                        .map_err(PublishError::Thread)?,
                )
            }
            None => None,
        };
        Ok(Publisher {
            handle: PublisherHandle { shared },
            batcher: Some(batcher),
            sender,
        })
    }

    /// A handle for submitting records and reading counters from other threads.
    pub fn handle(&self) -> PublisherHandle {
        self.handle.clone()
    }

    /// Queues a node event; `false` when it was dropped (and counted).
    pub fn publish_event(&self, event: &NodeEvent) -> bool {
        self.handle.publish_event(event)
    }

    /// Queues an alert; `false` when it was dropped (and counted).
    pub fn publish_alert(&self, alert: &DetectAlert) -> bool {
        self.handle.publish_alert(alert)
    }

    /// A snapshot of the counters and gauges.
    pub fn counters(&self) -> PublishCounters {
        self.handle.counters()
    }

    /// Stops taking records, seals the last batch, delivers what it can within `drain` (stopping
    /// early when the backend fails), spools the rest (or drops and counts it as `shutdown`
    /// without a spool) and returns the final counters.
    pub fn shutdown(mut self, drain: Duration) -> PublishCounters {
        self.stop(drain);
        self.handle.counters()
    }

    fn stop(&mut self, drain: Duration) {
        let shared = &self.handle.shared;
        *lock(&shared.drain_deadline) = Some(Instant::now() + drain);
        lock(&shared.queue).closed = true;
        shared.queue_cv.notify_all();
        if let Some(batcher) = self.batcher.take()
            && batcher.join().is_err()
        {
            tracing::error!("the publisher's batcher panicked");
        }
        {
            let mut store = lock(&shared.store);
            store.batcher_done = true;
        }
        shared.store_cv.notify_all();
        if let Some(sender) = self.sender.take() {
            // The sender returns at the deadline or on the first failure; a request in flight
            // finishes within the request timeout.
            let deadline = Instant::now() + drain;
            while !sender.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            shared.sender_stop.store(true, Ordering::SeqCst);
            shared.store_cv.notify_all();
            if sender.join().is_err() {
                tracing::error!("the publisher's sender panicked");
            }
        }
        let mut store = lock(&shared.store);
        if store.spool.is_some() {
            shared.spill(&mut store);
        } else {
            for batch in store.outbox.drain(..) {
                shared
                    .counters
                    .drop_records(PublishDropReason::Shutdown, u64::from(batch.records));
            }
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if self.batcher.is_some() || self.sender.is_some() {
            self.stop(Duration::ZERO);
        }
    }
}

impl BatcherCtx {
    fn run(mut self) {
        let mut batch: Vec<Record> = Vec::new();
        let mut batch_bytes = 0usize;
        let mut batch_started: Option<Instant> = None;
        let mut next_heartbeat = Instant::now() + self.heartbeat_interval;
        let backend = matches!(self.output, Output::Backend);
        let mut incoming: VecDeque<Record> = VecDeque::new();
        loop {
            let closed = {
                let shared = Arc::clone(&self.shared);
                let mut q = lock(&shared.queue);
                while q.records.is_empty() && !q.closed {
                    let mut deadline = batch_started.map(|t| t + self.batch_max_age);
                    if backend {
                        deadline = Some(deadline.map_or(next_heartbeat, |d| d.min(next_heartbeat)));
                    }
                    let wait = match deadline {
                        Some(d) => d.saturating_duration_since(Instant::now()),
                        None => Duration::from_secs(1),
                    };
                    if wait.is_zero() {
                        break;
                    }
                    q = shared
                        .queue_cv
                        .wait_timeout(q, wait)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                }
                std::mem::swap(&mut q.records, &mut incoming);
                q.bytes = 0;
                q.closed
            };
            for record in incoming.drain(..) {
                if !batch.is_empty() && batch_bytes + record.len() > self.batch_max_bytes {
                    self.seal(&mut batch, None);
                    batch_bytes = 0;
                    batch_started = None;
                }
                batch_bytes += record.len();
                batch.push(record);
                batch_started.get_or_insert_with(Instant::now);
                if batch.len() >= self.batch_max_records {
                    self.seal(&mut batch, None);
                    batch_bytes = 0;
                    batch_started = None;
                }
            }
            let now = Instant::now();
            if backend && now >= next_heartbeat {
                let heartbeat = self.heartbeat();
                self.seal(&mut batch, Some(&heartbeat));
                Counters::add(&self.shared.counters.heartbeats_sent, 1);
                batch_bytes = 0;
                batch_started = None;
                next_heartbeat = now + self.heartbeat_interval;
            } else if batch_started.is_some_and(|t| now >= t + self.batch_max_age) {
                self.seal(&mut batch, None);
                batch_bytes = 0;
                batch_started = None;
            }
            if closed {
                if backend {
                    // The last batch carries the final counters.
                    let heartbeat = self.heartbeat();
                    self.seal(&mut batch, Some(&heartbeat));
                } else {
                    self.seal(&mut batch, None);
                }
                return;
            }
        }
    }

    fn heartbeat(&self) -> serde_json::Value {
        let mut value = match &self.heartbeat {
            Some(source) => source(),
            None => serde_json::Value::Object(serde_json::Map::new()),
        };
        let publisher =
            PublishCounters::snapshot(&self.shared.counters, self.shared.gauges()).to_json();
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("publisher".into(), publisher);
            map.insert(
                "time".into(),
                serde_json::Value::from(palisade_detect::alert::rfc3339(unix_nanos())),
            );
            value
        } else {
            serde_json::json!({ "publisher": publisher, "extra": value })
        }
    }

    /// Delivers the records of `batch` to the output (lines) or the outbox (backend).
    fn seal(&mut self, batch: &mut Vec<Record>, heartbeat: Option<&serde_json::Value>) {
        if batch.is_empty() && heartbeat.is_none() {
            return;
        }
        let counters = &self.shared.counters;
        match &mut self.output {
            Output::Lines(out) => {
                let mut buf = Vec::with_capacity(batch.iter().map(|r| r.len() + 24).sum());
                for record in batch.iter() {
                    record.write_line(&mut buf);
                }
                let n = batch.len() as u64;
                match out.write_all(&buf).and_then(|()| out.flush()) {
                    Ok(()) => {
                        Counters::add(&counters.records_delivered, n);
                        Counters::add(&counters.batches_delivered, 1);
                        Counters::add(&counters.bytes_sent, buf.len() as u64);
                        counters.backend_up.store(true, Ordering::Relaxed);
                        counters
                            .last_success_unix_nanos
                            .store(unix_nanos().max(0) as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::error!("cannot write {n} records to the output: {e}");
                        counters.backend_up.store(false, Ordering::Relaxed);
                        counters.drop_records(PublishDropReason::OutputError, n);
                    }
                }
            }
            Output::Backend => {
                self.sequence += 1;
                let id = format!("{}-{}", self.identity.id, self.sequence);
                let created = palisade_detect::alert::rfc3339(unix_nanos());
                match encode::encode_batch(&id, &self.identity, &created, batch, heartbeat) {
                    Ok(encoded) => self.shared.store_batch(encoded),
                    Err(e) => {
                        tracing::error!("cannot encode batch {id}: {e}");
                        counters.drop_records(PublishDropReason::Serialize, batch.len() as u64);
                    }
                }
            }
        }
        batch.clear();
    }
}

/// A small xorshift generator for backoff jitter (no need for cryptographic randomness).
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let seed = (unix_nanos() as u64) ^ (u64::from(std::process::id()) << 32) | 1;
        Jitter(seed)
    }

    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn sender_loop(
    shared: &Shared,
    client: &reqwest::Client,
    url: &str,
    authorization: &reqwest::header::HeaderValue,
    retry: RetryPolicy,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("the publisher cannot start its HTTP runtime: {e}");
            return;
        }
    };
    let counters = &shared.counters;
    let mut jitter = Jitter::new();
    let mut attempt: u32 = 0;
    loop {
        let batch = {
            let mut store = lock(&shared.store);
            loop {
                if shared.sender_stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Some(batch) = shared.head(&mut store) {
                    break batch;
                }
                if store.batcher_done {
                    return;
                }
                store = shared
                    .store_cv
                    .wait_timeout(store, Duration::from_millis(500))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
        };
        let draining = *lock(&shared.drain_deadline);
        if let Some(deadline) = draining
            && (Instant::now() >= deadline || attempt > 0)
        {
            // Stopping: past the deadline, or the backend is failing — the rest is spooled.
            return;
        }
        if attempt > 0 {
            Counters::add(&counters.retries, 1);
        }
        match rt.block_on(sender::send(client, url, authorization, &batch)) {
            sender::Outcome::Delivered => {
                let mut store = lock(&shared.store);
                shared.complete(&mut store, &batch.id);
                drop(store);
                attempt = 0;
                Counters::add(&counters.records_delivered, u64::from(batch.records));
                Counters::add(&counters.batches_delivered, 1);
                Counters::add(&counters.bytes_sent, batch.body.len() as u64);
                counters.backend_up.store(true, Ordering::Relaxed);
                counters.consecutive_failures.store(0, Ordering::Relaxed);
                counters
                    .last_success_unix_nanos
                    .store(unix_nanos().max(0) as u64, Ordering::Relaxed);
            }
            sender::Outcome::Rejected(status) => {
                tracing::error!(
                    "backend refused batch {} ({} records) with {status}: dropped",
                    batch.id,
                    batch.records
                );
                let mut store = lock(&shared.store);
                shared.complete(&mut store, &batch.id);
                drop(store);
                attempt = 0;
                counters.drop_records(PublishDropReason::Rejected, u64::from(batch.records));
            }
            sender::Outcome::Retry {
                reason,
                retry_after,
            } => {
                attempt = attempt.saturating_add(1);
                Counters::add(&counters.send_failures, 1);
                Counters::add(&counters.consecutive_failures, 1);
                counters.backend_up.store(false, Ordering::Relaxed);
                let wait = retry
                    .backoff(attempt, jitter.unit())
                    .max(retry_after.unwrap_or_default().min(retry.max));
                if attempt == 1 || attempt.is_power_of_two() {
                    tracing::warn!(
                        "backend {url} unavailable ({reason}); batch {} retried in {wait:?} \
                         (attempt {attempt})",
                        batch.id
                    );
                }
                let mut store = lock(&shared.store);
                // Everything waiting in memory goes to disk while the backend is away.
                shared.spill(&mut store);
                let until = Instant::now() + wait;
                while !shared.sender_stop.load(Ordering::SeqCst)
                    && lock(&shared.drain_deadline).is_none()
                {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    store = shared
                        .store_cv
                        .wait_timeout(store, left)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let p = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(50));
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(100));
        assert_eq!(p.backoff(2, 0.0), Duration::from_millis(100));
        assert_eq!(p.backoff(3, 1.0), Duration::from_millis(400));
        assert_eq!(p.backoff(10, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(u32::MAX, 0.0), Duration::from_millis(500));
        let mut j = Jitter::new();
        for _ in 0..1000 {
            let u = j.unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }

    fn record(i: usize, bytes: usize) -> Record {
        Record {
            kind: RecordKind::Event,
            json: format!("{{\"id\":\"{i}{}\"}}", "x".repeat(bytes)).into_bytes(),
        }
    }

    fn batch(i: u32) -> EncodedBatch {
        EncodedBatch {
            id: format!("b{i}"),
            records: 10,
            body: vec![i as u8; 100],
        }
    }

    #[test]
    fn queue_bounds_in_records_and_bytes_drop_and_count() {
        let shared = Shared::new(3, 1000, 1, None, 0);
        assert!(shared.submit(record(0, 10)));
        assert!(shared.submit(record(1, 10)));
        assert!(shared.submit(record(2, 10)));
        assert!(!shared.submit(record(3, 10)));
        let shared2 = Shared::new(100, 100, 1, None, 0);
        assert!(shared2.submit(record(0, 60)));
        assert!(!shared2.submit(record(1, 60)));
        // A record larger than the byte bound alone is still taken into an empty queue.
        let shared3 = Shared::new(100, 10, 1, None, 0);
        assert!(shared3.submit(record(0, 60)));
        let c = PublishCounters::snapshot(&shared.counters, shared.gauges());
        assert_eq!(c.dropped(PublishDropReason::QueueFull), 1);
        assert_eq!(c.gauges.queue_records, 3);
        let c2 = PublishCounters::snapshot(&shared2.counters, shared2.gauges());
        assert_eq!(c2.dropped(PublishDropReason::QueueFull), 1);
        lock(&shared.queue).closed = true;
        assert!(!shared.submit(record(9, 1)));
        let c = PublishCounters::snapshot(&shared.counters, shared.gauges());
        assert_eq!(c.dropped(PublishDropReason::Shutdown), 1);
    }

    #[test]
    fn outbox_without_spool_drops_and_with_spool_keeps_order() {
        let shared = Shared::new(10, 1000, 2, None, 0);
        for i in 0..3 {
            shared.store_batch(batch(i));
        }
        let c = PublishCounters::snapshot(&shared.counters, shared.gauges());
        assert_eq!(c.dropped(PublishDropReason::BackendUnavailable), 10);
        assert_eq!(c.gauges.outbox_batches, 2);

        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), SpoolLimits::default()).unwrap();
        let shared = Shared::new(10, 1000, 2, Some(spool), 1 << 30);
        for i in 0..5 {
            shared.store_batch(batch(i));
        }
        let mut store = lock(&shared.store);
        // Overflowing the outbox moved it to disk first: all five are on disk, in order.
        assert!(store.outbox.is_empty());
        for i in 0..5 {
            let head = shared.head(&mut store).unwrap();
            assert_eq!(head.id, format!("b{i}"));
            shared.complete(&mut store, &head.id);
        }
        assert!(shared.head(&mut store).is_none());
        drop(store);
        let c = PublishCounters::snapshot(&shared.counters, shared.gauges());
        assert_eq!((c.batches_spooled, c.batches_unspooled), (5, 5));
        assert_eq!(c.dropped_total(), 0);
    }
}
