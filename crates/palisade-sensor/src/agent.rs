//! The sensor loop: kernel → attribution → rules → publisher, with a health endpoint and
//! Prometheus metrics.
//!
//! - Thread `kernel` owns the loaded eBPF programs (they need not be `Send`), polls the ring
//!   buffer and hands records in chunks to a bounded channel. It never waits for the rest of the
//!   pipeline: a full channel drops the chunk and counts its records (`channel_full`), next to
//!   the kernel's own ring-buffer drops.
//! - Thread `pipeline` enriches each record into a [`NodeEvent`], runs the node rules and hands
//!   alerts (and the events the `--events` selection asks for) to the [`Publisher`].
//! - The health server answers `/healthz` (the process runs), `/readyz` (200 once the programs
//!   are attached and the pipeline runs) and `/metrics`.
//! - SIGTERM or SIGINT: the kernel thread stops, the pipeline drains the channel, flushes the
//!   rules' aggregates, and the publisher delivers or spools what is left; then `run` returns.

use crate::kernel::event::KernelEvent;
use crate::publish::{PublishCounters, Publisher, PublisherHandle};
use palisade_core::prometheus::{counter, gauge, header, labelled};
use palisade_detect::alert::DetectAlert;
use palisade_detect::node::{NodeEvent, NodeEventKind};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which node events are published besides alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventSelection {
    /// Alerts only.
    None,
    /// Alerts, and each event that raised one (the full record behind the alert).
    #[default]
    AlertsContext,
    /// Every event (a firehose: size the backend and the queue for it).
    All,
}

impl EventSelection {
    /// The `--events` value.
    pub fn as_str(self) -> &'static str {
        match self {
            EventSelection::None => "none",
            EventSelection::AlertsContext => "alerts-context",
            EventSelection::All => "all",
        }
    }
}

/// Why records were lost between the kernel and the rules (userspace side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineDropReason {
    /// The channel from the kernel reader to the pipeline was full.
    ChannelFull,
    /// The pipeline thread was gone (it failed); records after that point are counted here.
    PipelineGone,
}

impl PipelineDropReason {
    pub const ALL: [PipelineDropReason; 2] = [
        PipelineDropReason::ChannelFull,
        PipelineDropReason::PipelineGone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PipelineDropReason::ChannelFull => "channel_full",
            PipelineDropReason::PipelineGone => "pipeline_gone",
        }
    }
}

/// One labelled sample supplied by a stage the agent does not know the shape of (kernel and
/// attribution counters): family name, help, kind (`counter`/`gauge`), labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub help: &'static str,
    pub kind: &'static str,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    /// An unlabelled sample.
    pub fn new(name: &str, help: &'static str, kind: &'static str, value: f64) -> Sample {
        Sample {
            name: name.to_string(),
            help,
            kind,
            labels: Vec::new(),
            value,
        }
    }

    /// The same sample with one more label.
    pub fn label(mut self, key: &str, value: impl Into<String>) -> Sample {
        self.labels.push((key.to_string(), value.into()));
        self
    }
}

