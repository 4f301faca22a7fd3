//! `update::update` against a local HTTP server started by the test (the public sources are not
//! reachable from CI), with the base URLs overridden: success, and each integrity failure leaving
//! the previous DB untouched.

use palisade_vuln::db::AdvisoryDb;
use palisade_vuln::update::{UpdateError, UpdateOptions, UpdateProgress, UpdateSource, update};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn data(rel: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/advisories/"
    ))
    .join(rel)
}

/// One canned response.
#[derive(Clone)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Close the connection after this many body bytes (to simulate a cut download).
    cut_at: Option<usize>,
}

fn ok(body: Vec<u8>) -> Resp {
    Resp {
        status: 200,
        headers: Vec::new(),
        body,
        cut_at: None,
    }
}

/// A tiny HTTP/1.1 server on loopback, one thread per connection, `Connection: close`.
fn serve(routes: HashMap<String, Resp>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = Arc::new(routes);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let routes = routes.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    return;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("/");
                let resp = routes.get(path).cloned().unwrap_or(Resp {
                    status: 404,
                    headers: Vec::new(),
                    body: b"not found".to_vec(),
                    cut_at: None,
                });
                let mut head = format!(
                    "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    resp.status,
                    resp.body.len()
                );
                for (k, v) in &resp.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes());
                let body = match resp.cut_at {
                    Some(n) => &resp.body[..n],
                    None => &resp.body[..],
                };
                let _ = stream.write_all(body);
                let _ = stream.flush();
            });
        }
    });
    format!("http://{addr}")
}

/// An OSV all.zip of a few RustSec advisories from the shared data.
fn osv_zip() -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for id in [
            "RUSTSEC-2016-0001",
            "RUSTSEC-2019-0031",
            "RUSTSEC-2020-0053",
            "RUSTSEC-2021-0001",
        ] {
            let path = data(&format!("rustsec/osv/crates/{id}.json"));
            let mut f = std::fs::File::open(path).unwrap();
            let mut content = Vec::new();
            f.read_to_end(&mut content).unwrap();
            w.start_file(format!("{id}.json"), opts).unwrap();
            w.write_all(&content).unwrap();
        }
        w.finish().unwrap();
    }
    buf.into_inner()
}

/// MD5 from the system's `md5sum`, an oracle independent of the code under test.
fn md5_b64(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x");
    std::fs::write(&p, bytes).unwrap();
    let out = std::process::Command::new("md5sum")
        .arg(&p)
        .output()
        .unwrap();
    let hex = String::from_utf8(out.stdout).unwrap();
    let hex = hex.split_whitespace().next().unwrap();
    let raw: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    b64(&raw)
}

