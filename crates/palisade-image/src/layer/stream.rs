//! The byte plumbing under the tar reader: compression sniffing, byte caps and draining.
//!
//! ```text
//! source ─ RawCounter (compressed bytes, progress) ─ BufReader ─ Decoder (gzip/zstd/none)
//!        ─ Capped (decompressed bytes, layer + image caps) ─ BufReader ─ tar
//! ```

use std::io::{self, BufRead, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Size of the read buffers on both sides of the decompressor. Large buffers keep the number of
/// decompressor calls low (tar reads 512-byte headers).
pub(crate) const BUF_SIZE: usize = 256 * 1024;

/// How a layer blob is compressed, as told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Zstd,
    /// A plain tar.
    #[default]
    None,
}

impl Compression {
    /// Tells the compression from the magic bytes (gzip `1f 8b`, zstd `28 b5 2f fd`).
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Budgets shared by all layers of one image (and by the workers reading them in parallel).
#[derive(Debug, Default)]
pub struct ImageBudget {
    /// Decompressed bytes read so far over all layers.
    pub(crate) image_bytes: AtomicU64,
    /// File content kept in memory so far over all layers.
    pub(crate) kept_bytes: AtomicU64,
    /// Set when another layer failed: workers stop at the next entry.
    pub(crate) cancel: AtomicBool,
}

impl ImageBudget {
    /// A fresh budget for one image.
    pub fn new() -> Self {
        Self::default()
    }

    /// A budget that starts with `kept` bytes already held (e.g. by an [`crate::ImageFs`] being
    /// extended layer by layer).
    pub fn with_kept(kept: u64) -> Self {
        let b = Self::default();
        b.kept_bytes.store(kept, Ordering::Relaxed);
        b
    }

    /// Decompressed bytes read so far over all layers.
    pub fn image_bytes(&self) -> u64 {
        self.image_bytes.load(Ordering::Relaxed)
    }

    /// Asks every reader sharing this budget to stop at its next entry.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Records which cap was hit, so the error can be told apart from I/O errors after the tar crate
/// has wrapped it.
pub(crate) type LimitFlag = Arc<OnceLock<String>>;

fn limit_error(flag: &LimitFlag, what: String) -> io::Error {
    let _ = flag.set(what.clone());
    io::Error::other(what)
}

/// Counts compressed bytes and reports them as progress.
pub(crate) struct RawCounter<'p> {
    inner: Box<dyn Read + Send>,
    pub(crate) count: u64,
    progress: Option<(&'p dyn crate::progress::Progress, &'p str)>,
}

impl<'p> RawCounter<'p> {
    pub(crate) fn new(
        inner: Box<dyn Read + Send>,
        progress: Option<(&'p dyn crate::progress::Progress, &'p str)>,
    ) -> Self {
        RawCounter {
            inner,
            count: 0,
            progress,
        }
    }
}

impl Read for RawCounter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if let Some((p, task)) = self.progress
            && n > 0
        {
            p.advance(task, n as u64);
        }
        Ok(n)
    }
}

/// The first bytes of a stream (up to 4, fewer only if the stream is shorter), read before
/// anything else so short reads cannot hide the magic.
pub(crate) fn read_head<R: Read>(r: &mut R) -> io::Result<([u8; 4], usize)> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((head, n))
}

/// A stream whose first bytes were already read by [`read_head`]: gives them back first.
pub(crate) struct Prefixed<R> {
    head: [u8; 4],
    pos: usize,
    len: usize,
    pub(crate) inner: R,
}

impl<R> Prefixed<R> {
    pub(crate) fn new(head: [u8; 4], len: usize, inner: R) -> Self {
        Prefixed {
            head,
            pos: 0,
            len: len.min(4),
            inner,
        }
    }
}

impl<R: Read> Read for Prefixed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.len {
            let n = (self.len - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// The decompressor chosen by sniffing.
pub(crate) enum Decoder<R: BufRead> {
    Gzip(Box<flate2::bufread::MultiGzDecoder<R>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, R>>),
    Plain(R),
}

impl<R: BufRead> Decoder<R> {
    pub(crate) fn new(inner: R, compression: Compression) -> io::Result<Self> {
        Ok(match compression {
            Compression::Gzip => {
                Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(inner)))
            }
            Compression::Zstd => {
                Decoder::Zstd(Box::new(zstd::stream::read::Decoder::with_buffer(inner)?))
            }
            Compression::None => Decoder::Plain(inner),
        })
    }

