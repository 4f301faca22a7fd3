//! The decision log: one JSON object per line for every AdmissionReview answered, written by a
//! background thread so a slow disk never delays an admission response.

use super::metrics::Metrics;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// Records waiting for the writer; beyond this they are dropped (and counted).
const BACKLOG: usize = 8192;

/// One violation in a decision record.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LoggedViolation {
    pub constraint_kind: String,
    pub constraint: String,
    pub action: String,
    pub message: String,
}

/// One answered review.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRecord {
    /// RFC 3339, UTC.
    pub time: String,
    pub uid: String,
    /// `group/version/Kind` of the request (`v1/Pod` for the core group).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub operation: String,
    pub user: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// `allow` or `deny`.
    pub decision: &'static str,
    pub violations: Vec<LoggedViolation>,
    /// Why the failure policy decided instead of the constraints (timeout, queue_full, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: f64,
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct DecisionLog {
    sender: SyncSender<DecisionRecord>,
    metrics: Arc<Metrics>,
}

impl DecisionLog {
    /// Appends to `path`, or writes to stdout for `-`.
    pub fn open(path: &Path, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let writer: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )
        };
        Self::with_writer(writer, metrics)
    }

    pub fn with_writer(
        writer: Box<dyn Write + Send>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = sync_channel(BACKLOG);
        std::thread::Builder::new()
            .name("palisade-decision-log".into())
            .spawn(move || write_loop(&receiver, writer))?;
        Ok(DecisionLog { sender, metrics })
    }

    pub fn record(&self, record: DecisionRecord) {
        match self.sender.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.metrics.record_decision_log_drop();
            }
        }
    }
}

fn write_loop(receiver: &Receiver<DecisionRecord>, writer: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::new(writer);
    let mut failed = false;
    while let Ok(first) = receiver.recv() {
        // Write what is queued, then flush once: lines reach the file within one batch.
        let mut next = Some(first);
        while let Some(record) = next {
            if let Err(e) = write_record(&mut out, &record)
                && !failed
            {
                tracing::error!("decision log: cannot write: {e}");
                failed = true;
            }
            next = receiver.try_recv().ok();
        }
        if let Err(e) = out.flush()
            && !failed
        {
            tracing::error!("decision log: cannot write: {e}");
            failed = true;
        }
    }
}

fn write_record(out: &mut impl Write, record: &DecisionRecord) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")
}

/// `time` in RFC 3339 (UTC, millisecond precision).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writes_one_json_object_per_line() {
        let sink = Shared::default();
        let log =
            DecisionLog::with_writer(Box::new(sink.clone()), Arc::new(Metrics::new())).unwrap();
        for uid in ["a", "b"] {
            log.record(DecisionRecord {
                time: now_rfc3339(),
                uid: uid.into(),
                kind: "v1/Pod".into(),
                namespace: Some("team".into()),
                name: "web".into(),
                operation: "CREATE".into(),
                user: "alice".into(),
                dry_run: false,
                decision: "deny",
                violations: vec![LoggedViolation {
                    constraint_kind: "K8sPrivileged".into(),
                    constraint: "no-privileged".into(),
                    action: "deny".into(),
                    message: "privileged container web".into(),
                }],
                error: None,
                latency_ms: 0.4,
            });
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
            if text.lines().count() == 2 {
                let lines: Vec<serde_json::Value> = text
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                assert_eq!(lines[0]["uid"], "a");
                assert_eq!(lines[1]["violations"][0]["constraint"], "no-privileged");
                assert!(lines[0].get("error").is_none());
                assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "log not written: {text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
