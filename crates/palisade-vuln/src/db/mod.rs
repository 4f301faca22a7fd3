//! The local advisory database: one read-only, versioned file (layout in [`format`]) that opens in
//! milliseconds and answers "which advisories name this package in this ecosystem" with a binary
//! search and the decoding of that package's block only.
//!
//! [`DbBuilder`] collects records from the importers (the same advisory arriving twice merges,
//! the later one winning) and writes the file atomically, so a reader never sees half a DB and a
//! failed build leaves the previous DB in place.

pub mod format;

use crate::import::{ImportError, ImportStats};
use crate::record::{AdvisoryRecord, AffectedPackage};
use format::{ADV_ENTRY, HEADER_LEN, Header, INDEX_ENTRY, SCHEMA_VERSION, Section, u32_at, u64_at};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use thiserror::Error;

/// What every "this DB is unusable" message tells the user to do.
const REBUILD_HINT: &str =
    "run `palisade db update` (or `palisade db import PATH…` offline) to rebuild it";
/// Largest DB file opened.
const MAX_DB_FILE: u64 = 4 * 1024 * 1024 * 1024;
/// Largest single postcard block decoded.
const MAX_BLOCK: u64 = 256 * 1024 * 1024;

/// Errors opening, reading or writing the DB.
#[derive(Debug, Error)]
pub enum DbError {
    #[error("advisory database {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("advisory database {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where one part of the DB came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `osv:PyPI`, `debian-tracker`, `debian-dsa`, `alpine-secdb:v3.19/main`, …
    pub name: String,
    /// URL or local path it was read from.
    pub location: String,
    pub advisories: u64,
    /// RFC 3339 time the source was fetched or read.
    pub fetched_at: String,
}

/// What `palisade db status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbMetadata {
    pub schema_version: u32,
    /// RFC 3339 build time.
    pub built_at: String,
    pub sources: Vec<SourceInfo>,
    pub advisories: u64,
    pub affected_packages: u64,
}

impl DbMetadata {
    /// How long ago the DB was built (`None` when `built_at` does not parse or lies in the
    /// future), for the "DB older than a day" warning.
    pub fn age(&self) -> Option<std::time::Duration> {
        let built = time::OffsetDateTime::parse(
            &self.built_at,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()?;
        let secs = (time::OffsetDateTime::now_utc() - built).whole_seconds();
        u64::try_from(secs).ok().map(std::time::Duration::from_secs)
    }
}

/// One advisory that names a looked-up package, with the affected entry for that package.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The advisory (its `affected` list may be empty: the DB need not load the others).
    pub advisory: Arc<AdvisoryRecord>,
    pub affected: AffectedPackage,
}

/// A read-only, opened advisory DB. Cheap to share across threads (`Send + Sync`); advisories
/// are decoded on first lookup and cached.
pub struct AdvisoryDb {
    path: PathBuf,
    /// The file from offset 0 to the end of the advisory table: header, metadata, index, keys.
    bytes: Vec<u8>,
    /// Where package blocks and advisories are read from.
    data: DataStore,
    header: Header,
    metadata: DbMetadata,
    cache: Vec<OnceLock<Arc<AdvisoryRecord>>>,
}

/// The data section: the open file (read with positioned reads, so it is never loaded whole)
/// or, for [`AdvisoryDb::from_bytes`], the bytes in memory.
enum DataStore {
    #[cfg(unix)]
    File(std::fs::File),
    Memory(Vec<u8>),
}

impl std::fmt::Debug for AdvisoryDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdvisoryDb")
            .field("path", &self.path)
            .field("file_len", &self.header.file_len)
            .field("metadata", &self.metadata)
            .finish()
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> DbError {
    DbError::Invalid {
        path: path.to_path_buf(),
        message: format!("{}; {REBUILD_HINT}", message.into()),
    }
}

fn section(bytes: &[u8], s: Section) -> &[u8] {
    // Bounds were checked against the file length by `Header::decode`.
    &bytes[s.offset as usize..(s.offset + s.len) as usize]
}

