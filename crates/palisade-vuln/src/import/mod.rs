//! Advisory importers: OSV (JSON and YAML files, directory trees, zip archives), the Debian security
//! tracker (JSON export; DSA/DLA list files), Alpine secdb JSON.
//!
//! [`import_path`] detects the format of a file, directory or zip archive and feeds each normalised
//! [`AdvisoryRecord`] to a sink. One bad advisory never aborts an import: it is counted in
//! [`ImportStats`] (with the first few reasons kept); only an input that cannot be read at all is an
//! [`ImportError`]. Every read is bounded (file and zip-entry size caps, entry counts, directory
//! depth), so hostile inputs end in a counted error, not an unbounded allocation.

pub mod alpine;
pub mod debian;
pub mod osv;

use crate::record::AdvisoryRecord;
use palisade_core::CvssScore;
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use thiserror::Error;

/// Largest single advisory file (OSV JSON/YAML, Alpine secdb) read.
pub const MAX_ADVISORY_FILE: u64 = 32 * 1024 * 1024;
/// Largest whole-database file (Debian tracker JSON, DSA/DLA list) read.
pub const MAX_DATABASE_FILE: u64 = 1024 * 1024 * 1024;
/// Largest zip archive opened.
pub const MAX_ZIP_FILE: u64 = 2 * 1024 * 1024 * 1024;
/// Most entries read from one zip archive.
pub const MAX_ZIP_ENTRIES: usize = 2_000_000;
/// Most bytes decompressed from one zip archive in total.
pub const MAX_ZIP_TOTAL: u64 = 8 * 1024 * 1024 * 1024;
/// Deepest directory nesting walked.
pub const MAX_DIR_DEPTH: usize = 32;
/// Most files visited in one directory tree.
pub const MAX_DIR_FILES: u64 = 5_000_000;
/// How many error reasons [`ImportStats::errors`] keeps.
const MAX_KEPT_ERRORS: usize = 20;

/// An input that could not be read. Per-advisory problems are counted in [`ImportStats`], not
/// raised, so one bad file does not lose a whole database.
#[derive(Debug, Error)]
pub enum ImportError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Counts from one import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Advisory files (or zip entries) read.
    pub files: u64,
    /// Records handed to the sink, withdrawn ones included.
    pub advisories: u64,
    /// Of `advisories`, how many are withdrawn (the DB keeps them out of lookups).
    pub skipped_withdrawn: u64,
    /// Files or entries that failed to parse, with the reason (first few kept).
    pub errors: Vec<String>,
    pub error_count: u64,
    /// Files in a directory tree that are not advisory data (READMEs, configs), skipped.
    pub skipped_files: u64,
    /// Records per source name (`osv:PyPI`, `debian-dsa`, `alpine-secdb:v3.19/main`, …), for the
    /// DB's source list.
    pub sources: BTreeMap<String, u64>,
}

impl ImportStats {
    /// Counts a per-advisory or per-file failure, keeping the first few reasons.
    pub(crate) fn error(&mut self, reason: String) {
        self.error_count += 1;
        if self.errors.len() < MAX_KEPT_ERRORS {
            self.errors.push(reason);
        }
    }

    /// Counts one record from `source` and hands it to `sink`.
    pub(crate) fn emit(
        &mut self,
        source: &str,
        record: AdvisoryRecord,
        sink: &mut dyn FnMut(AdvisoryRecord),
    ) {
        self.advisories += 1;
        if record.withdrawn {
            self.skipped_withdrawn += 1;
        }
        *self.sources.entry(source.to_string()).or_insert(0) += 1;
        sink(record);
    }

    /// Adds another import's counts to these.
    pub fn merge(&mut self, other: ImportStats) {
        self.files += other.files;
        self.advisories += other.advisories;
        self.skipped_withdrawn += other.skipped_withdrawn;
        self.error_count += other.error_count;
        self.skipped_files += other.skipped_files;
        for e in other.errors {
            if self.errors.len() < MAX_KEPT_ERRORS {
                self.errors.push(e);
            }
        }
        for (k, v) in other.sources {
            *self.sources.entry(k).or_insert(0) += v;
        }
    }
}

