//! End to end with a real kube-apiserver sending its audit events through the audit webhook
//! backend to `palisade detect serve` over TLS.
//!
//! Self-contained: the test starts `detect serve` (generated certificate), writes the webhook
//! kubeconfig and audit policy with `detect webhook-config`, and starts its own etcd and its own
//! kube-apiserver from the binary `scripts/infra/kube-apiserver.sh build` caches in
//! `$PALISADE_INFRA/bin` (default /var/tmp/palisade-infra), each on free loopback ports, so it
//! never disturbs the shared instance. It then creates a benign pod, a privileged pod and a
//! cluster-admin ClusterRoleBinding through the API and waits for the alerts.
//!
//! Skips (saying SKIP) when the binary or etcd is missing, unless PALISADE_REQUIRE_KUBE=1.

use palisade_testkit::{Cluster, ClusterTools, Proc, log_tail};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Api {
    base: String,
    token: String,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Api {
    fn new(port: u16, token: &str) -> Api {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Api {
            base: format!("https://127.0.0.1:{port}"),
            token: token.to_string(),
            client,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, String) {
        self.rt.block_on(async {
            let mut request = self
                .client
                .request(method, format!("{}{path}", self.base))
                .bearer_auth(&self.token);
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_string());
            }
            match request.send().await {
                Ok(response) => {
                    let code = response.status().as_u16();
                    (code, response.text().await.unwrap_or_default())
                }
                Err(e) => (0, e.to_string()),
            }
        })
    }

    fn create(&self, path: &str, body: &Value) {
        let (code, text) = self.call(reqwest::Method::POST, path, Some(body));
        assert_eq!(code, 201, "POST {path}: {text}");
    }
}

fn pod(name: &str, privileged: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "detect-e2e"},
        "spec": {"containers": [{
            "name": "app", "image": "registry.example.com/shop/web:2.3.1",
            "securityContext": {"privileged": privileged}
        }]}
    })
}

