//! A disk cache of per-layer [`ChangeSet`]s, so a warm scan does not decompress layers again.
//!
//! Layers are content-addressed: the change set read from a layer depends only on its bytes
//! (named by the digest, which was verified when the change set was first read), the catalogers'
//! interest, the caps, and the code. The cache key hashes all of these (the code through a salt
//! the caller provides, by default the crate version and the running executable's size and
//! modification time). A damaged or foreign cache file is a miss, never an error.

use super::{Addition, ChangeSet, LayerStats, Whiteout};
use crate::catalog::Cataloger;
use crate::fs::EntryKind;
use crate::{ImageError, Limits};
use palisade_core::Package;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"PLSCS01\n";

/// Where change sets are cached, and the salt that ties them to the code that produced them.
#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
    salt: String,
}

impl LayerCache {
    /// Opens (creating) a cache directory. `salt` must change whenever the cataloging code does;
    /// [`LayerCache::default_salt`] is a good choice for a binary.
    pub fn new(dir: PathBuf, salt: impl Into<String>) -> Result<Self, ImageError> {
        std::fs::create_dir_all(&dir).map_err(|e| ImageError::io(dir.display().to_string(), e))?;
        Ok(LayerCache {
            dir,
            salt: salt.into(),
        })
    }

    /// The crate version plus the size and modification time of the running executable, so a
    /// rebuilt binary never trusts results of an older one.
    pub fn default_salt() -> String {
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| {
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                format!("{}:{mtime}", m.len())
            })
            .unwrap_or_default();
        format!("palisade-image {} {exe}", env!("CARGO_PKG_VERSION"))
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, digest: &str, catalogers: &[Box<dyn Cataloger>], limits: &Limits) -> PathBuf {
        let mut h = Sha256::new();
        h.update(MAGIC);
        h.update(self.salt.as_bytes());
        h.update([0]);
        h.update(digest.as_bytes());
        h.update([0]);
        for c in catalogers {
            h.update(c.name().as_bytes());
            h.update([0]);
        }
        for v in [
            limits.max_layer_bytes,
            limits.max_layer_entries,
            limits.max_kept_file_bytes,
            limits.max_analyzed_file_bytes,
            limits.max_total_kept_bytes,
            u64::from(limits.max_archive_depth),
        ] {
            h.update(v.to_le_bytes());
        }
        self.dir
            .join(format!("{}.changes", hex::encode(h.finalize())))
    }

    /// The cached change set of a layer, if there is a valid one.
    pub fn load(
        &self,
        digest: &str,
        catalogers: &[Box<dyn Cataloger>],
        limits: &Limits,
    ) -> Option<ChangeSet> {
        let path = self.path(digest, catalogers, limits);
        let data = std::fs::read(&path).ok()?;
        let cs = decode(&data, catalogers);
        if cs.is_none() {
            let _ = std::fs::remove_file(&path);
        }
        let mut cs = cs?;
        if &*cs.layer != digest {
            return None;
        }
        cs.stats.from_cache = true;
        Some(cs)
    }

    /// Stores a change set (atomically: a reader never sees half a file).
    pub fn store(
        &self,
        cs: &ChangeSet,
        catalogers: &[Box<dyn Cataloger>],
        limits: &Limits,
    ) -> Result<(), ImageError> {
        let path = self.path(&cs.layer, catalogers, limits);
        let bytes = encode(cs);
        let mut tmp = tempfile_in(&self.dir)?;
        tmp.1
            .write_all(&bytes)
            .and_then(|()| tmp.1.sync_all())
            .map_err(|e| ImageError::io(tmp.0.display().to_string(), e))?;
        std::fs::rename(&tmp.0, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp.0);
            ImageError::io(path.display().to_string(), e)
        })
    }
}

fn tempfile_in(dir: &Path) -> Result<(PathBuf, std::fs::File), ImageError> {
    let unique = format!(
        ".tmp-{}-{:?}-{}",
        std::process::id(),
        std::thread::current().id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let path = dir.join(unique.replace(['(', ')'], ""));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| ImageError::io(path.display().to_string(), e))?;
    Ok((path, f))
}

struct Enc(Vec<u8>);

impl Enc {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
}

