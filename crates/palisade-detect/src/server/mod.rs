//! `palisade detect serve`: the backend of kube-apiserver's audit webhook
//! (`--audit-webhook-config-file`), which POSTs `audit.k8s.io/v1` `EventList` batches.
//!
//! The request path only reads the body (size-limited), hands the raw bytes to the
//! [`queue::Ingest`] and answers 200: the API server's audit backend retries and eventually
//! blocks or drops on slow or failing webhooks, so this server never makes it wait on detection.
//! Worker threads (one [`Detector`] each) parse, evaluate and aggregate off the request path.
//! A full queue spills to the disk [`spool`]; when that is full too the batch is dropped and
//! counted. Everything is exported on `GET /metrics`.

pub mod metrics;
pub mod output;
pub mod queue;
/// The disk spool lives in `palisade-core` (shared with the node sensor's publisher).
pub use palisade_core::spool;

use crate::audit::AuditSchema;
use crate::audit::parse::InputFormat;
use crate::pipeline::{Detector, DetectorConfig};
use crate::rule::RuleSet;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use metrics::{DropReason, Metrics};
use output::AlertWriter;
use palisade_core::tls::{ReloadingResolver, TlsError, server_config};
use queue::{Ingest, Next, QueueLimits, unix_nanos};
use spool::{Spool, SpoolError, SpoolLimits};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How the server behaves; [`ServeOptions::default`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Largest batch body accepted (413 beyond, counted as a drop).
    pub max_body_bytes: usize,
    pub queue: QueueLimits,
    /// Disk spool directory; `None`: a full queue drops batches.
    pub spool_dir: Option<PathBuf>,
    pub spool: SpoolLimits,
    /// Detection threads, one detector each. Stateful rules and aggregation are per worker, so
    /// more than one splits their memory; one worker evaluates several hundred thousand events
    /// per second.
    pub workers: usize,
    /// How often aggregates whose window closed are flushed when no batch arrives.
    pub tick: Duration,
    /// At shutdown, how long workers may keep processing what is queued before the rest is
    /// spooled (or dropped and counted without a spool).
    pub drain_timeout: Duration,
    pub input_format: InputFormat,
    pub detector: DetectorConfig,
}

