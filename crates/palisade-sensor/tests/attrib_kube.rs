//! The pod cache against a real kube-apiserver: its own etcd and kube-apiserver (the binary
//! `scripts/infra/kube-apiserver.sh build` caches in `$PALISADE_INFRA/bin`, default
//! /var/tmp/palisade-infra) on free loopback ports. Pods are created with `spec.nodeName`, their
//! container statuses set through the `pods/status` subresource as a kubelet would, and the
//! watcher must resolve container ids to pods for this node only, follow restarts (new container
//! id) and keep deleted pods for the grace period.
//!
//! The kubelet source is checked against the same cluster: a kubelet cannot run here, so a local
//! HTTPS server answers `/pods` with the real API server's PodList of this node (the kubelet
//! serves the same v1 `PodList`).
//!
//! Skips (saying SKIP) when the binary or etcd is missing, unless PALISADE_REQUIRE_KUBE=1.

mod https_support;

use http_body_util::Full;
use hyper::Response;
use hyper::body::Bytes;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use palisade_kube::ClusterOptions;
use palisade_sensor::attrib::{KubeletSource, PodCache};
use palisade_testkit::{Cluster, ClusterTools, free_port, log_tail, poll};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn pod(name: &str, node: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "attrib"},
        "spec": {"nodeName": node, "containers": [
            {"name": "web", "image": "registry.example.com/shop/web:2.3.1",
             "securityContext": {"privileged": true}},
            {"name": "sidecar", "image": "registry.example.com/mesh/proxy:1.0"}
        ]}
    }))
    .unwrap()
}

fn statuses(web_id: &str, sidecar_id: &str) -> serde_json::Value {
    json!({"status": {"phase": "Running", "containerStatuses": [
        {"name": "web", "image": "registry.example.com/shop/web:2.3.1",
         "imageID": "registry.example.com/shop/web@sha256:0123", "ready": true, "restartCount": 0,
         "containerID": format!("containerd://{web_id}"),
         "state": {"running": {"startedAt": "2026-12-06T01:30:00Z"}}},
        {"name": "sidecar", "image": "registry.example.com/mesh/proxy:1.0", "imageID": "",
         "ready": true, "restartCount": 0, "containerID": format!("cri-o://{sidecar_id}"),
         "state": {"running": {"startedAt": "2026-12-06T01:30:05Z"}}}
    ]}})
}

