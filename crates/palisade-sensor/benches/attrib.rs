//! Enrichment throughput: `Enricher::enrich` on a realistic mix of kernel records (execs with
//! argv and a write mark, sensitive opens, connects, DNS queries, exits), attributed through the
//! real cgroup2 mount and the real `/proc` (this process's own cgroup and pid, so it needs no
//! root). Prints events/s for the mix and for exec-only and DNS-only streams, and the cache
//! counters, so misses that would hide in an average show.
//!
//! Run: `cargo bench -p palisade-sensor --bench attrib`.

use palisade_sensor::attrib::cgroup::detect_cgroup2_mount;
use palisade_sensor::attrib::enrich::boot_clock_nanos;
use palisade_sensor::attrib::{AttribConfig, Enricher, PodCache};
use palisade_sensor::kernel::event::{
    ExecRecord, KernelEvent, KernelPayload, SocketRecord, StdioKind, WriteMark,
};
use std::os::unix::fs::MetadataExt;
use std::time::Instant;

fn own_cgroup_id(root: &std::path::Path) -> u64 {
    let text = std::fs::read_to_string("/proc/self/cgroup").expect("cgroup");
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
        .trim_start_matches('/');
    std::fs::metadata(root.join(path)).expect("stat").ino()
}

fn record(i: u64, cgroup_id: u64, pid: u32, payload: KernelPayload) -> KernelEvent {
    KernelEvent {
        time_boot_ns: boot_clock_nanos() + i,
        cgroup_id,
        pid,
        tid: pid,
        ppid: std::process::id(),
        uid: 1000,
        gid: 1000,
        euid: 1000,
        comm: "worker".into(),
        pid_ns: 4026531836,
        mnt_ns: 4026531841,
        cap_effective: 0x00000000a80425fb,
        payload,
    }
}

fn dns_query(name: &str) -> Vec<u8> {
    let mut msg = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in name.split('.') {
        msg.push(label.len() as u8);
        msg.extend_from_slice(label.as_bytes());
    }
    msg.extend_from_slice(&[0, 0, 1, 0, 1]);
    msg
}

fn payload(i: u64, kind: usize) -> KernelPayload {
    match kind {
        0 => KernelPayload::Exec(ExecRecord {
            filename: "/usr/bin/curl".into(),
            args: vec![
                "curl".into(),
                "-s".into(),
                "-o".into(),
                "/tmp/payload".into(),
                format!("http://10.0.0.{}/x", i % 250),
            ],
            stdio: [StdioKind::Pipe, StdioKind::Pipe, StdioKind::Tty],
            exe_written: i.is_multiple_of(4).then(|| WriteMark {
                writer_comm: "sh".into(),
                writer_pid: 10,
                ns_before_exec: 5_000_000,
                writer_cgroup_id: 1,
            }),
            parent_pid: std::process::id(),
            parent_comm: "bash".into(),
            ..ExecRecord::default()
        }),
        1 => KernelPayload::Open {
            path: "/var/run/secrets/kubernetes.io/serviceaccount/token".into(),
            flags: 0o2000000,
        },
        2 => KernelPayload::Connect(SocketRecord {
            protocol: 6,
            src: "10.1.2.3".parse().expect("ip"),
            src_port: 40000 + (i % 1000) as u16,
            dst: "169.254.169.254".parse().expect("ip"),
            dst_port: 80,
        }),
        3 => KernelPayload::Dns {
            server: "10.96.0.10".parse().expect("ip"),
            server_port: 53,
            payload: dns_query("api.github.com"),
        },
        _ => KernelPayload::Exit { exit_code: 0 },
    }
}

fn run(name: &str, enricher: &mut Enricher, events: Vec<KernelEvent>) {
    let n = events.len();
    let start = Instant::now();
    let mut bytes = 0usize;
    for event in events {
        let out = enricher.enrich(event);
        bytes += out.id.len();
    }
    let elapsed = start.elapsed();
    println!(
        "{name:<22} {n:>8} events in {:>8.1} ms: {:>10.0} events/s ({:.2} µs/event) [{bytes}]",
        elapsed.as_secs_f64() * 1e3,
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / n as f64,
    );
}

fn main() {
    let root = detect_cgroup2_mount().expect("cgroup2 mount");
    let cgroup_id = own_cgroup_id(&root);
    let me = std::process::id();
    let mut enricher = Enricher::new(
        AttribConfig {
            cgroup_root: root,
            node_name: "bench-node".into(),
            ..AttribConfig::default()
        },
        PodCache::new(),
    )
    .expect("enricher");
    const N: u64 = 200_000;
    // Exec'ing pids cycle through a range the table holds, as on a busy node.
    let pid_of = |i: u64| {
        if i.is_multiple_of(5) {
            3_000_000 + (i % 4096) as u32
        } else {
            me
        }
    };
    // Warm up the caches.
    let warm: Vec<KernelEvent> = (0..10_000)
        .map(|i| record(i, cgroup_id, pid_of(i), payload(i, (i % 5) as usize)))
        .collect();
    run("warm-up", &mut enricher, warm);
    for round in 0..3 {
        let mix: Vec<KernelEvent> = (0..N)
            .map(|i| record(i, cgroup_id, pid_of(i), payload(i, (i % 5) as usize)))
            .collect();
        run(&format!("mix (round {round})"), &mut enricher, mix);
    }
    let execs: Vec<KernelEvent> = (0..N)
        .map(|i| record(i, cgroup_id, 3_000_000 + (i % 8192) as u32, payload(i, 0)))
        .collect();
    run("exec only", &mut enricher, execs);
    let dns: Vec<KernelEvent> = (0..N)
        .map(|i| record(i, cgroup_id, me, payload(i, 3)))
        .collect();
    run("dns only", &mut enricher, dns);
    println!("{:#?}", enricher.counters());
}
