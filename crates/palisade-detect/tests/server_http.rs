//! `detect serve` over real HTTP on loopback: hostile bodies are counted and never stop the rest;
//! a full queue spills to the disk spool, which drains in arrival order; a full spool drops and
//! counts; shutdown flushes; a restart picks up what was spooled.
#![cfg(feature = "server")]

use palisade_detect::alert::AlertFormat;
use palisade_detect::server::metrics::{family, sample};
use palisade_detect::server::output::AlertWriter;
use palisade_detect::server::queue::QueueLimits;
use palisade_detect::server::spool::SpoolLimits;
use palisade_detect::server::{AuditServer, ServeOptions, ServeParts, ShutdownReport};
use serde_json::{Value, json};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Alert output the test can read while the server runs.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn alerts(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }
}

struct Running {
    addr: SocketAddr,
    server_ingest: Arc<palisade_detect::server::queue::Ingest>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<ShutdownReport>,
    output: Shared,
    client: reqwest::Client,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn post(&self, body: impl Into<reqwest::Body>) -> u16 {
        self.try_post(body).await.unwrap()
    }

    async fn try_post(&self, body: impl Into<reqwest::Body>) -> Result<u16, reqwest::Error> {
        Ok(self
            .client
            .post(self.url("/audit"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?
            .status()
            .as_u16())
    }

    async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits until the workers have finished `batches` batches.
    async fn wait_processed(&self, batches: f64) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.metrics().await;
            let done = sample(&text, "palisade_detect_batches_processed_total", "").unwrap_or(0.0);
            if done >= batches {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "only {done} of {batches} batches processed:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) -> (ShutdownReport, Shared) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (self.task.await.unwrap(), self.output)
    }
}

async fn start(options: ServeOptions) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rules = Arc::new(palisade_detect::builtin::audit_rules().unwrap());
    let output = Shared::default();
    let server = AuditServer::bind(
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tick: Duration::from_millis(100),
            ..options
        },
        ServeParts {
            rules,
            tls: None,
            output: AlertWriter::new(AlertFormat::Json, Box::new(output.clone()), None),
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    let server_ingest = server.ingest();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    Running {
        addr,
        server_ingest,
        stop: Some(tx),
        task,
        output,
        client: reqwest::Client::new(),
    }
}

fn event(id: &str, verb: &str, resource: &str, name: &str, object: Option<Value>) -> Value {
    let mut e = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": id, "stage": "ResponseComplete",
        "requestURI": format!("/api/v1/namespaces/shop/{resource}"), "verb": verb,
        "user": {"username": "mallory@example.com", "groups": ["system:authenticated"]},
        "sourceIPs": ["203.0.113.7"], "userAgent": "kubectl/v1.29.2",
        "objectRef": {"resource": resource, "namespace": "shop", "name": name, "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestReceivedTimestamp": "2026-01-15T08:00:00.000000Z",
        "stageTimestamp": "2026-01-15T08:00:00.002000Z"
    });
    if let Some(object) = object {
        e["requestObject"] = object;
    }
    e
}

fn privileged_pod(id: &str, name: &str) -> Value {
    event(
        id,
        "create",
        "pods",
        name,
        Some(json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "securityContext": {"privileged": true}}]}
        })),
    )
}

fn list(items: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
        "metadata": {}, "items": items}),
    )
    .unwrap()
}

