//! `palisade db update`: download the public advisory sources, check them, import them, and
//! replace the local DB in one atomic rename.
//!
//! Sources: OSV's per-ecosystem archives (`<osv base>/<Ecosystem>/all.zip`), the Debian security
//! tracker JSON export, and Alpine secdb (`<alpine base>/<branch>/<repo>.json`). Every download is
//! checked — HTTP status, a size cap, `Content-Length`, the `x-goog-hash` MD5 Google Cloud
//! Storage sends for OSV objects, zip CRCs (while importing) and that the content parses — and
//! goes to a temporary directory beside the DB. Only when every source downloaded and imported is
//! the new DB written; on any failure the previous DB stays as it was.
//!
//! TLS uses the process-wide rustls `CryptoProvider` (the binary installs ring); when none is
//! installed, `update` installs ring itself rather than let reqwest panic.

use crate::db::{DbBuilder, DbError, DbMetadata};
use crate::import::{Format, ImportError, MAX_DATABASE_FILE, MAX_ZIP_FILE};
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::io::AsyncWriteExt;

/// OSV's public bucket.
pub const OSV_BASE_URL: &str = "https://osv-vulnerabilities.storage.googleapis.com";
/// The Debian security tracker JSON export.
pub const DEBIAN_TRACKER_URL: &str = "https://security-tracker.debian.org/tracker/data/json";
/// Alpine secdb.
pub const ALPINE_BASE_URL: &str = "https://secdb.alpinelinux.org";
/// The OSV ecosystems fetched by default.
pub const DEFAULT_OSV_ECOSYSTEMS: &[&str] = &[
    "PyPI",
    "npm",
    "crates.io",
    "Go",
    "Maven",
    "RubyGems",
    "Packagist",
    "NuGet",
    "Debian",
    "Alpine",
    "Ubuntu",
    "Rocky Linux",
    "AlmaLinux",
];
/// The Alpine branches fetched by default (main and community each).
pub const DEFAULT_ALPINE_BRANCHES: &[&str] = &[
    "v3.16", "v3.17", "v3.18", "v3.19", "v3.20", "v3.21", "v3.22", "edge",
];
/// Largest Alpine secdb file accepted.
const MAX_ALPINE_FILE: u64 = 64 * 1024 * 1024;
/// How many downloads run at once.
const PARALLEL_DOWNLOADS: usize = 4;

/// One thing `update` downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateSource {
    /// An OSV ecosystem archive, by OSV's ecosystem name (`PyPI`, `Rocky Linux`, …).
    Osv { ecosystem: String },
    /// The Debian security tracker JSON export.
    DebianTracker,
    /// One Alpine secdb file: branch (`v3.19`, `edge`) and repository (`main`, `community`).
    AlpineSecdb { branch: String, repo: String },
}

impl UpdateSource {
    /// A short name for progress and errors.
    pub fn name(&self) -> String {
        match self {
            UpdateSource::Osv { ecosystem } => format!("osv:{ecosystem}"),
            UpdateSource::DebianTracker => "debian-tracker".into(),
            UpdateSource::AlpineSecdb { branch, repo } => format!("alpine-secdb:{branch}/{repo}"),
        }
    }

    /// The URL under `opts`.
    pub fn url(&self, opts: &UpdateOptions) -> String {
        match self {
            UpdateSource::Osv { ecosystem } => format!(
                "{}/{}/all.zip",
                opts.osv_base_url.trim_end_matches('/'),
                ecosystem.replace(' ', "%20")
            ),
            UpdateSource::DebianTracker => opts.debian_tracker_url.clone(),
            UpdateSource::AlpineSecdb { branch, repo } => format!(
                "{}/{branch}/{repo}.json",
                opts.alpine_base_url.trim_end_matches('/')
            ),
        }
    }

    fn max_bytes(&self) -> u64 {
        match self {
            UpdateSource::Osv { .. } => MAX_ZIP_FILE,
            UpdateSource::DebianTracker => MAX_DATABASE_FILE,
            UpdateSource::AlpineSecdb { .. } => MAX_ALPINE_FILE,
        }
    }

    /// The format of the downloaded file (known, not sniffed).
    pub fn format(&self) -> Format {
        match self {
            UpdateSource::Osv { .. } => Format::Zip,
            UpdateSource::DebianTracker => Format::DebianTrackerJson,
            UpdateSource::AlpineSecdb { .. } => Format::AlpineSecdb,
        }
    }

    fn file_name(&self, i: usize) -> String {
        let safe: String = self
            .name()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let ext = match self {
            UpdateSource::Osv { .. } => "zip",
            _ => "json",
        };
        format!("{i:03}-{safe}.{ext}")
    }
}

