//! `palisade detect` through the binary: offline audit (formats, exit codes, parse-error
//! summary), follow mode across rotation, webhook-config and rules.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn palisade() -> Command {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
}

fn privileged_pod(id: &str, name: &str, time: &str) -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": id, "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/shop/pods", "verb": "create",
        "user": {"username": "mallory@example.com", "groups": ["system:authenticated"]},
        "sourceIPs": ["203.0.113.7"], "userAgent": "kubectl/v1.29.2",
        "objectRef": {"resource": "pods", "namespace": "shop", "name": name, "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "securityContext": {"privileged": true}}]}},
        "requestReceivedTimestamp": time, "stageTimestamp": time
    })
}

fn benign_get(id: &str) -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": id, "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/shop/configmaps/web", "verb": "get",
        "user": {"username": "system:node:node-1", "groups": ["system:nodes"]},
        "sourceIPs": ["10.0.0.7"], "userAgent": "kubelet/v1.29.2",
        "objectRef": {"resource": "configmaps", "namespace": "shop", "name": "web", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2026-01-15T08:00:00Z", "stageTimestamp": "2026-01-15T08:00:00Z"
    })
}

fn lines(values: &[Value]) -> String {
    values.iter().map(|v| v.to_string() + "\n").collect()
}

#[test]
fn audit_exit_codes_formats_and_aggregation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    // The same rule, subject and resource three times within the window: one alert, count 3.
    let mut events = vec![benign_get("b-1")];
    for (i, t) in ["08:00:01", "08:00:05", "08:01:00"].iter().enumerate() {
        events.push(privileged_pod(
            &format!("p-{i}"),
            "shell",
            &format!("2026-01-15T{t}Z"),
        ));
    }
    let mut text = lines(&events);
    text.push_str("{not json\n");
    text.push_str("\u{1}garbage\n");
    std::fs::write(&log, text).unwrap();

    let out = palisade()
        .args(["detect", "audit", "--format", "json"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let privileged: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["rule.id"] == "K8S_PrivilegedContainer")
        .collect();
    assert_eq!(privileged.len(), 1, "{alerts:#?}");
    assert_eq!(privileged[0]["event.count"], 3);
    assert_eq!(privileged[0]["event.id"], json!(["p-0", "p-1", "p-2"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("4 events"), "{stderr}");
    assert!(stderr.contains("2 parse errors"), "{stderr}");
    assert!(stderr.contains("malformed_json"), "{stderr}");

    // --fail-on above every alert's severity: 0. Table and CEF render.
    let out = palisade()
        .args(["detect", "audit", "--fail-on", "critical"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("K8S_PrivilegedContainer"), "{table}");
    let out = palisade()
        .args(["detect", "audit", "-", "--format", "cef"])
        .stdin(std::fs::File::open(&log).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .any(|l| l.starts_with("CEF:0|Palisade|Palisade|")
                && l.contains("|K8S_PrivilegedContainer|"))
    );

    // Only benign events: 0; unreadable input and bad rules: 2.
    let quiet = dir.path().join("quiet.log");
    std::fs::write(&quiet, lines(&[benign_get("b-2")])).unwrap();
    let out = palisade()
        .args(["detect", "audit"])
        .arg(&quiet)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = palisade()
        .args(["detect", "audit", "/nonexistent/audit.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("bad.yaml"), "rules:\n  - id: X\n    bogus: 1\n").unwrap();
    let out = palisade()
        .args(["detect", "audit", "--rules"])
        .arg(&rules)
        .arg(&quiet)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml"));
    // A file with no readable audit event at all (the wrong file) is an error, not "no alerts".
    let wrong = dir.path().join("wrong.log");
    std::fs::write(&wrong, "not json\n{\"broken\n").unwrap();
    let out = palisade()
        .args(["detect", "audit"])
        .arg(&wrong)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no audit event could be read"));
}

#[test]
fn follow_survives_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    std::fs::write(
        &log,
        lines(&[privileged_pod("f-1", "first", "2026-01-15T08:00:00Z")]),
    )
    .unwrap();
    let mut child = palisade()
        .args([
            "detect", "audit", "--follow", "--format", "json", "--window", "1s",
        ])
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let wait_for = |name: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(alert) = rx.recv_timeout(Duration::from_millis(200))
                && alert["orchestrator.resource.name"] == name
            {
                return;
            }
        }
        panic!("no alert for {name}");
    };
    // Windowed offline aggregation: an alert is written when its window closes (event time),
    // so each probe is followed by a later event that closes it.
    let append = |values: &[Value]| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(lines(values).as_bytes()).unwrap();
    };
    append(&[
        benign_get_at("f-2", "2026-01-15T08:00:10Z"),
        privileged_pod("f-3", "second", "2026-01-15T08:00:20Z"),
        privileged_pod("f-4", "closer", "2026-01-15T08:00:30Z"),
    ]);
    wait_for("first");
    wait_for("second");
    // Rotation by rename, then a new file.
    std::fs::rename(&log, dir.path().join("audit.log.1")).unwrap();
    std::fs::write(
        &log,
        lines(&[
            privileged_pod("f-5", "after-rotation", "2026-01-15T08:01:00Z"),
            privileged_pod("f-6", "closer-2", "2026-01-15T08:01:10Z"),
        ]),
    )
    .unwrap();
    wait_for("after-rotation");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("detect audit --follow did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Alerts fired: exit 1; the open aggregate of the last event was flushed at exit.
    assert_eq!(status.code(), Some(1));
    wait_for("closer-2");
}

fn benign_get_at(id: &str, time: &str) -> Value {
    let mut e = benign_get(id);
    e["requestReceivedTimestamp"] = json!(time);
    e["stageTimestamp"] = json!(time);
    e
}

#[test]
fn webhook_config_and_rules_listing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let out = palisade()
        .args([
            "detect",
            "webhook-config",
            "--url",
            "https://10.0.0.5:8444/audit",
            "--ca",
        ])
        .arg(&ca)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<&str> = text.split("\n---\n").collect();
    assert_eq!(docs.len(), 2, "{text}");
    assert!(docs[0].contains("server: \"https://10.0.0.5:8444/audit\""));
    assert!(docs[0].contains("certificate-authority-data:"));
    assert!(docs[1].contains("kind: Policy") && docs[1].contains("RequestReceived"));
    let out = palisade()
        .args(["detect", "webhook-config", "--url", "ftp://x", "--ca"])
        .arg(&ca)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = palisade()
        .args(["detect", "rules", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rules: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rules.len() >= 20, "{}", rules.len());
    for id in ["K8S_PrivilegedContainer", "K8S_ClusterAdminBinding"] {
        let rule = rules
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id}"));
        assert!(!rule["techniques"].as_array().unwrap().is_empty());
    }
}

#[test]
fn serve_writes_alerts_to_file_and_syslog_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("alerts.cef");
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut child = palisade()
        .args([
            "detect",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--format",
            "cef",
        ])
        .arg("--output")
        .arg(&output)
        .arg("--syslog")
        .arg(format!("udp://{}", syslog.local_addr().unwrap()))
        .arg("--spool-dir")
        .arg(dir.path().join("spool"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut port = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("palisade detect: listening on http://127.0.0.1:") {
            port = rest.trim_end_matches("/audit").parse::<u16>().ok();
            break;
        }
    }
    let port = port.expect("listening line");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let batch = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [
        benign_get("s-1"), privileged_pod("s-2", "from-webhook", "2026-01-15T08:00:00Z")]});
    let body = batch.to_string();
    // A raw HTTP/1.1 request: the test needs no HTTP client.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /audit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let mut buf = [0u8; 8192];
    let n = syslog.recv(&mut buf).expect("a syslog message");
    let message = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(
        message.starts_with('<') && message.contains(">1 "),
        "{message}"
    );
    assert!(
        message.contains(" palisade ") && message.contains("CEF:0|Palisade|Palisade|"),
        "{message}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let file = loop {
        let text = std::fs::read_to_string(&output).unwrap_or_default();
        if text.contains("K8S_PrivilegedContainer") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no alert in {}",
            output.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(file.lines().all(|l| l.starts_with("CEF:0|")), "{file}");

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("detect serve did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    let log: Vec<String> = rx.try_iter().collect();
    assert!(
        log.iter()
            .any(|l| l.contains("stopped (1 batches processed")),
        "{log:?}"
    );
}