fn alerts(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn has_alert(alerts: &[Value], rule: &str, resource: &str) -> bool {
    alerts
        .iter()
        .any(|a| a["rule.id"] == rule && a["orchestrator.resource.name"] == resource)
}

#[test]
fn kube_apiserver_audit_webhook_raises_alerts() {
    let Some(tools) = ClusterTools::find() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let palisade = env!("CARGO_BIN_EXE_palisade");

    // 1. detect serve with a generated certificate.
    let alerts_path = d.join("alerts.jsonl");
    let mut serve = Proc::spawn(
        "palisade detect serve",
        Command::new(palisade)
            .args(["detect", "serve", "--listen", "127.0.0.1:0"])
            .arg("--tls-self-signed")
            .arg(d.join("tls"))
            .args(["--dns-name", "127.0.0.1", "--dns-name", "localhost"])
            .arg("--output")
            .arg(&alerts_path)
            .args(["--window", "10m"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let stderr = serve.child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut port = None;
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("palisade detect: listening on https://127.0.0.1:") {
            port = rest.trim_end_matches("/audit").parse::<u16>().ok();
            break;
        }
        seen.push(line);
    }
    let port = port.unwrap_or_else(|| panic!("no listening line: {seen:?}"));
    let (stderr_tx, stderr_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = stderr_tx.send(line);
        }
    });

    // 2. The webhook kubeconfig and the audit policy, as a user would write them.
    let url = format!("https://127.0.0.1:{port}/audit");
    let out = Command::new(palisade)
        .args(["detect", "webhook-config", "--url", &url, "--ca"])
        .arg(d.join("tls/ca.crt"))
        .arg("--kubeconfig-out")
        .arg(d.join("webhook.kubeconfig"))
        .arg("--policy-out")
        .arg(d.join("policy.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // 3. Our own etcd and kube-apiserver on free ports, sending audit events to the webhook.
    let audit_args = [
        format!("--audit-policy-file={}", d.join("policy.yaml").display()),
        format!(
            "--audit-webhook-config-file={}",
            d.join("webhook.kubeconfig").display()
        ),
        "--audit-webhook-batch-max-wait=1s".to_string(),
    ];
    let mut cluster = Cluster::start(d, &tools, "detect-e2e", &audit_args);
    let api = Api::new(cluster.port, &cluster.token);
    let log_tail = || log_tail(&cluster.log, 30);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (code, body) = api.call(reqwest::Method::GET, "/readyz", None);
        if code == 200 && body.trim() == "ok" {
            break;
        }
        if let Ok(Some(status)) = cluster.apiserver.child.try_wait() {
            panic!("kube-apiserver exited ({status}):\n{}", log_tail());
        }
        assert!(
            Instant::now() < deadline,
            "kube-apiserver not ready:\n{}",
            log_tail()
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // 4. Benign pod first, then the attacks.
    api.create(
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "detect-e2e"}}),
    );
    api.create(
        "/api/v1/namespaces/detect-e2e/pods",
        &pod("benign-web", false),
    );
    api.create(
        "/api/v1/namespaces/detect-e2e/pods",
        &pod("privileged-shell", true),
    );
    api.create(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "e2e-backdoor"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "detect-e2e"}]
        }),
    );

    // 5. The alerts arrive (batch max wait 1 s, then the immediate first alert of each rule).
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        let found = alerts(&alerts_path);
        if has_alert(&found, "K8S_PrivilegedContainer", "privileged-shell")
            && has_alert(&found, "K8S_ClusterAdminBinding", "e2e-backdoor")
        {
            break found;
        }
        if Instant::now() > deadline {
            let metrics = api.rt.block_on(async {
                let client = reqwest::Client::builder()
                    .tls_danger_accept_invalid_certs(true)
                    .build()
                    .unwrap();
                match client
                    .get(format!("https://127.0.0.1:{port}/metrics"))
                    .send()
                    .await
                {
                    Ok(r) => r.text().await.unwrap_or_default(),
                    Err(e) => e.to_string(),
                }
            });
            let serve_log: Vec<String> = stderr_rx.try_iter().collect();
            panic!(
                "alerts did not arrive; got {found:#?}\nserve stderr: {serve_log:?}\nmetrics:\n{metrics}\napiserver:\n{}",
                log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let privileged = found
        .iter()
        .find(|a| a["rule.id"] == "K8S_PrivilegedContainer")
        .unwrap();
    assert_eq!(privileged["user.name"], cluster.user.as_str());
    assert_eq!(privileged["orchestrator.namespace"], "detect-e2e");
    assert!(
        privileged["event.id"]
            .as_array()
            .is_some_and(|ids| !ids.is_empty())
    );
    assert!(
        privileged["threat.technique.id"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "T1610" || t == "T1611"))
    );

    // The benign pod went through the same webhook before the privileged one: no alert for it.
    std::thread::sleep(Duration::from_secs(2));
    let found = alerts(&alerts_path);
    assert!(
        !found
            .iter()
            .any(|a| a["rule.id"] == "K8S_PrivilegedContainer"
                && a["orchestrator.resource.name"] == "benign-web"),
        "privileged alert for the benign pod: {found:#?}"
    );

    // Real API-server events parse without errors and nothing was dropped.
    let metrics = api.rt.block_on(async {
        let client = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        client
            .get(format!("https://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(-1.0)
    };
    assert!(
        value("palisade_detect_events_received_total") >= 4.0,
        "{metrics}"
    );
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("palisade_detect_parse_errors_total{")),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .filter(|l| l.starts_with("palisade_detect_dropped_batches_total{"))
            .all(|l| l.ends_with(" 0")),
        "{metrics}"
    );

    // 6. Graceful stop on SIGTERM.
    drop(cluster.apiserver);
    let status = Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(status) = serve.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "detect serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "{exit}");
    let serve_log: Vec<String> = stderr_rx.try_iter().collect();
    assert!(
        serve_log
            .iter()
            .any(|l| l.contains("palisade detect: stopped")),
        "{serve_log:?}"
    );
    drop(cluster.etcd);
}
