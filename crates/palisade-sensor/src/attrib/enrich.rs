//! [`Enricher`]: one `KernelEvent` in, one `NodeEvent` out, with everything the sensor can say
//! about it: Unix time, the process's executable and command line, its parent and ancestors,
//! capability names, stdio kinds, binary drift, the container and pod, and the decoded payload.
//!
//! Binary drift (`process.exe_drift`): the executable was written after the workload started.
//! For a container, "started" is the pod resolver's start time of the container, or else the
//! start of the oldest process in the container's cgroup; a write by a process of the same
//! container, or an executable on the overlay upper layer, is drift by definition. For a host
//! process, "started" is the sensor's start (the kernel only remembers writes since then).

use super::cgroup::{Attributor, CgroupCounters, CgroupEntry, detect_cgroup2_mount};
use super::decode;
use super::pods::{PodCache, PodCacheCounters};
use super::proctable::{ProcessCounters, ProcessEntry, ProcessTable, process_start_boot_ns};
use super::{AttribConfig, AttribError};
use crate::kernel::event::{ExecRecord, KernelEvent, KernelPayload};
use palisade_detect::node::{
    ContainerInfo, DnsInfo, FileInfo, MemfdInfo, ModuleInfo, MountInfo, NamespaceInfo, NetInfo,
    NodeEvent, NodeEventKind, ParentInfo, ProcessInfo, PtraceInfo,
};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

/// Counters of attribution, for the sensor's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttribCounters {
    pub events: u64,
    /// Events attributed to a container / to the host / to a cgroup that could not be placed.
    pub container_events: u64,
    pub host_events: u64,
    pub unknown_cgroup_events: u64,
    /// Container events whose container the pod cache knew, and those it did not.
    pub pod_hits: u64,
    pub pod_misses: u64,
    /// DNS payloads without a readable question (the event is still emitted, query empty).
    pub dns_parse_errors: u64,
    pub cgroups: CgroupCounters,
    pub processes: ProcessCounters,
    pub pods: PodCacheCounters,
}

/// Container start times cached at most.
const MAX_START_CACHE: usize = 4096;
/// Processes of a cgroup read to find its oldest.
const MAX_CGROUP_PROCS: usize = 4096;

/// Turns kernel records into node events (see the module documentation).
pub struct Enricher {
    node: String,
    cluster: Option<String>,
    id_prefix: String,
    sequence: u64,
    boot_to_unix: i64,
    sensor_start_boot_ns: u64,
    max_ancestors: usize,
    proc_root: PathBuf,
    attributor: Attributor,
    pods: PodCache,
    processes: ProcessTable,
    /// container id → boot-clock start of the oldest process in its cgroup.
    container_starts: HashMap<String, Option<u64>>,
    /// The last capability mask decoded and its names: most events of a node share a handful
    /// of masks, so this saves building the same list for every event.
    last_caps: (u64, Vec<String>),
    counters: AttribCounters,
}

impl Enricher {
    /// An enricher for this node. Detects the cgroup2 mount when the configuration leaves it
    /// empty, and seeds the process table from `/proc`.
    pub fn new(config: AttribConfig, pods: PodCache) -> Result<Enricher, AttribError> {
        let cgroup_root = if config.cgroup_root.as_os_str().is_empty() {
            detect_cgroup2_mount()?
        } else {
            config.cgroup_root.clone()
        };
        if !cgroup_root.join("cgroup.procs").exists() {
            return Err(AttribError::NotCgroup2(cgroup_root.display().to_string()));
        }
        let boot_id_path = config.proc_root.join("sys/kernel/random/boot_id");
        let boot_id =
            std::fs::read_to_string(&boot_id_path).map_err(|source| AttribError::Read {
                path: boot_id_path.display().to_string(),
                source,
            })?;
        let now_boot = boot_clock_nanos();
        let sensor_start_boot_ns = config.sensor_start_boot_ns.unwrap_or(now_boot);
        let boot_to_unix = config
            .boot_to_unix_nanos
            .unwrap_or_else(crate::kernel::boot_to_unix_offset_nanos);
        let boot_prefix: String = boot_id
            .trim()
            .chars()
            .filter(|c| *c != '-')
            .take(8)
            .collect();
        // The sensor's start (ms since boot) keeps ids unique across restarts within one boot.
        let id_prefix = format!(
            "{}-{boot_prefix}-{:x}",
            config.node_name,
            sensor_start_boot_ns / 1_000_000
        );
        let mut processes = ProcessTable::new(config.proc_root.clone(), config.max_processes);
        if config.seed_processes {
            processes.seed();
        }
        Ok(Enricher {
            node: config.node_name,
            cluster: config.cluster,
            id_prefix,
            sequence: 0,
            boot_to_unix,
            sensor_start_boot_ns,
            max_ancestors: config.max_ancestors,
            attributor: Attributor::new(
                cgroup_root,
                config.proc_root.clone(),
                config.max_cgroups,
                config.cgroup_walk_interval,
            ),
            proc_root: config.proc_root,
            pods,
            processes,
            container_starts: HashMap::new(),
            last_caps: (0, Vec::new()),
            counters: AttribCounters::default(),
        })
    }