#[test]
fn pod_cache_follows_this_nodes_pods_through_the_api_server() {
    let Some(tools) = ClusterTools::find() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), &tools, "attrib", &[]);
    let options = ClusterOptions {
        kubeconfig: Some(cluster.kubeconfig.clone()),
        ..ClusterOptions::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (client, _) = rt
        .block_on(palisade_kube::connect(&options))
        .expect("client");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let ns: Namespace = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "attrib"}}),
        )
        .unwrap();
        if rt
            .block_on(namespaces.create(&PostParams::default(), &ns))
            .is_ok()
        {
            break;
        }
        if let Ok(Some(status)) = cluster.apiserver.child.try_wait() {
            panic!(
                "{} exited ({status}):\n{}",
                cluster.apiserver.name,
                log_tail(&cluster.log, 20)
            );
        }
        assert!(
            Instant::now() < deadline,
            "kube-apiserver not ready:\n{}",
            log_tail(&cluster.log, 20)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "attrib");

    // A pod that exists before the watcher starts comes in through the first list.
    let early = rt
        .block_on(pods.create(&PostParams::default(), &pod("early", "node-a")))
        .expect("create early");
    let early_id = "e".repeat(64);
    rt.block_on(pods.patch_status(
        "early",
        &PatchParams::default(),
        &Patch::Merge(statuses(&early_id, &"f".repeat(64))),
    ))
    .expect("early status");

    let cache = PodCache::new();
    let watcher = cache.watch_node(&options, "node-a").expect("watch");
    poll("the first list", Duration::from_secs(60), || {
        cache.is_synced()
    });
    let (pod_ref, container) = cache
        .lookup_container(&early_id)
        .expect("early pod from the list");
    assert_eq!(pod_ref.name, "early");
    assert_eq!(pod_ref.uid, early.metadata.uid.clone().unwrap());

    // Pods created later arrive through the watch; another node's pod never does.
    assert_eq!(container.name, "web");
    let web_id = "a1".repeat(32);
    let side_id = "b2".repeat(32);
    let other_id = "c3".repeat(32);
    let created = rt
        .block_on(pods.create(&PostParams::default(), &pod("shop-web", "node-a")))
        .expect("create");
    rt.block_on(pods.create(&PostParams::default(), &pod("elsewhere", "node-b")))
        .expect("create other");
    let uid = created.metadata.uid.clone().expect("uid");
    poll("the new pod by uid", Duration::from_secs(60), || {
        cache.lookup_pod(&uid).is_some()
    });
    assert!(cache.lookup_container(&web_id).is_none(), "no status yet");
    rt.block_on(pods.patch_status(
        "shop-web",
        &PatchParams::default(),
        &Patch::Merge(statuses(&web_id, &side_id)),
    ))
    .expect("status");
    rt.block_on(pods.patch_status(
        "elsewhere",
        &PatchParams::default(),
        &Patch::Merge(statuses(&other_id, &"d4".repeat(32))),
    ))
    .expect("other status");
    poll(
        "container ids from the status",
        Duration::from_secs(60),
        || cache.lookup_container(&side_id).is_some(),
    );
    let (pod_ref, web) = cache.lookup_container(&web_id).expect("web");
    assert_eq!(
        (
            pod_ref.name.as_str(),
            pod_ref.namespace.as_str(),
            pod_ref.uid.as_str()
        ),
        ("shop-web", "attrib", uid.as_str())
    );
    assert_eq!(web.name, "web");
    assert_eq!(web.image, "registry.example.com/shop/web:2.3.1");
    assert_eq!(
        web.image_id.as_deref(),
        Some("registry.example.com/shop/web@sha256:0123")
    );
    assert!(web.privileged);
    assert_eq!(web.started_nanos, Some(1_796_520_600_000_000_000));
    let (_, side) = cache.lookup_container(&side_id).expect("sidecar");
    assert!(!side.privileged);
    assert_eq!(side.image_id, None);
    assert!(cache.lookup_container(&other_id).is_none(), "node-b's pod");
    assert!(cache.lookup_pod(&uid).is_some());

    // A restart: the web container gets a new id; the old one stops resolving.
    let restarted = "9".repeat(64);
    rt.block_on(pods.patch_status(
        "shop-web",
        &PatchParams::default(),
        &Patch::Merge(statuses(&restarted, &side_id)),
    ))
    .expect("restart status");
    poll("the restarted container", Duration::from_secs(60), || {
        cache.lookup_container(&restarted).is_some()
    });
    assert!(cache.lookup_container(&web_id).is_none());

    // Deleted: still resolves during the grace period (late exit events).
    let before = cache.counters().watch_events;
    rt.block_on(pods.delete("shop-web", &DeleteParams::default().grace_period(0)))
        .expect("delete");
    poll("the delete event", Duration::from_secs(60), || {
        cache.counters().watch_events > before
    });
    assert!(cache.lookup_container(&restarted).is_some(), "grace period");
    let counters = cache.counters();
    assert_eq!(
        counters.pods, 2,
        "early and shop-web, never node-b's: {counters:?}"
    );
    assert_eq!(counters.lists, 1);
    assert_eq!(counters.errors, 0);
    watcher.stop();

    kubelet_source_reads_the_same_pods(&rt, &client, &pods, &early_id, &other_id);
}

/// This node's pods as the API server lists them: the body a kubelet's `/pods` answers with.
fn node_a_pod_list(rt: &tokio::runtime::Runtime, client: &kube::Client) -> Vec<u8> {
    let request = hyper::Request::get("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a")
        .body(Vec::new())
        .unwrap();
    rt.block_on(client.request_text(request))
        .expect("list node-a's pods")
        .into_bytes()
}

