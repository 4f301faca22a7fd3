//! The bearer-token challenge flow (Docker Hub, GHCR, ACR, ECR, GAR): a small token-auth front
//! end in this test answers `/v2/` with `WWW-Authenticate: Bearer realm=…`, issues tokens from
//! its `/token` endpoint (anonymously for public repositories, with Basic credentials or an
//! OAuth2 refresh token for private ones), and relays authorised requests to the REAL local
//! registry at `$PALISADE_TEST_REGISTRY`, where the test pushed its images with skopeo.

mod registry_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use palisade_image::cache::BlobCache;
use palisade_image::progress::NoProgress;
use palisade_image::registry::{self, RegistryOptions};
use palisade_image::{ImageError, Limits};
use registry_support::*;

const TOKEN: &str = "palisade-test-access-token";
const REFRESH: &str = "palisade-test-refresh-token";

#[derive(Default)]
struct Counters {
    token_get: AtomicUsize,
    token_post: AtomicUsize,
    relayed: AtomicUsize,
    /// Blob digests whose next download is cut off half way (a dropped connection).
    truncate_once: std::sync::Mutex<std::collections::HashSet<String>>,
    truncated: AtomicUsize,
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(s: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 || buf.len() > 64 << 10 {
            return None;
        }
        buf.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len.min(1 << 20)];
    s.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

fn respond(s: &mut TcpStream, status: &str, extra: &[(&str, String)], body: &[u8]) {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = s.write_all(out.as_bytes());
    let _ = s.write_all(body);
}

fn query_param(target: &str, key: &str) -> Option<String> {
    let q = target.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.replace("%3A", ":").replace("%2F", "/").replace('+', " "))
    })
}

fn basic_ok(req: &Request) -> bool {
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ciuser:cipass")
    );
    req.header("authorization") == Some(want.as_str())
}

/// Serves one connection of the token-auth front end.
fn handle(mut s: TcpStream, port: u16, upstream: &str, counters: &Counters) {
    let Some(req) = read_request(&mut s) else {
        return;
    };
    let challenge = (
        "WWW-Authenticate",
        format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="palisade-test""#),
    );
    let json = ("Content-Type", "application/json".to_string());
    if req.target.starts_with("/token") {
        if req.method == "POST" {
            counters.token_post.fetch_add(1, Ordering::SeqCst);
            let body = String::from_utf8_lossy(&req.body).into_owned();
            let form = format!("/token?{body}");
            if query_param(&form, "grant_type").as_deref() == Some("refresh_token")
                && query_param(&form, "refresh_token").as_deref() == Some(REFRESH)
                && query_param(&form, "scope").is_some_and(|s| s.ends_with(":pull"))
            {
                let t = format!(r#"{{"access_token":"{TOKEN}","expires_in":300}}"#);
                return respond(&mut s, "200 OK", &[json], t.as_bytes());
            }
            return respond(
                &mut s,
                "401 Unauthorized",
                &[json],
                br#"{"details":"bad refresh token"}"#,
            );
        }
        counters.token_get.fetch_add(1, Ordering::SeqCst);
        let scope = query_param(&req.target, "scope").unwrap_or_default();
        let private = scope.contains("private");
        if query_param(&req.target, "service").as_deref() != Some("palisade-test")
            || (private && !basic_ok(&req))
        {
            return respond(
                &mut s,
                "401 Unauthorized",
                &[json],
                br#"{"details":"access to the requested resource is not authorized"}"#,
            );
        }
        let t = format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#);
        return respond(&mut s, "200 OK", &[json], t.as_bytes());
    }
    if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
        return respond(
            &mut s,
            "401 Unauthorized",
            &[challenge, json],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
    }
    if req.target == "/v2/" {
        return respond(&mut s, "200 OK", &[json], b"{}");
    }
    // Relay to the real registry (HTTP/1.0: the body ends when it closes the connection).
    counters.relayed.fetch_add(1, Ordering::SeqCst);
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return respond(&mut s, "502 Bad Gateway", &[], b"upstream down");
    };
    let accept = req.header("accept").unwrap_or("*/*").to_string();
    let _ = write!(
        up,
        "{} {} HTTP/1.0\r\nHost: {upstream}\r\nAccept: {accept}\r\n\r\n",
        req.method, req.target
    );
    let mut raw = Vec::new();
    let _ = up.read_to_end(&mut raw);
    let digest = req.target.rsplit('/').next().unwrap_or("").to_string();
    if req.target.contains("/blobs/") && counters.truncate_once.lock().unwrap().remove(&digest) {
        counters.truncated.fetch_add(1, Ordering::SeqCst);
        let _ = s.write_all(&raw[..raw.len() - 10]);
        return;
    }
    let _ = s.write_all(&raw);
}