    pub(crate) fn into_inner(self) -> R {
        match self {
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Zstd(d) => d.finish(),
            Decoder::Plain(r) => r,
        }
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
            Decoder::Plain(r) => r.read(buf),
        }
    }
}

/// Counts decompressed bytes against the per-layer and per-image caps.
pub(crate) struct Capped<'b, R> {
    inner: R,
    pub(crate) count: u64,
    layer_cap: u64,
    image_cap: u64,
    budget: &'b ImageBudget,
    flag: LimitFlag,
}

impl<'b, R: Read> Capped<'b, R> {
    pub(crate) fn new(
        inner: R,
        layer_cap: u64,
        image_cap: u64,
        budget: &'b ImageBudget,
        flag: LimitFlag,
    ) -> Self {
        Capped {
            inner,
            count: 0,
            layer_cap,
            image_cap,
            budget,
            flag,
        }
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Capped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.count >= self.layer_cap {
            // Allow one probe of at most one byte past the cap: a stream that ends exactly at the
            // cap is fine, anything more is a bomb.
            let mut one = [0u8; 1];
            let n = self.inner.read(&mut one)?;
            if n == 0 {
                return Ok(0);
            }
            return Err(limit_error(
                &self.flag,
                format!(
                    "more than {} decompressed bytes in this layer (max_layer_bytes)",
                    self.layer_cap
                ),
            ));
        }
        let room = (self.layer_cap - self.count).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        self.count += n as u64;
        let total = self
            .budget
            .image_bytes
            .fetch_add(n as u64, Ordering::Relaxed)
            + n as u64;
        if total > self.image_cap {
            return Err(limit_error(
                &self.flag,
                format!(
                    "more than {} decompressed bytes in the image (max_image_bytes)",
                    self.image_cap
                ),
            ));
        }
        Ok(n)
    }
}

/// Reads `r` to its end, at most `cap` bytes; returns the number read or `Err(())`-like `None`
/// when more than `cap` bytes remain.
pub(crate) fn drain<R: Read>(r: &mut R, cap: u64, scratch: &mut [u8]) -> io::Result<Option<u64>> {
    let mut total = 0u64;
    loop {
        let n = match r.read(scratch) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(Some(total));
        }
        total += n as u64;
        if total > cap {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_magic() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"usr/"), Compression::None);
        assert_eq!(Compression::sniff(&[]), Compression::None);
    }

    /// Hands out one byte per read, like a slow network stream might.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    #[test]
    fn head_survives_short_reads() {
        let mut r = Trickle(&[0x28, 0xb5, 0x2f, 0xfd, 9]);
        let (head, n) = read_head(&mut r).unwrap();
        assert_eq!(Compression::sniff(&head[..n]), Compression::Zstd);
        let mut p = Prefixed::new(head, n, r);
        let mut out = Vec::new();
        p.read_to_end(&mut out).unwrap();
        assert_eq!(out, [0x28, 0xb5, 0x2f, 0xfd, 9]);
        let mut short = Trickle(&[0x1f]);
        let (head, n) = read_head(&mut short).unwrap();
        assert_eq!((n, Compression::sniff(&head[..n])), (1, Compression::None));
    }

    #[test]
    fn capped_reader_stops_at_layer_cap() {
        let budget = ImageBudget::new();
        let flag = LimitFlag::default();
        let data = [0u8; 100];
        let mut r = Capped::new(&data[..], 50, u64::MAX, &budget, flag.clone());
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        assert!(flag.get().is_some());
        // Exactly at the cap is fine.
        let flag = LimitFlag::default();
        let mut r = Capped::new(&data[..], 100, u64::MAX, &budget, flag.clone());
        let mut out = Vec::new();
        assert_eq!(r.read_to_end(&mut out).unwrap(), 100);
        assert!(flag.get().is_none());
    }

    #[test]
    fn capped_reader_counts_image_budget() {
        let budget = ImageBudget::new();
        let data = [0u8; 60];
        let mut out = Vec::new();
        let mut r = Capped::new(&data[..], 1000, 100, &budget, LimitFlag::default());
        r.read_to_end(&mut out).unwrap();
        let flag = LimitFlag::default();
        let mut r = Capped::new(&data[..], 1000, 100, &budget, flag.clone());
        assert!(r.read_to_end(&mut out).is_err());
        assert!(flag.get().unwrap().contains("max_image_bytes"));
    }
}