const KUBELET_TOKEN: &str = "kubelet-token";

/// A stand-in kubelet: `/pods` with the bearer token gets `served`; counts requests.
struct Kubelet {
    served: Arc<Mutex<Vec<u8>>>,
    requests: Arc<AtomicU64>,
    url: String,
    ca_pem: String,
    _rt: tokio::runtime::Runtime,
}

fn start_kubelet(body: Vec<u8>) -> Kubelet {
    let (acceptor, ca_pem) = https_support::tls_acceptor();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(Mutex::new(body));
    let requests = Arc::new(AtomicU64::new(0));
    let (body, count) = (Arc::clone(&served), Arc::clone(&requests));
    rt.spawn(https_support::serve(listener, acceptor, move |req| {
        let (body, count) = (Arc::clone(&body), Arc::clone(&count));
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            let authorized = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                == Some(&format!("Bearer {KUBELET_TOKEN}"));
            let (status, payload) = if req.uri().path() != "/pods" {
                (404, b"404 page not found".to_vec())
            } else if !authorized {
                (401, b"Unauthorized".to_vec())
            } else {
                (200, body.lock().unwrap().clone())
            };
            let mut response = Response::new(Full::new(Bytes::from(payload)));
            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
            Ok::<_, hyper::Error>(response)
        }
    }));
    Kubelet {
        served,
        requests,
        url: format!("https://localhost:{port}"),
        ca_pem,
        _rt: rt,
    }
}

fn kubelet_source(kubelet: &Kubelet, token: &str, trust: bool) -> KubeletSource {
    KubeletSource {
        url: kubelet.url.clone(),
        token: Some(token.to_string()),
        ca_pem: trust.then(|| kubelet.ca_pem.clone().into_bytes()),
        insecure_skip_tls_verify: false,
        // Long: anything read sooner was asked for by a miss.
        interval: Duration::from_secs(300),
    }
}

fn kubelet_source_reads_the_same_pods(
    rt: &tokio::runtime::Runtime,
    client: &kube::Client,
    pods: &Api<Pod>,
    early_id: &str,
    other_node_id: &str,
) {
    let kubelet = start_kubelet(node_a_pod_list(rt, client));
    let cache = PodCache::new();
    let watcher = cache
        .poll_kubelet(kubelet_source(&kubelet, KUBELET_TOKEN, true))
        .expect("kubelet source");
    poll("the kubelet's pod list", Duration::from_secs(60), || {
        cache.is_synced()
    });
    let (pod_ref, container) = cache.lookup_container(early_id).expect("early pod");
    assert_eq!(
        (pod_ref.name.as_str(), pod_ref.namespace.as_str()),
        ("early", "attrib")
    );
    assert_eq!(container.name, "web");
    assert_eq!(container.image, "registry.example.com/shop/web:2.3.1");
    assert!(
        cache.lookup_container(other_node_id).is_none(),
        "node-b's pod"
    );

    // A pod started after the last read: the miss makes the cache ask the kubelet again, long
    // before the 300 s interval.
    rt.block_on(pods.create(&PostParams::default(), &pod("late", "node-a")))
        .expect("create late");
    let late_id = "7a".repeat(32);
    rt.block_on(pods.patch_status(
        "late",
        &PatchParams::default(),
        &Patch::Merge(statuses(&late_id, &"7b".repeat(32))),
    ))
    .expect("late status");
    *kubelet.served.lock().unwrap() = node_a_pod_list(rt, client);
    let asked = Instant::now();
    poll("the late pod after a miss", Duration::from_secs(60), || {
        cache.lookup_container(&late_id).is_some()
    });
    assert!(asked.elapsed() < Duration::from_secs(60));
    let counters = cache.counters();
    assert!(counters.lists >= 2, "{counters:?}");
    assert_eq!(counters.errors, 0, "{counters:?}");
    watcher.stop();

    // A token the kubelet refuses, and a serving certificate nobody vouched for: counted
    // errors, nothing resolves.
    for (token, trust, what) in [
        ("not-the-token", true, "a refused token"),
        (KUBELET_TOKEN, false, "an untrusted certificate"),
    ] {
        let before = kubelet.requests.load(Ordering::SeqCst);
        let cache = PodCache::new();
        let watcher = cache
            .poll_kubelet(kubelet_source(&kubelet, token, trust))
            .expect("valid configuration");
        poll(what, Duration::from_secs(60), || {
            cache.counters().errors >= 1
        });
        assert!(!cache.is_synced(), "{what}");
        assert!(cache.lookup_container(early_id).is_none(), "{what}");
        assert_eq!(cache.counters().lists, 0, "{what}");
        if trust {
            assert!(kubelet.requests.load(Ordering::SeqCst) > before, "{what}");
        }
        watcher.stop();
    }

    // Kubelets often serve a self-signed certificate: accepted when told to.
    let cache = PodCache::new();
    let watcher = cache
        .poll_kubelet(KubeletSource {
            insecure_skip_tls_verify: true,
            ..kubelet_source(&kubelet, KUBELET_TOKEN, false)
        })
        .expect("insecure source");
    poll(
        "the pod list without verification",
        Duration::from_secs(60),
        || cache.lookup_container(early_id).is_some(),
    );
    watcher.stop();

    // A URL that is not one is an error up front.
    let err = PodCache::new()
        .poll_kubelet(KubeletSource {
            url: "ftp://kubelet:10250".into(),
            ..kubelet_source(&kubelet, KUBELET_TOKEN, true)
        })
        .err()
        .expect("ftp URL");
    assert!(err.to_string().contains("https://"), "{err}");
}

