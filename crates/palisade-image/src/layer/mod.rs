//! Safe, streaming layer reading: one pass over each layer blob, nothing written to disk.
//!
//! A layer is read in two steps so that several layers can be decompressed and parsed in parallel
//! while their effects are still applied strictly in layer order:
//!
//! 1. [`read_layer`] decompresses (gzip, zstd or none, sniffed from the magic bytes) and walks the
//!    tar stream once, deciding per entry from its path alone whether any cataloger wants it, and
//!    produces a [`ChangeSet`]: the layer's whiteouts, and its additions (directories, symlinks,
//!    kept files, in-stream analysis results, hard links) in tar order.
//! 2. [`ChangeSet::apply`] applies the whiteouts to the lower layers, then the additions, onto an
//!    [`ImageFs`].
//!
//! [`apply_layer`] does both for one layer. Hostile input ends in a typed error or a skip with a
//! warning: paths that climb above the root are skipped, absolute paths are taken relative to the
//! root, symlinks are stored as text and only ever resolved inside the in-memory root, and caps
//! ([`Limits`]) bound decompressed bytes, entries and the bytes held.

mod cache;
mod stream;

pub use cache::LayerCache;
pub use stream::{Compression, ImageBudget};

use crate::catalog::{Cataloger, FileMeta, combined_interest};
use crate::fs::{EntryKind, FileEntry, ImageFs, normalize_path};
use crate::progress::{NoProgress, Progress};
use crate::{ImageError, Limits};
use palisade_core::Package;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};
use std::io::{self, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use stream::{BUF_SIZE, Capped, Decoder, LimitFlag, Prefixed, RawCounter};

/// Bytes of a file shown to [`Cataloger::accepts_head`].
pub const HEAD_BYTES: usize = 64;

/// Largest up-front allocation for one file; bigger files grow as they are read, so a lying
/// header cannot reserve memory the stream never delivers.
const MAX_PREALLOC: u64 = 16 << 20;

/// Warnings kept per layer: a hostile layer with a million bad entries must not make a million
/// strings.
pub const MAX_WARNINGS_PER_LAYER: usize = 100;

fn push_warning(stats: &mut LayerStats, layer: &str, msg: String) {
    match stats.warnings.len() {
        n if n < MAX_WARNINGS_PER_LAYER => stats.warnings.push(format!("layer {layer}: {msg}")),
        n if n == MAX_WARNINGS_PER_LAYER => stats
            .warnings
            .push(format!("layer {layer}: further warnings suppressed")),
        _ => {}
    }
}

/// What reading and applying one layer did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerStats {
    /// The layer blob digest as the manifest names it.
    pub digest: String,
    pub compression: Compression,
    /// Bytes read from the blob as stored.
    pub compressed_bytes: u64,
    /// Bytes after decompression (the tar stream).
    pub decompressed_bytes: u64,
    /// Tar entries (after PAX / GNU long-name headers are folded in).
    pub entries: u64,
    /// Files whose content was kept for a cataloger.
    pub kept_files: u64,
    pub kept_bytes: u64,
    /// Files analysed in-stream (binaries, archives).
    pub analyzed_files: u64,
    /// Regular files nobody asked for (not stored).
    pub skipped_files: u64,
    /// `.wh.` whiteouts and opaque markers.
    pub whiteouts: u64,
    /// Entries skipped as unsafe or unusable, and other problems that did not stop the scan.
    pub warnings: Vec<String>,
    /// The change set came from a [`LayerCache`] (the blob was not read this time).
    #[serde(default)]
    pub from_cache: bool,
}

/// A whiteout from a layer: it removes paths of the layers below.
#[derive(Debug, Clone, PartialEq)]
enum Whiteout {
    /// `.wh.<name>`: remove `<name>` and its subtree.
    Remove(String),
    /// `.wh..wh..opq`: remove the children of the directory.
    Opaque(String),
}

/// One addition from a layer, in tar order.
#[derive(Debug, Clone, PartialEq)]
enum Addition {
    Entry {
        path: String,
        mode: u32,
        kind: EntryKind,
    },
    /// A hard link: resolved when applied, against this and the lower layers.
    HardLink { path: String, target: String },
    /// Superseded by a later entry of the same path in the same layer.
    Dead,
}