impl AdvisoryDb {
    /// Opens a DB file written by [`DbBuilder::write`]: reads the header, metadata and index
    /// (not the data section), checks magic, schema version, length and the checksum of what it
    /// read, and decodes the metadata. A missing file is [`DbError::Io`] (kind `NotFound`);
    /// anything else wrong is [`DbError::Invalid`].
    #[cfg(unix)]
    pub fn open(path: &Path) -> Result<AdvisoryDb, DbError> {
        use std::io::Read;
        let io = |source| DbError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len > MAX_DB_FILE {
            return Err(invalid(
                path,
                format!("file of {len} bytes is larger than any advisory DB palisade writes"),
            ));
        }
        let mut head = vec![0u8; HEADER_LEN.min(len as usize)];
        file.read_exact(&mut head).map_err(io)?;
        let header = Header::decode(&head, len).map_err(|m| invalid(path, m))?;
        let head_end = header.advisories.offset + header.advisories.len;
        let mut bytes = head;
        bytes.resize(head_end as usize, 0);
        file.read_exact(&mut bytes[HEADER_LEN..]).map_err(io)?;
        Self::assemble(path, bytes, header, DataStore::File(file))
    }

    /// Opens a DB file (non-unix: read whole, without positioned reads).
    #[cfg(not(unix))]
    pub fn open(path: &Path) -> Result<AdvisoryDb, DbError> {
        let io = |source| DbError::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_DB_FILE {
            return Err(invalid(
                path,
                format!("file of {len} bytes is larger than any advisory DB palisade writes"),
            ));
        }
        Self::from_bytes(path, std::fs::read(path).map_err(io)?)
    }

