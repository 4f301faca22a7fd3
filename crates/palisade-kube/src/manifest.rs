//! Kubernetes manifests from disk or stdin into an [`Inventory`].
//!
//! Accepted input: files, directories (walked recursively in sorted order, `*.yaml`, `*.yml`,
//! `*.json`; hidden entries and the unrendered `templates/` of Helm charts are skipped, symlink
//! loops are cut), and `-` for stdin. A file may hold multi-document YAML, a stream of JSON
//! objects, and `kind: List` (or any `*List` with `items`) in either syntax — which covers the
//! output of `helm template` and `kustomize build`.
//!
//! Documents are split on their `---` / `...` markers before parsing, so one malformed document
//! costs only itself: it becomes a [`ManifestIssue`] with file and line and every other document
//! is kept. Documents that are YAML but not Kubernetes objects (Helm values, Compose files, CI
//! workflows: no `apiVersion`/`kind`) are skipped with a warning.
//!
//! Untrusted input is bounded by [`ManifestLimits`]: file size, documents per file, nesting depth,
//! and an expansion budget per document that stops alias bombs ("billion laughs") — the YAML
//! parser replays aliases, so a few hundred bytes could otherwise build gigabytes of values.

use crate::object::{Inventory, KubeObject, SourceLocation};
use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Bounds on what one load may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestLimits {
    /// Largest file (or stdin) read, in bytes.
    pub max_file_bytes: u64,
    /// Documents per file; the rest of a longer file is reported and ignored.
    pub max_documents: usize,
    /// Deepest nesting of mappings and sequences within a document (the YAML parser stops at 128
    /// whatever this says).
    pub max_depth: usize,
    /// Bytes a document may grow by through YAML aliases beyond twice its own size.
    pub max_alias_expansion: usize,
}

impl Default for ManifestLimits {
    fn default() -> Self {
        ManifestLimits {
            max_file_bytes: 64 * 1024 * 1024,
            max_documents: 100_000,
            max_depth: 100,
            max_alias_expansion: 4 * 1024 * 1024,
        }
    }
}

/// A document (or List item, or file) that could not be read. The CLI reports these and exits 2.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestIssue {
    pub file: String,
    /// 1-based line, where known.
    pub line: Option<u32>,
    /// 0-based document index within the file, where the issue concerns one document.
    pub document: Option<u32>,
    pub message: String,
}

impl fmt::Display for ManifestIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// The result of a load: every object read, warnings in `inventory.warnings`, and the issues.
#[derive(Debug, Clone, Default)]
pub struct LoadedManifests {
    pub inventory: Inventory,
    pub errors: Vec<ManifestIssue>,
}

/// What one file's text held.
#[derive(Debug, Clone, Default)]
pub struct ParsedManifests {
    pub objects: Vec<KubeObject>,
    /// Skipped documents and similar, worded for the user (`file:line: ...`).
    pub warnings: Vec<String>,
    pub errors: Vec<ManifestIssue>,
}

/// A path named by the user that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Loads every manifest under `paths` (`-` = stdin). `Err` only when a path given here cannot be
/// read at all; problems inside files, or with files found in directories, are `errors`.
pub fn load_manifests(
    paths: &[PathBuf],
    limits: &ManifestLimits,
) -> Result<LoadedManifests, ManifestError> {
    load_manifests_with_stdin(paths, limits, &mut std::io::stdin().lock())
}

/// [`load_manifests`] with `-` read from `stdin` (read once; a second `-` finds it empty).
pub fn load_manifests_with_stdin(
    paths: &[PathBuf],
    limits: &ManifestLimits,
    stdin: &mut dyn Read,
) -> Result<LoadedManifests, ManifestError> {
    let mut out = LoadedManifests::default();
    for path in paths {
        if path.as_os_str() == "-" {
            let bytes = read_limited(&mut *stdin, limits.max_file_bytes).map_err(|source| {
                ManifestError::Read {
                    path: "-".into(),
                    source,
                }
            })?;
            add_file(&mut out, "-", bytes, limits);
            continue;
        }
        let display = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| ManifestError::Read {
            path: display.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk_dir(path, &mut out, limits).map_err(|source| ManifestError::Read {
                path: display,
                source,
            })?;
        } else {
            let bytes =
                read_file(path, limits.max_file_bytes).map_err(|source| ManifestError::Read {
                    path: display.clone(),
                    source,
                })?;
            add_file(&mut out, &display, bytes, limits);
        }
    }
    warn_duplicates(&mut out.inventory);
    Ok(out)
}

/// Reads at most `limit + 1` bytes so an oversized input is detected without reading it all.
fn read_limited(reader: impl Read, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

fn read_file(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    let file = std::fs::File::open(path)?;
    if file.metadata()?.len() > limit {
        return Ok(None);
    }
    read_limited(file, limit)
}

fn add_file(
    out: &mut LoadedManifests,
    file: &str,
    bytes: Option<Vec<u8>>,
    limits: &ManifestLimits,
) {
    let Some(bytes) = bytes else {
        out.errors.push(ManifestIssue {
            file: file.to_string(),
            line: None,
            document: None,
            message: format!(
                "larger than the {} byte limit; not read",
                limits.max_file_bytes
            ),
        });
        return;
    };
    let parsed = parse_manifest_bytes(&bytes, file, limits);
    out.inventory.objects.extend(parsed.objects);
    out.inventory.warnings.extend(parsed.warnings);
    out.errors.extend(parsed.errors);
}

fn is_manifest_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}

/// Directories nested deeper than this below a named directory are not walked.
const MAX_DIR_DEPTH: usize = 64;

/// Depth-first, sorted walk; directories are identified by canonical path so symlink loops end.
fn walk_dir(
    root: &Path,
    out: &mut LoadedManifests,
    limits: &ManifestLimits,
) -> std::io::Result<()> {
    // The root itself must be listable; problems below it are issues, not failures.
    let entries = sorted_entries(root)?;
    let mut seen = HashSet::new();
    seen.insert(std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()));
    walk_entries(entries, 0, &mut seen, out, limits);
    Ok(())
}

