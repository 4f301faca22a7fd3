//! Shared by the webhook integration tests: a server on a free loopback port with a generated
//! CA, a client that trusts only that CA, and AdmissionReview bodies.
#![allow(dead_code)]

use palisade_policy::webhook::{
    DecisionLog, Metrics, Policies, ReloadingResolver, SelfSigned, WebhookOptions, WebhookParts,
    WebhookServer,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{oneshot, watch};

pub struct Running<P> {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub metrics: Arc<Metrics>,
    pub resolver: Arc<ReloadingResolver>,
    pub ca: SelfSigned,
    pub policies: watch::Sender<Option<Arc<P>>>,
    stop: Option<oneshot::Sender<()>>,
}

impl<P> Drop for Running<P> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A client trusting only `ca_pem`; HTTP/1.1 with keep-alive.
pub fn client(ca_pem: &str) -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap()
}

pub async fn start<P: Policies>(
    policies: Option<P>,
    options: WebhookOptions,
    decision_log: Option<DecisionLog>,
    metrics: Arc<Metrics>,
) -> Running<P> {
    let (sender, receiver) = watch::channel(policies.map(Arc::new));
    start_feed(sender, receiver, options, decision_log, metrics).await
}

/// Starts a server on `receiver`; `sender` is kept so tests can swap sets.
pub async fn start_feed<P: Policies>(
    sender: watch::Sender<Option<Arc<P>>>,
    receiver: watch::Receiver<Option<Arc<P>>>,
    options: WebhookOptions,
    decision_log: Option<DecisionLog>,
    metrics: Arc<Metrics>,
) -> Running<P> {
    let ca = SelfSigned::generate(&["localhost".into(), "127.0.0.1".into()], 1).unwrap();
    let resolver = Arc::new(ReloadingResolver::new(ca.certified_key().unwrap()));
    let options = WebhookOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..options
    };
    let server = WebhookServer::bind(
        options,
        WebhookParts {
            tls: Arc::clone(&resolver),
            policies: receiver,
            metrics: Arc::clone(&metrics),
            decision_log,
            namespaces: None,
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        base: format!("https://localhost:{}", addr.port()),
        client: client(&ca.ca_pem),
        metrics,
        resolver,
        ca,
        policies: sender,
        stop: Some(stop),
    }
}

/// A pod-create AdmissionReview in `api_version`.
pub fn pod_review(api_version: &str, uid: &str, pod: Value) -> Value {
    let namespace = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
    json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "alice@example.com", "groups": ["system:authenticated"]},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

/// A pod with one container; `privileged` sets its securityContext.
pub fn pod(name: &str, privileged: bool, labels: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "team-a", "labels": labels},
        "spec": {"containers": [{
            "name": "app",
            "image": "registry.example.com/app:1.4.2",
            "securityContext": {"privileged": privileged}
        }]}
    })
}

pub async fn post(running: &Running<impl Sized>, body: &Value) -> (u16, Value) {
    let response = running
        .client
        .post(format!("{}/validate", running.base))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
