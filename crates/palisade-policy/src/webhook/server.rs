//! The HTTPS server: TLS accept loop (hyper, HTTP/1.1 and HTTP/2), the routes, and the
//! `/validate` handler that hands each review to the worker pool under a deadline.

use super::decision_log::{DecisionLog, DecisionRecord, LoggedViolation, now_rfc3339};
use super::metrics::{ErrorCause, Metrics};
use super::namespaces::NamespaceLookup;
use super::pool::{Pool, SubmitError};
use super::response::{decide, failure, review_response};
use super::tls::{ReloadingResolver, TlsError, server_config};
use super::{EvaluationFailure, FailurePolicy, Finding, Policies};
use crate::review::{AdmissionReview, AdmissionVersion, parse_admission_review};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio_rustls::TlsAcceptor;

/// How the server behaves; [`WebhookOptions::default`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    pub listen: SocketAddr,
    /// Largest request body accepted (413 beyond).
    pub max_request_bytes: usize,
    /// Per-request deadline for evaluation, below the API server's webhook timeout.
    pub timeout: Duration,
    /// What to answer when the constraints cannot decide in time or at all.
    pub failure_policy: FailurePolicy,
    /// Evaluation threads (one regorus engine each).
    pub workers: usize,
    /// Requests that may wait for a worker before new ones get the failure policy.
    pub queue_capacity: usize,
}

/// Defaults: 3 MiB bodies, 2.5 s deadline (below Gatekeeper's 3 s and the API server's 10 s),
/// failure policy Ignore, one worker per CPU, 256 queued requests.
impl Default for WebhookOptions {
    fn default() -> Self {
        WebhookOptions {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            max_request_bytes: 3 * 1024 * 1024,
            timeout: Duration::from_millis(2500),
            failure_policy: FailurePolicy::Ignore,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            queue_capacity: 256,
        }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the evaluation workers: {0}")]
    Workers(#[source] std::io::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

struct AppState<P: Policies> {
    options: WebhookOptions,
    pool: Pool<P>,
    policies: watch::Receiver<Option<Arc<P>>>,
    metrics: Arc<Metrics>,
    decision_log: Option<DecisionLog>,
    namespaces: Option<Arc<dyn NamespaceLookup>>,
}

/// A bound, not yet serving, webhook.
pub struct WebhookServer<P: Policies> {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<AppState<P>>,
    policy_watch: tokio::task::JoinHandle<()>,
}

/// What the server is built from besides its options.
pub struct WebhookParts<P: Policies> {
    /// The key pair to serve (swapped in place on reload).
    pub tls: Arc<ReloadingResolver>,
    /// The policy set in service; `None` until the first one is loaded (`/readyz` says 503 and
    /// `/validate` answers with the failure policy meanwhile).
    pub policies: watch::Receiver<Option<Arc<P>>>,
    pub metrics: Arc<Metrics>,
    pub decision_log: Option<DecisionLog>,
    /// Namespace objects for `namespaceSelector` (a live cluster); `None` leaves them unknown.
    pub namespaces: Option<Arc<dyn NamespaceLookup>>,
}

impl<P: Policies> WebhookServer<P> {
    /// Binds the listener and starts the workers. Must run inside a Tokio runtime.
    pub async fn bind(
        options: WebhookOptions,
        parts: WebhookParts<P>,
    ) -> Result<Self, WebhookError> {
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| WebhookError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let acceptor = TlsAcceptor::from(server_config(parts.tls)?);
        let pool = Pool::start(
            options.workers,
            options.queue_capacity,
            parts.policies.clone(),
            Arc::clone(&parts.metrics),
        )
        .map_err(WebhookError::Workers)?;
        let policy_watch = tokio::spawn(track_policy_changes(
            parts.policies.clone(),
            Arc::clone(&parts.metrics),
        ));
        Ok(WebhookServer {
            listener,
            acceptor,
            state: Arc::new(AppState {
                options,
                pool,
                policies: parts.policies,
                metrics: parts.metrics,
                decision_log: parts.decision_log,
                namespaces: parts.namespaces,
            }),
            policy_watch,
        })
    }

    /// The address actually bound (port 0 picks a free one).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes. Connections already accepted finish their requests
    /// on their own tasks.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let router = router(Arc::clone(&self.state));
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(connection) => connection,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let acceptor = self.acceptor.clone();
            let service = TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                let Some(tls) = palisade_core::tls::handshake(&acceptor, stream, peer).await else {
                    return;
                };
                if let Err(e) = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await
                {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
            });
        }
        self.policy_watch.abort();
    }
}

