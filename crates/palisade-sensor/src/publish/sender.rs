//! One HTTPS POST of a sealed batch, and what its outcome means: delivered, refused for good, or
//! worth retrying after a backoff.

use super::PublishError;
use super::encode::EncodedBatch;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use std::path::Path;
use std::time::Duration;

/// What one attempt came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// 2xx, or 409 (the backend already has this idempotency key).
    Delivered,
    /// A status retrying cannot fix (400, 413, 422, …): the batch is dropped and counted.
    Rejected(StatusCode),
    /// Network error, timeout, 401/403 (the token may be fixed), 404 (backend not deployed yet),
    /// 408, 425, 429, 5xx: retried after a backoff, at least `retry_after` when the backend said.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
}

/// The HTTP client: rustls with ring, trusting the system roots or only `ca`.
pub(crate) fn client(
    ca: Option<&Path>,
    timeout: Duration,
) -> Result<reqwest::Client, PublishError> {
    // One TLS provider for the process; a second install (the CLI's) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("palisade-sensor/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(60));
    if let Some(path) = ca {
        let pem = std::fs::read(path).map_err(|source| PublishError::Io {
            path: path.display().to_string(),
            source,
        })?;
        builder = crate::https::trust_only(builder, &pem, &path.display().to_string())
            .map_err(PublishError::Config)?;
    }
    builder
        .build()
        .map_err(|e| PublishError::Config(format!("cannot build the HTTPS client: {e}")))
}

/// POSTs `batch` to `url` with the bearer token.
pub(crate) async fn send(
    client: &reqwest::Client,
    url: &str,
    authorization: &HeaderValue,
    batch: &EncodedBatch,
) -> Outcome {
    let response = client
        .post(url)
        .header(AUTHORIZATION, authorization.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(CONTENT_ENCODING, "gzip")
        .header("Idempotency-Key", batch.id.as_str())
        .body(batch.body.clone())
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Retry {
                reason: error_chain(&e),
                retry_after: None,
            };
        }
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    // Read the body so the connection can be reused.
    let _ = response.bytes().await;
    classify(status, retry_after)
}

fn classify(status: StatusCode, retry_after: Option<Duration>) -> Outcome {
    if status.is_success() || status == StatusCode::CONFLICT {
        return Outcome::Delivered;
    }
    let retryable = status.is_server_error()
        || matches!(
            status,
            StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::NOT_FOUND
                | StatusCode::REQUEST_TIMEOUT
                | StatusCode::TOO_EARLY
                | StatusCode::TOO_MANY_REQUESTS
        );
    if retryable {
        Outcome::Retry {
            reason: format!("backend answered {status}"),
            retry_after,
        }
    } else {
        Outcome::Rejected(status)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert!(matches!(
            classify(StatusCode::ACCEPTED, None),
            Outcome::Delivered
        ));
        assert!(matches!(
            classify(StatusCode::CONFLICT, None),
            Outcome::Delivered
        ));
        for s in [400, 413, 422] {
            assert!(matches!(
                classify(StatusCode::from_u16(s).unwrap(), None),
                Outcome::Rejected(_)
            ));
        }
        for s in [401, 403, 404, 408, 429, 500, 502, 503, 504] {
            assert!(matches!(
                classify(StatusCode::from_u16(s).unwrap(), None),
                Outcome::Retry { .. }
            ));
        }
    }
}
