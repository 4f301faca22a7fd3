//! The eBPF side (part kernel): loading the CO-RE programs, configuring their in-kernel filters,
//! reading the ring buffer and decoding records into [`event::KernelEvent`].
//!
//! Kernel side (`src/bpf/sensor.bpf.c`): four BTF tracepoint programs. `sched_process_exec` and
//! `sched_process_exit` for processes; `raw_syscalls:sys_enter` for opens of sensitive paths,
//! unlinks, chmod +x, connect, DNS datagrams, ptrace, unshare/setns/clone with new namespaces,
//! mounts, memfd_create and module loads; `raw_syscalls:sys_exit` for accepted connections and
//! the "written since the sensor started" inode map behind binary-drift detection. Kprobes and
//! BPF trampolines (fentry/fexit/LSM) are not needed, so the sensor runs on kernels that have
//! neither (this one: no kprobes, trampolines refused).
//!
//! Filtering happens in the kernel: the syscall number is the first branch, the sensor's own
//! process is skipped, paths go through an LPM trie of sensitive prefixes, namespace calls need a
//! CLONE_NEW* bit, datagrams need the DNS port, chmod needs an added execute bit. Ring-buffer
//! reserve failures are counted per CPU and per kind ([`KernelCounters`]).
//!
//! What the records mean (for enrichment and rules):
//! - `Exec`: `filename` is the path given to execve (may be relative or `/dev/fd/N`); `args` is
//!   argv (the kernel copies at most 4095 bytes of it, then [`KernelConfig::max_args`] and
//!   [`KernelConfig::max_arg_bytes`] apply); `stdio` are the kinds of fds 0–2 after the exec;
//!   `exe_memfd`/`exe_deleted` come from the executable's link count (0) and its `memfd:` name;
//!   `exe_upper_layer` from the overlayfs inode's upper dentry; `exe_written` when the inode was
//!   opened for writing or made executable (by fd) since the sensor started.
//! - `Exit`: `exit_code` is shell-style (the status, or 128 + signal); one record per process
//!   (when its last thread exits).
//! - `Connect`: `dst` is the address passed to connect(2); `src` is the socket's bound address
//!   at that moment (often unspecified/0 before the kernel picks one).
//! - `Accept`: `src` is the remote peer, `dst` the local (listening) end.
//! - `Dns`: a UDP datagram to [`KernelConfig::dns_port`] (sendto, sendmsg, first message of
//!   sendmmsg, send on a connected socket); `payload` is the first ≤ 512 bytes. DNS over TCP is
//!   not captured.
//! - `Open`: `flags` are the open(2) flags; `path` is the absolute path as the process named it
//!   (relative names are joined to the cwd or dirfd path; symlinks and `..` are not resolved).
//! - `Unlink`: unlink/unlinkat of a sensitive path (write-only prefixes included).
//! - `Chmod`: chmod/fchmod/fchmodat adding an execute bit; `written_recently` when the file was
//!   opened for writing since the sensor started (by path for chmod, by inode for fchmod).
//! - `Ptrace`: ATTACH, SEIZE, TRACEME, POKE*, SET*REGS* requests only.
//! - `Namespace`: unshare/clone/clone3 with CLONE_NEW* bits (`flags` = only those bits); every
//!   setns (`flags` = the nstype argument, 0 when the caller let the fd decide).
//! - `Mount`: mount(2) with source, target, fstype; the new mount API is seen at fsopen (fstype
//!   only, empty source and target).
//! - `Memfd`: every memfd_create with its name.
//! - `Module`: init_module/finit_module; only where the kernel has module support.
//!
//! Header fields: `pid` is the thread-group id, `tid` the thread; `pid_ns` is the pid namespace
//! the task is in; `cap_effective` is the effective capability mask (`exec`: after the exec).

pub mod decode;
pub mod event;
mod prefix;

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use libbpf_rs::{
    ErrorKind, Link, MapCore, MapFlags, Object, ObjectBuilder, RingBuffer, RingBufferBuilder,
};

use self::decode::{ArgLimits, KIND_NAMES};
use self::event::KernelEvent;
pub use self::prefix::PatternError;

/// The compiled BPF object (clang, from build.rs).
static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sensor.bpf.o"));

