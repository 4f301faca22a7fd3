//! Evaluation workers: OS threads, each owning one evaluator (a regorus engine serves one thread
//! at a time), fed by one bounded queue. A worker rebuilds its evaluator when the policy set in
//! service changes, and survives a panicking evaluation.

use super::Policies;
use super::metrics::Metrics;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Work for a worker: run with the set in service and this thread's evaluator for it.
pub type Job<P> = Box<dyn FnOnce(&P, &mut <P as Policies>::Evaluator) + Send>;

/// Why a job was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    /// Every worker is busy and the queue is full.
    Full,
    /// The workers are gone (shutting down).
    Closed,
}

pub struct Pool<P: Policies> {
    sender: SyncSender<Job<P>>,
    metrics: Arc<Metrics>,
}

impl<P: Policies> Pool<P> {
    /// Starts `workers` threads sharing a queue of `capacity` jobs. The threads end when the
    /// pool is dropped and the queue drained.
    pub fn start(
        workers: usize,
        capacity: usize,
        policies: watch::Receiver<Option<Arc<P>>>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = sync_channel::<Job<P>>(capacity.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..workers.max(1) {
            let receiver = Arc::clone(&receiver);
            let policies = policies.clone();
            let metrics = Arc::clone(&metrics);
            std::thread::Builder::new()
                .name(format!("palisade-eval-{index}"))
                .spawn(move || worker(&receiver, &policies, &metrics))?;
        }
        Ok(Pool { sender, metrics })
    }

    /// Queues a job without waiting; a full queue is refused at once (the caller answers with
    /// its failure policy rather than letting requests pile up behind a slow evaluation).
    pub fn submit(&self, job: Job<P>) -> Result<(), SubmitError> {
        self.metrics.queue_add(1);
        match self.sender.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.metrics.queue_add(-1);
                Err(match e {
                    TrySendError::Full(_) => SubmitError::Full,
                    TrySendError::Disconnected(_) => SubmitError::Closed,
                })
            }
        }
    }
}

fn worker<P: Policies>(
    receiver: &Mutex<Receiver<Job<P>>>,
    policies: &watch::Receiver<Option<Arc<P>>>,
    metrics: &Metrics,
) {
    let mut state: Option<(Arc<P>, P::Evaluator)> = None;
    loop {
        let job = {
            let queue = receiver.lock().unwrap_or_else(|p| p.into_inner());
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        metrics.queue_add(-1);
        let Some(current) = policies.borrow().clone() else {
            // Not loaded yet: dropping the job tells the waiting request.
            continue;
        };
        let (set, evaluator) = match state.take() {
            Some((set, evaluator)) if Arc::ptr_eq(&set, &current) => (set, evaluator),
            _ => {
                let evaluator = current.evaluator();
                (current, evaluator)
            }
        };
        let mut evaluator = evaluator;
        let outcome = catch_unwind(AssertUnwindSafe(|| job(&set, &mut evaluator)));
        match outcome {
            Ok(()) => state = Some((set, evaluator)),
            Err(_) => {
                // The evaluator may be half-way through a query: build a fresh one next time.
                tracing::error!("policy evaluation panicked; the request gets the failure policy");
            }
        }
    }
}
