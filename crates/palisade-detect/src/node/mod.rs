//! Node events: what the eBPF sensor saw a process do on a node, attributed to its container and
//! pod, in the shape rules read.
//!
//! The sensor (`palisade-sensor`) fills these from kernel records; rules name the fields by their
//! serialised (dotted) names, e.g. `process.exe`, `process.parent.comm`, `container.id`,
//! `net.dst_port`, `file.path`. Optional parts are absent when the event kind has no such part, so
//! `exists` tests tell event kinds apart as well as `event.type` does.

mod schema;

pub use schema::{NodeField, NodeSchema, field_paths};

use serde::{Deserialize, Serialize};

/// What kind of kernel activity one event records (the `event.type` field and the first index
/// dimension of node rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NodeEventKind {
    /// A successful execve/execveat: the new program image.
    #[default]
    Exec,
    /// A process (thread group) ended.
    Exit,
    /// An outbound connect() on an IPv4/IPv6 socket.
    Connect,
    /// An inbound connection accepted.
    Accept,
    /// A DNS query sent to port 53 (UDP or TCP), where the payload was visible.
    Dns,
    /// An open of a path under the sensitive prefix list.
    Open,
    /// An unlink of a path under the sensitive prefix list.
    Unlink,
    /// A ptrace attach/seize/poke on another process.
    Ptrace,
    /// unshare/setns/clone that created or joined namespaces.
    Namespace,
    /// A kernel module load.
    Module,
    /// A mount.
    Mount,
    /// memfd_create (an anonymous in-memory file, often a fileless-execution step).
    Memfd,
    /// chmod that adds an execute bit.
    Chmod,
}

impl NodeEventKind {
    /// The `event.type` string rules compare against.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeEventKind::Exec => "exec",
            NodeEventKind::Exit => "exit",
            NodeEventKind::Connect => "connect",
            NodeEventKind::Accept => "accept",
            NodeEventKind::Dns => "dns",
            NodeEventKind::Open => "open",
            NodeEventKind::Unlink => "unlink",
            NodeEventKind::Ptrace => "ptrace",
            NodeEventKind::Namespace => "namespace",
            NodeEventKind::Module => "module",
            NodeEventKind::Mount => "mount",
            NodeEventKind::Memfd => "memfd",
            NodeEventKind::Chmod => "chmod",
        }
    }
}

/// One node event.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeEvent {
    /// Unique per sensor run: `<node>-<boot id prefix>-<sequence>`.
    pub id: String,
    /// Nanoseconds since the Unix epoch (converted from the kernel's boot clock).
    pub time_nanos: i64,
    #[serde(rename = "event.type")]
    pub kind: NodeEventKind,
    /// The node (Kubernetes node name, or host name outside Kubernetes).
    pub node: String,
    pub cluster: Option<String>,
    pub process: ProcessInfo,
    /// The container the process runs in; `None` for host processes (`host` is then true).
    pub container: Option<ContainerInfo>,
    pub host: bool,
    // The kind's own part. Boxed: an event has at most one, and inline they made every event
    // about twice as large, which the rule engine paid for in cache misses on every read.
    pub file: Option<Box<FileInfo>>,
    pub net: Option<Box<NetInfo>>,
    pub dns: Option<Box<DnsInfo>>,
    pub namespace: Option<Box<NamespaceInfo>>,
    pub module: Option<Box<ModuleInfo>>,
    pub mount: Option<Box<MountInfo>>,
    pub memfd: Option<Box<MemfdInfo>>,
    pub ptrace: Option<Box<PtraceInfo>>,
}

