//! The disk spool: a size-capped FIFO of byte batches on disk. The audit webhook
//! (`palisade detect serve`) spills batches to it when its in-memory queue is full, so a burst
//! from the API server is absorbed instead of refused; the node sensor's publisher keeps batches
//! in it while the backend is unreachable and drains them in order when it is back.
//!
//! A directory of segment files `NNNNNNNNNNNNNNNNNNNN.spool` (a growing sequence number, so file
//! names sort in write order). Each batch is one frame: `u32` little-endian payload length,
//! `u32` little-endian CRC-32 of the payload, then the payload. A frame cut short by a crash or
//! whose checksum does not match is detected when read back; the rest of that segment is skipped
//! (a torn write leaves nothing trustworthy after it) and counted. Segments left by a previous
//! run are picked up at start, oldest first. The total size is capped: an append that would
//! exceed it is refused and the caller drops the batch.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes of frame header before each payload.
pub const FRAME_HEADER: u64 = 8;
/// Largest payload a frame may declare; anything above is treated as corruption.
pub const MAX_FRAME: u32 = 1 << 30;

/// Why the spool could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the spool is full ({used} of {max} bytes)")]
    Full { used: u64, max: u64 },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Size limits of a spool.
#[derive(Debug, Clone, Copy)]
pub struct SpoolLimits {
    /// Total bytes on disk (frames included) beyond which appends are refused.
    pub max_bytes: u64,
    /// A segment is closed and a new one started once it reaches this size.
    pub segment_bytes: u64,
}

impl Default for SpoolLimits {
    /// 1 GiB in 16 MiB segments.
    fn default() -> Self {
        SpoolLimits {
            max_bytes: 1 << 30,
            segment_bytes: 16 << 20,
        }
    }
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    path: PathBuf,
    /// Bytes in the file (frames written, or found at start).
    bytes: u64,
}

/// Counters of what the spool skipped while reading back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SpoolCorruption {
    /// Frames (or segment tails) skipped because they were torn or failed their checksum.
    pub torn_frames: u64,
    /// Bytes skipped with them.
    pub skipped_bytes: u64,
}

/// A FIFO of byte batches on disk. Not synchronised: the owner holds it behind a lock.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limits: SpoolLimits,
    /// Oldest first; the last one is being appended to (when `writer` is open).
    segments: VecDeque<Segment>,
    writer: Option<File>,
    /// Reader on the oldest segment (by sequence number).
    reader: Option<(u64, BufReader<File>)>,
    /// Bytes of the oldest segment already read back.
    consumed: u64,
    /// Bytes on disk over all segments (read frames are counted until their segment is deleted).
    used: u64,
    next_seq: u64,
    corruption: SpoolCorruption,
    /// A frame read by [`Spool::peek`] and not yet popped (its bytes stay on disk until then).
    peeked: Option<Vec<u8>>,
}