    /// Opens a DB from its bytes in memory (`path` is used in messages only).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<AdvisoryDb, DbError> {
        let header = Header::decode(&bytes, bytes.len() as u64).map_err(|m| invalid(path, m))?;
        let head_end = (header.advisories.offset + header.advisories.len) as usize;
        let head = bytes[..head_end].to_vec();
        Self::assemble(path, head, header, DataStore::Memory(bytes))
    }

    fn assemble(
        path: &Path,
        bytes: Vec<u8>,
        header: Header,
        data: DataStore,
    ) -> Result<AdvisoryDb, DbError> {
        let digest: [u8; 32] = Sha256::digest(&bytes[HEADER_LEN..]).into();
        if digest != header.index_sha256 {
            return Err(invalid(path, "index checksum mismatch (file damaged)"));
        }
        let metadata: DbMetadata = postcard::from_bytes(section(&bytes, header.metadata))
            .map_err(|e| invalid(path, format!("metadata unreadable: {e}")))?;
        let count = header.advisories.len as usize / ADV_ENTRY;
        let mut cache = Vec::new();
        cache.resize_with(count, OnceLock::new);
        Ok(AdvisoryDb {
            path: path.to_path_buf(),
            bytes,
            data,
            header,
            metadata,
            cache,
        })
    }

    pub fn metadata(&self) -> &DbMetadata {
        &self.metadata
    }

    /// The file this DB was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many (ecosystem, package) keys the index holds.
    pub fn package_count(&self) -> usize {
        self.header.index.len as usize / INDEX_ENTRY
    }

    /// Checks the checksum of the data section too (a full read; `open` skips it for speed).
    pub fn verify(&self) -> Result<(), DbError> {
        let d = self.header.data;
        let mut hasher = Sha256::new();
        let mut off = d.offset;
        let end = d.offset + d.len;
        while off < end {
            let n = (end - off).min(1 << 20);
            hasher.update(&self.read_data(off, n)?);
            off += n;
        }
        let digest: [u8; 32] = hasher.finalize().into();
        if digest != self.header.data_sha256 {
            return Err(invalid(&self.path, "data checksum mismatch (file damaged)"));
        }
        Ok(())
    }

    fn index_key(&self, i: usize) -> Result<&[u8], DbError> {
        let base = self.header.index.offset as usize + i * INDEX_ENTRY;
        let off = u32_at(&self.bytes, base) as usize;
        let len = u32_at(&self.bytes, base + 4) as usize;
        section(&self.bytes, self.header.keys)
            .get(off..off.saturating_add(len))
            .ok_or_else(|| {
                invalid(
                    &self.path,
                    format!("index entry {i} points outside the keys"),
                )
            })
    }

    /// Every advisory naming `name` (normalised, see [`crate::keys::normalize_name`]) in the
    /// ecosystem key (see [`crate::keys`]). Withdrawn advisories are not returned (they are not
    /// stored).
    pub fn lookup(&self, ecosystem_key: &str, name: &str) -> Result<Vec<Candidate>, DbError> {
        let mut key = Vec::with_capacity(ecosystem_key.len() + 1 + name.len());
        key.extend_from_slice(ecosystem_key.as_bytes());
        key.push(0);
        key.extend_from_slice(name.as_bytes());
        let (mut lo, mut hi) = (0usize, self.package_count());
        let mut found = None;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.index_key(mid)?.cmp(&key[..]) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => {
                    found = Some(mid);
                    break;
                }
            }
        }
        let Some(i) = found else {
            return Ok(Vec::new());
        };
        let base = self.header.index.offset as usize + i * INDEX_ENTRY;
        let block_off = u64_at(&self.bytes, base + 8);
        let block_len = u32_at(&self.bytes, base + 16) as u64;
        let block = self.data_slice(block_off, block_len)?;
        let entries: Vec<(u32, AffectedPackage)> = postcard::from_bytes(&block).map_err(|e| {
            invalid(
                &self.path,
                format!("package block for {ecosystem_key}/{name} unreadable: {e}"),
            )
        })?;
        let mut out = Vec::with_capacity(entries.len());
        for (adv, affected) in entries {
            out.push(Candidate {
                advisory: self.advisory(adv as usize)?,
                affected,
            });
        }
        Ok(out)
    }

    /// Every (ecosystem key, package name) in the index, in order (for `db status` and tests).
    pub fn packages(&self) -> impl Iterator<Item = Result<(String, String), DbError>> + '_ {
        (0..self.package_count()).map(move |i| {
            let key = self.index_key(i)?;
            let text = std::str::from_utf8(key)
                .map_err(|_| invalid(&self.path, format!("index key {i} is not UTF-8")))?;
            let (e, n) = text
                .split_once('\0')
                .ok_or_else(|| invalid(&self.path, format!("index key {i} malformed")))?;
            Ok((e.to_string(), n.to_string()))
        })
    }

    /// Bytes `[off, off+len)` of the data section, bounds-checked.
    fn data_slice(&self, off: u64, len: u64) -> Result<std::borrow::Cow<'_, [u8]>, DbError> {
        let d = self.header.data;
        let end = off.checked_add(len);
        if len > MAX_BLOCK || off < d.offset || end.is_none_or(|e| e > d.offset + d.len) {
            return Err(invalid(
                &self.path,
                format!("block at {off}+{len} lies outside the data section"),
            ));
        }
        self.read_data(off, len)
    }

    fn read_data(&self, off: u64, len: u64) -> Result<std::borrow::Cow<'_, [u8]>, DbError> {
        match &self.data {
            DataStore::Memory(b) => b
                .get(off as usize..(off + len) as usize)
                .map(std::borrow::Cow::Borrowed)
                .ok_or_else(|| invalid(&self.path, "read past the end of the data")),
            #[cfg(unix)]
            DataStore::File(f) => {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; len as usize];
                f.read_exact_at(&mut buf, off)
                    .map_err(|source| DbError::Io {
                        path: self.path.clone(),
                        source,
                    })?;
                Ok(std::borrow::Cow::Owned(buf))
            }
        }
    }

    /// Advisory number `n`, decoded once and cached.
    fn advisory(&self, n: usize) -> Result<Arc<AdvisoryRecord>, DbError> {
        let slot = self.cache.get(n).ok_or_else(|| {
            invalid(
                &self.path,
                format!("package block names advisory {n}, beyond the table"),
            )
        })?;
        if let Some(a) = slot.get() {
            return Ok(a.clone());
        }
        let base = self.header.advisories.offset as usize + n * ADV_ENTRY;
        let off = u64_at(&self.bytes, base);
        let len = u32_at(&self.bytes, base + 8) as u64;
        let rec: AdvisoryRecord = postcard::from_bytes(&self.data_slice(off, len)?)
            .map_err(|e| invalid(&self.path, format!("advisory {n} unreadable: {e}")))?;
        Ok(slot.get_or_init(|| Arc::new(rec)).clone())
    }
}

