//! `palisade bench sensor`: the node sensor's overhead, measured end to end on this machine.
//!
//! It runs the whole agent (`palisade sensor run`, this same binary, as a child process with its
//! real eBPF programs), and in one run:
//! 1. times an exec-heavy workload (fork + exec of `/bin/true`) and a syscall-heavy one (open,
//!    read, close of an ordinary file) without the sensor, starts the sensor and times them again
//!    with it, stops it, and does so `--rounds` times: each round gives a paired slowdown ratio
//!    and the report gives their median and spread (one pair alone is at the mercy of whatever
//!    else the machine does in those seconds);
//! 2. in the last round, samples the sensor's CPU and memory while the node is idle;
//! 4. drives an open storm of a watched path at fixed rates (every open is an event the sensor
//!    decodes, attributes, judges and publishes), then unpaced, and reads from the sensor's own
//!    metrics how many events it processed and dropped.
//!
//! CPU is read from `/proc/<pid>/stat` (user + system time of all the sensor's threads), memory
//! from `/proc/<pid>/status` (VmRSS now, VmHWM peak).

use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Options of `palisade bench sensor`.
#[derive(Debug, clap::Args)]
pub struct BenchSensorArgs {
    /// Seconds for each measured phase.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
    /// Open-storm rates to hold (events per second), comma separated; an unpaced run follows.
    #[arg(long, value_delimiter = ',', default_value = "10000,50000,100000")]
    pub rates: Vec<u64>,
    /// Rounds of the exec and syscall workloads without and with the sensor (median reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub rounds: u64,
    /// Threads for the exec and syscall workloads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub threads: u64,
    /// Which events the sensor publishes besides alerts (`--events` of `sensor run`): `all`
    /// serialises every event, the default publishes only the events behind alerts.
    #[arg(long, default_value = "alerts-context", value_parser = ["none", "alerts-context", "all"])]
    pub events: String,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Metric names the sensor exports (see docs/sensor.md).
/// The storms' events: opens only (each poll of /metrics is a connect the sensor sees too, so
/// the count of all events never stops moving while it is watched).
const OPEN_EVENTS_METRIC: &str = "palisade_sensor_events_total{type=\"open\"}";
const KERNEL_DROPS_METRIC: &str = "palisade_sensor_kernel_ringbuf_dropped_total";
const USER_DROPS_METRIC: &str = "palisade_sensor_userspace_dropped_total";
const PUBLISH_DROPS_METRIC: &str = "palisade_sensor_publish_dropped_records_total";

#[derive(Debug, Serialize)]
struct Report {
    idle_cpu_percent_of_core: f64,
    idle_rss_mb: f64,
    exec: Paired,
    syscall: Paired,
    sensor_cpu_percent_during_exec: f64,
    storms: Vec<Storm>,
    peak_rss_mb: f64,
}

/// A workload's rate without and with the sensor, round by round.
#[derive(Debug, Default, Serialize)]
struct Paired {
    per_second_without: Vec<f64>,
    per_second_with: Vec<f64>,
    /// Each round's slowdown in percent (negative: faster with the sensor, i.e. noise).
    slowdown_percent_per_round: Vec<f64>,
    /// The median of the rounds' slowdowns.
    slowdown_percent: f64,
}

impl Paired {
    fn push(&mut self, without: f64, with: f64) {
        self.per_second_without.push(without);
        self.per_second_with.push(with);
        self.slowdown_percent_per_round
            .push(slowdown(without, with));
        self.slowdown_percent = median(&self.slowdown_percent_per_round);
    }

    fn line(&self) -> String {
        let rounds = self
            .slowdown_percent_per_round
            .iter()
            .map(|r| format!("{r:.1}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{:.0}/s without, {:.0}/s with: {:.1}% slower (median of rounds: {rounds})",
            median(&self.per_second_without),
            median(&self.per_second_with),
            self.slowdown_percent
        )
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[derive(Debug, Serialize)]
struct Storm {
    /// Target opens per second (0 = unpaced).
    target_rate: u64,
    offered_per_second: f64,
    processed_per_second: f64,
    kernel_drops: f64,
    userspace_drops: f64,
    sensor_cpu_percent: f64,
    rss_mb: f64,
}

/// Kills the sensor on drop.
struct SensorProc {
    child: Child,
    health_port: u16,
}

impl Drop for SensorProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SensorProc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn metrics(&self) -> Result<String> {
        http_get(self.health_port, "/metrics").context("reading the sensor's /metrics")
    }
}

fn http_get(port: u16, path: &str) -> Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let status_ok = text.split(' ').nth(1) == Some("200");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    if !status_ok {
        bail!("GET {path}: {}", text.lines().next().unwrap_or_default());
    }
    Ok(body)
}

/// Sum of a counter over all its label sets.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// User + system CPU seconds of a process (all threads).
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .zip(fields.get(12).and_then(|s| s.parse::<f64>().ok()))
        .map(|(u, s)| u + s)
        .context("malformed /proc/<pid>/stat")?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz.max(1.0))
}

