//! The webhook with the real policy engine: Gatekeeper templates and constraints from files,
//! reviewed over TLS; policy reload that keeps the old set when the new one fails; the deadline
//! and the engine's execution timer against a template that loops for a long time.
#![cfg(feature = "server")]

mod webhook_support;

use palisade_policy::webhook::{
    FailurePolicy, Metrics, PollSettings, WebhookOptions, load_policy_set, watch_paths,
};
use palisade_policy::{PolicySet, PolicySettings};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use webhook_support::{pod, pod_review, post, start, start_feed};

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook_policies")
}

fn policy_set(paths: &[PathBuf], settings: &PolicySettings) -> PolicySet {
    load_policy_set(paths, settings).unwrap()
}

#[tokio::test]
async fn gatekeeper_templates_deny_warn_and_dryrun_in_both_versions() {
    let set = policy_set(&[policies_dir()], &PolicySettings::default());
    let server = start(
        Some(set),
        WebhookOptions::default(),
        None,
        Arc::new(Metrics::new()),
    )
    .await;

    for version in ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"] {
        let (status, body) = post(
            &server,
            &pod_review(version, "u-priv", pod("priv", true, json!({}))),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["apiVersion"], version);
        let response = &body["response"];
        assert_eq!(response["uid"], "u-priv");
        assert_eq!(response["allowed"], false, "{body}");
        assert_eq!(response["status"]["code"], 403);
        assert_eq!(
            response["status"]["message"],
            "[no-privileged] privileged container app is not allowed (registry.example.com/app:1.4.2)"
        );
        assert_eq!(
            response["warnings"],
            json!(["[owner-label] Pod priv has no label owner"])
        );

        let (_, body) = post(
            &server,
            &pod_review(
                version,
                "u-ok",
                pod("ok", false, json!({"owner": "alice", "team": "web"})),
            ),
        )
        .await;
        assert_eq!(body["response"]["allowed"], true, "{body}");
        assert!(body["response"].get("warnings").is_none(), "{body}");
    }
    // Excluded namespace: the privileged constraint does not match.
    let mut system = pod("proxy", true, json!({"owner": "x", "team": "y"}));
    system["metadata"]["namespace"] = json!("kube-system");
    let (_, body) = post(&server, &pod_review("admission.k8s.io/v1", "u-sys", system)).await;
    assert_eq!(body["response"]["allowed"], true, "{body}");

    let text = server.metrics.render();
    assert!(text.contains("palisade_admission_violations_total{constraint_kind=\"K8sNeedLabels\",constraint=\"team-label\",enforcement_action=\"dryrun\"} 2"), "{text}");
    assert!(text.contains("palisade_admission_violations_total{constraint_kind=\"K8sDenyPrivileged\",constraint=\"no-privileged\",enforcement_action=\"deny\"} 2"), "{text}");
    assert!(text.contains("palisade_policy_constraints 3"), "{text}");
    assert!(text.contains("palisade_policy_templates 2"), "{text}");
}

const BROKEN_TEMPLATE: &str = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sbroken
spec:
  crd:
    spec:
      names:
        kind: K8sBroken
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8sbroken
      violation[{"msg": msg}] {
        msg := "unterminated
      }
"#;

const HOST_PID: &str = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8snohostpid
spec:
  crd:
    spec:
      names:
        kind: K8sNoHostPid
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8snohostpid
      violation[{"msg": "hostPID is not allowed"}] {
        input.review.object.spec.hostPID
      }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sNoHostPid
metadata:
  name: no-host-pid
spec:
  match:
    kinds:
    - apiGroups: [""]
      kinds: ["Pod"]
"#;

