//! Attribution and enrichment (part attrib): cgroup id → container → pod, process lineage, and
//! the conversion of kernel records into node events.
