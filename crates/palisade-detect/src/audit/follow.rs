//! Following an audit log file as it grows, like `tail -F`: survives rename+create rotation
//! (the file at the path has a new device/inode: the old one is drained, then the new one read
//! from its start) and copytruncate (the file shrank below what was read: read again from 0).
//! Polls, so it needs no inotify and works on any filesystem, and hands on complete lines only.
//! Like `tail -F`, a copytruncate is only seen if the file is polled while it is still shorter
//! than what was already read; lines written in between by a fast writer are then skipped.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How to follow a file.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Read the file from its beginning (replay) instead of from its current end (watch).
    pub from_start: bool,
    /// How long to sleep when there is nothing new. 200 ms keeps alert latency well under a
    /// second at negligible cost.
    pub poll_interval: Duration,
    /// A line longer than this is counted and skipped without being buffered.
    pub max_line_bytes: usize,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            from_start: false,
            poll_interval: Duration::from_millis(200),
            max_line_bytes: super::parse::DEFAULT_MAX_DOCUMENT_BYTES,
        }
    }
}

/// What following saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FollowStats {
    /// Complete lines handed on.
    pub lines: u64,
    /// Lines over `max_line_bytes`, skipped.
    pub oversized_lines: u64,
    /// Rename+create rotations followed.
    pub rotations: u64,
    /// Truncations (copytruncate) followed.
    pub truncations: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// Why following stopped with an error (a file that is missing is waited for, not an error).
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// Reading or seeking the open file failed (not: the path being briefly missing).
    #[error("reading {path}: {source}")]
    Read {
        /// The followed path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Splits bytes into lines with a bound on line length.
struct Lines {
    buf: Vec<u8>,
    max: usize,
    size: usize,
    overflow: bool,
}

impl Lines {
    fn push(&mut self, mut data: &[u8], stats: &mut FollowStats, on_line: &mut dyn FnMut(&[u8])) {
        while let Some(p) = memchr::memchr(b'\n', data) {
            let part = &data[..p];
            self.size += part.len();
            if self.overflow || self.size > self.max {
                stats.oversized_lines += 1;
            } else if self.buf.is_empty() {
                stats.lines += 1;
                on_line(part.strip_suffix(b"\r").unwrap_or(part));
            } else {
                self.buf.extend_from_slice(part);
                stats.lines += 1;
                let line = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf);
                on_line(line);
            }
            self.reset();
            data = &data[p + 1..];
        }
        self.size += data.len();
        if self.overflow {
            return;
        }
        if self.size > self.max {
            self.overflow = true;
            self.buf = Vec::new();
        } else {
            self.buf.extend_from_slice(data);
        }
    }

    /// A last line without a newline (at rotation): handed on if it has content.
    fn flush(&mut self, stats: &mut FollowStats, on_line: &mut dyn FnMut(&[u8])) {
        if self.overflow {
            stats.oversized_lines += 1;
        } else if !self.buf.trim_ascii().is_empty() {
            stats.lines += 1;
            on_line(&self.buf);
        }
        self.reset();
    }

    fn reset(&mut self) {
        self.buf.clear();
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
        self.size = 0;
        self.overflow = false;
    }
}

#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn identity(_meta: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

struct Open {
    file: File,
    id: (u64, u64),
    offset: u64,
}

fn open(path: &Path, at_end: bool) -> Option<Open> {
    let mut file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    let offset = if at_end {
        file.seek(SeekFrom::End(0)).ok()?
    } else {
        0
    };
    Some(Open {
        file,
        id: identity(&meta),
        offset,
    })
}

/// Reads `cur` to its end, handing on complete lines; true if anything was read.
fn drain(
    cur: &mut Open,
    chunk: &mut [u8],
    lines: &mut Lines,
    stats: &mut FollowStats,
    stop: &AtomicBool,
    on_line: &mut dyn FnMut(&[u8]),
) -> std::io::Result<bool> {
    let mut progressed = false;
    loop {
        let n = match cur.file.read(chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(progressed);
        }
        progressed = true;
        cur.offset += n as u64;
        stats.bytes += n as u64;
        lines.push(&chunk[..n], stats, on_line);
        if stop.load(Ordering::Relaxed) {
            return Ok(progressed);
        }
    }
}