/// The acting process (for exec: the new image).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessInfo {
    /// Thread-group id as seen from the host.
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    /// The kernel's 15-byte task name.
    pub comm: String,
    /// Full path of the executable (for exec: the path executed, resolved).
    pub exe: String,
    /// argv, bounded by the sensor (see `args_truncated`).
    pub args: Vec<String>,
    /// argv joined with single spaces (what command-line rules search).
    pub cmdline: String,
    pub args_truncated: bool,
    pub cwd: Option<String>,
    /// Effective capability bitmask.
    pub cap_effective: u64,
    /// Names of the effective capabilities (`CAP_SYS_ADMIN`, …); all of them for a privileged
    /// container.
    pub capabilities: Vec<String>,
    pub cgroup_id: u64,
    pub pid_ns: u32,
    pub mnt_ns: u32,
    /// stdin/stdout/stderr kinds: `file`, `pipe`, `tty`, `socket_inet`, `socket_unix`, `other`,
    /// `none`; [0] is stdin.
    pub stdio: Vec<String>,
    /// For exec: the executable has no name on disk (deleted, or a memfd).
    pub exe_deleted: bool,
    pub exe_memfd: bool,
    /// For exec: the executable was created or modified after the container (or, for host
    /// processes, the sensor) started: binary drift.
    pub exe_drift: bool,
    /// For exec: name (comm) of the process that last wrote the executable, when the sensor saw it.
    pub exe_written_by: Option<String>,
    /// For exec: milliseconds between that write and this exec.
    pub exe_written_ms_ago: Option<u64>,
    /// For exec: the executable lives on an overlay upper layer (added to the image at run time).
    pub exe_upper_layer: bool,
    pub parent: ParentInfo,
    /// Executable names (basenames) of the ancestors above the parent, nearest first, bounded.
    pub ancestors: Vec<String>,
}

/// The parent of the acting process.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ParentInfo {
    pub pid: u32,
    pub comm: String,
    pub exe: String,
    pub cmdline: String,
}

/// Where the process runs: container runtime, container and pod.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerInfo {
    /// Full container id (64 hex for containerd, CRI-O and Docker).
    pub id: String,
    /// `containerd`, `cri-o`, `docker`, `podman` or `unknown`.
    pub runtime: String,
    /// Container name inside the pod (from the pod resolver).
    pub name: Option<String>,
    pub image: Option<String>,
    pub image_id: Option<String>,
    pub pod_name: Option<String>,
    pub pod_namespace: Option<String>,
    pub pod_uid: Option<String>,
    /// The pod spec marks this container privileged.
    pub privileged: Option<bool>,
    /// When the container started (nanoseconds since the epoch), if known.
    pub started_nanos: Option<i64>,
}

/// A file touched by the process.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FileInfo {
    pub path: String,
    /// open(2) flags (`O_WRONLY`, `O_TRUNC`, … as a bitmask).
    pub flags: u32,
    /// Decoded intent: `read`, `write`, `truncate`, `create` (several may hold; this is the
    /// strongest).
    pub access: String,
    /// For chmod: the new mode.
    pub mode: u32,
    /// For chmod/exec: the file was written recently by a process the sensor saw.
    pub written_recently: bool,
}

/// A network connection.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NetInfo {
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// `tcp` or `udp`.
    pub protocol: String,
    pub src_ip: String,
    pub src_port: u16,
    pub dst_ip: String,
    pub dst_port: u16,
    /// `outbound` (connect) or `inbound` (accept).
    pub direction: String,
}

/// A DNS question.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsInfo {
    /// The queried name, lower case, no trailing dot.
    pub query: String,
    /// `A`, `AAAA`, `TXT`, … or the number.
    pub qtype: String,
    pub server: String,
}

/// Namespace creation or entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NamespaceInfo {
    /// `unshare`, `setns` or `clone`.
    pub syscall: String,
    /// The namespaces involved: `mnt`, `uts`, `ipc`, `user`, `pid`, `net`, `cgroup`, `time`.
    pub types: Vec<String>,
    pub flags: u64,
}

/// A kernel module load.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ModuleInfo {
    pub name: String,
    /// `init_module` or `finit_module`.
    pub syscall: String,
}

/// A mount.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MountInfo {
    pub source: String,
    pub target: String,
    pub fstype: String,
    pub flags: u64,
}

/// memfd_create.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MemfdInfo {
    pub name: String,
    pub flags: u32,
}

/// ptrace of another process.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PtraceInfo {
    /// `attach`, `seize`, `poketext`, `pokedata`, `pokeuser`, `setregs`, or the number.
    pub request: String,
    pub target_pid: u32,
    pub target_comm: String,
}
