//! TODO(skeleton): version ordering per ecosystem.
