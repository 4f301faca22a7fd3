//! (being written) Exceptions: the `palisade.io/ignore` annotation and an exceptions file with expiry.