/// Follows `path` until `stop` is set, calling `on_line` for every complete line (without its
/// newline). A missing file is waited for; a file that appears later is read from its start.
pub fn follow(
    path: &Path,
    options: &FollowOptions,
    stop: &AtomicBool,
    on_line: &mut dyn FnMut(&[u8]),
) -> Result<FollowStats, FollowError> {
    let mut stats = FollowStats::default();
    let mut lines = Lines {
        buf: Vec::new(),
        max: options.max_line_bytes.max(1),
        size: 0,
        overflow: false,
    };
    let mut chunk = vec![0u8; 64 * 1024];
    let mut current = open(path, !options.from_start);
    let read_err = |source| FollowError::Read {
        path: path.to_path_buf(),
        source,
    };
    loop {
        let mut progressed = false;
        if let Some(cur) = current.as_mut() {
            progressed =
                drain(cur, &mut chunk, &mut lines, &mut stats, stop, on_line).map_err(read_err)?;
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(stats);
        }
        match (std::fs::metadata(path), current.as_mut()) {
            (Ok(_), None) => {
                current = open(path, false);
                progressed |= current.is_some();
            }
            (Ok(meta), Some(cur)) if identity(&meta) != cur.id => {
                // Rotated: what the writer added to the old file before it moved on is read
                // first; a last unterminated line ends here.
                drain(cur, &mut chunk, &mut lines, &mut stats, stop, on_line).map_err(read_err)?;
                lines.flush(&mut stats, on_line);
                stats.rotations += 1;
                current = open(path, false);
                progressed = true;
            }
            (Ok(meta), Some(cur)) if meta.len() < cur.offset => {
                // Truncated in place (copytruncate): start over from the beginning.
                lines.reset();
                stats.truncations += 1;
                cur.offset = cur.file.seek(SeekFrom::Start(0)).map_err(read_err)?;
                progressed = true;
            }
            // Unchanged, or the path is briefly missing between rename and create.
            _ => {}
        }
        if !progressed {
            std::thread::sleep(options.poll_interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::time::Instant;

    /// Runs `follow` on a thread, sending each line back; returns the receiver, stop flag and
    /// join handle.
    fn start(
        path: &Path,
        from_start: bool,
        max_line_bytes: usize,
    ) -> (
        mpsc::Receiver<String>,
        Arc<AtomicBool>,
        std::thread::JoinHandle<Result<FollowStats, FollowError>>,
    ) {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let options = FollowOptions {
            from_start,
            poll_interval: Duration::from_millis(10),
            max_line_bytes,
        };
        let path = path.to_path_buf();
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            follow(&path, &options, &flag, &mut |line| {
                let _ = tx.send(String::from_utf8_lossy(line).into_owned());
            })
        });
        (rx, stop, handle)
    }

    fn expect_lines(rx: &mpsc::Receiver<String>, want: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < want.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => got.push(line),
                Err(_) => break,
            }
        }
        assert_eq!(got, want);
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open for append");
        f.write_all(text.as_bytes()).expect("append");
        f.flush().expect("flush");
    }

    fn finish(
        stop: Arc<AtomicBool>,
        handle: std::thread::JoinHandle<Result<FollowStats, FollowError>>,
    ) -> FollowStats {
        stop.store(true, Ordering::Relaxed);
        handle
            .join()
            .expect("follow thread")
            .expect("follow succeeds")
    }

    /// Gives the follower time to reach end of file and record its position.
    fn settle() {
        std::thread::sleep(Duration::from_millis(250));
    }

    #[test]
    fn starts_at_end_and_follows_rename_and_create_rotation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        append(&path, "old-1\nold-2\n");
        let (rx, stop, handle) = start(&path, false, 1024);
        settle();
        append(&path, "a\nb");
        expect_lines(&rx, &["a"]);
        append(&path, "c\n");
        expect_lines(&rx, &["bc"]);
        // logrotate's default: rename, then a new file at the path.
        append(&path, "last-before-rotation");
        std::fs::rename(&path, dir.path().join("audit.log.1")).expect("rename");
        settle();
        append(&path, "new-1\nnew-2\n");
        expect_lines(&rx, &["last-before-rotation", "new-1", "new-2"]);
        let stats = finish(stop, handle);
        assert_eq!(stats.rotations, 1);
        assert_eq!(stats.lines, 5);
    }

    #[test]
    fn lines_written_to_the_old_file_just_before_rotation_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        append(&path, "");
        let (rx, stop, handle) = start(&path, false, 1024);
        settle();
        for round in 0..5 {
            let old = dir.path().join(format!("audit.log.{round}"));
            append(&path, &format!("r{round}-a\nr{round}-b\n"));
            std::fs::rename(&path, &old).expect("rename");
            append(&path, &format!("r{round}-c\n"));
            settle();
        }
        let want: Vec<String> = (0..5)
            .flat_map(|r| [format!("r{r}-a"), format!("r{r}-b"), format!("r{r}-c")])
            .collect();
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        expect_lines(&rx, &want);
        let stats = finish(stop, handle);
        assert_eq!(stats.rotations, 5);
    }

    #[test]
    fn follows_copytruncate_and_replays_from_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        append(&path, "first\nsecond\n");
        let (rx, stop, handle) = start(&path, true, 1024);
        expect_lines(&rx, &["first", "second"]);
        settle();
        // copytruncate: the file is copied away and truncated in place.
        std::fs::File::create(&path).expect("truncate");
        settle();
        append(&path, "after\n");
        expect_lines(&rx, &["after"]);
        let stats = finish(stop, handle);
        assert_eq!(stats.truncations, 1);
        assert_eq!(stats.rotations, 0);
    }

    #[test]
    fn waits_for_a_missing_file_and_skips_long_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("later.log");
        let (rx, stop, handle) = start(&path, false, 16);
        settle();
        append(&path, &format!("short\n{}\nok\n", "x".repeat(100)));
        expect_lines(&rx, &["short", "ok"]);
        let stats = finish(stop, handle);
        assert_eq!(stats.oversized_lines, 1);
        assert_eq!(stats.lines, 2);
    }

    #[test]
    fn stop_flag_ends_an_idle_follow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("idle.log");
        append(&path, "");
        let (_rx, stop, handle) = start(&path, false, 1024);
        settle();
        let t = Instant::now();
        let stats = finish(stop, handle);
        assert!(t.elapsed() < Duration::from_secs(2));
        assert_eq!(stats.lines, 0);
    }
}