/// Sensitive paths whose opens (read or write) and unlinks are reported. `*` stands for exactly
/// one path component. Paths are matched as the process names them (absolute, or cwd/dirfd +
/// relative name), so both `/var/run/...` and `/run/...` spellings are listed.
pub const DEFAULT_SENSITIVE_PREFIXES: &[&str] = &[
    // credentials and privilege configuration
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/ld.so.preload",
    "/etc/security/opasswd",
    // Kubernetes credentials: kubeconfigs, kubelet and service-account tokens
    "/etc/kubernetes/",
    "/var/lib/kubelet/kubeconfig",
    "/var/lib/kubelet/pki/",
    "/root/.kube/",
    "/home/*/.kube/",
    "/var/run/secrets/",
    "/run/secrets/",
    // other processes' environments (secrets in env vars)
    "/proc/*/environ",
    // shell histories and ssh keys
    "/root/.bash_history",
    "/home/*/.bash_history",
    "/root/.zsh_history",
    "/home/*/.zsh_history",
    "/root/.ash_history",
    "/root/.ssh/",
    "/home/*/.ssh/",
    // container runtime sockets
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/crio/crio.sock",
    "/var/run/crio/crio.sock",
    // cloud and registry credentials
    "/root/.aws/",
    "/home/*/.aws/",
    "/root/.docker/",
    "/home/*/.docker/",
    // ssh host private keys; projected service-account tokens as the node sees them
    "/etc/ssh/ssh_host_",
    "/var/lib/kubelet/pods/",
];

/// Paths reported only when opened for writing (or unlinked): files every process reads, whose
/// modification is the signal (user addition, persistence, log tampering).
pub const DEFAULT_SENSITIVE_WRITE_PREFIXES: &[&str] = &[
    "/etc/passwd",
    "/etc/group",
    "/etc/cron",
    "/var/spool/cron/",
    "/etc/profile",
    "/etc/bash.bashrc",
    "/root/.bashrc",
    "/home/*/.bashrc",
    "/root/.profile",
    "/home/*/.profile",
    "/etc/systemd/system/",
    "/lib/systemd/system/",
    "/usr/lib/systemd/system/",
    "/etc/rc.local",
    "/etc/rc.d/",
    "/etc/init.d/",
    "/etc/update-motd.d/",
    // security configuration: its modification weakens the node
    "/etc/ssh/",
    "/etc/pam.d/",
    "/etc/selinux/",
    "/etc/apparmor.d/",
    "/etc/audit/",
    "/etc/security/",
    "/etc/sysctl",
    "/etc/docker/",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/var/log/",
];

/// 8 MiB: at 100,000 path records per second (about 640 bytes each) the reader may fall about
/// 130 ms behind before records drop; it costs 16 MiB of the sensor's RSS (mapped twice).
pub const DEFAULT_RING_BUFFER_BYTES: u32 = 8 * 1024 * 1024;

/// How the kernel programs are set up.
#[derive(Debug, Clone)]
pub struct KernelConfig {
    /// Opens (read or write) and unlinks of these prefixes are reported; see
    /// [`DEFAULT_SENSITIVE_PREFIXES`] for the pattern syntax.
    pub sensitive_prefixes: Vec<String>,
    /// Prefixes reported only for opens for writing and unlinks.
    pub sensitive_write_prefixes: Vec<String>,
    /// Ring buffer size in bytes: a power of two, at least one page (default 8 MiB). The data
    /// pages are mapped twice into the reader, so the sensor's RSS holds twice this size.
    pub ring_buffer_bytes: u32,
    /// At most this many arguments per exec are kept (the rest sets `args_truncated`).
    pub max_args: u32,
    /// Each argument is cut to this many bytes.
    pub max_arg_bytes: u32,
    /// Datagrams to this UDP port are reported as DNS queries (default 53).
    pub dns_port: u16,
    /// Attach the `sys_exit` program (default true): it yields `Accept` records and the
    /// written-inode marks behind `exe_written`. Every syscall then runs two small programs
    /// instead of one; turning it off lowers the per-syscall cost (see benches/kernel.rs) and
    /// reports `accept` and `write_tracking` as unavailable.
    pub trace_syscall_exit: bool,
    /// Wake the reader only when 1/16 of the ring waits (default true); below that, records
    /// wait for the reader's next poll (its timeout bounds their delay). Off: a wake-up per
    /// record, the lowest latency and a context switch for each.
    pub batch_wakeups: bool,
}

