//! TODO(skeleton): safe streaming layer reader that applies layers onto an [`crate::ImageFs`].
