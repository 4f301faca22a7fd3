//! TODO(skeleton): ignore.