/// Everything `/metrics` shows, shared by the threads.
#[derive(Debug, Default)]
pub struct AgentMetrics {
    ready: AtomicBool,
    started: Mutex<Option<Instant>>,
    kernel_records: AtomicU64,
    userspace_drops: [AtomicU64; PipelineDropReason::ALL.len()],
    events_by_kind: Mutex<BTreeMap<&'static str, u64>>,
    alerts_by_rule: Mutex<BTreeMap<(String, String), u64>>,
    events_selected: AtomicU64,
    /// The kernel stage's own counters (ring-buffer drops, per-kind records, probes), replaced
    /// by the kernel thread about once a second.
    kernel_samples: Mutex<Vec<Sample>>,
    /// Attribution counters (cache hits and misses, unknown cgroups), from the pipeline thread.
    attrib_samples: Mutex<Vec<Sample>>,
    /// Rule engine counters, from the pipeline thread.
    detector_samples: Mutex<Vec<Sample>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AgentMetrics {
    pub fn new() -> AgentMetrics {
        AgentMetrics::default()
    }

    /// The programs are attached and the pipeline runs (`/readyz` 200).
    pub fn set_ready(&self, ready: bool) {
        if ready {
            lock(&self.started).get_or_insert_with(Instant::now);
        }
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Records the kernel thread read from the ring buffer.
    pub fn record_kernel_records(&self, n: u64) {
        self.kernel_records.fetch_add(n, Ordering::Relaxed);
    }

    pub fn record_userspace_drop(&self, reason: PipelineDropReason, records: u64) {
        self.userspace_drops[reason as usize].fetch_add(records, Ordering::Relaxed);
    }

    /// Records lost between the ring buffer and the rules.
    pub fn userspace_drops(&self, reason: PipelineDropReason) -> u64 {
        self.userspace_drops[reason as usize].load(Ordering::Relaxed)
    }

    /// Events the pipeline evaluated, by `event.type`.
    pub fn events_by_kind(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.events_by_kind).clone()
    }

    /// Alerts emitted, by (rule id, severity).
    pub fn alerts_by_rule(&self) -> BTreeMap<(String, String), u64> {
        lock(&self.alerts_by_rule).clone()
    }

    fn record_events(&self, counts: &mut BTreeMap<&'static str, u64>) {
        let mut total = lock(&self.events_by_kind);
        for (kind, n) in std::mem::take(counts) {
            *total.entry(kind).or_default() += n;
        }
    }

    fn record_alert(&self, alert: &DetectAlert) {
        *lock(&self.alerts_by_rule)
            .entry((
                alert.rule_id.clone(),
                alert.alert.severity.as_str().to_string(),
            ))
            .or_default() += 1;
    }

    /// Replaces the kernel stage's samples.
    pub fn set_kernel_samples(&self, samples: Vec<Sample>) {
        *lock(&self.kernel_samples) = samples;
    }

    /// Replaces the attribution samples.
    pub fn set_attrib_samples(&self, samples: Vec<Sample>) {
        *lock(&self.attrib_samples) = samples;
    }

    /// Replaces the rule engine samples.
    pub fn set_detector_samples(&self, samples: Vec<Sample>) {
        *lock(&self.detector_samples) = samples;
    }

    /// The JSON `heartbeat` content sent to the backend (the publisher adds its own part).
    pub fn heartbeat(&self) -> serde_json::Value {
        let kernel: serde_json::Map<String, serde_json::Value> = lock(&self.kernel_samples)
            .iter()
            .map(|s| (sample_key(s), serde_json::Value::from(s.value)))
            .collect();
        let drops: serde_json::Map<String, serde_json::Value> = PipelineDropReason::ALL
            .iter()
            .map(|r| {
                (
                    r.as_str().to_string(),
                    serde_json::Value::from(self.userspace_drops(*r)),
                )
            })
            .collect();
        serde_json::json!({
            "ready": self.is_ready(),
            "kernel_records": self.kernel_records.load(Ordering::Relaxed),
            "kernel": kernel,
            "userspace_dropped": drops,
            "events": self.events_by_kind(),
            "alerts": self.alerts_by_rule().iter().map(|((rule, _), n)| (rule.clone(), *n)).collect::<BTreeMap<_, _>>(),
        })
    }

    /// The Prometheus text exposition of the whole sensor.
    pub fn render(&self, publisher: Option<&PublishCounters>) -> String {
        let mut out = String::with_capacity(8192);
        gauge(
            &mut out,
            "palisade_sensor_ready",
            "1 when the eBPF programs are attached and the pipeline runs.",
            if self.is_ready() { 1.0 } else { 0.0 },
        );
        gauge(
            &mut out,
            "palisade_sensor_uptime_seconds",
            "Seconds since the sensor became ready.",
            lock(&self.started).map_or(0.0, |t| t.elapsed().as_secs_f64()),
        );
        counter(
            &mut out,
            "palisade_sensor_kernel_records_total",
            "Records read from the kernel ring buffer.",
            self.kernel_records.load(Ordering::Relaxed),
        );
        render_samples(&mut out, &lock(&self.kernel_samples));
        header(
            &mut out,
            "palisade_sensor_userspace_dropped_total",
            "counter",
            "Kernel records lost in userspace before the rules, by reason.",
        );
        for reason in PipelineDropReason::ALL {
            labelled(
                &mut out,
                "palisade_sensor_userspace_dropped_total",
                &[("reason", reason.as_str())],
                self.userspace_drops(reason) as f64,
            );
        }
        render_samples(&mut out, &lock(&self.attrib_samples));
        header(
            &mut out,
            "palisade_sensor_events_total",
            "counter",
            "Node events evaluated by the rules, by event.type.",
        );
        let events = self.events_by_kind();
        for kind in NodeEventKind::ALL {
            let name = kind.as_str();
            labelled(
                &mut out,
                "palisade_sensor_events_total",
                &[("type", name)],
                events.get(name).copied().unwrap_or(0) as f64,
            );
        }
        counter(
            &mut out,
            "palisade_sensor_events_selected_total",
            "Node events handed to the publisher (the --events selection).",
            self.events_selected.load(Ordering::Relaxed),
        );
        render_samples(&mut out, &lock(&self.detector_samples));
        header(
            &mut out,
            "palisade_sensor_alerts_total",
            "counter",
            "Alerts emitted, by rule and severity.",
        );
        for ((rule, severity), n) in self.alerts_by_rule() {
            labelled(
                &mut out,
                "palisade_sensor_alerts_total",
                &[("rule", &rule), ("severity", &severity)],
                n as f64,
            );
        }
        if let Some(p) = publisher {
            render_publisher(&mut out, p);
        }
        out
    }
}

fn sample_key(s: &Sample) -> String {
    let mut key = s
        .name
        .strip_prefix("palisade_sensor_")
        .unwrap_or(&s.name)
        .to_string();
    for (_, v) in &s.labels {
        key.push('.');
        key.push_str(v);
    }
    key
}

/// Writes samples grouped by family (one header per family, in first-seen order).
fn render_samples(out: &mut String, samples: &[Sample]) {
    let mut seen: Vec<&str> = Vec::new();
    for s in samples {
        if seen.contains(&s.name.as_str()) {
            continue;
        }
        seen.push(&s.name);
        header(out, &s.name, s.kind, s.help);
        for member in samples.iter().filter(|m| m.name == s.name) {
            let labels: Vec<(&str, &str)> = member
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            if labels.is_empty() {
                use std::fmt::Write as _;
                let _ = writeln!(out, "{} {}", member.name, member.value);
            } else {
                labelled(out, &member.name, &labels, member.value);
            }
        }
    }
}

/// The publisher's part of `/metrics`.
pub fn render_publisher(out: &mut String, p: &PublishCounters) {
    let c = |out: &mut String, name: &str, help: &str, v: u64| counter(out, name, help, v);
    header(
        out,
        "palisade_sensor_publish_submitted_total",
        "counter",
        "Records handed to the publisher, by record kind.",
    );
    labelled(
        out,
        "palisade_sensor_publish_submitted_total",
        &[("record", "event")],
        p.events_submitted as f64,
    );
    labelled(
        out,
        "palisade_sensor_publish_submitted_total",
        &[("record", "alert")],
        p.alerts_submitted as f64,
    );
    c(
        out,
        "palisade_sensor_publish_delivered_records_total",
        "Records the sink accepted (backend acknowledged, or line written).",
        p.records_delivered,
    );
    c(
        out,
        "palisade_sensor_publish_delivered_batches_total",
        "Batches the sink accepted.",
        p.batches_delivered,
    );
    c(
        out,
        "palisade_sensor_publish_sent_bytes_total",
        "Bytes delivered (gzip request bodies, or JSON lines).",
        p.bytes_sent,
    );
    c(
        out,
        "palisade_sensor_publish_heartbeats_total",
        "Heartbeat batches sealed.",
        p.heartbeats_sent,
    );
    c(
        out,
        "palisade_sensor_publish_send_failures_total",
        "Failed delivery attempts (network, timeout, retryable status).",
        p.send_failures,
    );
    c(
        out,
        "palisade_sensor_publish_retries_total",
        "Delivery attempts that retried a batch.",
        p.retries,
    );
    c(
        out,
        "palisade_sensor_publish_spooled_batches_total",
        "Batches written to the disk spool.",
        p.batches_spooled,
    );
    c(
        out,
        "palisade_sensor_publish_unspooled_batches_total",
        "Spooled batches delivered.",
        p.batches_unspooled,
    );
    header(
        out,
        "palisade_sensor_publish_dropped_records_total",
        "counter",
        "Records lost by the publisher, by reason.",
    );
    for (reason, n) in &p.dropped_records {
        labelled(
            out,
            "palisade_sensor_publish_dropped_records_total",
            &[("reason", reason.as_str())],
            *n as f64,
        );
    }
    header(
        out,
        "palisade_sensor_publish_dropped_batches_total",
        "counter",
        "Batches (or single submissions) lost by the publisher, by reason.",
    );
    for (reason, n) in &p.dropped_batches {
        labelled(
            out,
            "palisade_sensor_publish_dropped_batches_total",
            &[("reason", reason.as_str())],
            *n as f64,
        );
    }
    let gauges: [(&str, &str, f64); 10] = [
        (
            "palisade_sensor_publish_backend_up",
            "1 when the last delivery succeeded.",
            if p.backend_up { 1.0 } else { 0.0 },
        ),
        (
            "palisade_sensor_publish_consecutive_failures",
            "Failed attempts since the last success.",
            p.consecutive_failures as f64,
        ),
        (
            "palisade_sensor_publish_last_success_timestamp_seconds",
            "Unix time of the last successful delivery (0: none).",
            p.last_success_unix_nanos as f64 / 1e9,
        ),
        (
            "palisade_sensor_publish_queue_records",
            "Records waiting in memory to be batched.",
            p.gauges.queue_records as f64,
        ),
        (
            "palisade_sensor_publish_queue_bytes",
            "Bytes waiting in memory to be batched.",
            p.gauges.queue_bytes as f64,
        ),
        (
            "palisade_sensor_publish_queue_capacity_records",
            "Queue bound in records.",
            p.gauges.queue_max_records as f64,
        ),
        (
            "palisade_sensor_publish_outbox_batches",
            "Sealed batches waiting in memory for the backend.",
            p.gauges.outbox_batches as f64,
        ),
        (
            "palisade_sensor_publish_spool_bytes",
            "Bytes in the disk spool.",
            p.gauges.spool_bytes as f64,
        ),
        (
            "palisade_sensor_publish_spool_segments",
            "Segment files in the disk spool.",
            p.gauges.spool_segments as f64,
        ),
        (
            "palisade_sensor_publish_spool_capacity_bytes",
            "Spool bound in bytes (0: no spool).",
            p.gauges.spool_max_bytes as f64,
        ),
    ];
    for (name, help, value) in gauges {
        gauge(out, name, help, value);
    }
}

// ------------------------------------------------------------------------------ the stages

/// The kernel stage as the agent drives it (implemented for the eBPF `KernelSensor`).
pub trait KernelStage {
    /// Waits up to `timeout` for records and hands each to `sink`; returns how many.
    fn poll_records(
        &mut self,
        timeout: Duration,
        sink: &mut dyn FnMut(KernelEvent),
    ) -> Result<usize, AgentError>;
    /// The stage's counters as metric samples (ring-buffer drops, records by kind, probes).
    fn samples(&self) -> Vec<Sample>;
}

/// Attribution as the agent drives it (implemented for the `Enricher`).
pub trait EnrichStage: Send {
    fn enrich_record(&mut self, event: KernelEvent) -> NodeEvent;
    fn samples(&self) -> Vec<Sample>;
}

/// The node rules as the agent drives them (implemented for `NodeDetector`).
pub trait DetectStage: Send {
    fn detect(&mut self, event: &NodeEvent, out: &mut Vec<DetectAlert>);
    /// Flushes aggregates whose window closed.
    fn tick(&mut self, now_nanos: i64, out: &mut Vec<DetectAlert>);
    /// Flushes everything (shutdown).
    fn finish(&mut self, out: &mut Vec<DetectAlert>);
    fn samples(&self) -> Vec<Sample>;
}

/// Why the agent stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Loading or attaching the eBPF programs failed; the message says what to grant or fix.
    #[error("{message}")]
    Kernel {
        message: String,
        /// BPF is not permitted or the kernel lacks what the programs need (CLI exit 3).
        not_permitted: bool,
    },
    #[error("attribution: {0}")]
    Attrib(String),
    #[error("rules: {0}")]
    Rules(String),
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
    #[error("health endpoint on {addr}: {source}")]
    Health {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Thread(String),
}

/// What a finished run did.
#[derive(Debug, Clone, Default)]
pub struct AgentSummary {
    pub kernel_records: u64,
    pub userspace_dropped: u64,
    pub events: u64,
    pub alerts: u64,
    pub publisher: PublishCounters,
    pub ran_for: Duration,
}

/// How the pipeline between the stages is sized.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Chunks of records the channel holds (each up to `chunk_records`).
    pub channel_chunks: usize,
    pub chunk_records: usize,
    /// Ring-buffer poll timeout: how quickly a stop is noticed, and with batched wake-ups the
    /// longest a record waits in the ring when few arrive.
    pub poll_timeout: Duration,
    /// How often aggregates are flushed and stage samples refreshed.
    pub tick: Duration,
    pub events: EventSelection,
    /// At shutdown, how long the publisher may keep delivering before the rest is spooled.
    pub drain_timeout: Duration,
}

