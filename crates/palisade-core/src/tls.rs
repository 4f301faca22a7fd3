//! Serving TLS (admission webhook, audit webhook): a serving key pair from PEM files, swapped in place when the files change
//! (the listener and open connections stay), or a generated CA and serving certificate.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Why a key pair could not be loaded or generated.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: String },
    #[error("{path}: invalid PEM certificate: {message}")]
    BadCertificate { path: String, message: String },
    #[error("{path}: no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {message}")]
    BadKey { path: String, message: String },
    #[error("the private key in {key} does not belong to the certificate in {cert}: {message}")]
    Mismatch {
        cert: String,
        key: String,
        message: String,
    },
    #[error("cannot generate the self-signed certificates: {0}")]
    Generate(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM certificate chain and private key into a key pair rustls can serve, checking
/// that the key belongs to the leaf certificate.
pub fn certified_key_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_name: &str,
    key_name: &str,
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate {
            path: cert_name.to_string(),
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_name.to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::BadKey {
        path: key_name.to_string(),
        message: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
            cert: cert_name.to_string(),
            key: key_name.to_string(),
            message: e.to_string(),
        },
        other => TlsError::BadKey {
            path: key_name.to_string(),
            message: other.to_string(),
        },
    })
}

/// Serves whatever key pair is current; [`ReloadingResolver::replace`] swaps it for new
/// handshakes while established connections keep theirs.
#[derive(Debug)]
pub struct ReloadingResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingResolver {
    pub fn new(key: CertifiedKey) -> Self {
        ReloadingResolver {
            current: RwLock::new(Arc::new(key)),
        }
    }

    pub fn replace(&self, key: CertifiedKey) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        *current = Arc::new(key);
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// How long a client may take to finish the TLS handshake before the connection is dropped (a
/// slow or silent client must not hold a task and a socket for ever).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the TLS handshake of an accepted connection; `None` (logged at debug level with the peer)
/// when it fails or takes longer than [`HANDSHAKE_TIMEOUT`].
pub async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(%peer, "TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// A server configuration (TLS 1.2 and 1.3, ALPN h2 and http/1.1) answering with `resolver`.
pub fn server_config(
    resolver: Arc<ReloadingResolver>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A certificate and key read from files and watched for changes.
#[derive(Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub resolver: Arc<ReloadingResolver>,
    last: (Vec<u8>, Vec<u8>),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

impl CertFiles {
    /// Loads the pair once; an error here is fatal to the caller (nothing to serve).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        let pair = certified_key_from_pem(
            &cert_pem,
            &key_pem,
            &cert.display().to_string(),
            &key.display().to_string(),
        )?;
        Ok(CertFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            resolver: Arc::new(ReloadingResolver::new(pair)),
            last: (cert_pem, key_pem),
        })
    }

    /// Re-reads both files; when their contents changed and form a valid pair, swaps it in.
    /// `Ok(true)`: a new pair is in service; `Ok(false)`: unchanged; `Err`: the files changed but
    /// the new pair is unusable, and the previous one stays in service.
    ///
    /// Contents rather than modification times are compared: Kubernetes updates a mounted
    /// Secret by swapping a symlink, which keeps the files' own times.
    pub fn reload(&mut self) -> Result<bool, TlsError> {
        let cert_pem = read(&self.cert)?;
        let key_pem = read(&self.key)?;
        if cert_pem == self.last.0 && key_pem == self.last.1 {
            return Ok(false);
        }
        let pair = certified_key_from_pem(
            &cert_pem,
            &key_pem,
            &self.cert.display().to_string(),
            &self.key.display().to_string(),
        );
        // Remember what was seen either way, so a bad pair is reported once, not every poll.
        self.last = (cert_pem, key_pem);
        self.resolver.replace(pair?);
        Ok(true)
    }

