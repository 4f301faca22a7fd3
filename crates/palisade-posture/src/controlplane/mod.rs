//! Control-plane configuration: kube-apiserver, kube-controller-manager, kube-scheduler, etcd
//! and kubelet settings, read from the command lines of (static) pods — kubeadm's
//! `/etc/kubernetes/manifests/*.yaml`, or the kube-system mirror pods of a live cluster — and
//! from kubelet configuration (`KubeletConfiguration` objects, kubeadm's `kubelet-config`
//! ConfigMap, kubelet flags).
//!
//! Controls cite the CIS Kubernetes Benchmark v1.8. A setting left unset counts with Kubernetes'
//! default for it: when that default is the unsafe value, the finding's evidence is `null` and
//! the message names the default.

mod flags;
mod kubelet;
#[cfg(test)]
mod tests;

pub use flags::{Component, Flag, FlagSet, component_flags};

use crate::check::{Category, CheckInfo, Evidence, PostureFinding};
use crate::config::PostureConfig;
use crate::pod::PodTemplate;
use palisade_core::Severity;
use palisade_kube::Inventory;
use serde_json::Value;

/// What a check found wrong on one component.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    pub message: String,
    pub evidence: Vec<Evidence>,
}

type FlagEval = fn(&FlagSet) -> Option<Problem>;

/// A check on the flags of one component.
pub(crate) struct FlagRule {
    pub info: CheckInfo,
    pub component: Component,
    pub eval: FlagEval,
}

pub(crate) const fn cp(
    id: &'static str,
    title: &'static str,
    severity: Severity,
    remediation: &'static str,
    controls: &'static [&'static str],
) -> CheckInfo {
    CheckInfo::without_parameters(
        id,
        title,
        severity,
        Category::ControlPlane,
        remediation,
        controls,
    )
}

fn present(f: &Flag) -> Evidence {
    Evidence::new(f.path.clone(), f.text.clone())
}

fn absent(fs: &FlagSet, name: &str) -> Evidence {
    Evidence::new(fs.missing_path(name), Value::Null)
}

fn problem(message: String, evidence: Vec<Evidence>) -> Option<Problem> {
    Some(Problem { message, evidence })
}

/// A boolean flag whose effective value (set or default) is `bad`.
fn bool_is(fs: &FlagSet, name: &str, default: bool, bad: bool, why: &str) -> Option<Problem> {
    match fs.last(name) {
        Some(f) => (fs.bool(name) == Some(bad)).then(|| Problem {
            message: format!("--{name} is {bad}: {why}"),
            evidence: vec![present(f)],
        }),
        None if default == bad => problem(
            format!("--{name} is not set and defaults to {default}: {why}"),
            vec![absent(fs, name)],
        ),
        None => None,
    }
}

/// Flags that must all be set.
fn must_set(fs: &FlagSet, names: &[&str], why: &str) -> Option<Problem> {
    let missing: Vec<&str> = names.iter().copied().filter(|n| !fs.is_set(n)).collect();
    if missing.is_empty() {
        return None;
    }
    let list: Vec<String> = missing.iter().map(|n| format!("--{n}")).collect();
    problem(
        format!("{} not set: {why}", list.join(" and ")),
        missing.iter().map(|n| absent(fs, n)).collect(),
    )
}

fn must_not_set(fs: &FlagSet, name: &str, why: &str) -> Option<Problem> {
    let f = fs.last(name)?;
    problem(format!("--{name} is set: {why}"), vec![present(f)])
}