/// Counts each policy set put in service and keeps the size gauges current.
async fn track_policy_changes<P: Policies>(
    mut policies: watch::Receiver<Option<Arc<P>>>,
    metrics: Arc<Metrics>,
) {
    loop {
        let current = policies.borrow_and_update().clone();
        if let Some(set) = current {
            metrics.record_reload(set.template_count(), set.constraint_count());
        }
        if policies.changed().await.is_err() {
            return;
        }
    }
}

fn router<P: Policies>(state: Arc<AppState<P>>) -> Router {
    Router::new()
        .route("/validate", post(validate::<P>))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<P>))
        .route("/metrics", get(metrics::<P>))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz<P: Policies>(State(state): State<Arc<AppState<P>>>) -> Response {
    let loaded = state
        .policies
        .borrow()
        .as_ref()
        .map(|set| (set.template_count(), set.constraint_count()));
    match loaded {
        Some((templates, constraints)) => (
            StatusCode::OK,
            format!("ok: {templates} templates, {constraints} constraints\n"),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "policies not loaded yet\n").into_response(),
    }
}

async fn metrics<P: Policies>(State(state): State<Arc<AppState<P>>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

fn plain_error(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message + "\n",
    )
        .into_response()
}

/// Reads the body, refusing more than `limit` bytes.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, Response> {
    let too_large = |size: Option<u64>| {
        let size = size.map_or_else(String::new, |s| format!(" of {s} bytes"));
        plain_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "AdmissionReview body{size} exceeds the limit of {limit} bytes (--max-request-bytes)"
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large(declared));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(None)),
        Err(e) => Err(plain_error(
            StatusCode::BAD_REQUEST,
            format!("cannot read the request body: {e}"),
        )),
    }
}

/// What the worker sends back.
type Evaluated = Result<Vec<Finding>, EvaluationFailure>;