fn walk_entries(
    entries: Vec<PathBuf>,
    depth: usize,
    seen: &mut HashSet<PathBuf>,
    out: &mut LoadedManifests,
    limits: &ManifestLimits,
) {
    let is_chart = entries
        .iter()
        .any(|e| e.file_name().is_some_and(|n| n == "Chart.yaml"));
    for path in entries {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let display = path.display().to_string();
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) => {
                out.errors.push(io_issue(&display, &e));
                continue;
            }
        };
        if meta.is_dir() {
            if is_chart && name == "templates" {
                out.inventory.warnings.push(format!(
                    "{display}: Helm chart templates skipped (render them with `helm template` and scan the output)"
                ));
                continue;
            }
            if depth >= MAX_DIR_DEPTH {
                out.inventory.warnings.push(format!(
                    "{display}: more than {MAX_DIR_DEPTH} directory levels deep; not walked"
                ));
                continue;
            }
            let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if !seen.insert(canonical) {
                continue; // a symlink back to a directory already walked
            }
            match sorted_entries(&path) {
                Ok(children) => walk_entries(children, depth + 1, seen, out, limits),
                Err(e) => out.errors.push(io_issue(&display, &e)),
            }
        } else if meta.is_file() && is_manifest_name(&name) {
            match read_file(&path, limits.max_file_bytes) {
                Ok(bytes) => add_file(out, &display, bytes, limits),
                Err(e) => out.errors.push(io_issue(&display, &e)),
            }
        }
    }
}

fn sorted_entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect::<Vec<_>>();
    entries.sort();
    Ok(entries)
}

fn io_issue(file: &str, e: &std::io::Error) -> ManifestIssue {
    ManifestIssue {
        file: file.to_string(),
        line: None,
        document: None,
        message: format!("cannot read: {e}"),
    }
}

fn warn_duplicates(inv: &mut Inventory) {
    let mut first: HashMap<(String, String, Option<String>, String), usize> = HashMap::new();
    let mut warnings = Vec::new();
    for (i, o) in inv.objects.iter().enumerate() {
        let key = (
            o.group().to_string(),
            o.kind.clone(),
            o.namespace.clone(),
            o.name.clone(),
        );
        match first.get(&key) {
            Some(&j) => warnings.push(format!(
                "{}: duplicate object {} (first at {})",
                place(&inv.objects[i]),
                o.key(),
                place(&inv.objects[j])
            )),
            None => {
                first.insert(key, i);
            }
        }
    }
    inv.warnings.extend(warnings);
}

fn place(o: &KubeObject) -> String {
    match &o.source {
        Some(s) => format!("{}:{}", s.file, s.line),
        None => "?".into(),
    }
}

/// Parses one file's bytes: strips a UTF-8 byte-order mark, rejects other encodings.
pub fn parse_manifest_bytes(bytes: &[u8], file: &str, limits: &ManifestLimits) -> ParsedManifests {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return file_error(
            file,
            "UTF-16 text is not supported; convert the file to UTF-8",
        );
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_manifests(text, file, limits),
        Err(e) => {
            let line = line_at(bytes, e.valid_up_to());
            ParsedManifests {
                errors: vec![ManifestIssue {
                    file: file.to_string(),
                    line: Some(line),
                    document: None,
                    message: format!(
                        "not UTF-8 text (invalid byte at offset {})",
                        e.valid_up_to()
                    ),
                }],
                ..Default::default()
            }
        }
    }
}

fn file_error(file: &str, message: &str) -> ParsedManifests {
    ParsedManifests {
        errors: vec![ManifestIssue {
            file: file.to_string(),
            line: None,
            document: None,
            message: message.to_string(),
        }],
        ..Default::default()
    }
}

fn line_at(bytes: &[u8], offset: usize) -> u32 {
    let end = offset.min(bytes.len());
    let newlines = bytes[..end].iter().filter(|&&b| b == b'\n').count();
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

/// Parses the text of one file (`file` names it in locations and messages).
pub fn parse_manifests(text: &str, file: &str, limits: &ManifestLimits) -> ParsedManifests {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut ctx = FileCtx {
        file,
        limits,
        out: ParsedManifests::default(),
    };
    let first = text.trim_start_matches([' ', '\t', '\r', '\n']);
    if (first.starts_with('{') || first.starts_with('[')) && parse_json_stream(text, &mut ctx) {
        return ctx.out;
    }
    // One document past the limit, so the limit is reported; no more (a file of `---` lines
    // would otherwise cost a record per line).
    let docs = split_documents(text, limits.max_documents.saturating_add(1));
    for (index, doc) in docs.iter().enumerate() {
        if index >= limits.max_documents {
            ctx.error(
                Some(doc.content_line),
                None,
                format!(
                    "more than {} documents; the rest of the file is ignored",
                    limits.max_documents
                ),
            );
            break;
        }
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let value = match parse_yaml_document(doc.text, limits) {
            Ok(value) => value,
            Err(DocError::Yaml(e)) => {
                let (message, line) = yaml_error(&e, doc.start_line);
                ctx.error(Some(line.unwrap_or(doc.content_line)), Some(index), message);
                continue;
            }
            Err(DocError::TooDeep { line, limit }) => {
                let line = u32::try_from(line)
                    .ok()
                    .and_then(|l| doc.start_line.checked_add(l - 1));
                ctx.error(
                    line.or(Some(doc.content_line)),
                    Some(index),
                    format!("invalid YAML: flow collections nested deeper than {limit} levels"),
                );
                continue;
            }
        };
        let location = SourceLocation {
            file: file.to_string(),
            line: doc.content_line,
            document: index,
            origin: doc.origin.clone(),
        };
        let item_lines = |count: usize| yaml_item_lines(doc.text, doc.start_line, count);
        ctx.document(value, location, &item_lines);
    }
    ctx.out
}

struct FileCtx<'a> {
    file: &'a str,
    limits: &'a ManifestLimits,
    out: ParsedManifests,
}

