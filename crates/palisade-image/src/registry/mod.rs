//! Pulling images from registries that speak the OCI distribution API (Docker Hub, GHCR, ECR,
//! ACR, GAR, Harbor, `registry:2`, …) on top of `oci-client`: reference parsing, credentials,
//! the bearer-token challenge, manifests and indexes with platform selection, and layers
//! downloaded in parallel into the digest-verified [`BlobCache`].
//!
//! Manifests and configs are fetched with a hard size cap ([`Limits::max_manifest_bytes`]) and
//! verified against their digests; layers are streamed to disk, never held in memory.

pub mod auth;
pub mod digest;
pub mod manifest;
pub mod platform;
pub mod reference;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use oci_client::RegistryOperation;
use oci_client::client::{ClientConfig, ClientProtocol, LayerDescriptor};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;

use crate::cache::BlobCache;
use crate::progress::Progress;
use crate::source::{LayerBlob, ResolvedImage};
use crate::{ImageError, Limits, ScanTarget};
use auth::Credential;
use digest::Sha256Digest;
use manifest::{Descriptor, Manifest};
use platform::Platform;
use reference::ImageReference;

/// How to reach a registry and what to pull from it.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Use plain HTTP for this image's registry (loopback / lab registries without TLS).
    pub insecure: bool,
    /// Registry username (flag or `PALISADE_REGISTRY_USERNAME`); overrides the docker config.
    pub username: Option<String>,
    /// Registry password or token (flag or `PALISADE_REGISTRY_PASSWORD`).
    pub password: Option<String>,
    /// `os/arch[/variant]` to pick from a multi-platform image; default `linux/amd64`.
    pub platform: Option<String>,
    /// Docker config to read credentials from; default `$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// Layers downloaded at once (at least 1).
    pub max_concurrent_downloads: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: false,
            username: None,
            password: None,
            platform: None,
            docker_config: None,
            max_concurrent_downloads: 4,
        }
    }
}

