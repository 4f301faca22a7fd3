//! Command lines of control-plane binaries as they appear in (static) pod specs, and the
//! components they start.

use crate::pod::{Container, PodTemplate};
use serde_json::Value;

/// A control-plane or node component Palisade knows the settings of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    ApiServer,
    ControllerManager,
    Scheduler,
    Etcd,
    Kubelet,
}

impl Component {
    /// The binary (and the `component` label kubeadm gives its static pods).
    pub fn binary(self) -> &'static str {
        match self {
            Component::ApiServer => "kube-apiserver",
            Component::ControllerManager => "kube-controller-manager",
            Component::Scheduler => "kube-scheduler",
            Component::Etcd => "etcd",
            Component::Kubelet => "kubelet",
        }
    }

    fn from_binary(name: &str) -> Option<Component> {
        // hyperkube spells them with and without the `kube-` prefix.
        Some(match name {
            "kube-apiserver" | "apiserver" => Component::ApiServer,
            "kube-controller-manager" | "controller-manager" => Component::ControllerManager,
            "kube-scheduler" | "scheduler" => Component::Scheduler,
            "etcd" => Component::Etcd,
            "kubelet" => Component::Kubelet,
            _ => return None,
        })
    }
}

/// One `--name[=value]` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    /// `None` for a bare boolean flag (`--profiling`).
    pub value: Option<String>,
    /// Where it is written: `spec.containers[0].command[4]`.
    pub path: String,
    /// The argument as written (`--profiling=false`, or `--audit-log-path /var/log/a.log`).
    pub text: String,
}

/// The flags of one component's command line, in order (repeated flags kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagSet {
    pub component: Component,
    pub flags: Vec<Flag>,
    /// Path of the list holding the flags (`spec.containers[0].command`), for evidence on flags
    /// that are not there.
    pub list_path: String,
}

/// Flags whose value is optional (`--x` alone means true): a following word is not their value.
const BOOLEAN_FLAGS: &[&str] = &[
    "anonymous-auth",
    "profiling",
    "service-account-lookup",
    "use-service-account-credentials",
    "client-cert-auth",
    "peer-client-cert-auth",
    "auto-tls",
    "peer-auto-tls",
    "kubelet-https",
    "authentication-token-webhook",
    "protect-kernel-defaults",
    "make-iptables-util-chains",
    "rotate-certificates",
    "rotate-server-certificates",
    "allow-privileged",
    "enable-pprof",
    "enable-debugging-handlers",
    "contention-profiling",
    "enable-v2",
    "leader-elect",
];

impl FlagSet {
    /// Parses the words after the binary. Words not starting with `-` that no flag consumes are
    /// positional and ignored.
    pub fn parse(component: Component, words: &[(String, String)], list_path: String) -> FlagSet {
        let mut flags = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let (word, path) = (&words[i].0, &words[i].1);
            i += 1;
            let Some(body) = word.strip_prefix("--").or_else(|| word.strip_prefix('-')) else {
                continue;
            };
            if body.is_empty() {
                continue;
            }
            let (name, value, text) = match body.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string()), word.clone()),
                None if BOOLEAN_FLAGS.contains(&body) => (body.to_string(), None, word.clone()),
                None => match words.get(i) {
                    Some((next, _)) if !next.starts_with('-') => {
                        i += 1;
                        (
                            body.to_string(),
                            Some(next.clone()),
                            format!("{word} {next}"),
                        )
                    }
                    _ => (body.to_string(), None, word.clone()),
                },
            };
            flags.push(Flag {
                name,
                value,
                path: path.clone(),
                text,
            });
        }
        FlagSet {
            component,
            flags,
            list_path,
        }
    }

    /// The last occurrence of a flag (the one that wins).
    pub fn last(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().rev().find(|f| f.name == name)
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.last(name).is_some()
    }

    /// The value of a flag (`Some("")` never: a bare flag has no value).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.last(name)?.value.as_deref()
    }

    /// A boolean flag: bare means true; `None` when absent or not a boolean.
    pub fn bool(&self, name: &str) -> Option<bool> {
        let f = self.last(name)?;
        match f.value.as_deref() {
            None => Some(true),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "t" => Some(true),
                "false" | "0" | "f" => Some(false),
                _ => None,
            },
        }
    }

    /// Comma-separated values of every occurrence, in order (list flags accumulate).
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.flags
            .iter()
            .filter(|f| f.name == name)
            .filter_map(|f| f.value.as_deref())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// `--feature-gates=A=true,B=false`: the value of one gate.
    pub fn feature_gate(&self, gate: &str) -> Option<(bool, &Flag)> {
        let f = self
            .flags
            .iter()
            .rev()
            .filter(|f| f.name == "feature-gates")
            .find(|f| {
                f.value.as_deref().is_some_and(|v| {
                    v.split(',')
                        .any(|kv| kv.trim().split_once('=').is_some_and(|(k, _)| k == gate))
                })
            })?;
        let v = f.value.as_deref()?;
        let raw = v
            .split(',')
            .rev()
            .find_map(|kv| kv.trim().split_once('=').filter(|(k, _)| *k == gate))?
            .1;
        Some((raw.eq_ignore_ascii_case("true"), f))
    }

    /// Path to cite for a flag that is not set.
    pub fn missing_path(&self, name: &str) -> String {
        format!("{}[--{name}]", self.list_path)
    }
}

