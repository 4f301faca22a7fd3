//! Language catalogers on real artefacts of this machine: Debian's Go binaries, a Go module built
//! here, Debian's jars and gemspecs.

use palisade_image::catalog::golang::{GoBinaryCataloger, parse_go_binary};
use palisade_image::catalog::{Cataloger, FileMeta, Interest};
use std::process::Command;

fn have(cmd: &str) -> bool {
    Command::new(cmd).arg("version").output().is_ok()
}

#[test]
fn debian_go_binaries_have_a_go_version() {
    let mut checked = 0;
    for bin in ["/usr/bin/docker-registry", "/usr/bin/skopeo", "/usr/bin/umoci"] {
        let Ok(data) = std::fs::read(bin) else {
            continue;
        };
        let meta = FileMeta {
            path: bin,
            size: data.len() as u64,
            mode: 0o755,
        };
        assert_eq!(GoBinaryCataloger.interest(&meta), Interest::Analyze);
        assert!(GoBinaryCataloger.accepts_head(&data[..64]));
        let info = parse_go_binary(&data).unwrap().expect("build info");
        assert!(info.go_version.starts_with("go1."), "{}", info.go_version);
        // Cross-check with the Go toolchain's own reader when it is installed.
        if let Ok(out) = Command::new("go").args(["version", bin]).output()
            && out.status.success()
        {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.trim_end().ends_with(&info.go_version),
                "{text} vs {}",
                info.go_version
            );
        }
        let pkgs = GoBinaryCataloger.analyze(bin, &data).unwrap();
        let stdlib = pkgs.iter().find(|p| p.name == "stdlib").unwrap();
        assert_eq!(
            format!("go{}", stdlib.version.trim_start_matches('v')),
            info.go_version
        );
        assert_eq!(stdlib.location.path, bin);
        checked += 1;
    }
    if checked == 0 {
        eprintln!("no Debian Go binaries installed; skipped");
    }
}

/// Builds a module with a vendored dependency and a replaced one (no module proxy needed) and reads
/// its build info back.
#[test]
fn go_module_binary_built_here() {
    if !have("go") {
        eprintln!("go not installed; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "go.mod",
        "module example.com/hello\n\ngo 1.19\n\nrequire example.com/greet v1.4.2\n",
    );
    write(
        "main.go",
        "package main\n\nimport (\n\t\"fmt\"\n\t\"example.com/greet\"\n)\n\nfunc main() { fmt.Println(greet.Hello()) }\n",
    );
    write(
        "vendor/example.com/greet/greet.go",
        "package greet\n\nfunc Hello() string { return \"hi\" }\n",
    );
    write(
        "vendor/modules.txt",
        "# example.com/greet v1.4.2\n## explicit\nexample.com/greet\n",
    );
    let out_bin = root.join("hello");
    let status = Command::new("go")
        .args(["build", "-mod=vendor", "-buildvcs=false", "-o"])
        .arg(&out_bin)
        .arg(".")
        .current_dir(root)
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", root.join("cache"))
        .env("GOPATH", root.join("gopath"))
        .status()
        .unwrap();
    assert!(status.success());
    let data = std::fs::read(&out_bin).unwrap();
    let info = parse_go_binary(&data).unwrap().unwrap();
    assert_eq!(info.path.as_deref(), Some("example.com/hello"));
    assert_eq!(info.main.as_ref().unwrap().path, "example.com/hello");
    let pkgs = GoBinaryCataloger.analyze("/app/hello", &data).unwrap();
    let mut got: Vec<String> = pkgs
        .iter()
        .map(|p| format!("{}@{}", p.name, p.version))
        .collect();
    got.sort();
    let go_version = String::from_utf8(
        Command::new("go")
            .args(["env", "GOVERSION"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let stdlib = format!(
        "stdlib@v{}",
        go_version.trim().trim_start_matches("go")
    );
    // The main module is `(devel)` (no VCS) and is not reported.
    assert_eq!(got, vec!["example.com/greet@v1.4.2".to_string(), stdlib]);
}

#[test]
fn go_binary_not_found_in_other_files() {
    let data = std::fs::read("/bin/ls").unwrap();
    assert!(parse_go_binary(&data).unwrap().is_none());
    assert!(
        GoBinaryCataloger
            .analyze("/bin/ls", &data)
            .unwrap()
            .is_empty()
    );
}
