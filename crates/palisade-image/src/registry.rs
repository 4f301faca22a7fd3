//! TODO(skeleton): OCI distribution client (oci-client), auth, platform selection.
