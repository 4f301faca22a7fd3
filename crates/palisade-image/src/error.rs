//! Typed errors of the image engine. Each says what was wrong and where, so a person can act.

use thiserror::Error;

/// Everything that can go wrong between an image reference and its package list.
#[derive(Debug, Error)]
pub enum ImageError {
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },
    #[error("authentication to {registry} failed: {message}")]
    Auth { registry: String, message: String },
    #[error("no manifest for platform {platform} in {reference} (available: {available})")]
    PlatformNotFound {
        reference: String,
        platform: String,
        available: String,
    },
    #[error("malformed {what}: {message}")]
    Malformed { what: String, message: String },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("layer {layer}: {message}")]
    Layer { layer: String, message: String },
    #[error("limit exceeded in {layer}: {limit}")]
    LimitExceeded { layer: String, limit: String },
    #[error("unsupported {what}: {value}")]
    Unsupported { what: String, value: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cataloger {cataloger} failed on {path}: {message}")]
    Catalog {
        cataloger: String,
        path: String,
        message: String,
    },
}

impl ImageError {
    /// Wraps an I/O error with the path or object it happened on.
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        ImageError::Io {
            path: path.into(),
            source,
        }
    }
}
