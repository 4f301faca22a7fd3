//! Java archives (jar, war, ear, Jenkins plugins): Maven coordinates from
//! `META-INF/maven/<group>/<artifact>/pom.properties` (preferred; shaded jars carry several), else
//! from `META-INF/MANIFEST.MF` and the file name. Archives inside archives (`WEB-INF/lib/*.jar`,
//! `BOOT-INF/lib/*.jar`, wars in ears) are read recursively.
//!
//! Hostile archives are bounded: nesting depth, entries per archive and in total, and the
//! uncompressed bytes read over the whole analysis (zip bombs) are capped.

use super::{CatalogError, Cataloger, FileMeta, Interest};
use palisade_core::{Ecosystem, Package, PackageLocation};
use std::collections::HashSet;
use std::io::{Cursor, Read};

const NAME: &str = "java";

/// Bounds on reading one top-level archive and everything nested in it.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveLimits {
    /// Archives inside archives below the top level (a jar in a war is depth 1).
    pub max_depth: u32,
    /// Uncompressed bytes read over all entries of all nesting levels.
    pub max_total_bytes: u64,
    /// Uncompressed size of one nested archive (it is held in memory while read).
    pub max_nested_bytes: u64,
    /// Entries in one archive's central directory.
    pub max_entries_per_archive: usize,
    /// Entries over all archives.
    pub max_total_entries: usize,
    /// Size of one metadata file (manifest, pom.properties).
    pub max_metadata_bytes: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_depth: 4,
            max_total_bytes: 512 << 20,
            max_nested_bytes: 128 << 20,
            max_entries_per_archive: 200_000,
            max_total_entries: 1_000_000,
            max_metadata_bytes: 1 << 20,
        }
    }
}

/// Finds Maven packages in Java archives.
pub struct JavaCataloger;

/// Coordinates of one Java package.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JavaPackage {
    /// `group:artifact`, or just the artifact when no group is known.
    pub name: String,
    pub version: String,
    /// Where it was found: the archive path, with `:inner/path.jar` for nested archives.
    pub path: String,
}

fn is_archive_name(name: &str) -> bool {
    let n = name.len();
    if n < 5 || name.as_bytes()[n - 4] != b'.' {
        return false;
    }
    let ext = &name[n - 3..];
    ["jar", "war", "ear", "jpi", "hpi"]
        .iter()
        .any(|e| ext.eq_ignore_ascii_case(e))
}

/// Why reading an archive stopped: a bound was hit (stops everything, the archive may be hostile)
/// or the data is corrupt (a nested archive that is corrupt loses only its own packages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    #[error("limit exceeded: {0}")]
    Limit(String),
    #[error("{0}")]
    Corrupt(String),
}

struct Budget {
    bytes_left: u64,
    entries_left: usize,
}

/// Reads the packages of a Java archive held in memory, with `path` naming it in locations.
pub fn parse_java_archive(
    path: &str,
    data: &[u8],
    limits: &ArchiveLimits,
) -> Result<Vec<JavaPackage>, ArchiveError> {
    let mut budget = Budget {
        bytes_left: limits.max_total_bytes,
        entries_left: limits.max_total_entries,
    };
    let mut out = Vec::new();
    read_archive(path, data, 0, limits, &mut budget, &mut out)?;
    let mut seen = HashSet::new();
    out.retain(|p| seen.insert((p.name.clone(), p.version.clone(), p.path.clone())));
    Ok(out)
}

