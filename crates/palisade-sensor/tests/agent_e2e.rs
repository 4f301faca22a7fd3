//! The whole sensor in one process, as root: the real eBPF programs attached, real processes
//! attributed and judged by the built-in node rules, alerts (with the events that raised them)
//! written as JSON lines, the health endpoint ready and exporting counters, and a clean stop that
//! flushes. Fails (does not skip) without BPF unless PALISADE_SKIP_BPF_TESTS=1.

use palisade_sensor::agent::{AgentConfig, EventSelection, KubernetesAccess, ReadyInfo, run};
use palisade_sensor::publish::{PublisherConfig, Sink};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn skip_bpf() -> bool {
    std::env::var("PALISADE_SKIP_BPF_TESTS").is_ok_and(|v| v == "1")
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    );
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
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

fn records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

#[test]
fn sensor_raises_alerts_on_real_processes_and_stops_cleanly() {
    if skip_bpf() {
        eprintln!("PALISADE_SKIP_BPF_TESTS=1: skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("sensor.jsonl");
    let mut publisher = PublisherConfig::new(Sink::File(out.clone()), "agent-e2e");
    publisher.batch_max_age = Duration::from_millis(100);
    let mut config = AgentConfig::new("agent-e2e", publisher);
    config.kubernetes = KubernetesAccess::Disabled;
    config.health_addr = Some("127.0.0.1:0".parse().expect("addr"));
    config.pipeline.events = EventSelection::AlertsContext;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<ReadyInfo>();
    config.ready = Some(ready_tx);
    let stop = std::sync::Arc::clone(&config.stop);
    let agent = std::thread::spawn(move || run(config));

    let info = match ready_rx.recv_timeout(Duration::from_secs(180)) {
        Ok(info) => info,
        Err(_) => {
            let result = agent.join().expect("agent thread");
            panic!("the sensor did not become ready: {result:?}");
        }
    };
    assert!(info.probes_attached > 0, "{info:?}");
    let health = info.health_addr.expect("health endpoint");
    assert_eq!(get(health, "/healthz").0, 200);
    assert!(
        wait_until(Duration::from_secs(60), || get(health, "/readyz").0 == 200),
        "readyz"
    );

    // A miner-named program (a copy of /bin/true) and a cloud metadata connection attempt.
    let miner = dir.path().join("xmrig");
    std::fs::copy("/bin/true", &miner).expect("copy /bin/true");
    let status = std::process::Command::new(&miner)
        .arg("--donate-level=1")
        .status()
        .expect("run the miner-named program");
    assert!(status.success());
    // From a child: the sensor does not watch its own process (and this test is that process).
    let _ = std::process::Command::new("timeout")
        .args(["3", "bash", "-c", "echo > /dev/tcp/169.254.169.254/80"])
        .status();
    let miner_path = miner.display().to_string();
    let ours = |r: &Value, rule: &str| {
        r["record"] == "alert"
            && r["rule.id"] == rule
            && r["process.pid"].as_u64().is_some()
            && r.to_string().contains(if rule.contains("Miner") {
                miner_path.as_str()
            } else {
                "169.254.169.254"
            })
    };
    let seen = wait_until(Duration::from_secs(120), || {
        let all = records(&out);
        all.iter()
            .any(|r| ours(r, "K8S.NODE_CryptoCoinMinerExecution"))
            && all.iter().any(|r| ours(r, "K8S.NODE_ImdsCall"))
    });
    let all = records(&out);
    assert!(
        seen,
        "alerts missing; output:\n{}",
        all.iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // alerts-context: the exec event behind the miner alert is in the output too, before it.
    let alert_pos = all
        .iter()
        .position(|r| ours(r, "K8S.NODE_CryptoCoinMinerExecution"))
        .expect("alert");
    let event_ids: Vec<&str> = all[alert_pos]["event.id"]
        .as_array()
        .expect("event ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let event_pos = all
        .iter()
        .position(|r| r["record"] == "event" && event_ids.contains(&r["id"].as_str().unwrap_or("")))
        .expect("the alert's event");
    assert!(event_pos < alert_pos);
    let event = &all[event_pos];
    assert_eq!(event["event.type"], "exec");
    assert_eq!(event["process"]["exe"], miner_path.as_str());
    assert_eq!(event["node"], "agent-e2e");

    // Event counters are published once per tick (1 s): poll.
    let exec_events = |metrics: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("palisade_sensor_events_total{type=\"exec\"} "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let mut metrics = String::new();
    let counted = wait_until(Duration::from_secs(60), || {
        let (status, text) = get(health, "/metrics");
        metrics = text;
        status == 200 && exec_events(&metrics) >= 1.0
    });
    assert!(counted, "{metrics}");
    assert!(metrics.contains("palisade_sensor_ready 1"));
    assert!(metrics.contains("palisade_sensor_probe_attached{probe=\"exec\""));
    assert!(metrics.contains("palisade_sensor_kernel_ringbuf_dropped_all_total"));
    assert!(metrics.contains("palisade_sensor_userspace_dropped_total{reason=\"channel_full\"}"));
    assert!(metrics.contains(
        "palisade_sensor_alerts_total{rule=\"K8S.NODE_CryptoCoinMinerExecution\",severity=\"high\"}"
    ));

    stop.store(true, Ordering::SeqCst);
    let summary = agent.join().expect("agent thread").expect("a clean stop");
    assert!(summary.kernel_records >= 1);
    assert!(summary.events >= 1);
    assert!(summary.alerts >= 2);
    assert_eq!(
        summary.publisher.dropped_total(),
        0,
        "{:?}",
        summary.publisher
    );
    // The health endpoint went away with the sensor.
    assert!(std::net::TcpStream::connect(health).is_err());
}
