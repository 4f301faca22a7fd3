//! Kernel-part benchmark (root): real eBPF programs, real processes.
//!
//! Prints, in one run:
//! - slowdown ratios of an exec-heavy workload (a shell loop of /bin/true), a syscall-heavy
//!   workload (dd with 1-byte blocks: read+write per byte) and an open-heavy workload of
//!   non-sensitive paths (the cost of the in-kernel filter on the open path), each timed
//!   alternately without and with the programs attached; the ratio is median(with)/median(without);
//! - an exec storm and an open storm of sensitive paths with the programs attached: records
//!   delivered per second, ring-buffer drops;
//! - the sensor's CPU (user+sys of this process, which only polls and decodes) and RSS, idle and
//!   under load.
//!
//! The syscall-heavy and open-heavy workloads are also timed with only the `sys_enter` program
//! (`trace_syscall_exit = false`) to show what the exit program costs.
//!
//! `PALISADE_BENCH_ROUNDS` (default 5) sets the alternation count. Workloads run as child processes
//! because the sensor ignores its own process.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use palisade_sensor::kernel::{KernelConfig, KernelSensor};

const PY: &str = "/usr/bin/python3";

fn cpu_ticks() -> u64 {
    // utime + stime (fields 14 and 15) of /proc/self/stat, in clock ticks (100 Hz)
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[derive(Clone)]
struct Workload {
    name: &'static str,
    argv: Vec<String>,
    parallel: usize,
}

impl Workload {
    fn spawn(&self) -> Vec<Child> {
        (0..self.parallel)
            .map(|_| {
                Command::new(&self.argv[0])
                    .args(&self.argv[1..])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn workload")
            })
            .collect()
    }
}

fn wait_all(children: &mut [Child]) {
    for c in children {
        let st = c.wait().expect("wait workload");
        assert!(st.success(), "workload failed");
    }
}

fn all_done(children: &mut [Child]) -> bool {
    children
        .iter_mut()
        .all(|c| matches!(c.try_wait(), Ok(Some(_))))
}

fn run_plain(w: &Workload) -> Duration {
    let t = Instant::now();
    let mut cs = w.spawn();
    wait_all(&mut cs);
    t.elapsed()
}

struct Loaded {
    elapsed: Duration,
    delivered: u64,
    drops: u64,
    cpu_ticks: u64,
    rss_kib: u64,
}

fn run_with(sensor: &mut KernelSensor, w: &Workload) -> Loaded {
    let drops0 = sensor.counters().ring_drops;
    let cpu0 = cpu_ticks();
    let mut delivered = 0u64;
    let t = Instant::now();
    let mut cs = w.spawn();
    while !all_done(&mut cs) {
        delivered += sensor
            .poll(Duration::from_millis(5), &mut |_| {})
            .expect("poll") as u64;
    }
    let elapsed = t.elapsed();
    wait_all(&mut cs);
    // drain what the workload left in the ring
    let mut empty = 0;
    while empty < 3 {
        let n = sensor
            .poll(Duration::from_millis(20), &mut |_| {})
            .expect("poll");
        delivered += n as u64;
        empty = if n == 0 { empty + 1 } else { 0 };
    }
    Loaded {
        elapsed,
        delivered,
        drops: sensor.counters().ring_drops - drops0,
        cpu_ticks: cpu_ticks() - cpu0,
        rss_kib: rss_kib(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if std::env::var("PALISADE_SKIP_BPF_TESTS").is_ok_and(|v| v == "1") {
        println!("kernel bench skipped (PALISADE_SKIP_BPF_TESTS=1)");
        return;
    }
    let rounds: usize = std::env::var("PALISADE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_dir = dir.path().join("secret");
    std::fs::create_dir_all(&secret_dir).expect("mkdir");
    let secret = secret_dir.join("token");
    std::fs::write(&secret, b"x").expect("write");
    let plain = dir.path().join("plain");
    std::fs::write(&plain, b"x").expect("write");
    let mut config = KernelConfig::default();
    config
        .sensitive_prefixes
        .push(format!("{}/", secret_dir.display()));

    let exec_loop = |n: usize| -> Vec<String> {
        vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("i=0; while [ $i -lt {n} ]; do /bin/true; i=$((i+1)); done"),
        ]
    };
    let open_loop = |path: &std::path::Path, n: usize| -> Vec<String> {
        vec![
            PY.into(),
            "-c".into(),
            format!(
                "import os\np = {:?}\nfor _ in range({n}):\n    os.close(os.open(p, os.O_RDONLY))\n",
                path.display().to_string()
            ),
        ]
    };
    let overhead = [
        Workload {
            name: "exec-heavy (sh loop of /bin/true, 2000 execs)",
            argv: exec_loop(2000),
            parallel: 1,
        },
        Workload {
            name: "syscall-heavy (dd bs=1, 2M read+write)",
            argv: vec![
                "dd".into(),
                "if=/dev/zero".into(),
                "of=/dev/null".into(),
                "bs=1".into(),
                "count=1000000".into(),
            ],
            parallel: 1,
        },
        Workload {
            name: "open-heavy, non-sensitive path (200k opens)",
            argv: open_loop(&plain, 200_000),
            parallel: 1,
        },
    ];

    // idle cost
    let mut sensor = KernelSensor::start(&config).expect("start the kernel sensor (root needed)");
    let rss_loaded = rss_kib();
    let cpu0 = cpu_ticks();
    let t = Instant::now();
    let mut idle_records = 0;
    while t.elapsed() < Duration::from_secs(5) {
        idle_records += sensor
            .poll(Duration::from_millis(100), &mut |_| {})
            .expect("poll");
    }
    let idle_cpu = (cpu_ticks() - cpu0) as f64 / 100.0 / t.elapsed().as_secs_f64() * 100.0;
    println!(
        "idle: sensor CPU {idle_cpu:.2}% of a core over 5 s, RSS {} MiB, {idle_records} records from the rest of the machine",
        rss_loaded / 1024
    );
    drop(sensor);

    println!(
        "\n== slowdown with vs without the programs attached ({rounds} alternating rounds, medians)"
    );
    let enter_only = KernelConfig {
        trace_syscall_exit: false,
        ..config.clone()
    };
    let mut runs: Vec<(&Workload, &KernelConfig, &str)> =
        overhead.iter().map(|w| (w, &config, "")).collect();
    runs.extend(
        overhead
            .iter()
            .skip(1)
            .map(|w| (w, &enter_only, " [sys_exit program off]")),
    );
    for (w, cfg, note) in runs {
        let mut off = Vec::new();
        let mut on = Vec::new();
        let mut last = None;
        for _ in 0..rounds {
            off.push(run_plain(w).as_secs_f64());
            let mut sensor = KernelSensor::start(cfg).expect("start");
            let l = run_with(&mut sensor, w);
            on.push(l.elapsed.as_secs_f64());
            last = Some(l);
        }
        let (m_off, m_on) = (median(off), median(on));
        let l = last.expect("at least one round");
        println!(
            "{}{}: without {:.3} s, with {:.3} s, ratio {:.3} (slowdown {:+.1}%); last run: {} records, {} drops, sensor CPU {:.0}% of a core",
            w.name,
            note,
            m_off,
            m_on,
            m_on / m_off,
            (m_on / m_off - 1.0) * 100.0,
            l.delivered,
            l.drops,
            l.cpu_ticks as f64 / 100.0 / l.elapsed.as_secs_f64() * 100.0
        );
    }

    println!("\n== storms with the programs attached");
    let storms = vec![
        Workload {
            name: "exec storm (2 parallel sh loops, 2 x 3000 execs)",
            argv: exec_loop(3000),
            parallel: 2,
        },
        Workload {
            name: "open storm of a sensitive path (2 x 200k opens)",
            argv: open_loop(&secret, 200_000),
            parallel: 2,
        },
    ];
    let mut sensor = KernelSensor::start(&config).expect("start");
    for w in &storms {
        let l = run_with(&mut sensor, w);
        println!(
            "{}: {} records in {:.2} s = {:.0} records/s delivered, {} ring-buffer drops, sensor CPU {:.0}% of a core, RSS {} MiB",
            w.name,
            l.delivered,
            l.elapsed.as_secs_f64(),
            l.delivered as f64 / l.elapsed.as_secs_f64(),
            l.drops,
            l.cpu_ticks as f64 / 100.0 / l.elapsed.as_secs_f64() * 100.0,
            l.rss_kib / 1024
        );
    }
    let c = sensor.counters();
    println!("\ncounters: {c:?}");
}