fn read_archive(
    path: &str,
    data: &[u8],
    depth: u32,
    limits: &ArchiveLimits,
    budget: &mut Budget,
    out: &mut Vec<JavaPackage>,
) -> Result<(), ArchiveError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(data))
        .map_err(|e| ArchiveError::Corrupt(format!("not a zip archive: {e}")))?;
    let n = zip.len();
    if n > limits.max_entries_per_archive {
        return Err(ArchiveError::Limit(format!(
            "{n} entries (more than {})",
            limits.max_entries_per_archive
        )));
    }
    if n > budget.entries_left {
        return Err(ArchiveError::Limit(format!(
            "more than {} entries over all nested archives",
            limits.max_total_entries
        )));
    }
    budget.entries_left -= n;

    let mut manifest_idx = None;
    let mut poms: Vec<usize> = Vec::new();
    let mut nested: Vec<(usize, String)> = Vec::new();
    for i in 0..n {
        let Some(Ok(name)) = zip.name_for_index(i) else {
            continue;
        };
        if name.ends_with('/') {
            continue;
        }
        if name.eq_ignore_ascii_case("META-INF/MANIFEST.MF") {
            manifest_idx = Some(i);
        } else if name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties") {
            poms.push(i);
        } else if is_archive_name(name.rsplit('/').next().unwrap_or(&name)) {
            nested.push((i, name.into_owned()));
        }
    }

    let mut found_pom = false;
    for i in poms {
        let text = read_entry(&mut zip, i, limits.max_metadata_bytes, budget)?;
        if let Some((group, artifact, version)) = parse_pom_properties(&text) {
            found_pom = true;
            out.push(JavaPackage {
                name: format!("{group}:{artifact}"),
                version,
                path: path.to_string(),
            });
        }
    }
    if !found_pom {
        let manifest = match manifest_idx {
            Some(i) => Some(read_entry(&mut zip, i, limits.max_metadata_bytes, budget)?),
            None => None,
        };
        let file_name = path.rsplit(['/', ':']).next().unwrap_or(path);
        if let Some(p) = from_manifest_and_name(manifest.as_deref(), file_name) {
            out.push(JavaPackage {
                name: p.0,
                version: p.1,
                path: path.to_string(),
            });
        }
    }

    if depth >= limits.max_depth {
        return Ok(());
    }
    for (i, name) in nested {
        let inner_path = format!("{path}:{name}");
        // A corrupt nested archive loses only its own packages; exhausting a budget stops all.
        let bytes = match read_entry_bytes(&mut zip, i, limits.max_nested_bytes, budget) {
            Ok(b) => b,
            Err(ArchiveError::Corrupt(_)) => continue,
            Err(ArchiveError::Limit(e)) => {
                return Err(ArchiveError::Limit(format!("{inner_path}: {e}")));
            }
        };
        match read_archive(&inner_path, &bytes, depth + 1, limits, budget, out) {
            Ok(()) | Err(ArchiveError::Corrupt(_)) => {}
            Err(e @ ArchiveError::Limit(_)) => return Err(e),
        }
    }
    Ok(())
}

fn read_entry(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    i: usize,
    cap: u64,
    budget: &mut Budget,
) -> Result<String, ArchiveError> {
    let bytes = read_entry_bytes(zip, i, cap, budget)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Reads one entry, at most `cap` bytes and never past the budget; never trusts the declared size
/// for allocation.
fn read_entry_bytes(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    i: usize,
    cap: u64,
    budget: &mut Budget,
) -> Result<Vec<u8>, ArchiveError> {
    let mut entry = zip
        .by_index(i)
        .map_err(|e| ArchiveError::Corrupt(format!("entry {i}: {e}")))?;
    let cap = cap.min(budget.bytes_left);
    let declared = entry.size();
    if declared > cap {
        return Err(ArchiveError::Limit(format!(
            "entry of {declared} bytes exceeds the read budget ({cap} bytes left)"
        )));
    }
    let mut buf = Vec::with_capacity(declared.min(16 << 20) as usize);
    (&mut entry)
        .take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ArchiveError::Corrupt(format!("entry {i}: {e}")))?;
    if buf.len() as u64 > cap {
        return Err(ArchiveError::Limit(format!(
            "entry {i} exceeds the read budget"
        )));
    }
    budget.bytes_left -= buf.len() as u64;
    Ok(buf)
}