impl FileCtx<'_> {
    fn error(&mut self, line: Option<u32>, document: Option<u32>, message: String) {
        self.out.errors.push(ManifestIssue {
            file: self.file.to_string(),
            line,
            document,
            message,
        });
    }

    fn warn(&mut self, line: u32, message: String) {
        self.out
            .warnings
            .push(format!("{}:{}: {}", self.file, line, message));
    }

    /// Classifies one parsed document: object, List, or something that is not Kubernetes.
    fn document(
        &mut self,
        value: Value,
        location: SourceLocation,
        item_lines: &dyn Fn(usize) -> Option<Vec<u32>>,
    ) {
        let line = location.line;
        let Value::Object(map) = value else {
            match value {
                Value::Null => {} // empty document
                other => self.warn(
                    line,
                    format!(
                        "document {} is a {}, not a Kubernetes object; skipped",
                        location.document,
                        json_type(&other)
                    ),
                ),
            }
            return;
        };
        let has = |k: &str| map.get(k).is_some_and(|v| !v.is_null());
        if !has("apiVersion") || !has("kind") {
            let what = match (has("apiVersion"), has("kind")) {
                (false, false) => "no apiVersion or kind",
                (false, true) => "no apiVersion",
                _ => "no kind",
            };
            self.warn(
                line,
                format!(
                    "not a Kubernetes object ({what}); document {} skipped",
                    location.document
                ),
            );
            return;
        }
        let kind = map
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let is_list = (kind == "List" || kind.ends_with("List"))
            && map
                .get("items")
                .is_some_and(|v| v.is_array() || v.is_null());
        if !is_list {
            self.object(Value::Object(map), location);
            return;
        }
        let items = match map.into_iter().find(|(k, _)| k == "items") {
            Some((_, Value::Array(items))) => items,
            _ => Vec::new(),
        };
        let lines = item_lines(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let mut loc = location.clone();
            if let Some(l) = lines.as_ref().and_then(|ls| ls.get(i)) {
                loc.line = *l;
            }
            if !item.is_object() {
                self.error(
                    Some(loc.line),
                    Some(loc.document),
                    format!("{kind} item {i} is a {}, not an object", json_type(&item)),
                );
                continue;
            }
            let has_identity = item.get("apiVersion").is_some_and(|v| !v.is_null())
                && item.get("kind").is_some_and(|v| !v.is_null());
            if !has_identity {
                self.error(
                    Some(loc.line),
                    Some(loc.document),
                    format!("{kind} item {i} has no apiVersion or kind"),
                );
                continue;
            }
            self.object(item, loc);
        }
    }

    fn object(&mut self, value: Value, location: SourceLocation) {
        let line = location.line;
        let document = location.document;
        let api_version = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let named = value
            .get("metadata")
            .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if !named && api_version == "v1" && kind == "Config" {
            self.warn(
                line,
                "a kubeconfig file, not a Kubernetes object; skipped".into(),
            );
            return;
        }
        if !named && is_component_config(api_version) {
            // Component configuration files (KubeletConfiguration, EncryptionConfiguration, audit
            // Policy, Kustomization, …) have no metadata: name them after the file so the
            // control-plane checks can read them like any other object.
            let object = KubeObject {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                name: file_stem(self.file),
                namespace: None,
                value,
                source: Some(location),
            };
            self.out.objects.push(object);
            return;
        }
        match KubeObject::from_value(value, Some(location)) {
            Ok(object) => self.out.objects.push(object),
            Err(e) => self.error(Some(line), Some(document), format!("invalid object: {e}")),
        }
    }
}

/// API groups of component configuration files rather than API objects.
fn is_component_config(api_version: &str) -> bool {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    group.ends_with("config.k8s.io") || group == "audit.k8s.io"
}

fn file_stem(file: &str) -> String {
    if file == "-" {
        return "stdin".to_string();
    }
    Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| file.to_string())
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "sequence",
        Value::Object(_) => "mapping",
    }
}

/// Returns false when the text is not JSON after all (then it is read as YAML).
fn parse_json_stream(text: &str, ctx: &mut FileCtx<'_>) -> bool {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut index = 0usize;
    loop {
        let start = stream.byte_offset();
        let value_start = start
            + text[start..]
                .find(|c: char| !c.is_whitespace())
                .unwrap_or(text.len() - start);
        match stream.next() {
            None => return true,
            Some(Ok(value)) => {
                if index >= ctx.limits.max_documents {
                    ctx.error(
                        Some(line_at(text.as_bytes(), value_start)),
                        None,
                        format!(
                            "more than {} documents; the rest of the file is ignored",
                            ctx.limits.max_documents
                        ),
                    );
                    return true;
                }
                let location = SourceLocation {
                    file: ctx.file.to_string(),
                    line: line_at(text.as_bytes(), value_start),
                    document: u32::try_from(index).unwrap_or(u32::MAX),
                    origin: None,
                };
                ctx.document(value, location, &|_| None);
                index += 1;
            }
            Some(Err(e)) => {
                if index == 0 {
                    return false;
                }
                ctx.error(
                    u32::try_from(e.line()).ok(),
                    u32::try_from(index).ok(),
                    format!("invalid JSON: {e}; the rest of the file is ignored"),
                );
                return true;
            }
        }
    }
}

/// One YAML document's text, cut at its markers.
#[derive(Debug)]
struct DocText<'a> {
    text: &'a str,
    /// 1-based line of `text`'s first line.
    start_line: u32,
    /// 1-based line of the first line with content (the marker line when it carries content).
    content_line: u32,
    /// `# Source: ...` written by `helm template`.
    origin: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// `---`, optionally followed by content or a comment.
    Start {
        has_content: bool,
    },
    /// `...`
    End,
    /// `%YAML` / `%TAG`
    Directive,
    Blank,
    Content,
}