/// The effect of one layer, computed without looking at the layers below (so layers can be read
/// in parallel) and applied in layer order with [`ChangeSet::apply`].
#[derive(Debug, Clone)]
pub struct ChangeSet {
    layer: Arc<str>,
    whiteouts: Vec<Whiteout>,
    additions: Vec<Addition>,
    /// Hashes of paths this layer wrote with content nobody keeps: whatever lower layers had
    /// there is gone.
    shadowed: HashSet<u64, BuildHasherDefault<IdHasher>>,
    stats: LayerStats,
}

/// Paths are hashed once with SipHash; the sets keyed by those hashes need no second hash.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn path_hash(path: &str) -> u64 {
    let mut h = DefaultHasher::new();
    path.hash(&mut h);
    h.finish()
}

impl ChangeSet {
    /// The layer digest this change set came from.
    pub fn layer(&self) -> &str {
        &self.layer
    }

    /// What reading the layer did so far.
    pub fn stats(&self) -> &LayerStats {
        &self.stats
    }

    pub(crate) fn warn(&mut self, msg: String) {
        self.stats
            .warnings
            .push(format!("layer {}: {msg}", self.layer));
    }

    /// Counts a change set that was not read through `budget` (one from a [`LayerCache`])
    /// against the per-image caps, so cached and uncached scans fail alike.
    pub fn charge(&self, budget: &ImageBudget, limits: &Limits) -> Result<(), ImageError> {
        let limit = |limit: String| ImageError::LimitExceeded {
            layer: self.layer.to_string(),
            limit,
        };
        let bytes = self.stats.decompressed_bytes;
        if budget.image_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes > limits.max_image_bytes {
            return Err(limit(format!(
                "more than {} decompressed bytes in the image (max_image_bytes)",
                limits.max_image_bytes
            )));
        }
        let kept = self.stats.kept_bytes;
        if budget.kept_bytes.fetch_add(kept, Ordering::Relaxed) + kept > limits.max_total_kept_bytes
        {
            return Err(limit(format!(
                "more than {} bytes of file content kept (max_total_kept_bytes)",
                limits.max_total_kept_bytes
            )));
        }
        Ok(())
    }

    /// Applies the layer on top of `fs`: first its whiteouts (they only ever concern lower
    /// layers), then the paths it overwrote with unkept files, then its additions in tar order.
    /// Parent directories that are symlinks are followed inside the root, as a runtime extracting
    /// the layer would; hard links copy their target's entry. Returns the layer's statistics
    /// including problems found while applying.
    pub fn apply(self, fs: &mut ImageFs) -> LayerStats {
        let ChangeSet {
            layer,
            whiteouts,
            additions,
            shadowed,
            mut stats,
        } = self;
        let warn = |stats: &mut LayerStats, msg: String| push_warning(stats, &layer, msg);
        for w in whiteouts {
            let (path, opaque) = match &w {
                Whiteout::Remove(p) => (p, false),
                Whiteout::Opaque(p) => (p, true),
            };
            match fs.resolve_parent(path) {
                Some(real) if opaque => fs.remove_children(&real),
                Some(real) => fs.remove_tree(&real),
                None => warn(
                    &mut stats,
                    format!("whiteout {path}: symlink loop in parent, ignored"),
                ),
            }
        }
        if !shadowed.is_empty() && !fs.is_empty() {
            fs.remove_matching(|p| shadowed.contains(&path_hash(p)));
        }
        for a in additions {
            match a {
                Addition::Dead => {}
                Addition::Entry { path, mode, kind } => {
                    let Some(real) = fs.resolve_parent(&path) else {
                        warn(
                            &mut stats,
                            format!("{path}: symlink loop in parent directories, skipped"),
                        );
                        continue;
                    };
                    let kind = if real != path {
                        relocate(kind, &real)
                    } else {
                        kind
                    };
                    put(fs, real, mode, kind, &layer);
                }
                Addition::HardLink { path, target } => {
                    let (Some(real), Some(real_target)) =
                        (fs.resolve_parent(&path), fs.resolve_parent(&target))
                    else {
                        warn(
                            &mut stats,
                            format!("hard link {path} -> {target}: symlink loop, skipped"),
                        );
                        continue;
                    };
                    let Some(found) = fs.entry(&real_target) else {
                        warn(
                            &mut stats,
                            format!(
                                "hard link {path} -> {target}: target not in this or a lower layer, skipped"
                            ),
                        );
                        continue;
                    };
                    if matches!(found.kind, EntryKind::Dir) {
                        warn(
                            &mut stats,
                            format!("hard link {path} -> {target}: target is a directory, skipped"),
                        );
                        continue;
                    }
                    let (mode, kind) = (found.mode, relocate(found.kind.clone(), &real));
                    put(fs, real, mode, kind, &layer);
                }
            }
        }
        stats
    }
}