impl Default for PipelineOptions {
    /// 128 chunks of up to 256 records (32,768 records, about 15 MB, in flight), 50 ms polls, 1 s ticks,
    /// alerts with their events, 10 s drain.
    fn default() -> Self {
        PipelineOptions {
            channel_chunks: 128,
            chunk_records: 256,
            poll_timeout: Duration::from_millis(50),
            tick: Duration::from_secs(1),
            events: EventSelection::default(),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Runs the kernel thread, the pipeline thread and the publisher until `stop` is set (or the
/// kernel stage fails), then drains and returns what happened. `make_kernel` runs on the kernel
/// thread (the loaded programs stay on the thread that loaded them); the agent is ready when it
/// returns `Ok`.
pub fn run_pipeline<K, F>(
    make_kernel: F,
    mut enricher: Box<dyn EnrichStage>,
    mut detector: Box<dyn DetectStage>,
    publisher: Publisher,
    metrics: Arc<AgentMetrics>,
    stop: Arc<AtomicBool>,
    options: PipelineOptions,
) -> Result<AgentSummary, AgentError>
where
    K: KernelStage,
    F: FnOnce() -> Result<K, AgentError> + Send + 'static,
{
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<KernelEvent>>(options.channel_chunks.max(1));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), AgentError>>();
    let kernel_stop = Arc::clone(&stop);
    let kernel_metrics = Arc::clone(&metrics);
    let kernel_opts = options.clone();
    let kernel = std::thread::Builder::new()
        .name("kernel".into())
        .spawn(move || {
            kernel_loop(
                make_kernel,
                &tx,
                &ready_tx,
                &kernel_metrics,
                &kernel_stop,
                &kernel_opts,
            )
        })
        .map_err(|e| AgentError::Thread(format!("cannot start the kernel thread: {e}")))?;
    // Wait for the programs to load (or fail) before declaring readiness.
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let _ = kernel.join();
            let _ = publisher.shutdown(Duration::ZERO);
            return Err(e);
        }
        Err(_) => {
            let _ = kernel.join();
            let _ = publisher.shutdown(Duration::ZERO);
            return Err(AgentError::Thread(
                "the kernel thread ended before loading the programs".into(),
            ));
        }
    }
    let handle = publisher.handle();
    let pipe_metrics = Arc::clone(&metrics);
    let pipe_opts = options.clone();
    let pipeline = std::thread::Builder::new()
        .name("pipeline".into())
        .spawn(move || {
            pipeline_loop(
                &rx,
                enricher.as_mut(),
                detector.as_mut(),
                &handle,
                &pipe_metrics,
                &pipe_opts,
            )
        })
        .map_err(|e| AgentError::Thread(format!("cannot start the pipeline thread: {e}")))?;
    metrics.set_ready(true);
    tracing::info!("sensor ready");
    let kernel_result = kernel
        .join()
        .map_err(|_| AgentError::Thread("the kernel thread panicked".into()))?;
    metrics.set_ready(false);
    // The kernel thread dropped the sender: the pipeline drains the channel and finishes.
    let (events, alerts) = pipeline
        .join()
        .map_err(|_| AgentError::Thread("the pipeline thread panicked".into()))?;
    let publisher = publisher.shutdown(options.drain_timeout);
    kernel_result?;
    Ok(AgentSummary {
        kernel_records: metrics.kernel_records.load(Ordering::Relaxed),
        userspace_dropped: PipelineDropReason::ALL
            .iter()
            .map(|r| metrics.userspace_drops(*r))
            .sum(),
        events,
        alerts,
        publisher,
        ran_for: started.elapsed(),
    })
}

fn kernel_loop<K: KernelStage, F: FnOnce() -> Result<K, AgentError>>(
    make_kernel: F,
    tx: &SyncSender<Vec<KernelEvent>>,
    ready: &std::sync::mpsc::Sender<Result<(), AgentError>>,
    metrics: &AgentMetrics,
    stop: &AtomicBool,
    options: &PipelineOptions,
) -> Result<(), AgentError> {
    let mut kernel = match make_kernel() {
        Ok(k) => k,
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(());
        }
    };
    metrics.set_kernel_samples(kernel.samples());
    let _ = ready.send(Ok(()));
    let chunk_records = options.chunk_records.max(1);
    let mut chunk: Vec<KernelEvent> = Vec::with_capacity(chunk_records);
    let mut last_samples = Instant::now();
    let mut pipeline_gone = false;
    let send = |chunk: &mut Vec<KernelEvent>, pipeline_gone: &mut bool| {
        if chunk.is_empty() {
            return;
        }
        let full = std::mem::replace(chunk, Vec::with_capacity(chunk_records));
        let n = full.len() as u64;
        if *pipeline_gone {
            metrics.record_userspace_drop(PipelineDropReason::PipelineGone, n);
            return;
        }
        match tx.try_send(full) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics.record_userspace_drop(PipelineDropReason::ChannelFull, n);
            }
            Err(TrySendError::Disconnected(_)) => {
                *pipeline_gone = true;
                tracing::error!("the pipeline thread is gone; kernel records are being dropped");
                metrics.record_userspace_drop(PipelineDropReason::PipelineGone, n);
            }
        }
    };
    let result = loop {
        if stop.load(Ordering::SeqCst) {
            break Ok(());
        }
        let polled = kernel.poll_records(options.poll_timeout, &mut |event| {
            chunk.push(event);
            if chunk.len() >= chunk_records {
                send(&mut chunk, &mut pipeline_gone);
            }
        });
        match polled {
            Ok(n) => metrics.record_kernel_records(n as u64),
            Err(e) => break Err(e),
        }
        send(&mut chunk, &mut pipeline_gone);
        if last_samples.elapsed() >= options.tick {
            metrics.set_kernel_samples(kernel.samples());
            last_samples = Instant::now();
        }
    };
    send(&mut chunk, &mut pipeline_gone);
    metrics.set_kernel_samples(kernel.samples());
    result
}

