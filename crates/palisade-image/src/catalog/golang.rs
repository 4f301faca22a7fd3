//! Go binaries: the build information the Go linker embeds (Go ≥ 1.13 module info; version string
//! in either the inline format of Go ≥ 1.18 or the older pointer format). Yields the standard
//! library (`stdlib`, versioned by the toolchain) and every module linked in.
//!
//! Layout of the build info blob (16-byte aligned, in `.go.buildinfo` or a data segment):
//! 14 bytes magic `\xff Go buildinf:`, pointer size, flags (bit 0 big-endian, bit 1 inline
//! strings), then either two pointers to Go string headers (version, module info) or, inline,
//! at offset 32 two uvarint-length-prefixed strings.

use super::{CatalogError, Cataloger, FileMeta, Interest};
use object::{Object, ObjectSection};
use palisade_core::{Ecosystem, Package, PackageLocation};

const NAME: &str = "golang";

pub use super::FormatError;

const MAGIC: &[u8] = b"\xff Go buildinf:";
/// The 16-byte sentinels the linker puts around the module info string.
const SENTINEL_LEN: usize = 16;
/// Longest version or module info string accepted.
const MAX_STRING: u64 = 4 << 20;
/// Module info lines read (each module is one or two lines).
const MAX_LINES: usize = 100_000;

/// Finds the Go toolchain and modules of Go executables.
pub struct GoBinaryCataloger;

/// The build information of one Go binary.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GoBuildInfo {
    /// Toolchain version as embedded: `go1.19.8`, `go1.21rc2`, `devel go1.22-abc …`.
    pub go_version: String,
    /// Main package path (`path` line).
    pub path: Option<String>,
    /// The main module (`mod` line), after replacement.
    pub main: Option<GoModule>,
    /// Dependencies (`dep` lines), after replacement.
    pub deps: Vec<GoModule>,
}

/// One module of a Go binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoModule {
    pub path: String,
    /// `v1.2.3`, a pseudo-version, `(devel)`, or empty for a local directory replacement.
    pub version: String,
}

/// A view of a binary's memory by virtual address, used to follow the pointers of the pre-1.18
/// format.
pub trait AddressSpace {
    /// `len` bytes at virtual address `addr`, if mapped with file content.
    fn read(&self, addr: u64, len: u64) -> Option<&[u8]>;
}

/// Sections of an object file as an [`AddressSpace`].
struct ObjectMemory<'d> {
    regions: Vec<(u64, &'d [u8])>,
}

impl AddressSpace for ObjectMemory<'_> {
    fn read(&self, addr: u64, len: u64) -> Option<&[u8]> {
        for (start, data) in &self.regions {
            let end = start.checked_add(data.len() as u64)?;
            if addr >= *start && addr < end {
                let off = usize::try_from(addr - start).ok()?;
                let len = usize::try_from(len).ok()?;
                return data.get(off..off.checked_add(len)?);
            }
        }
        None
    }
}

