//! Kernel records decoded into owned Rust values: the boundary between the eBPF side (part
//! kernel) and attribution/enrichment (part attrib). Nothing here knows about containers.

use std::net::IpAddr;

/// One record from the ring buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelEvent {
    /// `bpf_ktime_get_boot_ns()` at the event (CLOCK_BOOTTIME).
    pub time_boot_ns: u64,
    /// cgroup v2 id of the task (`bpf_get_current_cgroup_id`): the inode number of its cgroup
    /// directory in the cgroup2 mount.
    pub cgroup_id: u64,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub comm: String,
    /// Inode numbers of the task's pid and mount namespaces.
    pub pid_ns: u32,
    pub mnt_ns: u32,
    pub cap_effective: u64,
    pub payload: KernelPayload,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum KernelPayload {
    Exec(ExecRecord),
    Exit {
        exit_code: i32,
    },
    Connect(SocketRecord),
    Accept(SocketRecord),
    /// A UDP datagram to the DNS port (`KernelConfig::dns_port`, 53 by default): `payload` holds
    /// the start of the DNS message (header + question, at most 512 bytes), parsed in userspace.
    /// DNS over TCP is not captured.
    Dns {
        server: IpAddr,
        server_port: u16,
        payload: Vec<u8>,
    },
    Open {
        path: String,
        flags: u32,
    },
    Unlink {
        path: String,
    },
    Ptrace {
        request: i64,
        target_pid: u32,
    },
    /// `syscall`: "unshare", "setns" or "clone"; `flags`: the CLONE_NEW* bits.
    Namespace {
        syscall: &'static str,
        flags: u64,
    },
    /// `syscall`: "init_module" or "finit_module".
    Module {
        name: String,
        syscall: &'static str,
    },
    Mount {
        source: String,
        target: String,
        fstype: String,
        flags: u64,
    },
    Memfd {
        name: String,
        flags: u32,
    },
    Chmod {
        path: String,
        mode: u32,
        written_recently: bool,
    },
}

/// An exec as the kernel saw it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExecRecord {
    /// The path passed to execve (as resolved by the kernel's bprm->filename).
    pub filename: String,
    pub args: Vec<String>,
    pub args_truncated: bool,
    /// Kinds of fds 0, 1 and 2 at exec time.
    pub stdio: [StdioKind; 3],
    pub exe_deleted: bool,
    pub exe_memfd: bool,
    /// The executable's inode is on an overlayfs upper layer.
    pub exe_upper_layer: bool,
    /// The executable's inode was written (opened for write, created, or chmod +x) since the
    /// sensor started: who wrote it and how long before this exec.
    pub exe_written: Option<WriteMark>,
    pub parent_pid: u32,
    pub parent_comm: String,
}

/// A write the sensor recorded in its kernel map of recently written inodes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WriteMark {
    pub writer_comm: String,
    pub writer_pid: u32,
    pub ns_before_exec: u64,
    /// cgroup id of the writer.
    pub writer_cgroup_id: u64,
}

/// What an fd of the exec'ing process refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StdioKind {
    #[default]
    None,
    File,
    Pipe,
    Tty,
    SocketInet,
    SocketUnix,
    Other,
}

impl StdioKind {
    /// The string used in `process.stdio`.
    pub fn as_str(self) -> &'static str {
        match self {
            StdioKind::None => "none",
            StdioKind::File => "file",
            StdioKind::Pipe => "pipe",
            StdioKind::Tty => "tty",
            StdioKind::SocketInet => "socket_inet",
            StdioKind::SocketUnix => "socket_unix",
            StdioKind::Other => "other",
        }
    }
}

/// Both ends of a TCP/UDP socket.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketRecord {
    /// 6 = TCP, 17 = UDP.
    pub protocol: u8,
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
}
