//! End to end with a real kube-apiserver (`PALISADE_KUBECONFIG`, started by scripts/test.sh or
//! `scripts/infra/kube-apiserver.sh start`): `palisade admission serve --self-signed` on a
//! loopback port, registered with a ValidatingWebhookConfiguration that only selects this
//! test's namespace; the API server calls it over TLS for pod creations.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../palisade-policy/tests/webhook_policies")
}

struct Api {
    server: String,
    token: String,
}

struct Reply {
    code: u16,
    headers: String,
    body: String,
}

impl Api {
    fn from_kubeconfig(path: &str) -> Api {
        let text = std::fs::read_to_string(path).expect("read kubeconfig");
        let server = text
            .lines()
            .find_map(|l| l.split("server: \"").nth(1))
            .and_then(|rest| rest.split('"').next())
            .expect("server in kubeconfig")
            .to_string();
        Api {
            server,
            token: "admin-token".into(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let dir = tempfile::tempdir().unwrap();
        let headers = dir.path().join("headers");
        let mut cmd = Command::new("curl");
        cmd.args(["-sk", "-o", "-", "-w", "\n%{http_code}", "-X", method])
            .arg("-D")
            .arg(&headers)
            .arg(format!("{}{}", self.server, path))
            .args(["-H", &format!("Authorization: Bearer {}", self.token)])
            .args(["-H", "Content-Type: application/json"]);
        if let Some(b) = body {
            cmd.args(["--data-binary", &b.to_string()]);
        }
        let out = cmd.output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        Reply {
            code: code.trim().parse().unwrap_or(0),
            headers: std::fs::read_to_string(&headers).unwrap_or_default(),
            body: body.to_string(),
        }
    }
}

struct Served {
    child: Child,
    port: u16,
    ca: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let log = dir.path().join("decisions.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "admission",
            "serve",
            "--self-signed",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--dns-name", "127.0.0.1", "--dns-name", "localhost"])
        .arg("-p")
        .arg(policies())
        .arg("--ca-bundle-out")
        .arg(&ca)
        .arg("--decision-log")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start palisade admission serve");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut port = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("palisade admission: listening on https://127.0.0.1:")
        {
            port = rest.trim_end_matches("/validate").parse().ok();
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        port: port.expect("listening line on stderr"),
        ca,
        log,
        _dir: dir,
    }
}

fn pod(name: &str, namespace: &str, privileged: bool, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [{
            "name": "app", "image": "registry.example.com/shop/web:2.3.1",
            "securityContext": {"privileged": privileged}
        }]}
    })
}