/// Collects records and writes a DB file.
///
/// Records are keyed by (source, id). When one arrives again, its fields replace the earlier
/// ones and its affected entries replace the earlier entries for the same (ecosystem, package);
/// entries for other packages are kept, so per-branch files (Alpine v3.19 and v3.20) that name the
/// same CVE add up instead of overwriting each other.
#[derive(Default)]
pub struct DbBuilder {
    records: BTreeMap<(String, String), AdvisoryRecord>,
    sources: Vec<SourceInfo>,
}

impl DbBuilder {
    pub fn new() -> Self {
        DbBuilder::default()
    }

    /// Adds one record (and notes which source it came from via `record.source`).
    pub fn add(&mut self, record: AdvisoryRecord) {
        let key = (record.source.clone(), record.id.clone());
        match self.records.get_mut(&key) {
            None => {
                self.records.insert(key, record);
            }
            Some(old) => {
                let mut merged = record;
                let newer: Vec<(String, String)> = merged
                    .affected
                    .iter()
                    .map(|a| (a.ecosystem.clone(), a.name.clone()))
                    .collect();
                let kept = std::mem::take(&mut old.affected)
                    .into_iter()
                    .filter(|a| !newer.iter().any(|(e, n)| *e == a.ecosystem && *n == a.name));
                let mut affected: Vec<AffectedPackage> = kept.collect();
                affected.append(&mut merged.affected);
                merged.affected = affected;
                *old = merged;
            }
        }
    }

    /// Records where a source came from, for [`DbMetadata::sources`]. A source with the same name
    /// and location as an earlier one replaces it.
    pub fn add_source(&mut self, info: SourceInfo) {
        if let Some(s) = self
            .sources
            .iter_mut()
            .find(|s| s.name == info.name && s.location == info.location)
        {
            *s = info;
        } else {
            self.sources.push(info);
        }
    }

    /// Imports everything under `path` (see [`crate::import::import_path`]) and lists each source
    /// seen with `path` as its location.
    pub fn import_path(&mut self, path: &Path) -> Result<ImportStats, ImportError> {
        self.import_path_as(path, &path.display().to_string())
    }

    /// Like [`DbBuilder::import_path`], recording `location` (e.g. the URL it was downloaded
    /// from) as the source location.
    pub fn import_path_as(
        &mut self,
        path: &Path,
        location: &str,
    ) -> Result<ImportStats, ImportError> {
        let stats = crate::import::import_path(path, &mut |r| self.add(r))?;
        self.note_sources(&stats, location);
        Ok(stats)
    }

    /// Imports one file whose format is known (downloads: no sniffing), recording `location`.
    pub fn import_file_as(
        &mut self,
        path: &Path,
        format: crate::import::Format,
        location: &str,
    ) -> Result<ImportStats, ImportError> {
        let cap = match format {
            crate::import::Format::Zip => crate::import::MAX_ZIP_FILE,
            _ => crate::import::MAX_DATABASE_FILE,
        };
        let data = crate::import::read_capped(path, cap)?;
        let mut stats = ImportStats::default();
        crate::import::import_bytes(
            &path.display().to_string(),
            format,
            &data,
            &mut stats,
            &mut |r| self.add(r),
        )?;
        self.note_sources(&stats, location);
        Ok(stats)
    }

    fn note_sources(&mut self, stats: &ImportStats, location: &str) {
        let now = now_rfc3339();
        for (name, count) in &stats.sources {
            self.add_source(SourceInfo {
                name: name.clone(),
                location: location.to_string(),
                advisories: *count,
                fetched_at: now.clone(),
            });
        }
    }

