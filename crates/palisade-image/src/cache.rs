//! TODO(skeleton): content-addressed blob cache.