/// Returns (events evaluated, alerts emitted).
fn pipeline_loop(
    rx: &Receiver<Vec<KernelEvent>>,
    enricher: &mut dyn EnrichStage,
    detector: &mut dyn DetectStage,
    publisher: &PublisherHandle,
    metrics: &AgentMetrics,
    options: &PipelineOptions,
) -> (u64, u64) {
    let mut alerts: Vec<DetectAlert> = Vec::new();
    let mut by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut last_tick = Instant::now();
    let (mut events, mut alert_count) = (0u64, 0u64);
    let emit = |alerts: &mut Vec<DetectAlert>, alert_count: &mut u64| {
        for alert in alerts.drain(..) {
            metrics.record_alert(&alert);
            *alert_count += 1;
            publisher.publish_alert(&alert);
        }
    };
    loop {
        let chunk = match rx.recv_timeout(options.tick.min(Duration::from_millis(250))) {
            Ok(chunk) => Some(chunk),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        for record in chunk.into_iter().flatten() {
            let event = enricher.enrich_record(record);
            events += 1;
            *by_kind.entry(event.kind.as_str()).or_default() += 1;
            detector.detect(&event, &mut alerts);
            let selected = match options.events {
                EventSelection::All => true,
                EventSelection::AlertsContext => !alerts.is_empty(),
                EventSelection::None => false,
            };
            if selected {
                metrics.events_selected.fetch_add(1, Ordering::Relaxed);
                publisher.publish_event(&event);
            }
            emit(&mut alerts, &mut alert_count);
        }
        if last_tick.elapsed() >= options.tick {
            detector.tick(crate::publish::unix_nanos(), &mut alerts);
            emit(&mut alerts, &mut alert_count);
            metrics.record_events(&mut by_kind);
            metrics.set_attrib_samples(enricher.samples());
            metrics.set_detector_samples(detector.samples());
            last_tick = Instant::now();
        }
    }
    detector.finish(&mut alerts);
    emit(&mut alerts, &mut alert_count);
    metrics.record_events(&mut by_kind);
    metrics.set_attrib_samples(enricher.samples());
    metrics.set_detector_samples(detector.samples());
    (events, alert_count)
}

// ------------------------------------------------------------------------------ health server

/// A bound health endpoint: `/healthz`, `/readyz`, `/metrics`.
pub struct HealthServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for HealthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl HealthServer {
    /// Binds `addr` (port 0: any free port) and serves on its own thread.
    pub fn start(
        addr: SocketAddr,
        metrics: Arc<AgentMetrics>,
        publisher: Option<PublisherHandle>,
    ) -> Result<HealthServer, AgentError> {
        use axum::http::{StatusCode, header};
        use axum::routing::get;
        let health_err = |source| AgentError::Health { addr, source };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(health_err)?;
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(health_err)?;
        let bound = listener.local_addr().map_err(health_err)?;
        let ready_metrics = Arc::clone(&metrics);
        let app = axum::Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route(
                "/readyz",
                get(move || {
                    let ready = ready_metrics.is_ready();
                    async move {
                        if ready {
                            (StatusCode::OK, "ready\n")
                        } else {
                            (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                        }
                    }
                }),
            )
            .route(
                "/metrics",
                get(move || {
                    let counters = publisher.as_ref().map(PublisherHandle::counters);
                    let text = metrics.render(counters.as_ref());
                    async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text) }
                }),
            );
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("health".into())
            .spawn(move || {
                rt.block_on(async move {
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await;
                    if let Err(e) = served {
                        tracing::error!("health endpoint stopped: {e}");
                    }
                });
            })
            .map_err(health_err)?;
        Ok(HealthServer {
            addr: bound,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sets `stop` on SIGTERM or SIGINT. Both are registered before this returns, so a signal sent
/// right after start is never lost to the default action (which would exit without flushing).
pub fn stop_on_signals(stop: Arc<AtomicBool>) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut terminate, mut interrupt) = rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async {
                tokio::select! {
                    _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
                    _ = interrupt.recv() => tracing::info!("SIGINT: stopping"),
                }
            });
            stop.store(true, Ordering::SeqCst);
        })?;
    Ok(())
}