    /// The cgroup2 mount in use.
    pub fn cgroup_root(&self) -> &std::path::Path {
        self.attributor.root()
    }

    /// Counters so far.
    pub fn counters(&self) -> AttribCounters {
        AttribCounters {
            cgroups: self.attributor.counters(),
            processes: self.processes.counters(),
            pods: self.pods.counters(),
            ..self.counters
        }
    }

    /// One node event for one kernel record; never fails (what cannot be known stays empty).
    pub fn enrich(&mut self, event: KernelEvent) -> NodeEvent {
        self.sequence += 1;
        self.counters.events += 1;
        let KernelEvent {
            time_boot_ns,
            cgroup_id,
            pid,
            tid,
            ppid,
            uid,
            gid,
            euid,
            comm,
            pid_ns,
            mnt_ns,
            cap_effective,
            payload,
        } = event;
        let mut out = NodeEvent {
            id: format!("{}-{}", self.id_prefix, self.sequence),
            time_nanos: (time_boot_ns as i64).saturating_add(self.boot_to_unix),
            node: self.node.clone(),
            cluster: self.cluster.clone(),
            ..NodeEvent::default()
        };
        let ppid = match &payload {
            KernelPayload::Exec(exec) if exec.parent_pid != 0 => exec.parent_pid,
            _ => ppid,
        };
        out.process = ProcessInfo {
            pid,
            tid,
            ppid,
            uid,
            gid,
            euid,
            comm,
            cap_effective,
            capabilities: self.capabilities(cap_effective),
            cgroup_id,
            pid_ns,
            mnt_ns,
            ..ProcessInfo::default()
        };
        let cgroup = self.attributor.resolve(cgroup_id, pid);
        out.container = cgroup.as_ref().and_then(|c| self.container_info(c));
        match (&cgroup, &out.container) {
            (Some(_), Some(_)) => self.counters.container_events += 1,
            (Some(_), None) => {
                self.counters.host_events += 1;
                out.host = true;
            }
            (None, _) => self.counters.unknown_cgroup_events += 1,
        }
        self.fill_parent(&mut out.process, ppid);

        match payload {
            KernelPayload::Exec(exec) => {
                out.kind = NodeEventKind::Exec;
                self.fill_exec(&mut out, time_boot_ns, cgroup.as_ref(), exec);
            }
            other => {
                if let Some(entry) = self.processes.get(pid) {
                    out.process.exe = entry.exe;
                    out.process.cmdline = entry.cmdline;
                }
                self.fill_payload(&mut out, other);
            }
        }
        out
    }

    fn capabilities(&mut self, mask: u64) -> Vec<String> {
        if self.last_caps.0 != mask {
            self.last_caps = (mask, decode::capability_names(mask));
        }
        self.last_caps.1.clone()
    }

    fn fill_parent(&mut self, process: &mut ProcessInfo, ppid: u32) {
        process.parent.pid = ppid;
        let Some(parent) = self.processes.get(ppid) else {
            return;
        };
        process.parent = ParentInfo {
            pid: ppid,
            comm: parent.comm,
            exe: parent.exe,
            cmdline: parent.cmdline,
        };
        let mut next = parent.ppid;
        let mut seen = vec![ppid];
        while next != 0 && process.ancestors.len() < self.max_ancestors && !seen.contains(&next) {
            seen.push(next);
            let Some(ancestor) = self.processes.get(next) else {
                break;
            };
            let name = if ancestor.exe.is_empty() {
                ancestor.comm.clone()
            } else {
                basename(&ancestor.exe).to_string()
            };
            process.ancestors.push(name);
            next = ancestor.ppid;
        }
    }

