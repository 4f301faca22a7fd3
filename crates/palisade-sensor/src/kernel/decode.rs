//! Ring-buffer records → [`KernelEvent`]. The byte layouts are defined in `src/bpf/sensor.h`,
//! whose `_Static_assert`s pin the offsets used here. Records come from our own kernel program,
//! but the decoder still treats them as untrusted bytes: every read is bounds-checked and a short
//! or unknown record is an error the caller counts, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::event::{ExecRecord, KernelEvent, KernelPayload, SocketRecord, StdioKind, WriteMark};

pub(crate) const HDR_LEN: usize = 80;
const COMM_LEN: usize = 16;
const PATH_LEN: usize = 256;

pub(crate) const EV_EXEC: u32 = 1;
pub(crate) const EV_EXIT: u32 = 2;
pub(crate) const EV_CONNECT: u32 = 3;
pub(crate) const EV_ACCEPT: u32 = 4;
pub(crate) const EV_DNS: u32 = 5;
pub(crate) const EV_OPEN: u32 = 6;
pub(crate) const EV_UNLINK: u32 = 7;
pub(crate) const EV_PTRACE: u32 = 8;
pub(crate) const EV_NAMESPACE: u32 = 9;
pub(crate) const EV_MODULE: u32 = 10;
pub(crate) const EV_MOUNT: u32 = 11;
pub(crate) const EV_MEMFD: u32 = 12;
pub(crate) const EV_CHMOD: u32 = 13;

/// Names of the record kinds, indexed by the kernel's kind number (0 is unused).
pub const KIND_NAMES: [&str; 14] = [
    "unknown",
    "exec",
    "exit",
    "connect",
    "accept",
    "dns",
    "open",
    "unlink",
    "ptrace",
    "namespace",
    "module",
    "mount",
    "memfd",
    "chmod",
];

const EXEC_F_DELETED: u32 = 1;
const EXEC_F_MEMFD: u32 = 2;
const EXEC_F_UPPER: u32 = 4;
const EXEC_F_WRITTEN: u32 = 8;
const EXEC_F_ARGS_TRUNC: u32 = 16;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than the {need} its kind {kind} needs")]
    Short { kind: u32, len: usize, need: usize },
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
}

/// Per-record limits applied in userspace on top of the kernel's byte cap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArgLimits {
    pub max_args: usize,
    pub max_arg_bytes: usize,
}

struct Rec<'a> {
    b: &'a [u8],
    kind: u32,
}