/// Publisher drops as a one-line summary (`queue_full=3 spool_full=1`), empty when none.
pub fn drop_summary(p: &PublishCounters) -> String {
    p.dropped_records
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{}={n}", r.as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

// ------------------------------------------------------------------------------ configuration

/// Where pod metadata comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KubernetesAccess {
    /// In-cluster service account when running in a pod, else `$KUBECONFIG` / `~/.kube/config`;
    /// without either, attribution stops at container and pod ids from the cgroup.
    #[default]
    Auto,
    /// This kubeconfig file.
    Kubeconfig(std::path::PathBuf),
    /// Pods from this node's kubelet (`/pods`) instead of the API server.
    Kubelet(crate::attrib::pods::KubeletSource),
    /// No Kubernetes API: container and pod ids from the cgroup only.
    Disabled,
}

/// Everything `palisade sensor run` configures.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The node name in every event and batch.
    pub node_name: String,
    pub cluster: Option<String>,
    /// Rule files or directories added to the built-in node rules.
    pub rules: Vec<std::path::PathBuf>,
    pub publisher: crate::publish::PublisherConfig,
    pub pipeline: PipelineOptions,
    /// The health endpoint (`None`: none).
    pub health_addr: Option<SocketAddr>,
    /// Sensitive path prefixes added to the kernel's default list.
    pub sensitive_prefixes: Vec<String>,
    /// The cgroup2 mount (`None`: found in /proc/self/mountinfo).
    pub cgroup_root: Option<std::path::PathBuf>,
    /// The kernel ring buffer's size (a power of two of at least 4096 bytes).
    pub ring_buffer_bytes: u32,
    /// /proc of the host (`/host/proc` when mounted so in a pod).
    pub proc_root: std::path::PathBuf,
    pub kubernetes: KubernetesAccess,
    /// Set to stop the sensor (the CLI sets it on SIGTERM/SIGINT).
    pub stop: Arc<AtomicBool>,
    /// Told once the programs are attached (what attached, where the health endpoint is).
    pub ready: Option<std::sync::mpsc::Sender<ReadyInfo>>,
}