/// An admission plugin that must run. `default_on`: enabled unless listed in
/// --disable-admission-plugins.
fn require_plugin(fs: &FlagSet, plugin: &str, default_on: bool, why: &str) -> Option<Problem> {
    if fs.list("disable-admission-plugins").contains(&plugin) {
        let f = fs.last("disable-admission-plugins")?;
        return problem(
            format!("admission plugin {plugin} is disabled: {why}"),
            vec![present(f)],
        );
    }
    if default_on || fs.list("enable-admission-plugins").contains(&plugin) {
        return None;
    }
    let evidence = match fs.last("enable-admission-plugins") {
        Some(f) => present(f),
        None => absent(fs, "enable-admission-plugins"),
    };
    problem(
        format!("admission plugin {plugin} is not enabled (it is off by default): {why}"),
        vec![evidence],
    )
}

fn forbid_plugin(fs: &FlagSet, plugin: &str, why: &str) -> Option<Problem> {
    if !fs.list("enable-admission-plugins").contains(&plugin) {
        return None;
    }
    let f = fs.last("enable-admission-plugins")?;
    problem(
        format!("admission plugin {plugin} is enabled: {why}"),
        vec![present(f)],
    )
}

/// An integer flag below `min` (unset: `default`).
fn at_least(fs: &FlagSet, name: &str, min: i64, default: i64, why: &str) -> Option<Problem> {
    match fs.last(name) {
        Some(f) => {
            let v: i64 = f.value.as_deref()?.trim().parse().ok()?;
            (v < min).then(|| Problem {
                message: format!("--{name} is {v}, below {min}: {why}"),
                evidence: vec![present(f)],
            })
        }
        None if default < min => problem(
            format!("--{name} is not set and defaults to {default}, below {min}: {why}"),
            vec![absent(fs, name)],
        ),
        None => None,
    }
}

/// `--bind-address` must be loopback (unset: 0.0.0.0, every interface).
fn loopback_bind(fs: &FlagSet) -> Option<Problem> {
    let why = "the health, metrics and debug endpoints are reachable from the network";
    match fs.last("bind-address") {
        Some(f) => {
            let v = f.value.as_deref().unwrap_or("");
            (v != "127.0.0.1" && v != "::1" && v != "localhost").then(|| Problem {
                message: format!("--bind-address is {v}: {why}"),
                evidence: vec![present(f)],
            })
        }
        None => problem(
            format!("--bind-address is not set and defaults to 0.0.0.0: {why}"),
            vec![absent(fs, "bind-address")],
        ),
    }
}

/// Cipher suites Go's crypto/tls lists as insecure (RC4, 3DES, CBC with SHA-256) or that are
/// not TLS suites at all.
pub(crate) fn weak_cipher(name: &str) -> bool {
    name.contains("RC4")
        || name.contains("3DES")
        || name.contains("_CBC_SHA256")
        || name.contains("NULL")
        || name.contains("EXPORT")
}

fn weak_ciphers(fs: &FlagSet) -> Option<Problem> {
    let weak: Vec<&str> = fs
        .list("tls-cipher-suites")
        .into_iter()
        .filter(|c| weak_cipher(c))
        .collect();
    if weak.is_empty() {
        return None;
    }
    let f = fs.last("tls-cipher-suites")?;
    problem(
        format!(
            "--tls-cipher-suites allows weak suites: {}",
            weak.join(", ")
        ),
        vec![present(f)],
    )
}

pub(crate) fn old_tls(v: &str) -> bool {
    matches!(v, "VersionTLS10" | "VersionTLS11")
}

fn tls_min_version(fs: &FlagSet) -> Option<Problem> {
    let f = fs.last("tls-min-version")?;
    let v = f.value.as_deref()?;
    old_tls(v).then(|| Problem {
        message: format!("--tls-min-version is {v}: TLS 1.0 and 1.1 are deprecated and weak"),
        evidence: vec![present(f)],
    })
}

/// Go duration (`90s`, `5m`, `1h30m`, `0`) in seconds.
pub(crate) fn duration_secs(v: &str) -> Option<f64> {
    let v = v.trim();
    if v == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    let mut num = String::new();
    let mut chars = v.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push('s');
            chars.next();
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        any = true;
    }
    (any && num.is_empty()).then_some(total)
}