/// Defaults: 32 MiB bodies, 1024 batches / 64 MiB in memory, no spool (1 GiB cap in 16 MiB
/// segments when one is given), one worker, 1 s ticks, 10 s drain.
impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: SocketAddr::from(([0, 0, 0, 0], 8444)),
            max_body_bytes: 32 << 20,
            queue: QueueLimits::default(),
            spool_dir: None,
            spool: SpoolLimits::default(),
            workers: 1,
            tick: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(10),
            input_format: InputFormat::Auto,
            detector: DetectorConfig::default(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the detection workers: {0}")]
    Workers(#[source] std::io::Error),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// What the server is built from besides its options.
pub struct ServeParts {
    pub rules: Arc<RuleSet<AuditSchema>>,
    /// Serving key pair; `None` serves plain HTTP (loopback and tests).
    pub tls: Option<Arc<ReloadingResolver>>,
    pub output: AlertWriter,
}

struct AppState {
    max_body_bytes: usize,
    ingest: Arc<Ingest>,
    metrics: Arc<Metrics>,
    stopping: AtomicBool,
}

/// What happened at shutdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Batches processed over the server's life.
    pub batches_processed: u64,
    /// Batches still in memory at the drain deadline, written to the spool for the next run.
    pub spooled_at_exit: u64,
    /// Batches that could be neither processed nor spooled.
    pub dropped_at_exit: u64,
    /// Whether the workers finished everything before the deadline.
    pub drained: bool,
}

/// A bound, not yet serving, audit webhook.
pub struct AuditServer {
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    state: Arc<AppState>,
    workers: Vec<std::thread::JoinHandle<()>>,
    drain_timeout: Duration,
}

impl AuditServer {
    /// Binds the listener, opens the spool (picking up batches a previous run left there) and
    /// starts the workers. Must run inside a Tokio runtime.
    pub async fn bind(options: ServeOptions, parts: ServeParts) -> Result<Self, ServeError> {
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let acceptor = match parts.tls {
            Some(resolver) => Some(TlsAcceptor::from(server_config(resolver)?)),
            None => None,
        };
        let workers = options.workers.max(1);
        let metrics = Arc::new(Metrics::new(workers));
        let spool = match &options.spool_dir {
            Some(dir) => Some(Spool::open(dir, options.spool)?),
            None => None,
        };
        let ingest = Arc::new(Ingest::new(
            options.queue,
            spool,
            options.spool.max_bytes,
            Arc::clone(&metrics),
        ));
        let output = Arc::new(Mutex::new(parts.output));
        let mut handles = Vec::with_capacity(workers);
        for id in 0..workers {
            let worker = Worker {
                id,
                ingest: Arc::clone(&ingest),
                metrics: Arc::clone(&metrics),
                output: Arc::clone(&output),
                detector: Detector::new(Arc::clone(&parts.rules), options.detector.clone()),
                format: options.input_format,
                tick: options.tick,
            };
            let handle = std::thread::Builder::new()
                .name(format!("detect-worker-{id}"))
                .spawn(move || worker.run())
                .map_err(ServeError::Workers)?;
            handles.push(handle);
        }
        Ok(AuditServer {
            listener,
            acceptor,
            state: Arc::new(AppState {
                max_body_bytes: options.max_body_bytes,
                ingest,
                metrics,
                stopping: AtomicBool::new(false),
            }),
            workers: handles,
            drain_timeout: options.drain_timeout,
        })
    }

    /// The address actually bound (port 0 picks a free one).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The live counters (the benchmark samples them while it runs).
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.state.metrics)
    }

    /// The queue (gauges for the benchmark).
    pub fn ingest(&self) -> Arc<Ingest> {
        Arc::clone(&self.state.ingest)
    }

    /// Serves until `shutdown` completes, then stops accepting, lets open requests finish (5 s
    /// at most), lets the workers process what is queued until the drain deadline, spools the
    /// rest, and flushes the aggregates.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> ShutdownReport {
        let router = router(Arc::clone(&self.state));
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(connection) => connection,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(router.clone());
            match &self.acceptor {
                None => {
                    let connection = auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let watched = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(e) = watched.await {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                    });
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    tokio::spawn(async move {
                        if let Some(tls) =
                            palisade_core::tls::handshake(&acceptor, stream, peer).await
                        {
                            let _ = tx.send(tls);
                        }
                    });
                    // The handshake runs on its own task; the connection joins the graceful
                    // set once it is established.
                    let graceful_watch = graceful.watcher();
                    tokio::spawn(async move {
                        let Ok(tls) = rx.await else { return };
                        let connection = auto::Builder::new(TokioExecutor::new())
                            .serve_connection_with_upgrades(TokioIo::new(tls), service)
                            .into_owned();
                        if let Err(e) = graceful_watch.watch(connection).await {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                    });
                }
            }
        }
        self.state.stopping.store(true, Ordering::SeqCst);
        drop(self.listener);
        if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("open connections did not finish within 5s");
        }
        let ingest = Arc::clone(&self.state.ingest);
        ingest.close();
        let workers = self.workers;
        let drain_timeout = self.drain_timeout;
        let metrics = Arc::clone(&self.state.metrics);
        let joined = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + drain_timeout;
            while !workers.iter().all(|w| w.is_finished()) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let finished = workers.iter().all(|w| w.is_finished());
            ingest.halt();
            for worker in workers {
                let _ = worker.join();
            }
            // Past the deadline (or paused): what is still in memory goes to the spool.
            let (spooled, dropped) = ingest.spill();
            let drained = finished && spooled == 0 && dropped == 0;
            ShutdownReport {
                batches_processed: metrics.batches_processed(),
                spooled_at_exit: spooled,
                dropped_at_exit: dropped,
                drained,
            }
        })
        .await;
        joined.unwrap_or_default()
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", post(receive))
        .route("/audit", post(receive))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.stopping.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

async fn metrics_handler(State(state): State<Arc<AppState>>) -> Response {
    let gauges = state.ingest.gauges();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&gauges),
    )
        .into_response()
}

