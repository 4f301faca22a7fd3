//! TODO(skeleton): scanning a plain root file system.
