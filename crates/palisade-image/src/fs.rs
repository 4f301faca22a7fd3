//! The merged, in-memory view of the files catalogers asked for.
//!
//! Only the files some cataloger wants are held (package databases, manifests, small metadata), plus
//! every symlink and directory (cheap, and needed to resolve paths like `/etc/os-release ->
//! ../usr/lib/os-release`). Binaries and archives are analysed while their layer streams past and
//! only the packages found are kept ([`EntryKind::Analyzed`]).

use palisade_core::Package;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What is known of one path in the merged view.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryKind {
    /// A regular file whose content a cataloger asked to keep.
    File(Arc<[u8]>),
    /// A regular file nobody asked for: only its existence is recorded.
    Skipped {
        size: u64,
    },
    /// A symbolic link, target exactly as written in the layer.
    Symlink(String),
    Dir,
    /// A file analysed in-stream; what each analysing cataloger found (by cataloger name).
    Analyzed(Vec<(&'static str, Vec<Package>)>),
}

/// One path of the merged view, with the layer that last wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileEntry {
    /// Digest of the layer blob that last wrote this path; `None` for a root file system.
    pub layer: Option<Arc<str>>,
    pub mode: u32,
    pub kind: EntryKind,
}

/// The merged view. Paths are absolute, normalised (`/a/b`, no `.`/`..`, no trailing slash); the
/// root is `/`.
#[derive(Debug, Default, Clone)]
pub struct ImageFs {
    entries: BTreeMap<String, FileEntry>,
    max_symlink_hops: u32,
    kept_bytes: u64,
}

impl ImageFs {
    pub fn new(max_symlink_hops: u32) -> Self {
        ImageFs {
            entries: BTreeMap::new(),
            max_symlink_hops,
            kept_bytes: 0,
        }
    }

    /// Bytes of file content held in memory.
    pub fn kept_bytes(&self) -> u64 {
        self.kept_bytes
    }

    /// Adds or replaces one path (a later layer overwrites an earlier one).
    pub fn insert(&mut self, path: String, entry: FileEntry) {
        if let EntryKind::File(data) = &entry.kind {
            self.kept_bytes += data.len() as u64;
        }
        if let Some(old) = self.entries.insert(path, entry) {
            self.forget(&old);
        }
    }

    /// Removes a path and, if it was a directory, everything below it (a whiteout `.wh.<name>`).
    pub fn remove_tree(&mut self, path: &str) {
        if let Some(old) = self.entries.remove(path) {
            self.forget(&old);
        }
        self.remove_children(path);
    }

    /// Removes everything below a directory but keeps the directory (an opaque whiteout).
    pub fn remove_children(&mut self, dir: &str) {
        let prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        let doomed: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            if let Some(old) = self.entries.remove(&k) {
                self.forget(&old);
            }
        }
    }

    fn forget(&mut self, old: &FileEntry) {
        if let EntryKind::File(data) = &old.kind {
            self.kept_bytes = self.kept_bytes.saturating_sub(data.len() as u64);
        }
    }

    /// Number of paths in the view.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the view holds no path at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every path (and, for directories, its subtree) for which `doomed` returns true.
    /// Used when a layer overwrites paths with files that are not retained, so stale content from
    /// lower layers does not survive.
    pub fn remove_matching(&mut self, mut doomed: impl FnMut(&str) -> bool) {
        let keys: Vec<String> = self
            .entries
            .keys()
            .filter(|k| doomed(k.as_str()))
            .cloned()
            .collect();
        for k in keys {
            self.remove_tree(&k);
        }
    }

    /// Where a layer entry named `path` really lands: symlinks in its parent directories are
    /// followed (inside the root, as a container runtime extracting the layer would), the last
    /// component is not. Returns `None` when resolving the parent exceeds the symlink hop limit.
    pub fn resolve_parent(&self, path: &str) -> Option<String> {
        // Fast path: no ancestor is a symlink, so the path lands where it says.
        let mut through_link = false;
        for (i, b) in path.bytes().enumerate().skip(1) {
            if b == b'/'
                && let Some(FileEntry {
                    kind: EntryKind::Symlink(_),
                    ..
                }) = self.entries.get(&path[..i])
            {
                through_link = true;
                break;
            }
        }
        if !through_link {
            return Some(path.to_string());
        }
        let (parent, name) = match path.rfind('/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => ("/", path),
        };
        let real_parent = self.resolve(if parent.is_empty() { "/" } else { parent })?;
        Some(if real_parent == "/" {
            format!("/{name}")
        } else {
            format!("{real_parent}/{name}")
        })
    }

    /// The entry at exactly this path, without following symlinks.
    pub fn entry(&self, path: &str) -> Option<&FileEntry> {
        self.entries.get(path)
    }

    /// All entries in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FileEntry)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Entries whose path starts with `prefix`, in path order.
    pub fn iter_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a FileEntry)> + 'a {
        self.entries
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Resolves symlinks in every component of `path`, never leaving the image root (`..` at the
    /// root stays at the root, absolute targets are taken relative to the root) and giving up after
    /// the hop limit. Returns the final normalised path, which may not exist.
    pub fn resolve(&self, path: &str) -> Option<String> {
        let mut hops = 0u32;
        let mut pending: Vec<String> = split_components(path).into_iter().rev().collect();
        let mut resolved: Vec<String> = Vec::new();
        while let Some(component) = pending.pop() {
            match component.as_str() {
                "." | "" => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            resolved.push(component);
            let current = join_components(&resolved);
            if let Some(FileEntry {
                kind: EntryKind::Symlink(target),
                ..
            }) = self.entries.get(&current)
            {
                hops += 1;
                if hops > self.max_symlink_hops {
                    return None;
                }
                resolved.pop();
                if target.starts_with('/') {
                    resolved.clear();
                }
                for c in split_components(target).into_iter().rev() {
                    pending.push(c);
                }
            }
        }
        Some(join_components(&resolved))
    }

    /// Content of a kept file, following symlinks inside the root.
    pub fn read(&self, path: &str) -> Option<&[u8]> {
        let real = self.resolve(path)?;
        match &self.entries.get(&real)?.kind {
            EntryKind::File(data) => Some(data),
            _ => None,
        }
    }

    /// The entry a path leads to after following symlinks, with its real path.
    pub fn lookup(&self, path: &str) -> Option<(String, &FileEntry)> {
        let real = self.resolve(path)?;
        let entry = self.entries.get(&real)?;
        Some((real, entry))
    }
}

fn split_components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

fn join_components(components: &[String]) -> String {
    if components.is_empty() {
        "/".to_string()
    } else {
        let mut s = String::new();
        for c in components {
            s.push('/');
            s.push_str(c);
        }
        s
    }
}

/// Normalises a path from a tar header or a directory walk to the form [`ImageFs`] keys use.
/// Returns `None` for paths that would leave the root (`..` above `/`) — the caller reports those.
pub fn normalize_path(raw: &str) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            other => out.push(other.to_string()),
        }
    }
    Some(join_components(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(data: &[u8]) -> FileEntry {
        FileEntry {
            layer: None,
            mode: 0o644,
            kind: EntryKind::File(Arc::from(data)),
        }
    }

    fn link(target: &str) -> FileEntry {
        FileEntry {
            layer: None,
            mode: 0o777,
            kind: EntryKind::Symlink(target.to_string()),
        }
    }

    #[test]
    fn resolves_relative_and_absolute_links_inside_root() {
        let mut fs = ImageFs::new(40);
        fs.insert("/usr/lib/os-release".into(), file(b"ID=debian"));
        fs.insert("/etc/os-release".into(), link("../usr/lib/os-release"));
        fs.insert("/lib".into(), link("usr/lib"));
        fs.insert("/escape".into(), link("../../../../usr/lib/os-release"));
        fs.insert("/abs".into(), link("/usr/lib/os-release"));
        assert_eq!(fs.read("/etc/os-release"), Some(&b"ID=debian"[..]));
        assert_eq!(fs.read("/lib/os-release"), Some(&b"ID=debian"[..]));
        assert_eq!(fs.read("/escape"), Some(&b"ID=debian"[..]));
        assert_eq!(fs.read("/abs"), Some(&b"ID=debian"[..]));
    }

    #[test]
    fn symlink_loops_are_bounded() {
        let mut fs = ImageFs::new(40);
        fs.insert("/a".into(), link("/b"));
        fs.insert("/b".into(), link("/a"));
        assert_eq!(fs.resolve("/a/x"), None);
    }

    #[test]
    fn whiteouts_remove_trees() {
        let mut fs = ImageFs::new(40);
        fs.insert("/d/x".into(), file(b"1"));
        fs.insert("/d/y/z".into(), file(b"22"));
        fs.insert("/dd".into(), file(b"3"));
        assert_eq!(fs.kept_bytes(), 4);
        fs.remove_tree("/d");
        assert!(fs.entry("/d/y/z").is_none());
        assert!(fs.entry("/dd").is_some());
        assert_eq!(fs.kept_bytes(), 1);
    }

    #[test]
    fn resolve_parent_follows_links_in_parents_only() {
        let mut fs = ImageFs::new(40);
        fs.insert("/lib".into(), link("usr/lib"));
        fs.insert("/out".into(), link("../../../../tmp"));
        fs.insert("/loop".into(), link("/loop"));
        assert_eq!(fs.resolve_parent("/lib/x").as_deref(), Some("/usr/lib/x"));
        assert_eq!(fs.resolve_parent("/lib").as_deref(), Some("/lib"));
        assert_eq!(fs.resolve_parent("/out/f").as_deref(), Some("/tmp/f"));
        assert_eq!(fs.resolve_parent("/a/b/c").as_deref(), Some("/a/b/c"));
        assert_eq!(fs.resolve_parent("/loop/f"), None);
    }

    #[test]
    fn remove_matching_drops_subtrees() {
        let mut fs = ImageFs::new(40);
        fs.insert("/d/x".into(), file(b"1"));
        fs.insert("/e".into(), file(b"1"));
        fs.remove_matching(|p| p == "/d/x");
        assert!(fs.entry("/d/x").is_none());
        assert_eq!(fs.len(), 1);
        assert!(!fs.is_empty());
    }

    #[test]
    fn normalizes() {
        assert_eq!(
            normalize_path("./etc//passwd").as_deref(),
            Some("/etc/passwd")
        );
        assert_eq!(normalize_path("a/../b").as_deref(), Some("/b"));
        assert_eq!(normalize_path("../etc"), None);
    }
}