fn classify(line: &str) -> LineKind {
    let line = line.trim_end_matches(['\n', '\r']);
    let marker_rest = |m: &str| {
        line.strip_prefix(m)
            .filter(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    };
    if let Some(rest) = marker_rest("---") {
        let rest = rest.trim();
        return LineKind::Start {
            has_content: !rest.is_empty() && !rest.starts_with('#'),
        };
    }
    if marker_rest("...").is_some() {
        return LineKind::End;
    }
    if line.starts_with('%') {
        return LineKind::Directive;
    }
    let trimmed = line.trim_start_matches([' ', '\t', '\u{feff}']);
    if trimmed.is_empty() || trimmed.starts_with('#') {
        LineKind::Blank
    } else {
        LineKind::Content
    }
}

/// Splits a YAML stream into documents. `---` and `...` at column 0 are always document markers
/// in YAML (no scalar may contain them at the start of a line), so this is exact, and lets each
/// document parse — and fail — on its own.
fn split_documents<'a>(text: &'a str, max: usize) -> Vec<DocText<'a>> {
    struct Open {
        start: usize,
        start_line: u32,
        content_line: Option<u32>,
        explicit: bool,
        directives_only: bool,
        origin: Option<String>,
    }
    let mut docs = Vec::new();
    let new_open = |start: usize, line: u32| Open {
        start,
        start_line: line,
        content_line: None,
        explicit: false,
        directives_only: true,
        origin: None,
    };
    let mut cur = new_open(0, 1);
    let mut offset = 0usize;
    let mut line_no = 0u32;
    let finish = |cur: &Open, end: usize, docs: &mut Vec<DocText<'a>>| {
        if cur.explicit || cur.content_line.is_some() {
            docs.push(DocText {
                text: &text[cur.start..end],
                start_line: cur.start_line,
                content_line: cur.content_line.unwrap_or(cur.start_line),
                origin: cur.origin.clone(),
            });
        }
    };
    for line in text.split_inclusive('\n') {
        if docs.len() >= max {
            return docs;
        }
        line_no = line_no.saturating_add(1);
        let line_start = offset;
        offset += line.len();
        match classify(line) {
            LineKind::Start { has_content } => {
                if cur.explicit || cur.content_line.is_some() {
                    finish(&cur, line_start, &mut docs);
                    cur = new_open(line_start, line_no);
                } else if !cur.directives_only {
                    cur = new_open(line_start, line_no);
                }
                // else: keep the directives (and comments) before this marker in the document
                cur.explicit = true;
                if has_content {
                    cur.content_line = Some(line_no);
                }
            }
            LineKind::End => {
                finish(&cur, offset, &mut docs);
                cur = new_open(offset, line_no.saturating_add(1));
            }
            LineKind::Directive => {
                if cur.explicit || cur.content_line.is_some() {
                    // A directive inside a document is an error the parser reports.
                    cur.content_line.get_or_insert(line_no);
                }
            }
            LineKind::Blank => {
                if cur.content_line.is_none() && cur.origin.is_none() {
                    let comment = line.trim().trim_start_matches('#').trim();
                    if let Some(src) = comment.strip_prefix("Source:") {
                        cur.origin = Some(src.trim().to_string()).filter(|s| !s.is_empty());
                    }
                }
            }
            LineKind::Content => {
                cur.directives_only = false;
                cur.content_line.get_or_insert(line_no);
            }
        }
    }
    if docs.len() < max {
        finish(&cur, text.len(), &mut docs);
    }
    docs
}

/// Lines of the items of a YAML `List` (`items:` at column 0 followed by a block sequence), when
/// they can be found exactly; `None` otherwise (flow style, JSON, anything unusual).
fn yaml_item_lines(doc: &str, start_line: u32, count: usize) -> Option<Vec<u32>> {
    let mut lines = doc.split_inclusive('\n').enumerate();
    lines.find(|(_, l)| {
        let l = l.trim_end();
        l == "items:" || l.starts_with("items: #") || l.starts_with("items:\t#")
    })?;
    let mut indent: Option<usize> = None;
    let mut found = Vec::new();
    for (i, raw) in lines {
        let l = raw.trim_end_matches(['\n', '\r']);
        let trimmed = l.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let this_indent = l.len() - trimmed.len();
        let is_entry = trimmed == "-" || trimmed.starts_with("- ");
        match indent {
            None if is_entry => indent = Some(this_indent),
            None => return None,
            Some(ind) if this_indent < ind => break,
            Some(ind) if this_indent == ind && !is_entry => break,
            _ => {}
        }
        if is_entry && Some(this_indent) == indent {
            let line = start_line as usize + i;
            found.push(u32::try_from(line).ok()?);
        }
    }
    (found.len() == count).then_some(found)
}

/// The message without yaml_serde's document-relative position, and the absolute line.
fn yaml_error(e: &yaml_serde::Error, start_line: u32) -> (String, Option<u32>) {
    let mut message = e.to_string();
    // Drop yaml_serde's " at line N column M": it counts from the document, not the file.
    while let Some(pos) = message.find(" at line ") {
        let rest = &message[pos + " at line ".len()..];
        let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let line_len = digits(rest);
        let after_line = &rest[line_len..];
        let end = match after_line.strip_prefix(" column ") {
            Some(col) => pos + " at line ".len() + line_len + " column ".len() + digits(col),
            None => pos + " at line ".len() + line_len,
        };
        message.replace_range(pos..end, "");
    }
    let line = e.location().and_then(|loc| {
        let line = u32::try_from(loc.line()).ok()?;
        start_line.checked_add(line.checked_sub(1)?)
    });
    (format!("invalid YAML: {message}"), line)
}

/// Flow collections (`[`, `{`) nested deeper than this are refused before parsing: the YAML
/// scanner's cost grows with the square of the flow depth (40,000 levels take seconds), and the
/// deserializer refuses more than 128 levels of any nesting anyway.
const MAX_FLOW_DEPTH: usize = 128;