/// `(groupId, artifactId, version)` from a `pom.properties` file.
pub fn parse_pom_properties(text: &str) -> Option<(String, String, String)> {
    let (mut g, mut a, mut v) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some(sep) = line.find(['=', ':']) else {
            continue;
        };
        let key = line[..sep].trim();
        let value = line[sep + 1..].trim();
        match key {
            "groupId" => g = Some(value),
            "artifactId" => a = Some(value),
            "version" => v = Some(value),
            _ => {}
        }
    }
    let ok = |s: &str| !s.is_empty() && !s.contains("${");
    match (g, a, v) {
        (Some(g), Some(a), Some(v)) if ok(g) && ok(a) && ok(v) => {
            Some((g.to_string(), a.to_string(), v.to_string()))
        }
        _ => None,
    }
}

/// Main-section attributes of a `MANIFEST.MF` (72-byte lines continued with a leading space).
pub fn parse_manifest(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break; // end of the main section
        }
        if let Some(cont) = line.strip_prefix(' ') {
            if let Some(last) = out.last_mut() {
                last.1.push_str(cont);
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
        if out.len() > 10_000 {
            break;
        }
    }
    out
}

/// Splits `commons-lang3-3.12.0.jar` into `("commons-lang3", Some("3.12.0"))`: the version
/// starts at the first `-` followed by a digit.
pub fn split_archive_name(file_name: &str) -> (String, Option<String>) {
    let stem = match file_name.rsplit_once('.') {
        Some((s, _)) => s,
        None => file_name,
    };
    let bytes = stem.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) && i > 0 {
            return (stem[..i].to_string(), Some(stem[i + 1..].to_string()));
        }
    }
    (stem.to_string(), None)
}

