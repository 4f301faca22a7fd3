//! Shared helpers for the root tests of the kernel part: start a real sensor, run real processes,
//! wait (poll-until-seen, generous deadline) for the records they cause.
#![allow(dead_code)]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use palisade_sensor::kernel::event::KernelEvent;
use palisade_sensor::kernel::{KernelConfig, KernelSensor};

/// Tests need root and BPF; they fail without them unless PALISADE_SKIP_BPF_TESTS=1.
pub fn skip() -> bool {
    std::env::var("PALISADE_SKIP_BPF_TESTS").is_ok_and(|v| v == "1")
}

pub const DEADLINE: Duration = Duration::from_secs(60);

pub struct Harness {
    pub sensor: KernelSensor,
    pub seen: Vec<KernelEvent>,
}

impl Harness {
    pub fn start(config: &KernelConfig) -> Harness {
        let sensor = KernelSensor::start(config).unwrap_or_else(|e| {
            panic!(
                "the kernel sensor must start as root (set PALISADE_SKIP_BPF_TESTS=1 to skip): {e}"
            )
        });
        Harness {
            sensor,
            seen: Vec::new(),
        }
    }

    /// Polls until a record satisfying `pred` has been seen (including earlier ones).
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&KernelEvent) -> bool) -> KernelEvent {
        if let Some(ev) = self.seen.iter().find(|e| pred(e)) {
            return ev.clone();
        }
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            let mut batch = Vec::new();
            self.sensor
                .poll(Duration::from_millis(100), &mut |ev| batch.push(ev))
                .expect("poll");
            let hit = batch.iter().find(|e| pred(e)).cloned();
            self.seen.extend(batch);
            if let Some(ev) = hit {
                return ev;
            }
        }
        panic!(
            "no {what} record within {DEADLINE:?}; saw {} records, counters {:?}",
            self.seen.len(),
            self.sensor.counters()
        );
    }

    /// Drains whatever is queued right now (after a record proved the earlier ones were read).
    pub fn drain(&mut self) {
        let mut batch = Vec::new();
        let _ = self
            .sensor
            .poll(Duration::from_millis(10), &mut |ev| batch.push(ev));
        self.seen.extend(batch);
    }
}

/// A name no other test or process uses.
pub fn marker(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "palisade-{tag}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000
    )
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn sh(script: &str) -> Output {
    run(Command::new("/bin/sh").arg("-c").arg(script))
}

pub fn python(script: &str) -> Output {
    run(Command::new("/usr/bin/python3").arg("-c").arg(script))
}