/// What a file holds, decided from its name and first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OsvJson,
    OsvYaml,
    Zip,
    DebianTrackerJson,
    /// DSA or DLA list (`[date] DSA-NNNN-N pkg - title`).
    DebianList,
    AlpineSecdb,
}

/// Imports everything under `path` (a file, a directory tree, or a zip archive), handing each
/// record to `sink`. Returns the counts; fails only when `path` itself cannot be read or is not
/// a recognised advisory format.
pub fn import_path(
    path: &Path,
    sink: &mut dyn FnMut(AdvisoryRecord),
) -> Result<ImportStats, ImportError> {
    let meta = fs::metadata(path).map_err(|e| io_err(path, e))?;
    let mut stats = ImportStats::default();
    if meta.is_dir() {
        let mut visited = 0u64;
        walk_dir(path, 0, &mut visited, &mut stats, sink)?;
        return Ok(stats);
    }
    let data = read_capped(path, cap_for(path))?;
    let Some(format) = detect(path, &data) else {
        return Err(ImportError::Invalid {
            path: path.display().to_string(),
            message: "not a recognised advisory format (OSV JSON/YAML or zip, Debian tracker \
                      JSON, DSA/DLA list, Alpine secdb JSON)"
                .into(),
        });
    };
    import_bytes(&path.display().to_string(), format, &data, &mut stats, sink)?;
    Ok(stats)
}

/// Imports one in-memory input of a known format. Per-advisory errors are counted in `stats`;
/// an `Err` means the input as a whole is unreadable (e.g. not JSON at all, a broken zip).
pub fn import_bytes(
    name: &str,
    format: Format,
    data: &[u8],
    stats: &mut ImportStats,
    sink: &mut dyn FnMut(AdvisoryRecord),
) -> Result<(), ImportError> {
    let invalid = |message: String| ImportError::Invalid {
        path: name.to_string(),
        message,
    };
    match format {
        Format::OsvJson => {
            stats.files += 1;
            match osv::parse_json(data) {
                Ok(records) => {
                    for r in records {
                        let src = osv::source_name(&r);
                        stats.emit(&src, r, sink);
                    }
                }
                Err(e) => stats.error(format!("{name}: {e}")),
            }
        }
        Format::OsvYaml => {
            stats.files += 1;
            match osv::parse_yaml(data) {
                Ok(r) => {
                    let src = osv::source_name(&r);
                    stats.emit(&src, r, sink);
                }
                Err(e) => stats.error(format!("{name}: {e}")),
            }
        }
        Format::Zip => import_zip(name, data, stats, sink)?,
        Format::DebianTrackerJson => {
            stats.files += 1;
            debian::import_tracker_json(data, stats, sink).map_err(|e| invalid(e.to_string()))?
        }
        Format::DebianList => {
            stats.files += 1;
            let kind = debian::list_kind(name, data);
            debian::import_list(data, kind, stats, sink).map_err(|e| invalid(e.to_string()))?
        }
        Format::AlpineSecdb => {
            stats.files += 1;
            alpine::import_secdb(data, stats, sink).map_err(|e| invalid(e.to_string()))?
        }
    }
    Ok(())
}

/// Guesses the format of `data` read from `path`; `None` when it is not advisory data.
pub fn detect(path: &Path, data: &[u8]) -> Option<Format> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06") {
        return Some(Format::Zip);
    }
    if file_name.ends_with(".yaml") || file_name.ends_with(".yml") {
        return Some(Format::OsvYaml);
    }
    let head = &data[..data.len().min(4096)];
    // Checked before JSON: list entries start with `[date]`, like a JSON array.
    if debian::looks_like_list(head) {
        return Some(Format::DebianList);
    }
    let first_non_ws = head.iter().copied().find(|b| !b.is_ascii_whitespace());
    if matches!(first_non_ws, Some(b'{') | Some(b'[')) {
        return sniff_json(head);
    }
    None
}

/// Tells the JSON formats apart from their first few kilobytes (no full parse).
fn sniff_json(head: &[u8]) -> Option<Format> {
    let text = String::from_utf8_lossy(head);
    if text.contains("\"distroversion\"") && text.contains("\"packages\"") {
        return Some(Format::AlpineSecdb);
    }
    if text.contains("\"releases\"")
        && (text.contains("\"CVE-") || text.contains("\"TEMP-"))
        && !text.contains("\"affected\"")
    {
        return Some(Format::DebianTrackerJson);
    }
    // Anything else with an id is taken as OSV, so a malformed advisory is counted as an error
    // rather than skipped silently.
    if text.contains("\"id\"") {
        return Some(Format::OsvJson);
    }
    None
}