/// With [`KernelConfig::batch_wakeups`], the reader is woken when this fraction of the ring
/// holds records.
const WAKEUP_FRACTION: u32 = 16;

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            sensitive_prefixes: DEFAULT_SENSITIVE_PREFIXES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            sensitive_write_prefixes: DEFAULT_SENSITIVE_WRITE_PREFIXES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ring_buffer_bytes: DEFAULT_RING_BUFFER_BYTES,
            max_args: 64,
            max_arg_bytes: 256,
            dns_port: 53,
            trace_syscall_exit: true,
            batch_wakeups: true,
        }
    }
}

/// Why the sensor could not start or read. [`KernelError::exit_code`] maps each to the CLI's exit
/// code (3 = BPF not permitted or kernel unsupported).
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The process may not load BPF programs.
    #[error(
        "BPF is not permitted ({detail}): run the sensor as root, or grant it CAP_BPF, CAP_PERFMON \
         and CAP_SYS_RESOURCE (in Kubernetes: securityContext.capabilities.add) and make sure no \
         seccomp profile or LSM blocks the bpf() system call"
    )]
    NotPermitted { detail: String },
    /// The kernel lacks something the programs need (BTF, a tracepoint).
    #[error("this kernel cannot run the sensor: {reason}")]
    Unsupported { reason: String },
    /// The configuration is invalid (bad prefix pattern, ring size).
    #[error("invalid kernel sensor configuration: {reason}")]
    Config { reason: String },
    /// Loading, configuring or attaching the programs failed for another reason.
    #[error("loading the eBPF programs failed while {stage}: {source}")]
    Load {
        stage: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    /// Reading the ring buffer failed.
    #[error("reading the kernel ring buffer failed: {source}")]
    Poll {
        #[source]
        source: libbpf_rs::Error,
    },
}

impl KernelError {
    /// Exit code for the CLI: 3 when BPF is not permitted or the kernel is unsupported, 2 for a
    /// configuration error, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            KernelError::NotPermitted { .. } | KernelError::Unsupported { .. } => 3,
            KernelError::Config { .. } => 2,
            KernelError::Load { .. } | KernelError::Poll { .. } => 1,
        }
    }

    fn load(stage: &'static str, source: libbpf_rs::Error) -> KernelError {
        if source.kind() == ErrorKind::PermissionDenied {
            KernelError::NotPermitted {
                detail: format!("{stage}: {source}"),
            }
        } else {
            KernelError::Load { stage, source }
        }
    }
}

/// Whether one signal is being collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeState {
    Attached,
    /// Not collected on this kernel; `reason` says why.
    Unavailable {
        reason: String,
    },
    /// Nothing to collect: the kernel cannot do what the signal watches (module loads on a
    /// kernel without loadable modules). Not a fault.
    NotApplicable {
        reason: String,
    },
}

/// One signal the sensor collects and the program that collects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeStatus {
    /// The record kind or signal: "exec", "open", "module", "write_tracking", …
    pub name: &'static str,
    /// The BPF program and its attach point.
    pub program: &'static str,
    pub state: ProbeState,
}

impl ProbeStatus {
    pub fn attached(&self) -> bool {
        self.state == ProbeState::Attached
    }
}

/// Everything the kernel side counted. All of it is meant for export as metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Records decoded and delivered, by kind.
    pub records_by_kind: BTreeMap<&'static str, u64>,
    /// Records delivered in total.
    pub records: u64,
    /// Ring-buffer reserve failures (records lost because the buffer was full), by kind.
    pub ring_drops_by_kind: BTreeMap<&'static str, u64>,
    /// Ring-buffer reserve failures, total.
    pub ring_drops: u64,
    /// Ring-buffer reserve failures per CPU (index = CPU number).
    pub ring_drops_per_cpu: Vec<u64>,
    /// Calls the in-kernel filter looked at and rejected, by kind (opens of non-sensitive paths,
    /// clone without new namespaces, chmod without an added execute bit, …).
    pub filtered_by_kind: BTreeMap<&'static str, u64>,
    /// Records that could not be decoded (counted, then skipped).
    pub decode_errors: u64,
}

