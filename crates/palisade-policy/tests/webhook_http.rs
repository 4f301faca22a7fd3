//! The webhook's HTTP, TLS, failure-policy and metrics layers over a real TLS connection, with a
//! small stand-in policy engine (the engine itself is exercised in webhook_engine.rs).
#![cfg(feature = "server")]

mod webhook_support;

use palisade_policy::review::ReviewRequest;
use palisade_policy::webhook::{
    Action, CertFiles, DecisionLog, EvaluationFailure, FailurePolicy, Finding, Metrics, Policies,
    SelfSigned, WebhookOptions,
};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use webhook_support::{pod, pod_review, post, start};

/// Denies privileged containers, warns about a missing `owner` label, records (dryrun) a
/// missing `team` label; sleeps for the annotation `test/sleep-ms`, panics on `test/panic`.
#[derive(Default)]
struct StandIn {
    constraints: usize,
    /// How many evaluations have started sleeping: lets a test wait for a worker to be busy.
    sleeping: Arc<AtomicUsize>,
}

impl Policies for StandIn {
    type Evaluator = u64;

    fn evaluator(&self) -> u64 {
        0
    }

    fn evaluate(
        &self,
        calls: &mut u64,
        request: &ReviewRequest,
    ) -> Result<Vec<Finding>, EvaluationFailure> {
        *calls += 1;
        let failure = |message: &str| EvaluationFailure {
            message: message.into(),
            timed_out: false,
        };
        let object = request.object().ok_or(failure("no object"))?;
        let annotations = &object["metadata"]["annotations"];
        if let Some(ms) = annotations["test/sleep-ms"].as_str() {
            self.sleeping.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
        }
        if annotations["test/panic"].is_string() {
            panic!("stand-in engine panics on request");
        }
        if annotations["test/error"].is_string() {
            return Err(failure("template k8sbroken: rego evaluation error"));
        }
        let mut findings = Vec::new();
        let finding = |name: &str, action, message: String| Finding {
            constraint_kind: "K8sStandIn".into(),
            constraint_name: name.into(),
            action,
            message,
        };
        for container in object["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if container["securityContext"]["privileged"] == json!(true) {
                findings.push(finding(
                    "no-privileged",
                    Action::Deny,
                    format!(
                        "privileged container is not allowed: {}",
                        container["name"].as_str().unwrap_or("")
                    ),
                ));
            }
        }
        let labels = &object["metadata"]["labels"];
        if labels["owner"].is_null() {
            findings.push(finding(
                "owner-label",
                Action::Warn,
                "label owner is required".into(),
            ));
        }
        if labels["team"].is_null() {
            findings.push(finding(
                "team-label",
                Action::Dryrun,
                "label team is required".into(),
            ));
        }
        Ok(findings)
    }

    fn template_count(&self) -> usize {
        1
    }

    fn constraint_count(&self) -> usize {
        self.constraints
    }
}

