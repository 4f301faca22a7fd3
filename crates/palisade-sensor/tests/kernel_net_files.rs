//! Root tests: connect (IPv4, IPv6, the cloud metadata address), accept, DNS datagrams (sendto
//! and connected send), and the in-kernel path filter (sensitive vs ordinary, relative paths,
//! `*` components, write-only prefixes, unlink).

mod kernel_support;

use std::io::Write;
use std::net::{IpAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};

use kernel_support::{Harness, marker, python, sh, skip};
use palisade_sensor::kernel::KernelConfig;
use palisade_sensor::kernel::event::KernelPayload;

#[test]
fn connect_v4_v6_and_metadata_address() {
    if skip() {
        return;
    }
    let mut h = Harness::start(&KernelConfig::default());
    let l4 = TcpListener::bind("127.0.0.1:0").expect("listen v4");
    let p4 = l4.local_addr().expect("addr").port();
    let l6 = TcpListener::bind("[::1]:0").expect("listen v6 (needs an IPv6 loopback)");
    let p6 = l6.local_addr().expect("addr").port();
    python(&format!(
        "import socket\n\
         a = socket.create_connection(('127.0.0.1', {p4}))\n\
         b = socket.create_connection(('::1', {p6}))\n\
         c = socket.socket()\n\
         c.setblocking(False)\n\
         c.connect_ex(('169.254.169.254', 80))\n\
         a.close(); b.close(); c.close()\n"
    ));
    let ev = h.wait_for(
        "IPv4 connect",
        |e| matches!(&e.payload, KernelPayload::Connect(s) if s.dst_port == p4),
    );
    let KernelPayload::Connect(s) = &ev.payload else {
        unreachable!()
    };
    assert_eq!(s.dst, "127.0.0.1".parse::<IpAddr>().expect("ip"));
    assert_eq!(s.protocol, 6);
    assert_eq!(ev.comm, "python3");
    let ev = h.wait_for(
        "IPv6 connect",
        |e| matches!(&e.payload, KernelPayload::Connect(s) if s.dst_port == p6),
    );
    let KernelPayload::Connect(s) = &ev.payload else {
        unreachable!()
    };
    assert_eq!(s.dst, "::1".parse::<IpAddr>().expect("ip"));
    h.wait_for("connect to 169.254.169.254:80", |e| {
        matches!(&e.payload, KernelPayload::Connect(s)
            if s.dst_port == 80 && s.dst == "169.254.169.254".parse::<IpAddr>().expect("ip"))
    });
}

#[test]
fn accept_in_a_child() {
    if skip() {
        return;
    }
    let mut h = Harness::start(&KernelConfig::default());
    let mut child = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(
            "import socket, sys\n\
             l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)\n\
             print(l.getsockname()[1], flush=True)\n\
             c, _ = l.accept(); c.close()\n",
        )
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn python listener");
    let mut line = String::new();
    {
        use std::io::BufRead;
        let out = child.stdout.as_mut().expect("stdout");
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .expect("port line");
    }
    let port: u16 = line.trim().parse().expect("port");
    let client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let local = client.local_addr().expect("local").port();
    assert!(child.wait().expect("wait").success());
    let ev = h.wait_for(
        "accept",
        |e| matches!(&e.payload, KernelPayload::Accept(s) if s.dst_port == port),
    );
    let KernelPayload::Accept(s) = &ev.payload else {
        unreachable!()
    };
    assert_eq!(s.src_port, local, "src is the remote peer");
    assert_eq!(s.src, "127.0.0.1".parse::<IpAddr>().expect("ip"));
    assert_eq!(ev.comm, "python3");
}