/// What to fetch and from where. The base URLs are overridable for mirrors, air-gapped proxies
/// and tests.
#[derive(Debug, Clone)]
pub struct UpdateOptions {
    pub sources: Vec<UpdateSource>,
    pub osv_base_url: String,
    pub debian_tracker_url: String,
    pub alpine_base_url: String,
    /// Connect and per-read timeout (a stalled download fails; a slow, progressing one does not).
    pub timeout: Duration,
}

impl UpdateOptions {
    /// The default source list with the given Alpine branches.
    pub fn default_sources(alpine_branches: &[&str]) -> Vec<UpdateSource> {
        let mut v: Vec<UpdateSource> = DEFAULT_OSV_ECOSYSTEMS
            .iter()
            .map(|e| UpdateSource::Osv {
                ecosystem: e.to_string(),
            })
            .collect();
        v.push(UpdateSource::DebianTracker);
        for b in alpine_branches {
            for repo in ["main", "community"] {
                v.push(UpdateSource::AlpineSecdb {
                    branch: b.to_string(),
                    repo: repo.into(),
                });
            }
        }
        v
    }
}

impl Default for UpdateOptions {
    fn default() -> Self {
        UpdateOptions {
            sources: UpdateOptions::default_sources(DEFAULT_ALPINE_BRANCHES),
            osv_base_url: OSV_BASE_URL.into(),
            debian_tracker_url: DEBIAN_TRACKER_URL.into(),
            alpine_base_url: ALPINE_BASE_URL.into(),
            timeout: Duration::from_secs(60),
        }
    }
}

/// Progress callbacks (the CLI draws bars on a TTY). All methods default to doing nothing.
pub trait UpdateProgress: Send + Sync {
    /// A download started; `total` is the Content-Length when the server sent one.
    fn download_started(&self, _source: &str, _url: &str, _total: Option<u64>) {}
    /// `bytes` more bytes of `source` arrived.
    fn download_progress(&self, _source: &str, _bytes: u64) {}
    /// A download finished and passed its checks.
    fn download_finished(&self, _source: &str, _bytes: u64) {}
    /// A downloaded source is being imported.
    fn importing(&self, _source: &str) {}
    /// A source was imported with this many advisories.
    fn imported(&self, _source: &str, _advisories: u64, _errors: u64) {}
    /// The DB file is being written.
    fn writing(&self, _path: &Path) {}
}

/// A progress sink that ignores everything.
pub struct NoProgress;
impl UpdateProgress for NoProgress {}

/// Why an update failed (the previous DB is unchanged in every case).
#[derive(Debug, Error)]
pub enum UpdateError {
    #[error("{source_name}: fetching {url}: {message}")]
    Fetch {
        source_name: String,
        url: String,
        message: String,
    },
    #[error("{source_name}: {url}: integrity check failed: {message}")]
    Integrity {
        source_name: String,
        url: String,
        message: String,
    },
    #[error("{source_name}: importing {url}: {message}")]
    Import {
        source_name: String,
        url: String,
        message: String,
    },
    #[error("no sources to update from")]
    NoSources,
    #[error("temporary download directory {path}: {source}")]
    TempDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("update task failed: {0}")]
    Task(String),
}

/// Removes the download directory however `update` ends. When a download fails, the others are
/// cancelled, but a file operation already handed to tokio's blocking pool can still create a file
/// while the directory is being removed (`ENOTEMPTY`): a few retries outlast it.
struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        for attempt in 0..20 {
            match std::fs::remove_dir_all(&self.0) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound && attempt < 19 => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                _ => break,
            }
        }
    }
}