impl AgentConfig {
    /// Defaults for everything but the sink and node name.
    pub fn new(node_name: impl Into<String>, publisher: crate::publish::PublisherConfig) -> Self {
        AgentConfig {
            node_name: node_name.into(),
            cluster: None,
            rules: Vec::new(),
            publisher,
            pipeline: PipelineOptions::default(),
            health_addr: None,
            sensitive_prefixes: Vec::new(),
            cgroup_root: None,
            ring_buffer_bytes: crate::kernel::DEFAULT_RING_BUFFER_BYTES,
            proc_root: std::path::PathBuf::from("/proc"),
            kubernetes: KubernetesAccess::Auto,
            stop: Arc::new(AtomicBool::new(false)),
            ready: None,
        }
    }
}

mod wiring;
pub use wiring::{CheckLine, CheckReport, ReadyInfo, check, kernel_config, load_rules, run};

#[cfg(test)]
mod tests {
    //! The agent's own logic: backpressure accounting between the threads, shutdown flushing,
    //! and the health endpoint. The stages here are small stand-ins that produce records at a
    //! controlled rate (the real kernel, attribution and rules stages are exercised end to end
    //! in `tests/agent_*.rs`).
    use super::*;
    use crate::kernel::event::KernelPayload;
    use crate::publish::{PublisherConfig, Sink};
    use std::io::{Read, Write};

