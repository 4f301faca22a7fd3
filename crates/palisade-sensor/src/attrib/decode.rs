//! Pure decoders from kernel numbers and bytes to the strings rules read: capability names,
//! namespace types, ptrace requests, open(2) intent, and the question of a DNS message.
//!
//! The DNS decoder reads bytes an attacker controls (any process may send anything to port 53),
//! so it never indexes past the buffer, never follows a compression pointer forwards or more
//! than a few times, bounds the name to 255 bytes, and escapes every byte that is not printable
//! ASCII, so a crafted name cannot smuggle dots, spaces or control characters into a rule match.

/// Capability names by bit number (`include/uapi/linux/capability.h`).
const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Names of the capabilities set in an effective-capability mask, lowest bit first. Bits this
/// table does not know (a newer kernel) become `CAP_<bit>` rather than disappearing.
pub fn capability_names(mask: u64) -> Vec<String> {
    (0..64u32)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| match CAPABILITIES.get(bit as usize) {
            Some(name) => (*name).to_string(),
            None => format!("CAP_{bit}"),
        })
        .collect()
}

/// The CLONE_NEW* flags and the short names rules use for them.
const NAMESPACE_FLAGS: [(u64, &str); 8] = [
    (0x0002_0000, "mnt"),
    (0x0400_0000, "uts"),
    (0x0800_0000, "ipc"),
    (0x1000_0000, "user"),
    (0x2000_0000, "pid"),
    (0x4000_0000, "net"),
    (0x0200_0000, "cgroup"),
    (0x0000_0080, "time"),
];

/// Namespace types named by CLONE_NEW* bits, in a fixed order.
pub fn namespace_types(flags: u64) -> Vec<String> {
    NAMESPACE_FLAGS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| (*name).to_string())
        .collect()
}

/// The name of a ptrace(2) request (`attach`, `seize`, `poketext`, …), or its number.
pub fn ptrace_request_name(request: i64) -> String {
    let name = match request {
        0 => "traceme",
        1 => "peektext",
        2 => "peekdata",
        3 => "peekuser",
        4 => "poketext",
        5 => "pokedata",
        6 => "pokeuser",
        7 => "cont",
        8 => "kill",
        9 => "singlestep",
        12 => "getregs",
        13 => "setregs",
        14 => "getfpregs",
        15 => "setfpregs",
        16 => "attach",
        17 => "detach",
        24 => "syscall",
        0x4200 => "setoptions",
        0x4201 => "geteventmsg",
        0x4202 => "getsiginfo",
        0x4203 => "setsiginfo",
        0x4204 => "getregset",
        0x4205 => "setregset",
        0x4206 => "seize",
        0x4207 => "interrupt",
        0x4208 => "listen",
        other => return other.to_string(),
    };
    name.to_string()
}

const O_ACCMODE: u32 = 0o3;
const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
const O_CREAT: u32 = 0o100;
const O_TRUNC: u32 = 0o1000;

/// The strongest intent of open(2) flags: `create` > `truncate` > `write` > `read`.
pub fn open_access(flags: u32) -> &'static str {
    if flags & O_CREAT != 0 {
        "create"
    } else if flags & O_TRUNC != 0 {
        "truncate"
    } else if matches!(flags & O_ACCMODE, O_WRONLY | O_RDWR) {
        "write"
    } else {
        "read"
    }
}

/// The name of a DNS query type (`A`, `AAAA`, `TXT`, …), or its number.
pub fn dns_type_name(qtype: u16) -> String {
    let name = match qtype {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        43 => "DS",
        46 => "RRSIG",
        48 => "DNSKEY",
        52 => "TLSA",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        257 => "CAA",
        other => return other.to_string(),
    };
    name.to_string()
}

/// The first question of a DNS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsQuestion {
    /// Lower case, no trailing dot, non-printable bytes and in-label dots escaped as `\DDD`.
    pub name: String,
    pub qtype: u16,
}

/// Why a DNS payload has no readable question.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("DNS payload of {0} bytes is shorter than the 12-byte header")]
    ShortHeader(usize),
    #[error("DNS message carries no question")]
    NoQuestion,
    #[error("DNS question name runs past the captured payload")]
    Truncated,
    #[error("DNS question name is longer than 255 bytes")]
    NameTooLong,
    #[error("DNS label type {0:#04x} is not a plain label or a pointer")]
    BadLabel(u8),
    #[error("DNS compression pointer loops or points forwards")]
    BadPointer,
}

