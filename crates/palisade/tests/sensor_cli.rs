//! `palisade sensor` through the binary: usage and configuration errors exit 2 with a message
//! naming the problem; a sensor without BPF privileges exits 3 with what to grant.

use std::process::{Command, Output};

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .output()
        .expect("run palisade")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn usage_and_configuration_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken\n").unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let token = token.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // --backend needs a token.
        (
            vec!["sensor", "run", "--backend", "https://b.example/x"],
            "--token-file",
        ),
        // Stdout/file and a backend are exclusive.
        (
            vec![
                "sensor",
                "run",
                "--output",
                "-",
                "--backend",
                "https://b",
                "--token-file",
                token,
            ],
            "cannot be used with",
        ),
        (
            vec![
                "sensor",
                "run",
                "--backend",
                "https://b",
                "--token-file",
                "/nonexistent/token",
            ],
            "/nonexistent/token",
        ),
        (
            vec![
                "sensor",
                "run",
                "--backend",
                "https://b",
                "--token-file",
                empty.to_str().unwrap(),
            ],
            "is empty",
        ),
        (vec!["sensor", "run", "--events", "some"], "--events"),
        (
            vec![
                "sensor",
                "run",
                "--kubelet-url",
                "https://10.0.0.5:10250",
                "--no-kubernetes",
            ],
            "cannot be used with",
        ),
        (
            vec!["sensor", "run", "--kubelet-ca-file", "/etc/hostname"],
            "--kubelet-url",
        ),
        (
            vec![
                "sensor",
                "run",
                "--kubelet-url",
                "https://10.0.0.5:10250",
                "--kubelet-token-file",
                "/nonexistent/kubelet-token",
            ],
            "/nonexistent/kubelet-token",
        ),
        (
            vec!["sensor", "run", "--ring-buffer-mib", "3"],
            "--ring-buffer-mib 3",
        ),
        (
            vec!["sensor", "run", "--ring-buffer-mib", "0"],
            "--ring-buffer-mib 0",
        ),
        (
            vec!["sensor", "run", "--health-addr", "not-an-address"],
            "--health-addr",
        ),
        (
            vec!["sensor", "run", "--rules", "/nonexistent/rules"],
            "/nonexistent/rules",
        ),
        (
            vec!["sensor", "run", "--sensitive-prefix", "etc/shadow"],
            "absolute path",
        ),
        (
            vec!["sensor", "run", "--kubeconfig", "/nonexistent/kc"],
            "/nonexistent/kc",
        ),
        (
            vec!["sensor", "run", "--kubeconfig", token, "--no-kubernetes"],
            "cannot be used with",
        ),
        (vec!["sensor", "run", "--batch-age", "0s"], "positive"),
        (
            vec![
                "sensor",
                "run",
                "--backend",
                "http://remote.example/x",
                "--token-file",
                token,
            ],
            "loopback only",
        ),
        (vec!["sensor", "frobnicate"], "unrecognized subcommand"),
    ];
    for (args, needle) in cases {
        let out = palisade(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(needle),
            "{args:?}: expected {needle:?} in {}",
            stderr(&out)
        );
    }
}

#[test]
fn help_lists_run_and_check() {
    let out = palisade(&["sensor", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("run") && text.contains("check"), "{text}");
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// `palisade ARGS` with every capability gone (root keeps uid 0 but loses CAP_BPF, CAP_PERFMON,
/// CAP_SYS_ADMIN…), or as is for a non-root user (who has none anyway).
fn without_capabilities(args: &[&str]) -> Output {
    if is_root() {
        let mut full = vec![
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--bounding-set=-all",
            "--",
            env!("CARGO_BIN_EXE_palisade"),
        ];
        full.extend_from_slice(args);
        Command::new("setpriv")
            .args(full)
            .output()
            .expect("run setpriv")
    } else {
        palisade(args)
    }
}

#[test]
fn without_bpf_privileges_run_and_check_exit_3_saying_what_to_grant() {
    let out = without_capabilities(&[
        "sensor",
        "run",
        "--output",
        "-",
        "--no-kubernetes",
        "--health-addr",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("BPF is not permitted"), "{err}");
    assert!(
        err.contains("CAP_BPF") && err.contains("CAP_PERFMON"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no records without a sensor");

    let out = without_capabilities(&["sensor", "check"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("BPF is not permitted"), "{text}");
    assert!(text.contains("cannot run here"), "{text}");
}

#[test]
fn check_and_run_with_bpf_print_probes_alerts_on_stdout_and_stop_on_sigterm() {
    if std::env::var("PALISADE_SKIP_BPF_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("PALISADE_SKIP_BPF_TESTS=1: skipped");
        return;
    }
    let out = palisade(&["sensor", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.contains("probe exec") && text.contains("attached"),
        "{text}"
    );

    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "sensor",
            "run",
            "--output",
            "-",
            "--no-kubernetes",
            "--node-name",
            "cli-node",
            "--health-addr",
            "127.0.0.1:0",
            "--batch-age",
            "100ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the sensor");
    // Wait for the ready line on stderr.
    let stderr_pipe = child.stderr.take().expect("stderr");
    let (line_tx, line_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
            let _ = line_tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let mut log = String::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match line_rx.recv_timeout(left) {
            Ok(line) => {
                log.push_str(&line);
                log.push('\n');
                if line.contains("palisade sensor: ready on cli-node") {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("no ready line:\n{log}");
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let miner = dir.path().join("xmrig");
    std::fs::copy("/bin/true", &miner).unwrap();
    assert!(Command::new(&miner).status().unwrap().success());
    // Read stdout until the miner alert shows up.
    let stdout = child.stdout.take().expect("stdout");
    let (rec_tx, rec_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = rec_tx.send(line);
        }
    });
    let mut found = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        let Ok(line) = rec_rx.recv_timeout(std::time::Duration::from_secs(1)) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON line on stdout");
        assert!(v["record"] == "alert" || v["record"] == "event", "{line}");
        if v["record"] == "alert"
            && v["rule.id"] == "K8S.NODE_CryptoCoinMinerExecution"
            && line.contains(miner.to_str().unwrap())
        {
            found = true;
            break;
        }
    }
    assert!(found, "no miner alert on stdout");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
    let mut rest = String::new();
    while let Ok(line) = line_rx.recv_timeout(std::time::Duration::from_secs(10)) {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(
        rest.contains("palisade sensor: stopped on cli-node"),
        "{rest}"
    );
}