#[test]
fn unreachable_api_server_is_retried_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    // A port nothing listens on.
    let port = free_port();
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: x\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: u\ncurrent-context: t\n"
        ),
    )
    .unwrap();
    let cache = PodCache::new();
    let watcher = cache
        .watch_node(
            &ClusterOptions {
                kubeconfig: Some(kubeconfig),
                ..ClusterOptions::default()
            },
            "node-a",
        )
        .expect("configuration is valid; the server is only unreachable");
    poll("a counted list error", Duration::from_secs(30), || {
        cache.counters().errors >= 1
    });
    assert!(!cache.is_synced());
    assert!(cache.lookup_container(&"a".repeat(64)).is_none());
    watcher.stop();

    // A configuration that cannot be read is an error up front.
    let err = cache
        .watch_node(
            &ClusterOptions {
                kubeconfig: Some(dir.path().join("missing")),
                ..ClusterOptions::default()
            },
            "node-a",
        )
        .err()
        .expect("missing kubeconfig");
    assert!(err.to_string().contains("Kubernetes"), "{err}");
}

/// A kubelet answering something that is not a PodList: a counted error, the cache keeps what it
/// had (here nothing) and never claims to be synced.
#[test]
fn kubelet_answer_that_is_not_a_pod_list_is_a_counted_error() {
    for body in [
        b"<html>proxy error</html>".to_vec(),
        b"{\"kind\":\"PodList\",\"items\":[{\"metadata\":".to_vec(),
        b"{\"kind\":\"PodList\",\"items\":\"many\"}".to_vec(),
    ] {
        let kubelet = start_kubelet(body.clone());
        let cache = PodCache::new();
        let watcher = cache
            .poll_kubelet(kubelet_source(&kubelet, KUBELET_TOKEN, true))
            .expect("valid configuration");
        poll("a counted error", Duration::from_secs(60), || {
            cache.counters().errors >= 1
        });
        let counters = cache.counters();
        assert_eq!(
            (counters.lists, counters.pods),
            (0, 0),
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert!(!cache.is_synced());
        watcher.stop();
    }
}
