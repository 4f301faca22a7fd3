//! TODO(skeleton): the local advisory database.