/// Inserts one entry; a non-directory replacing a directory removes the directory's subtree.
fn put(fs: &mut ImageFs, path: String, mode: u32, kind: EntryKind, layer: &Arc<str>) {
    if !matches!(kind, EntryKind::Dir)
        && matches!(
            fs.entry(&path),
            Some(FileEntry {
                kind: EntryKind::Dir,
                ..
            })
        )
    {
        fs.remove_children(&path);
    }
    fs.insert(
        path,
        FileEntry {
            layer: Some(layer.clone()),
            mode,
            kind,
        },
    );
}

/// Analysis results name the path they were found at; a copy at another path names that path.
fn relocate(kind: EntryKind, path: &str) -> EntryKind {
    match kind {
        EntryKind::Analyzed(mut found) => {
            for (_, packages) in &mut found {
                for p in packages {
                    p.location.path = path.to_string();
                }
            }
            EntryKind::Analyzed(found)
        }
        other => other,
    }
}

/// Reads one layer blob and applies it onto `fs` (see the module docs). The stream is read to its
/// end, so a digest-verifying reader reports a mismatch. Per-image caps count this layer alone
/// (plus the bytes `fs` already keeps); [`crate::scan::scan_image`] enforces them over all layers.
pub fn apply_layer(
    fs: &mut ImageFs,
    layer_digest: &str,
    reader: Box<dyn Read + Send>,
    catalogers: &[Box<dyn Cataloger>],
    limits: &Limits,
) -> Result<LayerStats, ImageError> {
    let budget = ImageBudget::with_kept(fs.kept_bytes());
    let changes = read_layer(
        layer_digest,
        reader,
        catalogers,
        limits,
        &budget,
        &NoProgress,
    )?;
    Ok(changes.apply(fs))
}

/// Why reading a layer stopped.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    Failed(ImageError),
    /// Another layer of the same image failed first.
    Cancelled,
}

impl From<ImageError> for ReadFailure {
    fn from(e: ImageError) -> Self {
        ReadFailure::Failed(e)
    }
}

/// Reads one layer blob into a [`ChangeSet`] without touching any [`ImageFs`]. `budget` carries
/// the per-image caps across layers (and across threads); `progress` hears of compressed bytes
/// under the task name `layer_digest`.
pub fn read_layer(
    layer_digest: &str,
    reader: Box<dyn Read + Send>,
    catalogers: &[Box<dyn Cataloger>],
    limits: &Limits,
    budget: &ImageBudget,
    progress: &dyn Progress,
) -> Result<ChangeSet, ImageError> {
    read_layer_inner(layer_digest, reader, catalogers, limits, budget, progress).map_err(
        |e| match e {
            ReadFailure::Failed(e) => e,
            ReadFailure::Cancelled => ImageError::Layer {
                layer: layer_digest.to_string(),
                message: "cancelled because another layer failed".into(),
            },
        },
    )
}

