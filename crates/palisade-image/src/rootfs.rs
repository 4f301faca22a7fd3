//! Scanning a plain root file system (an unpacked image, a mounted node disk, or the host `/`).
//!
//! The tree is walked without following symlinks (they are recorded as text and resolved only
//! inside the in-memory root, like image layers); files are read only when a cataloger asks for
//! them, with the same caps as layers. Unreadable paths become warnings.

use crate::catalog::{Cataloger, FileMeta, combined_interest};
use crate::fs::{EntryKind, FileEntry, ImageFs};
use crate::layer::HEAD_BYTES;
use crate::sbom::{Sbom, ScanTarget, catalog_fs};
use crate::{ImageError, Limits};
use palisade_core::Package;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Pseudo file systems never walked when the root is the host's `/`.
const HOST_PSEUDO: &[&str] = &["/proc", "/sys", "/dev"];

/// How a root file system is walked.
#[derive(Debug, Clone, Default)]
pub struct RootfsOptions {
    /// Descend into directories on other devices than the root's (other mounts). Off by default,
    /// so scanning `/` does not wander into network shares, container overlays or `/run`.
    pub cross_mounts: bool,
}

/// Scans a directory tree as a root file system, staying on the root's device.
pub fn scan_rootfs(
    root: &Path,
    catalogers: &[Box<dyn Cataloger>],
    limits: &Limits,
) -> Result<Sbom, ImageError> {
    scan_rootfs_with(root, catalogers, limits, &RootfsOptions::default())
}

/// [`scan_rootfs`] with walking options.
pub fn scan_rootfs_with(
    root: &Path,
    catalogers: &[Box<dyn Cataloger>],
    limits: &Limits,
    opts: &RootfsOptions,
) -> Result<Sbom, ImageError> {
    let (fs, warnings) = read_rootfs(root, catalogers, limits, opts)?;
    let target = ScanTarget {
        kind: "filesystem".into(),
        name: root.display().to_string(),
        ..ScanTarget::default()
    };
    Ok(catalog_fs(target, &fs, catalogers, warnings))
}

/// Walks `root` into an [`ImageFs`] (entries have no layer), returning it with the warnings.
pub fn read_rootfs(
    root: &Path,
    catalogers: &[Box<dyn Cataloger>],
    limits: &Limits,
    opts: &RootfsOptions,
) -> Result<(ImageFs, Vec<String>), ImageError> {
    let root_display = root.display().to_string();
    let meta = std::fs::metadata(root).map_err(|e| ImageError::io(&root_display, e))?;
    if !meta.is_dir() {
        return Err(ImageError::Unsupported {
            what: "root file system".into(),
            value: format!("{root_display} is not a directory"),
        });
    }
    let is_host_root = std::fs::canonicalize(root)
        .map(|p| p == Path::new("/"))
        .unwrap_or(false);
    let mut w = Walker {
        catalogers,
        limits,
        root_dev: meta.dev(),
        cross_mounts: opts.cross_mounts,
        is_host_root,
        fs: ImageFs::new(limits.max_symlink_hops),
        warnings: Vec::new(),
        entries: 0,
        kept: 0,
        root_display,
    };
    w.fs.insert(
        "/".into(),
        FileEntry {
            layer: None,
            mode: meta.mode() & 0o7777,
            kind: EntryKind::Dir,
        },
    );
    // Depth-first with an explicit stack: no recursion depth to exhaust on deep trees.
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::from("/"))];
    while let Some((dir, image_dir)) = stack.pop() {
        w.walk_dir(&dir, &image_dir, &mut stack)?;
    }
    Ok((w.fs, w.warnings))
}

struct Walker<'a> {
    catalogers: &'a [Box<dyn Cataloger>],
    limits: &'a Limits,
    root_dev: u64,
    cross_mounts: bool,
    is_host_root: bool,
    fs: ImageFs,
    warnings: Vec<String>,
    entries: u64,
    kept: u64,
    root_display: String,
}

