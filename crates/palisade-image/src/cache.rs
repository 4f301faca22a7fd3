//! Content-addressed blob cache: `<dir>/sha256/<hex>`, filled by streaming into a temp file in
//! `<dir>/tmp/` that is renamed into place only after its digest and size were verified, so a
//! crash or a failed download never leaves a wrong entry under a digest's name. Entries are
//! verified again (lazily, while streamed) every time they are opened.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::ImageError;
use crate::registry::digest::{Hasher, OnMismatch, Sha256Digest, VerifyingReader};
use crate::source::BlobOpener;

/// A directory of blobs named by their sha256 digest.
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl BlobCache {
    /// Opens (creating if needed) a cache rooted at `dir`.
    pub fn new(dir: PathBuf) -> Result<BlobCache, ImageError> {
        for sub in ["sha256", "tmp"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| ImageError::io(d.display().to_string(), e))?;
        }
        Ok(BlobCache { dir })
    }

    /// `<user cache dir>/palisade/blobs` (e.g. `~/.cache/palisade/blobs`).
    pub fn default_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("palisade").join("blobs"))
    }

    /// The cache root.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob with `digest` lives (whether or not it is there).
    pub fn path_for(&self, digest: &Sha256Digest) -> PathBuf {
        self.dir.join("sha256").join(digest.hex())
    }

    /// Whether a blob is cached with the expected size. Content is verified when opened.
    pub fn contains(&self, digest: &Sha256Digest, size: u64) -> bool {
        std::fs::metadata(self.path_for(digest)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Opens a cached blob behind a [`VerifyingReader`]; a corrupted entry fails at end of
    /// stream and is removed so that the next run fetches it again.
    pub fn open(
        &self,
        digest: &Sha256Digest,
        size: Option<u64>,
    ) -> Result<Box<dyn Read + Send>, ImageError> {
        open_verified(&self.path_for(digest), digest, size, true)
    }

    /// A [`BlobOpener`] for a cached blob (what [`crate::source::LayerBlob::open`] holds).
    pub fn opener(&self, digest: &Sha256Digest, size: Option<u64>) -> BlobOpener {
        let path = self.path_for(digest);
        let digest = digest.clone();
        Box::new(move || open_verified(&path, &digest, size, true))
    }

    /// Reads a whole small cached blob (configs), verified; `Ok(None)` if absent or corrupted
    /// (a corrupted entry is removed).
    pub fn read_small(&self, digest: &Sha256Digest, size: u64) -> Option<Vec<u8>> {
        if !self.contains(digest, size) {
            return None;
        }
        let mut buf = Vec::new();
        let mut r = self.open(digest, Some(size)).ok()?;
        r.read_to_end(&mut buf).ok()?;
        Some(buf)
    }

    /// Reads a whole cached blob of unknown size up to `max` bytes, verified; `None` if absent,
    /// larger, or corrupted (a corrupted entry is removed).
    pub fn read_cached(&self, digest: &Sha256Digest, max: u64) -> Option<Vec<u8>> {
        let meta = std::fs::metadata(self.path_for(digest)).ok()?;
        if !meta.is_file() || meta.len() > max {
            return None;
        }
        self.read_small(digest, meta.len())
    }

    /// Starts writing a blob; commit it with [`BlobWriter::commit`].
    pub fn writer(
        &self,
        digest: &Sha256Digest,
        expected_size: Option<u64>,
    ) -> Result<BlobWriter, ImageError> {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join("tmp").join(format!(
            "{}.{}.{}.partial",
            digest.hex(),
            std::process::id(),
            n
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| ImageError::io(tmp.display().to_string(), e))?;
        Ok(BlobWriter {
            file: Some(BufWriter::with_capacity(256 << 10, file)),
            tmp,
            dest: self.path_for(digest),
            hasher: Hasher::new(),
            expected: digest.clone(),
            expected_size,
        })
    }

    /// Stores a small blob held in memory (after checking its digest).
    pub fn put(&self, digest: &Sha256Digest, bytes: &[u8]) -> Result<(), ImageError> {
        let mut w = self.writer(digest, Some(bytes.len() as u64))?;
        w.write(bytes)?;
        w.commit()
    }
}

fn open_verified(
    path: &Path,
    digest: &Sha256Digest,
    size: Option<u64>,
    evict: bool,
) -> Result<Box<dyn Read + Send>, ImageError> {
    let file = File::open(path).map_err(|e| ImageError::io(path.display().to_string(), e))?;
    let mut reader = VerifyingReader::new(
        std::io::BufReader::with_capacity(256 << 10, file),
        format!("cached blob {digest}"),
        digest.clone(),
        size,
    );
    if evict {
        reader = reader.on_mismatch(OnMismatch::Evict(path.to_path_buf()));
    }
    Ok(Box::new(reader))
}

/// A blob being written into the cache. Dropping it without [`commit`](Self::commit) removes
/// the temp file.
pub struct BlobWriter {
    file: Option<BufWriter<File>>,
    tmp: PathBuf,
    dest: PathBuf,
    hasher: Hasher,
    expected: Sha256Digest,
    expected_size: Option<u64>,
}

impl BlobWriter {
    /// Appends a chunk; fails as soon as more than the expected size arrived.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), ImageError> {
        self.hasher.update(chunk);
        if let Some(size) = self.expected_size
            && self.hasher.len() > size
        {
            return Err(ImageError::Layer {
                layer: self.expected.to_string(),
                message: format!("blob is larger than the {size} bytes its descriptor states"),
            });
        }
        let Some(f) = self.file.as_mut() else {
            return Err(ImageError::io(
                self.tmp.display().to_string(),
                std::io::Error::other("writer already closed"),
            ));
        };
        f.write_all(chunk)
            .map_err(|e| ImageError::io(self.tmp.display().to_string(), e))
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// Verifies size and digest, then moves the blob into place.
    pub fn commit(mut self) -> Result<(), ImageError> {
        let tmp = self.tmp.display().to_string();
        if let Some(f) = self.file.take() {
            let f = f
                .into_inner()
                .map_err(|e| ImageError::io(tmp.clone(), e.into_error()))?;
            drop(f);
        }
        let len = self.hasher.len();
        if let Some(size) = self.expected_size
            && len != size
        {
            return Err(ImageError::Layer {
                layer: self.expected.to_string(),
                message: format!("truncated blob: got {len} of {size} bytes"),
            });
        }
        let actual = std::mem::take(&mut self.hasher).finish();
        if actual != self.expected {
            return Err(ImageError::DigestMismatch {
                what: format!("blob {}", self.expected),
                expected: self.expected.to_string(),
                actual: actual.to_string(),
            });
        }
        std::fs::rename(&self.tmp, &self.dest)
            .map_err(|e| ImageError::io(self.dest.display().to_string(), e))?;
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // After a successful commit the temp file is gone and this is a no-op.
        self.file.take();
        let _ = std::fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_verifies_and_evicts() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path().join("c")).unwrap();
        let data = b"layer bytes".repeat(1000);
        let d = Sha256Digest::of(&data);
        assert!(!cache.contains(&d, data.len() as u64));
        let mut w = cache.writer(&d, Some(data.len() as u64)).unwrap();
        for chunk in data.chunks(777) {
            w.write(chunk).unwrap();
        }
        w.commit().unwrap();
        assert!(cache.contains(&d, data.len() as u64));
        assert!(!cache.contains(&d, 1));
        let mut out = Vec::new();
        (cache.opener(&d, Some(data.len() as u64)))()
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        // No temp files left behind.
        assert_eq!(
            std::fs::read_dir(dir.path().join("c/tmp")).unwrap().count(),
            0
        );

        // Corrupt the entry in place (same size): detected at EOF and evicted.
        let mut bad = data.clone();
        bad[5] ^= 1;
        std::fs::write(cache.path_for(&d), &bad).unwrap();
        assert!(cache.contains(&d, data.len() as u64));
        let err = cache
            .open(&d, None)
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(!cache.contains(&d, data.len() as u64));
        assert_eq!(cache.read_small(&d, data.len() as u64), None);
    }

    #[test]
    fn rejects_wrong_content_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path().to_path_buf()).unwrap();
        let d = Sha256Digest::of(b"expected");
        let mut w = cache.writer(&d, None).unwrap();
        w.write(b"something else").unwrap();
        assert!(matches!(w.commit(), Err(ImageError::DigestMismatch { .. })));
        let mut w = cache.writer(&d, Some(3)).unwrap();
        assert!(w.write(b"toolong").is_err());
        drop(w);
        let mut w = cache.writer(&d, Some(8)).unwrap();
        w.write(b"expe").unwrap();
        assert!(w.commit().unwrap_err().to_string().contains("truncated"));
        assert!(!cache.path_for(&d).exists());
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        cache.put(&d, b"expected").unwrap();
        assert_eq!(cache.read_small(&d, 8).as_deref(), Some(&b"expected"[..]));
        assert_eq!(cache.read_cached(&d, 8).as_deref(), Some(&b"expected"[..]));
        assert_eq!(cache.read_cached(&d, 7), None);
    }
}
