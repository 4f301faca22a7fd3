//! TODO(skeleton): cvss.