fn from_manifest_and_name(manifest: Option<&str>, file_name: &str) -> Option<(String, String)> {
    let attrs = manifest.map(parse_manifest).unwrap_or_default();
    let get = |k: &str| {
        attrs
            .iter()
            .find(|(key, v)| key.eq_ignore_ascii_case(k) && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let (file_artifact, file_version) = split_archive_name(file_name);
    let version = get("Implementation-Version")
        .or_else(|| get("Bundle-Version"))
        .map(str::to_string)
        .or(file_version)
        .or_else(|| get("Specification-Version").map(str::to_string))?;
    let artifact = if !file_artifact.is_empty() {
        file_artifact
    } else {
        get("Implementation-Title")
            .or_else(|| get("Bundle-SymbolicName"))?
            .to_string()
    };
    let group = get("Implementation-Vendor-Id").or_else(|| get("Automatic-Module-Group"));
    let name = match group {
        Some(g) if !g.contains(' ') => format!("{g}:{artifact}"),
        _ => artifact,
    };
    Some((name, version))
}

impl Cataloger for JavaCataloger {
    fn name(&self) -> &'static str {
        NAME
    }

    fn interest(&self, file: &FileMeta<'_>) -> Interest {
        if file.size >= 22 && is_archive_name(file.file_name()) {
            Interest::Analyze
        } else {
            Interest::Skip
        }
    }

    fn accepts_head(&self, head: &[u8]) -> bool {
        // Zip local header, empty-archive end record, or a launch script before the zip
        // (Spring Boot "fully executable" jars).
        head.starts_with(b"PK\x03\x04")
            || head.starts_with(b"PK\x05\x06")
            || head.starts_with(b"#!")
    }

    fn analyze(&self, path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
        let found = parse_java_archive(path, data, &ArchiveLimits::default())
            .map_err(|e| CatalogError::new(NAME, path, e))?;
        Ok(found
            .into_iter()
            .map(|p| {
                Package::new(
                    Ecosystem::Maven,
                    p.name,
                    p.version,
                    PackageLocation {
                        path: p.path,
                        layer_digest: None,
                    },
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in entries {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn pom(g: &str, a: &str, v: &str) -> Vec<u8> {
        format!("#Generated by Maven\n#Tue Jan 01 00:00:00 UTC 2021\ngroupId={g}\nartifactId={a}\nversion={v}\n")
            .into_bytes()
    }

    #[test]
    fn pom_properties() {
        assert_eq!(
            parse_pom_properties(
                "artifactId=commons-lang3\ngroupId=org.apache.commons\nversion=3.12.0\n"
            ),
            Some((
                "org.apache.commons".into(),
                "commons-lang3".into(),
                "3.12.0".into()
            ))
        );
        assert_eq!(parse_pom_properties("groupId=a\nartifactId=b\n"), None);
        assert_eq!(
            parse_pom_properties("groupId=a\nartifactId=b\nversion=${project.version}\n"),
            None
        );
    }

    #[test]
    fn manifest_continuations() {
        let m = parse_manifest(
            "Manifest-Version: 1.0\r\nImplementation-Title: Apache Commons\r\n  Lang\r\nBundle-Version: 3.1\r\n\r\nName: x\r\nFoo: bar\r\n",
        );
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].1, "Apache Commons Lang");
    }

    #[test]
    fn archive_names() {
        assert_eq!(
            split_archive_name("commons-lang3-3.12.0.jar"),
            ("commons-lang3".into(), Some("3.12.0".into()))
        );
        assert_eq!(
            split_archive_name("guava-31.1-jre.jar"),
            ("guava".into(), Some("31.1-jre".into()))
        );
        assert_eq!(split_archive_name("gettext.jar"), ("gettext".into(), None));
        assert!(is_archive_name("app.WAR"));
        assert!(!is_archive_name(".jar"));
        assert!(!is_archive_name("x.jarx"));
    }

    #[test]
    fn war_with_nested_jars() {
        let lang = zip_of(&[
            ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),
            (
                "META-INF/maven/org.apache.commons/commons-lang3/pom.properties",
                &pom("org.apache.commons", "commons-lang3", "3.9"),
            ),
        ]);
        // A shaded jar carrying two sets of coordinates.
        let shaded = zip_of(&[
            (
                "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
                &pom("org.apache.logging.log4j", "log4j-core", "2.14.1"),
            ),
            (
                "META-INF/maven/com.lmax/disruptor/pom.properties",
                &pom("com.lmax", "disruptor", "3.4.2"),
            ),
        ]);
        let manifest_only = zip_of(&[(
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\nImplementation-Title: thing\nImplementation-Version: 1.0.7\nImplementation-Vendor-Id: org.example\n",
        )]);
        let name_only = zip_of(&[("a/B.class", b"\xca\xfe\xba\xbe")]);
        let war = zip_of(&[
            ("WEB-INF/web.xml", b"<web-app/>"),
            ("WEB-INF/lib/commons-lang3-3.9.jar", &lang),
            ("WEB-INF/lib/log4j-core-2.14.1.jar", &shaded),
            ("WEB-INF/lib/thing-1.0.7.jar", &manifest_only),
            ("WEB-INF/lib/plain-2.0.jar", &name_only),
            ("WEB-INF/lib/corrupt-1.0.jar", b"PK\x03\x04 not really"),
        ]);
        let ear = zip_of(&[("app.war", &war), ("META-INF/application.xml", b"<x/>")]);
        let pkgs = parse_java_archive("/srv/app.ear", &ear, &ArchiveLimits::default()).unwrap();
        let mut got: Vec<String> = pkgs
            .iter()
            .map(|p| format!("{}@{} {}", p.name, p.version, p.path))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "com.lmax:disruptor@3.4.2 /srv/app.ear:app.war:WEB-INF/lib/log4j-core-2.14.1.jar",
                "org.apache.commons:commons-lang3@3.9 /srv/app.ear:app.war:WEB-INF/lib/commons-lang3-3.9.jar",
                "org.apache.logging.log4j:log4j-core@2.14.1 /srv/app.ear:app.war:WEB-INF/lib/log4j-core-2.14.1.jar",
                "org.example:thing@1.0.7 /srv/app.ear:app.war:WEB-INF/lib/thing-1.0.7.jar",
                "plain@2.0 /srv/app.ear:app.war:WEB-INF/lib/plain-2.0.jar",
            ]
        );
        let pkgs = JavaCataloger.analyze("/srv/app.ear", &ear).unwrap();
        let log4j = pkgs
            .iter()
            .find(|p| p.name.ends_with("log4j-core"))
            .unwrap();
        assert_eq!(
            log4j.purl,
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"
        );
        assert_eq!(log4j.ecosystem, Ecosystem::Maven);
    }

    #[test]
    fn depth_is_limited() {
        let mut inner = zip_of(&[(
            "META-INF/maven/g/deep/pom.properties",
            &pom("g", "deep", "1.0"),
        )]);
        for i in 0..6 {
            inner = zip_of(&[(&format!("lib/level{i}-1.0.jar"), &inner)]);
        }
        let limits = ArchiveLimits::default();
        let pkgs = parse_java_archive("/x.jar", &inner, &limits).unwrap();
        assert!(pkgs.iter().all(|p| p.name != "g:deep"));
        let deep = ArchiveLimits {
            max_depth: 10,
            ..limits
        };
        let pkgs = parse_java_archive("/x.jar", &inner, &deep).unwrap();
        assert!(pkgs.iter().any(|p| p.name == "g:deep"));
    }

    #[test]
    fn zip_bomb_is_bounded() {
        // 64 MiB of zeros deflates to ~64 KiB; nested ten times over it would be 640 MiB.
        let zeros = vec![0u8; 64 << 20];
        let bomb_jar = zip_of(&[
            ("a/zeros.bin", &zeros),
            ("META-INF/maven/g/a/pom.properties", &pom("g", "a", "1")),
        ]);
        let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
        for i in 0..10 {
            entries.push((format!("lib/bomb{i}-1.0.jar"), bomb_jar.clone()));
        }
        let refs: Vec<(&str, &[u8])> = entries
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let outer = zip_of(&refs);
        assert!(outer.len() < 2 << 20);
        let limits = ArchiveLimits {
            max_total_bytes: 1 << 20,
            ..ArchiveLimits::default()
        };
        // Nested jars are small compressed; the zeros are never read (not metadata), so only the
        // jars themselves count against the budget: 10 × ~64 KiB < 1 MiB.
        let pkgs = parse_java_archive("/bomb.jar", &outer, &limits).unwrap();
        assert!(pkgs.iter().any(|p| p.name == "g:a"));
        // A budget smaller than the nested jars stops reading with an error.
        let tiny = ArchiveLimits {
            max_total_bytes: 100_000,
            ..ArchiveLimits::default()
        };
        let err = parse_java_archive("/bomb.jar", &outer, &tiny).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::Limit(m) if m.contains("budget")),
            "{err}"
        );
        // A nested entry that inflates hugely is refused before inflating.
        let nested_bomb = zip_of(&[("lib/zeros-1.0.jar", &zeros)]);
        let err = parse_java_archive("/b.jar", &nested_bomb, &tiny).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::Limit(m) if m.contains("budget")),
            "{err}"
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(
            parse_java_archive("/x.jar", b"PK\x03\x04garbage", &ArchiveLimits::default()).is_err()
        );
        assert!(JavaCataloger.analyze("/x.jar", b"").is_err());
    }

    #[test]
    fn interest() {
        let f = |path| FileMeta {
            path,
            size: 1000,
            mode: 0o644,
        };
        assert_eq!(
            JavaCataloger.interest(&f("/usr/share/java/a.jar")),
            Interest::Analyze
        );
        assert_eq!(
            JavaCataloger.interest(&f("/srv/app.war")),
            Interest::Analyze
        );
        assert_eq!(JavaCataloger.interest(&f("/srv/app.txt")), Interest::Skip);
        assert!(JavaCataloger.accepts_head(b"PK\x03\x04\x14\x00"));
        assert!(!JavaCataloger.accepts_head(b"\x7fELF"));
    }
}