#[test]
fn real_api_server_calls_the_webhook() {
    let Ok(kubeconfig) = std::env::var("PALISADE_KUBECONFIG") else {
        if std::env::var("PALISADE_REQUIRE_KUBE").as_deref() == Ok("1") {
            panic!("PALISADE_REQUIRE_KUBE=1 but PALISADE_KUBECONFIG is not set");
        }
        eprintln!(
            "SKIP: PALISADE_KUBECONFIG not set (scripts/test.sh starts a real kube-apiserver)"
        );
        return;
    };
    let api = Api::from_kubeconfig(&kubeconfig);
    let suffix = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 100_000
    );
    let served = serve();

    // The registration, as `admission webhook-config` prints it, for this test's namespace only.
    let name = format!("palisade-e2e-{suffix}");
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "admission",
            "webhook-config",
            "--format",
            "json",
            "--failure-policy",
            "fail",
        ])
        .arg("-p")
        .arg(policies())
        .args(["--name", &name])
        .args([
            "--url",
            &format!("https://127.0.0.1:{}/validate", served.port),
        ])
        .arg("--ca-bundle")
        .arg(&served.ca)
        .args(["--namespace-label", &format!("palisade-e2e={suffix}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reply = api.call(
        "POST",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        Some(&config),
    );
    assert_eq!(reply.code, 201, "{}", reply.body);
    let cleanup = Cleanup {
        api: &api,
        paths: vec![
            format!("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{name}"),
            format!("/api/v1/namespaces/{name}"),
        ],
    };

    let namespace = name.clone();
    let reply = api.call(
        "POST",
        "/api/v1/namespaces",
        Some(&json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"palisade-e2e": suffix}}})),
    );
    assert_eq!(reply.code, 201, "{}", reply.body);
    let pods = format!("/api/v1/namespaces/{namespace}/pods");

    // The API server picks up a new webhook configuration asynchronously: probe with dry runs
    // (the webhook declares no side effects, so it is called for them too).
    let privileged = pod(
        "privileged",
        &namespace,
        true,
        json!({"owner": "e2e", "team": "t"}),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let denied = loop {
        let reply = api.call("POST", &format!("{pods}?dryRun=All"), Some(&privileged));
        if reply.code != 201 {
            break reply;
        }
        assert!(Instant::now() < deadline, "the webhook was never called");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(denied.code, 403, "{}", denied.body);
    let status: Value = serde_json::from_str(&denied.body).unwrap();
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "admission webhook \"{name}.palisade.io\" denied the request"
        )) && message.contains("[no-privileged] privileged container app is not allowed"),
        "{message}"
    );
    // For real, not only as a dry run.
    let reply = api.call("POST", &pods, Some(&privileged));
    assert_eq!(reply.code, 403, "{}", reply.body);

    // A compliant pod is admitted without warnings.
    let compliant = pod(
        "compliant",
        &namespace,
        false,
        json!({"owner": "e2e", "team": "t"}),
    );
    let reply = api.call("POST", &pods, Some(&compliant));
    assert_eq!(reply.code, 201, "{}", reply.body);
    assert!(
        !reply.headers.to_ascii_lowercase().contains("\nwarning:"),
        "{}",
        reply.headers
    );

    // A pod without the owner label: admitted, and the `warn` constraint's message reaches the
    // client as an HTTP Warning header. The missing team label (dryrun) is only recorded.
    let unowned = pod("unowned", &namespace, false, json!({}));
    let reply = api.call("POST", &pods, Some(&unowned));
    assert_eq!(reply.code, 201, "{}", reply.body);
    let warning = reply
        .headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("warning:"))
        .unwrap_or_else(|| panic!("no Warning header: {}", reply.headers));
    assert!(
        warning.contains("[owner-label] Pod unowned has no label owner"),
        "{warning}"
    );
    assert!(!reply.headers.contains("team-label"), "{}", reply.headers);

    // Another namespace (not selected) is not sent to the webhook.
    let reply = api.call(
        "POST",
        "/api/v1/namespaces/default/pods?dryRun=All",
        Some(&pod(&format!("free-{suffix}"), "default", true, json!({}))),
    );
    assert_eq!(reply.code, 201, "{}", reply.body);

    // The decision log recorded what the API server sent, with the requesting user.
    let deadline = Instant::now() + Duration::from_secs(5);
    let records: Vec<Value> = loop {
        let text = std::fs::read_to_string(&served.log).unwrap_or_default();
        let records: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if records.iter().any(|r| r["name"] == "unowned") || Instant::now() > deadline {
            break records;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let unowned = records
        .iter()
        .find(|r| r["name"] == "unowned")
        .expect("decision for unowned");
    assert_eq!(unowned["decision"], "allow");
    assert_eq!(unowned["user"], "admin");
    assert_eq!(unowned["namespace"], namespace.as_str());
    let actions: Vec<&str> = unowned["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"warn") && actions.contains(&"dryrun"),
        "{unowned}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["name"] == "privileged" && r["decision"] == "deny")
    );
    drop(cleanup);
}

/// Deletes what the test created, also when an assertion failed.
struct Cleanup<'a> {
    api: &'a Api,
    paths: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for path in &self.paths {
            let _ = self.api.call("DELETE", path, None);
        }
    }
}