fn standin() -> Option<StandIn> {
    Some(StandIn {
        constraints: 3,
        ..StandIn::default()
    })
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);
impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn v1_and_v1beta1_deny_warn_dryrun_and_decision_log() {
    let metrics = Arc::new(Metrics::new());
    let sink = Sink::default();
    let log = DecisionLog::with_writer(Box::new(sink.clone()), Arc::clone(&metrics)).unwrap();
    let server = start(standin(), WebhookOptions::default(), Some(log), metrics).await;

    // v1, privileged, no labels: denied (403) listing the constraint, warning, dryrun recorded.
    let (status, body) = post(
        &server,
        &pod_review(
            "admission.k8s.io/v1",
            "uid-v1",
            pod("priv", true, json!({})),
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(body["kind"], "AdmissionReview");
    let response = &body["response"];
    assert_eq!(response["uid"], "uid-v1");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(
        response["status"]["message"],
        "[no-privileged] privileged container is not allowed: app"
    );
    assert_eq!(
        response["warnings"],
        json!(["[owner-label] label owner is required"])
    );

    // v1beta1, compliant but for the dryrun label: allowed, answered in v1beta1.
    let (status, body) = post(
        &server,
        &pod_review(
            "admission.k8s.io/v1beta1",
            "uid-beta",
            pod("ok", false, json!({"owner": "alice"})),
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(body["response"]["uid"], "uid-beta");
    assert_eq!(body["response"]["allowed"], true);
    assert!(body["response"].get("warnings").is_none());
    assert!(body["response"].get("status").is_none());

    let metrics = server.metrics.render();
    assert!(metrics.contains(
        "palisade_admission_requests_total{version=\"v1\",operation=\"CREATE\",kind=\"Pod\",decision=\"deny\"} 1"
    ), "{metrics}");
    assert!(metrics.contains(
        "palisade_admission_requests_total{version=\"v1beta1\",operation=\"CREATE\",kind=\"Pod\",decision=\"allow\"} 1"
    ));
    assert!(metrics.contains(
        "palisade_admission_violations_total{constraint_kind=\"K8sStandIn\",constraint=\"team-label\",enforcement_action=\"dryrun\"} 2"
    ));
    assert!(metrics.contains("palisade_admission_request_duration_seconds_count 2"));

    // The decision log has both, with violations and the user.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let lines: Vec<Value> = loop {
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        if text.lines().count() >= 2 {
            break text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        }
        assert!(std::time::Instant::now() < deadline, "decision log: {text}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let denied = lines.iter().find(|l| l["uid"] == "uid-v1").unwrap();
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["kind"], "v1/Pod");
    assert_eq!(denied["namespace"], "team-a");
    assert_eq!(denied["name"], "priv");
    assert_eq!(denied["operation"], "CREATE");
    assert_eq!(denied["user"], "alice@example.com");
    assert_eq!(denied["violations"].as_array().unwrap().len(), 3);
    assert!(denied["latency_ms"].as_f64().unwrap() > 0.0);
    let allowed = lines.iter().find(|l| l["uid"] == "uid-beta").unwrap();
    assert_eq!(allowed["decision"], "allow");
    assert_eq!(allowed["violations"][0]["action"], "dryrun");
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let options = WebhookOptions {
        max_request_bytes: 64 * 1024,
        ..WebhookOptions::default()
    };
    let server = start(standin(), options, None, Arc::new(Metrics::new())).await;
    let url = format!("{}/validate", server.base);

    let response = server
        .client
        .post(&url)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("malformed AdmissionReview") && text.contains("not JSON"),
        "{text}"
    );

    let response = server
        .client
        .post(&url)
        .json(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().await.unwrap().contains("request"));

    // Declared length over the limit.
    let mut big = pod("big", false, json!({"owner": "x"}));
    big["metadata"]["annotations"] = json!({"blob": "x".repeat(100 * 1024)});
    let response = server
        .client
        .post(&url)
        .json(&pod_review("admission.k8s.io/v1", "big", big.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let text = response.text().await.unwrap();
    assert!(text.contains("exceeds the limit of 65536 bytes"), "{text}");

    // Streamed (chunked, no Content-Length) over the limit.
    let bytes = serde_json::to_vec(&pod_review("admission.k8s.io/v1", "big", big)).unwrap();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    let response = server
        .client
        .post(&url)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);

    let metrics = server.metrics.render();
    assert!(
        metrics.contains("palisade_admission_errors_total{cause=\"malformed_request\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("palisade_admission_errors_total{cause=\"request_too_large\"} 2"),
        "{metrics}"
    );

    // Wrong method and path.
    let response = server.client.get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
}

fn slow_pod(ms: u64) -> Value {
    let mut p = pod("slow", false, json!({"owner": "a", "team": "b"}));
    p["metadata"]["annotations"] = json!({"test/sleep-ms": ms.to_string()});
    p
}

#[tokio::test]
async fn timeout_answers_with_the_failure_policy() {
    for policy in [FailurePolicy::Ignore, FailurePolicy::Fail] {
        let options = WebhookOptions {
            timeout: Duration::from_millis(200),
            failure_policy: policy,
            workers: 1,
            ..WebhookOptions::default()
        };
        let server = start(standin(), options, None, Arc::new(Metrics::new())).await;
        let started = std::time::Instant::now();
        let (status, body) = post(
            &server,
            &pod_review("admission.k8s.io/v1", "slow", slow_pod(4000)),
        )
        .await;
        let elapsed = started.elapsed();
        assert_eq!(status, 200);
        assert!(
            // Long before the evaluation ends (4 s), with room for a loaded machine.
            elapsed < Duration::from_millis(3000),
            "answered after {elapsed:?}"
        );
        let response = &body["response"];
        assert_eq!(response["uid"], "slow");
        match policy {
            FailurePolicy::Ignore => {
                assert_eq!(response["allowed"], true);
                let warning = response["warnings"][0].as_str().unwrap();
                assert!(warning.contains("did not finish within 200ms"), "{warning}");
            }
            FailurePolicy::Fail => {
                assert_eq!(response["allowed"], false);
                assert_eq!(response["status"]["code"], 500);
                let message = response["status"]["message"].as_str().unwrap();
                assert!(
                    message.contains("did not finish") && message.contains("Fail"),
                    "{message}"
                );
            }
        }
        assert!(
            server
                .metrics
                .render()
                .contains("palisade_admission_errors_total{cause=\"timeout\"} 1")
        );
    }
}

/// Polls `done` every 5 ms; fails the test after 20 s.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never saw {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn full_queue_engine_error_and_panic_get_the_failure_policy() {
    let options = WebhookOptions {
        timeout: Duration::from_secs(8),
        failure_policy: FailurePolicy::Fail,
        workers: 1,
        queue_capacity: 1,
        ..WebhookOptions::default()
    };
    let sleeping = Arc::new(AtomicUsize::new(0));
    let policies = StandIn {
        constraints: 3,
        sleeping: Arc::clone(&sleeping),
    };
    let metrics = Arc::new(Metrics::new());
    let server = start(Some(policies), options, None, Arc::clone(&metrics)).await;
    // One evaluating, one queued, the third refused at once. Each step waits for the previous
    // one to be in place (the worker busy, then the queue holding one), so the order does not
    // depend on how fast the machine accepts connections.
    let slow = pod_review("admission.k8s.io/v1", "slow", slow_pod(2000));
    let busy = || sleeping.load(Ordering::SeqCst) == 1;
    let a = post(&server, &slow);
    let b = async {
        wait_until("the worker busy", busy).await;
        post(&server, &slow).await
    };
    let third = async {
        wait_until("the worker busy", busy).await;
        wait_until("one request queued", || metrics.queue_depth() == 1).await;
        post(
            &server,
            &pod_review("admission.k8s.io/v1", "third", pod("x", false, json!({}))),
        )
        .await
    };
    let (a, b, third) = tokio::join!(a, b, third);
    assert_eq!(a.1["response"]["allowed"], true);
    assert_eq!(b.1["response"]["allowed"], true);
    assert_eq!(third.1["response"]["allowed"], false);
    assert_eq!(third.1["response"]["status"]["code"], 500);
    assert!(
        third.1["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("queue is full")
    );

    let mut broken = pod("e", false, json!({}));
    broken["metadata"]["annotations"] = json!({"test/error": "1"});
    let (_, body) = post(&server, &pod_review("admission.k8s.io/v1", "err", broken)).await;
    assert!(
        body["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("rego evaluation error")
    );

    let mut panics = pod("p", false, json!({}));
    panics["metadata"]["annotations"] = json!({"test/panic": "1"});
    let (_, body) = post(&server, &pod_review("admission.k8s.io/v1", "panic", panics)).await;
    assert_eq!(body["response"]["allowed"], false);
    assert!(
        body["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("internal error")
    );

    // The worker survived the panic.
    let (_, body) = post(
        &server,
        &pod_review(
            "admission.k8s.io/v1",
            "after",
            pod("ok", false, json!({"owner": "o"})),
        ),
    )
    .await;
    assert_eq!(body["response"]["allowed"], true);

    let metrics = server.metrics.render();
    for cause in ["queue_full", "evaluation_error", "internal"] {
        assert!(
            metrics.contains(&format!(
                "palisade_admission_errors_total{{cause=\"{cause}\"}} 1"
            )),
            "{cause}: {metrics}"
        );
    }
}

#[tokio::test]
async fn health_readiness_and_metrics_endpoints() {
    let server = start::<StandIn>(
        None,
        WebhookOptions::default(),
        None,
        Arc::new(Metrics::new()),
    )
    .await;
    let get = |path: &str| server.client.get(format!("{}{path}", server.base)).send();
    assert_eq!(get("/healthz").await.unwrap().status().as_u16(), 200);
    assert_eq!(get("/readyz").await.unwrap().status().as_u16(), 503);
    // Not ready: the failure policy answers.
    let (_, body) = post(
        &server,
        &pod_review("admission.k8s.io/v1", "early", pod("p", true, json!({}))),
    )
    .await;
    assert_eq!(body["response"]["allowed"], true);
    assert!(
        body["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("not loaded")
    );

    server
        .policies
        .send(Some(Arc::new(StandIn {
            constraints: 3,
            ..StandIn::default()
        })))
        .unwrap();
    let response = get("/readyz").await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.text().await.unwrap().contains("3 constraints"));
    let (_, body) = post(
        &server,
        &pod_review("admission.k8s.io/v1", "later", pod("p", true, json!({}))),
    )
    .await;
    assert_eq!(body["response"]["allowed"], false);

    // A new set: workers rebuild their evaluators, the gauges follow.
    server
        .policies
        .send(Some(Arc::new(StandIn {
            constraints: 5,
            ..StandIn::default()
        })))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let response = get("/metrics").await.unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    assert!(text.contains("palisade_policy_constraints 5"), "{text}");
    assert!(text.contains("palisade_policy_reloads_total 2"), "{text}");
    assert!(
        text.contains("palisade_admission_errors_total{cause=\"not_ready\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn certificate_reload_keeps_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let server = start(
        standin(),
        WebhookOptions::default(),
        None,
        Arc::new(Metrics::new()),
    )
    .await;
    std::fs::write(&cert, &server.ca.cert_pem).unwrap();
    std::fs::write(&key, &server.ca.key_pem).unwrap();
    // The files hold the pair the server serves; watch them with the server's resolver.
    let mut files = CertFiles::load(&cert, &key).unwrap();
    files.resolver = Arc::clone(&server.resolver);
    let watcher = files.watch(Duration::from_millis(50));

    let health = |client: reqwest::Client| {
        let url = format!("{}/healthz", server.base);
        async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
    };
    assert_eq!(health(server.client.clone()).await.unwrap(), 200);

    // A new CA and pair: after the reload, a client trusting the new CA connects, the old one not.
    let next = SelfSigned::generate(&["localhost".into()], 1).unwrap();
    std::fs::write(&key, &next.key_pem).unwrap();
    std::fs::write(&cert, &next.cert_pem).unwrap();
    let new_client = webhook_support::client(&next.ca_pem);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while health(new_client.clone()).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "new certificate not served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fresh_old = webhook_support::client(&server.ca.ca_pem);
    assert!(health(fresh_old).await.is_err());

    // A broken pair (new cert, stale key) is refused: the previous pair keeps serving.
    let third = SelfSigned::generate(&["localhost".into()], 1).unwrap();
    std::fs::write(&cert, &third.cert_pem).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        health(webhook_support::client(&next.ca_pem)).await.unwrap(),
        200
    );
    assert!(
        health(webhook_support::client(&third.ca_pem))
            .await
            .is_err()
    );
    watcher.abort();
}