fn start_front_end(upstream: String) -> (u16, Arc<Counters>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let counters = Arc::new(Counters::default());
    let c = Arc::clone(&counters);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let c = Arc::clone(&c);
            let upstream = upstream.clone();
            std::thread::spawn(move || handle(conn, port, &upstream, &c));
        }
    });
    (port, counters)
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_flow() {
    let Some(reg) = infra_env("PALISADE_TEST_REGISTRY") else {
        return;
    };
    if !require_skopeo() {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let base = unique_repo("token");
    let (public, private) = (format!("{base}-public"), format!("{base}-private"));
    let dir = tempfile::tempdir().unwrap();
    let (single, _, _, _) = build_test_layout(dir.path(), &base);
    for repo in [&public, &private] {
        skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            "--preserve-digests",
            &format!("oci:{}:v1", dir.path().display()),
            &format!("docker://{reg}/{repo}:v1"),
        ]);
    }
    let (port, counters) = start_front_end(reg.clone());
    let front = format!("127.0.0.1:{port}");
    let limits = Limits::default();
    let opts = RegistryOptions {
        insecure: true,
        docker_config: Some("/nonexistent/palisade-test/config.json".into()),
        ..RegistryOptions::default()
    };
    let fresh_cache = || {
        let d = tempfile::tempdir().unwrap();
        let c = BlobCache::new(d.path().to_path_buf()).unwrap();
        (d, c)
    };

    // Public repository: anonymous token, like Docker Hub.
    let (_d, cache) = fresh_cache();
    let img = registry::resolve(
        &format!("{front}/{public}:v1"),
        &opts,
        &cache,
        &limits,
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    assert_eq!(
        img.target.digest.as_deref(),
        Some(single.manifest_digest.as_str())
    );
    assert_eq!(image_files(&img)["etc/marker"], base.as_bytes());
    assert!(counters.token_get.load(Ordering::SeqCst) >= 1);
    // manifest + config + 3 layers went through the front end with the token.
    assert!(counters.relayed.load(Ordering::SeqCst) >= 5);

    // Warm: the manifest's digest comes from a HEAD; manifest, config and layers from the
    // cache. Exactly one request reaches the registry.
    let before = counters.relayed.load(Ordering::SeqCst);
    let again = registry::resolve(
        &format!("{front}/{public}:v1"),
        &opts,
        &cache,
        &limits,
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    assert_eq!(counters.relayed.load(Ordering::SeqCst) - before, 1);
    assert_eq!(again.target.digest, img.target.digest);
    assert_eq!(image_files(&again)["etc/marker"], base.as_bytes());

    // Connections dropped mid-layer: detected (short read) and retried.
    counters
        .truncate_once
        .lock()
        .unwrap()
        .extend(single.layer_digests.iter().cloned());
    let (_d, cache) = fresh_cache();
    let progress = Arc::new(RecordingProgress::default());
    let img = registry::resolve(
        &format!("{front}/{public}:v1"),
        &opts,
        &cache,
        &limits,
        progress.clone(),
    )
    .await
    .unwrap();
    assert_eq!(counters.truncated.load(Ordering::SeqCst), 3);
    assert_eq!(
        progress.started.lock().unwrap().len(),
        6,
        "each layer tried twice"
    );
    assert_eq!(
        image_files(&img)["usr/lib/zstd-layer.txt"],
        b"zstd layer content"
    );

    // Private repository without credentials: the token service refuses.
    let (_d, cache) = fresh_cache();
    let err = registry::resolve(
        &format!("{front}/{private}:v1"),
        &opts,
        &cache,
        &limits,
        Arc::new(NoProgress),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImageError::Auth { .. }), "{err}");
    assert!(err.to_string().contains("--username/--password"), "{err}");

    // With credentials: Basic auth at the token endpoint, then the bearer token.
    let with_creds = RegistryOptions {
        username: Some("ciuser".into()),
        password: Some("cipass".into()),
        ..opts.clone()
    };
    let (_d, cache) = fresh_cache();
    let img = registry::resolve(
        &format!("{front}/{private}:v1"),
        &with_creds,
        &cache,
        &limits,
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    assert_eq!(image_files(&img)["opt/plain.txt"], b"plain layer content");

    // An identitytoken (OAuth2 refresh token) from the docker config is exchanged.
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("config.json");
    std::fs::write(
        &cfg,
        format!(r#"{{"auths":{{"{front}":{{"auth":"","identitytoken":"{REFRESH}"}}}}}}"#),
    )
    .unwrap();
    let with_identity = RegistryOptions {
        docker_config: Some(cfg.clone()),
        ..opts.clone()
    };
    let (_d, cache) = fresh_cache();
    let img = registry::resolve(
        &format!("{front}/{private}:v1"),
        &with_identity,
        &cache,
        &limits,
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    assert_eq!(img.target.layers, single.layer_digests);
    assert_eq!(counters.token_post.load(Ordering::SeqCst), 1);

    std::fs::write(
        &cfg,
        format!(r#"{{"auths":{{"{front}":{{"identitytoken":"wrong"}}}}}}"#),
    )
    .unwrap();
    let err = registry::resolve(
        &format!("{front}/{private}:v1"),
        &with_identity,
        &cache,
        &limits,
        Arc::new(NoProgress),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImageError::Auth { .. }), "{err}");
    assert!(err.to_string().contains("identity token refused"), "{err}");
}