pub(crate) fn read_layer_inner(
    layer_digest: &str,
    reader: Box<dyn Read + Send>,
    catalogers: &[Box<dyn Cataloger>],
    limits: &Limits,
    budget: &ImageBudget,
    progress: &dyn Progress,
) -> Result<ChangeSet, ReadFailure> {
    let flag = LimitFlag::default();
    let mut p = Parser {
        layer: Arc::from(layer_digest),
        limits,
        catalogers,
        budget,
        flag: flag.clone(),
        whiteouts: Vec::new(),
        additions: Vec::new(),
        shadowed: HashSet::default(),
        added: HashMap::default(),
        stats: LayerStats {
            digest: layer_digest.to_string(),
            ..LayerStats::default()
        },
        last_entry_end: 0,
    };

    let mut counter = RawCounter::new(reader, Some((progress, layer_digest)));
    let (head, head_len) =
        stream::read_head(&mut counter).map_err(|e| p.io_error(&e, "reading the blob"))?;
    let compression = Compression::sniff(&head[..head_len]);
    p.stats.compression = compression;
    let raw = BufReader::with_capacity(BUF_SIZE, Prefixed::new(head, head_len, counter));
    let decoder = Decoder::new(raw, compression).map_err(|e| p.io_error(&e, "reading the blob"))?;
    let capped = Capped::new(
        decoder,
        limits.max_layer_bytes,
        limits.max_image_bytes,
        budget,
        flag,
    );
    let mut archive = tar::Archive::new(BufReader::with_capacity(BUF_SIZE, capped));
    {
        let entries = archive
            .entries()
            .map_err(|e| p.io_error(&e, "reading the tar stream"))?;
        for entry in entries {
            if budget.is_cancelled() {
                return Err(ReadFailure::Cancelled);
            }
            let mut entry = entry.map_err(|e| p.io_error(&e, "reading a tar header"))?;
            p.stats.entries += 1;
            if p.stats.entries > limits.max_layer_entries {
                return Err(p.limit(format!(
                    "more than {} tar entries (max_layer_entries)",
                    limits.max_layer_entries
                )));
            }
            p.entry(&mut entry)?;
        }
    }

    // The tar stream has ended (end-of-archive block or end of data). Read what follows so the
    // decompressor checks its trailer and the source sees its end (and verifies its digest).
    let mut scratch = vec![0u8; 64 * 1024];
    let mut tar_side = archive.into_inner();
    let consumed_by_tar = tar_side.get_ref().count - tar_side.buffer().len() as u64;
    if consumed_by_tar == p.last_entry_end {
        p.warn("tar stream ends without an end-of-archive block (truncated?)".into());
    }
    stream::drain(&mut tar_side, u64::MAX, &mut scratch)
        .map_err(|e| p.io_error(&e, "reading past the end of the tar stream"))?;
    let capped = tar_side.into_inner();
    p.stats.decompressed_bytes = capped.count;
    let mut raw = capped.into_inner().into_inner();
    match stream::drain(&mut raw, limits.max_layer_bytes, &mut scratch) {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(p.limit(format!(
                "more than {} bytes after the compressed stream (max_layer_bytes)",
                limits.max_layer_bytes
            )));
        }
        Err(e) => return Err(p.io_error(&e, "reading the end of the blob").into()),
    }
    p.stats.compressed_bytes = raw.get_ref().inner.count;

    Ok(ChangeSet {
        layer: p.layer,
        whiteouts: p.whiteouts,
        additions: p.additions,
        shadowed: p.shadowed,
        stats: p.stats,
    })
}

/// State while walking one layer's tar stream.
struct Parser<'a> {
    layer: Arc<str>,
    limits: &'a Limits,
    catalogers: &'a [Box<dyn Cataloger>],
    budget: &'a ImageBudget,
    flag: LimitFlag,
    whiteouts: Vec<Whiteout>,
    additions: Vec<Addition>,
    shadowed: HashSet<u64, BuildHasherDefault<IdHasher>>,
    /// Path hash → index in `additions`, to supersede duplicates within the layer.
    added: HashMap<u64, usize, BuildHasherDefault<IdHasher>>,
    stats: LayerStats,
    /// Offset in the tar stream just past the last entry's padded data.
    last_entry_end: u64,
}

