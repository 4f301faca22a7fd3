//! TODO(skeleton): update.
