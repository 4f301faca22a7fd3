//! The publisher against a real local HTTPS backend (generated CA, rustls, hyper): batches arrive
//! gzip-compressed with the bearer token and an idempotency key; 503s are retried with growing
//! waits; with the backend down, batches go to the disk spool and are delivered in order when it
//! is back (also after a restart of the sensor); a full spool drops and counts; file and stdout
//! outputs write one JSON line per record.

mod https_support;

use flate2::read::GzDecoder;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use palisade_core::spool::SpoolLimits;
use palisade_detect::node::NodeEvent;
use palisade_sensor::publish::{
    BATCH_SCHEMA, PublishCounters, PublishDropReason, Publisher, PublisherConfig, RetryPolicy, Sink,
};
use std::collections::VecDeque;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_rustls::TlsAcceptor;

/// One request as the backend saw it.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    authorization: Option<String>,
    encoding: Option<String>,
    idempotency_key: Option<String>,
    /// Decompressed JSON (None when the body was not gzip JSON).
    body: Option<serde_json::Value>,
    status: u16,
}

#[derive(Default)]
struct BackendState {
    /// Statuses to answer, in order; 202 once empty.
    script: Mutex<VecDeque<u16>>,
    received: Mutex<Vec<Received>>,
}

/// A local HTTPS backend that can be stopped and started again on the same port.
struct Backend {
    ca_file: tempfile::NamedTempFile,
    acceptor: TlsAcceptor,
    addr: SocketAddr,
    state: Arc<BackendState>,
    rt: tokio::runtime::Runtime,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Backend {
    fn new() -> Backend {
        let (acceptor, ca_pem) = https_support::tls_acceptor();
        let ca_file = tempfile::NamedTempFile::new().expect("ca file");
        std::fs::write(ca_file.path(), &ca_pem).expect("write ca");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let probe = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = probe.local_addr().expect("addr");
        drop(probe);
        let mut backend = Backend {
            ca_file,
            acceptor,
            addr,
            state: Arc::new(BackendState::default()),
            rt,
            task: None,
        };
        backend.start();
        backend
    }

    fn url(&self) -> String {
        format!(
            "https://localhost:{}/api/v1/sensor/batches",
            self.addr.port()
        )
    }

    fn start(&mut self) {
        let listener = self
            .rt
            .block_on(tokio::net::TcpListener::bind(self.addr))
            .expect("rebind the backend port");
        let acceptor = self.acceptor.clone();
        let state = Arc::clone(&self.state);
        self.task = Some(
            self.rt
                .spawn(https_support::serve(listener, acceptor, move |req| {
                    handle(Arc::clone(&state), req)
                })),
        );
    }

    /// Stops listening and closes every open connection (aborting the task drops them).
    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = self.rt.block_on(task);
        }
    }

    fn script(&self, statuses: &[u16]) {
        self.state.script.lock().unwrap().extend(statuses);
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Accepted batches' event ids, in arrival order (duplicates kept).
    fn delivered_ids(&self) -> Vec<String> {
        self.received()
            .iter()
            .filter(|r| r.status < 300)
            .filter_map(|r| r.body.as_ref())
            .flat_map(|b| {
                b["events"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|e| e["id"].as_str().map(str::to_string))
            })
            .collect()
    }
}

async fn handle(
    state: Arc<BackendState>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let authorization = header("authorization");
    let encoding = header("content-encoding");
    let idempotency_key = header("idempotency-key");
    let bytes = req.into_body().collect().await?.to_bytes();
    let mut text = String::new();
    let body = GzDecoder::new(bytes.as_ref())
        .read_to_string(&mut text)
        .ok()
        .and_then(|_| serde_json::from_str(&text).ok());
    let status = state.script.lock().unwrap().pop_front().unwrap_or(202);
    state.received.lock().unwrap().push(Received {
        at: Instant::now(),
        authorization,
        encoding,
        idempotency_key,
        body,
        status,
    });
    let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    Ok(response)
}

fn event(i: usize) -> NodeEvent {
    NodeEvent {
        id: format!("ev-{i:05}"),
        node: "node-a".into(),
        time_nanos: 1_700_000_000_000_000_000 + i as i64,
        ..NodeEvent::default()
    }
}

fn config(backend: &Backend, token: &str) -> PublisherConfig {
    let mut config = PublisherConfig::new(
        Sink::Http {
            url: backend.url(),
            token: token.into(),
            ca: Some(backend.ca_file.path().to_path_buf()),
        },
        "node-a",
    );
    config.cluster = Some("test".into());
    config.batch_max_records = 10;
    config.batch_max_age = Duration::from_millis(50);
    config.retry = RetryPolicy {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(800),
    };
    config.request_timeout = Duration::from_secs(10);
    config.heartbeat_interval = Duration::from_secs(3600);
    config
}

/// Polls `check` until it holds or `timeout` passes (generous: the machine is loaded).
fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    check()
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| event(i).id).collect()
}