impl<'a> Rec<'a> {
    fn need(&self, end: usize) -> Result<(), DecodeError> {
        if self.b.len() < end {
            return Err(DecodeError::Short {
                kind: self.kind,
                len: self.b.len(),
                need: end,
            });
        }
        Ok(())
    }
    fn bytes(&self, off: usize, len: usize) -> Result<&'a [u8], DecodeError> {
        self.need(off + len)?;
        Ok(&self.b[off..off + len])
    }
    fn u16(&self, off: usize) -> Result<u16, DecodeError> {
        let s = self.bytes(off, 2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&self, off: usize) -> Result<u32, DecodeError> {
        let s = self.bytes(off, 4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&self, off: usize) -> Result<u64, DecodeError> {
        let s = self.bytes(off, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
    /// A NUL-terminated string in a fixed field; a field cut by the record end is read up to it.
    fn cstr(&self, off: usize, max: usize) -> Result<String, DecodeError> {
        self.need(off)?;
        let end = (off + max).min(self.b.len());
        Ok(cstr(&self.b[off..end]))
    }
}

fn cstr(b: &[u8]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

fn addr(family: u16, b: &[u8]) -> IpAddr {
    if family == 10 && b.len() >= 16 {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[..16]);
        IpAddr::V6(Ipv6Addr::from(a))
    } else if b.len() >= 4 {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

fn stdio_kind(v: u8) -> StdioKind {
    match v {
        0 => StdioKind::None,
        1 => StdioKind::File,
        2 => StdioKind::Pipe,
        3 => StdioKind::Tty,
        4 => StdioKind::SocketInet,
        5 => StdioKind::SocketUnix,
        _ => StdioKind::Other,
    }
}

/// Splits the NUL-separated argument area, applying the per-arg and count limits.
fn split_args(area: &[u8], limits: ArgLimits) -> (Vec<String>, bool) {
    let mut truncated = false;
    let mut args = Vec::new();
    let area = area.strip_suffix(&[0]).unwrap_or(area);
    if area.is_empty() {
        return (args, false);
    }
    for raw in area.split(|&c| c == 0) {
        if args.len() >= limits.max_args {
            truncated = true;
            break;
        }
        let raw = if raw.len() > limits.max_arg_bytes {
            truncated = true;
            &raw[..limits.max_arg_bytes]
        } else {
            raw
        };
        args.push(String::from_utf8_lossy(raw).into_owned());
    }
    (args, truncated)
}

/// The kind number of a record, if it has a header.
pub(crate) fn record_kind(b: &[u8]) -> Option<u32> {
    let s = b.get(24..28)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Decodes one ring-buffer record with the default argv limits: the entry point for fuzzing the
/// decoder with arbitrary bytes (a record the kernel wrote is trusted for layout, not content).
pub fn decode_record(b: &[u8]) -> Result<KernelEvent, DecodeError> {
    decode(
        b,
        ArgLimits {
            max_args: 256,
            max_arg_bytes: 4096,
        },
    )
}

/// Decodes one ring-buffer record.
pub(crate) fn decode(b: &[u8], limits: ArgLimits) -> Result<KernelEvent, DecodeError> {
    let kind = record_kind(b).unwrap_or(0);
    let r = Rec { b, kind };
    r.need(HDR_LEN)?;
    let payload = match kind {
        EV_EXEC => {
            r.need(408)?;
            let flags = r.u32(84)?;
            let args_len = r.u32(92)? as usize;
            let area = &b[408..(408 + args_len).min(b.len())];
            let (args, cut) = split_args(area, limits);
            let stdio = r.bytes(88, 3)?;
            let exe_written = if flags & EXEC_F_WRITTEN != 0 {
                Some(WriteMark {
                    writer_pid: r.u32(96)?,
                    writer_cgroup_id: r.u64(104)?,
                    ns_before_exec: r.u64(112)?,
                    writer_comm: r.cstr(120, COMM_LEN)?,
                })
            } else {
                None
            };
            KernelPayload::Exec(ExecRecord {
                filename: r.cstr(152, PATH_LEN)?,
                args,
                args_truncated: cut || flags & EXEC_F_ARGS_TRUNC != 0,
                stdio: [
                    stdio_kind(stdio[0]),
                    stdio_kind(stdio[1]),
                    stdio_kind(stdio[2]),
                ],
                exe_deleted: flags & EXEC_F_DELETED != 0,
                exe_memfd: flags & EXEC_F_MEMFD != 0,
                exe_upper_layer: flags & EXEC_F_UPPER != 0,
                exe_written,
                parent_pid: r.u32(80)?,
                parent_comm: r.cstr(136, COMM_LEN)?,
            })
        }
        EV_EXIT => KernelPayload::Exit {
            exit_code: r.u32(80)? as i32,
        },
        EV_CONNECT | EV_ACCEPT | EV_DNS => {
            r.need(120)?;
            let family = r.u16(80)?;
            let sock = SocketRecord {
                protocol: r.u16(82)? as u8,
                src_port: r.u16(84)?,
                dst_port: r.u16(86)?,
                src: addr(family, r.bytes(88, 16)?),
                dst: addr(family, r.bytes(104, 16)?),
            };
            match kind {
                EV_CONNECT => KernelPayload::Connect(sock),
                EV_ACCEPT => KernelPayload::Accept(sock),
                _ => {
                    let len = r.u32(120)? as usize;
                    let payload = r.bytes(128, len)?.to_vec();
                    KernelPayload::Dns {
                        server: sock.dst,
                        server_port: sock.dst_port,
                        payload,
                    }
                }
            }
        }
        EV_OPEN => KernelPayload::Open {
            path: r.cstr(88, PATH_LEN)?,
            flags: r.u32(80)?,
        },
        EV_UNLINK => KernelPayload::Unlink {
            path: r.cstr(88, PATH_LEN)?,
        },
        EV_CHMOD => KernelPayload::Chmod {
            path: r.cstr(88, PATH_LEN)?,
            mode: r.u32(80)?,
            written_recently: r.u32(84)? != 0,
        },
        EV_PTRACE => KernelPayload::Ptrace {
            request: r.u64(80)? as i64,
            target_pid: r.u32(88)?,
        },
        EV_NAMESPACE => KernelPayload::Namespace {
            flags: r.u64(80)?,
            syscall: match r.u32(88)? {
                1 => "unshare",
                2 => "setns",
                _ => "clone",
            },
        },
        EV_MODULE => KernelPayload::Module {
            syscall: if r.u32(80)? == 1 {
                "init_module"
            } else {
                "finit_module"
            },
            name: r.cstr(88, 64)?,
        },
        EV_MOUNT => {
            r.need(632)?;
            KernelPayload::Mount {
                flags: r.u64(80)?,
                source: r.cstr(88, PATH_LEN)?,
                target: r.cstr(344, PATH_LEN)?,
                fstype: r.cstr(600, 32)?,
            }
        }
        EV_MEMFD => KernelPayload::Memfd {
            flags: r.u32(80)?,
            name: r.cstr(88, 64)?,
        },
        other => return Err(DecodeError::UnknownKind(other)),
    };
    Ok(KernelEvent {
        time_boot_ns: r.u64(0)?,
        cgroup_id: r.u64(8)?,
        cap_effective: r.u64(16)?,
        pid: r.u32(32)?,
        tid: r.u32(36)?,
        ppid: r.u32(40)?,
        uid: r.u32(44)?,
        gid: r.u32(48)?,
        euid: r.u32(52)?,
        pid_ns: r.u32(56)?,
        mnt_ns: r.u32(60)?,
        comm: r.cstr(64, COMM_LEN)?,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ArgLimits = ArgLimits {
        max_args: 3,
        max_arg_bytes: 4,
    };

    fn hdr(kind: u32, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[0..8].copy_from_slice(&123u64.to_le_bytes());
        b[8..16].copy_from_slice(&77u64.to_le_bytes());
        b[24..28].copy_from_slice(&kind.to_le_bytes());
        b[32..36].copy_from_slice(&42u32.to_le_bytes());
        b[64..68].copy_from_slice(b"bash");
        b
    }

    #[test]
    fn exec_args_are_split_and_limited() {
        let args = b"ls\0-la\0/tmpdir\0x\0";
        let mut b = hdr(EV_EXEC, 408 + args.len());
        b[84..88].copy_from_slice(&(EXEC_F_MEMFD | EXEC_F_WRITTEN).to_le_bytes());
        b[88] = 4;
        b[89] = 4;
        b[90] = 3;
        b[92..96].copy_from_slice(&(args.len() as u32).to_le_bytes());
        b[96..100].copy_from_slice(&9u32.to_le_bytes());
        b[120..124].copy_from_slice(b"curl");
        b[152..159].copy_from_slice(b"/bin/ls");
        b[408..].copy_from_slice(args);
        let ev = decode(&b, LIMITS).expect("decodes");
        assert_eq!(ev.pid, 42);
        assert_eq!(ev.comm, "bash");
        assert_eq!(ev.cgroup_id, 77);
        let KernelPayload::Exec(x) = ev.payload else {
            panic!("not exec")
        };
        assert_eq!(x.filename, "/bin/ls");
        assert_eq!(x.args, vec!["ls", "-la", "/tmp"]);
        assert!(x.args_truncated);
        assert!(x.exe_memfd);
        assert!(!x.exe_deleted);
        assert_eq!(
            x.stdio,
            [StdioKind::SocketInet, StdioKind::SocketInet, StdioKind::Tty]
        );
        let w = x.exe_written.expect("write mark");
        assert_eq!((w.writer_pid, w.writer_comm.as_str()), (9, "curl"));
    }

    #[test]
    fn short_and_unknown_records_are_errors() {
        assert!(matches!(
            decode(&[0u8; 10], LIMITS),
            Err(DecodeError::Short { .. })
        ));
        assert!(matches!(
            decode(&hdr(EV_EXEC, 200), LIMITS),
            Err(DecodeError::Short { .. })
        ));
        assert_eq!(
            decode(&hdr(99, 100), LIMITS),
            Err(DecodeError::UnknownKind(99))
        );
        // a DNS record claiming more payload than it carries
        let mut b = hdr(EV_DNS, 130);
        b[120..124].copy_from_slice(&100u32.to_le_bytes());
        assert!(matches!(decode(&b, LIMITS), Err(DecodeError::Short { .. })));
    }

    #[test]
    fn sockets_decode_v4_and_v6() {
        let mut b = hdr(EV_CONNECT, 128);
        b[80..82].copy_from_slice(&2u16.to_le_bytes());
        b[82..84].copy_from_slice(&6u16.to_le_bytes());
        b[86..88].copy_from_slice(&80u16.to_le_bytes());
        b[104..108].copy_from_slice(&[169, 254, 169, 254]);
        let ev = decode(&b, LIMITS).expect("decodes");
        let KernelPayload::Connect(s) = ev.payload else {
            panic!("not connect")
        };
        assert_eq!(s.dst, "169.254.169.254".parse::<IpAddr>().expect("ip"));
        assert_eq!((s.protocol, s.dst_port), (6, 80));

        let mut b = hdr(EV_DNS, 128 + 3);
        b[80..82].copy_from_slice(&10u16.to_le_bytes());
        b[86..88].copy_from_slice(&53u16.to_le_bytes());
        b[119] = 1;
        b[120..124].copy_from_slice(&3u32.to_le_bytes());
        b[128..131].copy_from_slice(&[1, 2, 3]);
        let ev = decode(&b, LIMITS).expect("decodes");
        let KernelPayload::Dns {
            server,
            server_port,
            payload,
        } = ev.payload
        else {
            panic!("dns")
        };
        assert_eq!(server, "::1".parse::<IpAddr>().expect("ip"));
        assert_eq!((server_port, payload), (53, vec![1, 2, 3]));
    }

    #[test]
    fn empty_argv_has_no_args() {
        assert_eq!(split_args(b"", LIMITS), (vec![], false));
        assert_eq!(split_args(b"a\0", LIMITS), (vec!["a".to_string()], false));
    }
}
