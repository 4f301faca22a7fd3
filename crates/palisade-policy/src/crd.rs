//! CustomResourceDefinitions for constraints, so Palisade enforces ConstraintTemplates in a cluster
//! without Gatekeeper installed: Gatekeeper's controller creates one CRD per template
//! (`<kind lowercased>.constraints.gatekeeper.sh`); here `palisade policy crds` writes the same
//! CRDs for `kubectl apply`, and `deploy/kubernetes/policy-crds.yaml` defines ConstraintTemplate
//! itself.

use crate::template::{Template, TemplateError};
use palisade_kube::KubeObject;
use serde_json::{Value, json};

/// API group of constraints.
pub const CONSTRAINT_GROUP: &str = "constraints.gatekeeper.sh";

/// The CRD of the constraint kind a template defines: cluster-scoped, versions v1beta1
/// (stored), v1alpha1 and v1, `spec.parameters` validated by the template's schema.
pub fn constraint_crd(template: &Template) -> Value {
    let plural = template.kind.to_lowercase();
    let parameters = parameters_schema(template);
    let schema = json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "properties": {
                    "enforcementAction": {"type": "string"},
                    "scopedEnforcementActions": {
                        "type": "array",
                        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    },
                    "match": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "parameters": parameters,
                },
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        },
    });
    let version = |name: &str, storage: bool| {
        json!({
            "name": name,
            "served": true,
            "storage": storage,
            "schema": {"openAPIV3Schema": schema.clone()},
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "enforcement-action", "type": "string", "jsonPath": ".spec.enforcementAction"},
                {"name": "total-violations", "type": "integer", "jsonPath": ".status.totalViolations"},
            ],
        })
    };
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{plural}.{CONSTRAINT_GROUP}"),
            "labels": {
                "gatekeeper.sh/constraint": "true",
                "app.kubernetes.io/managed-by": "palisade",
            },
            "annotations": {"palisade.io/template": template.name},
        },
        "spec": {
            "group": CONSTRAINT_GROUP,
            "scope": "Cluster",
            "names": {
                "kind": template.kind,
                "listKind": format!("{}List", template.kind),
                "plural": plural,
                "singular": plural,
                "categories": ["constraint", "constraints"],
            },
            "versions": [version("v1beta1", true), version("v1alpha1", false), version("v1", false)],
        },
    })
}

/// The template's parameter schema made acceptable to the API server: unknown fields are kept
/// when the template has no schema or asks for them (legacy, non-structural schemas).
fn parameters_schema(template: &Template) -> Value {
    let Some(Value::Object(schema)) = &template.schema else {
        return json!({"x-kubernetes-preserve-unknown-fields": true});
    };
    let mut schema = schema.clone();
    schema.entry("type").or_insert_with(|| json!("object"));
    if template.preserve_unknown_fields {
        schema.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
    }
    Value::Object(schema)
}

/// The constraint CRDs of every ConstraintTemplate among `objects` (other kinds are passed
/// over), in the order the templates come.
pub fn constraint_crds(objects: &[KubeObject]) -> Result<Vec<Value>, TemplateError> {
    objects
        .iter()
        .filter(|o| Template::is_template(o))
        .map(|o| Template::from_object(o).map(|t| constraint_crd(&t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(schema: Option<Value>) -> KubeObject {
        let mut spec = json!({
            "crd": {"spec": {"names": {"kind": "K8sRequiredLabels"}}},
            "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": "package x\nviolation[{\"msg\": \"m\"}] { false }\n"}],
        });
        if let Some(s) = schema {
            spec["crd"]["spec"]["validation"] = json!({"openAPIV3Schema": s});
        }
        KubeObject::from_value(
            json!({
                "apiVersion": "templates.gatekeeper.sh/v1",
                "kind": "ConstraintTemplate",
                "metadata": {"name": "k8srequiredlabels"},
                "spec": spec,
            }),
            None,
        )
        .unwrap()
    }

    #[test]
    fn crd_names_and_parameters_follow_the_template() {
        let schema = json!({"type": "object", "properties": {"labels": {"type": "array", "items": {"type": "string"}}}});
        let crds = constraint_crds(&[template(Some(schema.clone()))]).unwrap();
        assert_eq!(crds.len(), 1);
        let crd = &crds[0];
        assert_eq!(
            crd["metadata"]["name"],
            "k8srequiredlabels.constraints.gatekeeper.sh"
        );
        assert_eq!(crd["spec"]["names"]["kind"], "K8sRequiredLabels");
        assert_eq!(crd["spec"]["scope"], "Cluster");
        let versions = crd["spec"]["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 3);
        assert_eq!(
            versions.iter().filter(|v| v["storage"] == true).count(),
            1,
            "exactly one stored version"
        );
        let params = &versions[0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["parameters"];
        assert_eq!(params, &schema);
    }

    #[test]
    fn no_schema_keeps_any_parameters() {
        let crd = constraint_crd(&Template::from_object(&template(None)).unwrap());
        let params = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["parameters"];
        assert_eq!(params["x-kubernetes-preserve-unknown-fields"], true);
    }

    #[test]
    fn other_kinds_are_passed_over() {
        let pod = KubeObject::from_value(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}),
            None,
        )
        .unwrap();
        assert!(constraint_crds(&[pod]).unwrap().is_empty());
    }
}