#[test]
fn batches_arrive_gzip_with_token_and_idempotency_key() {
    let backend = Backend::new();
    let publisher = Publisher::start(config(&backend, "s3cret-token\n"), None).expect("start");
    for i in 0..25 {
        assert!(publisher.publish_event(&event(i)));
    }
    assert!(
        wait_until(Duration::from_secs(60), || backend.delivered_ids().len()
            == 25),
        "{:?}",
        backend.delivered_ids()
    );
    let counters = publisher.shutdown(Duration::from_secs(10));
    let received = backend.received();
    // 25 records in batches of at most 10, plus the final heartbeat batch at shutdown.
    assert!(received.len() >= 3, "{}", received.len());
    let mut keys = std::collections::HashSet::new();
    for r in &received {
        assert_eq!(r.authorization.as_deref(), Some("Bearer s3cret-token"));
        assert_eq!(r.encoding.as_deref(), Some("gzip"));
        let body = r.body.as_ref().expect("gzip JSON body");
        assert_eq!(body["schema"], BATCH_SCHEMA);
        assert_eq!(body["sensor"]["node"], "node-a");
        assert_eq!(body["sensor"]["cluster"], "test");
        let key = r.idempotency_key.clone().expect("idempotency key");
        assert_eq!(body["batch_id"], key.as_str());
        assert!(keys.insert(key), "batch ids are unique");
        assert!(body["events"].as_array().unwrap().len() <= 10);
    }
    assert_eq!(backend.delivered_ids(), expected(0..25));
    let last = received.last().unwrap().body.as_ref().unwrap();
    assert_eq!(last["heartbeat"]["publisher"]["events_submitted"], 25);
    assert_eq!(counters.records_delivered, 25);
    assert_eq!(counters.dropped_total(), 0);
    assert!(counters.backend_up);
}

#[test]
fn service_unavailable_is_retried_with_growing_backoff() {
    let backend = Backend::new();
    backend.script(&[503, 503, 503]);
    let publisher = Publisher::start(config(&backend, "t"), None).expect("start");
    for i in 0..5 {
        publisher.publish_event(&event(i));
    }
    assert!(wait_until(Duration::from_secs(60), || backend
        .delivered_ids()
        .len()
        == 5));
    let counters = publisher.shutdown(Duration::from_secs(10));
    let received = backend.received();
    let attempts: Vec<&Received> = received
        .iter()
        .filter(|r| {
            r.body
                .as_ref()
                .is_some_and(|b| b["events"].as_array().is_some_and(|e| !e.is_empty()))
        })
        .collect();
    assert_eq!(
        attempts.iter().map(|r| r.status).collect::<Vec<_>>(),
        [503, 503, 503, 202]
    );
    // The same batch (same idempotency key) was retried.
    assert!(
        attempts
            .iter()
            .all(|r| r.idempotency_key == attempts[0].idempotency_key)
    );
    // Backoff 100 ms · 2^(n-1), half of it jittered: at least 50, 100, 200 ms between tries.
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1].at - w[0].at).collect();
    for (gap, min) in gaps.iter().zip([50u64, 100, 200]) {
        assert!(*gap >= Duration::from_millis(min), "{gaps:?}");
    }
    assert_eq!(counters.send_failures, 3);
    assert_eq!(counters.retries, 3);
    assert_eq!(counters.records_delivered, 5);
    assert_eq!(counters.dropped_total(), 0);
}

#[test]
fn unreachable_backend_spools_and_drains_in_order_also_after_a_restart() {
    let mut backend = Backend::new();
    let spool_dir = tempfile::tempdir().expect("spool dir");
    let mut cfg = config(&backend, "t");
    cfg.spool_dir = Some(spool_dir.path().to_path_buf());
    cfg.outbox_max_batches = 2;

    // Phase 1: the backend works.
    let publisher = Publisher::start(cfg.clone(), None).expect("start");
    for i in 0..10 {
        publisher.publish_event(&event(i));
    }
    assert!(wait_until(Duration::from_secs(60), || backend
        .delivered_ids()
        .len()
        == 10));
    // Phase 2: the backend goes away; batches pile up on disk.
    backend.stop();
    for i in 10..60 {
        publisher.publish_event(&event(i));
        if i % 10 == 9 {
            // Let the batcher seal by age now and then, so there are several batches.
            std::thread::sleep(Duration::from_millis(60));
        }
    }
    assert!(
        wait_until(Duration::from_secs(60), || {
            let c = publisher.counters();
            c.batches_spooled >= 5 && c.gauges.outbox_batches == 0
        }),
        "{:?}",
        publisher.counters()
    );
    let during = publisher.counters();
    assert!(during.send_failures >= 1);
    assert!(!during.backend_up);
    assert!(during.gauges.spool_bytes > 0);
    // Phase 3: the backend is back: everything arrives, in order.
    backend.start();
    assert!(
        wait_until(Duration::from_secs(90), || backend.delivered_ids().len()
            >= 60),
        "{:?}",
        publisher.counters()
    );
    assert_eq!(backend.delivered_ids(), expected(0..60));
    // Phase 4: down again, then the sensor stops: what is left stays in the spool.
    backend.stop();
    for i in 60..75 {
        publisher.publish_event(&event(i));
    }
    let stopped = publisher.shutdown(Duration::from_secs(2));
    assert_eq!(stopped.dropped_total(), 0, "{stopped:?}");
    assert!(
        spool_bytes(spool_dir.path()) > 0,
        "the undelivered batches were kept on disk"
    );
    // Phase 5: a new sensor run with the backend up delivers the spooled batches first.
    backend.start();
    let publisher = Publisher::start(cfg, None).expect("restart");
    publisher.publish_event(&event(75));
    assert!(
        wait_until(Duration::from_secs(90), || backend.delivered_ids().len()
            >= 76),
        "{:?}",
        publisher.counters()
    );
    let counters = publisher.shutdown(Duration::from_secs(10));
    assert_eq!(backend.delivered_ids(), expected(0..76));
    assert_eq!(counters.dropped_total(), 0);
    assert_eq!(spool_bytes(spool_dir.path()), 0);
}