/// Installs the ring TLS provider unless the process already chose one: reqwest is built
/// without a provider so that only one TLS backend is compiled, and would fail without one.
pub fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing one is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Resolves `reference` on its registry: fetches the manifest (selecting the platform from an
/// index), the config, and every layer not already in `cache`, all verified against their
/// digests. The returned layers open verified streams from the cache.
pub async fn resolve(
    reference: &str,
    opts: &RegistryOptions,
    cache: &BlobCache,
    limits: &Limits,
    progress: Arc<dyn Progress>,
) -> Result<ResolvedImage, ImageError> {
    ensure_crypto_provider();
    let image = ImageReference::parse(reference)?;
    let wanted = opts.platform.as_deref().map(Platform::parse).transpose()?;
    let credential = credentials_for(&image, opts).await?;
    let conn = Connection::open(&image, opts, credential).await?;
    let shown = image.to_string();

    let (bytes, top_digest, content_type) = conn
        .fetch_manifest(
            &image.manifest_ref(),
            image.digest.as_ref(),
            None,
            limits,
            cache,
        )
        .await?;
    let mut doc = manifest::parse_manifest(&bytes, content_type.as_deref())?;
    let mut depth = 0;
    let image_manifest = loop {
        match doc {
            Manifest::Image(m) => break m,
            Manifest::Index(index) => {
                depth += 1;
                if depth > manifest::MAX_INDEX_DEPTH {
                    return Err(ImageError::Malformed {
                        what: "index".into(),
                        message: format!(
                            "indexes nested deeper than {}",
                            manifest::MAX_INDEX_DEPTH
                        ),
                    });
                }
                let entry = index.select(&shown, wanted.as_ref())?.clone();
                let (bytes, _, _) = conn
                    .fetch_manifest(
                        entry.digest.as_str(),
                        Some(&entry.digest),
                        Some(entry.size),
                        limits,
                        cache,
                    )
                    .await?;
                doc = manifest::parse_manifest(&bytes, Some(&entry.media_type))?;
            }
        }
    };

    let config_bytes = conn
        .fetch_config(&image_manifest.config, cache, limits)
        .await?;
    let (config, info) = manifest::parse_config(&config_bytes)?;
    manifest::check_config_platform(&shown, wanted.as_ref(), &info)?;

    let total: u64 = image_manifest.layers.iter().map(|l| l.size).sum();
    if total > limits.max_image_bytes {
        return Err(ImageError::LimitExceeded {
            layer: shown.clone(),
            limit: format!(
                "layers total {total} bytes compressed, above max_image_bytes {}",
                limits.max_image_bytes
            ),
        });
    }
    if let Some(big) = image_manifest
        .layers
        .iter()
        .find(|l| l.size > limits.max_layer_bytes)
    {
        return Err(ImageError::LimitExceeded {
            layer: big.digest.to_string(),
            limit: format!(
                "{} bytes compressed, above max_layer_bytes {}",
                big.size, limits.max_layer_bytes
            ),
        });
    }

    let mut seen = HashSet::new();
    let to_fetch: Vec<&Descriptor> = image_manifest
        .layers
        .iter()
        .filter(|l| seen.insert(l.digest.clone()))
        .filter(|l| !cache.contains(&l.digest, l.size))
        .collect();
    let parallel = opts.max_concurrent_downloads.max(1);
    futures::stream::iter(to_fetch)
        .map(|layer| conn.download_layer(layer, cache, &progress))
        .buffer_unordered(parallel)
        .try_collect::<Vec<()>>()
        .await?;

    let layers = image_manifest
        .layers
        .iter()
        .map(|l| LayerBlob {
            digest: l.digest.to_string(),
            media_type: l.media_type.clone(),
            size: l.size,
            open: cache.opener(&l.digest, Some(l.size)),
        })
        .collect();
    Ok(ResolvedImage {
        target: ScanTarget {
            kind: "image".into(),
            name: reference.to_string(),
            digest: Some(top_digest.to_string()),
            config_digest: Some(image_manifest.config.digest.to_string()),
            platform: Some(info.platform.to_string()).filter(|p| p != "/"),
            layers: image_manifest
                .layers
                .iter()
                .map(|l| l.digest.to_string())
                .collect(),
        },
        config: Some(config),
        layers,
    })
}

/// Credentials for the image's registry: flags first, then the docker config.
async fn credentials_for(
    image: &ImageReference,
    opts: &RegistryOptions,
) -> Result<Credential, ImageError> {
    match (&opts.username, &opts.password) {
        (Some(u), Some(p)) => {
            return Ok(Credential::Basic {
                username: u.clone(),
                password: p.clone(),
            });
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(ImageError::Auth {
                registry: image.registry.clone(),
                message: "give both --username and --password (or neither)".into(),
            });
        }
        (None, None) => {}
    }
    let Some(path) = opts
        .docker_config
        .clone()
        .or_else(auth::default_docker_config_path)
    else {
        return Ok(Credential::Anonymous);
    };
    let registry = image.registry.clone();
    // Reading the file and running a credential helper block; keep them off the runtime.
    tokio::task::spawn_blocking(move || {
        let Some(cfg) = auth::load_docker_config(&path)? else {
            return Ok(Credential::Anonymous);
        };
        cfg.credential_for(&registry, &auth::run_credential_helper)
    })
    .await
    .map_err(|e| ImageError::Auth {
        registry: image.registry.clone(),
        message: format!("credential lookup failed: {e}"),
    })?
}

/// One registry session: the oci-client (auth, token cache, blobs) plus a plain HTTP client
/// for size-capped manifest fetches, both authenticated the same way.
struct Connection {
    oci: oci_client::Client,
    http: reqwest::Client,
    oref: oci_client::Reference,
    image: ImageReference,
    scheme: &'static str,
    insecure: bool,
    anonymous: bool,
    username: Option<String>,
    bearer: Option<String>,
    basic: Option<(String, String)>,
}

const USER_AGENT: &str = concat!("palisade/", env!("CARGO_PKG_VERSION"));
/// Tries per layer download (transport failures and corrupted transfers are retried).
const DOWNLOAD_ATTEMPTS: u32 = 3;
/// Deadline for one manifest or token request.
const MANIFEST_TIMEOUT: Duration = Duration::from_secs(120);

impl Connection {
    async fn open(
        image: &ImageReference,
        opts: &RegistryOptions,
        credential: Credential,
    ) -> Result<Connection, ImageError> {
        let host = image.api_host().to_string();
        let protocol = if opts.insecure {
            ClientProtocol::HttpsExcept(vec![host.clone()])
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            platform_resolver: None,
            connect_timeout: Some(Duration::from_secs(30)),
            read_timeout: Some(Duration::from_secs(120)),
            user_agent: USER_AGENT,
            ..ClientConfig::default()
        };
        let registry_err = |message: String| ImageError::Registry {
            registry: image.registry.clone(),
            message,
        };
        let oci = oci_client::Client::try_from(config)
            .map_err(|e| registry_err(format!("cannot set up the HTTP client: {e}")))?;
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| registry_err(format!("cannot set up the HTTP client: {e}")))?;
        let mut conn = Connection {
            oci,
            http,
            oref: image.to_oci(),
            image: image.clone(),
            scheme: if opts.insecure { "http" } else { "https" },
            insecure: opts.insecure,
            anonymous: matches!(credential, Credential::Anonymous),
            username: None,
            bearer: None,
            basic: None,
        };
        let auth = match credential {
            Credential::Anonymous => RegistryAuth::Anonymous,
            Credential::Basic { username, password } => {
                conn.username = Some(username.clone());
                conn.basic = Some((username.clone(), password.clone()));
                RegistryAuth::Basic(username, password)
            }
            Credential::IdentityToken { token } => {
                RegistryAuth::Bearer(conn.exchange_identity_token(&token).await?)
            }
        };
        match conn
            .oci
            .auth(&conn.oref, &auth, RegistryOperation::Pull)
            .await
        {
            Ok(token) => conn.bearer = token,
            Err(e) => return Err(conn.map_oci_error(e, "authenticating")),
        }
        if let RegistryAuth::Bearer(t) = auth {
            conn.bearer = Some(t);
        }
        Ok(conn)
    }

    fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.image.api_host())
    }

    fn registry_err(&self, message: impl Into<String>) -> ImageError {
        ImageError::Registry {
            registry: self.image.registry.clone(),
            message: message.into(),
        }
    }

    fn auth_required(&self) -> ImageError {
        let message = if self.anonymous {
            format!(
                "authentication required for {}: pass --username/--password or run `docker login {}`",
                self.image.registry, self.image.registry
            )
        } else {
            format!(
                "the registry rejected the credentials{} (401): check the username and password or token",
                self.username
                    .as_deref()
                    .map(|u| format!(" of user {u:?}"))
                    .unwrap_or_default()
            )
        };
        ImageError::Auth {
            registry: self.image.registry.clone(),
            message,
        }
    }

    /// Turns a transport error into advice: a TLS failure against a loopback registry almost
    /// always means it speaks plain HTTP.
    fn network_error(&self, e: &(dyn std::error::Error + 'static), doing: &str) -> ImageError {
        let mut chain = e.to_string();
        let mut src = e.source();
        let mut hops = 0;
        while let Some(s) = src
            && hops < 8
        {
            let text = s.to_string();
            if !chain.contains(&text) {
                chain.push_str(": ");
                chain.push_str(&text);
            }
            src = s.source();
            hops += 1;
        }
        let lower = chain.to_ascii_lowercase();
        let tls = [
            "tls",
            "certificate",
            "invalidcontenttype",
            "corrupt message",
            "handshake",
            "peer",
        ]
        .iter()
        .any(|k| lower.contains(k));
        let message = if tls && !self.insecure {
            if self.image.is_loopback() {
                format!(
                    "TLS error while {doing} ({chain}); if this loopback registry serves plain HTTP, pass --insecure"
                )
            } else {
                format!("TLS error while {doing} ({chain})")
            }
        } else if lower.contains("connection refused")
            || lower.contains("dns")
            || lower.contains("connect")
        {
            format!("cannot connect while {doing}: {chain}")
        } else {
            format!("network error while {doing}: {chain}")
        };
        self.registry_err(message)
    }

    fn map_oci_error(&self, e: OciDistributionError, doing: &str) -> ImageError {
        match e {
            OciDistributionError::UnauthorizedError { .. } => self.auth_required(),
            OciDistributionError::AuthenticationFailure(reason) => ImageError::Auth {
                registry: self.image.registry.clone(),
                message: format!(
                    "the token service refused {}: {}",
                    if self.anonymous {
                        "anonymous access (pass --username/--password or run `docker login`)"
                    } else {
                        "the credentials"
                    },
                    truncate(&reason, 300)
                ),
            },
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<String> = envelope
                    .errors
                    .iter()
                    .take(4)
                    .map(|e| format!("{:?}: {}", e.code, truncate(&e.message, 200)))
                    .collect();
                if envelope
                    .errors
                    .iter()
                    .any(|e| matches!(e.code, OciErrorCode::Unauthorized))
                {
                    return self.auth_required();
                }
                if envelope
                    .errors
                    .iter()
                    .any(|e| matches!(e.code, OciErrorCode::Denied))
                {
                    return ImageError::Auth {
                        registry: self.image.registry.clone(),
                        message: format!("access denied while {doing}: {}", codes.join("; ")),
                    };
                }
                self.registry_err(format!("{doing}: {}", codes.join("; ")))
            }
            OciDistributionError::ServerError { code, message, .. } => {
                self.registry_err(format!("{doing}: HTTP {code}: {}", truncate(&message, 300)))
            }
            OciDistributionError::RequestError(re) => self.network_error(&re, doing),
            other => self.registry_err(format!("{doing}: {other}")),
        }
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(t) = &self.bearer {
            req.bearer_auth(t)
        } else if let Some((u, p)) = &self.basic {
            req.basic_auth(u, Some(p))
        } else {
            req
        }
    }

    /// A manifest by tag or digest, from the blob cache when its digest is known (pinned, or
    /// learnt with a `HEAD`, which registries such as Docker Hub do not count against pull
    /// rate limits), else fetched and cached. Returns the bytes, their digest and the
    /// `Content-Type` when known.
    async fn fetch_manifest(
        &self,
        reference: &str,
        expected: Option<&Sha256Digest>,
        expected_size: Option<u64>,
        limits: &Limits,
        cache: &BlobCache,
    ) -> Result<(Vec<u8>, Sha256Digest, Option<String>), ImageError> {
        let cap = expected_size
            .unwrap_or(u64::MAX)
            .min(limits.max_manifest_bytes);
        let known = match expected {
            Some(d) => Some((d.clone(), None)),
            None => self.head_manifest(reference).await,
        };
        if let Some((digest, content_type)) = known
            && let Some(bytes) = cache.read_cached(&digest, cap)
        {
            return Ok((bytes, digest, content_type));
        }
        let (bytes, digest, content_type) = self
            .fetch_manifest_remote(reference, expected, expected_size, limits)
            .await?;
        if let Err(e) = cache.put(&digest, &bytes) {
            tracing::warn!("cannot cache manifest {digest}: {e}");
        }
        Ok((bytes, digest, content_type))
    }

    /// `HEAD` of a manifest: its digest and media type, or `None` if the registry does not
    /// say (the `GET` that follows reports any real error).
    async fn head_manifest(&self, reference: &str) -> Option<(Sha256Digest, Option<String>)> {
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base_url(),
            self.image.repository,
            reference
        );
        let req = self
            .http
            .head(&url)
            .timeout(MANIFEST_TIMEOUT)
            .header(reqwest::header::ACCEPT, manifest::ACCEPT.join(", "));
        let resp = self.authorize(req).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let digest = Sha256Digest::parse(&header("docker-content-digest")?).ok()?;
        Some((digest, header(reqwest::header::CONTENT_TYPE.as_str())))
    }

    /// Fetches a manifest by tag or digest with a size cap, verifying its digest. Returns the
    /// bytes, their digest and the `Content-Type`.
    async fn fetch_manifest_remote(
        &self,
        reference: &str,
        expected: Option<&Sha256Digest>,
        expected_size: Option<u64>,
        limits: &Limits,
    ) -> Result<(Vec<u8>, Sha256Digest, Option<String>), ImageError> {
        let what = format!(
            "{}/{}:{reference}",
            self.image.registry, self.image.repository
        );
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base_url(),
            self.image.repository,
            reference
        );
        // Manifests are small: a whole-request deadline stops a trickling server.
        let req = self
            .http
            .get(&url)
            .timeout(MANIFEST_TIMEOUT)
            .header(reqwest::header::ACCEPT, manifest::ACCEPT.join(", "));
        let mut resp = self
            .authorize(req)
            .send()
            .await
            .map_err(|e| self.network_error(&e, "fetching the manifest"))?;
        let status = resp.status();
        if !status.is_success() {
            let body = read_capped(&mut resp, 64 << 10)
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            return Err(self.status_error(status, &body, &format!("manifest {what}")));
        }
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let cap = expected_size
            .unwrap_or(u64::MAX)
            .min(limits.max_manifest_bytes);
        if let Some(len) = resp.content_length()
            && len > cap
        {
            return Err(ImageError::LimitExceeded {
                layer: what,
                limit: format!("manifest of {len} bytes, above the {cap}-byte limit"),
            });
        }
        let Some(bytes) = read_capped(&mut resp, cap)
            .await
            .map_err(|e| self.network_error(&e, "reading the manifest"))?
        else {
            return Err(ImageError::LimitExceeded {
                layer: what,
                limit: format!("manifest larger than the {cap}-byte limit"),
            });
        };
        let digest = Sha256Digest::of(&bytes);
        if let Some(exp) = expected {
            exp.verify(&format!("manifest {what}"), &bytes)?;
        } else if let Some(h) = header_digest
            && let Ok(h) = Sha256Digest::parse(&h)
            && h != digest
        {
            return Err(ImageError::DigestMismatch {
                what: format!("manifest {what} (Docker-Content-Digest header)"),
                expected: h.to_string(),
                actual: digest.to_string(),
            });
        }
        Ok((bytes, digest, content_type))
    }

    fn status_error(&self, status: reqwest::StatusCode, body: &[u8], what: &str) -> ImageError {
        let detail = serde_json::from_slice::<oci_client::errors::OciEnvelope>(body)
            .ok()
            .map(|env| {
                env.errors
                    .iter()
                    .take(4)
                    .map(|e| format!("{:?}: {}", e.code, truncate(&e.message, 200)))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_else(|| truncate(&String::from_utf8_lossy(body), 200));
        match status.as_u16() {
            401 => self.auth_required(),
            403 => ImageError::Auth {
                registry: self.image.registry.clone(),
                message: format!("access to {what} denied (403): {detail}"),
            },
            404 => self.registry_err(format!(
                "{what} not found (404 manifest unknown; check the repository and tag): {detail}"
            )),
            429 => self.registry_err(format!(
                "rate limited (429) fetching {what}: authenticate or retry later: {detail}"
            )),
            s => self.registry_err(format!("HTTP {s} fetching {what}: {detail}")),
        }
    }

    async fn fetch_config(
        &self,
        desc: &Descriptor,
        cache: &BlobCache,
        limits: &Limits,
    ) -> Result<Vec<u8>, ImageError> {
        if desc.size > limits.max_manifest_bytes {
            return Err(ImageError::LimitExceeded {
                layer: format!("config {}", desc.digest),
                limit: format!(
                    "config of {} bytes, above max_manifest_bytes {}",
                    desc.size, limits.max_manifest_bytes
                ),
            });
        }
        if let Some(bytes) = cache.read_small(&desc.digest, desc.size) {
            return Ok(bytes);
        }
        let mut stream = self
            .oci
            .pull_blob_stream(
                &self.oref,
                &LayerDescriptor {
                    digest: desc.digest.as_str(),
                    urls: &None,
                },
            )
            .await
            .map_err(|e| self.map_oci_error(e, "fetching the image config"))?;
        let mut bytes = Vec::with_capacity(desc.size.min(1 << 20) as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.network_error(&e, "reading the image config"))?;
            if (bytes.len() + chunk.len()) as u64 > desc.size {
                return Err(ImageError::Malformed {
                    what: format!("config {}", desc.digest),
                    message: format!("larger than the {} bytes its descriptor states", desc.size),
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        desc.digest
            .verify(&format!("config {}", desc.digest), &bytes)?;
        if let Err(e) = cache.put(&desc.digest, &bytes) {
            tracing::warn!("cannot cache config {}: {e}", desc.digest);
        }
        Ok(bytes)
    }

    async fn download_layer(
        &self,
        layer: &Descriptor,
        cache: &BlobCache,
        progress: &Arc<dyn Progress>,
    ) -> Result<(), ImageError> {
        let task = format!("layer {}", &layer.digest.hex()[..12]);
        let mut attempt = 1;
        loop {
            progress.start(&task, layer.size);
            let result = self
                .download_layer_inner(layer, cache, progress.as_ref(), &task)
                .await;
            progress.finish(&task);
            // A dropped connection or a corrupted transfer is worth another try; refusals
            // (auth, not found, limits) are not.
            let transient = matches!(
                result,
                Err(ImageError::Layer { .. }) | Err(ImageError::DigestMismatch { .. })
            );
            if result.is_ok() || !transient || attempt >= DOWNLOAD_ATTEMPTS {
                return result;
            }
            if let Err(e) = &result {
                tracing::warn!("retrying layer {} after: {e}", layer.digest);
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(250 * attempt as u64)).await;
        }
    }

    async fn download_layer_inner(
        &self,
        layer: &Descriptor,
        cache: &BlobCache,
        progress: &dyn Progress,
        task: &str,
    ) -> Result<(), ImageError> {
        let mut stream = self
            .oci
            .pull_blob_stream(
                &self.oref,
                &LayerDescriptor {
                    digest: layer.digest.as_str(),
                    urls: &None,
                },
            )
            .await
            .map_err(|e| self.map_oci_error(e, &format!("fetching layer {}", layer.digest)))?;
        if let Some(len) = stream.content_length
            && len != layer.size
        {
            return Err(ImageError::Layer {
                layer: layer.digest.to_string(),
                message: format!(
                    "registry sends {len} bytes but the manifest says {}",
                    layer.size
                ),
            });
        }
        let mut writer = cache.writer(&layer.digest, Some(layer.size))?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ImageError::Layer {
                layer: layer.digest.to_string(),
                message: format!("download failed: {e}"),
            })?;
            writer.write(&chunk)?;
            progress.advance(task, chunk.len() as u64);
        }
        writer.commit()
    }

    /// Exchanges an OAuth2 refresh token (`identitytoken`) for an access token at the realm
    /// the registry's bearer challenge names, as `docker login` does for ACR and others.
    async fn exchange_identity_token(&self, refresh: &str) -> Result<String, ImageError> {
        let auth_err = |message: String| ImageError::Auth {
            registry: self.image.registry.clone(),
            message,
        };
        let resp = self
            .http
            .get(format!("{}/v2/", self.base_url()))
            .send()
            .await
            .map_err(|e| self.network_error(&e, "contacting the registry"))?;
        let challenge = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_bearer_challenge)
            .ok_or_else(|| {
                auth_err(
                    "an identity token is configured but the registry sent no bearer challenge"
                        .into(),
                )
            })?;
        let scope = format!("repository:{}:pull", self.image.repository);
        let mut params = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", "palisade"),
            ("scope", scope.as_str()),
        ];
        if let Some(s) = &challenge.1 {
            params.push(("service", s.as_str()));
        }
        let body = reqwest::Url::parse_with_params("http://form.invalid/", &params)
            .map_err(|e| auth_err(format!("cannot encode token request: {e}")))?
            .query()
            .unwrap_or("")
            .to_string();
        let mut resp = self
            .http
            .post(&challenge.0)
            .timeout(MANIFEST_TIMEOUT)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| self.network_error(&e, "exchanging the identity token"))?;
        let status = resp.status();
        let body = read_capped(&mut resp, 1 << 20)
            .await
            .map_err(|e| self.network_error(&e, "exchanging the identity token"))?
            .ok_or_else(|| auth_err("token response larger than 1 MiB".into()))?;
        if !status.is_success() {
            return Err(auth_err(format!(
                "identity token refused ({status}): {}",
                truncate(&String::from_utf8_lossy(&body), 200)
            )));
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            token: Option<String>,
        }
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| auth_err(format!("token response is not JSON: {e}")))?;
        t.access_token
            .or(t.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| auth_err("token response holds no token".into()))
    }
}