    /// Polls the files every `interval` until the returned task is aborted. Failures are
    /// logged; the previous key pair keeps serving.
    pub fn watch(mut self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                match self.reload() {
                    Ok(true) => tracing::info!(
                        cert = %self.cert.display(),
                        "serving certificate reloaded"
                    ),
                    Ok(false) => {}
                    Err(e) => tracing::error!(
                        "serving certificate not reloaded, the previous one stays in service: {e}"
                    ),
                }
            }
        })
    }
}

/// A generated CA and a serving certificate it signed.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// The CA certificate (PEM): what the ValidatingWebhookConfiguration's `caBundle` holds.
    pub ca_pem: String,
    /// Serving certificate chain (PEM, leaf first) and its private key (PKCS#8 PEM).
    pub cert_pem: String,
    pub key_pem: String,
}

impl SelfSigned {
    /// Generates a CA (ECDSA P-256) and a serving certificate for `names` (DNS names or IP
    /// addresses), valid for `days`.
    pub fn generate(names: &[String], days: u32) -> Result<Self, TlsError> {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose,
        };
        let generate = |e: rcgen::Error| TlsError::Generate(e.to_string());
        let now = time::OffsetDateTime::now_utc();
        let not_before = now - time::Duration::hours(1);
        let not_after = now + time::Duration::days(i64::from(days.max(1)));

        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "palisade admission webhook CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.not_before = not_before;
        ca_params.not_after = not_after;
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(generate)?)
            .map_err(generate)?;

        let mut params = CertificateParams::new(names.to_vec()).map_err(generate)?;
        let common_name = names.first().map_or("palisade-webhook", String::as_str);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate().map_err(generate)?;
        let cert = params.signed_by(&key, &ca).map_err(generate)?;
        Ok(SelfSigned {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The CA bundle as the base64 string a webhook configuration's `caBundle` field takes.
    pub fn ca_bundle_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes())
    }

    pub fn certified_key(&self) -> Result<CertifiedKey, TlsError> {
        certified_key_from_pem(
            self.cert_pem.as_bytes(),
            self.key_pem.as_bytes(),
            "generated certificate",
            "generated key",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pair_loads_and_mismatched_pair_is_refused() {
        let a = SelfSigned::generate(&["localhost".into(), "127.0.0.1".into()], 1).unwrap();
        let b = SelfSigned::generate(&["localhost".into()], 1).unwrap();
        assert!(a.certified_key().is_ok());
        assert!(a.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let err = certified_key_from_pem(a.cert_pem.as_bytes(), b.key_pem.as_bytes(), "a", "b")
            .unwrap_err();
        assert!(matches!(err, TlsError::Mismatch { .. }), "{err}");
        let err = certified_key_from_pem(b"", a.key_pem.as_bytes(), "empty.crt", "k").unwrap_err();
        assert!(err.to_string().contains("empty.crt"), "{err}");
        let err =
            certified_key_from_pem(a.cert_pem.as_bytes(), b"junk", "c", "junk.key").unwrap_err();
        assert!(err.to_string().contains("junk.key"), "{err}");
    }

    #[test]
    fn reload_swaps_only_valid_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let first = SelfSigned::generate(&["localhost".into()], 1).unwrap();
        std::fs::write(&cert, &first.cert_pem).unwrap();
        std::fs::write(&key, &first.key_pem).unwrap();
        let mut files = CertFiles::load(&cert, &key).unwrap();
        let original = files.resolver.current();
        assert!(!files.reload().unwrap());

        // A new certificate with the old key: refused, old pair kept, reported once.
        let second = SelfSigned::generate(&["localhost".into()], 1).unwrap();
        std::fs::write(&cert, &second.cert_pem).unwrap();
        assert!(matches!(files.reload(), Err(TlsError::Mismatch { .. })));
        assert!(Arc::ptr_eq(&original, &files.resolver.current()));
        assert!(!files.reload().unwrap());

        std::fs::write(&key, &second.key_pem).unwrap();
        assert!(files.reload().unwrap());
        assert_ne!(original.cert, files.resolver.current().cert);
    }
}