fn spool_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn full_spool_drops_and_counts_by_reason() {
    let mut backend = Backend::new();
    backend.stop();
    let spool_dir = tempfile::tempdir().expect("spool dir");
    let mut cfg = config(&backend, "t");
    cfg.spool_dir = Some(spool_dir.path().to_path_buf());
    cfg.outbox_max_batches = 1;
    // Room for about two gzip batches of ten events.
    cfg.spool = SpoolLimits {
        max_bytes: 1400,
        segment_bytes: 700,
    };
    let publisher = Publisher::start(cfg, None).expect("start");
    for i in 0..100 {
        publisher.publish_event(&event(i));
    }
    assert!(
        wait_until(Duration::from_secs(60), || {
            let c = publisher.counters();
            c.dropped(PublishDropReason::SpoolFull) > 0
                && c.gauges.queue_records == 0
                && c.gauges.outbox_batches == 0
        }),
        "{:?}",
        publisher.counters()
    );
    let counters: PublishCounters = publisher.shutdown(Duration::from_millis(200));
    let spooled_records = counters.records_spooled;
    assert!(counters.batches_spooled >= 1, "{counters:?}");
    // Every record is accounted for: spooled, or dropped because the spool was full.
    assert_eq!(
        spooled_records + counters.dropped(PublishDropReason::SpoolFull),
        100,
        "{counters:?}"
    );
    assert!(spool_bytes(spool_dir.path()) <= 1400);
    assert!(
        counters
            .dropped_batches
            .iter()
            .any(|(r, n)| *r == PublishDropReason::SpoolFull && *n > 0)
    );
}

#[test]
fn rejected_batches_are_dropped_and_counted_not_retried() {
    let backend = Backend::new();
    backend.script(&[400]);
    let publisher = Publisher::start(config(&backend, "t"), None).expect("start");
    for i in 0..3 {
        publisher.publish_event(&event(i));
    }
    assert!(wait_until(Duration::from_secs(60), || publisher
        .counters()
        .dropped(PublishDropReason::Rejected)
        == 3));
    for i in 3..5 {
        publisher.publish_event(&event(i));
    }
    assert!(wait_until(Duration::from_secs(60), || backend
        .delivered_ids()
        .len()
        == 2));
    let counters = publisher.shutdown(Duration::from_secs(10));
    assert_eq!(backend.delivered_ids(), expected(3..5));
    assert_eq!(counters.retries, 0);
    assert_eq!(counters.dropped(PublishDropReason::Rejected), 3);
}

#[test]
fn file_output_writes_json_lines_and_config_errors_are_clear() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("out.jsonl");
    let publisher =
        Publisher::start(PublisherConfig::new(Sink::File(path.clone()), "n"), None).expect("start");
    for i in 0..7 {
        publisher.publish_event(&event(i));
    }
    let counters = publisher.shutdown(Duration::from_secs(5));
    assert_eq!(counters.records_delivered, 7);
    let text = std::fs::read_to_string(&path).expect("output");
    let ids: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            assert_eq!(v["record"], "event");
            v["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids, expected(0..7));

    let bad = |sink: Sink| Publisher::start(PublisherConfig::new(sink, "n"), None).unwrap_err();
    let e = bad(Sink::Http {
        url: "http://backend.example/ingest".into(),
        token: "t".into(),
        ca: None,
    });
    assert!(e.to_string().contains("loopback only"), "{e}");
    let e = bad(Sink::Http {
        url: "https://localhost/ingest".into(),
        token: " \n".into(),
        ca: None,
    });
    assert!(e.to_string().contains("token is empty"), "{e}");
    let e = bad(Sink::Http {
        url: "https://localhost/ingest".into(),
        token: "t".into(),
        ca: Some(dir.path().join("missing.pem")),
    });
    assert!(e.to_string().contains("missing.pem"), "{e}");
    let e = bad(Sink::File(dir.path().join("no/such/dir/out.jsonl")));
    assert!(e.to_string().contains("no/such/dir"), "{e}");
}