/// Parses `Bearer realm="…",service="…"` into (realm, service).
pub fn parse_bearer_challenge(header: &str) -> Option<(String, Option<String>)> {
    let rest = header.trim();
    let (scheme, params) = rest.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut s = params.trim();
    let mut guard = 0;
    while !s.is_empty() && guard < 32 {
        guard += 1;
        let (key, after) = s.split_once('=')?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        match key.as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            _ => {}
        }
        s = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    let realm = realm.filter(|r| r.starts_with("https://") || r.starts_with("http://"))?;
    Some((realm, service))
}

/// Reads a response body up to `cap` bytes; `Ok(None)` if it is longer.
async fn read_capped(
    resp: &mut reqwest::Response,
    cap: u64,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if (buf.len() + chunk.len()) as u64 > cap {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf))
}

fn truncate(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges() {
        assert_eq!(
            parse_bearer_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#
            ),
            Some((
                "https://auth.docker.io/token".into(),
                Some("registry.docker.io".into())
            ))
        );
        assert_eq!(
            parse_bearer_challenge(r#"bearer realm=https://x.example/oauth2/token , service=x"#),
            Some(("https://x.example/oauth2/token".into(), Some("x".into())))
        );
        assert_eq!(parse_bearer_challenge(r#"Basic realm="ci-registry""#), None);
        assert_eq!(
            parse_bearer_challenge(r#"Bearer realm="file:///etc/passwd""#),
            None
        );
        assert_eq!(
            parse_bearer_challenge(r#"Bearer realm="unterminated"#),
            None
        );
        assert_eq!(parse_bearer_challenge("Bearer"), None);
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate(" short ", 10), "short");
    }

    #[test]
    fn default_options() {
        let o = RegistryOptions::default();
        assert_eq!(o.max_concurrent_downloads, 4);
        assert!(!o.insecure);
    }
}
