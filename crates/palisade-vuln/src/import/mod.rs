//! TODO(skeleton): advisory importers (OSV, Debian tracker, Alpine secdb).
