//! TODO(skeleton): matcher.