/// Where decoded records wait between the ring-buffer callback and [`KernelSensor::poll`].
#[derive(Default)]
struct Inbox {
    queue: VecDeque<KernelEvent>,
    by_kind: [u64; KIND_NAMES.len()],
    decode_errors: u64,
}

/// The loaded and attached programs. Dropping it detaches everything.
pub struct KernelSensor {
    // drop order: ring buffer, links, then the object that owns maps and programs
    ring: RingBuffer<'static>,
    _links: Vec<Link>,
    object: Object,
    inbox: Rc<RefCell<Inbox>>,
    probes: Vec<ProbeStatus>,
}

/// Records read from the ring per batch in [`KernelSensor::poll`].
pub const POLL_BATCH: usize = 1024;
/// At most this many records are delivered by one [`KernelSensor::poll`] call.
pub const POLL_MAX: usize = 65536;

const CNT_FILTERED: u32 = 16;
const CNT_SLOTS: u32 = 32;

/// Programs in the object: (program name, attach point, mandatory).
const PROGRAMS: &[(&str, &str, bool)] = &[
    ("handle_exec", "tp_btf/sched_process_exec", true),
    ("handle_exit", "tp_btf/sched_process_exit", false),
    ("handle_sys_enter", "tp_btf/sys_enter", false),
    ("handle_sys_exit", "tp_btf/sys_exit", false),
];

/// The signals and the program behind each.
const SIGNALS: &[(&str, &str)] = &[
    ("exec", "handle_exec"),
    ("exit", "handle_exit"),
    ("open", "handle_sys_enter"),
    ("unlink", "handle_sys_enter"),
    ("chmod", "handle_sys_enter"),
    ("connect", "handle_sys_enter"),
    ("dns", "handle_sys_enter"),
    ("ptrace", "handle_sys_enter"),
    ("namespace", "handle_sys_enter"),
    ("mount", "handle_sys_enter"),
    ("memfd", "handle_sys_enter"),
    ("module", "handle_sys_enter"),
    ("accept", "handle_sys_exit"),
    ("write_tracking", "handle_sys_exit"),
];

fn attach_point(program: &str) -> &'static str {
    PROGRAMS
        .iter()
        .find(|(n, _, _)| *n == program)
        .map(|(_, a, _)| *a)
        .unwrap_or("unknown")
}

/// Effective capabilities of this process from /proc/self/status.
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

const CAP_SYS_ADMIN: u64 = 21;
const CAP_PERFMON: u64 = 38;
const CAP_BPF: u64 = 39;

fn check_permitted() -> Result<(), KernelError> {
    if let Some(caps) = effective_caps() {
        let has = |c: u64| caps & (1 << c) != 0;
        let permitted = has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON));
        if !permitted {
            return Err(KernelError::NotPermitted {
                detail: format!(
                    "effective capabilities {caps:#x} have neither CAP_SYS_ADMIN nor CAP_BPF+CAP_PERFMON"
                ),
            });
        }
    }
    Ok(())
}

fn modules_supported() -> bool {
    Path::new("/proc/modules").exists()
}