    struct Burst {
        left: usize,
        per_poll: usize,
    }

    impl KernelStage for Burst {
        fn poll_records(
            &mut self,
            timeout: Duration,
            sink: &mut dyn FnMut(KernelEvent),
        ) -> Result<usize, AgentError> {
            if self.left == 0 {
                std::thread::sleep(timeout);
                return Ok(0);
            }
            let n = self.per_poll.min(self.left);
            for i in 0..n {
                sink(KernelEvent {
                    time_boot_ns: i as u64,
                    cgroup_id: 1,
                    pid: 100 + i as u32,
                    tid: 100 + i as u32,
                    ppid: 1,
                    uid: 0,
                    gid: 0,
                    euid: 0,
                    comm: if i % 1000 == 0 { "xmrig" } else { "true" }.into(),
                    pid_ns: 1,
                    mnt_ns: 1,
                    cap_effective: 0,
                    payload: KernelPayload::Exit { exit_code: 0 },
                });
            }
            self.left -= n;
            Ok(n)
        }

        fn samples(&self) -> Vec<Sample> {
            vec![
                Sample::new(
                    "palisade_sensor_kernel_ringbuf_dropped_total",
                    "Ring buffer reservations that failed, by kind.",
                    "counter",
                    0.0,
                )
                .label("kind", "exec"),
            ]
        }
    }

    struct Slow(Duration);

    impl EnrichStage for Slow {
        fn enrich_record(&mut self, event: KernelEvent) -> NodeEvent {
            if !self.0.is_zero() {
                std::thread::sleep(self.0);
            }
            NodeEvent {
                id: format!("e-{}", event.pid),
                kind: NodeEventKind::Exit,
                process: palisade_detect::node::ProcessInfo {
                    pid: event.pid,
                    comm: event.comm,
                    ..Default::default()
                },
                ..NodeEvent::default()
            }
        }

        fn samples(&self) -> Vec<Sample> {
            Vec::new()
        }
    }

    struct CommRule {
        finished: Arc<AtomicBool>,
    }

    impl DetectStage for CommRule {
        fn detect(&mut self, event: &NodeEvent, out: &mut Vec<DetectAlert>) {
            if event.process.comm == "xmrig" {
                let mut alert = DetectAlert {
                    alert: palisade_core::Alert {
                        alert_id: "TEST_Miner".into(),
                        title: "miner".into(),
                        severity: palisade_core::Severity::High,
                        time: String::new(),
                        resource: Default::default(),
                        tactics: Vec::new(),
                        techniques: Vec::new(),
                        evidence: serde_json::Value::Null,
                        remediation: String::new(),
                    },
                    rule_id: "TEST_Miner".into(),
                    description: String::new(),
                    message: "miner".into(),
                    subject: String::new(),
                    resource: String::new(),
                    count: 1,
                    first_seen: String::new(),
                    last_seen: String::new(),
                    first_seen_nanos: 0,
                    last_seen_nanos: 0,
                    event_ids: vec![event.id.clone()],
                    source: "node".into(),
                    dataset: "palisade.node".into(),
                    context: Default::default(),
                    tags: Vec::new(),
                    update: false,
                };
                alert.subject = event.process.comm.clone();
                out.push(alert);
            }
        }
        fn tick(&mut self, _now: i64, _out: &mut Vec<DetectAlert>) {}
        fn finish(&mut self, _out: &mut Vec<DetectAlert>) {
            self.finished.store(true, Ordering::SeqCst);
        }
        fn samples(&self) -> Vec<Sample> {
            Vec::new()
        }
    }