/// Longest wire-format name (RFC 1035 §3.1).
const MAX_NAME: usize = 255;
/// Compression pointers followed before giving up.
const MAX_POINTERS: usize = 8;

/// Parses the first question of a DNS message (UDP layout: the header first). For a TCP
/// segment, whose message follows a two-byte length, use [`parse_dns_payload`].
pub fn parse_dns_question(msg: &[u8]) -> Result<DnsQuestion, DnsError> {
    if msg.len() < 12 {
        return Err(DnsError::ShortHeader(msg.len()));
    }
    let qdcount = u16::from_be_bytes([msg[4], msg[5]]);
    if qdcount == 0 {
        return Err(DnsError::NoQuestion);
    }
    let mut name = String::new();
    let mut wire_len = 0usize;
    let mut pos = 12usize;
    // Where the question continues after the name: the position after the first pointer, or
    // after the terminating zero when there is no pointer.
    let mut resume: Option<usize> = None;
    let mut pointers = 0usize;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated)?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    if resume.is_none() {
                        resume = Some(pos + 1);
                    }
                    break;
                }
                let label_len = len as usize;
                wire_len += label_len + 1;
                if wire_len > MAX_NAME {
                    return Err(DnsError::NameTooLong);
                }
                let label = msg
                    .get(pos + 1..pos + 1 + label_len)
                    .ok_or(DnsError::Truncated)?;
                if !name.is_empty() {
                    name.push('.');
                }
                push_label(&mut name, label);
                pos += 1 + label_len;
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(DnsError::Truncated)?;
                let target = (((len & 0x3f) as usize) << 8) | low as usize;
                pointers += 1;
                // Only backwards, and only a few times: a pointer cycle cannot loop us.
                if pointers > MAX_POINTERS || target >= pos {
                    return Err(DnsError::BadPointer);
                }
                if resume.is_none() {
                    resume = Some(pos + 2);
                }
                pos = target;
            }
            _ => return Err(DnsError::BadLabel(len)),
        }
    }
    let at = resume.unwrap_or(pos);
    let qtype = msg
        .get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(DnsError::Truncated)?;
    Ok(DnsQuestion { name, qtype })
}

/// Parses a captured DNS payload that may be a UDP datagram (header first) or a TCP segment
/// (two-byte length, then the header). The record does not say which, so the reading whose
/// header looks like an ordinary query (one question, no answers, no authority records) is
/// tried first, the UDP one when both or neither do, and the other one if that fails.
pub fn parse_dns_payload(payload: &[u8]) -> Result<DnsQuestion, DnsError> {
    let tcp_possible = payload.len() >= 14 && u16::from_be_bytes([payload[0], payload[1]]) >= 12;
    let tcp_first = tcp_possible && !looks_like_query(payload) && looks_like_query(&payload[2..]);
    let (first, second) = if tcp_first {
        (&payload[2..], Some(payload))
    } else {
        (payload, tcp_possible.then(|| &payload[2..]))
    };
    match parse_dns_question(first) {
        Ok(question) => Ok(question),
        Err(first_error) => second
            .map(parse_dns_question)
            .and_then(Result::ok)
            .ok_or(first_error),
    }
}

/// One question, no answer or authority records: what a resolver sends.
fn looks_like_query(msg: &[u8]) -> bool {
    msg.len() >= 12
        && u16::from_be_bytes([msg[4], msg[5]]) == 1
        && msg[6..10].iter().all(|&b| b == 0)
}