#[test]
fn dns_datagrams_to_a_local_server() {
    if skip() {
        return;
    }
    let server = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let port = server.local_addr().expect("addr").port();
    let other = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let other_port = other.local_addr().expect("addr").port();
    let mut h = Harness::start(&KernelConfig {
        dns_port: port,
        ..KernelConfig::default()
    });
    // a query for example.com A, id 0x1234
    let query = "b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x07example\\x03com\\x00\\x00\\x01\\x00\\x01'";
    python(&format!(
        "import socket\n\
         q = {query}\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.sendto(b'not dns', ('127.0.0.1', {other_port}))\n\
         s.sendto(q, ('127.0.0.1', {port}))\n\
         c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         c.connect(('127.0.0.1', {port}))\n\
         c.send(b'\\x56\\x78' + q[2:])\n"
    ));
    let ev = h.wait_for("DNS via sendto", |e| {
        matches!(&e.payload, KernelPayload::Dns { payload, .. } if payload.starts_with(&[0x12, 0x34]))
    });
    let KernelPayload::Dns {
        server: ip,
        server_port,
        payload,
    } = &ev.payload
    else {
        unreachable!()
    };
    assert_eq!(
        (*ip, *server_port),
        ("127.0.0.1".parse::<IpAddr>().expect("ip"), port)
    );
    assert_eq!(payload.len(), 29);
    assert_eq!(&payload[13..20], b"example");
    h.wait_for("DNS via connected send", |e| {
        matches!(&e.payload, KernelPayload::Dns { payload, .. } if payload.starts_with(&[0x56, 0x78]))
    });
    h.drain();
    assert!(
        !h.seen.iter().any(|e| matches!(&e.payload, KernelPayload::Dns { server_port, .. } if *server_port == other_port)),
        "datagrams to other ports are filtered"
    );
}

#[test]
fn sensitive_opens_filtered_in_the_kernel() {
    if skip() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let base = root.path().display().to_string();
    let cfg = KernelConfig {
        sensitive_prefixes: vec![
            format!("{base}/secret/"),
            format!("{base}/users/*/.kube/"),
            "/proc/*/environ".into(),
        ],
        sensitive_write_prefixes: vec![format!("{base}/passwd")],
        ..KernelConfig::default()
    };
    let mut h = Harness::start(&cfg);
    std::fs::create_dir_all(root.path().join("secret")).expect("mkdir");
    std::fs::create_dir_all(root.path().join("plain")).expect("mkdir");
    std::fs::create_dir_all(root.path().join("users/alice/.kube")).expect("mkdir");
    for f in [
        "secret/token",
        "plain/file",
        "users/alice/.kube/config",
        "passwd",
    ] {
        std::fs::File::create(root.path().join(f))
            .and_then(|mut f| f.write_all(b"x"))
            .expect("write fixture");
    }
    let m = marker("open");
    sh(&format!(
        "cat '{base}/plain/file' >/dev/null; cat '{base}/passwd' >/dev/null; \
         cat '{base}/secret/token' >/dev/null; \
         cd '{base}/users/alice' && cat .kube/config >/dev/null; \
         cat /proc/self/environ >/dev/null; \
         echo {m} >> '{base}/passwd'; \
         rm '{base}/secret/token'"
    ));
    let want = format!("{base}/secret/token");
    let ev = h.wait_for(
        "open of the sensitive file",
        |e| matches!(&e.payload, KernelPayload::Open { path, .. } if *path == want),
    );
    assert_eq!(ev.comm, "cat");
    let want_rel = format!("{base}/users/alice/.kube/config");
    h.wait_for(
        "relative open resolved against the cwd",
        |e| matches!(&e.payload, KernelPayload::Open { path, .. } if *path == want_rel),
    );
    h.wait_for(
        "/proc/self/environ",
        |e| matches!(&e.payload, KernelPayload::Open { path, .. } if path == "/proc/self/environ"),
    );
    let want_w = format!("{base}/passwd");
    let ev = h.wait_for("write to a write-only prefix", |e| {
        matches!(&e.payload, KernelPayload::Open { path, flags } if *path == want_w && flags & 3 != 0)
    });
    assert_eq!(ev.comm, "sh");
    h.wait_for(
        "unlink of the sensitive file",
        |e| matches!(&e.payload, KernelPayload::Unlink { path } if *path == want),
    );
    h.drain();
    let plain = format!("{base}/plain/file");
    for e in &h.seen {
        if let KernelPayload::Open { path, flags } = &e.payload {
            assert_ne!(*path, plain, "an ordinary file passed the kernel filter");
            assert!(
                !(*path == want_w && flags & 3 == 0),
                "a read of a write-only prefix passed: {e:?}"
            );
        }
    }
    let c = h.sensor.counters();
    assert!(
        c.filtered_by_kind.get("open").copied().unwrap_or(0) >= 1,
        "{c:?}"
    );
    assert_eq!(c.ring_drops, 0, "{c:?}");
}