fn encode(cs: &ChangeSet) -> Vec<u8> {
    let mut e = Enc(MAGIC.to_vec());
    e.str(&cs.layer);
    e.bytes(&serde_json::to_vec(&cs.stats).unwrap_or_default());
    e.u64(cs.whiteouts.len() as u64);
    for w in &cs.whiteouts {
        match w {
            Whiteout::Remove(p) => {
                e.0.push(0);
                e.str(p);
            }
            Whiteout::Opaque(p) => {
                e.0.push(1);
                e.str(p);
            }
        }
    }
    let live: Vec<&Addition> = cs
        .additions
        .iter()
        .filter(|a| !matches!(a, Addition::Dead))
        .collect();
    e.u64(live.len() as u64);
    for a in live {
        match a {
            Addition::Entry { path, mode, kind } => {
                e.0.push(0);
                e.str(path);
                e.u64(u64::from(*mode));
                match kind {
                    EntryKind::File(data) => {
                        e.0.push(0);
                        e.bytes(data);
                    }
                    EntryKind::Skipped { size } => {
                        e.0.push(1);
                        e.u64(*size);
                    }
                    EntryKind::Symlink(t) => {
                        e.0.push(2);
                        e.str(t);
                    }
                    EntryKind::Dir => e.0.push(3),
                    EntryKind::Analyzed(found) => {
                        e.0.push(4);
                        e.bytes(&serde_json::to_vec(found).unwrap_or_default());
                    }
                }
            }
            Addition::HardLink { path, target } => {
                e.0.push(1);
                e.str(path);
                e.str(target);
            }
            Addition::Dead => {}
        }
    }
    e.u64(cs.shadowed.len() as u64);
    for h in &cs.shadowed {
        e.u64(*h);
    }
    e.0
}

/// Bounds-checked reader over a cache file.
struct Dec<'a>(&'a [u8]);

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u64()?).ok()?;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
    /// A count of items each at least `min` bytes long: never more than the bytes left allow.
    fn count(&mut self, min: usize) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n <= self.0.len() / min.max(1)).then_some(n)
    }
}

fn decode(data: &[u8], catalogers: &[Box<dyn Cataloger>]) -> Option<ChangeSet> {
    let mut d = Dec(data);
    if d.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let layer: Arc<str> = Arc::from(d.string()?);
    let stats: LayerStats = serde_json::from_slice(d.bytes()?).ok()?;
    let n = d.count(9)?;
    let mut whiteouts = Vec::with_capacity(n);
    for _ in 0..n {
        let tag = d.u8()?;
        let p = d.string()?;
        whiteouts.push(match tag {
            0 => Whiteout::Remove(p),
            1 => Whiteout::Opaque(p),
            _ => return None,
        });
    }
    let n = d.count(9)?;
    let mut additions = Vec::with_capacity(n);
    for _ in 0..n {
        match d.u8()? {
            0 => {
                let path = d.string()?;
                let mode = u32::try_from(d.u64()?).ok()?;
                let kind = match d.u8()? {
                    0 => EntryKind::File(Arc::from(d.bytes()?)),
                    1 => EntryKind::Skipped { size: d.u64()? },
                    2 => EntryKind::Symlink(d.string()?),
                    3 => EntryKind::Dir,
                    4 => {
                        let found: Vec<(String, Vec<Package>)> =
                            serde_json::from_slice(d.bytes()?).ok()?;
                        let mut out = Vec::with_capacity(found.len());
                        for (name, packages) in found {
                            // Names are the catalogers' own `&'static str`s.
                            let c = catalogers.iter().find(|c| c.name() == name)?;
                            out.push((c.name(), packages));
                        }
                        EntryKind::Analyzed(out)
                    }
                    _ => return None,
                };
                additions.push(Addition::Entry { path, mode, kind });
            }
            1 => {
                let path = d.string()?;
                let target = d.string()?;
                additions.push(Addition::HardLink { path, target });
            }
            _ => return None,
        }
    }
    let n = d.count(8)?;
    let mut shadowed = std::collections::HashSet::with_capacity_and_hasher(n, Default::default());
    for _ in 0..n {
        shadowed.insert(d.u64()?);
    }
    if !d.0.is_empty() {
        return None;
    }
    Some(ChangeSet {
        layer,
        whiteouts,
        additions,
        shadowed,
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_rejects_every_truncation() {
        let mut shadowed = std::collections::HashSet::default();
        shadowed.insert(42u64);
        let cs = ChangeSet {
            layer: Arc::from("sha256:x"),
            whiteouts: vec![Whiteout::Remove("/a".into()), Whiteout::Opaque("/b".into())],
            additions: vec![
                Addition::Entry {
                    path: "/f".into(),
                    mode: 0o644,
                    kind: EntryKind::File(Arc::from(&b"data"[..])),
                },
                Addition::Dead,
                Addition::Entry {
                    path: "/l".into(),
                    mode: 0o777,
                    kind: EntryKind::Symlink("f".into()),
                },
                Addition::HardLink {
                    path: "/h".into(),
                    target: "/f".into(),
                },
            ],
            shadowed,
            stats: LayerStats::default(),
        };
        let bytes = encode(&cs);
        let back = decode(&bytes, &[]).unwrap();
        assert_eq!(back.whiteouts, cs.whiteouts);
        assert_eq!(back.additions.len(), 3);
        assert_eq!(back.additions[0], cs.additions[0]);
        assert_eq!(back.additions[2], cs.additions[3]);
        assert!(back.shadowed.contains(&42));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], &[]).is_none(), "cut {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer, &[]).is_none());
    }
}
