//! Registry credentials: from flags, or from Docker's `config.json` (`auths` entries,
//! `identitytoken`, `credsStore` and `credHelpers` through `docker-credential-<name> get`), so a
//! user who ran `docker login` needs nothing else.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use super::reference::{DOCKER_HUB, normalize_registry_host};
use crate::ImageError;

/// Largest docker config file read (they are a few KB).
const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// Largest credential helper answer read.
const MAX_HELPER_OUTPUT: u64 = 1 << 20;
/// How long a credential helper may take (some prompt or hit the network).
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Asks a credential helper (`name`, registry) for credentials; `Ok(None)` when it has none.
pub type HelperRunner = dyn Fn(&str, &str) -> Result<Option<Credential>, ImageError>;

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// No credentials: pull anonymously (the bearer flow still fetches an anonymous token).
    Anonymous,
    /// Username and password (or personal access token), used for Basic auth or to obtain a
    /// bearer token.
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (`identitytoken`, as written by `az acr login` and others),
    /// exchanged at the registry's token endpoint.
    IdentityToken { token: String },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken { .. } => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// One `auths` entry of a docker config.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct AuthEntry {
    /// base64 of `username:password`.
    #[serde(default)]
    pub auth: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub identitytoken: Option<String>,
    #[serde(default)]
    pub registrytoken: Option<String>,
}

/// The parts of `~/.docker/config.json` that hold credentials. Keys of `auths` and
/// `credHelpers` are normalised with [`normalize_registry_host`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerConfig {
    pub auths: BTreeMap<String, AuthEntry>,
    pub creds_store: Option<String>,
    pub cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDockerConfig {
    #[serde(default)]
    auths: Option<BTreeMap<String, AuthEntry>>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: Option<BTreeMap<String, String>>,
}

fn config_error(message: impl Into<String>) -> ImageError {
    ImageError::Malformed {
        what: "docker config".into(),
        message: message.into(),
    }
}

/// Parses a docker `config.json`. Unknown fields are ignored; wrong types are errors.
pub fn parse_docker_config(bytes: &[u8]) -> Result<DockerConfig, ImageError> {
    super::manifest::require_object("docker config", bytes)?;
    let raw: RawDockerConfig =
        serde_json::from_slice(bytes).map_err(|e| config_error(format!("invalid JSON: {e}")))?;
    let mut auths = BTreeMap::new();
    for (k, v) in raw.auths.unwrap_or_default() {
        auths.insert(normalize_registry_host(&k), v);
    }
    let cred_helpers = raw
        .cred_helpers
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (normalize_registry_host(&k), v))
        .collect();
    Ok(DockerConfig {
        auths,
        creds_store: raw.creds_store.filter(|s| !s.is_empty()),
        cred_helpers,
    })
}

/// Decodes an `auth` field (base64 of `user:password`).
pub fn decode_auth_field(auth: &str) -> Result<(String, String), ImageError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|e| config_error(format!("`auth` is not base64: {e}")))?;
    let s = String::from_utf8(bytes).map_err(|_| config_error("`auth` is not UTF-8"))?;
    let (u, p) = s
        .split_once(':')
        .ok_or_else(|| config_error("`auth` does not decode to user:password"))?;
    Ok((u.to_string(), p.to_string()))
}

impl AuthEntry {
    /// The credential this entry holds, if any.
    pub fn credential(&self) -> Result<Option<Credential>, ImageError> {
        if let Some(token) = self.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credential::IdentityToken {
                token: token.clone(),
            }));
        }
        if let Some(auth) = self.auth.as_ref().filter(|a| !a.is_empty()) {
            let (username, password) = decode_auth_field(auth)?;
            return Ok(Some(Credential::Basic { username, password }));
        }
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            return Ok(Some(Credential::Basic {
                username: u.clone(),
                password: p.clone(),
            }));
        }
        Ok(None)
    }
}

