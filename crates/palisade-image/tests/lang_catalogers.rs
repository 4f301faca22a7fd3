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
    for bin in [
        "/usr/bin/docker-registry",
        "/usr/bin/skopeo",
        "/usr/bin/umoci",
    ] {
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
        let start = std::time::Instant::now();
        let pkgs = GoBinaryCataloger.analyze(bin, &data).unwrap();
        let go_time = start.elapsed();
        let start = std::time::Instant::now();
        let crates = palisade_image::catalog::cargo::CargoCataloger
            .analyze(bin, &data)
            .unwrap();
        assert!(crates.is_empty());
        eprintln!(
            "{bin}: {} MB, go analyze {go_time:?}, cargo analyze {:?}",
            data.len() >> 20,
            start.elapsed()
        );
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
    let build = |goos: &str, goarch: &str| {
        let out_bin = root.join(format!("hello-{goos}-{goarch}"));
        let status = Command::new("go")
            .args(["build", "-mod=vendor", "-buildvcs=false", "-o"])
            .arg(&out_bin)
            .arg(".")
            .current_dir(root)
            .env("GOPROXY", "off")
            .env("GOFLAGS", "")
            .env("GOOS", goos)
            .env("GOARCH", goarch)
            .env("CGO_ENABLED", "0")
            .env("GOPATH", root.join("gopath"))
            .status()
            .unwrap();
        assert!(status.success(), "{goos}/{goarch}");
        std::fs::read(&out_bin).unwrap()
    };
    // PE (no build info section: found by scanning), Mach-O (`__go_buildinfo`), 32-bit and
    // big-endian ELF.
    for (goos, goarch) in [
        ("windows", "amd64"),
        ("darwin", "arm64"),
        ("linux", "386"),
        ("linux", "s390x"),
    ] {
        let data = build(goos, goarch);
        assert!(
            GoBinaryCataloger.accepts_head(&data[..64]),
            "{goos}/{goarch}"
        );
        let info = parse_go_binary(&data).unwrap().expect(goos);
        assert!(info.go_version.starts_with("go1."), "{goos}/{goarch}");
        assert_eq!(info.deps.len(), 1, "{goos}/{goarch}");
        assert_eq!(info.deps[0].version, "v1.4.2");
    }
    let data = build("linux", "amd64");
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
    let stdlib = format!("stdlib@v{}", go_version.trim().trim_start_matches("go"));
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

mod java {
    use palisade_image::catalog::java::{ArchiveLimits, JavaCataloger, parse_java_archive};
    use palisade_image::catalog::{Cataloger, FileMeta, Interest};
    use std::io::{Cursor, Write};

    const LANG3: &str = "/usr/share/java/commons-lang3.jar";

    /// Every jar Debian installed here parses; the Maven-built ones give their coordinates.
    #[test]
    fn debian_jars() {
        let Ok(rd) = std::fs::read_dir("/usr/share/java") else {
            eprintln!("no /usr/share/java; skipped");
            return;
        };
        let mut jars = 0;
        let mut with_packages = 0;
        for e in rd.flatten() {
            let p = e.path();
            if p.is_symlink() || p.extension().is_none_or(|x| x != "jar") {
                continue;
            }
            let path = p.to_str().unwrap();
            let data = std::fs::read(&p).unwrap();
            let meta = FileMeta {
                path,
                size: data.len() as u64,
                mode: 0o644,
            };
            assert_eq!(JavaCataloger.interest(&meta), Interest::Analyze);
            assert!(
                JavaCataloger.accepts_head(&data[..64.min(data.len())]),
                "{path}"
            );
            let pkgs = JavaCataloger.analyze(path, &data).unwrap();
            jars += 1;
            if !pkgs.is_empty() {
                with_packages += 1;
            }
        }
        eprintln!("{with_packages}/{jars} Debian jars with packages");
        assert!(jars == 0 || with_packages * 10 >= jars * 8);
        if let Ok(data) = std::fs::read(LANG3) {
            let pkgs = JavaCataloger.analyze(LANG3, &data).unwrap();
            assert_eq!(pkgs.len(), 1);
            assert_eq!(
                pkgs[0].purl,
                "pkg:maven/org.apache.commons/commons-lang3@3.12.0"
            );
        }
    }

    /// A war built here around real Debian jars.
    #[test]
    fn war_around_debian_jars() {
        let (Ok(lang3), Ok(io)) = (
            std::fs::read(LANG3),
            std::fs::read("/usr/share/java/commons-io.jar"),
        ) else {
            eprintln!("Debian jars missing; skipped");
            return;
        };
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        for (name, data) in [
            ("WEB-INF/web.xml", b"<web-app/>".as_slice()),
            ("WEB-INF/lib/commons-lang3-3.12.0.jar", &lang3),
            ("WEB-INF/lib/commons-io-2.11.0.jar", &io),
        ] {
            w.start_file(name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        let war = w.finish().unwrap().into_inner();
        let pkgs = parse_java_archive("/srv/app.war", &war, &ArchiveLimits::default()).unwrap();
        let mut got: Vec<String> = pkgs
            .iter()
            .map(|p| format!("{}@{}", p.name, p.version))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "commons-io:commons-io@2.11.0",
                "org.apache.commons:commons-lang3@3.12.0"
            ]
        );
        assert!(
            pkgs.iter()
                .any(|p| p.path == "/srv/app.war:WEB-INF/lib/commons-io-2.11.0.jar")
        );
    }
}

/// Gem specifications as Ruby and Debian's rubygems-integration installed them here.
#[test]
fn debian_gemspecs() {
    use palisade_image::catalog::ruby::parse_gemspec;
    let mut parsed = 0;
    for dir in [
        "/usr/share/rubygems-integration/all/specifications",
        "/usr/lib/ruby/gems/3.1.0/specifications/default",
        "/usr/lib/ruby/gems/3.1.0/specifications",
    ] {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let file = p.file_name().unwrap().to_str().unwrap().to_string();
            let Some(stem) = file.strip_suffix(".gemspec") else {
                continue;
            };
            let g = parse_gemspec(&std::fs::read(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            // Installed specs are named `<name>-<version>[-<platform>].gemspec`.
            let expected = format!("{}-{}", g.name, g.version);
            assert!(stem.starts_with(&expected), "{stem} vs {expected}");
            parsed += 1;
        }
    }
    if parsed == 0 {
        eprintln!("no installed gem specifications here; skipped");
    }
}

/// `interest` runs for every file of every layer: measure it over real paths of this machine.
#[test]
fn interest_is_cheap() {
    use palisade_image::catalog::{
        cargo::CargoCataloger, dotnet::DotnetCataloger, java::JavaCataloger, npm::NpmCataloger,
        php::PhpCataloger, python::PythonCataloger, ruby::RubyCataloger,
    };
    let catalogers: Vec<Box<dyn Cataloger>> = vec![
        Box::new(PythonCataloger),
        Box::new(NpmCataloger),
        Box::new(CargoCataloger),
        Box::new(GoBinaryCataloger),
        Box::new(JavaCataloger),
        Box::new(RubyCataloger),
        Box::new(PhpCataloger),
        Box::new(DotnetCataloger),
    ];
    let mut paths: Vec<(String, u32)> = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/usr")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                use std::os::unix::fs::PermissionsExt;
                let mode = e.metadata().map(|m| m.permissions().mode()).unwrap_or(0);
                paths.push((e.path().to_string_lossy().into_owned(), mode));
            }
            if paths.len() >= 100_000 {
                break;
            }
        }
        if paths.len() >= 100_000 {
            break;
        }
    }
    let start = std::time::Instant::now();
    let mut wanted = 0usize;
    for (path, mode) in &paths {
        let meta = FileMeta {
            path,
            size: 4096,
            mode: *mode,
        };
        for c in &catalogers {
            if c.interest(&meta) != Interest::Skip {
                wanted += 1;
            }
        }
    }
    let elapsed = start.elapsed();
    eprintln!(
        "interest: {} files × {} catalogers in {:?} ({:.0} ns/file), {wanted} wanted",
        paths.len(),
        catalogers.len(),
        elapsed,
        elapsed.as_nanos() as f64 / paths.len().max(1) as f64
    );
    assert!(elapsed < std::time::Duration::from_secs(2));
    assert!(wanted > 0);
}

