//! Content digests (`sha256:<hex>`) and a reader that verifies one while the bytes stream by.
//!
//! Every blob Palisade reads (from a registry, the blob cache, an OCI layout or an archive) goes
//! through [`VerifyingReader`], so a tampered or truncated blob ends in an error instead of in
//! an SBOM.

use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use crate::ImageError;

/// A validated `sha256:<64 lowercase hex>` digest. Only sha256 is supported: it is what every
/// registry and image tool produces; anything else is refused with a clear error rather than
/// silently left unverified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(String);

impl Sha256Digest {
    /// Parses and validates a digest string such as `sha256:e3b0c4…`.
    pub fn parse(s: &str) -> Result<Self, ImageError> {
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(ImageError::Malformed {
                what: "digest".into(),
                message: format!("{s:?} is not of the form sha256:<hex>"),
            });
        };
        if algo != "sha256" {
            return Err(ImageError::Unsupported {
                what: "digest algorithm".into(),
                value: format!("{algo} (in {s:?}); only sha256 is supported"),
            });
        }
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(ImageError::Malformed {
                what: "digest".into(),
                message: format!("{s:?} does not have 64 lowercase hex digits"),
            });
        }
        Ok(Sha256Digest(s.to_string()))
    }

    /// Digest of a byte slice.
    pub fn of(bytes: &[u8]) -> Self {
        Sha256Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The 64 hex digits (safe to use as a file name: validated).
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    /// The full `sha256:<hex>` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns an error naming `what` unless `bytes` hash to this digest.
    pub fn verify(&self, what: &str, bytes: &[u8]) -> Result<(), ImageError> {
        let actual = Sha256Digest::of(bytes);
        if &actual != self {
            return Err(ImageError::DigestMismatch {
                what: what.to_string(),
                expected: self.0.clone(),
                actual: actual.0,
            });
        }
        Ok(())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Incremental sha256 with a byte count, for writers and readers that hash as they go.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: Sha256,
    len: u64,
}

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Sha256Digest {
        Sha256Digest(format!("sha256:{}", hex::encode(self.inner.finalize())))
    }
}

/// What to do when a [`VerifyingReader`] finds a mismatch.
#[derive(Debug, Clone, Default)]
pub enum OnMismatch {
    /// Only report the error.
    #[default]
    Report,
    /// Report and delete this file (a corrupted blob-cache entry, so the next run re-fetches it).
    Evict(PathBuf),
}

/// Wraps a reader and hashes everything read through it. At end of stream it compares the
/// digest (and the expected size, if known) and returns an [`io::ErrorKind::InvalidData`]
/// error naming the expected and actual digest on mismatch. Reading more bytes than the
/// expected size fails immediately, so an endless source (`/dev/zero` behind a symlink, a
/// hostile server) cannot run forever.
pub struct VerifyingReader<R> {
    inner: R,
    what: String,
    expected: Sha256Digest,
    expected_size: Option<u64>,
    hasher: Option<Hasher>,
    on_mismatch: OnMismatch,
    failed: Option<String>,
}

impl<R: Read> VerifyingReader<R> {
    /// Verifies `inner` against `expected`; `what` names the blob in error messages.
    pub fn new(
        inner: R,
        what: impl Into<String>,
        expected: Sha256Digest,
        expected_size: Option<u64>,
    ) -> Self {
        VerifyingReader {
            inner,
            what: what.into(),
            expected,
            expected_size,
            hasher: Some(Hasher::new()),
            on_mismatch: OnMismatch::Report,
            failed: None,
        }
    }

    /// Sets what happens on mismatch (e.g. evicting a corrupted cache entry).
    pub fn on_mismatch(mut self, action: OnMismatch) -> Self {
        self.on_mismatch = action;
        self
    }