/// Where a helper is asked about a registry: Docker Hub under its historical URL, others by
/// host name, as `docker login` stores them.
fn helper_server_url(registry: &str) -> String {
    if registry == DOCKER_HUB {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    }
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Parses what `docker-credential-<helper> get` printed.
pub fn parse_helper_answer(out: &[u8]) -> Result<Credential, ImageError> {
    let a: HelperAnswer = serde_json::from_slice(out)
        .map_err(|e| config_error(format!("credential helper output is not JSON: {e}")))?;
    Ok(if a.username == "<token>" {
        Credential::IdentityToken { token: a.secret }
    } else {
        Credential::Basic {
            username: a.username,
            password: a.secret,
        }
    })
}

/// Runs `docker-credential-<helper> get` for `registry`. `Ok(None)` when the helper knows no
/// credentials for it.
pub fn run_credential_helper(
    helper: &str,
    registry: &str,
) -> Result<Option<Credential>, ImageError> {
    if helper.is_empty()
        || !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(config_error(format!(
            "invalid credential helper name {helper:?}"
        )));
    }
    let program = format!("docker-credential-{helper}");
    let helper_err = |message: String| ImageError::Auth {
        registry: registry.to_string(),
        message: format!("credential helper {program}: {message}"),
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            helper_err(format!(
                "cannot run it ({e}); install it or remove it from the docker config"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is handled by its exit status below.
        let _ = stdin.write_all(format!("{}\n", helper_server_url(registry)).as_bytes());
    }
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let read_capped = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(MAX_HELPER_OUTPUT).read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_thread = read_capped(stdout.map(|s| Box::new(s) as Box<dyn Read + Send>));
    let err_thread = read_capped(stderr.map(|s| Box::new(s) as Box<dyn Read + Send>));
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > HELPER_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(helper_err(format!("no answer within {HELPER_TIMEOUT:?}")));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(helper_err(e.to_string())),
        }
    };
    let out = out_thread.join().unwrap_or_default();
    let err = err_thread.join().unwrap_or_default();
    if !status.success() {
        let text = String::from_utf8_lossy(if out.is_empty() { &err } else { &out }).to_string();
        if text.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(helper_err(format!("failed ({status}): {}", text.trim())));
    }
    parse_helper_answer(&out).map(Some)
}

/// The docker config file to read: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn default_docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    dirs::home_dir().map(|h| h.join(".docker").join("config.json"))
}

/// Reads and parses a docker config; `Ok(None)` if the file does not exist.
pub fn load_docker_config(path: &Path) -> Result<Option<DockerConfig>, ImageError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ImageError::io(path.display().to_string(), e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ImageError::io(path.display().to_string(), e))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(config_error(format!(
            "{} is larger than 4 MiB",
            path.display()
        )));
    }
    parse_docker_config(&bytes).map(Some).map_err(|e| match e {
        ImageError::Malformed { message, .. } => ImageError::Malformed {
            what: format!("docker config {}", path.display()),
            message,
        },
        other => other,
    })
}