/// An approximate scan for flow nesting: brackets outside quoted scalars and comments. Returns
/// the 1-based line (within `text`) where the depth passes `limit`.
fn flow_depth_exceeded(text: &str, limit: usize) -> Option<usize> {
    #[derive(PartialEq)]
    enum State {
        Plain,
        Single,
        Double,
    }
    let mut state = State::Plain;
    let mut depth = 0usize;
    let mut line = 1usize;
    let mut prev = '\n';
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match state {
            State::Plain => match c {
                '[' | '{' => {
                    depth += 1;
                    if depth > limit {
                        return Some(line);
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                '"' | '\'' if prev.is_whitespace() || matches!(prev, '[' | '{' | ',' | ':') => {
                    state = if c == '"' {
                        State::Double
                    } else {
                        State::Single
                    };
                }
                '#' if prev.is_whitespace() => {
                    // A comment: skip to the end of the line.
                    for c in chars.by_ref() {
                        if c == '\n' {
                            line += 1;
                            break;
                        }
                    }
                    prev = '\n';
                    continue;
                }
                _ => {}
            },
            State::Single if c == '\'' => state = State::Plain,
            State::Double if c == '\\' => {
                if chars.next() == Some('\n') {
                    line += 1;
                }
                prev = 'x';
                continue;
            }
            State::Double if c == '"' => state = State::Plain,
            _ => {}
        }
        if c == '\n' {
            line += 1;
        }
        prev = c;
    }
    None
}

/// Parses one YAML document into JSON under the depth and expansion limits.
fn parse_yaml_document(text: &str, limits: &ManifestLimits) -> Result<Value, DocError> {
    if let Some(line) = flow_depth_exceeded(text, MAX_FLOW_DEPTH.max(limits.max_depth)) {
        return Err(DocError::TooDeep {
            line,
            limit: MAX_FLOW_DEPTH.max(limits.max_depth),
        });
    }
    let budget = Budget {
        remaining: Cell::new(
            text.len()
                .saturating_mul(2)
                .saturating_add(limits.max_alias_expansion),
        ),
        depth: Cell::new(0),
        max_depth: limits.max_depth,
    };
    let de = yaml_serde::Deserializer::from_str(text);
    JsonSeed { budget: &budget }
        .deserialize(de)
        .map_err(DocError::Yaml)
}

enum DocError {
    Yaml(yaml_serde::Error),
    TooDeep { line: usize, limit: usize },
}

struct Budget {
    remaining: Cell<usize>,
    depth: Cell<usize>,
    max_depth: usize,
}

impl Budget {
    fn charge<E: de::Error>(&self, cost: usize) -> Result<(), E> {
        match self.remaining.get().checked_sub(cost.saturating_add(1)) {
            Some(rest) => {
                self.remaining.set(rest);
                Ok(())
            }
            None => Err(E::custom(
                "document expands beyond the size limit (YAML alias bomb?)",
            )),
        }
    }

    fn enter<E: de::Error>(&self) -> Result<(), E> {
        let depth = self.depth.get() + 1;
        if depth > self.max_depth {
            return Err(E::custom(format!(
                "nesting deeper than {} levels",
                self.max_depth
            )));
        }
        self.depth.set(depth);
        Ok(())
    }

    fn leave(&self) {
        self.depth.set(self.depth.get().saturating_sub(1));
    }
}

/// Builds a `serde_json::Value` from YAML: string keys (scalars stringified), merge keys (`<<`)
/// applied, duplicate keys rejected, custom tags ignored, non-finite floats kept as strings.
#[derive(Clone, Copy)]
struct JsonSeed<'b> {
    budget: &'b Budget,
}

impl<'de> DeserializeSeed<'de> for JsonSeed<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn float<E: de::Error>(v: f64) -> Result<Value, E> {
    Ok(match Number::from_f64(v) {
        Some(n) => Value::Number(n),
        None if v.is_nan() => Value::String(".nan".into()),
        None if v > 0.0 => Value::String(".inf".into()),
        None => Value::String("-.inf".into()),
    })
}

impl<'de> Visitor<'de> for JsonSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.budget.charge(1)?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.budget.charge(8)?;
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.budget.charge(8)?;
        Ok(Value::Number(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        self.budget.charge(16)?;
        float(v as f64)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        self.budget.charge(16)?;
        float(v as f64)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.budget.charge(8)?;
        float(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.budget.charge(v.len())?;
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.budget.charge(v.len())?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.budget.charge(1)?;
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.budget.enter()?;
        self.budget.charge(8)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        self.budget.leave();
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        self.budget.enter()?;
        self.budget.charge(8)?;
        let mut map = Map::new();
        let mut merges = Vec::new();
        while let Some(key) = access.next_key_seed(KeySeed {
            budget: self.budget,
        })? {
            let value = access.next_value_seed(self)?;
            if key == "<<" {
                merges.push(value);
                continue;
            }
            if map.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key `{key}` in a mapping"
                )));
            }
            map.insert(key, value);
        }
        for merge in merges {
            let sources = match merge {
                Value::Object(m) => vec![m],
                Value::Array(items) => items
                    .into_iter()
                    .map(|i| match i {
                        Value::Object(m) => Ok(m),
                        _ => Err(de::Error::custom("a merge key (`<<`) needs mappings")),
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(de::Error::custom("a merge key (`<<`) needs a mapping")),
            };
            for source in sources {
                for (k, v) in source {
                    map.entry(k).or_insert(v);
                }
            }
        }
        self.budget.leave();
        Ok(Value::Object(map))
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        // A custom tag (`!Ref x`): keep the tagged value, the tag means nothing to Kubernetes.
        let (_tag, variant): (String, _) = data.variant()?;
        variant.newtype_variant_seed(self)
    }
}