/// Reads the build information of a Go binary. `Ok(None)` for files that are not Go binaries
/// (or Go binaries older than 1.13, which carry none).
pub fn parse_go_binary(data: &[u8]) -> Result<Option<GoBuildInfo>, FormatError> {
    let parsed = object::File::parse(data).ok();
    // The blob: in its own section where the format has one, else anywhere in the file.
    let mut blob: Option<&[u8]> = None;
    if let Some(file) = &parsed {
        for name in [".go.buildinfo", "__go_buildinfo"] {
            if let Some(s) = file.section_by_name(name)
                && let Ok(d) = s.data()
                && d.starts_with(MAGIC)
            {
                blob = Some(d);
                break;
            }
        }
    }
    // ELF files with section headers always carry the blob in `.go.buildinfo`: scanning the
    // whole of every other executable would be wasted work.
    let elf_with_sections = parsed
        .as_ref()
        .is_some_and(|f| f.format() == object::BinaryFormat::Elf && f.sections().next().is_some());
    let blob = match blob {
        Some(b) => b,
        None if elf_with_sections => return Ok(None),
        None => match find_magic(data) {
            Some(off) => &data[off..],
            None => return Ok(None),
        },
    };
    let memory = ObjectMemory {
        regions: parsed
            .as_ref()
            .map(|f| {
                f.sections()
                    .filter_map(|s| Some((s.address(), s.data().ok()?)))
                    .filter(|(_, d)| !d.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    };
    parse_buildinfo_blob(blob, &memory).map(Some)
}

/// The first 16-byte aligned occurrence of the magic (the linker aligns the blob).
fn find_magic(data: &[u8]) -> Option<usize> {
    let finder = memchr::memmem::Finder::new(MAGIC);
    let mut start = 0;
    while let Some(i) = finder.find(data.get(start..)?) {
        let off = start + i;
        if off % 16 == 0 {
            return Some(off);
        }
        start = off + 1;
    }
    None
}

/// Parses the build info blob (starting at the magic); `memory` resolves the pointers of the
/// pre-1.18 format.
pub fn parse_buildinfo_blob(
    blob: &[u8],
    memory: &dyn AddressSpace,
) -> Result<GoBuildInfo, FormatError> {
    if blob.len() < 32 || !blob.starts_with(MAGIC) {
        return Err("truncated Go build info header".into());
    }
    let ptr_size = blob[14] as usize;
    let flags = blob[15];
    let (version, modinfo) = if flags & 0x2 != 0 {
        let (version, rest) = read_varint_string(&blob[32..])?;
        let (modinfo, _) = read_varint_string(rest)?;
        (version.to_vec(), modinfo.to_vec())
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(FormatError::from(format!(
                "invalid pointer size {ptr_size} in Go build info"
            )));
        }
        let big_endian = flags & 0x1 != 0;
        let version_ptr = read_ptr(&blob[16..], ptr_size, big_endian)?;
        let modinfo_ptr = read_ptr(&blob[16 + ptr_size..], ptr_size, big_endian)?;
        let version = read_go_string(memory, version_ptr, ptr_size, big_endian)?;
        let modinfo = read_go_string(memory, modinfo_ptr, ptr_size, big_endian)?;
        (version.to_vec(), modinfo.to_vec())
    };
    let go_version = String::from_utf8_lossy(&version).into_owned();
    let mut info = parse_modinfo(strip_sentinels(&modinfo));
    info.go_version = go_version;
    Ok(info)
}

fn read_varint_string(data: &[u8]) -> Result<(&[u8], &[u8]), FormatError> {
    let mut value: u64 = 0;
    let mut shift = 0u32;
    let mut i = 0usize;
    loop {
        let b = *data
            .get(i)
            .ok_or("truncated string length in Go build info")?;
        i += 1;
        if shift >= 64 {
            return Err("overlong string length in Go build info".into());
        }
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    if value > MAX_STRING {
        return Err(FormatError::from(format!(
            "string of {value} bytes in Go build info"
        )));
    }
    let end = i
        .checked_add(value as usize)
        .filter(|&e| e <= data.len())
        .ok_or("string runs past the Go build info")?;
    Ok((&data[i..end], &data[end..]))
}

fn read_ptr(data: &[u8], size: usize, big_endian: bool) -> Result<u64, FormatError> {
    let b = data
        .get(..size)
        .ok_or("truncated pointer in Go build info")?;
    let mut v: u64 = 0;
    if big_endian {
        for &x in b {
            v = (v << 8) | u64::from(x);
        }
    } else {
        for &x in b.iter().rev() {
            v = (v << 8) | u64::from(x);
        }
    }
    Ok(v)
}

/// Follows a pointer to a Go string header (data pointer, length) and reads the string.
fn read_go_string(
    memory: &dyn AddressSpace,
    addr: u64,
    ptr_size: usize,
    big_endian: bool,
) -> Result<&[u8], FormatError> {
    let header = memory
        .read(addr, 2 * ptr_size as u64)
        .ok_or_else(|| format!("Go build info points at unmapped address {addr:#x}"))?;
    let data_ptr = read_ptr(header, ptr_size, big_endian)?;
    let len = read_ptr(&header[ptr_size..], ptr_size, big_endian)?;
    if len > MAX_STRING {
        return Err(FormatError::from(format!(
            "string of {len} bytes in Go build info"
        )));
    }
    if len == 0 {
        return Ok(&[]);
    }
    memory
        .read(data_ptr, len)
        .ok_or_else(|| format!("Go build info string at unmapped address {data_ptr:#x}").into())
}

fn strip_sentinels(modinfo: &[u8]) -> &[u8] {
    let n = modinfo.len();
    if n > 2 * SENTINEL_LEN && modinfo[n - SENTINEL_LEN - 1] == b'\n' {
        &modinfo[SENTINEL_LEN..n - SENTINEL_LEN]
    } else {
        modinfo
    }
}

/// Parses the text module info (`path`, `mod`, `dep`, `=>` and `build` lines). Replacements
/// (`=>`) apply to the module on the line before.
pub fn parse_modinfo(text: &[u8]) -> GoBuildInfo {
    let text = String::from_utf8_lossy(text);
    let mut info = GoBuildInfo::default();
    // Which module the last mod/dep line filled: None, Some(None) for main, Some(Some(i)) deps.
    let mut last: Option<Option<usize>> = None;
    for line in text.lines().take(MAX_LINES) {
        let mut f = line.split('\t');
        let kind = f.next().unwrap_or("");
        let path = f.next().unwrap_or("").to_string();
        let version = f.next().unwrap_or("").to_string();
        match kind {
            "path" => {
                info.path = Some(path);
                last = None;
            }
            "mod" => {
                info.main = Some(GoModule { path, version });
                last = Some(None);
            }
            "dep" => {
                info.deps.push(GoModule { path, version });
                last = Some(Some(info.deps.len() - 1));
            }
            "=>" => {
                let target = match last {
                    Some(None) => info.main.as_mut(),
                    Some(Some(i)) => info.deps.get_mut(i),
                    None => None,
                };
                if let Some(m) = target {
                    *m = GoModule { path, version };
                }
                last = None;
            }
            _ => {}
        }
    }
    info
}

/// The standard library version of a toolchain version, in the SemVer form the Go vulnerability
/// database uses for `stdlib` (with Go's `v`): `go1.19.8` → `v1.19.8`, `go1.20` → `v1.20.0`,
/// `go1.21rc2` → `v1.21.0-rc.2`. `None` for development toolchains.
pub fn stdlib_version(go_version: &str) -> Option<String> {
    let v = go_version.split_whitespace().next()?.strip_prefix("go")?;
    // Experiments may follow as `-X:…` or `+…` suffixes.
    let v = v.split(['-', '+']).next()?;
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (nums, pre) = v.split_at(split);
    let parts: Vec<&str> = nums.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let major = parts[0];
    let minor = parts.get(1).copied().unwrap_or("0");
    let patch = parts.get(2).copied().unwrap_or("0");
    let mut out = format!("v{major}.{minor}.{patch}");
    if !pre.is_empty() {
        let label_end = pre.find(|c: char| c.is_ascii_digit()).unwrap_or(pre.len());
        let (label, num) = pre.split_at(label_end);
        if label.is_empty() || !label.bytes().all(|b| b.is_ascii_alphabetic()) {
            return None;
        }
        out.push('-');
        out.push_str(label);
        if !num.is_empty() {
            if !num.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            out.push('.');
            out.push_str(num);
        }
    }
    Some(out)
}

/// The packages of a binary's build info: `stdlib` and the modules with a real version.
pub fn buildinfo_packages(info: &GoBuildInfo, path: &str) -> Vec<Package> {
    let loc = || PackageLocation {
        path: path.to_string(),
        layer_digest: None,
    };
    let mut out = Vec::new();
    if let Some(v) = stdlib_version(&info.go_version) {
        out.push(Package::new(Ecosystem::Go, "stdlib", v, loc()));
    }
    for m in info.main.iter().chain(info.deps.iter()) {
        if m.path.is_empty() || m.version.is_empty() || m.version == "(devel)" {
            continue;
        }
        // A replacement by a local directory has a path like `./x` or `/x` and no version.
        if m.path.starts_with('.') || m.path.starts_with('/') {
            continue;
        }
        out.push(Package::new(
            Ecosystem::Go,
            m.path.clone(),
            m.version.clone(),
            loc(),
        ));
    }
    out
}

impl Cataloger for GoBinaryCataloger {
    fn name(&self) -> &'static str {
        NAME
    }

    fn interest(&self, file: &FileMeta<'_>) -> Interest {
        if file.is_executable() && file.size >= 64 {
            Interest::Analyze
        } else {
            Interest::Skip
        }
    }

    fn accepts_head(&self, head: &[u8]) -> bool {
        super::cargo::is_binary_head(head)
    }

    fn analyze(&self, path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
        match parse_go_binary(data) {
            Ok(Some(info)) => Ok(buildinfo_packages(&info, path)),
            Ok(None) => Ok(Vec::new()),
            Err(e) => Err(CatalogError::new(NAME, path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Regions(Vec<(u64, Vec<u8>)>);
    impl AddressSpace for Regions {
        fn read(&self, addr: u64, len: u64) -> Option<&[u8]> {
            let (start, data) = self
                .0
                .iter()
                .find(|(a, d)| addr >= *a && addr < a + d.len() as u64)?;
            let off = (addr - start) as usize;
            data.get(off..off + len as usize)
        }
    }

    const MODINFO: &str = "path\texample.com/app/cmd/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/net\tv0.7.0\th1:abc=\ndep\tgithub.com/old/x\tv1.0.0\th1:def=\n=>\tgithub.com/new/x\tv1.0.1\th1:ghi=\ndep\texample.com/local\tv1.2.3\n=>\t./local\t\t\nbuild\t-compiler=gc\nbuild\tGOOS=linux\n";

    fn sentinelled(s: &str) -> Vec<u8> {
        let mut v = vec![0x30u8; 16];
        v.extend_from_slice(s.as_bytes());
        v.extend_from_slice(&[0xf9u8; 16]);
        v
    }

    #[test]
    fn parses_modinfo_with_replacements() {
        let info = parse_modinfo(MODINFO.as_bytes());
        assert_eq!(info.path.as_deref(), Some("example.com/app/cmd/app"));
        assert_eq!(info.main.as_ref().unwrap().version, "(devel)");
        let deps: Vec<_> = info
            .deps
            .iter()
            .map(|m| format!("{} {}", m.path, m.version))
            .collect();
        assert_eq!(
            deps,
            [
                "golang.org/x/net v0.7.0",
                "github.com/new/x v1.0.1",
                "./local "
            ]
        );
        let mut info = info;
        info.go_version = "go1.19.8".into();
        let pkgs = buildinfo_packages(&info, "/app");
        let purls: Vec<_> = pkgs.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(
            purls,
            [
                "pkg:golang/stdlib@v1.19.8",
                "pkg:golang/golang.org/x/net@v0.7.0",
                "pkg:golang/github.com/new/x@v1.0.1"
            ]
        );
    }

    #[test]
    fn inline_format() {
        let mut blob = MAGIC.to_vec();
        blob.push(8);
        blob.push(0x2);
        blob.resize(32, 0);
        let version = b"go1.21rc2";
        blob.push(version.len() as u8);
        blob.extend_from_slice(version);
        let modinfo = sentinelled(MODINFO);
        // A two-byte uvarint length.
        assert!(modinfo.len() >= 128);
        blob.push((modinfo.len() as u8 & 0x7f) | 0x80);
        blob.push((modinfo.len() >> 7) as u8);
        blob.extend_from_slice(&modinfo);
        let info = parse_buildinfo_blob(&blob, &Regions(vec![])).unwrap();
        assert_eq!(info.go_version, "go1.21rc2");
        assert_eq!(info.deps.len(), 3);
        // Truncations are errors, not panics.
        for cut in [0, 20, 33, 40, blob.len() - 1] {
            assert!(parse_buildinfo_blob(&blob[..cut], &Regions(vec![])).is_err());
        }
    }

    fn pointer_blob(ptr_size: usize, big_endian: bool) -> (Vec<u8>, Regions) {
        let put = |v: u64, out: &mut Vec<u8>| {
            let bytes = if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            if big_endian {
                out.extend_from_slice(&bytes[8 - ptr_size..]);
            } else {
                out.extend_from_slice(&bytes[..ptr_size]);
            }
        };
        let mut blob = MAGIC.to_vec();
        blob.push(ptr_size as u8);
        blob.push(u8::from(big_endian));
        put(0x1000, &mut blob); // -> version string header
        put(0x1000 + 2 * ptr_size as u64, &mut blob); // -> modinfo string header
        blob.resize(32, 0);
        let version = b"go1.16.5".to_vec();
        let modinfo = sentinelled(MODINFO);
        let mut headers = Vec::new();
        put(0x2000, &mut headers);
        put(version.len() as u64, &mut headers);
        put(0x3000, &mut headers);
        put(modinfo.len() as u64, &mut headers);
        (
            blob,
            Regions(vec![
                (0x1000, headers),
                (0x2000, version),
                (0x3000, modinfo),
            ]),
        )
    }

    #[test]
    fn pointer_format_both_widths_and_orders() {
        for (size, be) in [(8, false), (4, false), (4, true), (8, true)] {
            let (blob, mem) = pointer_blob(size, be);
            let info = parse_buildinfo_blob(&blob, &mem).unwrap();
            assert_eq!(info.go_version, "go1.16.5", "{size} {be}");
            assert_eq!(info.deps[0].path, "golang.org/x/net");
        }
        let (blob, _) = pointer_blob(8, false);
        assert!(parse_buildinfo_blob(&blob, &Regions(vec![])).is_err());
        let mut bad = blob.clone();
        bad[14] = 3;
        assert!(parse_buildinfo_blob(&bad, &Regions(vec![])).is_err());
    }

    #[test]
    fn stdlib_versions() {
        assert_eq!(stdlib_version("go1.19.8").as_deref(), Some("v1.19.8"));
        assert_eq!(stdlib_version("go1.20").as_deref(), Some("v1.20.0"));
        assert_eq!(stdlib_version("go1.21rc2").as_deref(), Some("v1.21.0-rc.2"));
        assert_eq!(
            stdlib_version("go1.19beta1").as_deref(),
            Some("v1.19.0-beta.1")
        );
        assert_eq!(
            stdlib_version("go1.22.1 X:boringcrypto").as_deref(),
            Some("v1.22.1")
        );
        assert_eq!(stdlib_version("devel go1.22-abc"), None);
        assert_eq!(stdlib_version("go"), None);
        assert_eq!(stdlib_version(""), None);
    }

    #[test]
    fn non_go_files() {
        assert_eq!(parse_go_binary(b"").unwrap(), None);
        let t = std::fs::read("/usr/bin/true").unwrap();
        assert_eq!(parse_go_binary(&t).unwrap(), None);
        // Magic without a valid blob behind it.
        let mut junk = vec![0u8; 64];
        junk[16..30].copy_from_slice(MAGIC);
        assert!(parse_go_binary(&junk).is_err());
    }
}