/// Downloads every source in `opts`, imports them and writes the DB at `dest` atomically.
pub async fn update(
    dest: &Path,
    opts: &UpdateOptions,
    progress: Arc<dyn UpdateProgress>,
) -> Result<DbMetadata, UpdateError> {
    if opts.sources.is_empty() {
        return Err(UpdateError::NoSources);
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp_path = parent.join(format!(".palisade-update-{}-{nanos}", std::process::id()));
    let temp_err = |source| UpdateError::TempDir {
        path: tmp_path.clone(),
        source,
    };
    tokio::fs::create_dir_all(&tmp_path)
        .await
        .map_err(temp_err)?;
    let tmp = TempDir(tmp_path.clone());

    // reqwest is built without a TLS crypto provider and panics when none is installed; the
    // binary installs ring at start, and a library caller that did not gets ring here.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let client = reqwest::Client::builder()
        .connect_timeout(opts.timeout)
        .read_timeout(opts.timeout)
        .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| UpdateError::Fetch {
            source_name: "client".into(),
            url: String::new(),
            message: e.to_string(),
        })?;

    let jobs = opts.sources.iter().enumerate().map(|(i, s)| {
        let client = client.clone();
        let progress = progress.clone();
        let file = tmp.0.join(s.file_name(i));
        let url = s.url(opts);
        async move {
            download(&client, s, &url, &file, progress.as_ref()).await?;
            Ok::<_, UpdateError>((i, s.clone(), url, file))
        }
    });
    let mut downloaded: Vec<(usize, UpdateSource, String, PathBuf)> = Vec::new();
    let mut stream = futures::stream::iter(jobs).buffer_unordered(PARALLEL_DOWNLOADS);
    while let Some(r) = stream.next().await {
        downloaded.push(r?);
    }
    drop(stream);
    // Import in the configured order so "last wins" merging is deterministic.
    downloaded.sort_by_key(|d| d.0);

    let dest = dest.to_path_buf();
    let progress2 = progress.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut builder = DbBuilder::new();
        for (_, source, url, file) in downloaded {
            let name = source.name();
            progress2.importing(&name);
            let stats = builder
                .import_file_as(&file, source.format(), &url)
                .map_err(|e| import_error(&name, &url, e))?;
            progress2.imported(&name, stats.advisories, stats.error_count);
            if stats.advisories == 0 && stats.error_count > 0 {
                return Err(UpdateError::Import {
                    source_name: name,
                    url,
                    message: format!(
                        "no advisory could be read ({} errors; first: {})",
                        stats.error_count,
                        stats.errors.first().map(String::as_str).unwrap_or("")
                    ),
                });
            }
        }
        progress2.writing(&dest);
        Ok(builder.write(&dest)?)
    })
    .await
    .map_err(|e| UpdateError::Task(e.to_string()))?;
    drop(tmp);
    result
}

fn import_error(name: &str, url: &str, e: ImportError) -> UpdateError {
    UpdateError::Import {
        source_name: name.to_string(),
        url: url.to_string(),
        message: e.to_string(),
    }
}

/// Fetches `url` into `file` with the integrity checks of the module docs.
async fn download(
    client: &reqwest::Client,
    source: &UpdateSource,
    url: &str,
    file: &Path,
    progress: &dyn UpdateProgress,
) -> Result<u64, UpdateError> {
    let name = source.name();
    let fetch = |message: String| UpdateError::Fetch {
        source_name: name.clone(),
        url: url.to_string(),
        message,
    };
    let integrity = |message: String| UpdateError::Integrity {
        source_name: name.clone(),
        url: url.to_string(),
        message,
    };
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| fetch(error_chain(&e)))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(fetch(format!("HTTP status {status}")));
    }
    if let Some(enc) = resp.headers().get(reqwest::header::CONTENT_ENCODING) {
        let enc = enc.to_str().unwrap_or("?");
        if !enc.eq_ignore_ascii_case("identity") {
            return Err(integrity(format!("unexpected Content-Encoding {enc:?}")));
        }
    }
    let cap = source.max_bytes();
    let declared = resp.content_length();
    if let Some(len) = declared
        && len > cap
    {
        return Err(integrity(format!(
            "Content-Length {len} exceeds the {cap}-byte cap"
        )));
    }
    let expected_md5 = goog_md5(resp.headers()).map_err(&integrity)?;
    progress.download_started(&name, url, declared);

    let mut out = tokio::fs::File::create(file)
        .await
        .map_err(|e| fetch(format!("creating {}: {e}", file.display())))?;
    let mut md5 = Md5::new();
    let mut total: u64 = 0;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| fetch(error_chain(&e)))?;
        total += chunk.len() as u64;
        if total > cap {
            return Err(integrity(format!("body exceeds the {cap}-byte cap")));
        }
        if expected_md5.is_some() {
            md5.update(&chunk);
        }
        out.write_all(&chunk)
            .await
            .map_err(|e| fetch(format!("writing {}: {e}", file.display())))?;
        progress.download_progress(&name, chunk.len() as u64);
    }
    out.flush()
        .await
        .map_err(|e| fetch(format!("writing {}: {e}", file.display())))?;
    drop(out);
    if let Some(len) = declared
        && len != total
    {
        return Err(integrity(format!(
            "received {total} bytes, Content-Length said {len}"
        )));
    }
    if let Some(want) = expected_md5 {
        let got = md5.finish();
        if got != want {
            return Err(integrity(format!(
                "MD5 {} does not match x-goog-hash {}",
                hex::encode(got),
                hex::encode(want)
            )));
        }
    }
    progress.download_finished(&name, total);
    Ok(total)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The MD5 from Google Cloud Storage's `x-goog-hash: crc32c=…, md5=<base64>` header(s), if any.
