//! The one way this crate trusts a private CA for its HTTPS clients (the backend, the kubelet).

/// Restricts `builder` to the CA certificates of the PEM bundle `pem` (instead of the system
/// roots). The error says what is wrong with the bundle; `what` names it in the message.
pub(crate) fn trust_only(
    builder: reqwest::ClientBuilder,
    pem: &[u8],
    what: &str,
) -> Result<reqwest::ClientBuilder, String> {
    let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("{what}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no PEM certificate in it"));
    }
    Ok(builder.tls_certs_only(certs))
}