fn cap_for(path: &Path) -> u64 {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".zip") {
        MAX_ZIP_FILE
    } else {
        MAX_DATABASE_FILE
    }
}

fn walk_dir(
    dir: &Path,
    depth: usize,
    visited: &mut u64,
    stats: &mut ImportStats,
    sink: &mut dyn FnMut(AdvisoryRecord),
) -> Result<(), ImportError> {
    if depth > MAX_DIR_DEPTH {
        stats.error(format!(
            "{}: directory nesting deeper than {MAX_DIR_DEPTH}, not descended",
            dir.display()
        ));
        return Ok(());
    }
    let rd = fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    let mut entries: Vec<_> = Vec::new();
    for ent in rd {
        match ent {
            Ok(e) => entries.push(e.path()),
            Err(e) => stats.error(format!("{}: {e}", dir.display())),
        }
    }
    // Sorted, so "last wins" merging in the DB is deterministic.
    entries.sort();
    for p in entries {
        *visited += 1;
        if *visited > MAX_DIR_FILES {
            stats.error(format!(
                "{}: more than {MAX_DIR_FILES} files, rest skipped",
                dir.display()
            ));
            return Ok(());
        }
        // symlink_metadata: do not follow links out of the tree (or into loops).
        let Ok(meta) = fs::symlink_metadata(&p) else {
            stats.error(format!("{}: cannot stat", p.display()));
            continue;
        };
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if meta.is_dir() {
            walk_dir(&p, depth + 1, visited, stats, sink)?;
            continue;
        }
        if !meta.is_file() {
            stats.skipped_files += 1;
            continue;
        }
        let lower = name.to_ascii_lowercase();
        let candidate = lower.ends_with(".json")
            || lower.ends_with(".yaml")
            || lower.ends_with(".yml")
            || lower.ends_with(".zip")
            || lower == "list";
        if !candidate {
            stats.skipped_files += 1;
            continue;
        }
        let data = match read_capped(&p, cap_for(&p)) {
            Ok(d) => d,
            Err(e) => {
                stats.error(e.to_string());
                continue;
            }
        };
        match detect(&p, &data) {
            Some(format) => {
                let name = p.display().to_string();
                if let Err(e) = import_bytes(&name, format, &data, stats, sink) {
                    stats.error(e.to_string());
                }
            }
            None => stats.skipped_files += 1,
        }
    }
    Ok(())
}

/// Imports the JSON and YAML entries of a zip archive (OSV `all.zip`). Each entry is capped at
/// [`MAX_ADVISORY_FILE`] and the archive at [`MAX_ZIP_TOTAL`] decompressed bytes; CRCs are
/// checked by reading each entry to its end. Nested zips are not opened.
fn import_zip(
    name: &str,
    data: &[u8],
    stats: &mut ImportStats,
    sink: &mut dyn FnMut(AdvisoryRecord),
) -> Result<(), ImportError> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(data)).map_err(|e| ImportError::Invalid {
            path: name.to_string(),
            message: format!("not a readable zip archive: {e}"),
        })?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(ImportError::Invalid {
            path: name.to_string(),
            message: format!(
                "zip archive has {} entries, more than the limit of {MAX_ZIP_ENTRIES}",
                archive.len()
            ),
        });
    }
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = match archive.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                stats.error(format!("{name}: entry {i}: {e}"));
                continue;
            }
        };
        if entry.is_dir() {
            continue;
        }
        let entry_name = match entry.name() {
            Ok(n) => n.to_string(),
            Err(e) => {
                stats.error(format!("{name}: entry {i}: bad name: {e}"));
                continue;
            }
        };
        let lower = entry_name.to_ascii_lowercase();
        let format = if lower.ends_with(".json") {
            Format::OsvJson
        } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            Format::OsvYaml
        } else {
            stats.skipped_files += 1;
            continue;
        };
        let declared = entry.size();
        if declared > MAX_ADVISORY_FILE {
            stats.error(format!(
                "{name}!{entry_name}: entry of {declared} bytes exceeds the {MAX_ADVISORY_FILE}-byte cap"
            ));
            continue;
        }
        let mut buf = Vec::with_capacity(declared as usize);
        // Read one byte past the cap so an entry lying about its size is caught.
        match (&mut entry)
            .take(MAX_ADVISORY_FILE + 1)
            .read_to_end(&mut buf)
        {
            Ok(_) => {}
            Err(e) => {
                stats.error(format!("{name}!{entry_name}: {e}"));
                continue;
            }
        }
        if buf.len() as u64 > MAX_ADVISORY_FILE {
            stats.error(format!(
                "{name}!{entry_name}: entry exceeds the {MAX_ADVISORY_FILE}-byte cap"
            ));
            continue;
        }
        total += buf.len() as u64;
        if total > MAX_ZIP_TOTAL {
            return Err(ImportError::Invalid {
                path: name.to_string(),
                message: format!("zip archive decompresses to more than {MAX_ZIP_TOTAL} bytes"),
            });
        }
        let full = format!("{name}!{entry_name}");
        import_bytes(&full, format, &buf, stats, sink)?;
    }
    Ok(())
}