fn plain(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message + "\n",
    )
        .into_response()
}

/// `POST /audit` (or `/`): read, enqueue, 200. Only a body over the limit gets an error (413);
/// malformed content is the workers' business (counted there), so one bad event never makes the
/// API server retry a whole batch.
async fn receive(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let limit = state.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = |state: &AppState, size: Option<u64>| {
        state
            .metrics
            .record_drop(DropReason::TooLarge, size.unwrap_or(limit as u64));
        let size = size.map_or_else(String::new, |s| format!(" of {s} bytes"));
        let mut response = plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("audit batch{size} exceeds the limit of {limit} bytes (--max-body-bytes)"),
        );
        // The unread rest of the body makes the connection unusable: say so, so the client
        // does not send its next batch on it.
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        response
    };
    if declared.is_some_and(|len| len > limit as u64) {
        return too_large(&state, declared);
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return too_large(&state, None);
        }
        Err(e) => {
            state.metrics.record_drop(DropReason::ReadError, 0);
            return plain(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {e}"),
            );
        }
    };
    let len = bytes.len() as u64;
    state.metrics.record_received(bytes.len());
    if let Err(reason) = state.ingest.push(bytes) {
        state.metrics.record_drop(reason, len);
    }
    state.metrics.record_ack(started.elapsed());
    ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
}

/// One detection thread.
struct Worker {
    id: usize,
    ingest: Arc<Ingest>,
    metrics: Arc<Metrics>,
    output: Arc<Mutex<AlertWriter>>,
    detector: Detector,
    format: InputFormat,
    tick: Duration,
}

impl Worker {
    fn run(mut self) {
        let mut alerts = Vec::new();
        let mut batches = 0u64;
        let mut lag = Duration::ZERO;
        let mut last_tick = Instant::now();
        let mut last_publish = Instant::now();
        loop {
            let wait = self.tick.saturating_sub(last_tick.elapsed());
            match self.ingest.next(wait) {
                Next::Batch(batch) => {
                    lag = batch.age();
                    // A bug in detection must not silently stop the worker while the handler
                    // keeps acknowledging: the batch is counted as dropped and work goes on.
                    let detector = &mut self.detector;
                    let format = self.format;
                    let processed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        detector.process_document(&batch.bytes, format, &mut alerts);
                    }));
                    if processed.is_err() {
                        tracing::error!(
                            bytes = batch.bytes.len(),
                            "detection panicked on an audit batch; batch dropped"
                        );
                        self.metrics
                            .record_drop(DropReason::WorkerPanic, batch.bytes.len() as u64);
                    }
                    batches += 1;
                }
                Next::Idle => {}
                Next::Closed => break,
            }
            if last_tick.elapsed() >= self.tick {
                self.detector.tick(unix_nanos(), &mut alerts);
                last_tick = Instant::now();
            }
            if !alerts.is_empty() {
                self.write(&mut alerts);
            }
            if last_publish.elapsed() >= Duration::from_millis(100) {
                self.metrics
                    .publish_worker(self.id, self.detector.stats(), batches, lag);
                last_publish = Instant::now();
            }
        }
        self.detector.finish(&mut alerts);
        self.write(&mut alerts);
        {
            let mut output = self.output.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = output.flush() {
                tracing::warn!("cannot flush the alert output: {e}");
            }
        }
        self.metrics
            .publish_worker(self.id, self.detector.stats(), batches, lag);
    }

    fn write(&self, alerts: &mut Vec<crate::alert::DetectAlert>) {
        let mut output = self.output.lock().unwrap_or_else(|p| p.into_inner());
        let mut written = 0;
        for alert in alerts.drain(..) {
            match output.write(&alert) {
                Ok(()) => written += 1,
                Err(e) => {
                    self.metrics.record_output_error();
                    tracing::warn!(rule = %alert.rule_id, "alert not written: {e}");
                }
            }
        }
        // Alerts are rare and must not sit in a buffer while the server idles.
        if let Err(e) = output.flush() {
            self.metrics.record_output_error();
            tracing::warn!("cannot flush the alert output: {e}");
        }
        self.metrics.record_alerts_written(written);
    }
}