/// Mapping keys: any scalar, as its string form.
struct KeySeed<'b> {
    budget: &'b Budget,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = String;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar mapping key")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        self.visit_string(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        self.visit_string(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        self.visit_string(v.to_string())
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<String, E> {
        self.visit_string(v.to_string())
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
        self.visit_string(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        self.visit_string(v.to_string())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.visit_string(v.to_string())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        self.budget.charge(v.len())?;
        Ok(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        self.visit_string("null".to_string())
    }
    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        self.visit_unit()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<String, A::Error> {
        let (_tag, variant): (String, _) = data.variant()?;
        variant.newtype_variant_seed(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> ParsedManifests {
        parse_manifests(text, "m.yaml", &ManifestLimits::default())
    }

    fn lines(p: &ParsedManifests) -> Vec<(String, u32, u32)> {
        p.objects
            .iter()
            .map(|o| {
                let s = o.source.as_ref().unwrap();
                (o.key(), s.line, s.document)
            })
            .collect()
    }

    const MULTI: &str = "# leading comment\n\
apiVersion: v1\n\
kind: Namespace\n\
metadata:\n  name: prod\n\
--- # the service\n\
apiVersion: v1\n\
kind: Service\n\
metadata:\n  name: web\n  namespace: prod\n\
spec:\n  type: LoadBalancer\n  ports:\n  - port: 443\n\
---\n\
---\n\
# only a comment\n\
...\n\
---\n\
apiVersion: apps/v1\n\
kind: Deployment\n\
metadata: {name: web, namespace: prod}\n\
spec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n\
...\n";

    #[test]
    fn multi_document_yaml_with_markers_comments_and_empty_documents() {
        let p = parse(MULTI);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(
            lines(&p),
            vec![
                ("Namespace/prod".to_string(), 2, 0),
                ("Service/prod/web".to_string(), 7, 1),
                ("Deployment/prod/web".to_string(), 21, 4),
            ]
        );
        let d = &p.objects[2];
        assert_eq!(
            d.get("spec.template.spec.containers").unwrap()[0]["image"],
            json!("nginx:1.27")
        );
        assert_eq!(
            p.objects[1].get("spec.ports").unwrap()[0]["port"],
            json!(443)
        );
    }

    #[test]
    fn kustomize_build_output_from_stdin() {
        // `kustomize build` writes documents separated by bare `---`, keys sorted, no comments.
        let text = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  labels:\n    app: api\n  name: prod-api\n  namespace: prod\n---\napiVersion: v1\ndata:\n  POSTGRES_HOST_AUTH_METHOD: trust\nkind: ConfigMap\nmetadata:\n  name: prod-db-config-7h9c2f4k8m\n  namespace: prod\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: prod-api\n  namespace: prod\nspec:\n  selector:\n    matchLabels:\n      app: api\n  template:\n    metadata:\n      labels:\n        app: api\n    spec:\n      containers:\n      - envFrom:\n        - configMapRef:\n            name: prod-db-config-7h9c2f4k8m\n        image: registry.example.com/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n        name: api\n      serviceAccountName: prod-api\n";
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("extra.yaml");
        std::fs::write(
            &file,
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n",
        )
        .unwrap();
        let paths = [PathBuf::from("-"), file.clone(), PathBuf::from("-")];
        let out =
            load_manifests_with_stdin(&paths, &ManifestLimits::default(), &mut text.as_bytes())
                .unwrap();
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let found: Vec<_> = out
            .inventory
            .objects
            .iter()
            .map(|o| {
                (
                    o.key(),
                    o.source.as_ref().unwrap().file.clone(),
                    o.source.as_ref().unwrap().line,
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("ServiceAccount/prod/prod-api".into(), "-".into(), 1),
                (
                    "ConfigMap/prod/prod-db-config-7h9c2f4k8m".into(),
                    "-".into(),
                    9
                ),
                ("Deployment/prod/prod-api".into(), "-".into(), 17),
                ("Namespace/prod".into(), file.display().to_string(), 1),
            ]
        );
        assert!(
            out.inventory.warnings.is_empty(),
            "{:?}",
            out.inventory.warnings
        );
    }

    #[test]
    fn crlf_and_byte_order_mark() {
        let text = format!("\u{feff}{}", MULTI.replace('\n', "\r\n"));
        let p = parse(&text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(lines(&p), lines(&parse(MULTI)));
        assert_eq!(p.objects[1].get("spec.type"), Some(&json!("LoadBalancer")));
        let p = parse_manifest_bytes(text.as_bytes(), "m.yaml", &ManifestLimits::default());
        assert_eq!(p.objects.len(), 3);
    }

    #[test]
    fn helm_template_output_keeps_the_source_template() {
        let text = "---\n# Source: web/templates/serviceaccount.yaml\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: release-web\n  labels:\n    helm.sh/chart: web-0.1.0\n---\n# Source: web/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: release-web\nspec:\n  replicas: 1\n  template:\n    spec:\n      serviceAccountName: release-web\n      containers:\n        - name: web\n          image: \"nginx:1.16.0\"\n          securityContext:\n            {}\n---\n# Source: web/templates/tests/test-connection.yaml\napiVersion: v1\nkind: Pod\nmetadata:\n  name: \"release-web-test-connection\"\n  annotations:\n    \"helm.sh/hook\": test\nspec:\n  containers:\n    - name: wget\n      image: busybox\n  restartPolicy: Never\n";
        let p = parse(text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let origins: Vec<_> = p
            .objects
            .iter()
            .map(|o| o.source.as_ref().unwrap().origin.clone().unwrap())
            .collect();
        assert_eq!(
            origins,
            [
                "web/templates/serviceaccount.yaml",
                "web/templates/deployment.yaml",
                "web/templates/tests/test-connection.yaml"
            ]
        );
        assert_eq!(lines(&p)[1], ("Deployment/release-web".into(), 11, 1));
        assert_eq!(p.objects[2].annotation("helm.sh/hook"), Some("test"));
    }

    #[test]
    fn malformed_document_in_the_middle_costs_only_itself() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  labels: [unclosed\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  namespace: x\n";
        let p = parse(text);
        let names: Vec<_> = p.objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(p.errors.len(), 2, "{:?}", p.errors);
        let e = &p.errors[0];
        assert_eq!(e.document, Some(1));
        assert!(e.message.starts_with("invalid YAML"), "{}", e.message);
        let line = e.line.unwrap();
        assert!((10..=11).contains(&line), "line {line}");
        assert!(!e.message.contains(" at line "), "{}", e.message);
        assert_eq!(p.errors[1].line, Some(17));
        assert!(p.errors[1].message.contains("metadata.name"));
        assert_eq!(
            p.errors[1].to_string(),
            format!("m.yaml:17: {}", p.errors[1].message)
        );
    }

    #[test]
    fn json_object_json_list_and_json_stream() {
        let one = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"d"},"spec":{"hostNetwork":true}}"#;
        let p = parse_manifests(one, "p.json", &ManifestLimits::default());
        assert_eq!(lines(&p), [("Pod/d/p".to_string(), 1, 0)]);
        assert_eq!(p.objects[0].get("spec.hostNetwork"), Some(&json!(true)));

        let list = "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": [\n    {\"apiVersion\": \"v1\", \"kind\": \"ServiceAccount\", \"metadata\": {\"name\": \"a\", \"namespace\": \"n\"}},\n    {\"apiVersion\": \"rbac.authorization.k8s.io/v1\", \"kind\": \"ClusterRole\", \"metadata\": {\"name\": \"r\"}, \"rules\": []},\n    \"junk\"\n  ]\n}\n";
        let p = parse_manifests(list, "l.json", &ManifestLimits::default());
        assert_eq!(
            p.objects.iter().map(KubeObject::key).collect::<Vec<_>>(),
            ["ServiceAccount/n/a", "ClusterRole/r"]
        );
        assert_eq!(p.errors.len(), 1);
        assert!(p.errors[0].message.contains("item 2"), "{:?}", p.errors);

        let stream = format!("{one}\n\n{}\n", one.replace("\"p\"", "\"q\""));
        let p = parse_manifests(&stream, "s.json", &ManifestLimits::default());
        assert_eq!(
            lines(&p),
            [("Pod/d/p".into(), 1, 0), ("Pod/d/q".into(), 3, 1)]
        );

        let broken = format!("{one}\n{{\"apiVersion\": \n");
        let p = parse_manifests(&broken, "b.json", &ManifestLimits::default());
        assert_eq!(p.objects.len(), 1);
        assert_eq!(p.errors.len(), 1);
        assert!(p.errors[0].message.starts_with("invalid JSON"));
    }

    #[test]
    fn yaml_list_items_get_their_own_lines() {
        let text = "apiVersion: v1\nkind: List\nmetadata: {}\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: one\n  data:\n    k: |\n      - not an item\n# comment\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: two\n";
        let p = parse(text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(
            lines(&p),
            [
                ("ConfigMap/one".into(), 5, 0),
                ("ConfigMap/two".into(), 13, 0)
            ]
        );
        // Indented sequence and a typed list kind.
        let text = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleList\nitems:\n  - apiVersion: rbac.authorization.k8s.io/v1\n    kind: Role\n    metadata: {name: r, namespace: n}\n";
        let p = parse(text);
        assert_eq!(lines(&p), [("Role/n/r".into(), 4, 0)]);
        // Flow style: the document's line.
        let p = parse(
            "kind: List\napiVersion: v1\nitems: [{apiVersion: v1, kind: Secret, metadata: {name: s}}]\n",
        );
        assert_eq!(lines(&p), [("Secret/s".into(), 1, 0)]);
        let p = parse("kind: List\napiVersion: v1\nitems: []\n");
        assert!(p.objects.is_empty() && p.errors.is_empty() && p.warnings.is_empty());
    }

    #[test]
    fn non_kubernetes_yaml_is_skipped_with_a_warning() {
        let values = "replicaCount: 1\nimage:\n  repository: nginx\n";
        let compose = "services:\n  web:\n    image: nginx\n    ports: [\"80:80\"]\n";
        let workflow = "name: CI\non: [push]\njobs:\n  build:\n    runs-on: ubuntu-latest\n";
        let chart = "apiVersion: v2\nname: web\nversion: 0.1.0\n";
        for text in [values, compose, workflow, chart] {
            let p = parse(text);
            assert!(p.objects.is_empty() && p.errors.is_empty(), "{text}");
            assert_eq!(p.warnings.len(), 1, "{text}");
            assert!(p.warnings[0].starts_with("m.yaml:1: not a Kubernetes object"));
        }
        let p = parse("- a\n- b\n");
        assert!(p.warnings[0].contains("is a sequence"));
        let kubeconfig = "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\n";
        let p = parse(kubeconfig);
        assert!(p.objects.is_empty() && p.errors.is_empty());
        assert!(p.warnings[0].contains("kubeconfig"));
    }

    #[test]
    fn component_configuration_files_are_kept() {
        let kubelet = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: 10255\nauthentication:\n  anonymous:\n    enabled: true\n";
        let p = parse_manifests(
            kubelet,
            "/etc/kubernetes/kubelet-config.yaml",
            &ManifestLimits::default(),
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.objects[0].name, "kubelet-config");
        assert_eq!(p.objects[0].get("readOnlyPort"), Some(&json!(10255)));
        let audit = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n";
        assert_eq!(parse(audit).objects[0].kind, "Policy");
    }

    #[test]
    fn alias_bombs_are_stopped() {
        let mut text = String::from(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\nx0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!(
                "x{i}: &a{i} [{}]\n",
                std::iter::repeat_n(prev.as_str(), 9)
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        let started = std::time::Instant::now();
        let p = parse(&text);
        assert!(p.objects.is_empty());
        assert_eq!(p.errors.len(), 1);
        // yaml_serde's own repetition limit or our expansion budget, whichever trips first.
        assert!(
            p.errors[0].message.contains("expands beyond")
                || p.errors[0].message.contains("repetition limit"),
            "{:?}",
            p.errors
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // A large string repeated through aliases is caught too.
        let big = "x".repeat(1 << 20);
        let mut text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: s}}\nbig: &b \"{big}\"\nrep:\n"
        );
        for _ in 0..64 {
            text.push_str("- *b\n");
        }
        let p = parse(&text);
        assert!(
            p.errors[0].message.contains("expands beyond"),
            "{:?}",
            p.errors
        );
        // Ordinary anchors and merge keys work.
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - &c\n    name: a\n    image: nginx\n    securityContext: &sc {privileged: true}\n  - <<: *c\n    name: b\n";
        let p = parse(text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let cs = p.objects[0].get("spec.containers").unwrap();
        assert_eq!(cs[1]["name"], json!("b"));
        assert_eq!(cs[1]["securityContext"]["privileged"], json!(true));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let started = std::time::Instant::now();
        for depth in [200usize, 1_000_000] {
            let text = format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: deep}}\ndata: {}{}\n",
                "[".repeat(depth),
                "]".repeat(depth)
            );
            let p = parse(&text);
            assert!(p.objects.is_empty());
            assert_eq!(p.errors.len(), 1, "{depth}");
            let json = format!("{{\"a\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
            let p = parse_manifests(&json, "d.json", &ManifestLimits::default());
            assert_eq!(p.objects.len() + p.warnings.len(), 0);
            assert_eq!(p.errors.len(), 1);
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // Brackets in quoted scalars, block scalars that balance, and comments are not nesting.
        let brackets = "[".repeat(300);
        let text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: q}}\ndata:\n  a: \"{brackets}\"\n  b: '{brackets}'\n  # {brackets}\n  c: [\"x\", 'it''s [', \"\\\"[\"]\n"
        );
        let p = parse(&text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.objects[0].get("data.c").unwrap()[2], json!("\"["));
        let limits = ManifestLimits {
            max_depth: 2,
            ..Default::default()
        };
        let p = parse_manifests(
            "apiVersion: v1\nkind: A\nmetadata: {name: a, labels: {x: y}}\n",
            "m",
            &limits,
        );
        assert!(
            p.errors[0].message.contains("nesting deeper than 2"),
            "{:?}",
            p.errors
        );
    }

    #[test]
    fn duplicate_keys_and_odd_scalars() {
        let p = parse(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostPID: false\n  hostPID: true\n",
        );
        assert!(
            p.errors[0].message.contains("duplicate key `hostPID`"),
            "{:?}",
            p.errors
        );
        let p = parse(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  1: one\n  true: yes\n  inf: .inf\n  tagged: !custom value\n",
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let data = p.objects[0].get("data").unwrap();
        assert_eq!(data["1"], json!("one"));
        assert_eq!(data["true"], json!("yes"));
        assert_eq!(data["inf"], json!(".inf"));
        assert_eq!(data["tagged"], json!("value"));
    }

    #[test]
    fn directives_and_document_limits() {
        let p = parse("%YAML 1.1\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n");
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(lines(&p), [("Namespace/a".into(), 3, 0)]);
        let limits = ManifestLimits {
            max_documents: 2,
            ..Default::default()
        };
        let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n".to_string()
            + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n"
            + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: c}\n";
        let p = parse_manifests(&text, "m", &limits);
        assert_eq!(p.objects.len(), 2);
        assert!(p.errors[0].message.contains("more than 2 documents"));
        assert_eq!(p.errors[0].line, Some(9));
        assert_eq!(split_documents(&"---\n".repeat(1000), 5).len(), 5);
        assert_eq!(split_documents(&"---\n".repeat(4), 5).len(), 4);
        let p = parse_manifest_bytes(
            b"apiVersion: v1\nkind: A\n\xff\n",
            "bin",
            &ManifestLimits::default(),
        );
        assert_eq!(p.errors[0].line, Some(3));
        let p = parse_manifest_bytes(b"\xff\xfea\x00", "u16", &ManifestLimits::default());
        assert!(p.errors[0].message.contains("UTF-16"));
    }

    #[test]
    fn directories_are_walked_sorted_and_safely() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let ns =
            |name: &str| format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n");
        std::fs::create_dir_all(root.join("b/nested")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("chart/templates")).unwrap();
        std::fs::write(root.join("z.yaml"), ns("z")).unwrap();
        std::fs::write(root.join("a.yml"), ns("a")).unwrap();
        std::fs::write(
            root.join("b/nested/c.json"),
            r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"c"}}"#,
        )
        .unwrap();
        std::fs::write(root.join("b/readme.md"), "apiVersion: v1\n").unwrap();
        std::fs::write(root.join(".git/x.yaml"), ns("hidden")).unwrap();
        std::fs::write(
            root.join("chart/Chart.yaml"),
            "apiVersion: v2\nname: chart\n",
        )
        .unwrap();
        std::fs::write(
            root.join("chart/templates/d.yaml"),
            "kind: {{ .Values.kind }}\n",
        )
        .unwrap();
        std::fs::write(root.join("dup.yaml"), ns("a")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root, root.join("b/nested/loop")).unwrap();
        let out = load_manifests(&[root.to_path_buf()], &ManifestLimits::default()).unwrap();
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let names: Vec<_> = out
            .inventory
            .objects
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(names, ["a", "c", "a", "z"]);
        let w = &out.inventory.warnings;
        assert!(
            w.iter().any(|w| w.contains("Helm chart templates skipped")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|w| w.contains("Chart.yaml:1: not a Kubernetes object")),
            "{w:?}"
        );
        assert!(
            w.iter().any(
                |w| w.contains("dup.yaml:1: duplicate object Namespace/a (first at ")
                    && w.contains("a.yml:1)")
            ),
            "{w:?}"
        );

        // A named file that is missing is an error; oversized files are issues.
        assert!(matches!(
            load_manifests(&[root.join("missing.yaml")], &ManifestLimits::default()),
            Err(ManifestError::Read { .. })
        ));
        let small = ManifestLimits {
            max_file_bytes: 10,
            ..Default::default()
        };
        let out = load_manifests(&[root.join("z.yaml")], &small).unwrap();
        assert!(out.inventory.objects.is_empty());
        assert!(out.errors[0].message.contains("10 byte limit"));
    }
}
