//! The ValidatingWebhookConfiguration that registers the webhook with an API server.

use super::FailurePolicy;
use crate::PolicySet;
use serde_json::{Value, json};

/// Label that opts a namespace out of the webhook (besides the exempt namespaces by name).
pub const IGNORE_LABEL: &str = "admission.palisade.io/ignore";

/// Where the API server reaches the webhook, and how it treats it.
#[derive(Debug, Clone)]
pub struct RegistrationOptions {
    /// Object name of the configuration (and, with `.palisade.io`, of its webhook).
    pub name: String,
    /// `clientConfig.url` (`https://host:port/validate`), or ...
    pub url: Option<String>,
    /// ... a Service (`namespace`, `name`, `port`) in front of the webhook.
    pub service: Option<(String, String, u16)>,
    /// CA bundle (PEM) the API server verifies the serving certificate with.
    pub ca_pem: Option<String>,
    pub failure_policy: FailurePolicy,
    /// 1-30; the API server's default is 10.
    pub timeout_seconds: u32,
    /// Namespaces never sent to the webhook (exact names; glob patterns are left to the
    /// webhook's own exemption and the ignore label).
    pub exempt_namespaces: Vec<String>,
    /// Only namespaces carrying all these labels are sent (empty: all).
    pub namespace_labels: Vec<(String, String)>,
    pub operations: Vec<String>,
}

impl Default for RegistrationOptions {
    fn default() -> Self {
        RegistrationOptions {
            name: "palisade".into(),
            url: None,
            service: None,
            ca_pem: None,
            failure_policy: FailurePolicy::Ignore,
            timeout_seconds: 3,
            exempt_namespaces: Vec::new(),
            namespace_labels: Vec::new(),
            operations: vec!["CREATE".into(), "UPDATE".into()],
        }
    }
}

/// The plural resource name for a kind, as Kubernetes guesses it (`Ingress` → `ingresses`,
/// `NetworkPolicy` → `networkpolicies`).
pub fn guess_resource(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower == "endpoints" {
        return lower;
    }
    if lower.ends_with('s') {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

/// Rules for the kinds the constraints match (every resource when some constraint matches any
/// kind), the failure policy, timeout and namespace selection asked for.
pub fn webhook_configuration(set: &PolicySet, options: &RegistrationOptions) -> Value {
    let rules: Vec<Value> = match set.matched_kinds() {
        None => vec![json!({
            "apiGroups": ["*"], "apiVersions": ["*"], "operations": options.operations,
            "resources": ["*"], "scope": "*"
        })],
        Some(kinds) => {
            // One rule per API group, its kinds' resources together.
            let mut by_group: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for (group, kind) in kinds {
                if kind == "*" {
                    by_group.entry(group).or_default().push("*".into());
                } else {
                    by_group
                        .entry(group)
                        .or_default()
                        .push(guess_resource(&kind));
                }
            }
            by_group
                .into_iter()
                .map(|(group, mut resources)| {
                    resources.sort();
                    resources.dedup();
                    json!({
                        "apiGroups": [group], "apiVersions": ["*"], "operations": options.operations,
                        "resources": resources, "scope": "*"
                    })
                })
                .collect()
        }
    };
    let mut expressions = vec![json!({"key": IGNORE_LABEL, "operator": "DoesNotExist"})];
    let exact: Vec<&String> = options
        .exempt_namespaces
        .iter()
        .filter(|n| !n.contains('*'))
        .collect();
    if !exact.is_empty() {
        expressions.push(json!({
            "key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": exact
        }));
    }
    let mut selector = json!({"matchExpressions": expressions});
    if !options.namespace_labels.is_empty() {
        let labels: serde_json::Map<String, Value> = options
            .namespace_labels
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        selector["matchLabels"] = Value::Object(labels);
    }
    let mut client = json!({});
    if let Some(url) = &options.url {
        client["url"] = json!(url);
    }
    if let Some((namespace, name, port)) = &options.service {
        client["service"] =
            json!({"namespace": namespace, "name": name, "port": port, "path": "/validate"});
    }
    if let Some(ca) = &options.ca_pem {
        use base64::Engine as _;
        client["caBundle"] = json!(base64::engine::general_purpose::STANDARD.encode(ca.as_bytes()));
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": options.name, "labels": {"app.kubernetes.io/name": "palisade"}},
        "webhooks": [{
            "name": format!("{}.palisade.io", options.name),
            "admissionReviewVersions": ["v1", "v1beta1"],
            "sideEffects": "None",
            "failurePolicy": match options.failure_policy {
                FailurePolicy::Ignore => "Ignore",
                FailurePolicy::Fail => "Fail",
            },
            "matchPolicy": "Equivalent",
            "timeoutSeconds": options.timeout_seconds.clamp(1, 30),
            "namespaceSelector": selector,
            "rules": rules,
            "clientConfig": client,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names() {
        assert_eq!(guess_resource("Pod"), "pods");
        assert_eq!(guess_resource("Ingress"), "ingresses");
        assert_eq!(guess_resource("NetworkPolicy"), "networkpolicies");
        assert_eq!(guess_resource("Gateway"), "gateways");
        assert_eq!(guess_resource("Endpoints"), "endpoints");
    }

    #[test]
    fn configuration_for_pod_constraints() {
        let yaml = super::super::sample_policies(6);
        let parsed = palisade_kube::parse_manifests(
            &yaml,
            "s.yaml",
            &palisade_kube::ManifestLimits::default(),
        );
        let (set, _) =
            PolicySet::compile(&parsed.objects, &[], &crate::PolicySettings::default()).unwrap();
        let config = webhook_configuration(
            &set,
            &RegistrationOptions {
                url: Some("https://127.0.0.1:8443/validate".into()),
                ca_pem: Some("PEM".into()),
                failure_policy: FailurePolicy::Fail,
                exempt_namespaces: vec!["kube-system".into(), "kube-*".into()],
                namespace_labels: vec![("team".into(), "a".into())],
                ..RegistrationOptions::default()
            },
        );
        let hook = &config["webhooks"][0];
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(
            hook["rules"],
            json!([{"apiGroups": [""], "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"], "resources": ["pods"], "scope": "*"}])
        );
        assert_eq!(hook["clientConfig"]["caBundle"], "UEVN");
        assert_eq!(hook["namespaceSelector"]["matchLabels"]["team"], "a");
        assert_eq!(
            hook["namespaceSelector"]["matchExpressions"][1]["values"],
            json!(["kube-system"])
        );
    }
}