impl KernelSensor {
    /// Loads the programs, fills the filter maps and attaches. Fails with
    /// [`KernelError::NotPermitted`] without the needed capabilities and with
    /// [`KernelError::Unsupported`] without kernel BTF; a program other than exec that cannot
    /// attach is reported as unavailable in [`KernelSensor::probes`] instead of failing.
    pub fn start(config: &KernelConfig) -> Result<KernelSensor, KernelError> {
        let ring = config.ring_buffer_bytes;
        if !ring.is_power_of_two() || ring < 4096 {
            return Err(KernelError::Config {
                reason: format!("ring_buffer_bytes {ring} must be a power of two of at least 4096"),
            });
        }
        if config.max_args == 0 || config.max_arg_bytes == 0 {
            return Err(KernelError::Config {
                reason: "max_args and max_arg_bytes must be positive".into(),
            });
        }
        let compiled =
            prefix::compile(&config.sensitive_prefixes, &config.sensitive_write_prefixes).map_err(
                |e| KernelError::Config {
                    reason: e.to_string(),
                },
            )?;
        check_permitted()?;
        if !Path::new("/sys/kernel/btf/vmlinux").exists() {
            return Err(KernelError::Unsupported {
                reason: "kernel BTF (/sys/kernel/btf/vmlinux) is missing: the sensor needs a kernel built \
                         with CONFIG_DEBUG_INFO_BTF=y (5.8 or newer)"
                    .into(),
            });
        }

        // libelf wants the object in aligned memory: copy it out of the binary's rodata
        let image: Vec<u8> = BPF_OBJECT.to_vec();
        let mut open = ObjectBuilder::default()
            .open_memory(&image)
            .map_err(|e| KernelError::load("opening the BPF object", e))?;
        if !config.trace_syscall_exit {
            for mut prog in open.progs_mut() {
                if prog.name() == "handle_sys_exit" {
                    prog.set_autoload(false);
                }
            }
        }
        for mut map in open.maps_mut() {
            if map.name() == "events" {
                map.set_max_entries(ring)
                    .map_err(|e| KernelError::load("sizing the ring buffer", e))?;
            }
        }
        let object = open
            .load()
            .map_err(|e| KernelError::load("loading the programs into the kernel", e))?;

        let modules = modules_supported();
        // The kernel copies the argument area in one read of at most 4095 bytes (a per-argument
        // loop would cost more than it saves); count and per-argument limits apply when decoding.
        let args_cap: u32 = 4095;
        let wakeup_bytes = if config.batch_wakeups {
            ring / WAKEUP_FRACTION
        } else {
            0
        };
        let mut cfg = [0u8; 24];
        cfg[0..4].copy_from_slice(&std::process::id().to_le_bytes());
        cfg[4..8].copy_from_slice(&args_cap.to_le_bytes());
        cfg[8..12].copy_from_slice(&u32::from(config.dns_port).to_le_bytes());
        cfg[12..16].copy_from_slice(&u32::from(modules).to_le_bytes());
        cfg[16..20].copy_from_slice(&wakeup_bytes.to_le_bytes());
        for map in object.maps() {
            let name = map.name().to_string_lossy().into_owned();
            match name.as_str() {
                "sensor_cfg" => map
                    .update(&0u32.to_le_bytes(), &cfg, MapFlags::ANY)
                    .map_err(|e| KernelError::load("writing the configuration map", e))?,
                "prefixes" => {
                    for e in &compiled.prefixes {
                        map.update(&e.key_bytes(), &e.value_bytes(), MapFlags::ANY)
                            .map_err(|e| {
                                KernelError::load("filling the sensitive-prefix trie", e)
                            })?;
                    }
                }
                "rests" => {
                    for e in &compiled.rests {
                        map.update(&e.key_bytes(), &e.value_bytes(), MapFlags::ANY)
                            .map_err(|e| KernelError::load("filling the wildcard trie", e))?;
                    }
                }
                _ => {}
            }
        }

        let mut links = Vec::new();
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        let mut disabled: Vec<String> = Vec::new();
        for prog in object.progs_mut() {
            let name = prog.name().to_string_lossy().into_owned();
            if name == "handle_sys_exit" && !config.trace_syscall_exit {
                disabled.push(name);
                continue;
            }
            let mandatory = PROGRAMS.iter().any(|(n, _, m)| *n == name && *m);
            match prog.attach() {
                Ok(link) => links.push(link),
                Err(e) if mandatory => {
                    return Err(KernelError::load("attaching the exec tracepoint", e));
                }
                Err(e) => {
                    tracing::warn!(program = %name, error = %e, "eBPF program did not attach; its signals are unavailable");
                    failed.insert(name, e.to_string());
                }
            }
        }
        let probes = SIGNALS
            .iter()
            .map(|(signal, program)| {
                let state = if disabled.iter().any(|d| d == program) {
                    ProbeState::Unavailable {
                        reason: "disabled by configuration (trace_syscall_exit = false)".into(),
                    }
                } else if let Some(err) = failed.get(*program) {
                    ProbeState::Unavailable { reason: format!("{} did not attach: {err}", attach_point(program)) }
                } else if *signal == "module" && !modules {
                    ProbeState::NotApplicable {
                        reason: "the kernel has no loadable-module support (CONFIG_MODULES off, no /proc/modules)".into(),
                    }
                } else {
                    ProbeState::Attached
                };
                ProbeStatus { name: signal, program: attach_point(program), state }
            })
            .collect();

        let inbox = Rc::new(RefCell::new(Inbox::default()));
        let cb_inbox = Rc::clone(&inbox);
        let limits = ArgLimits {
            max_args: config.max_args as usize,
            max_arg_bytes: config.max_arg_bytes as usize,
        };
        let events = object
            .maps()
            .find(|m| m.name() == "events")
            .ok_or_else(|| KernelError::Unsupported {
                reason: "the BPF object has no `events` ring buffer".into(),
            })?;
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&events, move |data: &[u8]| {
                let mut inbox = cb_inbox.borrow_mut();
                match decode::decode(data, limits) {
                    Ok(ev) => {
                        let kind = decode::record_kind(data).unwrap_or(0) as usize;
                        if let Some(c) = inbox.by_kind.get_mut(kind) {
                            *c += 1;
                        }
                        inbox.queue.push_back(ev);
                    }
                    Err(_) => inbox.decode_errors += 1,
                }
                0
            })
            .map_err(|e| KernelError::load("opening the ring buffer", e))?;
        let ring = builder
            .build()
            .map_err(|e| KernelError::load("opening the ring buffer", e))?;
        Ok(KernelSensor {
            ring,
            _links: links,
            object,
            inbox,
            probes,
        })
    }

    /// Waits up to `timeout` for records, hands each decoded record to `sink` and returns how
    /// many were delivered. A signal interrupting the wait is not an error.
    ///
    /// Records are taken from the ring in batches of [`POLL_BATCH`] and handed over before the
    /// next batch is read, so userspace memory stays bounded however fast the kernel produces;
    /// one call delivers at most [`POLL_MAX`] records so the caller regains control in a storm.
    pub fn poll(
        &mut self,
        timeout: Duration,
        sink: &mut dyn FnMut(KernelEvent),
    ) -> Result<usize, KernelError> {
        let mut n = self.deliver(sink);
        let mut got = self.consume_batch()?;
        if got == 0 && n == 0 {
            self.wait(timeout)?;
            got = self.consume_batch()?;
        }
        loop {
            n += self.deliver(sink);
            if got == 0 || n >= POLL_MAX {
                break;
            }
            got = self.consume_batch()?;
        }
        Ok(n)
    }

    fn deliver(&mut self, sink: &mut dyn FnMut(KernelEvent)) -> usize {
        let mut n = 0;
        loop {
            // one at a time: the sink may take long and must not hold the inbox borrow
            let next = self.inbox.borrow_mut().queue.pop_front();
            let Some(ev) = next else { break };
            sink(ev);
            n += 1;
        }
        n
    }

    fn consume_batch(&self) -> Result<usize, KernelError> {
        let rc = self.ring.consume_raw_n(POLL_BATCH);
        if rc < 0 {
            if rc == -libc::EINTR {
                return Ok(0);
            }
            return Err(KernelError::Poll {
                source: libbpf_rs::Error::from_raw_os_error(-rc),
            });
        }
        Ok(rc as usize)
    }

    /// Sleeps until the ring has data (or the timeout), without consuming anything.
    fn wait(&self, timeout: Duration) -> Result<(), KernelError> {
        let fd = self.ring.epoll_fd();
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: `fd` is the ring buffer's epoll fd, owned by `self.ring` and open while it
        // lives; `ev` is a valid buffer for one event.
        let rc = unsafe { libc::epoll_wait(fd, &mut ev, 1, ms) };
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(KernelError::Poll {
                source: libbpf_rs::Error::from(err),
            });
        }
        Ok(())
    }

    /// Counters from the kernel (per-CPU drops and filter rejections) and from decoding.
    pub fn counters(&self) -> KernelCounters {
        let mut c = KernelCounters::default();
        {
            let inbox = self.inbox.borrow();
            for (kind, n) in inbox.by_kind.iter().enumerate() {
                if *n > 0 {
                    c.records_by_kind.insert(KIND_NAMES[kind], *n);
                    c.records += n;
                }
            }
            c.decode_errors = inbox.decode_errors;
        }
        let Some(map) = self.object.maps().find(|m| m.name() == "counters") else {
            return c;
        };
        for slot in 0..CNT_SLOTS {
            let Ok(Some(per_cpu)) = map.lookup_percpu(&slot.to_le_bytes(), MapFlags::ANY) else {
                continue;
            };
            let values: Vec<u64> = per_cpu
                .iter()
                .map(|v| {
                    v.get(0..8)
                        .and_then(|b| b.try_into().ok())
                        .map(u64::from_le_bytes)
                        .unwrap_or(0)
                })
                .collect();
            let total: u64 = values.iter().sum();
            let (kind, filtered) = if slot >= CNT_FILTERED {
                ((slot - CNT_FILTERED) as usize, true)
            } else {
                (slot as usize, false)
            };
            let Some(name) = KIND_NAMES.get(kind) else {
                continue;
            };
            if filtered {
                if total > 0 {
                    c.filtered_by_kind.insert(name, total);
                }
            } else {
                if c.ring_drops_per_cpu.len() < values.len() {
                    c.ring_drops_per_cpu.resize(values.len(), 0);
                }
                for (cpu, v) in values.iter().enumerate() {
                    c.ring_drops_per_cpu[cpu] += v;
                }
                if total > 0 {
                    c.ring_drops_by_kind.insert(name, total);
                    c.ring_drops += total;
                }
            }
        }
        c
    }

    /// Each signal and whether it is collected on this kernel.
    pub fn probes(&self) -> Vec<ProbeStatus> {
        self.probes.clone()
    }
}