/// Authorization modes of kube-apiserver, `None` when a structured authorization config file
/// replaces them.
fn authz_modes(fs: &FlagSet) -> Option<(Vec<&str>, Evidence)> {
    if fs.is_set("authorization-config") {
        return None;
    }
    match fs.last("authorization-mode") {
        Some(f) => Some((fs.list("authorization-mode"), present(f))),
        None => Some((vec!["AlwaysAllow"], absent(fs, "authorization-mode"))),
    }
}

fn mode_missing(fs: &FlagSet, mode: &str, why: &str) -> Option<Problem> {
    let (modes, ev) = authz_modes(fs)?;
    if modes.contains(&mode) {
        return None;
    }
    let note = if ev.value.is_null() {
        " (not set: defaults to AlwaysAllow)"
    } else {
        ""
    };
    problem(
        format!("--authorization-mode does not include {mode}{note}: {why}"),
        vec![ev],
    )
}

fn audit_rotation(fs: &FlagSet, name: &str, min: i64, why: &str) -> Option<Problem> {
    // Only meaningful when audit logs go to a file.
    match fs.value("audit-log-path") {
        Some(p) if p != "-" => at_least(fs, name, min, 0, why),
        _ => None,
    }
}

pub(crate) const FLAG_RULES: &[FlagRule] = &[
    // ---- kube-apiserver ----
    FlagRule {
        info: cp(
            "apiserver.anonymous-auth",
            "API server accepts anonymous requests",
            Severity::Medium,
            "Start kube-apiserver with --anonymous-auth=false (keep it only where load balancers need unauthenticated health checks, and then give system:anonymous no permissions).",
            &["CIS 1.2.1 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            bool_is(
                fs,
                "anonymous-auth",
                true,
                true,
                "requests without credentials are served as system:anonymous",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.token-auth-file",
            "API server authenticates with a static token file",
            Severity::High,
            "Remove --token-auth-file: static tokens live in clear text on the node and cannot be revoked without a restart. Use client certificates, OIDC or webhook token authentication.",
            &["CIS 1.2.2 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| must_not_set(fs, "token-auth-file", "static bearer tokens are accepted"),
    },
    FlagRule {
        info: cp(
            "apiserver.deny-service-external-ips",
            "DenyServiceExternalIPs admission plugin is not enabled",
            Severity::Low,
            "Add DenyServiceExternalIPs to --enable-admission-plugins unless Services need spec.externalIPs (CVE-2020-8554 lets their authors intercept traffic to any IP).",
            &["CIS 1.2.3 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            require_plugin(
                fs,
                "DenyServiceExternalIPs",
                false,
                "any Service author can claim external IPs and intercept their traffic",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.kubelet-client-certificate",
            "API server has no client certificate for kubelets",
            Severity::High,
            "Set --kubelet-client-certificate and --kubelet-client-key so kubelets can authenticate the API server and authorize its requests.",
            &["CIS 1.2.4 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            must_set(
                fs,
                &["kubelet-client-certificate", "kubelet-client-key"],
                "the API server calls kubelets without authenticating",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.kubelet-certificate-authority",
            "API server does not verify kubelet serving certificates",
            Severity::Medium,
            "Set --kubelet-certificate-authority to the CA that signs kubelet serving certificates.",
            &["CIS 1.2.5 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            must_set(
                fs,
                &["kubelet-certificate-authority"],
                "connections to kubelets (exec, logs, port-forward) can be intercepted",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.kubelet-https",
            "API server talks to kubelets over plain HTTP",
            Severity::High,
            "Remove --kubelet-https=false (the flag is gone from current releases, which always use HTTPS).",
            &[],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            bool_is(
                fs,
                "kubelet-https",
                true,
                false,
                "exec, logs and port-forward traffic to kubelets is unencrypted",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.authorization-always-allow",
            "API server authorizes every request",
            Severity::Critical,
            "Set --authorization-mode=Node,RBAC (never AlwaysAllow).",
            &["CIS 1.2.6 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            let (modes, ev) = authz_modes(fs)?;
            if !modes.contains(&"AlwaysAllow") {
                return None;
            }
            let msg = if ev.value.is_null() {
                "--authorization-mode is not set and defaults to AlwaysAllow: every authenticated request is allowed"
            } else {
                "--authorization-mode includes AlwaysAllow: every authenticated request is allowed"
            };
            problem(msg.to_string(), vec![ev])
        },
    },
    FlagRule {
        info: cp(
            "apiserver.authorization-node",
            "API server does not use the Node authorizer",
            Severity::Medium,
            "Include Node in --authorization-mode (--authorization-mode=Node,RBAC) so each kubelet can only read the objects of its own pods.",
            &["CIS 1.2.7 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            mode_missing(
                fs,
                "Node",
                "kubelets are not limited to their own node's objects",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.authorization-rbac",
            "API server does not use RBAC",
            Severity::High,
            "Include RBAC in --authorization-mode (--authorization-mode=Node,RBAC).",
            &["CIS 1.2.8 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| mode_missing(fs, "RBAC", "Roles and bindings are not enforced"),
    },
    FlagRule {
        info: cp(
            "apiserver.admission-event-rate-limit",
            "EventRateLimit admission plugin is not enabled",
            Severity::Low,
            "Add EventRateLimit to --enable-admission-plugins and configure its limits in the file named by --admission-control-config-file.",
            &["CIS 1.2.9 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            require_plugin(
                fs,
                "EventRateLimit",
                false,
                "a client can flood the API server and etcd with events",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.admission-always-admit",
            "AlwaysAdmit admission plugin is enabled",
            Severity::High,
            "Remove AlwaysAdmit from --enable-admission-plugins.",
            &["CIS 1.2.10 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| forbid_plugin(fs, "AlwaysAdmit", "admission control is bypassed"),
    },
    FlagRule {
        info: cp(
            "apiserver.admission-always-pull-images",
            "AlwaysPullImages admission plugin is not enabled",
            Severity::Low,
            "Add AlwaysPullImages to --enable-admission-plugins so a pod can only use a private image cached on its node if its pull secret grants access to it.",
            &["CIS 1.2.11 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            require_plugin(
                fs,
                "AlwaysPullImages",
                false,
                "pods can run private images already pulled to their node without credentials",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.admission-service-account",
            "ServiceAccount admission plugin is disabled",
            Severity::Medium,
            "Remove ServiceAccount from --disable-admission-plugins.",
            &["CIS 1.2.13 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            require_plugin(
                fs,
                "ServiceAccount",
                true,
                "pods are not bound to existing service accounts and their tokens",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.admission-namespace-lifecycle",
            "NamespaceLifecycle admission plugin is disabled",
            Severity::Medium,
            "Remove NamespaceLifecycle from --disable-admission-plugins.",
            &["CIS 1.2.14 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            require_plugin(
                fs,
                "NamespaceLifecycle",
                true,
                "objects can be created in namespaces being deleted or that do not exist",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.admission-node-restriction",
            "NodeRestriction admission plugin is not enabled",
            Severity::Medium,
            "Add NodeRestriction to --enable-admission-plugins so a kubelet can only modify its own Node and the pods bound to it.",
            &["CIS 1.2.15 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            require_plugin(
                fs,
                "NodeRestriction",
                false,
                "a compromised kubelet can modify other nodes and their pods",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.profiling",
            "API server exposes profiling endpoints",
            Severity::Low,
            "Start kube-apiserver with --profiling=false.",
            &["CIS 1.2.16 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            bool_is(
                fs,
                "profiling",
                true,
                true,
                "/debug/pprof reveals internals and can be used to load the server",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.audit-log-path",
            "API server does not write an audit log",
            Severity::Medium,
            "Set --audit-log-path (and --audit-policy-file) so requests to the API are recorded.",
            &["CIS 1.2.17 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            if fs.is_set("audit-log-path") || fs.is_set("audit-webhook-config-file") {
                return None;
            }
            must_set(fs, &["audit-log-path"], "API requests are not audited")
        },
    },
    FlagRule {
        info: cp(
            "apiserver.audit-log-maxage",
            "Audit logs are kept fewer than 30 days",
            Severity::Low,
            "Set --audit-log-maxage=30 or more.",
            &["CIS 1.2.18 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            audit_rotation(
                fs,
                "audit-log-maxage",
                30,
                "audit history is too short for investigations",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.audit-log-maxbackup",
            "Fewer than 10 rotated audit log files are kept",
            Severity::Low,
            "Set --audit-log-maxbackup=10 or more.",
            &["CIS 1.2.19 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            audit_rotation(
                fs,
                "audit-log-maxbackup",
                10,
                "rotated audit logs are discarded early",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.audit-log-maxsize",
            "Audit log files rotate below 100 MB",
            Severity::Low,
            "Set --audit-log-maxsize=100 or more (megabytes).",
            &["CIS 1.2.20 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            audit_rotation(
                fs,
                "audit-log-maxsize",
                100,
                "audit logs are not rotated at a useful size",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.audit-policy",
            "API server has no audit policy",
            Severity::Medium,
            "Set --audit-policy-file to a policy that records at least metadata for every request and request bodies for Secrets, RBAC and pod exec.",
            &["CIS 3.2.1 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            must_set(
                fs,
                &["audit-policy-file"],
                "without a policy the API server records no audit events",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.request-timeout",
            "API server request timeout is unusually long",
            Severity::Low,
            "Leave --request-timeout at its default (60s) or set it to at most a few minutes.",
            &["CIS 1.2.21 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            let f = fs.last("request-timeout")?;
            let secs = duration_secs(f.value.as_deref()?)?;
            (secs > 300.0 || secs <= 0.0).then(|| Problem {
                message: format!(
                    "--request-timeout is {}: long-running non-watch requests tie up the server",
                    f.value.as_deref().unwrap_or("")
                ),
                evidence: vec![present(f)],
            })
        },
    },
    FlagRule {
        info: cp(
            "apiserver.service-account-lookup",
            "API server accepts tokens of deleted service accounts",
            Severity::Medium,
            "Remove --service-account-lookup=false (the default, true, checks that a token's service account still exists).",
            &["CIS 1.2.22 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            bool_is(
                fs,
                "service-account-lookup",
                true,
                false,
                "tokens stay valid after their service account is deleted",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.service-account-key-file",
            "API server has no service account verification key",
            Severity::Medium,
            "Set --service-account-key-file to the public key(s) matching the controller-manager's --service-account-private-key-file, so keys can be rotated.",
            &["CIS 1.2.23 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            must_set(
                fs,
                &["service-account-key-file"],
                "service account tokens are verified with the TLS serving key",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.etcd-client-certificate",
            "API server has no client certificate for etcd",
            Severity::High,
            "Set --etcd-certfile and --etcd-keyfile, and require client certificates on etcd.",
            &["CIS 1.2.24 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            must_set(
                fs,
                &["etcd-certfile", "etcd-keyfile"],
                "etcd cannot authenticate the API server",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.tls-cert",
            "API server has no TLS certificate configured",
            Severity::Medium,
            "Set --tls-cert-file and --tls-private-key-file to a certificate signed by the cluster CA.",
            &["CIS 1.2.25 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            must_set(
                fs,
                &["tls-cert-file", "tls-private-key-file"],
                "the API server serves a self-signed certificate clients cannot verify",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.client-ca-file",
            "API server has no client certificate authority",
            Severity::Medium,
            "Set --client-ca-file so clients and kubelets can authenticate with certificates.",
            &["CIS 1.2.26 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            must_set(
                fs,
                &["client-ca-file"],
                "client certificate authentication is disabled",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.etcd-cafile",
            "API server does not verify etcd's certificate",
            Severity::Medium,
            "Set --etcd-cafile to the CA of etcd's serving certificates.",
            &["CIS 1.2.27 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            must_set(
                fs,
                &["etcd-cafile"],
                "the connection to etcd can be intercepted",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.encryption-at-rest",
            "Secrets are not encrypted at rest",
            Severity::Medium,
            "Set --encryption-provider-config to an EncryptionConfiguration using kms (v2), aescbc, aesgcm or secretbox for secrets.",
            &["CIS 1.2.28 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            must_set(
                fs,
                &["encryption-provider-config"],
                "Secrets are stored in etcd in clear text",
            )
        },
    },
    FlagRule {
        info: cp(
            "apiserver.tls-cipher-suites",
            "API server allows weak TLS cipher suites",
            Severity::Medium,
            "Limit --tls-cipher-suites to AEAD suites with forward secrecy (TLS_ECDHE_*_WITH_AES_*_GCM_*, *_CHACHA20_POLY1305*).",
            &["CIS 1.2.30 (v1.8)"],
        ),
        component: Component::ApiServer,
        eval: weak_ciphers,
    },
    FlagRule {
        info: cp(
            "apiserver.tls-min-version",
            "API server accepts TLS 1.0 or 1.1",
            Severity::Medium,
            "Set --tls-min-version=VersionTLS12 or higher.",
            &[],
        ),
        component: Component::ApiServer,
        eval: tls_min_version,
    },
    FlagRule {
        info: cp(
            "apiserver.insecure-port",
            "API server serves an unauthenticated insecure port",
            Severity::Critical,
            "Set --insecure-port=0 and remove --insecure-bind-address (releases since 1.24 have no insecure port).",
            &[],
        ),
        component: Component::ApiServer,
        eval: |fs| {
            let mut evidence = Vec::new();
            if let Some(f) = fs.last("insecure-port")
                && f.value.as_deref().is_some_and(|v| v.trim() != "0")
            {
                evidence.push(present(f));
            }
            if let Some(f) = fs.last("insecure-bind-address")
                && f.value
                    .as_deref()
                    .is_some_and(|v| v != "127.0.0.1" && v != "localhost")
            {
                evidence.push(present(f));
            }
            if evidence.is_empty() {
                return None;
            }
            problem(
                "the insecure port is enabled: it serves the API without authentication or authorization".to_string(),
                evidence,
            )
        },
    },
    // ---- kube-controller-manager ----
    FlagRule {
        info: cp(
            "controller-manager.profiling",
            "Controller manager exposes profiling endpoints",
            Severity::Low,
            "Start kube-controller-manager with --profiling=false.",
            &["CIS 1.3.2 (v1.8)"],
        ),
        component: Component::ControllerManager,
        eval: |fs| bool_is(fs, "profiling", true, true, "/debug/pprof is served"),
    },
    FlagRule {
        info: cp(
            "controller-manager.use-service-account-credentials",
            "Controllers share the controller manager's credentials",
            Severity::Medium,
            "Start kube-controller-manager with --use-service-account-credentials=true so each controller runs with its own, least-privilege service account.",
            &["CIS 1.3.3 (v1.8)"],
        ),
        component: Component::ControllerManager,
        eval: |fs| {
            bool_is(
                fs,
                "use-service-account-credentials",
                false,
                false,
                "every controller acts with the union of all controllers' permissions",
            )
        },
    },
    FlagRule {
        info: cp(
            "controller-manager.service-account-private-key-file",
            "Controller manager has no service account signing key",
            Severity::Medium,
            "Set --service-account-private-key-file to the key whose public half the API server verifies with.",
            &["CIS 1.3.4 (v1.8)"],
        ),
        component: Component::ControllerManager,
        eval: |fs| {
            must_set(
                fs,
                &["service-account-private-key-file"],
                "service account tokens cannot be signed with a dedicated, rotatable key",
            )
        },
    },
    FlagRule {
        info: cp(
            "controller-manager.root-ca-file",
            "Controller manager does not publish the cluster CA to pods",
            Severity::Medium,
            "Set --root-ca-file to the cluster CA bundle so pods can verify the API server's certificate.",
            &["CIS 1.3.5 (v1.8)"],
        ),
        component: Component::ControllerManager,
        eval: |fs| {
            must_set(
                fs,
                &["root-ca-file"],
                "pods cannot verify the API server and are exposed to interception",
            )
        },
    },
    FlagRule {
        info: cp(
            "controller-manager.rotate-kubelet-server-certificate",
            "Kubelet serving certificates are not rotated",
            Severity::Medium,
            "Remove RotateKubeletServerCertificate=false from --feature-gates.",
            &["CIS 1.3.6 (v1.8)"],
        ),
        component: Component::ControllerManager,
        eval: |fs| {
            let (on, f) = fs.feature_gate("RotateKubeletServerCertificate")?;
            (!on).then(|| Problem {
                message: "feature gate RotateKubeletServerCertificate is false: kubelet serving certificates are not renewed".to_string(),
                evidence: vec![present(f)],
            })
        },
    },
    FlagRule {
        info: cp(
            "controller-manager.bind-address",
            "Controller manager listens on every interface",
            Severity::Low,
            "Start kube-controller-manager with --bind-address=127.0.0.1.",
            &["CIS 1.3.7 (v1.8)"],
        ),
        component: Component::ControllerManager,
        eval: loopback_bind,
    },
    // ---- kube-scheduler ----
    FlagRule {
        info: cp(
            "scheduler.profiling",
            "Scheduler exposes profiling endpoints",
            Severity::Low,
            "Start kube-scheduler with --profiling=false.",
            &["CIS 1.4.1 (v1.8)"],
        ),
        component: Component::Scheduler,
        eval: |fs| bool_is(fs, "profiling", true, true, "/debug/pprof is served"),
    },
    FlagRule {
        info: cp(
            "scheduler.bind-address",
            "Scheduler listens on every interface",
            Severity::Low,
            "Start kube-scheduler with --bind-address=127.0.0.1.",
            &["CIS 1.4.2 (v1.8)"],
        ),
        component: Component::Scheduler,
        eval: loopback_bind,
    },
    // ---- etcd ----
    FlagRule {
        info: cp(
            "etcd.tls",
            "etcd serves clients without TLS",
            Severity::High,
            "Set --cert-file and --key-file on etcd and serve --listen-client-urls over https.",
            &["CIS 2.1 (v1.8)"],
        ),
        component: Component::Etcd,
        eval: |fs| {
            must_set(
                fs,
                &["cert-file", "key-file"],
                "the cluster's data, Secrets included, travels in clear text",
            )
        },
    },
    FlagRule {
        info: cp(
            "etcd.client-cert-auth",
            "etcd does not require client certificates",
            Severity::High,
            "Start etcd with --client-cert-auth=true and a --trusted-ca-file.",
            &["CIS 2.2 (v1.8)"],
        ),
        component: Component::Etcd,
        eval: |fs| {
            bool_is(
                fs,
                "client-cert-auth",
                false,
                false,
                "anyone who reaches etcd reads and writes the cluster state",
            )
        },
    },
    FlagRule {
        info: cp(
            "etcd.auto-tls",
            "etcd uses self-signed client certificates",
            Severity::Medium,
            "Remove --auto-tls=true and configure certificates signed by the etcd CA.",
            &["CIS 2.3 (v1.8)"],
        ),
        component: Component::Etcd,
        eval: |fs| {
            bool_is(
                fs,
                "auto-tls",
                false,
                true,
                "clients cannot verify etcd's identity",
            )
        },
    },
    FlagRule {
        info: cp(
            "etcd.peer-tls",
            "etcd peers talk without TLS",
            Severity::High,
            "Set --peer-cert-file and --peer-key-file on every etcd member.",
            &["CIS 2.4 (v1.8)"],
        ),
        component: Component::Etcd,
        eval: |fs| {
            must_set(
                fs,
                &["peer-cert-file", "peer-key-file"],
                "replication traffic between members is unencrypted",
            )
        },
    },
    FlagRule {
        info: cp(
            "etcd.peer-client-cert-auth",
            "etcd does not authenticate its peers",
            Severity::High,
            "Start etcd with --peer-client-cert-auth=true and a --peer-trusted-ca-file.",
            &["CIS 2.5 (v1.8)"],
        ),
        component: Component::Etcd,
        eval: |fs| {
            bool_is(
                fs,
                "peer-client-cert-auth",
                false,
                false,
                "any host that reaches the peer port can join the cluster",
            )
        },
    },
    FlagRule {
        info: cp(
            "etcd.peer-auto-tls",
            "etcd peers use self-signed certificates",
            Severity::Medium,
            "Remove --peer-auto-tls=true and configure peer certificates signed by the etcd CA.",
            &["CIS 2.6 (v1.8)"],
        ),
        component: Component::Etcd,
        eval: |fs| {
            bool_is(
                fs,
                "peer-auto-tls",
                false,
                true,
                "peers cannot verify each other",
            )
        },
    },
];

const N_FLAG: usize = FLAG_RULES.len();
const N_KUBELET: usize = kubelet::KUBELET_RULES.len();

/// The checks of this module.
pub const CHECKS: &[CheckInfo] = &{
    let mut out = [FLAG_RULES[0].info; N_FLAG + N_KUBELET];
    let mut i = 0;
    while i < N_FLAG {
        out[i] = FLAG_RULES[i].info;
        i += 1;
    }
    let mut j = 0;
    while j < N_KUBELET {
        out[N_FLAG + j] = kubelet::KUBELET_RULES[j].info;
        j += 1;
    }
    out
};

/// Whether a pod is a copy of a controller's template (checked through the controller). Mirror
/// pods of static pods are owned by their Node and checked themselves.
fn owned_by_workload(t: &PodTemplate<'_>) -> bool {
    t.object.kind == "Pod"
        && t.object
            .metadata()
            .and_then(|m| m.get("ownerReferences"))
            .and_then(Value::as_array)
            .is_some_and(|refs| {
                refs.iter().any(|r| {
                    r.get("controller").and_then(Value::as_bool) == Some(true)
                        && r.get("kind").and_then(Value::as_str) != Some("Node")
                })
            })
}

/// Runs the control-plane checks.
pub fn check(inventory: &Inventory, config: &PostureConfig) -> Vec<PostureFinding> {
    let cluster = inventory.cluster.as_deref();
    let mut findings = Vec::new();
    for o in &inventory.objects {
        if let Some(t) = PodTemplate::of(o) {
            if owned_by_workload(&t) {
                continue;
            }
            for c in t.containers() {
                let Some(fs) = component_flags(&t, &c) else {
                    continue;
                };
                if fs.component == Component::Kubelet {
                    findings.extend(kubelet::check_flags(o, cluster, Some(c.name), &fs, config));
                    continue;
                }
                for rule in FLAG_RULES.iter().filter(|r| r.component == fs.component) {
                    if !config.is_enabled(rule.info.id) {
                        continue;
                    }
                    if let Some(p) = (rule.eval)(&fs) {
                        findings.push(rule.info.finding(
                            o,
                            cluster,
                            Some(c.name),
                            format!("{} ({}): {}", fs.component.binary(), o.name, p.message),
                            p.evidence,
                        ));
                    }
                }
            }
        } else {
            findings.extend(kubelet::check_object(o, cluster, config));
        }
    }
    findings
}
