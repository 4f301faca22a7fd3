//! Helpers for the layer tests: a raw tar writer (it writes whatever path it is given, unlike the
//! tar crate's builder), compressors, and a small cataloger that shows keep/analyse decisions.
#![allow(dead_code)]

use palisade_core::{Ecosystem, Package, PackageLocation};
use palisade_image::catalog::{
    CatalogContext, CatalogError, CatalogOutput, Cataloger, FileMeta, Interest, analyzed_packages,
};
use palisade_image::fs::{EntryKind, ImageFs};
use std::io::{Read, Write};

/// Builds tar streams header by header.
#[derive(Default)]
pub struct Tar {
    pub buf: Vec<u8>,
}

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    assert!(s.len() <= digits, "value too large for field");
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
}

impl Tar {
    pub fn new() -> Self {
        Tar::default()
    }

    /// One ustar header plus padded data; `name` and `link` are written verbatim.
    pub fn entry(
        &mut self,
        name: &str,
        typeflag: u8,
        data: &[u8],
        link: &str,
        mode: u32,
    ) -> &mut Self {
        let mut h = [0u8; 512];
        assert!(name.len() <= 100 && link.len() <= 100);
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], u64::from(mode));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], data.len() as u64);
        octal(&mut h[136..148], 0);
        h[156] = typeflag;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        self.buf.extend_from_slice(&h);
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, b'0', data, "", 0o644)
    }
    pub fn exe(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, b'0', data, "", 0o755)
    }
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, b'5', b"", "", 0o755)
    }
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, b'2', b"", target, 0o777)
    }
    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, b'1', b"", target, 0o644)
    }
    /// A GNU long-name entry followed by a file.
    pub fn long_file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        self.entry("././@LongLink", b'L', &n, "", 0o644);
        self.file(&name[..name.len().min(100)], data)
    }
    /// A PAX extended header setting `path`, followed by a file.
    pub fn pax_file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let body = |len: usize| format!("{len} path={name}\n");
        let mut len = body(0).len();
        while body(len).len() != len {
            len = body(len).len();
        }
        self.entry("PaxHeaders/x", b'x', body(len).as_bytes(), "", 0o644);
        self.file("short-name-ignored", data)
    }
    /// Two zero blocks: the end of the archive.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

pub fn reader(data: Vec<u8>) -> Box<dyn Read + Send> {
    Box::new(std::io::Cursor::new(data))
}

/// Keeps `*.keep` files (package name = content), analyses executables named `*.bin` whose
/// first bytes are `PKG:` (one package per line after it).
pub struct TestCataloger;

impl Cataloger for TestCataloger {
    fn name(&self) -> &'static str {
        "test"
    }
    fn interest(&self, file: &FileMeta<'_>) -> Interest {
        if file.path.ends_with(".keep") {
            Interest::Keep
        } else if file.path.ends_with(".bin") {
            Interest::Analyze
        } else {
            Interest::Skip
        }
    }
    fn accepts_head(&self, head: &[u8]) -> bool {
        head.starts_with(b"PKG:")
    }
    fn analyze(&self, path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
        let text = std::str::from_utf8(data).map_err(|e| CatalogError::new("test", path, e))?;
        Ok(text
            .lines()
            .filter_map(|l| l.strip_prefix("PKG:"))
            .map(|name| {
                Package::new(
                    Ecosystem::Npm,
                    name.trim(),
                    "1.0.0",
                    PackageLocation {
                        layer_digest: None,
                        path: path.to_string(),
                    },
                )
            })
            .collect())
    }
    fn catalog(&self, fs: &ImageFs, _ctx: &CatalogContext) -> CatalogOutput {
        let mut out = analyzed_packages(self.name(), fs);
        for (path, entry) in fs.iter() {
            if let EntryKind::File(data) = &entry.kind
                && path.ends_with(".keep")
            {
                let name = String::from_utf8_lossy(data).trim().to_string();
                if !name.is_empty() {
                    out.packages.push(Package::new(
                        Ecosystem::Npm,
                        name,
                        "2.0.0",
                        PackageLocation {
                            layer_digest: None,
                            path: path.to_string(),
                        },
                    ));
                }
            }
        }
        out
    }
}

pub fn catalogers() -> Vec<Box<dyn Cataloger>> {
    vec![Box::new(TestCataloger)]
}

/// Content of a kept file as text.
pub fn text(fs: &ImageFs, path: &str) -> Option<String> {
    fs.read(path)
        .map(|d| String::from_utf8_lossy(d).into_owned())
}