    fn fill_exec(
        &mut self,
        out: &mut NodeEvent,
        time_boot_ns: u64,
        cgroup: Option<&CgroupEntry>,
        exec: ExecRecord,
    ) {
        let pid = out.process.pid;
        if !exec.parent_comm.is_empty() {
            out.process.parent.comm = exec.parent_comm.clone();
        }
        let exe = if exec.filename.starts_with('/') || exec.filename.is_empty() {
            exec.filename.clone()
        } else {
            // A relative path (`./x`): the kernel's link from the live process is absolute.
            std::fs::read_link(self.proc_root.join(pid.to_string()).join("exe"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| exec.filename.clone())
        };
        let process = &mut out.process;
        process.exe = exe;
        process.cmdline = exec.args.join(" ");
        process.args = exec.args;
        process.args_truncated = exec.args_truncated;
        process.stdio = exec.stdio.iter().map(|k| k.as_str().to_string()).collect();
        process.exe_deleted = exec.exe_deleted;
        process.exe_memfd = exec.exe_memfd;
        process.exe_upper_layer = exec.exe_upper_layer;
        let in_container = out.container.is_some();
        let mut drift = in_container && exec.exe_upper_layer;
        if let Some(mark) = &exec.exe_written {
            process.exe_written_by = Some(mark.writer_comm.clone());
            process.exe_written_ms_ago = Some(mark.ns_before_exec / 1_000_000);
            let written_at = time_boot_ns.saturating_sub(mark.ns_before_exec);
            drift |= if in_container {
                let same_container =
                    mark.writer_cgroup_id != 0 && mark.writer_cgroup_id == process.cgroup_id;
                let started = self.container_start_boot_ns(out.container.as_ref(), cgroup);
                same_container || started.is_some_and(|s| written_at >= s)
            } else {
                written_at >= self.sensor_start_boot_ns
            };
        }
        out.process.exe_drift = drift;
        self.processes.exec(
            pid,
            ProcessEntry {
                ppid: out.process.ppid,
                comm: out.process.comm.clone(),
                exe: out.process.exe.clone(),
                cmdline: bounded(&out.process.cmdline),
            },
        );
    }

    /// When the container started, in boot-clock nanoseconds: the pod resolver's time, or the
    /// start of the oldest process in its cgroup (cached per cgroup).
    fn container_start_boot_ns(
        &mut self,
        container: Option<&ContainerInfo>,
        cgroup: Option<&CgroupEntry>,
    ) -> Option<u64> {
        if let Some(started) = container.and_then(|c| c.started_nanos) {
            return u64::try_from(started.saturating_sub(self.boot_to_unix)).ok();
        }
        let cgroup = cgroup?;
        let key = container.map(|c| c.id.clone()).unwrap_or_default();
        if let Some(cached) = self.container_starts.get(&key) {
            return *cached;
        }
        let procs = std::fs::read_to_string(
            self.attributor
                .root()
                .join(cgroup.path.trim_start_matches('/'))
                .join("cgroup.procs"),
        )
        .unwrap_or_default();
        let oldest = procs
            .lines()
            .take(MAX_CGROUP_PROCS)
            .filter_map(|l| l.trim().parse::<u32>().ok())
            .filter_map(|p| process_start_boot_ns(&self.proc_root, p))
            .min();
        if self.container_starts.len() >= MAX_START_CACHE {
            self.container_starts.clear();
        }
        self.container_starts.insert(key, oldest);
        oldest
    }

    fn container_info(&mut self, cgroup: &CgroupEntry) -> Option<ContainerInfo> {
        let (runtime, id) = cgroup.attribution.container.as_ref()?;
        let mut info = ContainerInfo {
            id: id.clone(),
            runtime: runtime.as_str().to_string(),
            pod_uid: cgroup.attribution.pod_uid.clone(),
            ..ContainerInfo::default()
        };
        if let Some((pod, container)) = self.pods.lookup_container(id) {
            self.counters.pod_hits += 1;
            info.name = Some(container.name);
            info.image = Some(container.image);
            info.image_id = container.image_id;
            info.privileged = Some(container.privileged);
            info.started_nanos = container.started_nanos;
            info.pod_name = Some(pod.name);
            info.pod_namespace = Some(pod.namespace);
            info.pod_uid = Some(pod.uid);
        } else {
            self.counters.pod_misses += 1;
            if let Some(pod) = info
                .pod_uid
                .as_deref()
                .and_then(|u| self.pods.lookup_pod(u))
            {
                info.pod_name = Some(pod.name);
                info.pod_namespace = Some(pod.namespace);
            }
        }
        Some(info)
    }

    fn fill_payload(&mut self, out: &mut NodeEvent, payload: KernelPayload) {
        match payload {
            KernelPayload::Exec(_) => {}
            KernelPayload::Exit { exit_code: _ } => {
                out.kind = NodeEventKind::Exit;
                self.processes.exit(out.process.pid);
            }
            KernelPayload::Connect(socket) => {
                out.kind = NodeEventKind::Connect;
                out.net = Some(Box::new(net_info(&socket, "outbound")));
            }
            KernelPayload::Accept(socket) => {
                out.kind = NodeEventKind::Accept;
                out.net = Some(Box::new(net_info(&socket, "inbound")));
            }
            KernelPayload::Dns {
                server,
                server_port: _,
                payload,
            } => {
                out.kind = NodeEventKind::Dns;
                let (query, qtype) = match decode::parse_dns_payload(&payload) {
                    Ok(q) => (q.name, decode::dns_type_name(q.qtype)),
                    Err(_) => {
                        self.counters.dns_parse_errors += 1;
                        (String::new(), String::new())
                    }
                };
                out.dns = Some(Box::new(DnsInfo {
                    query,
                    qtype,
                    server: canonical(server).to_string(),
                }));
            }
            KernelPayload::Open { path, flags } => {
                out.kind = NodeEventKind::Open;
                out.file = Some(Box::new(FileInfo {
                    path,
                    flags,
                    access: decode::open_access(flags).to_string(),
                    ..FileInfo::default()
                }));
            }
            KernelPayload::Unlink { path } => {
                out.kind = NodeEventKind::Unlink;
                out.file = Some(Box::new(FileInfo {
                    path,
                    access: "delete".to_string(),
                    ..FileInfo::default()
                }));
            }
            KernelPayload::Ptrace {
                request,
                target_pid,
            } => {
                out.kind = NodeEventKind::Ptrace;
                let target_comm = self
                    .processes
                    .get(target_pid)
                    .map(|p| p.comm)
                    .unwrap_or_default();
                out.ptrace = Some(Box::new(PtraceInfo {
                    request: decode::ptrace_request_name(request),
                    target_pid,
                    target_comm,
                }));
            }
            KernelPayload::Namespace { syscall, flags } => {
                out.kind = NodeEventKind::Namespace;
                out.namespace = Some(Box::new(NamespaceInfo {
                    syscall: syscall.to_string(),
                    types: decode::namespace_types(flags),
                    flags,
                }));
            }
            KernelPayload::Module { name, syscall } => {
                out.kind = NodeEventKind::Module;
                out.module = Some(Box::new(ModuleInfo {
                    name,
                    syscall: syscall.to_string(),
                }));
            }
            KernelPayload::Mount {
                source,
                target,
                fstype,
                flags,
            } => {
                out.kind = NodeEventKind::Mount;
                out.mount = Some(Box::new(MountInfo {
                    source,
                    target,
                    fstype,
                    flags,
                }));
            }
            KernelPayload::Memfd { name, flags } => {
                out.kind = NodeEventKind::Memfd;
                out.memfd = Some(Box::new(MemfdInfo { name, flags }));
            }
            KernelPayload::Chmod {
                path,
                mode,
                written_recently,
            } => {
                out.kind = NodeEventKind::Chmod;
                out.file = Some(Box::new(FileInfo {
                    path,
                    mode,
                    written_recently,
                    access: "chmod".to_string(),
                    ..FileInfo::default()
                }));
            }
        }
    }
}

fn net_info(socket: &crate::kernel::event::SocketRecord, direction: &str) -> NetInfo {
    let src = canonical(socket.src);
    let dst = canonical(socket.dst);
    NetInfo {
        family: if dst.is_ipv4() { "ipv4" } else { "ipv6" }.to_string(),
        protocol: match socket.protocol {
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            other => other.to_string(),
        },
        src_ip: src.to_string(),
        src_port: socket.src_port,
        dst_ip: dst.to_string(),
        dst_port: socket.dst_port,
        direction: direction.to_string(),
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:169.254.169.254` from a dual-stack socket) as IPv4, so
/// one rule on the IPv4 address covers both.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn bounded(cmdline: &str) -> String {
    if cmdline.len() <= super::proctable::MAX_CMDLINE {
        return cmdline.to_string();
    }
    let mut end = super::proctable::MAX_CMDLINE;
    while !cmdline.is_char_boundary(end) {
        end -= 1;
    }
    cmdline[..end].to_string()
}

pub use crate::kernel::boot_clock_nanos;