/// Now on `clock`, in nanoseconds (0 if the clock cannot be read).
fn now(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; both clocks always exist on Linux.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec)
}

/// Now on the kernel's boot clock (CLOCK_BOOTTIME), the clock of `time_boot_ns`.
pub fn boot_clock_nanos() -> u64 {
    now(libc::CLOCK_BOOTTIME).max(0) as u64
}

/// Nanoseconds to add to a CLOCK_BOOTTIME timestamp (`time_boot_ns`) to get Unix time.
pub fn boot_to_unix_offset_nanos() -> i64 {
    // read boot time between two realtime reads to bound the error by the gap
    let r1 = now(libc::CLOCK_REALTIME);
    let b = now(libc::CLOCK_BOOTTIME);
    let r2 = now(libc::CLOCK_REALTIME);
    r1 + (r2 - r1) / 2 - b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_patterns_compile() {
        let c = KernelConfig::default();
        prefix::compile(&c.sensitive_prefixes, &c.sensitive_write_prefixes)
            .expect("defaults compile");
    }

    #[test]
    fn bad_config_is_a_config_error_with_exit_code_2() {
        let cfg = KernelConfig {
            ring_buffer_bytes: 1000,
            ..KernelConfig::default()
        };
        let Err(e) = KernelSensor::start(&cfg) else {
            panic!("accepted a bad ring size")
        };
        assert_eq!(e.exit_code(), 2, "{e}");
        let cfg = KernelConfig {
            sensitive_prefixes: vec!["relative/path".into()],
            ..KernelConfig::default()
        };
        let Err(e) = KernelSensor::start(&cfg) else {
            panic!("accepted a relative pattern")
        };
        assert!(e.to_string().contains("relative/path"), "{e}");
    }

    #[test]
    fn not_permitted_message_says_what_to_grant() {
        let e = KernelError::NotPermitted { detail: "x".into() };
        assert_eq!(e.exit_code(), 3);
        let msg = e.to_string();
        assert!(
            msg.contains("CAP_BPF") && msg.contains("CAP_PERFMON") && msg.contains("root"),
            "{msg}"
        );
    }

    #[test]
    fn boot_offset_is_plausible() {
        let off = boot_to_unix_offset_nanos();
        // boot time is after 2020 and before now
        assert!(off > 1_577_836_800_000_000_000, "{off}");
    }
}