fn words_of(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// The component a container starts and its flags: from `command` + `args`, following
/// `hyperkube <component>` and `sh -c "<component> ..."`; or, when the command is left to the
/// image, from the pod's `component` label (kubeadm) naming the container.
pub fn component_flags(t: &PodTemplate<'_>, c: &Container<'_>) -> Option<FlagSet> {
    let command = words_of(c.spec.get("command"));
    let args = words_of(c.spec.get("args"));
    let cmd_path = t.container_path(c, "command");
    let args_path = t.container_path(c, "args");
    let mut words: Vec<(String, String)> = command
        .iter()
        .enumerate()
        .map(|(i, w)| (w.clone(), format!("{cmd_path}[{i}]")))
        .chain(
            args.iter()
                .enumerate()
                .map(|(i, w)| (w.clone(), format!("{args_path}[{i}]"))),
        )
        .collect();
    // `sh -c "exec kube-apiserver --a=b ..."`: split the script into words.
    if let Some((first, _)) = words.first()
        && matches!(basename(first), "sh" | "bash" | "ash" | "dash")
        && let Some(pos) = words.iter().position(|(w, _)| w == "-c")
        && let Some((script, path)) = words.get(pos + 1).cloned()
    {
        words = script
            .split_whitespace()
            .filter(|w| !matches!(*w, "exec" | "&&" | ";"))
            .map(|w| {
                (
                    w.trim_matches(|c| c == '"' || c == '\'').to_string(),
                    path.clone(),
                )
            })
            .collect();
    }
    let list_path = if command.is_empty() {
        args_path.clone()
    } else {
        cmd_path.clone()
    };
    // Find the binary among the first words (after hyperkube or an init wrapper).
    for (i, (w, _)) in words.iter().enumerate().take(3) {
        if w.starts_with('-') {
            break;
        }
        if let Some(component) = Component::from_binary(basename(w)) {
            return Some(with_env(
                FlagSet::parse(component, &words[i + 1..], list_path),
                t,
                c,
            ));
        }
    }
    // Flags only (image entrypoint is the binary): rely on the kubeadm label.
    let label = t
        .labels()
        .find(|(k, _)| *k == "component" || *k == "k8s-app")
        .map(|(_, v)| v)?;
    let component = Component::from_binary(label)?;
    if c.name != label && t.containers().count() > 1 {
        return None;
    }
    let start = words.iter().position(|(w, _)| w.starts_with('-'))?;
    Some(with_env(
        FlagSet::parse(component, &words[start..], list_path),
        t,
        c,
    ))
}

/// etcd also reads every flag from an `ETCD_<FLAG>` environment variable; flags win.
fn with_env(mut fs: FlagSet, t: &PodTemplate<'_>, c: &Container<'_>) -> FlagSet {
    if fs.component != Component::Etcd {
        return fs;
    }
    let env: Vec<Flag> = c
        .spec
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, e)| {
            let name = e.get("name")?.as_str()?.strip_prefix("ETCD_")?;
            let value = e.get("value")?.as_str()?;
            let flag = name.to_ascii_lowercase().replace('_', "-");
            Some(Flag {
                text: format!("{}={value}", e.get("name")?.as_str()?),
                name: flag,
                value: Some(value.to_string()),
                path: t.container_path(c, &format!("env[{i}].value")),
            })
        })
        .collect();
    if !env.is_empty() {
        let mut flags = env;
        flags.append(&mut fs.flags);
        fs.flags = flags;
    }
    fs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(words: &[&str]) -> Vec<(String, String)> {
        words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.to_string(), format!("c[{i}]")))
            .collect()
    }

    #[test]
    fn flag_forms() {
        let fs = FlagSet::parse(
            Component::ApiServer,
            &ws(&[
                "--profiling",
                "--audit-log-path",
                "/var/log/audit.log",
                "--anonymous-auth=false",
                "--enable-admission-plugins=NodeRestriction",
                "--enable-admission-plugins",
                "EventRateLimit,AlwaysPullImages",
                "-v=2",
                "--feature-gates=A=true,RotateKubeletServerCertificate=false",
                "positional",
            ]),
            "c".into(),
        );
        assert_eq!(fs.bool("profiling"), Some(true));
        assert_eq!(fs.value("audit-log-path"), Some("/var/log/audit.log"));
        assert_eq!(fs.last("audit-log-path").unwrap().path, "c[1]");
        assert_eq!(
            fs.last("audit-log-path").unwrap().text,
            "--audit-log-path /var/log/audit.log"
        );
        assert_eq!(fs.bool("anonymous-auth"), Some(false));
        assert_eq!(
            fs.list("enable-admission-plugins"),
            vec!["NodeRestriction", "EventRateLimit", "AlwaysPullImages"]
        );
        assert_eq!(fs.value("v"), Some("2"));
        assert_eq!(
            fs.feature_gate("RotateKubeletServerCertificate")
                .map(|(v, _)| v),
            Some(false)
        );
        assert_eq!(fs.feature_gate("A").map(|(v, _)| v), Some(true));
        assert!(fs.feature_gate("B").is_none());
        assert!(!fs.is_set("positional"));
        assert_eq!(fs.missing_path("x"), "c[--x]");
    }
}