    fn run_burst(
        total: usize,
        delay: Duration,
        chunks: usize,
    ) -> (AgentSummary, Arc<AgentMetrics>, bool, String) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        let publisher =
            Publisher::start(PublisherConfig::new(Sink::File(out.clone()), "n"), None).unwrap();
        let metrics = Arc::new(AgentMetrics::new());
        let stop = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let options = PipelineOptions {
            channel_chunks: chunks,
            chunk_records: 100,
            poll_timeout: Duration::from_millis(20),
            tick: Duration::from_millis(50),
            events: EventSelection::AlertsContext,
            drain_timeout: Duration::from_secs(5),
        };
        let stopper = {
            let stop = Arc::clone(&stop);
            let metrics = Arc::clone(&metrics);
            std::thread::spawn(move || {
                // Stop once every record was either evaluated or dropped.
                let deadline = Instant::now() + Duration::from_secs(120);
                while Instant::now() < deadline {
                    let evaluated: u64 = metrics.events_by_kind().values().sum();
                    let dropped = metrics.userspace_drops(PipelineDropReason::ChannelFull);
                    if metrics.kernel_records.load(Ordering::Relaxed) == total as u64
                        && (dropped > 0 || evaluated == total as u64)
                    {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                stop.store(true, Ordering::SeqCst);
            })
        };
        let summary = run_pipeline(
            move || {
                Ok(Burst {
                    left: total,
                    per_poll: 5000,
                })
            },
            Box::new(Slow(delay)),
            Box::new(CommRule {
                finished: Arc::clone(&finished),
            }),
            publisher,
            Arc::clone(&metrics),
            stop,
            options,
        )
        .unwrap();
        stopper.join().unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        (summary, metrics, finished.load(Ordering::SeqCst), text)
    }

    #[test]
    fn every_record_is_evaluated_or_counted_and_shutdown_flushes() {
        let (summary, metrics, finished, text) = run_burst(20_000, Duration::ZERO, 1024);
        assert!(finished, "the detector was finished at shutdown");
        assert_eq!(summary.kernel_records, 20_000);
        assert_eq!(summary.userspace_dropped, 0);
        assert_eq!(summary.events, 20_000);
        assert_eq!(summary.alerts, 20);
        // alerts-context: each alert follows the event that raised it.
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 40);
        assert_eq!(lines[0]["record"], "event");
        assert_eq!(lines[0]["process"]["comm"], "xmrig");
        assert_eq!(lines[1]["record"], "alert");
        assert_eq!(lines[1]["rule.id"], "TEST_Miner");
        assert_eq!(summary.publisher.records_delivered, 40);
        let rendered = metrics.render(Some(&summary.publisher));
        assert!(rendered.contains("palisade_sensor_events_total{type=\"exit\"} 20000"));
        assert!(
            rendered
                .contains("palisade_sensor_alerts_total{rule=\"TEST_Miner\",severity=\"high\"} 20")
        );
        assert!(rendered.contains("palisade_sensor_kernel_ringbuf_dropped_total{kind=\"exec\"} 0"));
    }

    #[test]
    fn a_slow_pipeline_drops_at_the_channel_and_counts_it() {
        let (summary, metrics, _, _) = run_burst(20_000, Duration::from_micros(200), 2);
        let dropped = metrics.userspace_drops(PipelineDropReason::ChannelFull);
        assert!(
            dropped > 0,
            "a 2-chunk channel behind a slow stage must overflow"
        );
        assert_eq!(summary.userspace_dropped, dropped);
        assert_eq!(summary.events + dropped, 20_000, "nothing lost uncounted");
        let rendered = metrics.render(None);
        assert!(rendered.contains(&format!(
            "palisade_sensor_userspace_dropped_total{{reason=\"channel_full\"}} {dropped}"
        )));
    }

    fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    #[test]
    fn health_endpoint_reports_readiness_and_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let publisher = Publisher::start(
            PublisherConfig::new(Sink::File(dir.path().join("o")), "n"),
            None,
        )
        .unwrap();
        let metrics = Arc::new(AgentMetrics::new());
        metrics.record_userspace_drop(PipelineDropReason::ChannelFull, 7);
        let server = HealthServer::start(
            "127.0.0.1:0".parse().unwrap(),
            Arc::clone(&metrics),
            Some(publisher.handle()),
        )
        .unwrap();
        let addr = server.local_addr();
        assert_eq!(get(addr, "/healthz").0, 200);
        assert_eq!(get(addr, "/readyz").0, 503);
        metrics.set_ready(true);
        assert_eq!(get(addr, "/readyz").0, 200);
        let (status, body) = get(addr, "/metrics");
        assert_eq!(status, 200);
        assert!(body.contains("palisade_sensor_ready 1"), "{body}");
        assert!(
            body.contains("palisade_sensor_userspace_dropped_total{reason=\"channel_full\"} 7")
        );
        assert!(
            body.contains("palisade_sensor_publish_dropped_records_total{reason=\"queue_full\"} 0")
        );
        assert!(body.contains("palisade_sensor_publish_backend_up 1"));
        assert_eq!(get(addr, "/nope").0, 404);
        drop(server);
        assert!(std::net::TcpStream::connect(addr).is_err());
        publisher.shutdown(Duration::from_secs(1));
    }
}