impl Walker<'_> {
    fn warn(&mut self, msg: String) {
        self.warnings.push(msg);
    }

    fn walk_dir(
        &mut self,
        dir: &Path,
        image_dir: &str,
        stack: &mut Vec<(PathBuf, String)>,
    ) -> Result<(), ImageError> {
        let read = match std::fs::read_dir(dir) {
            Ok(r) => r,
            Err(e) => {
                self.warn(format!("{}: cannot list: {e}", dir.display()));
                return Ok(());
            }
        };
        for item in read {
            let item = match item {
                Ok(i) => i,
                Err(e) => {
                    self.warn(format!("{}: cannot list: {e}", dir.display()));
                    break;
                }
            };
            self.entries += 1;
            if self.entries > self.limits.max_layer_entries {
                return Err(ImageError::LimitExceeded {
                    layer: format!("filesystem {}", self.root_display),
                    limit: format!(
                        "more than {} entries (max_layer_entries)",
                        self.limits.max_layer_entries
                    ),
                });
            }
            let name = item.file_name().to_string_lossy().into_owned();
            let image_path = if image_dir == "/" {
                format!("/{name}")
            } else {
                format!("{image_dir}/{name}")
            };
            let real = item.path();
            let meta = match std::fs::symlink_metadata(&real) {
                Ok(m) => m,
                Err(e) => {
                    self.warn(format!("{}: {e}", real.display()));
                    continue;
                }
            };
            let mode = meta.mode() & 0o7777;
            let ft = meta.file_type();
            if ft.is_dir() {
                if self.is_host_root && HOST_PSEUDO.contains(&image_path.as_str()) {
                    continue;
                }
                self.fs.insert(
                    image_path.clone(),
                    FileEntry {
                        layer: None,
                        mode,
                        kind: EntryKind::Dir,
                    },
                );
                if self.cross_mounts || meta.dev() == self.root_dev {
                    stack.push((real, image_path));
                }
            } else if ft.is_symlink() {
                match std::fs::read_link(&real) {
                    Ok(t) => self.fs.insert(
                        image_path,
                        FileEntry {
                            layer: None,
                            mode,
                            kind: EntryKind::Symlink(t.to_string_lossy().into_owned()),
                        },
                    ),
                    Err(e) => self.warn(format!("{}: cannot read link: {e}", real.display())),
                }
            } else if ft.is_file() {
                self.file(&real, image_path, meta.len(), mode)?;
            }
            // Devices, fifos and sockets carry no packages.
        }
        Ok(())
    }

    fn file(&mut self, real: &Path, path: String, size: u64, mode: u32) -> Result<(), ImageError> {
        let interest = combined_interest(
            self.catalogers,
            &FileMeta {
                path: &path,
                size,
                mode,
            },
        );
        if interest.is_skip() {
            return Ok(());
        }
        let limits = self.limits;
        let keep = interest.keep && size <= limits.max_kept_file_bytes;
        if interest.keep && !keep {
            self.warn(format!(
                "{path}: {size} bytes is over max_kept_file_bytes ({}), not read",
                limits.max_kept_file_bytes
            ));
        }
        if !keep && interest.analyzers.is_empty() {
            return Ok(());
        }
        let mut file = match File::open(real) {
            Ok(f) => f,
            Err(e) => {
                self.warn(format!("{}: cannot open: {e}", real.display()));
                return Ok(());
            }
        };
        let mut data = Vec::new();
        let mut accepted: Vec<&dyn Cataloger> = Vec::new();
        if !keep {
            if let Err(e) = (&mut file).take(HEAD_BYTES as u64).read_to_end(&mut data) {
                self.warn(format!("{}: cannot read: {e}", real.display()));
                return Ok(());
            }
            accepted = interest
                .analyzers
                .iter()
                .copied()
                .filter(|c| c.accepts_head(&data))
                .collect();
            if !accepted.is_empty() && size > limits.max_analyzed_file_bytes {
                self.warn(format!(
                    "{path}: {size} bytes is over max_analyzed_file_bytes ({}), not analysed",
                    limits.max_analyzed_file_bytes
                ));
                return Ok(());
            }
            if accepted.is_empty() {
                return Ok(());
            }
        }
        let cap = if keep {
            limits.max_kept_file_bytes
        } else {
            limits.max_analyzed_file_bytes
        };
        // The file may grow while it is read: never read more than the cap.
        if let Err(e) = (&mut file)
            .take(cap.saturating_add(1).saturating_sub(data.len() as u64))
            .read_to_end(&mut data)
        {
            self.warn(format!("{}: cannot read: {e}", real.display()));
            return Ok(());
        }
        if data.len() as u64 > cap {
            self.warn(format!("{path}: grew over {cap} bytes while read, skipped"));
            return Ok(());
        }
        if keep {
            self.kept += data.len() as u64;
            if self.kept > limits.max_total_kept_bytes {
                return Err(ImageError::LimitExceeded {
                    layer: format!("filesystem {}", self.root_display),
                    limit: format!(
                        "more than {} bytes of file content kept (max_total_kept_bytes)",
                        limits.max_total_kept_bytes
                    ),
                });
            }
            self.fs.insert(
                path,
                FileEntry {
                    layer: None,
                    mode,
                    kind: EntryKind::File(Arc::from(data)),
                },
            );
            return Ok(());
        }
        let mut found: Vec<(&'static str, Vec<Package>)> = Vec::new();
        for c in accepted {
            match c.analyze(&path, &data) {
                Ok(mut packages) if !packages.is_empty() => {
                    for p in &mut packages {
                        if p.location.path.is_empty() {
                            p.location.path = path.clone();
                        }
                    }
                    found.push((c.name(), packages));
                }
                Ok(_) => {}
                Err(e) => self.warn(e.to_string()),
            }
        }
        if !found.is_empty() {
            self.fs.insert(
                path,
                FileEntry {
                    layer: None,
                    mode,
                    kind: EntryKind::Analyzed(found),
                },
            );
        }
        Ok(())
    }
}