fn goog_md5(headers: &reqwest::header::HeaderMap) -> Result<Option<[u8; 16]>, String> {
    for v in headers.get_all("x-goog-hash") {
        let Ok(v) = v.to_str() else { continue };
        for part in v.split(',') {
            if let Some(b64) = part.trim().strip_prefix("md5=") {
                let raw = base64_decode(b64.trim())
                    .ok_or_else(|| format!("x-goog-hash md5 {b64:?} is not base64"))?;
                let arr: [u8; 16] = raw
                    .try_into()
                    .map_err(|_| format!("x-goog-hash md5 {b64:?} is not 16 bytes"))?;
                return Ok(Some(arr));
            }
        }
    }
    Ok(None)
}

/// Standard base64 (with padding) decoding, enough for a hash header.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() > 1024 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// MD5 (RFC 1321), streaming. Used only to check GCS's integrity header, never for security.
struct Md5 {
    state: [u32; 4],
    buf: [u8; 64],
    buf_len: usize,
    len: u64,
}

const MD5_SHIFTS: [u32; 16] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];

fn md5_k(i: usize) -> u32 {
    // K[i] = floor(|sin(i + 1)| * 2^32), as RFC 1321 defines it.
    ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32
}

impl Md5 {
    fn new() -> Md5 {
        Md5 {
            state: [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476],
            buf: [0; 64],
            buf_len: 0,
            len: 0,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.buf_len > 0 {
            let take = (64 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len == 64 {
                let block = self.buf;
                self.block(&block);
                self.buf_len = 0;
            }
        }
        while data.len() >= 64 {
            let mut block = [0u8; 64];
            block.copy_from_slice(&data[..64]);
            self.block(&block);
            data = &data[64..];
        }
        self.buf[..data.len()].copy_from_slice(data);
        self.buf_len += data.len();
    }

    fn block(&mut self, block: &[u8; 64]) {
        let mut m = [0u32; 16];
        for (i, w) in m.iter_mut().enumerate() {
            *w = u32::from_le_bytes([
                block[i * 4],
                block[i * 4 + 1],
                block[i * 4 + 2],
                block[i * 4 + 3],
            ]);
        }
        let [mut a, mut b, mut c, mut d] = self.state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let shift = MD5_SHIFTS[(i / 16) * 4 + i % 4];
            let tmp = d;
            d = c;
            c = b;
            b = b.wrapping_add(
                a.wrapping_add(f)
                    .wrapping_add(md5_k(i))
                    .wrapping_add(m[g])
                    .rotate_left(shift),
            );
            a = tmp;
        }
        self.state[0] = self.state[0].wrapping_add(a);
        self.state[1] = self.state[1].wrapping_add(b);
        self.state[2] = self.state[2].wrapping_add(c);
        self.state[3] = self.state[3].wrapping_add(d);
    }

    fn finish(mut self) -> [u8; 16] {
        let bit_len = self.len.wrapping_mul(8);
        let mut pad = vec![0x80u8];
        let rem = (self.len % 64) as usize;
        let zeros = if rem < 56 { 55 - rem } else { 119 - rem };
        pad.extend(std::iter::repeat_n(0u8, zeros));
        pad.extend_from_slice(&bit_len.to_le_bytes());
        let len_before = self.len;
        self.update(&pad);
        self.len = len_before;
        let mut out = [0u8; 16];
        for (i, s) in self.state.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&s.to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5_hex(data: &[u8]) -> String {
        let mut m = Md5::new();
        m.update(data);
        hex::encode(m.finish())
    }

    #[test]
    fn md5_known_vectors() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_hex(b"The quick brown fox jumps over the lazy dog"),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
        let long = vec![b'a'; 1000];
        // Split updates give the same digest as one.
        let mut m = Md5::new();
        m.update(&long[..10]);
        m.update(&long[10..700]);
        m.update(&long[700..]);
        assert_eq!(hex::encode(m.finish()), md5_hex(&long));
        assert_eq!(md5_hex(&long), "cabe45dcc9ae5b66ba86600cca6b8ba8");
    }

    #[test]
    fn goog_hash_header() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "x-goog-hash",
            "crc32c=n03x6A==, md5=kAFQmDzST7DWlj99KOF/cg=="
                .parse()
                .unwrap(),
        );
        assert_eq!(
            hex::encode(goog_md5(&h).unwrap().unwrap()),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-goog-hash", "md5=!!".parse().unwrap());
        assert!(goog_md5(&h).is_err());
        assert!(
            goog_md5(&reqwest::header::HeaderMap::new())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn urls() {
        let o = UpdateOptions::default();
        assert_eq!(
            UpdateSource::Osv {
                ecosystem: "Rocky Linux".into()
            }
            .url(&o),
            "https://osv-vulnerabilities.storage.googleapis.com/Rocky%20Linux/all.zip"
        );
        assert_eq!(
            UpdateSource::AlpineSecdb {
                branch: "v3.19".into(),
                repo: "main".into()
            }
            .url(&o),
            "https://secdb.alpinelinux.org/v3.19/main.json"
        );
    }
}
