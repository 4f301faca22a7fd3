//! `run` and `check` with the concrete stages: the eBPF `KernelSensor`, the `Enricher` and the
//! node rules' `NodeDetector`. Until the kernel, attribution and rules parts are merged, these
//! report that the eBPF programs are not part of the build.

use super::{AgentConfig, AgentError, AgentSummary};

/// Runs the sensor until `config.stop` is set.
pub fn run(config: AgentConfig) -> Result<AgentSummary, AgentError> {
    // Configuration first, so a bad option is a configuration error (exit 2) on any machine.
    let publisher = crate::publish::Publisher::start(config.publisher, None)?;
    publisher.shutdown(std::time::Duration::ZERO);
    Err(AgentError::Kernel {
        message: "this build has no eBPF programs (the kernel part is not merged yet)".into(),
        not_permitted: false,
    })
}

/// One line of `palisade sensor check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

/// What `palisade sensor check` found; `ok` when the sensor can run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub lines: Vec<CheckLine>,
    pub ok: bool,
}

/// Whether BTF is present and BPF is permitted, and which probes attach.
pub fn check(config: &AgentConfig) -> CheckReport {
    let _ = config;
    let btf = std::path::Path::new("/sys/kernel/btf/vmlinux").exists();
    CheckReport {
        lines: vec![CheckLine {
            what: "kernel BTF (/sys/kernel/btf/vmlinux)".into(),
            ok: btf,
            detail: if btf {
                "present".into()
            } else {
                "missing".into()
            },
        }],
        ok: false,
    }
}