/// Appends one label, lower-cased, with anything but printable ASCII (and the dot and
/// backslash, which would change the name's structure) written as `\DDD`.
fn push_label(out: &mut String, label: &[u8]) {
    for &byte in label {
        match byte {
            b'.' | b'\\' => out.push_str(&format!("\\{byte:03}")),
            0x21..=0x7e => out.push(byte.to_ascii_lowercase() as char),
            _ => out.push_str(&format!("\\{byte:03}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut msg = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            msg.push(label.len() as u8);
            msg.extend_from_slice(label.as_bytes());
        }
        msg.push(0);
        msg.extend_from_slice(&qtype.to_be_bytes());
        msg.extend_from_slice(&1u16.to_be_bytes());
        msg
    }

    #[test]
    fn capability_names_by_bit() {
        assert!(capability_names(0).is_empty());
        assert_eq!(
            capability_names((1 << 21) | (1 << 39)),
            vec!["CAP_SYS_ADMIN", "CAP_BPF"]
        );
        assert_eq!(capability_names(1 << 50), vec!["CAP_50"]);
        assert_eq!(capability_names((1u64 << 41) - 1).len(), 41);
    }

    #[test]
    fn namespace_flag_names() {
        assert_eq!(namespace_types(0x4000_0000), vec!["net"]);
        assert_eq!(
            namespace_types(0x4000_0000 | 0x2_0000 | 0x1000_0000 | 0x80),
            vec!["mnt", "user", "net", "time"]
        );
        assert!(namespace_types(0x11).is_empty());
    }

    #[test]
    fn ptrace_names() {
        assert_eq!(ptrace_request_name(16), "attach");
        assert_eq!(ptrace_request_name(0x4206), "seize");
        assert_eq!(ptrace_request_name(5), "pokedata");
        assert_eq!(ptrace_request_name(-3), "-3");
    }

    #[test]
    fn open_intent() {
        assert_eq!(open_access(0), "read");
        assert_eq!(open_access(0o1), "write");
        assert_eq!(open_access(0o2), "write");
        assert_eq!(open_access(0o1 | 0o1000), "truncate");
        assert_eq!(open_access(0o1 | 0o100 | 0o1000), "create");
        assert_eq!(open_access(0o2000000), "read", "O_CLOEXEC alone is a read");
    }

    #[test]
    fn dns_question_udp_and_tcp() {
        let msg = query("Pool.MinerGate.com", 1);
        let q = parse_dns_question(&msg).expect("parse");
        assert_eq!(q.name, "pool.minergate.com");
        assert_eq!(dns_type_name(q.qtype), "A");
        let mut tcp = (msg.len() as u16).to_be_bytes().to_vec();
        tcp.extend_from_slice(&msg);
        assert_eq!(
            parse_dns_payload(&tcp).expect("tcp").name,
            "pool.minergate.com"
        );
        assert_eq!(dns_type_name(28), "AAAA");
        assert_eq!(dns_type_name(4242), "4242");
    }

    #[test]
    fn dns_root_and_hostile_labels() {
        let mut root = query("x", 16);
        root.truncate(12);
        root.extend_from_slice(&[0, 0, 16, 0, 1]);
        assert_eq!(
            parse_dns_question(&root).expect("root"),
            DnsQuestion {
                name: String::new(),
                qtype: 16
            }
        );
        let mut msg = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        msg.extend_from_slice(&[
            5, b'a', b'.', b' ', 0x07, b'\\', 3, b'c', b'o', b'm', 0, 0, 1,
        ]);
        let q = parse_dns_question(&msg).expect("hostile");
        assert_eq!(q.name, "a\\046\\032\\007\\092.com");
    }

    #[test]
    fn dns_rejects_broken_messages() {
        assert_eq!(parse_dns_question(&[0; 5]), Err(DnsError::ShortHeader(5)));
        let mut none = query("a.b", 1);
        none[5] = 0;
        assert_eq!(parse_dns_question(&none), Err(DnsError::NoQuestion));
        let full = query("example.org", 1);
        for cut in 12..full.len() - 2 {
            assert_eq!(
                parse_dns_question(&full[..cut]),
                Err(DnsError::Truncated),
                "cut at {cut}"
            );
        }
        // A pointer to itself, and a pointer forwards.
        let mut looped = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1];
        assert_eq!(parse_dns_question(&looped), Err(DnsError::BadPointer));
        looped[13] = 14;
        assert_eq!(parse_dns_question(&looped), Err(DnsError::BadPointer));
        let mut reserved = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 1];
        assert_eq!(parse_dns_question(&reserved), Err(DnsError::BadLabel(0x40)));
        reserved[12] = 63;
        assert_eq!(parse_dns_question(&reserved), Err(DnsError::Truncated));
    }

    #[test]
    fn dns_backward_pointer_and_long_name() {
        // A label hidden in the header's count fields, which the question's name points back to.
        let mut msg = vec![0, 0, 1, 0, 0, 1, 0, 0, 1, b'z', 0, 0];
        msg.extend_from_slice(&[1, b'x', 0xc0, 8, 0, 28, 0, 1]);
        assert_eq!(
            parse_dns_question(&msg).expect("pointer"),
            DnsQuestion {
                name: "x.z".into(),
                qtype: 28
            }
        );
        // A backwards pointer that loops forever is cut after a few hops.
        let mut cycle = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        cycle.extend_from_slice(&[1, b'y', 0xc0, 12, 0, 1]);
        assert_eq!(parse_dns_question(&cycle), Err(DnsError::BadPointer));
        let mut long = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.extend_from_slice(&[0, 0, 1]);
        assert_eq!(parse_dns_question(&long), Err(DnsError::NameTooLong));
    }
}
