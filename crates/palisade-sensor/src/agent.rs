//! The sensor loop (part publish): kernel → attribution → rules → publisher, health and metrics.
