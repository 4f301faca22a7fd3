//! The engine end to end: templates and constraints from YAML, reviews of objects and of
//! AdmissionRequests, Gatekeeper's semantics for matching, enforcement actions, inventory,
//! external data and errors.

use palisade_kube::{KubeObject, ManifestLimits, parse_manifests};
use palisade_policy::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

fn objects(yaml: &str) -> Vec<KubeObject> {
    let parsed = parse_manifests(yaml, "policy.yaml", &ManifestLimits::default());
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed.objects
}

const LABELS_TEMPLATE: &str = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: demolabels
  annotations: {palisade.io/check-id: demo.labels, palisade.io/severity: low}
spec:
  crd:
    spec:
      names: {kind: DemoLabels}
      validation:
        openAPIV3Schema:
          type: object
          properties:
            required: {type: array, items: {type: string}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    libs:
    - |
      package lib.demo
      label_names(obj) = {name | obj.metadata.labels[name]}
    rego: |
      package demolabels
      import data.lib.demo.label_names
      violation[{"msg": msg, "details": {"missing": missing}}] {
        provided := label_names(input.review.object)
        required := {l | l := input.parameters.required[_]}
        missing := required - provided
        count(missing) > 0
        msg := sprintf("%v %v is missing labels %v", [input.review.kind.kind, input.review.object.metadata.name, missing])
      }
"#;

fn pod(name: &str, ns: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "labels": labels},
           "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

fn set_of(yaml: &str) -> PolicySet {
    let (set, warnings) =
        PolicySet::compile(&objects(yaml), &[], &PolicySettings::default()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    set
}

#[test]
fn template_with_lib_finds_violations_with_details_and_annotations() {
    let set = set_of(&format!(
        "{LABELS_TEMPLATE}\n---\napiVersion: constraints.gatekeeper.sh/v1beta1\nkind: DemoLabels\nmetadata: {{name: need-owner}}\nspec:\n  match: {{kinds: [{{apiGroups: [''], kinds: [Pod]}}]}}\n  parameters: {{required: [owner, team]}}\n"
    ));
    let mut ev = set.evaluator();
    let bad = ReviewRequest::from_object(pod("p", "a", json!({"team": "x"}))).unwrap();
    let v = ev.review(&bad, EnforcementPoint::Gator).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].constraint_name, "need-owner");
    assert_eq!(v[0].template, "demolabels");
    assert!(
        v[0].message.contains("Pod p is missing labels"),
        "{}",
        v[0].message
    );
    assert_eq!(v[0].details["missing"], json!(["owner"]));
    assert_eq!(v[0].action, EnforcementAction::Deny);
    assert_eq!(v[0].check_id.as_deref(), Some("demo.labels"));
    assert_eq!(v[0].severity, Some(palisade_core::Severity::Low));
    let good =
        ReviewRequest::from_object(pod("p", "a", json!({"team": "x", "owner": "y"}))).unwrap();
    assert!(
        ev.review(&good, EnforcementPoint::Gator)
            .unwrap()
            .is_empty()
    );
    // Not matched: a Deployment.
    let deploy = ReviewRequest::from_object(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "a"}})).unwrap();
    assert!(
        ev.review(&deploy, EnforcementPoint::Gator)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn enforcement_actions_exemptions_and_configs() {
    let yaml = format!(
        "{LABELS_TEMPLATE}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: DemoLabels
metadata: {{name: warn-owner}}
spec:
  enforcementAction: warn
  parameters: {{required: [owner]}}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: DemoLabels
metadata: {{name: scoped-team}}
spec:
  enforcementAction: scoped
  scopedEnforcementActions:
  - action: dryrun
    enforcementPoints: [{{name: validation.gatekeeper.sh}}]
  parameters: {{required: [team]}}
---
apiVersion: config.gatekeeper.sh/v1alpha1
kind: Config
metadata: {{name: config, namespace: gatekeeper-system}}
spec:
  match:
  - excludedNamespaces: [kube-*]
    processes: [webhook]
"
    );
    let set = set_of(&yaml);
    let mut ev = set.evaluator();
    let r = ReviewRequest::from_object(pod("p", "apps", json!({}))).unwrap();
    let mut v = ev.review(&r, EnforcementPoint::Webhook).unwrap();
    v.sort_by(|a, b| a.constraint_name.cmp(&b.constraint_name));
    assert_eq!(
        v.iter()
            .map(|x| (x.constraint_name.as_str(), x.action))
            .collect::<Vec<_>>(),
        vec![
            ("scoped-team", EnforcementAction::Dryrun),
            ("warn-owner", EnforcementAction::Warn)
        ]
    );
    // The scoped constraint is not enforced at audit.
    assert_eq!(ev.review(&r, EnforcementPoint::Audit).unwrap().len(), 1);
    // Config exempts kube-* from the webhook only.
    let sys = ReviewRequest::from_object(pod("p", "kube-system", json!({}))).unwrap();
    assert!(
        ev.review(&sys, EnforcementPoint::Webhook)
            .unwrap()
            .is_empty()
    );
    assert_eq!(ev.review(&sys, EnforcementPoint::Audit).unwrap().len(), 1);
}

#[test]
fn parameters_are_checked_against_the_schema() {
    let yaml = format!(
        "{LABELS_TEMPLATE}\n---\napiVersion: constraints.gatekeeper.sh/v1beta1\nkind: DemoLabels\nmetadata: {{name: bad}}\nspec:\n  parameters: {{required: owner}}\n"
    );
    let errors = PolicySet::compile(&objects(&yaml), &[], &PolicySettings::default()).unwrap_err();
    let text = errors[0].to_string();
    assert!(
        text.contains("DemoLabels bad: parameters do not match ConstraintTemplate demolabels's schema: spec.parameters.required: must be an array"),
        "{text}"
    );
    assert!(text.starts_with("policy.yaml:"), "{text}");
    let yaml = format!(
        "{LABELS_TEMPLATE}\n---\napiVersion: constraints.gatekeeper.sh/v1beta1\nkind: DemoLabels\nmetadata: {{name: typo}}\nspec:\n  parameters: {{required: [a], requierd: [b]}}\n"
    );
    let (_, warnings) =
        PolicySet::compile(&objects(&yaml), &[], &PolicySettings::default()).unwrap();
    assert!(
        warnings[0]
            .message
            .contains("spec.parameters.requierd: unknown field"),
        "{warnings:?}"
    );
    let unknown =
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: Nope\nmetadata: {name: x}\n";
    let errors =
        PolicySet::compile(&objects(unknown), &[], &PolicySettings::default()).unwrap_err();
    assert!(
        errors[0]
            .to_string()
            .contains("no ConstraintTemplate defines kind Nope")
    );
}

#[test]
fn compile_errors_name_template_and_line() {
    let yaml = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: broken}
spec:
  crd: {spec: {names: {kind: Broken}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package broken
      violation[{"msg": msg}] {
        msg := input.review.object.metadata.name +
      }
"#;
    let errors = PolicySet::compile(&objects(yaml), &[], &PolicySettings::default()).unwrap_err();
    let text = errors[0].to_string();
    assert!(
        text.contains("ConstraintTemplate broken: Rego does not compile"),
        "{text}"
    );
    assert!(text.contains("broken/template.rego:2:25"), "{text}");
    let no_violation = yaml
        .replace("violation[{\"msg\": msg}]", "deny[msg]")
        .replace(" +\n", "\n");
    let errors =
        PolicySet::compile(&objects(&no_violation), &[], &PolicySettings::default()).unwrap_err();
    assert!(
        errors[0].to_string().contains("no `violation` rule"),
        "{}",
        errors[0]
    );
}

#[test]
fn deprecated_builtins_and_v1_rego() {
    let yaml = r#"
apiVersion: templates.gatekeeper.sh/v1beta1
kind: ConstraintTemplate
metadata: {name: legacyrepos}
spec:
  crd: {spec: {names: {kind: LegacyRepos}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package legacyrepos
      violation[{"msg": msg}] {
        container := input.review.object.spec.containers[_]
        ok := [good | repo = input.parameters.repos[_]; good = startswith(container.image, repo)]
        not any(ok)
        re_match("^[a-z]+$", container.name)
        msg := sprintf("container <%v> image <%v> not allowed", [container.name, container.image])
      }
---
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: modernrepos}
spec:
  crd: {spec: {names: {kind: ModernRepos}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    code:
    - engine: Rego
      source:
        version: v1
        rego: |
          package modernrepos
          violation contains {"msg": msg} if {
            some container in input.review.object.spec.containers
            not startswith(container.image, "registry.local/")
            msg := sprintf("image %v", [container.image])
          }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: LegacyRepos
metadata: {name: legacy}
spec: {parameters: {repos: [registry.local/]}}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: ModernRepos
metadata: {name: modern}
"#;
    let set = set_of(yaml);
    let mut ev = set.evaluator();
    let r = ReviewRequest::from_object(pod("p", "a", json!({}))).unwrap();
    let v = ev.review(&r, EnforcementPoint::Gator).unwrap();
    let mut names: Vec<_> = v.iter().map(|x| x.constraint_name.as_str()).collect();
    names.sort();
    assert_eq!(names, vec!["legacy", "modern"]);
}

#[test]
fn inventory_and_namespace_selector() {
    let yaml = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: uniquehost}
spec:
  crd: {spec: {names: {kind: UniqueHost}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package uniquehost
      violation[{"msg": msg}] {
        host := input.review.object.spec.rules[_].host
        other := data.inventory.namespace[ns][gv]["Ingress"][name]
        other.spec.rules[_].host == host
        not same(other)
        msg := sprintf("host %v is already used by %v/%v", [host, ns, name])
      }
      same(other) {
        other.metadata.namespace == input.review.object.metadata.namespace
        other.metadata.name == input.review.object.metadata.name
      }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: UniqueHost
metadata: {name: unique}
spec:
  match:
    kinds: [{apiGroups: [networking.k8s.io], kinds: [Ingress]}]
    namespaceSelector: {matchLabels: {env: prod}}
"#;
    let inventory = objects(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: first, namespace: shop}
spec: {rules: [{host: shop.example.com}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {env: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {env: dev}}
"#,
    );
    let (set, _) =
        PolicySet::compile(&objects(yaml), &inventory, &PolicySettings::default()).unwrap();
    let mut ev = set.evaluator();
    let ingress = |name: &str, ns: &str| {
        ReviewRequest::from_object(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"rules": [{"host": "shop.example.com"}]}}),
        )
        .unwrap()
    };
    let v = ev
        .review(&ingress("second", "shop"), EnforcementPoint::Audit)
        .unwrap();
    assert_eq!(v.len(), 1);
    assert!(v[0].message.contains("already used by shop/first"));
    assert!(
        ev.review(&ingress("first", "shop"), EnforcementPoint::Audit)
            .unwrap()
            .is_empty()
    );
    // dev is not selected by the namespaceSelector.
    assert!(
        ev.review(&ingress("x", "dev"), EnforcementPoint::Audit)
            .unwrap()
            .is_empty()
    );
    // An unknown namespace cannot be decided: an error naming the constraint.
    let e = ev
        .review(&ingress("x", "ghost"), EnforcementPoint::Audit)
        .unwrap_err();
    assert!(
        e.to_string().contains("UniqueHost unique") && e.to_string().contains("ghost"),
        "{e}"
    );
}

struct Tags;
impl ExternalDataProvider for Tags {
    fn name(&self) -> &str {
        "tags"
    }
    fn lookup(&self, keys: &[String]) -> Vec<(String, Result<Value, String>)> {
        keys.iter()
            .map(|k| {
                let r = if k.ends_with(":latest") {
                    Err("mutable tag".to_string())
                } else {
                    Ok(json!(format!("{k}@sha256:0")))
                };
                (k.clone(), r)
            })
            .collect()
    }
}

#[test]
fn external_data_has_gatekeeper_response_shape() {
    let yaml = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: resolvable}
spec:
  crd: {spec: {names: {kind: Resolvable}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package resolvable
      violation[{"msg": msg}] {
        images := [c.image | c := input.review.object.spec.containers[_]]
        response := external_data({"provider": "tags", "keys": images})
        response.status_code == 200
        err := response.errors[_]
        msg := sprintf("%v: %v", [err[0], err[1]])
      }
      violation[{"msg": msg}] {
        response := external_data({"provider": "missing", "keys": ["x"]})
        response.system_error != ""
        msg := response.system_error
      }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: Resolvable
metadata: {name: resolvable}
"#;
    let settings = PolicySettings {
        providers: vec![Arc::new(Tags)],
        ..Default::default()
    };
    let (set, _) = PolicySet::compile(&objects(yaml), &[], &settings).unwrap();
    let mut ev = set.evaluator();
    let mut p = pod("p", "a", json!({}));
    p["spec"]["containers"] =
        json!([{"name": "a", "image": "nginx:latest"}, {"name": "b", "image": "nginx:1.27"}]);
    let r = ReviewRequest::from_object(p).unwrap();
    let mut msgs: Vec<String> = ev
        .review(&r, EnforcementPoint::Gator)
        .unwrap()
        .into_iter()
        .map(|v| v.message)
        .collect();
    msgs.sort();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(
        msgs[0].contains("\"missing\" is not configured"),
        "{msgs:?}"
    );
    assert_eq!(msgs[1], "nginx:latest: mutable tag");
}

#[test]
fn runaway_rego_is_stopped_by_the_timeout() {
    let yaml = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: slow}
spec:
  crd: {spec: {names: {kind: Slow}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package slow
      violation[{"msg": "slow"}] {
        n := numbers.range(1, 3000)
        count([1 | n[a]; n[b]; a * b == -1]) == 0
      }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: Slow
metadata: {name: slow}
"#;
    let settings = PolicySettings {
        eval_timeout: Some(Duration::from_millis(50)),
        ..Default::default()
    };
    let (set, _) = PolicySet::compile(&objects(yaml), &[], &settings).unwrap();
    let mut ev = set.evaluator();
    let started = std::time::Instant::now();
    let r = ReviewRequest::from_object(pod("p", "a", json!({}))).unwrap();
    let e = ev.review(&r, EnforcementPoint::Webhook).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(e.timed_out, "{e}");
}

#[test]
fn admission_requests_see_operation_user_and_old_object() {
    let yaml = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: noupdates}
spec:
  crd: {spec: {names: {kind: NoUpdates}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package noupdates
      violation[{"msg": msg}] {
        input.review.operation == "UPDATE"
        input.review.oldObject.metadata.labels.locked == "true"
        not startswith(input.review.userInfo.username, "system:")
        msg := sprintf("%v may not change a locked object", [input.review.userInfo.username])
      }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: NoUpdates
metadata: {name: locked}
"#;
    let set = set_of(yaml);
    let mut ev = set.evaluator();
    let body = serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u1", "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": "cm", "namespace": "a", "operation": "UPDATE",
            "userInfo": {"username": "alice"},
            "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "a"}},
            "oldObject": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "a", "labels": {"locked": "true"}}}}})).unwrap();
    let review = parse_admission_review(&body).unwrap();
    let v = ev
        .review(&review.request, EnforcementPoint::Webhook)
        .unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].message, "alice may not change a locked object");
}