impl Parser<'_> {
    fn warn(&mut self, msg: String) {
        push_warning(&mut self.stats, &self.layer, msg);
    }

    fn limit(&self, limit: String) -> ReadFailure {
        ReadFailure::Failed(ImageError::LimitExceeded {
            layer: self.layer.to_string(),
            limit,
        })
    }

    /// An I/O failure while reading the layer: a cap that was hit, or a broken stream.
    fn io_error(&self, e: &io::Error, doing: &str) -> ImageError {
        if let Some(limit) = self.flag.get() {
            return ImageError::LimitExceeded {
                layer: self.layer.to_string(),
                limit: limit.clone(),
            };
        }
        ImageError::Layer {
            layer: self.layer.to_string(),
            message: format!("{doing}: {}", error_chain(e)),
        }
    }

    fn add(&mut self, path: String, addition_of: impl FnOnce(String) -> Addition) {
        let h = path_hash(&path);
        self.shadowed.remove(&h);
        if let Some(old) = self.added.insert(h, self.additions.len()) {
            self.additions[old] = Addition::Dead;
        }
        self.additions.push(addition_of(path));
    }

    /// `path` was written with content nobody keeps.
    fn shadow(&mut self, path: &str) {
        let h = path_hash(path);
        if let Some(old) = self.added.remove(&h) {
            self.additions[old] = Addition::Dead;
        }
        self.shadowed.insert(h);
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ReadFailure> {
        let size = entry.size();
        // Bytes the entry occupies in the stream (for sparse files less than their size).
        let stored = if entry.header().entry_type().is_gnu_sparse() {
            entry.header().entry_size().unwrap_or(size)
        } else {
            size
        };
        let data_end = entry
            .raw_file_position()
            .saturating_add(stored.div_ceil(512).saturating_mul(512));
        self.last_entry_end = data_end;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(path) = normalize_path(&raw_path) else {
            self.warn(format!("{raw_path:?}: path leaves the image root, skipped"));
            return Ok(());
        };
        let header = entry.header();
        let entry_type = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let name = path.rsplit('/').next().unwrap_or("");

        if let Some(hidden) = name.strip_prefix(".wh.") {
            let parent = parent_of(&path);
            self.stats.whiteouts += 1;
            if hidden == ".wh..opq" {
                self.whiteouts.push(Whiteout::Opaque(parent.to_string()));
            } else if hidden.starts_with(".wh.") {
                // Other aufs metadata (`.wh..wh.plnk`, …): not content.
            } else if hidden.is_empty() || hidden == "." || hidden == ".." {
                self.warn(format!("{raw_path:?}: malformed whiteout, skipped"));
            } else {
                self.whiteouts.push(Whiteout::Remove(join(parent, hidden)));
            }
            return Ok(());
        }

        match entry_type {
            tar::EntryType::Directory => {
                self.add(path, |path| Addition::Entry {
                    path,
                    mode,
                    kind: EntryKind::Dir,
                });
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned());
                match target {
                    Some(target) if path != "/" => self.add(path, |path| Addition::Entry {
                        path,
                        mode,
                        kind: EntryKind::Symlink(target),
                    }),
                    _ => self.warn(format!("{raw_path:?}: unusable symlink entry, skipped")),
                }
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                match normalize_path(&target) {
                    None => self.warn(format!(
                        "hard link {path} -> {target:?}: target leaves the image root, skipped"
                    )),
                    Some(t) if t == path || t == "/" || path == "/" => {
                        self.warn(format!("hard link {path} -> {target:?}: unusable, skipped"))
                    }
                    Some(t) => {
                        if self.shadowed.contains(&path_hash(&t)) {
                            // The target's content went by unkept earlier in this layer (nobody
                            // wanted it, or it was over a cap and reported then).
                            self.shadow(&path);
                        } else {
                            self.add(path, |path| Addition::HardLink { path, target: t });
                        }
                    }
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                if path == "/" {
                    self.warn(format!("{raw_path:?}: file entry at the root, skipped"));
                    return Ok(());
                }
                self.file(entry, path, size, mode)?;
            }
            // Devices, fifos, PAX global headers and unknown types carry nothing catalogers use.
            _ => {}
        }
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: String,
        size: u64,
        mode: u32,
    ) -> Result<(), ReadFailure> {
        let interest = combined_interest(
            self.catalogers,
            &FileMeta {
                path: &path,
                size,
                mode,
            },
        );
        if interest.is_skip() {
            self.stats.skipped_files += 1;
            self.shadow(&path);
            return Ok(());
        }
        let limits = self.limits;
        let keep = interest.keep && size <= limits.max_kept_file_bytes;
        if interest.keep && !keep {
            self.warn(format!(
                "{path}: {size} bytes is over max_kept_file_bytes ({}), not read",
                limits.max_kept_file_bytes
            ));
        }
        let mut data = Vec::new();
        let mut accepted: Vec<&dyn Cataloger> = Vec::new();
        if !keep && !interest.analyzers.is_empty() {
            let want = size.min(HEAD_BYTES as u64);
            (&mut *entry)
                .take(want)
                .read_to_end(&mut data)
                .map_err(|e| self.io_error(&e, &format!("reading {path}")))?;
            accepted = interest
                .analyzers
                .iter()
                .copied()
                .filter(|c| c.accepts_head(&data))
                .collect();
            if !accepted.is_empty() && size > limits.max_analyzed_file_bytes {
                self.warn(format!(
                    "{path}: {size} bytes is over max_analyzed_file_bytes ({}), not analysed",
                    limits.max_analyzed_file_bytes
                ));
                accepted.clear();
            }
        }
        if !keep && accepted.is_empty() {
            self.stats.skipped_files += 1;
            self.shadow(&path);
            return Ok(());
        }
        if keep {
            let total = self.budget.kept_bytes.fetch_add(size, Ordering::Relaxed) + size;
            if total > limits.max_total_kept_bytes {
                return Err(self.limit(format!(
                    "more than {} bytes of file content kept (max_total_kept_bytes)",
                    limits.max_total_kept_bytes
                )));
            }
        }
        data.reserve(size.min(MAX_PREALLOC) as usize);
        entry
            .read_to_end(&mut data)
            .map_err(|e| self.io_error(&e, &format!("reading {path}")))?;
        if data.len() as u64 != size {
            return Err(ImageError::Layer {
                layer: self.layer.to_string(),
                message: format!(
                    "{path}: stream ended after {} of {size} bytes (truncated layer)",
                    data.len()
                ),
            }
            .into());
        }
        if keep {
            self.stats.kept_files += 1;
            self.stats.kept_bytes += size;
            self.add(path, |path| Addition::Entry {
                path,
                mode,
                kind: EntryKind::File(Arc::from(data)),
            });
            return Ok(());
        }
        self.stats.analyzed_files += 1;
        let mut found: Vec<(&'static str, Vec<Package>)> = Vec::new();
        for c in accepted {
            match c.analyze(&path, &data) {
                Ok(mut packages) if !packages.is_empty() => {
                    for p in &mut packages {
                        if p.location.path.is_empty() {
                            p.location.path = path.clone();
                        }
                        p.location.layer_digest = Some(self.layer.to_string());
                    }
                    found.push((c.name(), packages));
                }
                Ok(_) => {}
                Err(e) => self.warn(e.to_string()),
            }
        }
        if found.is_empty() {
            self.shadow(&path);
        } else {
            self.add(path, |path| Addition::Entry {
                path,
                mode,
                kind: EntryKind::Analyzed(found),
            });
        }
        Ok(())
    }
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// An I/O error with every cause it wraps (the tar crate adds context and hides the cause in its
/// `Display`; the cause is often what matters, e.g. a digest mismatch from the blob reader).
fn error_chain(e: &io::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cur: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|inner| inner as _);
    let mut depth = 0;
    while let Some(err) = cur {
        let s = err.to_string();
        if parts.last() != Some(&s) && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
        depth += 1;
        if depth > 8 {
            break;
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_and_join() {
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/a", "x"), "/a/x");
    }

    #[test]
    fn error_chain_shows_causes() {
        #[derive(Debug)]
        struct Outer(io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("failed to read entry")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let inner = io::Error::new(io::ErrorKind::InvalidData, "digest mismatch: expected a");
        let e = io::Error::other(Outer(inner));
        let s = error_chain(&e);
        assert!(s.contains("failed to read entry"), "{s}");
        assert!(s.contains("digest mismatch"), "{s}");
    }
}