fn b64(raw: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in raw.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[derive(Default)]
struct Recorder {
    bytes: AtomicU64,
    events: Mutex<Vec<String>>,
}

impl UpdateProgress for Recorder {
    fn download_started(&self, source: &str, _url: &str, total: Option<u64>) {
        self.events
            .lock()
            .unwrap()
            .push(format!("start {source} {total:?}"));
    }
    fn download_progress(&self, _source: &str, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    fn imported(&self, source: &str, advisories: u64, _errors: u64) {
        self.events
            .lock()
            .unwrap()
            .push(format!("imported {source} {advisories}"));
    }
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn routes() -> (HashMap<String, Resp>, usize) {
    let zip = osv_zip();
    let zip_len = zip.len();
    let good_md5 = md5_b64(&zip);
    let mut r = HashMap::new();
    let mut z = ok(zip.clone());
    z.headers.push((
        "x-goog-hash".into(),
        format!("crc32c=AAAAAA==, md5={good_md5}"),
    ));
    r.insert("/osv/crates.io/all.zip".into(), z.clone());
    let mut bad = z.clone();
    bad.headers = vec![("x-goog-hash".into(), format!("md5={}", b64(&[0u8; 16])))];
    r.insert("/badmd5/crates.io/all.zip".into(), bad);
    let mut cut = z.clone();
    cut.cut_at = Some(zip_len / 2);
    r.insert("/cut/crates.io/all.zip".into(), cut);
    let garbage = b"PK\x03\x04 this is not really a zip archive".to_vec();
    let mut g = ok(garbage.clone());
    g.headers
        .push(("x-goog-hash".into(), format!("md5={}", md5_b64(&garbage))));
    r.insert("/garbage/crates.io/all.zip".into(), g);
    r.insert(
        "/debian/json".into(),
        ok(std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/debian-tracker-sample.json"
        ))
        .unwrap()),
    );
    r.insert(
        "/alpine/v3.19/main.json".into(),
        ok(std::fs::read(data("alpine-secdb-json/alpine/v3.19/main.json")).unwrap()),
    );
    (r, zip_len)
}

fn options(base: &str, osv_prefix: &str) -> UpdateOptions {
    UpdateOptions {
        sources: vec![
            UpdateSource::Osv {
                ecosystem: "crates.io".into(),
            },
            UpdateSource::DebianTracker,
            UpdateSource::AlpineSecdb {
                branch: "v3.19".into(),
                repo: "main".into(),
            },
        ],
        osv_base_url: format!("{base}/{osv_prefix}"),
        debian_tracker_url: format!("{base}/debian/json"),
        alpine_base_url: format!("{base}/alpine"),
        timeout: Duration::from_secs(20),
    }
}

fn dir_entries(p: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn update_from_local_server() {
    install_crypto();
    let (routes, zip_len) = routes();
    let base = serve(routes);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("advisories.db");
    let rec = Arc::new(Recorder::default());
    let meta = update(&dest, &options(&base, "osv"), rec.clone())
        .await
        .unwrap();
    assert_eq!(dir_entries(dir.path()), vec!["advisories.db"]);
    assert!(rec.bytes.load(Ordering::Relaxed) > zip_len as u64);
    let events = rec.events.lock().unwrap().clone();
    assert!(events.contains(&format!("start osv:crates.io Some({zip_len})")));
    assert!(events.contains(&"imported osv:crates.io 4".to_string()));

    let db = AdvisoryDb::open(&dest).unwrap();
    assert_eq!(db.metadata(), &meta);
    let loc: Vec<_> = meta
        .sources
        .iter()
        .map(|s| (s.name.as_str(), s.location.as_str()))
        .collect();
    assert!(loc.contains(&("osv:crates.io", &format!("{base}/osv/crates.io/all.zip"))));
    assert!(loc.contains(&("debian-tracker", &format!("{base}/debian/json"))));
    assert!(loc.contains(&(
        "alpine-secdb:v3.19/main",
        &format!("{base}/alpine/v3.19/main.json")
    )));
    let c = db.lookup("crates.io", "openssl").unwrap();
    assert!(c.iter().any(|c| c.advisory.id == "RUSTSEC-2016-0001"));
    let c = db.lookup("debian:bookworm", "curl").unwrap();
    assert!(c.iter().any(|c| c.advisory.id == "CVE-2023-38545"));
    let c = db.lookup("alpine:v3.19", "aom").unwrap();
    assert!(c.iter().any(|c| c.advisory.id == "CVE-2021-30473"));
}

#[tokio::test]
async fn failures_keep_the_old_db() {
    install_crypto();
    let (routes, _) = routes();
    let base = serve(routes);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("advisories.db");
    update(&dest, &options(&base, "osv"), Arc::new(Recorder::default()))
        .await
        .unwrap();
    let before = std::fs::read(&dest).unwrap();

    type Case = (&'static str, fn(&UpdateError) -> bool, &'static str);
    let cases: [Case; 4] = [
        (
            "badmd5",
            |e| matches!(e, UpdateError::Integrity { .. }),
            "x-goog-hash",
        ),
        ("cut", |e| !matches!(e, UpdateError::Import { .. }), ""),
        (
            "garbage",
            |e| matches!(e, UpdateError::Import { .. }),
            "zip",
        ),
        ("missing", |e| matches!(e, UpdateError::Fetch { .. }), "404"),
    ];
    for (prefix, kind, needle) in cases {
        let e = update(
            &dest,
            &options(&base, prefix),
            Arc::new(Recorder::default()),
        )
        .await
        .unwrap_err();
        assert!(kind(&e), "{prefix}: {e:?}");
        assert!(e.to_string().contains(needle), "{prefix}: {e}");
        assert_eq!(std::fs::read(&dest).unwrap(), before, "{prefix}");
        assert_eq!(dir_entries(dir.path()), vec!["advisories.db"], "{prefix}");
    }

    // Unreachable server: a fetch error, old DB kept.
    let mut o = options("http://127.0.0.1:9", "osv");
    o.timeout = Duration::from_secs(5);
    let e = update(&dest, &o, Arc::new(Recorder::default()))
        .await
        .unwrap_err();
    assert!(matches!(e, UpdateError::Fetch { .. }), "{e:?}");
    assert_eq!(std::fs::read(&dest).unwrap(), before);

    // No sources at all.
    let mut o = options(&base, "osv");
    o.sources.clear();
    assert!(matches!(
        update(&dest, &o, Arc::new(Recorder::default())).await,
        Err(UpdateError::NoSources)
    ));
}
