//! The ingest queue between the request handlers and the detection workers: bounded in memory
//! (batches and bytes), overflowing to the disk spool, in one FIFO order.
//!
//! Order matters to windowed and stateful rules, so once anything is in the spool new batches
//! are spooled too, behind it; the workers empty memory first (everything there is older than
//! the spool) and then read the spool back. The handler never waits for a worker: a push is a
//! short critical section (a `VecDeque` push, or an append to a file in the page cache).

use super::metrics::{DropReason, IngestGauges, Metrics};
use super::spool::{Spool, SpoolError};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bounds of the in-memory queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub max_batches: usize,
    pub max_bytes: usize,
}

impl Default for QueueLimits {
    /// 1024 batches or 64 MiB, whichever comes first (the API server's default batch is at most
    /// 400 events, a few hundred KB).
    fn default() -> Self {
        QueueLimits {
            max_batches: 1024,
            max_bytes: 64 << 20,
        }
    }
}

/// One received batch body.
#[derive(Debug)]
pub struct Batch {
    pub bytes: Vec<u8>,
    /// When the request arrived (wall clock, survives the spool).
    pub received_unix_nanos: i64,
    /// Whether it went through the spool.
    pub spooled: bool,
}

impl Batch {
    /// Time since the batch arrived.
    pub fn age(&self) -> Duration {
        let now = unix_nanos();
        Duration::from_nanos(now.saturating_sub(self.received_unix_nanos).max(0) as u64)
    }
}

/// Where an accepted batch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    Memory,
    Spool,
}

/// What a worker gets from [`Ingest::next`].
#[derive(Debug)]
pub enum Next {
    Batch(Batch),
    /// Nothing arrived within the wait: time to flush aggregates.
    Idle,
    /// Closed and empty: the worker may finish.
    Closed,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Batch>,
    queue_bytes: usize,
    spool: Option<Spool>,
    closed: bool,
    /// Past the shutdown drain deadline: workers stop taking batches.
    halted: bool,
    /// Workers hold off (batches keep arriving into memory and the spool).
    paused: bool,
    /// Torn frames already reported to the metrics.
    corrupt_reported: u64,
}

/// The shared queue. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Ingest {
    limits: QueueLimits,
    spool_max_bytes: u64,
    state: Mutex<State>,
    ready: Condvar,
    metrics: Arc<Metrics>,
}

/// Wall-clock nanoseconds since the Unix epoch.
pub fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
}