/// A full ring buffer loses records, and every lost record is counted (per kind and per CPU):
/// a 4 KiB ring, an open storm while nobody polls, then delivered + dropped covers every open.
#[test]
fn ring_buffer_drops_are_counted() {
    if skip() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let secret = root.path().join("secret");
    std::fs::write(&secret, b"x").expect("write");
    let cfg = KernelConfig {
        sensitive_prefixes: vec![secret.display().to_string()],
        ring_buffer_bytes: 4096,
        ..KernelConfig::default()
    };
    let mut h = Harness::start(&cfg);
    let n = 2000;
    python(&format!(
        "import os\nfor _ in range({n}):\n    os.close(os.open({:?}, os.O_RDONLY))\n",
        secret.display().to_string()
    ));
    let want = secret.display().to_string();
    let mut delivered = 0usize;
    let mut empty = 0;
    while empty < 5 {
        let mut batch = 0usize;
        h.sensor
            .poll(std::time::Duration::from_millis(50), &mut |e| {
                if matches!(&e.payload, KernelPayload::Open { path, .. } if *path == want) {
                    batch += 1;
                }
            })
            .expect("poll");
        delivered += batch;
        empty = if batch == 0 { empty + 1 } else { 0 };
    }
    let c = h.sensor.counters();
    let dropped = c.ring_drops_by_kind.get("open").copied().unwrap_or(0) as usize;
    assert!(dropped > 0, "a 4 KiB ring cannot hold {n} records: {c:?}");
    // (delivered may be 0: records of other tests' processes can fill the tiny ring first)
    assert!(
        delivered + dropped >= n,
        "delivered {delivered} + dropped {dropped} < {n}: {c:?}"
    );
    assert_eq!(
        c.ring_drops_per_cpu.iter().sum::<u64>(),
        c.ring_drops,
        "{c:?}"
    );
}

/// Executables on an overlayfs upper layer (written in the container) are flagged; ones from a
/// lower layer (the image) are not.
#[test]
fn overlay_upper_layer_exec() {
    if skip() {
        return;
    }
    let mut h = Harness::start(&KernelConfig::default());
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path().display().to_string();
    for d in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir_all(root.path().join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/true", root.path().join("lower/imagetrue")).expect("copy");
    let m = marker("ovl");
    sh(&format!(
        "unshare -m sh -c 'mount -t overlay overlay -o lowerdir={r}/lower,upperdir={r}/upper,workdir={r}/work {r}/merged && \
         {r}/merged/imagetrue {m} && cat /bin/true > {r}/merged/dropped && chmod +x {r}/merged/dropped && \
         {r}/merged/dropped {m}'"
    ));
    let is = |name: &'static str| {
        let m = m.clone();
        move |e: &palisade_sensor::kernel::event::KernelEvent| match &e.payload {
            KernelPayload::Exec(x) => x.filename.ends_with(name) && x.args.contains(&m),
            _ => false,
        }
    };
    let ev = h.wait_for("exec from the lower layer", is("/merged/imagetrue"));
    let KernelPayload::Exec(x) = &ev.payload else {
        unreachable!()
    };
    assert!(!x.exe_upper_layer, "{x:?}");
    let ev = h.wait_for("exec from the upper layer", is("/merged/dropped"));
    let KernelPayload::Exec(x) = &ev.payload else {
        unreachable!()
    };
    assert!(x.exe_upper_layer, "{x:?}");
    assert!(x.exe_written.is_some(), "{x:?}");
}