mod tree {
    //! Whole-tree runs: files of a real directory fed through `interest`, `accepts_head`,
    //! `analyze` and `catalog` the way the layer reader does.
    use palisade_image::catalog::{
        CatalogContext, CatalogOutput, Cataloger, FileMeta, Interest, cargo::CargoCataloger,
        dotnet::DotnetCataloger, golang::GoBinaryCataloger, java::JavaCataloger, npm::NpmCataloger,
        php::PhpCataloger, python::PythonCataloger, ruby::RubyCataloger,
    };
    use palisade_image::{EntryKind, FileEntry, ImageFs};
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::sync::Arc;

    pub fn catalogers() -> Vec<Box<dyn Cataloger>> {
        vec![
            Box::new(PythonCataloger),
            Box::new(NpmCataloger),
            Box::new(CargoCataloger),
            Box::new(GoBinaryCataloger),
            Box::new(JavaCataloger),
            Box::new(RubyCataloger),
            Box::new(PhpCataloger),
            Box::new(DotnetCataloger),
        ]
    }

    /// Adds the regular files under `dir` to `fs` at `prefix` + their path below `dir`.
    pub fn add_tree(fs: &mut ImageFs, cats: &[Box<dyn Cataloger>], dir: &Path, prefix: &str) {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                let ft = e.file_type().unwrap();
                if ft.is_dir() {
                    stack.push(p);
                    continue;
                }
                if !ft.is_file() {
                    continue;
                }
                let rel = p.strip_prefix(dir).unwrap().to_str().unwrap();
                let path = format!("{prefix}/{rel}");
                let md = e.metadata().unwrap();
                let mode = md.permissions().mode();
                let meta = FileMeta {
                    path: &path,
                    size: md.len(),
                    mode,
                };
                let mut keep = false;
                let mut analyzers = Vec::new();
                for c in cats {
                    match c.interest(&meta) {
                        Interest::Keep => keep = true,
                        Interest::Analyze => analyzers.push(c),
                        Interest::Skip => {}
                    }
                }
                if !keep && analyzers.is_empty() {
                    continue;
                }
                let data = std::fs::read(&p).unwrap();
                let kind = if keep {
                    EntryKind::File(Arc::from(data.as_slice()))
                } else {
                    let head = &data[..data.len().min(64)];
                    let mut found = Vec::new();
                    for c in analyzers {
                        if c.accepts_head(head) {
                            let pkgs = c.analyze(&path, &data).unwrap_or_default();
                            found.push((c.name(), pkgs));
                        }
                    }
                    EntryKind::Analyzed(found)
                };
                fs.insert(
                    path,
                    FileEntry {
                        layer: None,
                        mode,
                        kind,
                    },
                );
            }
        }
    }

    pub fn catalog_all(fs: &ImageFs, cats: &[Box<dyn Cataloger>]) -> CatalogOutput {
        let mut out = CatalogOutput::default();
        for c in cats {
            let o = c.catalog(fs, &CatalogContext::default());
            out.packages.extend(o.packages);
            out.errors.extend(o.errors);
        }
        out
    }

    /// Debian's Python distributions, jars and gems of this machine, plus the real lock file npm 9
    /// wrote for `npm install express@4.16.0 lodash@4.17.4 minimist@1.2.0`.
    #[test]
    fn machine_tree() {
        let cats = catalogers();
        let mut fs = ImageFs::new(40);
        for (dir, prefix) in [
            (
                "/usr/lib/python3/dist-packages",
                "/usr/lib/python3/dist-packages",
            ),
            ("/usr/share/java", "/usr/share/java"),
            (
                "/usr/share/rubygems-integration",
                "/usr/share/rubygems-integration",
            ),
        ] {
            if Path::new(dir).is_dir() {
                add_tree(&mut fs, &cats, Path::new(dir), prefix);
            }
        }
        let lock = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/npm/express-4.16.0-package-lock.json"
        ))
        .unwrap();
        fs.insert(
            "/opt/nodeapp/package-lock.json".into(),
            FileEntry {
                layer: None,
                mode: 0o644,
                kind: EntryKind::File(Arc::from(lock.as_slice())),
            },
        );
        // Two of them installed: the lock file entries for these must give way.
        for (name, version) in [("lodash", "4.17.4"), ("express", "4.16.0")] {
            fs.insert(
                format!("/opt/nodeapp/node_modules/{name}/package.json"),
                FileEntry {
                    layer: None,
                    mode: 0o644,
                    kind: EntryKind::File(Arc::from(
                        format!(r#"{{"name":"{name}","version":"{version}"}}"#).as_bytes(),
                    )),
                },
            );
        }
        let out = catalog_all(&fs, &cats);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let npm: Vec<_> = out
            .packages
            .iter()
            .filter(|p| p.purl.starts_with("pkg:npm/"))
            .collect();
        assert_eq!(npm.len(), 53, "every lock entry once");
        for (name, path) in [
            ("lodash", "/opt/nodeapp/node_modules/lodash/package.json"),
            ("express", "/opt/nodeapp/node_modules/express/package.json"),
            ("minimist", "/opt/nodeapp/package-lock.json"),
        ] {
            let found: Vec<_> = npm.iter().filter(|p| p.name == name).collect();
            assert_eq!(found.len(), 1, "{name}");
            assert_eq!(found[0].location.path, path);
        }
        if Path::new("/usr/lib/python3/dist-packages/PyYAML-6.0.dist-info").is_dir() {
            assert!(out.packages.iter().any(|p| p.purl == "pkg:pypi/pyyaml@6.0"));
        }
        if Path::new("/usr/share/java/commons-lang3.jar").is_file() {
            assert!(
                out.packages
                    .iter()
                    .any(|p| p.purl == "pkg:maven/org.apache.commons/commons-lang3@3.12.0")
            );
        }
        if Path::new("/usr/share/rubygems-integration/all/specifications/rake-13.0.6.gemspec")
            .is_file()
        {
            assert!(out.packages.iter().any(|p| p.purl == "pkg:gem/rake@13.0.6"));
        }
        let mut by_eco = std::collections::BTreeMap::new();
        for p in &out.packages {
            *by_eco.entry(p.ecosystem.to_string()).or_insert(0) += 1;
        }
        eprintln!("machine tree: {by_eco:?}");
    }

    /// Any directory, given in `LANGCAT_TREE` (e.g. a pip `--target` dir plus an npm app):
    /// prints what the catalogers find. A manual tool, hence ignored.
    #[test]
    #[ignore]
    fn tree_from_env() {
        let Ok(root) = std::env::var("LANGCAT_TREE") else {
            return;
        };
        let cats = catalogers();
        let mut fs = ImageFs::new(40);
        add_tree(&mut fs, &cats, Path::new(&root), "");
        let out = catalog_all(&fs, &cats);
        for p in &out.packages {
            println!("{} {}", p.purl, p.location.path);
        }
        for e in &out.errors {
            println!("ERROR {e}");
        }
    }
}