#[tokio::test]
async fn policy_reload_keeps_the_old_set_when_the_new_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["privileged.yaml", "labels.yaml"] {
        std::fs::copy(policies_dir().join(file), dir.path().join(file)).unwrap();
    }
    let metrics = Arc::new(Metrics::new());
    let settings = PolicySettings::default();
    let source = watch_paths(
        vec![dir.path().to_path_buf()],
        PollSettings {
            interval: Duration::from_millis(50),
            debounce: Duration::from_millis(50),
        },
        Arc::clone(&metrics),
        move |paths: &[PathBuf]| load_policy_set(paths, &settings),
    )
    .unwrap();
    // The server's feed follows the source.
    let (sender, receiver) = watch::channel(Some(source.borrow().clone()));
    let forward = sender.clone();
    let mut follow = source.clone();
    tokio::spawn(async move {
        while follow.changed().await.is_ok() {
            let next = follow.borrow_and_update().clone();
            let _ = forward.send(Some(next));
        }
    });
    let server = start_feed(sender, receiver, WebhookOptions::default(), None, metrics).await;
    let host_pid = || {
        let mut p = pod("hp", false, json!({"owner": "o", "team": "t"}));
        p["spec"]["hostPID"] = json!(true);
        pod_review("admission.k8s.io/v1", "u-hp", p)
    };
    let (_, body) = post(&server, &host_pid()).await;
    assert_eq!(body["response"]["allowed"], true);

    // A template that does not compile: counted, logged, the old set keeps serving.
    std::fs::write(dir.path().join("broken.yaml"), BROKEN_TEMPLATE).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.metrics.reload_counts().1 == 0 {
        assert!(Instant::now() < deadline, "reload failure not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, body) = post(
        &server,
        &pod_review("admission.k8s.io/v1", "u", pod("p", true, json!({}))),
    )
    .await;
    assert_eq!(
        body["response"]["allowed"], false,
        "old set still denies: {body}"
    );
    let text = server.metrics.render();
    assert!(
        text.contains("palisade_policy_reload_failures_total 1"),
        "{text}"
    );
    assert!(text.contains("palisade_policy_constraints 3"), "{text}");

    // Fixed: the broken file replaced by a good template; the new set is served.
    std::fs::remove_file(dir.path().join("broken.yaml")).unwrap();
    std::fs::write(dir.path().join("hostpid.yaml"), HOST_PID).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = post(&server, &host_pid()).await;
        if body["response"]["allowed"] == false {
            assert_eq!(
                body["response"]["status"]["message"],
                "[no-host-pid] hostPID is not allowed"
            );
            break;
        }
        assert!(Instant::now() < deadline, "new set not served: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = server.metrics.render();
    assert!(text.contains("palisade_policy_constraints 4"), "{text}");
    assert!(text.contains("palisade_policy_reloads_total 2"), "{text}");
}

#[tokio::test]
async fn a_long_running_template_meets_the_deadline_and_the_worker_is_freed() {
    let timeout = Duration::from_millis(300);
    let settings = PolicySettings {
        eval_timeout: Some(timeout),
        ..PolicySettings::default()
    };
    let slow = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook_slow.yaml");
    let set = policy_set(&[policies_dir(), slow], &settings);
    for policy in [FailurePolicy::Ignore, FailurePolicy::Fail] {
        let options = WebhookOptions {
            timeout,
            failure_policy: policy,
            workers: 1,
            ..WebhookOptions::default()
        };
        let server = start(Some(set.clone()), options, None, Arc::new(Metrics::new())).await;
        let mut p = pod("slow", false, json!({"owner": "o", "team": "t"}));
        p["metadata"]["annotations"] = json!({"test.palisade.io/slow": "yes"});
        let started = Instant::now();
        let (status, body) = post(&server, &pod_review("admission.k8s.io/v1", "u-slow", p)).await;
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let response = &body["response"];
        match policy {
            FailurePolicy::Ignore => {
                assert_eq!(response["allowed"], true, "{body}");
                assert!(
                    response["warnings"][0]
                        .as_str()
                        .unwrap()
                        .contains("failure policy Ignore"),
                    "{body}"
                );
            }
            FailurePolicy::Fail => {
                assert_eq!(response["allowed"], false, "{body}");
                assert_eq!(response["status"]["code"], 500);
            }
        }
        // The single worker is free again soon (the execution timer stopped the loop): an
        // ordinary request is evaluated, not answered by the failure policy.
        let started = Instant::now();
        let (_, body) = post(
            &server,
            &pod_review("admission.k8s.io/v1", "u-next", pod("n", true, json!({}))),
        )
        .await;
        assert_eq!(body["response"]["allowed"], false, "{body}");
        assert_eq!(body["response"]["status"]["code"], 403, "{body}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(
            server
                .metrics
                .render()
                .contains("palisade_admission_errors_total{cause=\"timeout\"} 1")
        );
    }
}
