//! A local HTTPS server for the tests that talk to one (the publisher's backend, a kubelet):
//! a generated CA and serving certificate for `localhost`/`127.0.0.1`, rustls, hyper, and a
//! handler per request.
#![allow(dead_code)]

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use palisade_core::tls::{ReloadingResolver, SelfSigned, server_config};
use std::future::Future;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// A TLS acceptor with a fresh certificate, and the PEM of the CA that signed it.
pub fn tls_acceptor() -> (TlsAcceptor, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let generated =
        SelfSigned::generate(&["localhost".into(), "127.0.0.1".into()], 1).expect("certs");
    let resolver = Arc::new(ReloadingResolver::new(
        generated.certified_key().expect("key"),
    ));
    let mut config = (*server_config(resolver).expect("server config")).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (TlsAcceptor::from(Arc::new(config)), generated.ca_pem)
}

/// Accepts TLS connections on `listener` forever, answering each request with `handler`.
pub async fn serve<H, F>(listener: tokio::net::TcpListener, acceptor: TlsAcceptor, handler: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, hyper::Error>> + Send + 'static,
{
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let handler = handler.clone();
        connections.spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service_fn(handler))
                .await;
        });
    }
}
