//! Kubelet settings, from a `KubeletConfiguration` (kubelet.config.k8s.io/v1beta1, as a file or
//! inside kubeadm's `kube-system/kubelet-config` ConfigMap) or from the kubelet's flags.
//!
//! The two sources have different defaults: an unset field of a v1beta1 configuration file
//! defaults to the safe value for anonymous authentication (off), authorization (Webhook),
//! webhook authentication (on) and the read-only port (0); the same settings left off the
//! command line default to the unsafe ones. A kubelet started with `--config` and no other flag
//! for a setting gets it from a file we do not see: such settings are not judged.

use super::{Problem, duration_secs, old_tls, weak_cipher};
use crate::check::{CheckInfo, Evidence, PostureFinding};
use crate::config::PostureConfig;
use crate::controlplane::{FlagSet, cp};
use palisade_core::Severity;
use palisade_kube::KubeObject;
use serde_json::{Value, json};

pub(crate) struct KubeletRule {
    pub info: CheckInfo,
    pub eval: fn(&Kubelet<'_>) -> Option<Problem>,
}

/// Where unset settings get their values from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Defaults {
    /// A v1beta1 configuration file.
    ConfigFile,
    /// Command-line flags without `--config`.
    Flags,
    /// Flags with `--config`: the file is elsewhere.
    Unknown,
}

/// One kubelet's settings.
pub(crate) struct Kubelet<'a> {
    config: Option<(&'a Value, &'a str)>,
    flags: Option<&'a FlagSet>,
    defaults: Defaults,
}

/// A setting as the kubelet would use it.
struct Setting {
    value: Value,
    evidence: Evidence,
    /// How to name it in a message (`readOnlyPort`, `--read-only-port`).
    name: String,
    /// `None`: set explicitly; `Some(default)`: unset and defaulted.
    defaulted: bool,
}

impl Setting {
    fn describe(&self) -> String {
        if self.defaulted {
            format!("{} is not set and defaults to {}", self.name, self.value)
        } else {
            format!("{} is {}", self.name, self.value)
        }
    }
}

fn flag_value(raw: Option<&str>) -> Value {
    match raw {
        None => Value::Bool(true),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => match v.parse::<i64>() {
                Ok(n) => json!(n),
                Err(_) => Value::String(v.to_string()),
            },
        },
    }
}

impl<'a> Kubelet<'a> {
    fn config_get(&self, path: &str) -> Option<&'a Value> {
        let (v, _) = self.config?;
        path.split('.')
            .try_fold(v, |v, k| v.as_object()?.get(k))
            .filter(|v| !v.is_null())
    }

    fn config_path(&self, path: &str) -> String {
        match self.config {
            Some((_, prefix)) if !prefix.is_empty() => format!("{prefix}.{path}"),
            _ => path.to_string(),
        }
    }

    /// A setting by its configuration path and flag name (flags win over the file), with the
    /// defaults of the file and of the flag.
    fn get(
        &self,
        path: &str,
        flag: &str,
        file_default: Value,
        flag_default: Value,
    ) -> Option<Setting> {
        if let Some(fs) = self.flags
            && let Some(f) = fs.last(flag)
        {
            return Some(Setting {
                value: flag_value(f.value.as_deref()),
                evidence: Evidence::new(f.path.clone(), f.text.clone()),
                name: format!("--{flag}"),
                defaulted: false,
            });
        }
        if let Some(v) = self.config_get(path) {
            return Some(Setting {
                value: v.clone(),
                evidence: Evidence::new(self.config_path(path), v.clone()),
                name: path.to_string(),
                defaulted: false,
            });
        }
        let (default, evidence, name) = match self.defaults {
            Defaults::ConfigFile => (
                file_default,
                Evidence::new(self.config_path(path), Value::Null),
                path.to_string(),
            ),
            Defaults::Flags => (
                flag_default,
                Evidence::new(self.flags?.missing_path(flag), Value::Null),
                format!("--{flag}"),
            ),
            Defaults::Unknown => return None,
        };
        Some(Setting {
            value: default,
            evidence,
            name,
            defaulted: true,
        })
    }

    fn feature_gate(&self, gate: &str) -> Option<(bool, Evidence)> {
        if let Some(fs) = self.flags
            && let Some((on, f)) = fs.feature_gate(gate)
        {
            return Some((on, Evidence::new(f.path.clone(), f.text.clone())));
        }
        let path = format!("featureGates.{gate}");
        let v = self.config_get(&path)?;
        Some((
            v.as_bool()?,
            Evidence::new(self.config_path(&path), v.clone()),
        ))
    }
}

