//! Progress reporting for long work (downloads, layer reading), without tying the engine to a
//! terminal library: the CLI plugs in progress bars, tests and servers plug in nothing.

/// Receives progress of named tasks (a layer download, a layer read). Implementations must be
/// cheap: `advance` is called for every chunk.
pub trait Progress: Send + Sync {
    /// A task started; `total` bytes are expected (0 if unknown).
    fn start(&self, task: &str, total: u64);
    /// `bytes` more were processed.
    fn advance(&self, task: &str, bytes: u64);
    /// The task ended (successfully or not).
    fn finish(&self, task: &str);
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _task: &str, _total: u64) {}
    fn advance(&self, _task: &str, _bytes: u64) {}
    fn finish(&self, _task: &str) {}
}