impl Spool {
    /// Opens (creating) `dir` and picks up the segments a previous run left there.
    pub fn open(dir: &Path, limits: SpoolLimits) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut segments = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name();
            let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".spool"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let bytes = entry.metadata().map_err(io_err(&entry.path()))?.len();
            segments.push(Segment {
                seq,
                path: entry.path(),
                bytes,
            });
        }
        segments.sort_by_key(|s| s.seq);
        let used = segments.iter().map(|s| s.bytes).sum();
        let next_seq = segments.last().map_or(1, |s| s.seq + 1);
        Ok(Spool {
            dir: dir.to_path_buf(),
            limits: SpoolLimits {
                max_bytes: limits.max_bytes.max(1),
                segment_bytes: limits.segment_bytes.max(FRAME_HEADER + 1),
            },
            segments: segments.into(),
            writer: None,
            reader: None,
            consumed: 0,
            used,
            next_seq,
            corruption: SpoolCorruption::default(),
            peeked: None,
        })
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.used
    }

    /// Segment files on disk.
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    /// True when nothing is waiting to be read back.
    pub fn is_empty(&self) -> bool {
        self.peeked.is_none() && self.used <= self.consumed
    }

    /// What reading back has skipped so far.
    pub fn corruption(&self) -> SpoolCorruption {
        self.corruption
    }

    /// Whether `len` more payload bytes fit under the cap.
    pub fn fits(&self, len: usize) -> bool {
        self.used + FRAME_HEADER + len as u64 <= self.limits.max_bytes
    }

    /// Appends one batch as a frame. `Err(Full)` when it would exceed the cap (nothing written).
    pub fn append(&mut self, payload: &[u8]) -> Result<(), SpoolError> {
        if payload.len() as u64 > u64::from(MAX_FRAME) || !self.fits(payload.len()) {
            return Err(SpoolError::Full {
                used: self.used,
                max: self.limits.max_bytes,
            });
        }
        let frame_len = FRAME_HEADER + payload.len() as u64;
        let need_new = match self.segments.back() {
            _ if self.writer.is_none() => true,
            Some(last) => last.bytes > 0 && last.bytes + frame_len > self.limits.segment_bytes,
            None => true,
        };
        if need_new {
            self.start_segment()?;
        }
        let mut frame = Vec::with_capacity(FRAME_HEADER as usize + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        frame.extend_from_slice(payload);
        let (Some(writer), Some(segment)) = (self.writer.as_mut(), self.segments.back_mut()) else {
            return Err(SpoolError::Io {
                path: self.dir.display().to_string(),
                source: std::io::Error::other("no open segment"),
            });
        };
        if let Err(source) = writer.write_all(&frame) {
            // A partial write leaves a torn frame: close this segment so the reader skips
            // the tail, and report the batch as not spooled.
            self.writer = None;
            if let Ok(meta) = std::fs::metadata(&segment.path) {
                self.used = self.used - segment.bytes + meta.len();
                segment.bytes = meta.len();
            }
            return Err(SpoolError::Io {
                path: segment.path.display().to_string(),
                source,
            });
        }
        segment.bytes += frame.len() as u64;
        self.used += frame.len() as u64;
        Ok(())
    }

    fn start_segment(&mut self) -> Result<(), SpoolError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let path = self.dir.join(format!("{seq:020}.spool"));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        self.writer = Some(file);
        self.segments.push_back(Segment {
            seq,
            path,
            bytes: 0,
        });
        Ok(())
    }

    /// Reads back the oldest batch not yet read; `Ok(None)` when the spool is empty. A torn or
    /// corrupt frame is skipped with the rest of its segment and counted. A segment read to its
    /// end is deleted at once (its bytes leave the cap).
    pub fn pop(&mut self) -> Result<Option<Vec<u8>>, SpoolError> {
        let payload = match self.peeked.take() {
            Some(payload) => Some(payload),
            None => self.read_next()?,
        };
        if payload.is_some()
            && self
                .segments
                .front()
                .is_some_and(|front| self.consumed >= front.bytes)
        {
            self.retire_front()?;
        }
        Ok(payload)
    }

    /// The oldest batch without removing it: a sender reads it, delivers it, and only then
    /// [`pop`](Spool::pop)s it, so a batch that could not be delivered stays on disk (and
    /// survives a restart) instead of living only in memory. Repeated calls return the same
    /// batch.
    pub fn peek(&mut self) -> Result<Option<&[u8]>, SpoolError> {
        if self.peeked.is_none() {
            self.peeked = self.read_next()?;
        }
        Ok(self.peeked.as_deref())
    }

    /// Reads the next intact frame, skipping (and counting) torn ones and deleting segments
    /// read to their end before it; the segment the frame came from is left for `pop`.
    fn read_next(&mut self) -> Result<Option<Vec<u8>>, SpoolError> {
        loop {
            let Some(front) = self.segments.front() else {
                return Ok(None);
            };
            let (front_seq, front_bytes) = (front.seq, front.bytes);
            if self
                .reader
                .as_ref()
                .is_none_or(|(seq, _)| *seq != front_seq)
            {
                let file = File::open(&front.path).map_err(io_err(&front.path))?;
                self.reader = Some((front_seq, BufReader::with_capacity(1 << 16, file)));
                self.consumed = 0;
            }
            if self.consumed >= front_bytes {
                self.retire_front()?;
                continue;
            }
            let Some((_, reader)) = self.reader.as_mut() else {
                continue;
            };
            match read_frame(reader, front_bytes - self.consumed) {
                Frame::Ok(payload) => {
                    self.consumed += FRAME_HEADER + payload.len() as u64;
                    return Ok(Some(payload));
                }
                Frame::Torn => {
                    self.corruption.torn_frames += 1;
                    self.corruption.skipped_bytes += front_bytes - self.consumed;
                    self.consumed = front_bytes;
                }
            }
        }
    }

    /// Deletes the oldest segment (read to its end); closes the writer if it was that one, so
    /// the next append starts a new segment.
    fn retire_front(&mut self) -> Result<(), SpoolError> {
        self.reader = None;
        self.consumed = 0;
        let Some(segment) = self.segments.pop_front() else {
            return Ok(());
        };
        if self.segments.is_empty() {
            self.writer = None;
        }
        self.used = self.used.saturating_sub(segment.bytes);
        match std::fs::remove_file(&segment.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SpoolError::Io {
                path: segment.path.display().to_string(),
                source,
            }),
        }
    }
}