impl DockerConfig {
    /// Credentials for `registry` (normalised host) as Docker would pick them: a registry's
    /// `credHelpers` entry, else `credsStore`, each falling back to the `auths` entry.
    pub fn credential_for(
        &self,
        registry: &str,
        run_helper: &HelperRunner,
    ) -> Result<Credential, ImageError> {
        let registry = normalize_registry_host(registry);
        let specific = self.cred_helpers.get(&registry);
        if let Some(helper) = specific.or(self.creds_store.as_ref()) {
            match run_helper(helper, &registry) {
                Ok(Some(c)) => return Ok(c),
                Ok(None) => {}
                // A helper configured for this very registry that fails is an error, unless a
                // plain `auths` entry can stand in. The global `credsStore` failing (say, a
                // Docker Desktop config without Docker Desktop) must not block anonymous pulls
                // of public images: warn and go on.
                Err(e) if specific.is_some() && !self.auths.contains_key(&registry) => {
                    return Err(e);
                }
                Err(e) => tracing::warn!("{e}; continuing without it"),
            }
        }
        match self.auths.get(&registry) {
            Some(entry) => Ok(entry.credential()?.unwrap_or(Credential::Anonymous)),
            None => Ok(Credential::Anonymous),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn no_helper(_: &str, _: &str) -> Result<Option<Credential>, ImageError> {
        panic!("helper must not run")
    }

    #[test]
    fn parses_auths_with_normalised_keys() {
        let json = format!(
            r#"{{"auths":{{
                "https://index.docker.io/v1/":{{"auth":"{}"}},
                "127.0.0.1:5001":{{"auth":"{}"}},
                "http://reg.example:8080/v2/":{{"username":"u","password":"p"}},
                "acr.example.io":{{"auth":"","identitytoken":"refresh"}},
                "empty.example":{{}}
              }},"HttpHeaders":{{"X":"y"}},"detachKeys":"ctrl-q"}}"#,
            b64("hubuser:hub:pass"),
            b64("ciuser:cipass")
        );
        let cfg = parse_docker_config(json.as_bytes()).unwrap();
        assert_eq!(
            cfg.credential_for("docker.io", &no_helper).unwrap(),
            Credential::Basic {
                username: "hubuser".into(),
                password: "hub:pass".into()
            }
        );
        assert_eq!(
            cfg.credential_for("index.docker.io", &no_helper).unwrap(),
            cfg.credential_for("docker.io", &no_helper).unwrap()
        );
        assert_eq!(
            cfg.credential_for("127.0.0.1:5001", &no_helper).unwrap(),
            Credential::Basic {
                username: "ciuser".into(),
                password: "cipass".into()
            }
        );
        assert!(matches!(
            cfg.credential_for("reg.example:8080", &no_helper).unwrap(),
            Credential::Basic { .. }
        ));
        assert_eq!(
            cfg.credential_for("acr.example.io", &no_helper).unwrap(),
            Credential::IdentityToken {
                token: "refresh".into()
            }
        );
        assert_eq!(
            cfg.credential_for("empty.example", &no_helper).unwrap(),
            Credential::Anonymous
        );
        assert_eq!(
            cfg.credential_for("other.example", &no_helper).unwrap(),
            Credential::Anonymous
        );
    }

    #[test]
    fn helpers_take_precedence_and_fall_back() {
        let json = format!(
            r#"{{"credsStore":"desktop","credHelpers":{{"gcr.io":"gcloud"}},
                 "auths":{{"ghcr.io":{{"auth":"{}"}}}}}}"#,
            b64("file:user")
        );
        let cfg = parse_docker_config(json.as_bytes()).unwrap();
        let helper = |h: &str, r: &str| -> Result<Option<Credential>, ImageError> {
            match (h, r) {
                ("gcloud", "gcr.io") => Ok(Some(Credential::Basic {
                    username: "oauth2accesstoken".into(),
                    password: "tok".into(),
                })),
                ("desktop", "ghcr.io") => Ok(None),
                ("desktop", _) => Err(ImageError::Auth {
                    registry: r.into(),
                    message: "boom".into(),
                }),
                _ => panic!("unexpected helper {h} for {r}"),
            }
        };
        assert!(matches!(
            cfg.credential_for("gcr.io", &helper).unwrap(),
            Credential::Basic { ref username, .. } if username == "oauth2accesstoken"
        ));
        assert!(matches!(
            cfg.credential_for("ghcr.io", &helper).unwrap(),
            Credential::Basic { ref username, .. } if username == "file"
        ));
        // The global store failing falls back to anonymous; a registry-specific helper
        // failing is an error.
        assert_eq!(
            cfg.credential_for("quay.io", &helper).unwrap(),
            Credential::Anonymous
        );
        let failing = |_: &str, r: &str| -> Result<Option<Credential>, ImageError> {
            Err(ImageError::Auth {
                registry: r.into(),
                message: "boom".into(),
            })
        };
        assert!(cfg.credential_for("gcr.io", &failing).is_err());
    }

    #[test]
    fn rejects_malformed_configs() {
        for bad in [
            "",
            "[]",
            r#"{"auths":[]}"#,
            r#"{"auths":{"x":{"auth":5}}}"#,
            r#"{"credsStore":1}"#,
        ] {
            assert!(parse_docker_config(bad.as_bytes()).is_err(), "{bad}");
        }
        let cfg = parse_docker_config(br#"{"auths":{"x.io":{"auth":"!!!"}}}"#).unwrap();
        assert!(cfg.credential_for("x.io", &no_helper).is_err());
        let cfg = parse_docker_config(
            format!(r#"{{"auths":{{"x.io":{{"auth":"{}"}}}}}}"#, b64("nocolon")).as_bytes(),
        )
        .unwrap();
        assert!(cfg.credential_for("x.io", &no_helper).is_err());
    }

    #[test]
    fn helper_answers() {
        assert_eq!(
            parse_helper_answer(br#"{"ServerURL":"x","Username":"<token>","Secret":"rt"}"#)
                .unwrap(),
            Credential::IdentityToken { token: "rt".into() }
        );
        assert!(parse_helper_answer(b"not json").is_err());
        assert!(run_credential_helper("../evil", "x").is_err());
        let e = run_credential_helper("palisade-does-not-exist", "x.io").unwrap_err();
        assert!(e.to_string().contains("cannot run"), "{e}");
    }
}