fn when(s: Setting, bad: bool, why: &str) -> Option<Problem> {
    bad.then(|| Problem {
        message: format!("{}: {why}", s.describe()),
        evidence: vec![s.evidence],
    })
}

fn missing_file(k: &Kubelet<'_>, path: &str, flag: &str, why: &str) -> Option<Problem> {
    let s = k.get(path, flag, Value::Null, Value::Null)?;
    let empty = s.value.is_null() || s.value.as_str() == Some("");
    empty.then(|| Problem {
        message: format!("{} is not set: {why}", s.name),
        evidence: vec![s.evidence],
    })
}

pub(crate) const KUBELET_RULES: &[KubeletRule] = &[
    KubeletRule {
        info: cp(
            "kubelet.anonymous-auth",
            "Kubelet accepts anonymous requests",
            Severity::High,
            "Set authentication.anonymous.enabled: false in the kubelet configuration (or --anonymous-auth=false).",
            &["CIS 4.2.1 (v1.8)"],
        ),
        eval: |k| {
            let s = k.get(
                "authentication.anonymous.enabled",
                "anonymous-auth",
                json!(false),
                json!(true),
            )?;
            let bad = s.value == json!(true);
            when(
                s,
                bad,
                "anyone who reaches port 10250 is served as system:anonymous",
            )
        },
    },
    KubeletRule {
        info: cp(
            "kubelet.authorization-always-allow",
            "Kubelet authorizes every request",
            Severity::Critical,
            "Set authorization.mode: Webhook in the kubelet configuration (or --authorization-mode=Webhook) so the API server authorizes kubelet API calls.",
            &["CIS 4.2.2 (v1.8)"],
        ),
        eval: |k| {
            let s = k.get(
                "authorization.mode",
                "authorization-mode",
                json!("Webhook"),
                json!("AlwaysAllow"),
            )?;
            let bad = s.value == json!("AlwaysAllow");
            when(
                s,
                bad,
                "any caller of the kubelet API can exec into the node's pods",
            )
        },
    },
    KubeletRule {
        info: cp(
            "kubelet.authentication-webhook",
            "Kubelet does not authenticate bearer tokens",
            Severity::Medium,
            "Set authentication.webhook.enabled: true in the kubelet configuration (or --authentication-token-webhook) so service account and user tokens are checked with the API server.",
            &[],
        ),
        eval: |k| {
            let s = k.get(
                "authentication.webhook.enabled",
                "authentication-token-webhook",
                json!(true),
                json!(false),
            )?;
            let bad = s.value == json!(false);
            when(
                s,
                bad,
                "only client certificates authenticate kubelet API callers",
            )
        },
    },
    KubeletRule {
        info: cp(
            "kubelet.client-ca-file",
            "Kubelet has no client certificate authority",
            Severity::Medium,
            "Set authentication.x509.clientCAFile in the kubelet configuration (or --client-ca-file) to the cluster CA.",
            &["CIS 4.2.3 (v1.8)"],
        ),
        eval: |k| {
            missing_file(
                k,
                "authentication.x509.clientCAFile",
                "client-ca-file",
                "the kubelet cannot authenticate the API server's client certificate",
            )
        },
    },
    KubeletRule {
        info: cp(
            "kubelet.read-only-port",
            "Kubelet serves the unauthenticated read-only port",
            Severity::High,
            "Set readOnlyPort: 0 in the kubelet configuration (or --read-only-port=0).",
            &["CIS 4.2.4 (v1.8)"],
        ),
        eval: |k| {
            let s = k.get("readOnlyPort", "read-only-port", json!(0), json!(10255))?;
            let bad = s.value.as_i64().is_some_and(|p| p != 0);
            when(
                s,
                bad,
                "pod specs, environment variables included, are readable without authentication",
            )
        },
    },
    KubeletRule {
        info: cp(
            "kubelet.streaming-connection-idle-timeout",
            "Kubelet streaming connections never time out",
            Severity::Low,
            "Set streamingConnectionIdleTimeout to a non-zero duration such as 5m.",
            &["CIS 4.2.5 (v1.8)"],
        ),
        eval: |k| {
            let s = k.get(
                "streamingConnectionIdleTimeout",
                "streaming-connection-idle-timeout",
                json!("4h0m0s"),
                json!("4h0m0s"),
            )?;
            let bad = match &s.value {
                Value::String(d) => duration_secs(d) == Some(0.0),
                Value::Number(n) => n.as_f64() == Some(0.0),
                _ => false,
            };
            when(
                s,
                bad,
                "idle exec and port-forward sessions stay open forever",
            )
        },
    },
    KubeletRule {
        info: cp(
            "kubelet.protect-kernel-defaults",
            "Kubelet may change kernel settings",
            Severity::Low,
            "Set protectKernelDefaults: true (and tune the kernel parameters the kubelet expects on the node).",
            &[],
        ),
        eval: |k| {
            let s = k.get(
                "protectKernelDefaults",
                "protect-kernel-defaults",
                json!(false),
                json!(false),
            )?;
            let bad = s.value == json!(false);
            when(
                s,
                bad,
                "the kubelet overrides kernel tunables instead of failing on unexpected values",
            )
        },
    },
    KubeletRule {
        info: cp(
            "kubelet.make-iptables-util-chains",
            "Kubelet does not manage its iptables chains",
            Severity::Low,
            "Set makeIPTablesUtilChains: true (the default).",
            &["CIS 4.2.6 (v1.8)"],
        ),
        eval: |k| {
            let s = k.get(
                "makeIPTablesUtilChains",
                "make-iptables-util-chains",
                json!(true),
                json!(true),
            )?;
            let bad = s.value == json!(false);
            when(
                s,
                bad,
                "iptables rules the kubelet relies on can drift from what it expects",
            )
        },
    },
    KubeletRule {
        info: cp(
            "kubelet.hostname-override",
            "Kubelet overrides its hostname",
            Severity::Low,
            "Remove --hostname-override so the node name matches the hostname its serving certificate is issued for.",
            &["CIS 4.2.7 (v1.8)"],
        ),
        eval: |k| {
            let f = k.flags?.last("hostname-override")?;
            Some(Problem {
                message: "--hostname-override is set: TLS between the API server and the kubelet may not verify the node".to_string(),
                evidence: vec![Evidence::new(f.path.clone(), f.text.clone())],
            })
        },
    },
    KubeletRule {
        info: cp(
            "kubelet.event-qps",
            "Kubelet event rate limit drops events",
            Severity::Low,
            "Set eventRecordQPS to 0 (no limit) or to a level that keeps the node's events, such as the default 50.",
            &["CIS 4.2.8 (v1.8)"],
        ),
        eval: |k| {
            let s = k.get("eventRecordQPS", "event-qps", json!(50), json!(50))?;
            let bad = s.value.as_f64().is_some_and(|q| q > 0.0 && q < 5.0);
            when(
                s,
                bad,
                "events needed to investigate incidents are dropped under load",
            )
        },
    },
    KubeletRule {
        info: cp(
            "kubelet.tls-cert",
            "Kubelet serves a self-signed certificate",
            Severity::Medium,
            "Set tlsCertFile and tlsPrivateKeyFile, or serverTLSBootstrap: true to have the serving certificate issued by the cluster.",
            &["CIS 4.2.9 (v1.8)"],
        ),
        eval: |k| {
            let bootstrap = k.get(
                "serverTLSBootstrap",
                "rotate-server-certificates",
                json!(false),
                json!(false),
            );
            if bootstrap.is_some_and(|b| b.value == json!(true)) {
                return None;
            }
            let cert = missing_file(k, "tlsCertFile", "tls-cert-file", "");
            let key = missing_file(k, "tlsPrivateKeyFile", "tls-private-key-file", "");
            let evidence: Vec<Evidence> = cert
                .into_iter()
                .chain(key)
                .flat_map(|p| p.evidence)
                .collect();
            if evidence.is_empty() {
                return None;
            }
            Some(Problem {
                message: "no serving certificate is configured (tlsCertFile/tlsPrivateKeyFile) and serverTLSBootstrap is off: the kubelet generates a self-signed certificate nobody can verify".to_string(),
                evidence,
            })
        },
    },
    KubeletRule {
        info: cp(
            "kubelet.rotate-certificates",
            "Kubelet client certificates are not rotated",
            Severity::Medium,
            "Set rotateCertificates: true so the kubelet renews its client certificate before it expires.",
            &["CIS 4.2.10 (v1.8)"],
        ),
        eval: |k| {
            let s = k.get(
                "rotateCertificates",
                "rotate-certificates",
                json!(false),
                json!(false),
            )?;
            let bad = s.value == json!(false);
            when(
                s,
                bad,
                "long-lived client credentials stay valid if stolen, and the node drops out when they expire",
            )
        },
    },
    KubeletRule {
        info: cp(
            "kubelet.rotate-server-certificate",
            "Kubelet serving certificates are not rotated",
            Severity::Medium,
            "Remove RotateKubeletServerCertificate: false from featureGates.",
            &["CIS 4.2.11 (v1.8)"],
        ),
        eval: |k| {
            let (on, ev) = k.feature_gate("RotateKubeletServerCertificate")?;
            (!on).then(|| Problem {
                message: "feature gate RotateKubeletServerCertificate is false: the serving certificate is never renewed".to_string(),
                evidence: vec![ev],
            })
        },
    },
    KubeletRule {
        info: cp(
            "kubelet.tls-cipher-suites",
            "Kubelet allows weak TLS cipher suites",
            Severity::Medium,
            "Limit tlsCipherSuites to AEAD suites with forward secrecy (TLS_ECDHE_*_WITH_AES_*_GCM_*, *_CHACHA20_POLY1305*).",
            &["CIS 4.2.12 (v1.8)"],
        ),
        eval: |k| {
            let s = k.get(
                "tlsCipherSuites",
                "tls-cipher-suites",
                Value::Null,
                Value::Null,
            )?;
            let suites: Vec<String> = match &s.value {
                Value::Array(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                Value::String(v) => v.split(',').map(|x| x.trim().to_string()).collect(),
                _ => Vec::new(),
            };
            let weak: Vec<&str> = suites
                .iter()
                .map(String::as_str)
                .filter(|c| weak_cipher(c))
                .collect();
            (!weak.is_empty()).then(|| Problem {
                message: format!("{} allows weak suites: {}", s.name, weak.join(", ")),
                evidence: vec![s.evidence],
            })
        },
    },
    KubeletRule {
        info: cp(
            "kubelet.tls-min-version",
            "Kubelet accepts TLS 1.0 or 1.1",
            Severity::Medium,
            "Set tlsMinVersion: VersionTLS12 or higher.",
            &[],
        ),
        eval: |k| {
            let s = k.get("tlsMinVersion", "tls-min-version", Value::Null, Value::Null)?;
            let bad = s.value.as_str().is_some_and(old_tls);
            when(s, bad, "TLS 1.0 and 1.1 are deprecated and weak")
        },
    },
    KubeletRule {
        info: cp(
            "kubelet.pod-pids-limit",
            "Pods have no process-count limit",
            Severity::Low,
            "Set podPidsLimit (or --pod-max-pids) to a bound such as 4096.",
            &["CIS 4.2.13 (v1.8)"],
        ),
        eval: |k| {
            let s = k.get("podPidsLimit", "pod-max-pids", json!(-1), json!(-1))?;
            let bad = s.value.as_i64().is_some_and(|n| n <= 0);
            when(
                s,
                bad,
                "a fork bomb in one pod can exhaust the node's process table",
            )
        },
    },
];

fn run(
    k: &Kubelet<'_>,
    o: &KubeObject,
    cluster: Option<&str>,
    container: Option<&str>,
    config: &PostureConfig,
) -> Vec<PostureFinding> {
    KUBELET_RULES
        .iter()
        .filter(|r| config.is_enabled(r.info.id))
        .filter_map(|r| {
            let p = (r.eval)(k)?;
            Some(r.info.finding(
                o,
                cluster,
                container,
                format!("kubelet ({} {}): {}", o.kind, o.name, p.message),
                p.evidence,
            ))
        })
        .collect()
}

/// Checks a kubelet started by a container with these flags.
pub(crate) fn check_flags(
    o: &KubeObject,
    cluster: Option<&str>,
    container: Option<&str>,
    fs: &FlagSet,
    config: &PostureConfig,
) -> Vec<PostureFinding> {
    let k = Kubelet {
        config: None,
        flags: Some(fs),
        defaults: if fs.is_set("config") {
            Defaults::Unknown
        } else {
            Defaults::Flags
        },
    };
    run(&k, o, cluster, container, config)
}

/// Checks a `KubeletConfiguration` object, or kubeadm's `kubelet-config` ConfigMap (data key
/// `kubelet`); other objects yield nothing.
pub(crate) fn check_object(
    o: &KubeObject,
    cluster: Option<&str>,
    config: &PostureConfig,
) -> Vec<PostureFinding> {
    if o.kind == "KubeletConfiguration" && o.group() == "kubelet.config.k8s.io" {
        let k = Kubelet {
            config: Some((&o.value, "")),
            flags: None,
            defaults: Defaults::ConfigFile,
        };
        return run(&k, o, cluster, None, config);
    }
    if o.kind == "ConfigMap"
        && o.api_version == "v1"
        && (o.name == "kubelet-config" || o.name.starts_with("kubelet-config-"))
        && let Some(text) = o.get("data.kubelet").and_then(Value::as_str)
        && let Ok(value) = yaml_serde::from_str::<Value>(text)
        && value.get("kind").and_then(Value::as_str) == Some("KubeletConfiguration")
    {
        let k = Kubelet {
            config: Some((&value, "data.kubelet")),
            flags: None,
            defaults: Defaults::ConfigFile,
        };
        return run(&k, o, cluster, None, config);
    }
    Vec::new()
}