enum Frame {
    Ok(Vec<u8>),
    Torn,
}

/// One frame from `reader`, which has `available` bytes left in its segment.
fn read_frame(reader: &mut impl Read, available: u64) -> Frame {
    if available < FRAME_HEADER {
        return Frame::Torn;
    }
    let mut header = [0u8; FRAME_HEADER as usize];
    if reader.read_exact(&mut header).is_err() {
        return Frame::Torn;
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_FRAME || u64::from(len) > available - FRAME_HEADER {
        return Frame::Torn;
    }
    let mut payload = vec![0u8; len as usize];
    if reader.read_exact(&mut payload).is_err() || crc32fast::hash(&payload) != crc {
        return Frame::Torn;
    }
    Frame::Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: u64, segment: u64) -> SpoolLimits {
        SpoolLimits {
            max_bytes: max,
            segment_bytes: segment,
        }
    }

    #[test]
    fn fifo_across_segments_and_files_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), limits(1 << 20, 64)).unwrap();
        for i in 0..20u32 {
            spool
                .append(format!("batch-{i:03}-{}", "x".repeat(40)).as_bytes())
                .unwrap();
        }
        assert!(spool.segments() >= 10, "{}", spool.segments());
        assert!(!spool.is_empty());
        for i in 0..20u32 {
            let got = spool.pop().unwrap().unwrap();
            assert!(got.starts_with(format!("batch-{i:03}-").as_bytes()));
        }
        assert_eq!(spool.pop().unwrap(), None);
        assert!(spool.is_empty());
        assert_eq!(spool.bytes(), 0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn interleaved_append_and_pop_keep_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), limits(1 << 20, 1 << 10)).unwrap();
        let mut next_in = 0;
        let mut next_out = 0;
        for round in 0..50 {
            for _ in 0..(round % 4) {
                spool.append(format!("{next_in}").as_bytes()).unwrap();
                next_in += 1;
            }
            if let Some(b) = spool.pop().unwrap() {
                assert_eq!(String::from_utf8(b).unwrap(), next_out.to_string());
                next_out += 1;
            }
        }
        while let Some(b) = spool.pop().unwrap() {
            assert_eq!(String::from_utf8(b).unwrap(), next_out.to_string());
            next_out += 1;
        }
        assert_eq!(next_in, next_out);
    }

    #[test]
    fn cap_refuses_and_frees_after_reading() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), limits(100, 40)).unwrap();
        let payload = [7u8; 30];
        spool.append(&payload).unwrap();
        spool.append(&payload).unwrap();
        let full = spool.append(&payload).unwrap_err();
        assert!(
            matches!(full, SpoolError::Full { used: 76, max: 100 }),
            "{full:?}"
        );
        // Each frame has its own 40-byte segment: reading one deletes it and frees its bytes.
        assert_eq!(spool.segments(), 2);
        assert_eq!(spool.pop().unwrap().unwrap(), payload);
        assert_eq!((spool.bytes(), spool.segments()), (38, 1));
        spool.append(&payload).unwrap();
        assert!(spool.append(&payload).is_err());
        assert_eq!(spool.pop().unwrap().unwrap(), payload);
        assert_eq!(spool.pop().unwrap().unwrap(), payload);
        assert_eq!(spool.pop().unwrap(), None);
        assert_eq!(spool.bytes(), 0);
    }

    #[test]
    fn torn_and_corrupt_frames_are_skipped_and_counted_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = Spool::open(dir.path(), limits(1 << 20, 100)).unwrap();
            spool.append(b"first segment one").unwrap();
            spool.append(b"first segment two").unwrap();
            spool.append(&[b'a'; 90]).unwrap(); // second segment
            spool.append(&[b'b'; 90]).unwrap(); // third segment
            spool.append(b"fourth segment").unwrap();
        }
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        assert_eq!(names.len(), 4, "{names:?}");
        // Flip a payload byte of the second segment and cut the third mid-frame.
        let mut second = std::fs::read(&names[1]).unwrap();
        second[20] ^= 0xff;
        std::fs::write(&names[1], second).unwrap();
        let third = std::fs::read(&names[2]).unwrap();
        std::fs::write(&names[2], &third[..50]).unwrap();

        let mut spool = Spool::open(dir.path(), limits(1 << 20, 100)).unwrap();
        assert_eq!(spool.pop().unwrap().unwrap(), b"first segment one");
        assert_eq!(spool.pop().unwrap().unwrap(), b"first segment two");
        assert_eq!(spool.pop().unwrap().unwrap(), b"fourth segment");
        assert_eq!(spool.pop().unwrap(), None);
        assert_eq!(spool.corruption().torn_frames, 2);
        assert_eq!(spool.corruption().skipped_bytes, 98 + 50);
        // New appends after the restart continue the sequence and read back.
        spool.append(b"after").unwrap();
        assert_eq!(spool.pop().unwrap().unwrap(), b"after");
    }

    #[test]
    fn peek_keeps_the_batch_on_disk_until_popped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = Spool::open(dir.path(), limits(1 << 20, 40)).unwrap();
            spool.append(b"one").unwrap();
            spool.append(&[b'x'; 30]).unwrap(); // its own segment
            assert_eq!(spool.peek().unwrap(), Some(&b"one"[..]));
            assert_eq!(spool.peek().unwrap(), Some(&b"one"[..]));
            assert!(!spool.is_empty());
            assert_eq!(spool.pop().unwrap().unwrap(), b"one");
            // Peeked, not popped: still on disk when the process goes away.
            assert_eq!(spool.peek().unwrap().map(<[u8]>::len), Some(30));
        }
        let mut spool = Spool::open(dir.path(), limits(1 << 20, 40)).unwrap();
        assert_eq!(spool.pop().unwrap().unwrap(), [b'x'; 30]);
        assert!(spool.is_empty());
        assert_eq!(spool.pop().unwrap(), None);
        assert_eq!(spool.bytes(), 0);
    }

    #[test]
    fn garbage_length_is_not_allocated() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            read_frame(&mut bytes.as_slice(), bytes.len() as u64),
            Frame::Torn
        ));
    }
}
