//! Root tests: exec/exit, fileless (memfd and deleted) execution, binary drift (write + chmod +x +
//! exec), a shell whose stdio is a TCP socket, memfd_create, ptrace, unshare -n, tmpfs mount.

mod kernel_support;

use std::io::Read;
use std::net::TcpListener;
use std::process::Command;

use kernel_support::{Harness, marker, python, run, sh, skip};
use palisade_sensor::kernel::event::{ExecRecord, KernelEvent, KernelPayload, StdioKind};
use palisade_sensor::kernel::{KernelConfig, ProbeState};

fn exec_of(ev: &KernelEvent) -> Option<&ExecRecord> {
    match &ev.payload {
        KernelPayload::Exec(x) => Some(x),
        _ => None,
    }
}

#[test]
fn exec_and_exit_of_real_processes() {
    if skip() {
        return;
    }
    let mut h = Harness::start(&KernelConfig::default());
    let m = marker("true");
    let child = Command::new("/bin/true")
        .arg(&m)
        .arg("second")
        .spawn()
        .expect("spawn /bin/true");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let ev = h.wait_for("exec of /bin/true", |e| {
        exec_of(e).is_some_and(|x| x.args.contains(&m))
    });
    let x = exec_of(&ev).expect("exec");
    assert_eq!(ev.pid, pid);
    assert_eq!(x.filename, "/bin/true");
    assert_eq!(
        x.args,
        vec!["/bin/true".to_string(), m.clone(), "second".to_string()]
    );
    assert_eq!(ev.comm, "true");
    assert_eq!(x.parent_pid, std::process::id());
    assert!(!x.exe_deleted && !x.exe_memfd);
    assert_ne!(ev.cgroup_id, 0);
    assert_ne!(ev.mnt_ns, 0);
    assert_ne!(ev.pid_ns, 0);
    assert_eq!(ev.uid, 0);
    assert_ne!(ev.cap_effective, 0, "root has capabilities");
    assert!(ev.time_boot_ns > 0);
    h.wait_for("exit of /bin/true", |e| {
        e.pid == pid && matches!(e.payload, KernelPayload::Exit { exit_code: 0 })
    });

    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg("exit 7")
        .spawn()
        .expect("spawn sh");
    let pid = child.id();
    let _ = child.wait_with_output();
    h.wait_for("exit code 7", |e| {
        e.pid == pid && matches!(e.payload, KernelPayload::Exit { exit_code: 7 })
    });

    let probes = h.sensor.probes();
    for p in &probes {
        if p.name == "module" && !std::path::Path::new("/proc/modules").exists() {
            assert!(
                matches!(&p.state, ProbeState::NotApplicable { reason } if reason.contains("module")),
                "{p:?}"
            );
        } else {
            assert!(p.attached(), "{p:?}");
        }
    }
    let c = h.sensor.counters();
    assert!(
        c.records_by_kind.get("exec").copied().unwrap_or(0) >= 2,
        "{c:?}"
    );
    assert_eq!(c.decode_errors, 0);
}

#[test]
fn argv_is_bounded() {
    if skip() {
        return;
    }
    let cfg = KernelConfig {
        max_args: 4,
        max_arg_bytes: 8,
        ..KernelConfig::default()
    };
    let mut h = Harness::start(&cfg);
    let m = marker("argv");
    let long = "x".repeat(100);
    let tag = &m[m.len() - 8..];
    run(Command::new("/bin/true")
        .arg(tag)
        .arg(&long)
        .arg("a")
        .arg("b")
        .arg("c")
        .arg("d"));
    let ev = h.wait_for("bounded exec", |e| {
        exec_of(e).is_some_and(|x| x.args.get(1).is_some_and(|a| a == tag))
    });
    let x = exec_of(&ev).expect("exec");
    assert_eq!(
        x.args,
        vec![
            "/bin/tru".to_string(),
            tag.to_string(),
            "xxxxxxxx".into(),
            "a".into()
        ]
    );
    assert!(x.args_truncated);
}

