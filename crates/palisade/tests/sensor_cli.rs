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
        (vec!["sensor", "run", "--backend", "https://b.example/x"], "--token-file"),
        // Stdout/file and a backend are exclusive.
        (
            vec!["sensor", "run", "--output", "-", "--backend", "https://b", "--token-file", token],
            "cannot be used with",
        ),
        (
            vec!["sensor", "run", "--backend", "https://b", "--token-file", "/nonexistent/token"],
            "/nonexistent/token",
        ),
        (
            vec!["sensor", "run", "--backend", "https://b", "--token-file", empty.to_str().unwrap()],
            "is empty",
        ),
        (vec!["sensor", "run", "--events", "some"], "--events"),
        (vec!["sensor", "run", "--health-addr", "not-an-address"], "--health-addr"),
        (vec!["sensor", "run", "--rules", "/nonexistent/rules"], "/nonexistent/rules"),
        (vec!["sensor", "run", "--sensitive-prefix", "etc/shadow"], "absolute path"),
        (vec!["sensor", "run", "--kubeconfig", "/nonexistent/kc"], "/nonexistent/kc"),
        (
            vec!["sensor", "run", "--kubeconfig", token, "--no-kubernetes"],
            "cannot be used with",
        ),
        (vec!["sensor", "run", "--batch-age", "0s"], "positive"),
        (
            vec!["sensor", "run", "--backend", "http://remote.example/x", "--token-file", token],
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