/// Reads a whole file, refusing files larger than `cap` before allocating.
pub(crate) fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, ImportError> {
    let f = fs::File::open(path).map_err(|e| io_err(path, e))?;
    let len = f.metadata().map_err(|e| io_err(path, e))?.len();
    if len > cap {
        return Err(ImportError::Invalid {
            path: path.display().to_string(),
            message: format!("file of {len} bytes exceeds the {cap}-byte cap"),
        });
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(path, e))?;
    if buf.len() as u64 > cap {
        return Err(ImportError::Invalid {
            path: path.display().to_string(),
            message: format!("file grew past the {cap}-byte cap while being read"),
        });
    }
    Ok(buf)
}

fn io_err(path: &Path, source: std::io::Error) -> ImportError {
    ImportError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Scores one CVSS vector. The single place importers compute base scores, so the scorer is
/// wired in one line. `None` when the vector cannot be parsed (the advisory is kept without it).
pub(crate) fn score_cvss(vector: &str) -> Option<CvssScore> {
    let vector = vector.trim();
    if vector.is_empty() || vector.len() > 512 {
        return None;
    }
    crate::cvss::score(vector).ok()
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while end > 0 && !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvss_vectors_scored() {
        let s = score_cvss("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").unwrap();
        assert_eq!(s.version, "3.1");
        assert!((s.base_score - 9.8).abs() < 1e-9);
        let s = score_cvss("AV:N/AC:L/Au:N/C:P/I:P/A:P").unwrap();
        assert_eq!(s.version, "2.0");
        assert!((s.base_score - 7.5).abs() < 1e-9);
        assert!(score_cvss("CVSS:3.1/garbage").is_none());
        assert!(score_cvss("").is_none());
    }

    #[test]
    fn detection() {
        let p = Path::new("x.json");
        assert_eq!(
            detect(p, br#"{"id": "GHSA-x", "modified": "2020"}"#),
            Some(Format::OsvJson)
        );
        assert_eq!(
            detect(p, br#"{"distroversion": "v3.19", "packages": []}"#),
            Some(Format::AlpineSecdb)
        );
        assert_eq!(
            detect(
                p,
                br#"{"curl": {"CVE-2020-1": {"releases": {}, "description": "x"}}}"#
            ),
            Some(Format::DebianTrackerJson)
        );
        assert_eq!(detect(p, br#"{"repositories": {}}"#), None);
        assert_eq!(detect(Path::new("a.yaml"), b"id: X"), Some(Format::OsvYaml));
        assert_eq!(
            detect(
                Path::new("list"),
                b"[29 Mar 2023] DSA-5380-1 xorg-server - security update\n"
            ),
            Some(Format::DebianList)
        );
        assert_eq!(detect(Path::new("README.md"), b"# hello"), None);
    }

    #[test]
    fn truncate_on_char_boundary() {
        assert_eq!(truncate("héllo".into(), 2), "h");
        assert_eq!(truncate("abc".into(), 10), "abc");
    }
}