impl Ingest {
    pub fn new(
        limits: QueueLimits,
        spool: Option<Spool>,
        spool_max_bytes: u64,
        metrics: Arc<Metrics>,
    ) -> Ingest {
        Ingest {
            limits: QueueLimits {
                max_batches: limits.max_batches.max(1),
                max_bytes: limits.max_bytes.max(1),
            },
            spool_max_bytes: if spool.is_some() { spool_max_bytes } else { 0 },
            state: Mutex::new(State {
                queue: VecDeque::new(),
                queue_bytes: 0,
                spool,
                closed: false,
                halted: false,
                paused: false,
                corrupt_reported: 0,
            }),
            ready: Condvar::new(),
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a batch, or spools it when memory is full (or the spool already holds older
    /// batches). `Err` says why it was dropped; the caller counts it.
    pub fn push(&self, bytes: Vec<u8>) -> Result<Placed, DropReason> {
        let batch = Batch {
            bytes,
            received_unix_nanos: unix_nanos(),
            spooled: false,
        };
        let mut state = self.lock();
        if state.closed {
            return Err(DropReason::Shutdown);
        }
        let spool_busy = state.spool.as_ref().is_some_and(|s| !s.is_empty());
        let room = state.queue.is_empty()
            || (state.queue.len() < self.limits.max_batches
                && state.queue_bytes + batch.bytes.len() <= self.limits.max_bytes);
        if room && !spool_busy {
            state.queue_bytes += batch.bytes.len();
            state.queue.push_back(batch);
            drop(state);
            self.ready.notify_one();
            self.metrics.record_queued();
            return Ok(Placed::Memory);
        }
        let Some(spool) = state.spool.as_mut() else {
            return Err(DropReason::QueueFull);
        };
        let result = append(spool, &batch);
        drop(state);
        match result {
            Ok(()) => {
                self.ready.notify_one();
                self.metrics.record_spooled();
                Ok(Placed::Spool)
            }
            Err(SpoolError::Full { .. }) => Err(DropReason::SpoolFull),
            Err(e) => {
                tracing::error!("audit batch not spooled: {e}");
                Err(DropReason::SpoolError)
            }
        }
    }

    /// The next batch in arrival order, waiting up to `wait` for one.
    pub fn next(&self, wait: Duration) -> Next {
        let deadline = Instant::now() + wait;
        let mut state = self.lock();
        loop {
            // Halted, or paused at shutdown: what is left stays for the spool.
            if state.halted || (state.closed && state.paused) {
                return Next::Closed;
            }
            if state.paused {
                // Nothing is handed out until resumed.
            } else if let Some(batch) = state.queue.pop_front() {
                state.queue_bytes -= batch.bytes.len();
                return Next::Batch(batch);
            } else if let Some(batch) = self.pop_spool(&mut state) {
                return Next::Batch(batch);
            }
            if state.closed {
                return Next::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Next::Idle;
            }
            state = match self.ready.wait_timeout(state, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// The next batch held in memory only (at shutdown, when the spool stays for the next run).
    pub fn next_in_memory(&self) -> Option<Batch> {
        let mut state = self.lock();
        let batch = state.queue.pop_front()?;
        state.queue_bytes -= batch.bytes.len();
        Some(batch)
    }

    fn pop_spool(&self, state: &mut State) -> Option<Batch> {
        let spool = state.spool.as_mut()?;
        let popped = spool.pop();
        let torn = spool.corruption().torn_frames;
        let skipped = spool.corruption().skipped_bytes;
        if torn > state.corrupt_reported {
            for _ in state.corrupt_reported..torn {
                self.metrics.record_drop(DropReason::SpoolCorrupt, 0);
            }
            // Bytes are attributed to the last report (exact per frame is not known).
            self.metrics
                .record_drop_bytes(DropReason::SpoolCorrupt, skipped);
            state.corrupt_reported = torn;
        }
        match popped {
            Ok(Some(frame)) => {
                self.metrics.record_unspooled();
                Some(decode(frame))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!("cannot read the spool back: {e}");
                self.metrics.record_drop(DropReason::SpoolError, 0);
                None
            }
        }
    }

    /// Stops accepting; workers drain what is left and then see [`Next::Closed`].
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Holds the workers (`true`) or lets them go on (`false`): for maintenance and for tests
    /// that need the queue to fill. A shutdown while paused processes nothing more: the batches
    /// in memory go to the spool.
    pub fn set_paused(&self, paused: bool) {
        self.lock().paused = paused;
        self.ready.notify_all();
    }

    /// Past the drain deadline: workers get [`Next::Closed`] from now on, whatever is left.
    pub fn halt(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.halted = true;
        drop(state);
        self.ready.notify_all();
    }

    /// Moves every batch still in memory to the spool (shutdown past its drain deadline), to be
    /// processed at the next start; without a spool, or when it is full, they are dropped and
    /// counted. They are appended behind what the spool holds, so across a restart they may
    /// come after batches that arrived later. Returns (spooled, dropped).
    pub fn spill(&self) -> (u64, u64) {
        let mut state = self.lock();
        let batches: Vec<Batch> = state.queue.drain(..).collect();
        state.queue_bytes = 0;
        let (mut spooled, mut dropped) = (0, 0);
        for batch in batches {
            let ok = match state.spool.as_mut() {
                Some(spool) => append(spool, &batch).is_ok(),
                None => false,
            };
            if ok {
                spooled += 1;
                self.metrics.record_spooled();
            } else {
                dropped += 1;
                self.metrics
                    .record_drop(DropReason::Shutdown, batch.bytes.len() as u64);
            }
        }
        (spooled, dropped)
    }

    /// Current sizes for /metrics.
    pub fn gauges(&self) -> IngestGauges {
        let state = self.lock();
        IngestGauges {
            queue_batches: state.queue.len(),
            queue_bytes: state.queue_bytes,
            queue_max_batches: self.limits.max_batches,
            queue_max_bytes: self.limits.max_bytes,
            spool_bytes: state.spool.as_ref().map_or(0, Spool::bytes),
            spool_segments: state.spool.as_ref().map_or(0, Spool::segments),
            spool_max_bytes: self.spool_max_bytes,
            oldest_wait_seconds: state.queue.front().map_or(0.0, |b| b.age().as_secs_f64()),
        }
    }

    /// True when neither memory nor spool holds a batch.
    pub fn is_empty(&self) -> bool {
        let state = self.lock();
        state.queue.is_empty() && state.spool.as_ref().is_none_or(Spool::is_empty)
    }
}

/// Spool payload: the arrival time (8 bytes, little endian) then the body.
fn append(spool: &mut Spool, batch: &Batch) -> Result<(), SpoolError> {
    let mut frame = Vec::with_capacity(8 + batch.bytes.len());
    frame.extend_from_slice(&batch.received_unix_nanos.to_le_bytes());
    frame.extend_from_slice(&batch.bytes);
    spool.append(&frame)
}

fn decode(mut frame: Vec<u8>) -> Batch {
    if frame.len() < 8 {
        return Batch {
            bytes: frame,
            received_unix_nanos: unix_nanos(),
            spooled: true,
        };
    }
    let mut time = [0u8; 8];
    time.copy_from_slice(&frame[..8]);
    frame.drain(..8);
    Batch {
        bytes: frame,
        received_unix_nanos: i64::from_le_bytes(time),
        spooled: true,
    }
}

#[cfg(test)]
mod tests {
    use super::super::spool::SpoolLimits;
    use super::*;

    fn body(i: usize) -> Vec<u8> {
        format!("{i:06}").into_bytes()
    }

    fn take(ingest: &Ingest) -> Option<Batch> {
        match ingest.next(Duration::from_millis(1)) {
            Next::Batch(b) => Some(b),
            _ => None,
        }
    }

    #[test]
    fn overflow_spools_and_order_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new(1));
        let spool = Spool::open(dir.path(), SpoolLimits::default()).unwrap();
        let ingest = Ingest::new(
            QueueLimits {
                max_batches: 3,
                max_bytes: 1 << 20,
            },
            Some(spool),
            1 << 30,
            Arc::clone(&metrics),
        );
        let placed: Vec<Placed> = (0..8).map(|i| ingest.push(body(i)).unwrap()).collect();
        assert_eq!(&placed[..3], &[Placed::Memory; 3]);
        assert_eq!(&placed[3..], &[Placed::Spool; 5]);
        // Room in memory again, but the spool holds older batches: still spooled.
        assert_eq!(take(&ingest).unwrap().bytes, body(0));
        assert_eq!(ingest.push(body(8)).unwrap(), Placed::Spool);
        for i in 1..=8 {
            let batch = take(&ingest).unwrap();
            assert_eq!(batch.bytes, body(i), "batch {i}");
            assert_eq!(batch.spooled, i >= 3);
        }
        assert!(take(&ingest).is_none());
        assert!(ingest.is_empty());
        // Drained: memory again.
        assert_eq!(ingest.push(body(9)).unwrap(), Placed::Memory);
        assert_eq!(metrics.batches_spooled(), 6);
        assert_eq!(metrics.batches_unspooled(), 6);
        assert_eq!(ingest.gauges().spool_bytes, 0);
    }

    #[test]
    fn bytes_bound_and_drops_without_spool() {
        let metrics = Arc::new(Metrics::new(1));
        let ingest = Ingest::new(
            QueueLimits {
                max_batches: 100,
                max_bytes: 10,
            },
            None,
            0,
            metrics,
        );
        // An oversized batch is taken when the queue is empty (never starved).
        assert_eq!(ingest.push(vec![0; 50]).unwrap(), Placed::Memory);
        assert_eq!(ingest.push(vec![0; 5]), Err(DropReason::QueueFull));
        assert_eq!(ingest.gauges().queue_bytes, 50);
        take(&ingest).unwrap();
        assert_eq!(ingest.push(vec![0; 5]).unwrap(), Placed::Memory);
        assert_eq!(ingest.push(vec![0; 5]).unwrap(), Placed::Memory);
        assert_eq!(ingest.push(vec![0; 1]), Err(DropReason::QueueFull));
        ingest.close();
        assert_eq!(ingest.push(vec![0; 1]), Err(DropReason::Shutdown));
        assert!(take(&ingest).is_some());
        assert!(take(&ingest).is_some());
        assert!(matches!(ingest.next(Duration::ZERO), Next::Closed));
    }

    #[test]
    fn spool_full_is_a_drop_and_spill_keeps_memory_batches() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new(1));
        let spool = Spool::open(
            dir.path(),
            SpoolLimits {
                max_bytes: 60,
                segment_bytes: 1 << 20,
            },
        )
        .unwrap();
        let ingest = Ingest::new(
            QueueLimits {
                max_batches: 1,
                max_bytes: 1 << 20,
            },
            Some(spool),
            60,
            Arc::clone(&metrics),
        );
        assert_eq!(ingest.push(vec![1; 20]).unwrap(), Placed::Memory);
        assert_eq!(ingest.push(vec![2; 20]).unwrap(), Placed::Spool); // 36 bytes on disk
        assert_eq!(ingest.push(vec![3; 20]), Err(DropReason::SpoolFull));
        ingest.close();
        let (spooled, dropped) = ingest.spill();
        // The memory batch fits (36 + 36 > 60: no) -> dropped and counted.
        assert_eq!((spooled, dropped), (0, 1));
        assert_eq!(metrics.drops(DropReason::Shutdown), 1);
        let batch = take(&ingest).unwrap();
        assert_eq!(batch.bytes, vec![2; 20]);
    }

    #[test]
    fn worker_wakes_on_push() {
        let ingest = Arc::new(Ingest::new(
            QueueLimits::default(),
            None,
            0,
            Arc::new(Metrics::new(1)),
        ));
        let pusher = Arc::clone(&ingest);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            pusher.push(b"x".to_vec()).unwrap();
        });
        let started = Instant::now();
        assert!(matches!(
            ingest.next(Duration::from_secs(5)),
            Next::Batch(_)
        ));
        assert!(started.elapsed() < Duration::from_secs(4));
        t.join().unwrap();
    }
}
