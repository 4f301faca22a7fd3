//! The publisher (part publish): batches of node events and alerts to a backend over HTTPS or as
//! JSON lines to a file or stdout, with bounded memory, a disk spool, retries and counted drops.