#[test]
fn fileless_memfd_and_deleted_exec() {
    if skip() {
        return;
    }
    let mut h = Harness::start(&KernelConfig::default());
    let m = marker("memfd");
    python(&format!(
        "import os\n\
         fd = os.memfd_create('{m}', 0)\n\
         os.write(fd, open('/bin/true', 'rb').read())\n\
         pid = os.fork()\n\
         if pid == 0:\n    os.execve(fd, ['{m}'], {{}})\n\
         os.waitpid(pid, 0)\n"
    ));
    let ev = h.wait_for(
        "memfd_create",
        |e| matches!(&e.payload, KernelPayload::Memfd { name, .. } if *name == m),
    );
    assert_eq!(ev.comm, "python3");
    let ev = h.wait_for("exec from a memfd", |e| {
        exec_of(e).is_some_and(|x| x.args.first() == Some(&m))
    });
    let x = exec_of(&ev).expect("exec");
    assert!(x.exe_memfd, "{x:?}");
    assert!(!x.exe_deleted, "{x:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(marker("deleted"));
    let p = path.display();
    let m2 = marker("del");
    python(&format!(
        "import os, shutil\n\
         shutil.copy('/bin/true', '{p}')\n\
         fd = os.open('{p}', os.O_RDONLY)\n\
         os.unlink('{p}')\n\
         pid = os.fork()\n\
         if pid == 0:\n    os.execve(fd, ['{m2}'], {{}})\n\
         os.waitpid(pid, 0)\n"
    ));
    let ev = h.wait_for("exec of a deleted file", |e| {
        exec_of(e).is_some_and(|x| x.args.first() == Some(&m2))
    });
    let x = exec_of(&ev).expect("exec");
    assert!(x.exe_deleted && !x.exe_memfd, "{x:?}");
}

#[test]
fn write_chmod_exec_is_binary_drift() {
    if skip() {
        return;
    }
    let mut h = Harness::start(&KernelConfig::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join(marker("dropped"));
    let b = bin.display();
    // cat creates the file 0644 (cp would copy the mode); chmod then adds the execute bits
    sh(&format!("cat /bin/true > '{b}' && chmod +x '{b}' && '{b}'"));
    let want = bin.to_string_lossy().into_owned();
    let ev = h.wait_for(
        "chmod +x",
        |e| matches!(&e.payload, KernelPayload::Chmod { path, .. } if *path == want),
    );
    let KernelPayload::Chmod {
        mode,
        written_recently,
        ..
    } = ev.payload
    else {
        unreachable!()
    };
    assert!(mode & 0o111 != 0);
    assert!(written_recently, "the file was written just before");
    let ev = h.wait_for("exec of the dropped binary", |e| {
        exec_of(e).is_some_and(|x| x.filename == want)
    });
    let x = exec_of(&ev).expect("exec");
    let w = x
        .exe_written
        .as_ref()
        .expect("the exec'd inode was written since the sensor started");
    assert_eq!(
        w.writer_comm, "sh",
        "the shell's redirection opened it for write: {w:?}"
    );
    assert!(
        w.ns_before_exec > 0 && w.ns_before_exec < 60_000_000_000,
        "{w:?}"
    );

    // a system binary that nobody wrote is not drift
    run(Command::new("/bin/true").arg(marker("notdrift")));
    let ev = h.wait_for("exec of /bin/true", |e| {
        exec_of(e).is_some_and(|x| x.filename == "/bin/true")
    });
    assert!(exec_of(&ev).expect("exec").exe_written.is_none());

    // chmod that adds no execute bit is filtered in the kernel
    let plain = dir.path().join("plain");
    sh(&format!(
        "echo hi > '{}' && chmod 600 '{}'",
        plain.display(),
        plain.display()
    ));
    let c = h.sensor.counters();
    assert!(
        c.filtered_by_kind.get("chmod").copied().unwrap_or(0) >= 1,
        "{c:?}"
    );
}

#[test]
fn shell_with_socket_stdio() {
    if skip() {
        return;
    }
    let mut h = Harness::start(&KernelConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let m = marker("revshell");
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    });
    python(&format!(
        "import socket, subprocess\n\
         s = socket.create_connection(('127.0.0.1', {port}))\n\
         subprocess.call(['/bin/sh', '-c', 'true {m}'], stdin=s, stdout=s, stderr=s)\n\
         s.close()\n"
    ));
    t.join().expect("listener thread");
    let ev = h.wait_for("shell with socket stdio", |e| {
        exec_of(e).is_some_and(|x| x.filename == "/bin/sh" && x.args.iter().any(|a| a.contains(&m)))
    });
    let x = exec_of(&ev).expect("exec");
    assert_eq!(x.filename, "/bin/sh");
    assert_eq!(x.stdio, [StdioKind::SocketInet; 3]);
    assert_eq!(x.parent_comm, "python3");

    // the same shell from a pipe is not a socket
    let m2 = marker("pipe");
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("true {m2}"))
        .output()
        .expect("sh");
    assert!(out.status.success());
    let ev = h.wait_for("shell with pipes", |e| {
        exec_of(e)
            .is_some_and(|x| x.filename == "/bin/sh" && x.args.iter().any(|a| a.contains(&m2)))
    });
    let x = exec_of(&ev).expect("exec");
    assert_eq!(x.stdio[1], StdioKind::Pipe);
    assert_ne!(x.stdio[0], StdioKind::SocketInet);
}