    /// Records added so far (after merging).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Encodes the DB file in memory. Withdrawn advisories and advisories naming no package we
    /// match are left out.
    pub fn to_bytes(self) -> Result<(Vec<u8>, DbMetadata), String> {
        let mut data: Vec<u8> = Vec::new();
        let mut adv_table: Vec<(u64, u32)> = Vec::new();
        let mut packages: BTreeMap<Vec<u8>, Vec<(u32, AffectedPackage)>> = BTreeMap::new();
        let mut affected_count = 0u64;
        for (_, mut rec) in self.records {
            if rec.withdrawn || rec.affected.is_empty() {
                continue;
            }
            let n = u32::try_from(adv_table.len()).map_err(|_| "too many advisories")?;
            let affected = std::mem::take(&mut rec.affected);
            for a in affected {
                if a.ecosystem.contains('\0') || a.name.contains('\0') {
                    continue;
                }
                let mut key = a.ecosystem.as_bytes().to_vec();
                key.push(0);
                key.extend_from_slice(a.name.as_bytes());
                packages.entry(key).or_default().push((n, a));
                affected_count += 1;
            }
            let enc = postcard::to_allocvec(&rec).map_err(|e| e.to_string())?;
            let len = u32::try_from(enc.len()).map_err(|_| "advisory too large")?;
            adv_table.push((data.len() as u64, len));
            data.extend_from_slice(&enc);
        }
        let mut index: Vec<(u32, u32, u64, u32)> = Vec::with_capacity(packages.len());
        let mut keys: Vec<u8> = Vec::new();
        for (key, entries) in &packages {
            let enc = postcard::to_allocvec(entries).map_err(|e| e.to_string())?;
            let key_off = u32::try_from(keys.len()).map_err(|_| "key pool too large")?;
            let key_len = u32::try_from(key.len()).map_err(|_| "key too long")?;
            keys.extend_from_slice(key);
            let len = u32::try_from(enc.len()).map_err(|_| "package block too large")?;
            index.push((key_off, key_len, data.len() as u64, len));
            data.extend_from_slice(&enc);
        }
        let metadata = DbMetadata {
            schema_version: SCHEMA_VERSION,
            built_at: now_rfc3339(),
            sources: self.sources,
            advisories: adv_table.len() as u64,
            affected_packages: affected_count,
        };
        let meta_bytes = postcard::to_allocvec(&metadata).map_err(|e| e.to_string())?;

        let meta_s = Section {
            offset: HEADER_LEN as u64,
            len: meta_bytes.len() as u64,
        };
        let index_s = Section {
            offset: meta_s.offset + meta_s.len,
            len: (index.len() * INDEX_ENTRY) as u64,
        };
        let keys_s = Section {
            offset: index_s.offset + index_s.len,
            len: keys.len() as u64,
        };
        let adv_s = Section {
            offset: keys_s.offset + keys_s.len,
            len: (adv_table.len() * ADV_ENTRY) as u64,
        };
        let data_s = Section {
            offset: adv_s.offset + adv_s.len,
            len: data.len() as u64,
        };
        let mut body: Vec<u8> = Vec::with_capacity((adv_s.len + data_s.len) as usize + 1024);
        body.extend_from_slice(&meta_bytes);
        for (ko, kl, bo, bl) in &index {
            body.extend_from_slice(&ko.to_le_bytes());
            body.extend_from_slice(&kl.to_le_bytes());
            body.extend_from_slice(&(bo + data_s.offset).to_le_bytes());
            body.extend_from_slice(&bl.to_le_bytes());
            body.extend_from_slice(&0u32.to_le_bytes());
        }
        body.extend_from_slice(&keys);
        for (off, len) in &adv_table {
            body.extend_from_slice(&(off + data_s.offset).to_le_bytes());
            body.extend_from_slice(&len.to_le_bytes());
        }
        let index_sha256: [u8; 32] = Sha256::digest(&body).into();
        let data_sha256: [u8; 32] = Sha256::digest(&data).into();
        let header = Header {
            schema_version: SCHEMA_VERSION,
            file_len: data_s.offset + data_s.len,
            index_sha256,
            data_sha256,
            metadata: meta_s,
            index: index_s,
            keys: keys_s,
            advisories: adv_s,
            data: data_s,
        };
        let mut out = Vec::with_capacity(header.file_len as usize);
        out.extend_from_slice(&header.encode());
        out.extend_from_slice(&body);
        out.extend_from_slice(&data);
        Ok((out, metadata))
    }

    /// Writes the DB atomically (temp file in the same directory, fsync, rename) and returns its
    /// metadata. On failure the previous file at `path` is untouched.
    pub fn write(self, path: &Path) -> Result<DbMetadata, DbError> {
        let (bytes, metadata) = self.to_bytes().map_err(|m| DbError::Invalid {
            path: path.to_path_buf(),
            message: format!("cannot encode: {m}"),
        })?;
        write_atomic(path, &bytes)?;
        Ok(metadata)
    }
}

/// Writes `bytes` to `path` via a temp file and rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DbError> {
    let io = |source| DbError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "advisories.db".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".{file_name}.tmp.{}.{nanos}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