fn rule_alerts(alerts: &[Value], rule: &str) -> Vec<Value> {
    alerts
        .iter()
        .filter(|a| a["rule.id"] == rule)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_are_counted_and_the_rest_is_processed() {
    let server = start(ServeOptions {
        max_body_bytes: 1 << 20,
        ..ServeOptions::default()
    })
    .await;
    let health = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    // Malformed JSON, invalid UTF-8, nesting far beyond the parser's limit, and an unknown
    // apiVersion: each acknowledged (the API server must not retry them) and counted.
    assert_eq!(
        server
            .post(&b"{\"kind\":\"EventList\",\"items\":[{"[..])
            .await,
        200
    );
    assert_eq!(
        server
            .post(
                b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"verb\":\"get\xff\xfe\"}"
                    .to_vec()
            )
            .await,
        200
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(server.post(deep).await, 200);
    let unknown_version =
        json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v9", "items": []});
    assert_eq!(server.post(unknown_version.to_string()).await, 200);
    // Over the body limit: 413, counted as a drop.
    // The server answers from the declared length without reading the body, so the client
    // may see the connection closed while it still sends: either way it was refused.
    match server.try_post(vec![b' '; 2 << 20]).await {
        Ok(status) => assert_eq!(status, 413),
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    // One bad item among good ones: the good ones are evaluated.
    let batch = list(vec![
        privileged_pod("good-1", "miner-1"),
        json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": 42, "user": "nobody"}),
        json!("not an event"),
        privileged_pod("good-2", "miner-2"),
    ]);
    assert_eq!(server.post(batch).await, 200);

    let text = server.wait_processed(5.0).await;
    let errors = family(&text, "palisade_detect_parse_errors_total");
    let total_errors: f64 = errors.values().sum();
    assert!(total_errors >= 5.0, "{errors:?}\n{text}");
    for kind in [
        "malformed_json",
        "invalid_utf8",
        "too_deep",
        "unknown_version",
    ] {
        assert!(
            errors.contains_key(&format!("kind=\"{kind}\"")),
            "no {kind} in {errors:?}"
        );
    }
    assert_eq!(
        sample(
            &text,
            "palisade_detect_dropped_batches_total",
            "reason=\"too_large\""
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "palisade_detect_batches_received_total", ""),
        Some(5.0)
    );
    assert!(sample(&text, "palisade_detect_ack_latency_seconds_count", "") >= Some(5.0));
    let (report, output) = server.stop().await;
    assert!(report.drained);
    let alerts = output.alerts();
    let privileged = rule_alerts(&alerts, "K8S_PrivilegedContainer");
    assert_eq!(privileged.len(), 2, "{alerts:#?}");
    let ids: Vec<&str> = privileged
        .iter()
        .flat_map(|a| a["event.id"].as_array().unwrap())
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ids, ["good-1", "good-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_spools_and_drains_in_order_and_restart_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let options = || ServeOptions {
        queue: QueueLimits {
            max_batches: 2,
            max_bytes: 1 << 20,
        },
        spool_dir: Some(spool_dir.clone()),
        spool: SpoolLimits {
            max_bytes: 1 << 20,
            segment_bytes: 4096,
        },
        drain_timeout: Duration::from_millis(200),
        ..ServeOptions::default()
    };
    let server = start(options()).await;
    server.server_ingest.set_paused(true);
    for i in 0..10 {
        let body = list(vec![privileged_pod(
            &format!("id-{i}"),
            &format!("pod-{i:02}"),
        )]);
        assert_eq!(server.post(body).await, 200);
    }
    let text = server.metrics().await;
    assert_eq!(
        sample(&text, "palisade_detect_queue_batches", ""),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "palisade_detect_batches_spooled_total", ""),
        Some(8.0)
    );
    assert!(sample(&text, "palisade_detect_spool_bytes", "").unwrap() > 8.0 * 500.0);
    assert!(sample(&text, "palisade_detect_spool_segments", "").unwrap() >= 2.0);
    assert_eq!(
        family(&text, "palisade_detect_dropped_batches_total")
            .values()
            .sum::<f64>(),
        0.0
    );

    server.server_ingest.set_paused(false);
    let text = server.wait_processed(10.0).await;
    assert_eq!(
        sample(&text, "palisade_detect_batches_unspooled_total", ""),
        Some(8.0)
    );
    assert_eq!(sample(&text, "palisade_detect_spool_bytes", ""), Some(0.0));
    // Back to memory once the spool is empty.
    assert_eq!(
        server
            .post(list(vec![privileged_pod("id-10", "pod-10")]))
            .await,
        200
    );
    let text = server.wait_processed(11.0).await;
    assert_eq!(
        sample(&text, "palisade_detect_batches_queued_total", ""),
        Some(3.0)
    );
    let (_, output) = server.stop().await;
    let names: Vec<String> = rule_alerts(&output.alerts(), "K8S_PrivilegedContainer")
        .iter()
        .map(|a| {
            a["orchestrator.resource.name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let expected: Vec<String> = (0..=10).map(|i| format!("pod-{i:02}")).collect();
    assert_eq!(names, expected, "alerts out of arrival order");

    // Shutdown while paused: what is in memory goes to the spool, and the next start
    // processes it.
    let server = start(options()).await;
    server.server_ingest.set_paused(true);
    for i in 20..25 {
        let body = list(vec![privileged_pod(
            &format!("id-{i}"),
            &format!("pod-{i}"),
        )]);
        assert_eq!(server.post(body).await, 200);
    }
    let (report, _) = server.stop().await;
    assert!(
        report.spooled_at_exit + report.batches_processed >= 2,
        "{report:?}"
    );
    let leftover = spool_files(&spool_dir);
    let server = start(options()).await;
    let text = server
        .wait_processed(5.0 - report.batches_processed as f64)
        .await;
    assert_eq!(sample(&text, "palisade_detect_spool_bytes", ""), Some(0.0));
    let (_, output) = server.stop().await;
    let mut names: Vec<String> = rule_alerts(&output.alerts(), "K8S_PrivilegedContainer")
        .iter()
        .map(|a| {
            a["orchestrator.resource.name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    names.sort();
    assert!(leftover > 0);
    assert_eq!(
        names.len() as u64 + report.batches_processed,
        5,
        "{names:?} {report:?}"
    );
}

fn spool_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_spool_drops_are_counted_and_still_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(ServeOptions {
        queue: QueueLimits {
            max_batches: 1,
            max_bytes: 1 << 20,
        },
        spool_dir: Some(dir.path().to_path_buf()),
        spool: SpoolLimits {
            max_bytes: 3000,
            segment_bytes: 1024,
        },
        ..ServeOptions::default()
    })
    .await;
    server.server_ingest.set_paused(true);
    let body = list(vec![privileged_pod("x", "pod-x")]);
    let frame = body.len() + 16;
    let fit = 3000 / frame;
    for _ in 0..(1 + fit + 3) {
        assert_eq!(server.post(body.clone()).await, 200);
    }
    let text = server.metrics().await;
    assert_eq!(
        sample(
            &text,
            "palisade_detect_dropped_batches_total",
            "reason=\"spool_full\""
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "palisade_detect_dropped_bytes_total",
            "reason=\"spool_full\""
        ),
        Some(3.0 * body.len() as f64)
    );
    assert_eq!(
        sample(&text, "palisade_detect_batches_spooled_total", ""),
        Some(fit as f64)
    );
    server.server_ingest.set_paused(false);
    server.wait_processed((1 + fit) as f64).await;
    let (report, _) = server.stop().await;
    assert_eq!(report.batches_processed, (1 + fit) as u64);
}