#[test]
fn ptrace_attach() {
    if skip() {
        return;
    }
    let mut h = Harness::start(&KernelConfig::default());
    let out = python(
        "import ctypes, os, signal, time\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         pid = os.fork()\n\
         if pid == 0:\n    time.sleep(30)\n    os._exit(0)\n\
         r = libc.ptrace(16, pid, None, None)\n\
         os.waitpid(pid, 0)\n\
         libc.ptrace(17, pid, None, None)\n\
         os.kill(pid, signal.SIGKILL)\n\
         os.waitpid(pid, 0)\n\
         print(pid, r)\n",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut it = text.split_whitespace();
    let target: u32 = it.next().and_then(|s| s.parse().ok()).expect("child pid");
    assert_eq!(it.next(), Some("0"), "PTRACE_ATTACH failed: {text}");
    let ev = h.wait_for("PTRACE_ATTACH", |e| {
        matches!(e.payload, KernelPayload::Ptrace { request: 16, target_pid } if target_pid == target)
    });
    assert_eq!(ev.comm, "python3");
    // PTRACE_DETACH (17) is not an attack signal: filtered in the kernel
    let c = h.sensor.counters();
    assert!(
        c.filtered_by_kind.get("ptrace").copied().unwrap_or(0) >= 1,
        "{c:?}"
    );
}

#[test]
fn unshare_net_and_tmpfs_mount() {
    if skip() {
        return;
    }
    let mut h = Harness::start(&KernelConfig::default());
    let m = marker("ns");
    run(Command::new("unshare").arg("-n").arg("/bin/true").arg(&m));
    let ev = h.wait_for("unshare(CLONE_NEWNET)", |e| {
        matches!(e.payload, KernelPayload::Namespace { syscall: "unshare", flags } if flags & 0x4000_0000 != 0)
    });
    assert_eq!(ev.comm, "unshare");

    let dir = tempfile::tempdir().expect("tempdir");
    let src = marker("tmpfs");
    run(Command::new("unshare")
        .arg("-m")
        .arg("mount")
        .arg("-t")
        .arg("tmpfs")
        .arg(&src)
        .arg(dir.path()));
    let ev = h.wait_for(
        "tmpfs mount",
        |e| matches!(&e.payload, KernelPayload::Mount { source, .. } if *source == src),
    );
    let KernelPayload::Mount { target, fstype, .. } = &ev.payload else {
        unreachable!()
    };
    assert_eq!(fstype, "tmpfs");
    assert_eq!(*target, dir.path().to_string_lossy());
    // plain forks (no CLONE_NEW*) are filtered in the kernel
    let m3 = marker("fork");
    python(&format!(
        "import os\npid = os.fork()\nif pid == 0:\n    os.execv('/bin/true', ['/bin/true', '{m3}'])\nos.waitpid(pid, 0)\n"
    ));
    h.wait_for("exec after a fork", |e| {
        exec_of(e).is_some_and(|x| x.args.contains(&m3))
    });
    let c = h.sensor.counters();
    assert!(
        c.filtered_by_kind.get("namespace").copied().unwrap_or(0) >= 1,
        "{c:?}"
    );
}

#[test]
fn syscall_exit_program_can_be_turned_off() {
    if skip() {
        return;
    }
    let cfg = KernelConfig {
        trace_syscall_exit: false,
        ..KernelConfig::default()
    };
    let mut h = Harness::start(&cfg);
    for p in h.sensor.probes() {
        if p.name == "accept" || p.name == "write_tracking" {
            assert!(
                matches!(&p.state, ProbeState::Unavailable { reason } if reason.contains("configuration")),
                "{p:?}"
            );
        } else if p.name != "module" {
            assert!(p.attached(), "{p:?}");
        }
    }
    // exec records still flow
    let m = marker("noexit");
    run(Command::new("/bin/true").arg(&m));
    h.wait_for("exec", |e| exec_of(e).is_some_and(|x| x.args.contains(&m)));
}

/// Without root or BPF capabilities the sensor refuses to start with `NotPermitted`, a message
/// that says what to grant, and exit code 3. The test binary re-runs itself as `nobody` with
/// every capability dropped.
#[test]
fn not_permitted_without_capabilities() {
    if std::env::var("PALISADE_KERNEL_UNPRIVILEGED_CHILD").is_ok() {
        match palisade_sensor::kernel::KernelSensor::start(&KernelConfig::default()) {
            Ok(_) => println!("RESULT started"),
            Err(e) => println!(
                "RESULT code={} not_permitted={} msg={e}",
                e.exit_code(),
                matches!(e, palisade_sensor::kernel::KernelError::NotPermitted { .. })
            ),
        }
        return;
    }
    if skip() {
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(&exe)
        .args([
            "--exact",
            "not_permitted_without_capabilities",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PALISADE_KERNEL_UNPRIVILEGED_CHILD", "1")
        .output()
        .expect("run setpriv (util-linux)");
    // libtest may route the child's output to either stream
    let stdout = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.find("RESULT").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no result from the unprivileged child: {stdout}"));
    assert!(
        line.contains("code=3") && line.contains("not_permitted=true"),
        "{line}"
    );
    assert!(
        line.contains("CAP_BPF") && line.contains("CAP_PERFMON"),
        "{line}"
    );
}

/// Without batched wake-ups the reader is woken for every record; records arrive the same way.
#[test]
fn records_arrive_with_a_wakeup_per_record() {
    if skip() {
        return;
    }
    let cfg = KernelConfig {
        batch_wakeups: false,
        ..KernelConfig::default()
    };
    let mut h = Harness::start(&cfg);
    let m = marker("wake");
    let tag = &m[m.len() - 8..];
    run(Command::new("/bin/true").arg(tag));
    let ev = h.wait_for("exec with per-record wake-ups", |e| {
        exec_of(e).is_some_and(|x| x.args.get(1).is_some_and(|a| a == tag))
    });
    assert_eq!(exec_of(&ev).map(|x| x.args.len()), Some(2));
}