    fn fail(&mut self, message: String) -> io::Error {
        if let OnMismatch::Evict(path) = &self.on_mismatch {
            // Best effort: a cache entry that cannot be removed is reported below anyway.
            let _ = std::fs::remove_file(path);
        }
        let message = match &self.on_mismatch {
            OnMismatch::Evict(path) => format!(
                "{message} (corrupted cache entry {} removed; run again to re-fetch it)",
                path.display()
            ),
            OnMismatch::Report => message,
        };
        self.failed = Some(message.clone());
        io::Error::new(io::ErrorKind::InvalidData, message)
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(msg) = &self.failed {
            return Err(io::Error::new(io::ErrorKind::InvalidData, msg.clone()));
        }
        let Some(hasher) = self.hasher.as_mut() else {
            return Ok(0); // already verified at EOF
        };
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n > 0 {
            hasher.update(&buf[..n]);
            if let Some(size) = self.expected_size
                && hasher.len() > size
            {
                let msg = format!(
                    "{}: more than the expected {size} bytes (digest {})",
                    self.what, self.expected
                );
                return Err(self.fail(msg));
            }
            return Ok(n);
        }
        let Some(hasher) = self.hasher.take() else {
            return Ok(0);
        };
        let len = hasher.len();
        if let Some(size) = self.expected_size
            && len != size
        {
            let msg = format!(
                "{}: truncated: got {len} of {size} bytes (digest {})",
                self.what, self.expected
            );
            return Err(self.fail(msg));
        }
        let actual = hasher.finish();
        if actual != self.expected {
            let msg = format!(
                "digest mismatch for {}: expected {}, got {}",
                self.what, self.expected, actual
            );
            return Err(self.fail(msg));
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_rejects_digests() {
        let d = Sha256Digest::parse(EMPTY).unwrap();
        assert_eq!(d.hex().len(), 64);
        assert_eq!(Sha256Digest::of(b""), d);
        assert!(matches!(
            Sha256Digest::parse("sha512:abcd"),
            Err(ImageError::Unsupported { .. })
        ));
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha256:../../etc/passwd",
            &EMPTY.to_uppercase().replace("SHA256", "sha256"),
            &format!("{EMPTY}0"),
        ] {
            assert!(Sha256Digest::parse(bad).is_err(), "{bad}");
        }
    }

    fn read_all(r: &mut impl Read) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        r.read_to_end(&mut v)?;
        Ok(v)
    }

    #[test]
    fn verifying_reader_accepts_matching_content() {
        let data = b"hello world".to_vec();
        let d = Sha256Digest::of(&data);
        let mut r = VerifyingReader::new(&data[..], "blob", d, Some(11));
        assert_eq!(read_all(&mut r).unwrap(), data);
        // Reading after EOF stays at EOF.
        assert_eq!(r.read(&mut [0u8; 4]).unwrap(), 0);
    }

    #[test]
    fn verifying_reader_rejects_mismatch_at_eof() {
        let d = Sha256Digest::of(b"hello world");
        let mut r = VerifyingReader::new(&b"hello worle"[..], "layer x", d.clone(), None);
        let err = read_all(&mut r).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let msg = err.to_string();
        assert!(msg.contains(d.as_str()), "{msg}");
        assert!(
            msg.contains(Sha256Digest::of(b"hello worle").as_str()),
            "{msg}"
        );
        // The error sticks.
        assert!(r.read(&mut [0u8; 4]).is_err());
    }

    #[test]
    fn verifying_reader_rejects_truncation_and_overrun() {
        let data = b"0123456789";
        let d = Sha256Digest::of(data);
        let mut short = VerifyingReader::new(&data[..5], "blob", d.clone(), Some(10));
        assert!(
            read_all(&mut short)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        let mut endless = VerifyingReader::new(io::repeat(0), "blob", d, Some(10));
        assert!(
            read_all(&mut endless)
                .unwrap_err()
                .to_string()
                .contains("more than")
        );
    }

    #[test]
    fn verifying_reader_evicts_corrupted_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, b"corrupt").unwrap();
        let d = Sha256Digest::of(b"good");
        let f = std::fs::File::open(&path).unwrap();
        let mut r = VerifyingReader::new(f, "cached blob", d, None)
            .on_mismatch(OnMismatch::Evict(path.clone()));
        let err = read_all(&mut r).unwrap_err();
        assert!(err.to_string().contains("removed"), "{err}");
        assert!(!path.exists());
    }
}