async fn validate<P: Policies>(
    State(state): State<Arc<AppState<P>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let bytes = match read_body(&headers, body, state.options.max_request_bytes).await {
        Ok(bytes) => bytes,
        Err(response) => {
            let cause = if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ErrorCause::TooLarge
            } else {
                ErrorCause::Malformed
            };
            state.metrics.record_error(cause);
            return response;
        }
    };
    let AdmissionReview {
        version,
        mut request,
    } = match parse_admission_review(&bytes) {
        Ok(review) => review,
        Err(e) => {
            state.metrics.record_error(ErrorCause::Malformed);
            return plain_error(
                StatusCode::BAD_REQUEST,
                format!("malformed AdmissionReview: {e}"),
            );
        }
    };

    if let (Some(lookup), Some(namespace)) = (&state.namespaces, request.namespace.as_deref())
        && request.namespace_object.is_none()
        && !request.is_namespace()
    {
        match lookup.namespace(namespace).await {
            Ok(object) => request.namespace_object = object,
            Err(e) => {
                state.metrics.record_error(ErrorCause::NamespaceLookup);
                tracing::warn!("namespace {namespace}: cannot fetch it for namespaceSelector: {e}");
            }
        }
    }

    let deadline = started + state.options.timeout;
    let request = Arc::new(request);
    let evaluated = evaluate(&state, Arc::clone(&request), deadline).await;
    let (outcome, findings, error) = match evaluated {
        Ok(findings) => (decide(&findings), findings, None),
        Err((cause, reason)) => {
            state.metrics.record_error(cause);
            tracing::warn!(uid = %request.uid, "{reason}");
            (
                failure(state.options.failure_policy, &reason),
                Vec::new(),
                Some(cause),
            )
        }
    };
    let body = review_response(version, &request.uid, &outcome);
    let latency = started.elapsed();

    let operation = request.operation.map_or("", |o| o.as_str());
    let decision = if outcome.allowed { "allow" } else { "deny" };
    state.metrics.record_request(
        version_label(version),
        operation,
        &request.kind.kind,
        decision,
        latency,
    );
    for finding in &findings {
        state.metrics.record_violation(
            &finding.constraint_kind,
            &finding.constraint_name,
            finding.action.as_str(),
        );
    }
    if let Some(log) = &state.decision_log {
        log.record(DecisionRecord {
            time: now_rfc3339(),
            uid: request.uid.clone(),
            kind: format!("{}/{}", request.kind.group_version(), request.kind.kind),
            namespace: request.namespace.clone(),
            name: request.name.clone(),
            operation: operation.to_string(),
            user: request.username.clone(),
            dry_run: request.dry_run,
            decision,
            violations: findings
                .iter()
                .map(|f| LoggedViolation {
                    constraint_kind: f.constraint_kind.clone(),
                    constraint: f.constraint_name.clone(),
                    action: f.action.as_str().to_string(),
                    message: f.message.clone(),
                })
                .collect(),
            error: error.map(|cause| cause.as_str().to_string()),
            latency_ms: latency.as_secs_f64() * 1000.0,
        });
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(&body).unwrap_or_default(),
    )
        .into_response()
}

fn version_label(version: AdmissionVersion) -> &'static str {
    match version {
        AdmissionVersion::V1 => "v1",
        AdmissionVersion::V1beta1 => "v1beta1",
    }
}

/// Runs the review on a worker, waiting at most until `deadline`.
async fn evaluate<P: Policies>(
    state: &AppState<P>,
    request: Arc<crate::review::ReviewRequest>,
    deadline: Instant,
) -> Result<Vec<Finding>, (ErrorCause, String)> {
    if state.policies.borrow().is_none() {
        return Err((ErrorCause::NotReady, "policies are not loaded yet".into()));
    }
    let (reply, answer) = oneshot::channel::<Evaluated>();
    let job = Box::new(move |set: &P, evaluator: &mut P::Evaluator| {
        // Waited in the queue past the deadline: the request was answered already.
        if Instant::now() >= deadline || reply.is_closed() {
            return;
        }
        let _ = reply.send(set.evaluate(evaluator, &request));
    });
    match state.pool.submit(job) {
        Ok(()) => {}
        Err(SubmitError::Full) => {
            return Err((
                ErrorCause::QueueFull,
                "every evaluation worker is busy and the queue is full".into(),
            ));
        }
        Err(SubmitError::Closed) => {
            return Err((
                ErrorCause::Internal,
                "the evaluation workers stopped".into(),
            ));
        }
    }
    match tokio::time::timeout_at(deadline.into(), answer).await {
        Ok(Ok(Ok(findings))) => Ok(findings),
        Ok(Ok(Err(failure))) if failure.timed_out => Err((
            ErrorCause::Timeout,
            format!("policy evaluation timed out: {}", failure.message),
        )),
        Ok(Ok(Err(failure))) => Err((
            ErrorCause::Evaluation,
            format!("policy evaluation failed: {}", failure.message),
        )),
        Ok(Err(_)) => Err((
            ErrorCause::Internal,
            "policy evaluation ended without an answer (internal error)".into(),
        )),
        Err(_) => Err((
            ErrorCause::Timeout,
            format!(
                "policy evaluation did not finish within {:?}",
                state.options.timeout
            ),
        )),
    }
}