/// (VmRSS, VmHWM) in MB.
fn memory_mb(pid: u32) -> Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// Runs `work` on `threads` threads for `duration`; returns operations per second.
fn run_workload(threads: u64, duration: Duration, work: fn() -> bool) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let stop = stop.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if work() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn exec_true() -> bool {
    Command::new("/bin/true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn open_read_close() -> bool {
    let mut buf = [0u8; 64];
    std::fs::File::open("/etc/hostname")
        .and_then(|mut f| f.read(&mut buf))
        .is_ok()
}

/// Opens `path` at `rate` per second (0 = as fast as possible) for `duration`; returns the
/// achieved rate.
fn open_storm(path: &Path, rate: u64, duration: Duration) -> f64 {
    let start = Instant::now();
    let mut done: u64 = 0;
    while start.elapsed() < duration {
        if rate > 0 {
            // Pace in 1 ms slices: open what is due, then sleep until the next slice.
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            if done >= due {
                std::thread::sleep(Duration::from_micros(500));
                continue;
            }
            let batch = due - done;
            for _ in 0..batch {
                if std::fs::File::open(path).is_ok() {
                    done += 1;
                }
            }
        } else {
            for _ in 0..1000 {
                if std::fs::File::open(path).is_ok() {
                    done += 1;
                }
            }
        }
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn start_sensor(watched_dir: &Path, events: &str) -> Result<SensorProc> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let exe = std::env::current_exe().context("locating this binary")?;
    let child = Command::new(exe)
        .args([
            "sensor",
            "run",
            "--no-kubernetes",
            "--output",
            "/dev/null",
            "--events",
            events,
        ])
        .arg("--health-addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--sensitive-prefix")
        .arg(format!("{}/", watched_dir.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting `palisade sensor run`")?;
    let mut sensor = SensorProc {
        child,
        health_port: port,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http_get(port, "/readyz").is_ok() {
            return Ok(sensor);
        }
        if let Some(status) = sensor.child.try_wait()? {
            bail!("the sensor exited ({status}) before it was ready");
        }
        if Instant::now() > deadline {
            bail!("the sensor was not ready within 60 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the sensor's count of open events stops moving (its queues drained). The
/// pipeline refreshes its metrics once a second, so "not moving" means over a longer span.
fn settle(sensor: &SensorProc) -> Result<f64> {
    let mut last = metric(&sensor.metrics()?, OPEN_EVENTS_METRIC);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        std::thread::sleep(Duration::from_millis(1500));
        let now = metric(&sensor.metrics()?, OPEN_EVENTS_METRIC);
        if now == last {
            return Ok(now);
        }
        if Instant::now() > deadline {
            bail!("the sensor was still processing open events 2 minutes after the storm");
        }
        last = now;
    }
}

fn slowdown(without: f64, with: f64) -> f64 {
    if without <= 0.0 {
        return 0.0;
    }
    (1.0 - with / without) * 100.0
}

pub fn run(args: BenchSensorArgs) -> Result<()> {
    let phase = Duration::from_secs(args.seconds);
    let watched = tempfile::tempdir().context("creating a scratch directory")?;
    let target: PathBuf = watched.path().join("watched-file");
    std::fs::write(&target, b"watched\n")?;

    let mut exec = Paired::default();
    let mut syscall = Paired::default();
    let mut exec_cpu = Vec::new();
    let mut idle = None;
    let mut sensor = None;
    for round in 1..=args.rounds {
        let last = round == args.rounds;
        eprintln!(
            "round {round}/{}: exec and syscall workloads without the sensor ({} s each)…",
            args.rounds, args.seconds
        );
        let exec_without = run_workload(args.threads, phase, exec_true);
        let sys_without = run_workload(args.threads, phase, open_read_close);
        eprintln!("round {round}/{}: starting the sensor…", args.rounds);
        let running = start_sensor(watched.path(), &args.events)?;
        std::thread::sleep(Duration::from_secs(2));
        if last {
            let cpu0 = cpu_seconds(running.pid())?;
            let t0 = Instant::now();
            std::thread::sleep(phase);
            let idle_cpu =
                (cpu_seconds(running.pid())? - cpu0) / t0.elapsed().as_secs_f64() * 100.0;
            idle = Some((idle_cpu, memory_mb(running.pid())?.0));
        }
        eprintln!(
            "round {round}/{}: exec and syscall workloads with the sensor…",
            args.rounds
        );
        let cpu0 = cpu_seconds(running.pid())?;
        let t0 = Instant::now();
        let exec_with = run_workload(args.threads, phase, exec_true);
        exec_cpu.push((cpu_seconds(running.pid())? - cpu0) / t0.elapsed().as_secs_f64() * 100.0);
        let sys_with = run_workload(args.threads, phase, open_read_close);
        exec.push(exec_without, exec_with);
        syscall.push(sys_without, sys_with);
        if last {
            sensor = Some(running);
        }
    }
    let (Some(sensor), Some((idle_cpu, idle_rss))) = (sensor, idle) else {
        bail!("no measuring round ran");
    };

    let mut storms = Vec::new();
    let mut rates = args.rates.clone();
    rates.push(0);
    for rate in rates {
        let label = if rate == 0 {
            "unpaced".to_string()
        } else {
            format!("{rate}/s")
        };
        eprintln!("open storm of a watched path, {label}…");
        let before = sensor.metrics()?;
        let events0 = metric(&before, OPEN_EVENTS_METRIC);
        let kdrops0 = metric(&before, KERNEL_DROPS_METRIC);
        let udrops0 = metric(&before, USER_DROPS_METRIC) + metric(&before, PUBLISH_DROPS_METRIC);
        let cpu0 = cpu_seconds(sensor.pid())?;
        let t0 = Instant::now();
        let offered = open_storm(&target, rate, phase);
        let events1 = settle(&sensor)?;
        let elapsed = t0.elapsed().as_secs_f64();
        let after = sensor.metrics()?;
        let (rss, _) = memory_mb(sensor.pid())?;
        storms.push(Storm {
            target_rate: rate,
            offered_per_second: offered,
            processed_per_second: (events1 - events0) / phase.as_secs_f64(),
            kernel_drops: metric(&after, KERNEL_DROPS_METRIC) - kdrops0,
            userspace_drops: metric(&after, USER_DROPS_METRIC)
                + metric(&after, PUBLISH_DROPS_METRIC)
                - udrops0,
            sensor_cpu_percent: (cpu_seconds(sensor.pid())? - cpu0) / elapsed * 100.0,
            rss_mb: rss,
        });
    }
    let (_, peak) = memory_mb(sensor.pid())?;
    drop(sensor);

    let report = Report {
        idle_cpu_percent_of_core: idle_cpu,
        idle_rss_mb: idle_rss,
        exec,
        syscall,
        sensor_cpu_percent_during_exec: median(&exec_cpu),
        storms,
        peak_rss_mb: peak,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "sensor overhead ({} s phases, {} round(s), {} workload thread(s), --events {})",
        args.seconds, args.rounds, args.threads, args.events
    );
    println!(
        "  idle:          {:.2}% of a core, RSS {:.1} MB",
        report.idle_cpu_percent_of_core, report.idle_rss_mb
    );
    println!(
        "  exec-heavy:    {}; sensor {:.1}% of a core",
        report.exec.line(),
        report.sensor_cpu_percent_during_exec
    );
    println!("  syscall-heavy: {}", report.syscall.line());
    println!("  open storms of a watched path (each open is an event):");
    println!(
        "    target     offered/s   processed/s  kernel drops  user drops  sensor CPU  RSS MB"
    );
    for s in &report.storms {
        let target = if s.target_rate == 0 {
            "unpaced".to_string()
        } else {
            s.target_rate.to_string()
        };
        println!(
            "    {:<9} {:>10.0} {:>13.0} {:>13.0} {:>11.0} {:>10.1}% {:>7.1}",
            target,
            s.offered_per_second,
            s.processed_per_second,
            s.kernel_drops,
            s.userspace_drops,
            s.sensor_cpu_percent,
            s.rss_mb
        );
    }
    println!("  peak RSS:      {:.1} MB", report.peak_rss_mb);
    Ok(())
}
