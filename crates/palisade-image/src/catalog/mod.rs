//! Package catalogers. Each registers for the paths it wants (decided from the path, size and mode
//! alone, before any content is read), so one pass over each layer feeds them all.
//!
//! Two kinds of interest: [`Interest::Keep`] holds the file in the [`ImageFs`] until all layers are
//! applied (package databases, lock files, manifests — small, and possibly overwritten or deleted by
//! later layers); [`Interest::Analyze`] hands the content to [`Cataloger::analyze`] while the layer
//! streams past and keeps only the packages found (binaries, jars — large).

pub mod apk;
pub mod cargo;
pub mod dotnet;
pub mod dpkg;
pub mod golang;
pub mod java;
pub mod npm;
pub mod os;
pub mod php;
pub mod python;
pub mod rpm;
pub mod ruby;

use crate::fs::{EntryKind, ImageFs};
use palisade_core::{Distro, Package};
use thiserror::Error;

/// Metadata of a file as seen in a layer or a directory walk, before its content is read.
#[derive(Debug, Clone, Copy)]
pub struct FileMeta<'a> {
    /// Normalised absolute path (`/var/lib/dpkg/status`).
    pub path: &'a str,
    pub size: u64,
    pub mode: u32,
}

impl FileMeta<'_> {
    pub fn is_executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
    /// The last path component.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }
}

/// What a cataloger wants of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    Skip,
    Keep,
    Analyze,
}

/// A failure to read one package source. The scan goes on (the error becomes a warning in the
/// SBOM); only the packages of that file are missing.
#[derive(Debug, Error)]
#[error("{cataloger}: {path}: {message}")]
pub struct CatalogError {
    pub cataloger: &'static str,
    pub path: String,
    pub message: String,
}

impl CatalogError {
    pub fn new(cataloger: &'static str, path: impl Into<String>, message: impl ToString) -> Self {
        CatalogError {
            cataloger,
            path: path.into(),
            message: message.to_string(),
        }
    }
}

/// Why a package metadata file (lock file, manifest, build info) could not be read: a description
/// of the first problem found. Shared by the language catalogers' parsers.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct FormatError(pub String);

impl From<String> for FormatError {
    fn from(s: String) -> Self {
        FormatError(s)
    }
}

impl From<&str> for FormatError {
    fn from(s: &str) -> Self {
        FormatError(s.to_string())
    }
}

/// What catalogers see of the whole scan besides files.
#[derive(Debug, Clone, Default)]
pub struct CatalogContext {
    pub distro: Option<Distro>,
}

/// Packages and per-file failures from one cataloger.
#[derive(Debug, Default)]
pub struct CatalogOutput {
    pub packages: Vec<Package>,
    pub errors: Vec<CatalogError>,
}

/// One source of packages (a package database format or a language's metadata).
pub trait Cataloger: Send + Sync {
    /// Short stable name (`dpkg`, `python`, …), used in warnings and [`EntryKind::Analyzed`].
    fn name(&self) -> &'static str;

    /// Whether this cataloger needs the file. Called for every regular file of every layer:
    /// it must be cheap.
    fn interest(&self, file: &FileMeta<'_>) -> Interest;

    /// For [`Interest::Analyze`]: a cheap check on the first bytes (at most 64) before the whole
    /// file is read, e.g. the ELF or zip magic. Defaults to accepting everything.
    fn accepts_head(&self, _head: &[u8]) -> bool {
        true
    }

    /// For [`Interest::Analyze`]: the packages in one file, while its layer streams past. Locations
    /// need only the path; the layer digest is filled in by the caller.
    fn analyze(&self, _path: &str, _data: &[u8]) -> Result<Vec<Package>, CatalogError> {
        Ok(Vec::new())
    }

    /// After all layers are applied: the packages from the kept files (and, by default, the
    /// packages this cataloger found in-stream in files still present).
    fn catalog(&self, fs: &ImageFs, ctx: &CatalogContext) -> CatalogOutput {
        let _ = ctx;
        analyzed_packages(self.name(), fs)
    }
}

/// The packages a cataloger found in-stream in files that survived all layers.
pub fn analyzed_packages(cataloger: &'static str, fs: &ImageFs) -> CatalogOutput {
    let mut out = CatalogOutput::default();
    for (_, entry) in fs.iter() {
        if let EntryKind::Analyzed(found) = &entry.kind {
            for (c, packages) in found {
                if *c == cataloger {
                    out.packages.extend(packages.iter().cloned());
                }
            }
        }
    }
    out
}

/// Every cataloger Palisade has, in the order their packages are listed.
pub fn all_catalogers() -> Vec<Box<dyn Cataloger>> {
    vec![
        Box::new(dpkg::DpkgCataloger),
        Box::new(apk::ApkCataloger),
        Box::new(rpm::RpmCataloger),
        Box::new(python::PythonCataloger),
        Box::new(npm::NpmCataloger),
        Box::new(cargo::CargoCataloger),
        Box::new(golang::GoBinaryCataloger),
        Box::new(java::JavaCataloger),
        Box::new(ruby::RubyCataloger),
        Box::new(php::PhpCataloger),
        Box::new(dotnet::DotnetCataloger),
    ]
}

/// What all catalogers together want of a file: whether to keep its content, and which catalogers
/// analyse it in-stream (a file can be both kept and analysed).
#[derive(Default)]
pub struct CombinedInterest<'c> {
    pub keep: bool,
    pub analyzers: Vec<&'c dyn Cataloger>,
}

impl CombinedInterest<'_> {
    pub fn is_skip(&self) -> bool {
        !self.keep && self.analyzers.is_empty()
    }
}

/// Asks every cataloger (and the OS detector) about one file.
pub fn combined_interest<'c>(
    catalogers: &'c [Box<dyn Cataloger>],
    file: &FileMeta<'_>,
) -> CombinedInterest<'c> {
    let mut out = CombinedInterest {
        keep: os::wants(file.path),
        analyzers: Vec::new(),
    };
    for c in catalogers {
        match c.interest(file) {
            Interest::Analyze => out.analyzers.push(c.as_ref()),
            Interest::Keep => out.keep = true,
            Interest::Skip => {}
        }
    }
    out
}
