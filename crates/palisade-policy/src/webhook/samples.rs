//! A representative policy set and request mix for benchmarks (`cargo bench`, `palisade bench
//! admission`): six templates of the kinds clusters run (privileged containers, host
//! namespaces, allowed registries, required labels, resource limits, non-root), instantiated
//! into as many constraints as asked with varying parameters and enforcement actions.

use serde_json::{Value, json};

const TEMPLATES: &str = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: benchprivileged}
spec:
  crd: {spec: {names: {kind: BenchPrivileged}, validation: {openAPIV3Schema: {type: object, properties: {exemptImages: {type: array, items: {type: string}}}}}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package benchprivileged
      violation[{"msg": msg}] {
        c := input_containers[_]
        c.securityContext.privileged
        not exempt(c.image)
        msg := sprintf("privileged container %v", [c.name])
      }
      input_containers[c] { c := input.review.object.spec.containers[_] }
      input_containers[c] { c := input.review.object.spec.initContainers[_] }
      exempt(image) { startswith(image, input.parameters.exemptImages[_]) }
---
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: benchhostnamespace}
spec:
  crd: {spec: {names: {kind: BenchHostNamespace}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package benchhostnamespace
      violation[{"msg": msg}] {
        field := ["hostPID", "hostIPC", "hostNetwork"][_]
        input.review.object.spec[field]
        msg := sprintf("%v is not allowed", [field])
      }
---
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: benchallowedrepos}
spec:
  crd: {spec: {names: {kind: BenchAllowedRepos}, validation: {openAPIV3Schema: {type: object, properties: {repos: {type: array, items: {type: string}}}}}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package benchallowedrepos
      violation[{"msg": msg}] {
        c := input.review.object.spec.containers[_]
        not any_prefix(c.image)
        msg := sprintf("image %v is not from an allowed registry %v", [c.image, input.parameters.repos])
      }
      any_prefix(image) { startswith(image, input.parameters.repos[_]) }
---
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: benchrequiredlabels}
spec:
  crd: {spec: {names: {kind: BenchRequiredLabels}, validation: {openAPIV3Schema: {type: object, properties: {labels: {type: array, items: {type: object, properties: {key: {type: string}, allowedRegex: {type: string}}}}}}}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package benchrequiredlabels
      violation[{"msg": msg}] {
        provided := {k | input.review.object.metadata.labels[k]}
        required := {l.key | l := input.parameters.labels[_]}
        missing := required - provided
        count(missing) > 0
        msg := sprintf("missing labels %v", [missing])
      }
      violation[{"msg": msg}] {
        l := input.parameters.labels[_]
        value := input.review.object.metadata.labels[l.key]
        l.allowedRegex != ""
        not regex.match(l.allowedRegex, value)
        msg := sprintf("label %v=%v does not match %v", [l.key, value, l.allowedRegex])
      }
---
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: benchlimits}
spec:
  crd: {spec: {names: {kind: BenchLimits}, validation: {openAPIV3Schema: {type: object, properties: {resources: {type: array, items: {type: string}}}}}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package benchlimits
      violation[{"msg": msg}] {
        c := input.review.object.spec.containers[_]
        r := input.parameters.resources[_]
        not c.resources.limits[r]
        msg := sprintf("container %v has no %v limit", [c.name, r])
      }
---
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: benchrunasnonroot}
spec:
  crd: {spec: {names: {kind: BenchRunAsNonRoot}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package benchrunasnonroot
      violation[{"msg": msg}] {
        c := input.review.object.spec.containers[_]
        not nonroot(c)
        msg := sprintf("container %v may run as root", [c.name])
      }
      nonroot(c) { c.securityContext.runAsNonRoot }
      nonroot(c) {
        not c.securityContext.runAsNonRoot == false
        input.review.object.spec.securityContext.runAsNonRoot
      }
"#;

/// Templates plus `constraints` constraints (YAML, one document each) cycling over them.
pub fn sample_policies(constraints: usize) -> String {
    let mut out = String::from(TEMPLATES);
    let kinds = [
        "BenchPrivileged",
        "BenchHostNamespace",
        "BenchAllowedRepos",
        "BenchRequiredLabels",
        "BenchLimits",
        "BenchRunAsNonRoot",
    ];
    for i in 0..constraints {
        let kind = kinds[i % kinds.len()];
        // Mostly deny, some warn and dryrun, as clusters roll constraints out.
        let action = match i % 5 {
            3 => "warn",
            4 => "dryrun",
            _ => "deny",
        };
        let parameters = match kind {
            "BenchPrivileged" => {
                json!({"exemptImages": [format!("registry.example.com/system-{i}/")]})
            }
            "BenchAllowedRepos" => {
                json!({"repos": ["registry.example.com/", format!("mirror-{i}.example.com/")]})
            }
            "BenchRequiredLabels" => {
                json!({"labels": [{"key": "app", "allowedRegex": "^[a-z0-9-]+$"}, {"key": format!("label-{}", i % 3)}]})
            }
            "BenchLimits" => {
                json!({"resources": if i.is_multiple_of(2) { json!(["memory"]) } else { json!(["cpu", "memory"]) }})
            }
            _ => json!({}),
        };
        let constraint = json!({
            "apiVersion": "constraints.gatekeeper.sh/v1beta1",
            "kind": kind,
            "metadata": {"name": format!("{}-{i}", kind.to_ascii_lowercase())},
            "spec": {
                "enforcementAction": action,
                "match": {
                    "kinds": [{"apiGroups": [""], "kinds": ["Pod"]}],
                    "excludedNamespaces": ["kube-system", format!("exempt-{i}")]
                },
                "parameters": parameters
            }
        });
        out.push_str("\n---\n");
        // JSON is YAML.
        out.push_str(&constraint.to_string());
        out.push('\n');
    }
    out
}

/// The `i`th request of the benchmark mix: a pod create AdmissionReview (v1), compliant or
/// with one to three kinds of violation, in a handful of namespaces.
pub fn sample_review(i: usize) -> Value {
    let compliant = i.is_multiple_of(2);
    let name = format!("bench-{i}");
    let mut labels = json!({"app": "web", "label-0": "x", "label-1": "y", "label-2": "z"});
    let mut container = json!({
        "name": "app",
        "image": "registry.example.com/shop/web:2.3.1",
        "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false},
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}
    });
    let mut spec = json!({});
    if !compliant {
        match i % 6 {
            1 => container["securityContext"]["privileged"] = json!(true),
            3 => {
                container["image"] = json!("docker.io/library/nginx:latest");
                labels = json!({"app": "Web_Frontend"});
            }
            _ => {
                spec["hostNetwork"] = json!(true);
                container["resources"] = json!({});
            }
        }
    }
    spec["containers"] = json!([container, {
        "name": "sidecar",
        "image": "registry.example.com/shop/proxy:1.0",
        "securityContext": {"runAsNonRoot": true},
        "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}
    }]);
    let namespace = format!("team-{}", i % 7);
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
                     "annotations": {"example.com/build": format!("{i}")}},
        "spec": spec
    });
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("00000000-0000-4000-8000-{i:012}"),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:ci:deployer", "groups": ["system:serviceaccounts"]},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::parse_admission_review;
    use crate::{EnforcementAction, EnforcementPoint, PolicySet, PolicySettings};
    use palisade_kube::{ManifestLimits, parse_manifests};

    #[test]
    fn sample_set_compiles_and_requests_violate_as_designed() {
        let parsed = parse_manifests(
            &sample_policies(50),
            "samples.yaml",
            &ManifestLimits::default(),
        );
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let (set, warnings) =
            PolicySet::compile(&parsed.objects, &[], &PolicySettings::default()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(set.constraints().len(), 50);
        assert_eq!(set.templates().count(), 6);
        let mut evaluator = set.evaluator();
        let mut review = |i: usize| {
            let body = serde_json::to_vec(&sample_review(i)).unwrap();
            let request = parse_admission_review(&body).unwrap().request;
            evaluator
                .review(&request, EnforcementPoint::Webhook)
                .unwrap()
        };
        assert!(review(0).is_empty(), "{:?}", review(0));
        let privileged = review(1);
        assert!(privileged.iter().any(
            |v| v.message == "privileged container app" && v.action == EnforcementAction::Deny
        ));
        let repos = review(3);
        assert!(
            repos
                .iter()
                .any(|v| v.message.contains("not from an allowed registry"))
        );
        assert!(repos.iter().any(|v| v.message.contains("does not match")));
        let host = review(5);
        assert!(
            host.iter()
                .any(|v| v.message == "hostNetwork is not allowed")
        );
        assert!(
            host.iter()
                .any(|v| v.message.contains("has no memory limit"))
        );
        assert!(host.iter().any(|v| v.action == EnforcementAction::Dryrun));
    }
}
