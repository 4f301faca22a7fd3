//! The webhook's TLS: shared with `palisade detect serve`, so it lives in
//! [`palisade_core::tls`]; re-exported here so the webhook's paths stay as they were.

pub use palisade_core::tls::*;