/// The current time as RFC 3339 (UTC).
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// The default DB path: `<user cache dir>/palisade/advisories.db`.
pub fn default_path() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("palisade").join("advisories.db"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{AffectedRange, RangeEvent, RangeKind};

    fn rec(id: &str, source: &str, pkgs: &[(&str, &str, &str)]) -> AdvisoryRecord {
        AdvisoryRecord {
            id: id.into(),
            source: source.into(),
            summary: Some(format!("summary of {id}")),
            affected: pkgs
                .iter()
                .map(|(e, n, fixed)| AffectedPackage {
                    ecosystem: e.to_string(),
                    name: n.to_string(),
                    ranges: vec![AffectedRange {
                        kind: RangeKind::Ecosystem,
                        events: vec![
                            RangeEvent::Introduced("0".into()),
                            RangeEvent::Fixed(fixed.to_string()),
                        ],
                    }],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_merge_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/advisories.db");
        let mut b = DbBuilder::new();
        b.add(rec(
            "CVE-1",
            "alpine-secdb",
            &[("alpine:v3.19", "curl", "8.0-r0")],
        ));
        b.add(rec(
            "CVE-1",
            "alpine-secdb",
            &[("alpine:v3.20", "curl", "8.1-r0")],
        ));
        b.add(rec("GHSA-1", "osv", &[("PyPI", "requests", "2.0")]));
        b.add(rec("GHSA-1", "osv", &[("PyPI", "requests", "2.20.0")]));
        let mut w = rec("GHSA-2", "osv", &[("PyPI", "requests", "3.0")]);
        w.withdrawn = true;
        b.add(w);
        b.add_source(SourceInfo {
            name: "osv:PyPI".into(),
            location: "x".into(),
            advisories: 2,
            fetched_at: now_rfc3339(),
        });
        let meta = b.write(&path).unwrap();
        assert_eq!(meta.advisories, 2);
        assert_eq!(meta.affected_packages, 3);
        assert!(meta.age().unwrap() < std::time::Duration::from_secs(3600));

        let db = AdvisoryDb::open(&path).unwrap();
        db.verify().unwrap();
        assert_eq!(db.metadata(), &meta);
        assert_eq!(db.package_count(), 3);
        let c = db.lookup("PyPI", "requests").unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].advisory.id, "GHSA-1");
        assert_eq!(
            c[0].affected.ranges[0].events[1],
            RangeEvent::Fixed("2.20.0".into())
        );
        assert_eq!(db.lookup("alpine:v3.19", "curl").unwrap().len(), 1);
        assert_eq!(db.lookup("alpine:v3.20", "curl").unwrap().len(), 1);
        assert!(db.lookup("alpine:v3.21", "curl").unwrap().is_empty());
        assert!(db.lookup("PyPI", "").unwrap().is_empty());
        let keys: Vec<_> = db.packages().map(|k| k.unwrap()).collect();
        assert_eq!(keys[0], ("PyPI".to_string(), "requests".to_string()));

        // Truncation, bit flips in the index and in the data are all typed errors.
        let bytes = std::fs::read(&path).unwrap();
        let p = Path::new("x.db");
        let e = AdvisoryDb::from_bytes(p, bytes[..bytes.len() - 1].to_vec()).unwrap_err();
        assert!(e.to_string().contains("palisade db update"), "{e}");
        let mut bad = bytes.clone();
        bad[HEADER_LEN + 2] ^= 0xff;
        assert!(AdvisoryDb::from_bytes(p, bad).is_err());
        let mut bad = bytes.clone();
        let last = bad.len() - 3;
        bad[last] ^= 0xff;
        let db = AdvisoryDb::from_bytes(p, bad).unwrap();
        assert!(db.verify().is_err());
        assert!(AdvisoryDb::from_bytes(p, Vec::new()).is_err());
        assert!(matches!(
            AdvisoryDb::open(&dir.path().join("missing.db")),
            Err(DbError::Io { .. })
        ));
    }

    #[test]
    fn empty_db() {
        let (bytes, meta) = DbBuilder::new().to_bytes().unwrap();
        assert_eq!(meta.advisories, 0);
        let db = AdvisoryDb::from_bytes(Path::new("e"), bytes).unwrap();
        assert!(db.lookup("npm", "x").unwrap().is_empty());
    }
}
