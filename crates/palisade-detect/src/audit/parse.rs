//! Audit documents to [`AuditEvent`]s: native `audit.k8s.io` Events and EventLists, and the
//! export shapes of EKS (CloudWatch Logs), GKE (Cloud Logging) and AKS (Azure Monitor).
//!
//! A document is deserialised once into a struct that knows both the native event fields and
//! the wrappers' top-level keys; which keys are present says what it is. Strings borrow the
//! input, request/response objects stay raw. Wrapper elements (EventList items, CloudWatch log
//! events, Azure records) are deserialised one by one so one bad element is counted and
//! skipped without losing its neighbours.

use super::de::{S, StrList, cow};
use super::{
    Annotations, AuditEvent, LazyJson, ObjectRef, RawJson, ResponseStatus, SourceFormat, UserInfo,
    time,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::io::BufRead;

/// Which source the input comes from. `Auto` recognises every supported shape per document;
/// an explicit format also labels native-shaped events with that source (`source.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// Recognise every shape, document by document.
    #[default]
    Auto,
    /// kube-apiserver's own log file or webhook batches.
    Native,
    /// CloudWatch Logs exports of EKS clusters.
    Eks,
    /// Cloud Logging entries of GKE clusters.
    Gke,
    /// Azure Monitor records of AKS clusters.
    Aks,
}

impl std::str::FromStr for InputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(InputFormat::Auto),
            "native" | "k8s" | "kubernetes" => Ok(InputFormat::Native),
            "eks" => Ok(InputFormat::Eks),
            "gke" => Ok(InputFormat::Gke),
            "aks" => Ok(InputFormat::Aks),
            other => Err(format!(
                "unknown input format {other:?} (auto, native, eks, gke, aks)"
            )),
        }
    }
}

/// Parse counters: every document, every event handed on, and every error by kind, so a
/// deployment can see what it is dropping.
#[derive(Default, Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ParseStats {
    /// Documents given to `parse_document` (lines or whole documents of a stream).
    pub documents: u64,
    /// Events handed to the sink.
    pub events: u64,
    /// All errors (the sum of the per-kind counters below).
    pub errors: u64,
    /// Not JSON (syntax errors, truncated documents).
    pub malformed_json: u64,
    pub invalid_utf8: u64,
    /// Nesting deeper than the JSON parser's recursion limit.
    pub too_deep: u64,
    /// Documents or lines over the size limit (skipped without buffering them).
    pub too_large: u64,
    /// `apiVersion` other than audit.k8s.io v1/v1beta1/v1alpha1.
    pub unknown_version: u64,
    /// A `kind` other than Event/EventList.
    pub unknown_kind: u64,
    /// JSON that is no audit event nor a known export wrapper.
    pub unknown_shape: u64,
    /// An event whose fields have the wrong types.
    pub invalid_event: u64,
    /// Cloud records of other services (GCE, ARM operations) found in the same export.
    pub not_kubernetes: u64,
    /// CloudWatch `CONTROL_MESSAGE` payloads (skipped, not errors).
    pub control_messages: u64,
}

impl ParseStats {
    /// Counts one error under its kind.
    pub fn record(&mut self, error: &ParseError) {
        self.errors += 1;
        let counter = match error {
            ParseError::Malformed(_) => &mut self.malformed_json,
            ParseError::InvalidUtf8 => &mut self.invalid_utf8,
            ParseError::TooDeep => &mut self.too_deep,
            ParseError::TooLarge { .. } => &mut self.too_large,
            ParseError::UnknownVersion(_) => &mut self.unknown_version,
            ParseError::UnknownKind(_) => &mut self.unknown_kind,
            ParseError::UnknownShape => &mut self.unknown_shape,
            ParseError::InvalidEvent(_) => &mut self.invalid_event,
            ParseError::NotKubernetes(_) => &mut self.not_kubernetes,
        };
        *counter += 1;
    }

    /// Adds `other`'s counters to these.
    pub fn merge(&mut self, other: &ParseStats) {
        self.documents += other.documents;
        self.events += other.events;
        self.errors += other.errors;
        self.malformed_json += other.malformed_json;
        self.invalid_utf8 += other.invalid_utf8;
        self.too_deep += other.too_deep;
        self.too_large += other.too_large;
        self.unknown_version += other.unknown_version;
        self.unknown_kind += other.unknown_kind;
        self.unknown_shape += other.unknown_shape;
        self.invalid_event += other.invalid_event;
        self.not_kubernetes += other.not_kubernetes;
        self.control_messages += other.control_messages;
    }
}

/// Why a document (or one element of it) was not turned into events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("invalid UTF-8 in input")]
    InvalidUtf8,
    #[error("JSON nested deeper than the parser's recursion limit")]
    TooDeep,
    #[error("document of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Bytes seen (at least the limit plus one).
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    #[error("unknown audit apiVersion {0:?}")]
    UnknownVersion(String),
    #[error("unknown kind {0:?} (expected Event or EventList)")]
    UnknownKind(String),
    #[error("not an audit event or a known audit export")]
    UnknownShape,
    #[error("invalid audit event: {0}")]
    InvalidEvent(String),
    #[error("not a Kubernetes audit record: {0}")]
    NotKubernetes(String),
}

impl ParseError {
    /// The `ParseStats` counter name of this error.
    pub fn kind(&self) -> &'static str {
        match self {
            ParseError::Malformed(_) => "malformed_json",
            ParseError::InvalidUtf8 => "invalid_utf8",
            ParseError::TooDeep => "too_deep",
            ParseError::TooLarge { .. } => "too_large",
            ParseError::UnknownVersion(_) => "unknown_version",
            ParseError::UnknownKind(_) => "unknown_kind",
            ParseError::UnknownShape => "unknown_shape",
            ParseError::InvalidEvent(_) => "invalid_event",
            ParseError::NotKubernetes(_) => "not_kubernetes",
        }
    }

    pub(crate) fn from_json_pub(e: serde_json::Error, bytes: &[u8]) -> ParseError {
        Self::from_json(e, bytes)
    }

    fn from_json(e: serde_json::Error, bytes: &[u8]) -> ParseError {
        let text = e.to_string();
        if text.contains("recursion limit") {
            ParseError::TooDeep
        } else if e.is_data() {
            ParseError::InvalidEvent(text)
        } else if std::str::from_utf8(bytes).is_err() {
            ParseError::InvalidUtf8
        } else {
            ParseError::Malformed(text)
        }
    }
}

/// Default limit on one line or document of a stream (4 MiB; kube-apiserver's own request
/// limit is 3 MiB).
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 4 << 20;

/// Wrappers may nest (Event Hub records holding diagnostic records holding an event string);
/// deeper nesting than this is hostile.
const MAX_WRAPPER_DEPTH: u8 = 4;

/// One JSON document (an Event, an EventList, or a cloud export wrapper holding any number of
/// events). Calls `sink` for every event; a bad element is counted in `stats` and skipped, the
/// rest kept. `Err` only if the whole document is unusable (not JSON, unknown shape) — also
/// counted.
pub fn parse_document(
    bytes: &[u8],
    format: InputFormat,
    stats: &mut ParseStats,
    sink: &mut dyn FnMut(&AuditEvent<'_>),
) -> Result<(), ParseError> {
    stats.documents += 1;
    let ctx = Ctx {
        hint: format,
        label: None,
        cluster: None,
        export_ts: None,
        export_nanos: None,
    };
    let result = document(bytes, &ctx, stats, sink, 0);
    if let Err(e) = &result {
        stats.record(e);
    }
    result
}

/// A stream of JSON lines (or concatenated/pretty-printed documents): every document through
/// [`parse_document`]. Documents over [`DEFAULT_MAX_DOCUMENT_BYTES`] are counted and skipped
/// without being buffered. Only I/O errors are returned.
pub fn parse_reader<R: BufRead>(
    reader: R,
    format: InputFormat,
    stats: &mut ParseStats,
    sink: &mut dyn FnMut(&AuditEvent<'_>),
) -> std::io::Result<()> {
    parse_reader_limited(reader, format, DEFAULT_MAX_DOCUMENT_BYTES, stats, sink)
}

/// [`parse_reader`] with an explicit per-document size limit. A gzipped stream (Firehose
/// objects, rotated `.gz` logs) is inflated on the fly.
pub fn parse_reader_limited<R: BufRead>(
    mut reader: R,
    format: InputFormat,
    max_document_bytes: usize,
    stats: &mut ParseStats,
    sink: &mut dyn FnMut(&AuditEvent<'_>),
) -> std::io::Result<()> {
    let gzipped = loop {
        match reader.fill_buf() {
            Ok(head) => break head.starts_with(&[0x1f, 0x8b]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    if gzipped {
        let inflated = std::io::BufReader::new(flate2::bufread::MultiGzDecoder::new(reader));
        return split_stream(inflated, format, max_document_bytes, stats, sink);
    }
    split_stream(reader, format, max_document_bytes, stats, sink)
}

fn split_stream<R: BufRead>(
    mut reader: R,
    format: InputFormat,
    max_document_bytes: usize,
    stats: &mut ParseStats,
    sink: &mut dyn FnMut(&AuditEvent<'_>),
) -> std::io::Result<()> {
    let mut splitter = Splitter::new(max_document_bytes);
    let mut on_piece = |piece: Piece<'_>| match piece {
        Piece::Doc(doc) => {
            let _ = parse_document(doc, format, stats, sink);
        }
        Piece::TooLarge(size) => {
            stats.documents += 1;
            stats.record(&ParseError::TooLarge {
                size,
                limit: max_document_bytes,
            });
        }
    };
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        splitter.feed(chunk, &mut on_piece);
        reader.consume(n);
    }
    splitter.finish(&mut on_piece);
    Ok(())
}

/// A complete document cut from a stream, or the size of one that was too large to keep.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    Doc(&'a [u8]),
    TooLarge(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Between documents.
    Idle,
    /// Inside a JSON object or array: brackets are counted outside strings.
    Json,
    /// A line that does not start with `{` or `[` (e.g. an S3 export line with a timestamp
    /// prefix, or garbage): runs to the end of the line.
    Line,
}

/// Cuts a byte stream into documents: JSON lines, concatenated documents, pretty-printed
/// documents (a first line of just `{` or `[`), and other lines. A JSON line that ends with
/// its brackets still open is cut at the newline (a truncated write), so one broken line never
/// swallows the lines after it. Bytes are copied only when a document spans chunks.
pub(crate) struct Splitter {
    buf: Vec<u8>,
    max: usize,
    mode: Mode,
    depth: u32,
    in_str: bool,
    escape: bool,
    /// The document's first line was a lone bracket: newlines inside it are layout.
    pretty: bool,
    /// Bytes seen of the current document (kept or not).
    size: usize,
    overflow: bool,
}

impl Splitter {
    pub(crate) fn new(max: usize) -> Self {
        Splitter {
            buf: Vec::new(),
            max,
            mode: Mode::Idle,
            depth: 0,
            in_str: false,
            escape: false,
            pretty: false,
            size: 0,
            overflow: false,
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        self.size += bytes.len();
        if self.overflow {
            return;
        }
        if self.size > self.max {
            self.overflow = true;
            self.buf = Vec::new();
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Emits the current document: `tail` completes what was buffered from earlier chunks.
    fn emit(&mut self, tail: &[u8], out: &mut dyn FnMut(Piece<'_>)) {
        if self.buf.is_empty() && !self.overflow {
            self.size += tail.len();
            if self.size > self.max {
                out(Piece::TooLarge(self.size));
            } else {
                out(Piece::Doc(tail));
            }
        } else {
            self.keep(tail);
            if self.overflow {
                out(Piece::TooLarge(self.size));
            } else {
                out(Piece::Doc(&self.buf));
            }
        }
        self.buf.clear();
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
        self.mode = Mode::Idle;
        self.depth = 0;
        self.in_str = false;
        self.escape = false;
        self.pretty = false;
        self.size = 0;
        self.overflow = false;
    }

    pub(crate) fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(Piece<'_>)) {
        let mut start = 0; // start of the not-yet-kept part of the current document in `data`
        let mut i = 0;
        while i < data.len() {
            match self.mode {
                Mode::Idle => {
                    let b = data[i];
                    if b.is_ascii_whitespace() {
                        i += 1;
                        continue;
                    }
                    // A UTF-8 byte-order mark before a document.
                    if data[i..].starts_with(b"\xEF\xBB\xBF") {
                        i += 3;
                        continue;
                    }
                    start = i;
                    // Fast path for JSON lines: a whole line in this chunk that opens and closes
                    // like one document and has no `}{`-style boundary inside is that document;
                    // the bracket-counting scan below is only needed for the other shapes.
                    if (b == b'{' || b == b'[')
                        && self.buf.is_empty()
                        && let Some(p) = memchr::memchr(b'\n', &data[i..])
                    {
                        let line = data[i..i + p].trim_ascii_end();
                        if line.len() > 1
                            && line.len() <= self.max
                            && matches!(line.last(), Some(b'}' | b']'))
                            && !has_document_boundary(line)
                        {
                            out(Piece::Doc(line));
                            i += p + 1;
                            continue;
                        }
                    }
                    self.mode = if b == b'{' || b == b'[' {
                        Mode::Json
                    } else {
                        Mode::Line
                    };
                }
                Mode::Line => match memchr::memchr(b'\n', &data[i..]) {
                    Some(p) => {
                        let end = i + p;
                        let line = &data[start..end];
                        let line = line.strip_suffix(b"\r").unwrap_or(line);
                        self.emit(line, out);
                        i = end + 1;
                    }
                    None => {
                        self.keep(&data[start..]);
                        return;
                    }
                },
                Mode::Json => {
                    if self.escape {
                        self.escape = false;
                        i += 1;
                        continue;
                    }
                    if self.in_str {
                        match memchr::memchr3(b'"', b'\\', b'\n', &data[i..]) {
                            Some(p) => {
                                i += p;
                                match data[i] {
                                    b'"' => self.in_str = false,
                                    b'\\' => self.escape = true,
                                    _ => {
                                        if self.newline_ends_document(&data[start..i]) {
                                            let doc = &data[start..i];
                                            self.emit(doc, out);
                                            i += 1;
                                            continue;
                                        }
                                    }
                                }
                                i += 1;
                            }
                            None => {
                                self.keep(&data[start..]);
                                return;
                            }
                        }
                        continue;
                    }
                    match data[i] {
                        b'"' => self.in_str = true,
                        b'{' | b'[' => self.depth += 1,
                        b'}' | b']' => {
                            self.depth = self.depth.saturating_sub(1);
                            if self.depth == 0 {
                                let doc = &data[start..=i];
                                self.emit(doc, out);
                                i += 1;
                                continue;
                            }
                        }
                        b'\n' if self.newline_ends_document(&data[start..i]) => {
                            let doc = &data[start..i];
                            let doc = doc.strip_suffix(b"\r").unwrap_or(doc);
                            self.emit(doc, out);
                            i += 1;
                            continue;
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
        }
        if self.mode != Mode::Idle {
            self.keep(&data[start..]);
        }
    }

    /// At a newline inside an open document: a pretty-printed document goes on; a JSON line
    /// whose brackets are still open was truncated and ends here.
    fn newline_ends_document(&mut self, before_in_chunk: &[u8]) -> bool {
        if self.pretty {
            return false;
        }
        // The first line is what was buffered from earlier chunks plus this chunk's part.
        let (kept, here) = (self.buf.trim_ascii(), before_in_chunk.trim_ascii());
        let lone_bracket = |t: &[u8]| t == b"{" || t == b"[";
        let first_line_is_bracket =
            (kept.is_empty() && lone_bracket(here)) || (here.is_empty() && lone_bracket(kept));
        if !self.overflow && first_line_is_bracket {
            self.pretty = true;
            false
        } else {
            true
        }
    }

    /// End of input: an unfinished document is handed on (it will fail to parse, counted).
    pub(crate) fn finish(&mut self, out: &mut dyn FnMut(Piece<'_>)) {
        if self.mode != Mode::Idle {
            let trimmed_empty = self.buf.trim_ascii().is_empty() && !self.overflow;
            if trimmed_empty {
                self.buf.clear();
                self.mode = Mode::Idle;
                return;
            }
            self.emit(&[], out);
        }
    }
}

/// Whether a closing bracket is followed (after blanks) by an opening one: where two documents
/// written on one line would meet. Such lines (or strings that merely contain the sequence) take
/// the bracket-counting path.
fn has_document_boundary(line: &[u8]) -> bool {
    memchr::memchr2_iter(b'}', b']', line).any(|pos| {
        matches!(
            line[pos + 1..]
                .iter()
                .find(|b| !matches!(b, b' ' | b'\t' | b'\r')),
            Some(b'{' | b'[')
        )
    })
}

/// What enclosing wrappers said about the events inside them.
#[derive(Clone)]
pub(crate) struct Ctx<'c> {
    pub(crate) hint: InputFormat,
    /// Set by a cloud wrapper: the source of every event inside.
    pub(crate) label: Option<SourceFormat>,
    pub(crate) cluster: Option<Cow<'c, str>>,
    pub(crate) export_ts: Option<Cow<'c, str>>,
    pub(crate) export_nanos: Option<i64>,
}

impl Ctx<'_> {
    fn native_label(&self, p_log_type: Option<&str>) -> SourceFormat {
        if let Some(l) = self.label {
            return l;
        }
        match self.hint {
            InputFormat::Native => SourceFormat::Native,
            InputFormat::Eks => SourceFormat::Eks,
            InputFormat::Gke => SourceFormat::Gke,
            InputFormat::Aks => SourceFormat::Aks,
            InputFormat::Auto => match p_log_type {
                Some(t) if t.starts_with("Amazon.EKS") => SourceFormat::Eks,
                _ => SourceFormat::Native,
            },
        }
    }
}

pub(crate) type Sink<'s> = dyn FnMut(&AuditEvent<'_>) + 's;

pub(crate) fn count_element(stats: &mut ParseStats, r: Result<(), ParseError>) {
    if let Err(e) = r {
        stats.record(&e);
    }
}

fn document(
    bytes: &[u8],
    ctx: &Ctx<'_>,
    stats: &mut ParseStats,
    sink: &mut Sink<'_>,
    depth: u8,
) -> Result<(), ParseError> {
    if depth > MAX_WRAPPER_DEPTH {
        return Err(ParseError::TooDeep);
    }
    let bytes = bytes.trim_ascii();
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let inflated = gunzip(bytes)?;
        return document(&inflated, ctx, stats, sink, depth + 1);
    }
    match bytes.first() {
        Some(b'{') => {
            // One UTF-8 check of the whole document (vectorised) is cheaper than serde_json's
            // check of every borrowed string.
            let text = std::str::from_utf8(bytes).map_err(|_| ParseError::InvalidUtf8)?;
            // Webhook batches: read every item in the list's own pass. Should any item be
            // malformed, the general path below reads items one by one and counts the bad one.
            if memchr::memmem::find(&bytes[..bytes.len().min(256)], b"\"EventList\"").is_some()
                && let Ok(list) = serde_json::from_str::<FastList<'_>>(text)
                && list.kind.as_ref().is_some_and(|k| k.0 == "EventList")
            {
                check_version(list.api_version.as_ref())?;
                for doc in list.items {
                    let r = list_doc(doc, ctx, stats, sink);
                    count_element(stats, r);
                }
                return Ok(());
            }
            let doc: Doc<'_> =
                serde_json::from_str(text).map_err(|e| ParseError::from_json(e, bytes))?;
            object(doc, bytes, ctx, stats, sink, depth)
        }
        Some(b'[') => {
            let text = std::str::from_utf8(bytes).map_err(|_| ParseError::InvalidUtf8)?;
            let items: Vec<&RawValue> =
                serde_json::from_str(text).map_err(|e| ParseError::from_json(e, bytes))?;
            for item in items {
                let r = document(item.get().as_bytes(), ctx, stats, sink, depth + 1);
                count_element(stats, r);
            }
            Ok(())
        }
        Some(b'0'..=b'9') => {
            // S3 export-task line: `2024-01-01T00:00:00.000Z {json}`.
            let text = std::str::from_utf8(bytes).map_err(|_| ParseError::InvalidUtf8)?;
            let (ts, rest) = text
                .split_once([' ', '\t'])
                .ok_or_else(|| ParseError::Malformed("expected a JSON document".into()))?;
            let nanos = time::parse_timestamp_nanos(ts)
                .ok_or_else(|| ParseError::Malformed("expected a JSON document".into()))?;
            let inner = Ctx {
                export_ts: Some(Cow::Borrowed(ts)),
                export_nanos: Some(nanos),
                ..ctx.clone()
            };
            document(rest.as_bytes(), &inner, stats, sink, depth + 1)
        }
        Some(_) if std::str::from_utf8(bytes).is_err() => Err(ParseError::InvalidUtf8),
        Some(_) => Err(ParseError::Malformed(
            "expected a JSON object or array".into(),
        )),
        None => Err(ParseError::Malformed("empty document".into())),
    }
}

/// Every top-level key of every supported shape; see [`object`] for how the present keys
/// decide the shape.
#[derive(Deserialize)]
struct Doc<'a> {
    // audit.k8s.io Event / EventList
    #[serde(borrow, rename = "apiVersion")]
    api_version: Option<S<'a>>,
    #[serde(borrow)]
    kind: Option<S<'a>>,
    #[serde(borrow)]
    level: Option<S<'a>>,
    #[serde(borrow, rename = "auditID")]
    audit_id: Option<S<'a>>,
    #[serde(borrow)]
    stage: Option<S<'a>>,
    #[serde(borrow, rename = "requestURI")]
    request_uri: Option<S<'a>>,
    #[serde(borrow)]
    verb: Option<S<'a>>,
    #[serde(borrow)]
    user: Option<RawUser<'a>>,
    #[serde(borrow, rename = "impersonatedUser")]
    impersonated_user: Option<RawUser<'a>>,
    #[serde(borrow, rename = "sourceIPs")]
    source_ips: Option<StrList<'a>>,
    #[serde(borrow, rename = "userAgent")]
    user_agent: Option<S<'a>>,
    #[serde(borrow, rename = "objectRef")]
    object_ref: Option<RawObjectRef<'a>>,
    #[serde(borrow, rename = "responseStatus")]
    response_status: Option<RawStatus<'a>>,
    #[serde(borrow, rename = "requestObject")]
    request_object: Option<&'a RawValue>,
    #[serde(borrow, rename = "responseObject")]
    response_object: Option<&'a RawValue>,
    #[serde(borrow)]
    annotations: Option<&'a RawValue>,
    #[serde(borrow, rename = "requestReceivedTimestamp")]
    request_received_timestamp: Option<S<'a>>,
    #[serde(borrow, rename = "stageTimestamp")]
    stage_timestamp: Option<S<'a>>,
    /// v1beta1 `timestamp`; a number (epoch ms) in CloudWatch log records.
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    /// v1beta1 `metadata.creationTimestamp`.
    #[serde(borrow)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow)]
    items: Option<Vec<&'a RawValue>>,
    /// Panther's log type on events it re-exports.
    #[serde(borrow)]
    p_log_type: Option<S<'a>>,
    /// Panther's event time: the export's timestamp of a re-exported event.
    #[serde(borrow)]
    p_event_time: Option<S<'a>>,
    /// A CloudWatch Logs subscription as AWS Lambda receives it: `{"awslogs": {"data":
    /// "<base64 of the gzipped payload>"}}`.
    #[serde(borrow)]
    awslogs: Option<AwsLogs<'a>>,

    // CloudWatch Logs
    #[serde(borrow, rename = "messageType")]
    message_type: Option<S<'a>>,
    #[serde(borrow, rename = "logGroup")]
    log_group: Option<S<'a>>,
    #[serde(borrow, rename = "logEvents")]
    log_events: Option<Vec<LogEvent<'a>>>,
    #[serde(borrow)]
    events: Option<Vec<LogEvent<'a>>>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    #[serde(borrow, rename = "@message")]
    at_message: Option<&'a RawValue>,
    #[serde(borrow, rename = "@timestamp")]
    at_timestamp: Option<S<'a>>,
    #[serde(borrow, rename = "@log")]
    at_log: Option<S<'a>>,
    #[serde(borrow, rename = "logGroupName")]
    log_group_name: Option<S<'a>>,

    // Cloud Logging LogEntry
    #[serde(borrow, rename = "protoPayload")]
    proto_payload: Option<&'a RawValue>,
    #[serde(borrow)]
    resource: Option<&'a RawValue>,
    #[serde(borrow, rename = "insertId")]
    insert_id: Option<S<'a>>,
    #[serde(borrow)]
    labels: Option<&'a RawValue>,
    #[serde(borrow)]
    operation: Option<&'a RawValue>,

    // Azure Monitor
    #[serde(borrow)]
    records: Option<Vec<&'a RawValue>>,
    #[serde(borrow)]
    category: Option<S<'a>>,
    #[serde(borrow)]
    properties: Option<&'a RawValue>,
    #[serde(borrow, rename = "resourceId")]
    resource_id: Option<S<'a>>,
    #[serde(borrow, rename = "operationName")]
    operation_name: Option<S<'a>>,
    #[serde(borrow, rename = "callerIpAddress")]
    caller_ip_address: Option<S<'a>>,
    #[serde(borrow)]
    caller: Option<&'a RawValue>,
    #[serde(borrow, rename = "resultSignature")]
    result_signature: Option<&'a RawValue>,
    #[serde(borrow, rename = "resultType")]
    result_type: Option<S<'a>>,
    #[serde(borrow)]
    time: Option<S<'a>>,
    #[serde(borrow, rename = "correlationId")]
    correlation_id: Option<S<'a>>,

    // The legacy `AzureDiagnostics` table (Log Analytics exports): `Category` and the event as
    // the string column `log_s`.
    #[serde(borrow, rename = "Category")]
    diag_category: Option<S<'a>>,
    #[serde(borrow)]
    log_s: Option<&'a RawValue>,
    #[serde(borrow, rename = "ResourceId")]
    diag_resource_id: Option<S<'a>>,
    #[serde(borrow, rename = "TimeGenerated")]
    time_generated: Option<S<'a>>,

    // AKSAudit / AKSAuditAdmin table rows (PascalCase columns).
    #[serde(borrow, rename = "Type")]
    table_type: Option<&'a RawValue>,
    #[serde(borrow, rename = "Verb")]
    table_verb: Option<&'a RawValue>,
    #[serde(borrow, rename = "AuditId")]
    table_audit_id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct AwsLogs<'a> {
    #[serde(borrow)]
    data: Option<S<'a>>,
}

/// Decompressed wrappers are bounded: a gzip bomb is counted, never inflated without end.
const MAX_INFLATED_BYTES: u64 = 64 << 20;

/// Inflates a gzip member (CloudWatch subscription payloads as Lambda and Firehose deliver
/// them) up to [`MAX_INFLATED_BYTES`].
fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, ParseError> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes).take(MAX_INFLATED_BYTES + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| ParseError::Malformed(format!("gzip: {e}")))?;
    if out.len() as u64 > MAX_INFLATED_BYTES {
        return Err(ParseError::TooLarge {
            size: out.len(),
            limit: MAX_INFLATED_BYTES as usize,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
pub(crate) struct RawUser<'a> {
    #[serde(borrow)]
    username: Option<S<'a>>,
    #[serde(borrow)]
    uid: Option<S<'a>>,
    #[serde(borrow)]
    groups: Option<StrList<'a>>,
    #[serde(borrow)]
    extra: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(crate) struct RawObjectRef<'a> {
    #[serde(borrow)]
    resource: Option<S<'a>>,
    #[serde(borrow)]
    subresource: Option<S<'a>>,
    #[serde(borrow)]
    namespace: Option<S<'a>>,
    #[serde(borrow)]
    name: Option<S<'a>>,
    #[serde(borrow)]
    uid: Option<S<'a>>,
    #[serde(borrow, rename = "apiGroup")]
    api_group: Option<S<'a>>,
    #[serde(borrow, rename = "apiVersion")]
    api_version: Option<S<'a>>,
    #[serde(borrow, rename = "resourceVersion")]
    resource_version: Option<S<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct RawStatus<'a> {
    code: Option<i64>,
    #[serde(borrow)]
    status: Option<S<'a>>,
    #[serde(borrow)]
    reason: Option<S<'a>>,
    #[serde(borrow)]
    message: Option<S<'a>>,
}

pub(crate) fn user_info(u: Option<RawUser<'_>>) -> UserInfo<'_> {
    match u {
        None => UserInfo::default(),
        Some(u) => UserInfo {
            username: cow(u.username),
            uid: cow(u.uid),
            groups: u.groups.map(|g| g.0).unwrap_or_default(),
            extra: LazyJson::new(u.extra.map(RawJson::Borrowed)),
        },
    }
}

pub(crate) fn object_ref(o: Option<RawObjectRef<'_>>) -> ObjectRef<'_> {
    match o {
        None => ObjectRef::default(),
        Some(o) => ObjectRef {
            resource: cow(o.resource),
            subresource: cow(o.subresource),
            namespace: cow(o.namespace),
            name: cow(o.name),
            uid: cow(o.uid),
            api_group: cow(o.api_group),
            api_version: cow(o.api_version),
            resource_version: cow(o.resource_version),
        },
    }
}

pub(crate) fn response_status(s: Option<RawStatus<'_>>) -> ResponseStatus<'_> {
    match s {
        None => ResponseStatus::default(),
        Some(s) => ResponseStatus {
            code: s.code,
            status: cow(s.status),
            reason: cow(s.reason),
            message: cow(s.message),
        },
    }
}

/// A raw JSON value that is `null` counts as absent.
pub(crate) fn present(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|r| r.get() != "null")
}

/// serde_json's recursion limit: a raw subtree nested deeper could never be read by a rule.
const MAX_JSON_DEPTH: usize = 127;

/// Raw subtrees are skipped by the parser without its recursion limit; check them here (a
/// bracket count first, so ordinary objects cost one memchr pass).
pub(crate) fn check_depth(raw: Option<&RawValue>) -> Result<(), ParseError> {
    let Some(raw) = raw else {
        return Ok(());
    };
    let bytes = raw.get().as_bytes();
    if memchr::memchr2_iter(b'{', b'[', bytes).count() <= MAX_JSON_DEPTH {
        return Ok(());
    }
    let (mut depth, mut in_str, mut escape) = (0usize, false, false);
    for &b in bytes {
        if in_str {
            if escape {
                escape = false;
            } else if b == b'\\' {
                escape = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(ParseError::TooDeep);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Lowercases a verb only when it has uppercase letters (never for kube-apiserver's own).
pub(crate) fn lower(c: Cow<'_, str>) -> Cow<'_, str> {
    if c.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(c.to_ascii_lowercase())
    } else {
        c
    }
}

fn check_version(api_version: Option<&S<'_>>) -> Result<(), ParseError> {
    match api_version.map(|s| s.0.as_ref()) {
        None | Some("audit.k8s.io/v1" | "audit.k8s.io/v1beta1" | "audit.k8s.io/v1alpha1") => Ok(()),
        Some(other) => Err(ParseError::UnknownVersion(other.to_string())),
    }
}

pub(crate) fn emit<'a>(
    mut event: AuditEvent<'a>,
    ctx: &Ctx<'a>,
    stats: &mut ParseStats,
    sink: &mut Sink<'_>,
) {
    if event.cluster.is_none() {
        event.cluster = ctx.cluster.clone();
    }
    if event.export_timestamp.is_none() {
        event.export_timestamp = ctx.export_ts.clone();
    }
    if event.stage.is_none() {
        event.stage = Some(Cow::Borrowed("ResponseComplete"));
    }
    event.finish();
    if event.time_nanos == 0
        && let Some(n) = ctx.export_nanos
    {
        event.time_nanos = n;
    }
    stats.events += 1;
    sink(&event);
}

fn object(
    doc: Doc<'_>,
    bytes: &[u8],
    ctx: &Ctx<'_>,
    stats: &mut ParseStats,
    sink: &mut Sink<'_>,
    depth: u8,
) -> Result<(), ParseError> {
    let kind = doc.kind.as_ref().map(|k| k.0.as_ref());
    // EventList: items one by one.
    if let Some(items) = doc.items {
        if !matches!(kind, None | Some("EventList")) {
            return Err(ParseError::UnknownKind(
                kind.unwrap_or_default().to_string(),
            ));
        }
        check_version(doc.api_version.as_ref())?;
        for item in items {
            let r = list_item(item, ctx, stats, sink);
            count_element(stats, r);
        }
        return Ok(());
    }
    if let Some(data) = doc.awslogs.as_ref().and_then(|a| a.data.as_ref()) {
        use base64::Engine as _;
        let compressed = base64::engine::general_purpose::STANDARD
            .decode(data.0.as_bytes())
            .map_err(|e| ParseError::InvalidEvent(format!("awslogs.data: {e}")))?;
        return document(&compressed, ctx, stats, sink, depth + 1);
    }
    // CloudWatch Logs subscription payload, or an events list of log records.
    if doc.message_type.is_some() || doc.log_events.is_some() {
        if doc
            .message_type
            .as_ref()
            .is_some_and(|m| m.0 == "CONTROL_MESSAGE")
        {
            stats.control_messages += 1;
            return Ok(());
        }
        let cluster = doc.log_group.as_ref().and_then(|g| eks_cluster(&g.0));
        let inner = Ctx {
            label: ctx.label.or(Some(SourceFormat::Eks)),
            cluster: cluster.map(Cow::Borrowed).or_else(|| ctx.cluster.clone()),
            ..ctx.clone()
        };
        for record in doc.log_events.unwrap_or_default() {
            let r = log_record(record, &inner, stats, sink, depth);
            count_element(stats, r);
        }
        return Ok(());
    }
    if let Some(events) = doc.events {
        let inner = Ctx {
            label: ctx.label.or(Some(SourceFormat::Eks)),
            ..ctx.clone()
        };
        for record in events {
            let r = log_record(record, &inner, stats, sink, depth);
            count_element(stats, r);
        }
        return Ok(());
    }
    if let Some(payload) = doc.proto_payload {
        let entry = super::cloud::GkeEntry {
            payload,
            resource: doc.resource,
            insert_id: cow(doc.insert_id),
            labels: doc.labels,
            operation: doc.operation,
            timestamp: doc.timestamp,
        };
        let event = super::cloud::gke_event(entry)?;
        emit(event, ctx, stats, sink);
        return Ok(());
    }
    if let Some(records) = doc.records {
        for record in records {
            let r = document(record.get().as_bytes(), ctx, stats, sink, depth + 1);
            count_element(stats, r);
        }
        return Ok(());
    }
    if let Some(category) = &doc.category
        && (category.0.eq_ignore_ascii_case("kube-audit")
            || category.0.eq_ignore_ascii_case("kube-audit-admin"))
    {
        let cluster = doc
            .resource_id
            .as_ref()
            .and_then(|r| super::cloud::azure_cluster(&r.0));
        let inner = Ctx {
            label: Some(SourceFormat::Aks),
            cluster: cluster.map(Cow::Borrowed).or_else(|| ctx.cluster.clone()),
            export_ts: cow(doc.time).or_else(|| ctx.export_ts.clone()),
            ..ctx.clone()
        };
        let log = doc
            .properties
            .map(super::cloud::aks_properties_log)
            .transpose()?
            .flatten()
            .ok_or_else(|| ParseError::InvalidEvent("AKS record without properties.log".into()))?;
        return document(log.as_bytes(), &inner, stats, sink, depth + 1);
    }
    if let Some(log) = present(doc.log_s) {
        if let Some(category) = &doc.diag_category
            && !category.0.eq_ignore_ascii_case("kube-audit")
            && !category.0.eq_ignore_ascii_case("kube-audit-admin")
        {
            return Err(ParseError::NotKubernetes(format!(
                "AzureDiagnostics category {:?}",
                category.0
            )));
        }
        let text = embedded_json(log, "log_s")?;
        let cluster = doc
            .diag_resource_id
            .as_ref()
            .or(doc.resource_id.as_ref())
            .and_then(|r| super::cloud::azure_cluster(&r.0));
        let inner = Ctx {
            label: Some(SourceFormat::Aks),
            cluster: cluster.map(Cow::Borrowed).or_else(|| ctx.cluster.clone()),
            export_ts: cow(doc.time_generated).or_else(|| ctx.export_ts.clone()),
            ..ctx.clone()
        };
        return document(text.as_bytes(), &inner, stats, sink, depth + 1);
    }
    if doc.table_type.is_some() || doc.table_verb.is_some() || doc.table_audit_id.is_some() {
        drop(doc);
        return super::cloud::aks_table_row(bytes, ctx, stats, sink);
    }
    if let Some(category) = &doc.category
        && !category.0.eq_ignore_ascii_case("Administrative")
    {
        // AKS diagnostics of other categories (kube-apiserver, guard, cluster-autoscaler…)
        // and Activity records of other categories share exports with the audit records.
        return Err(ParseError::NotKubernetes(format!(
            "Azure record of category {:?}",
            category.0
        )));
    }
    if let Some(op) = &doc.operation_name {
        let activity = super::cloud::AzureActivity {
            operation_name: op.0.clone(),
            resource_id: doc.resource_id.as_ref().map(|s| s.0.clone()),
            caller_ip: cow(doc.caller_ip_address),
            caller: doc.caller,
            result_signature: doc.result_signature,
            result_type: cow(doc.result_type),
            time: cow(doc.time),
            correlation_id: cow(doc.correlation_id),
            category: doc.category.as_ref().map(|s| s.0.clone()),
        };
        let event = super::cloud::azure_activity_event(activity)?;
        emit(event, ctx, stats, sink);
        return Ok(());
    }
    // A single CloudWatch log record or a Logs Insights row.
    if let Some(message) = present(doc.message).or(present(doc.at_message)) {
        let cluster = doc
            .at_log
            .as_ref()
            .or(doc.log_group_name.as_ref())
            .or(doc.log_group.as_ref())
            .and_then(|g| eks_cluster(&g.0));
        let mut inner = Ctx {
            label: ctx.label.or(Some(SourceFormat::Eks)),
            cluster: cluster.map(Cow::Borrowed).or_else(|| ctx.cluster.clone()),
            ..ctx.clone()
        };
        if let Some(ts) = &doc.at_timestamp {
            inner.export_nanos = time::parse_timestamp_nanos(&ts.0).or(inner.export_nanos);
        }
        if let Some(ms) = doc.timestamp.and_then(epoch_millis) {
            inner.export_nanos = Some(ms);
        }
        let text = embedded_json(message, "log record message")?;
        return document(text.as_bytes(), &inner, stats, sink, depth + 1);
    }
    // A native Event.
    let looks_native = matches!(kind, Some("Event"))
        || doc.verb.is_some()
        || doc.object_ref.is_some()
        || doc.audit_id.is_some()
        || doc.request_uri.is_some()
        || doc.user.is_some()
        || doc.source_ips.is_some();
    if let Some(k) = kind
        && k != "Event"
    {
        return Err(ParseError::UnknownKind(k.to_string()));
    }
    if !looks_native {
        if doc.category.is_some() {
            return Err(ParseError::NotKubernetes(format!(
                "Azure record of category {:?}",
                doc.category.map(|c| c.0).unwrap_or_default()
            )));
        }
        return Err(ParseError::UnknownShape);
    }
    let event = native_event(doc, ctx)?;
    emit(event, ctx, stats, sink);
    Ok(())
}

fn list_item(
    item: &RawValue,
    ctx: &Ctx<'_>,
    stats: &mut ParseStats,
    sink: &mut Sink<'_>,
) -> Result<(), ParseError> {
    let bytes = item.get().as_bytes();
    if !bytes.starts_with(b"{") {
        return Err(ParseError::InvalidEvent(
            "EventList item is not an object".into(),
        ));
    }
    let doc: Doc<'_> =
        serde_json::from_str(item.get()).map_err(|e| ParseError::from_json(e, bytes))?;
    list_doc(doc, ctx, stats, sink)
}

/// An EventList whose items all deserialise: the fast path for webhook batches.
#[derive(Deserialize)]
struct FastList<'a> {
    #[serde(borrow, rename = "apiVersion")]
    api_version: Option<S<'a>>,
    #[serde(borrow)]
    kind: Option<S<'a>>,
    #[serde(borrow)]
    items: Vec<Doc<'a>>,
}

/// One EventList item, deserialised.
fn list_doc<'a>(
    doc: Doc<'a>,
    ctx: &Ctx<'a>,
    stats: &mut ParseStats,
    sink: &mut Sink<'_>,
) -> Result<(), ParseError> {
    if let Some(k) = &doc.kind
        && k.0 != "Event"
    {
        return Err(ParseError::UnknownKind(k.0.to_string()));
    }
    let event = native_event(doc, ctx)?;
    emit(event, ctx, stats, sink);
    Ok(())
}

/// One CloudWatch log event, read in the payload's own pass (a second parse of every record
/// rescanned each escaped event). Any value is accepted here so a record of the wrong shape is
/// counted on its own instead of failing the whole payload.
enum LogEvent<'a> {
    Record {
        message: Option<&'a RawValue>,
        timestamp: Option<&'a RawValue>,
    },
    NotAnObject,
}

impl<'de: 'a, 'a> Deserialize<'de> for LogEvent<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = LogEvent<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a log event")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut message, mut timestamp) = (None, None);
                while let Some(key) = map.next_key::<S<'a>>()? {
                    match key.0.as_ref() {
                        "message" => message = Some(map.next_value::<&'a RawValue>()?),
                        "timestamp" => timestamp = Some(map.next_value::<&'a RawValue>()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(LogEvent::Record { message, timestamp })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LogEvent::NotAnObject)
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(LogEvent::NotAnObject)
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(LogEvent::NotAnObject)
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(LogEvent::NotAnObject)
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(LogEvent::NotAnObject)
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LogEvent::NotAnObject)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(LogEvent::NotAnObject)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

fn log_record(
    record: LogEvent<'_>,
    ctx: &Ctx<'_>,
    stats: &mut ParseStats,
    sink: &mut Sink<'_>,
    depth: u8,
) -> Result<(), ParseError> {
    let LogEvent::Record { message, timestamp } = record else {
        return Err(ParseError::InvalidEvent(
            "log event is not an object".into(),
        ));
    };
    let message = present(message)
        .ok_or_else(|| ParseError::InvalidEvent("log event without message".into()))?;
    let message = embedded_json(message, "log event message")?;
    let inner = Ctx {
        export_nanos: timestamp.and_then(epoch_millis).or(ctx.export_nanos),
        ..ctx.clone()
    };
    document(message.as_bytes(), &inner, stats, sink, depth + 1)
}

/// The text of a JSON string holding a document (CloudWatch `message`, AKS `log_s`), unescaped
/// in one pass: audit events carry a hundred escaped quotes each, and serde_json's general
/// string path plus a copy out of its scratch buffer cost more than the event's own parse.
pub(crate) fn embedded_json<'r>(raw: &'r RawValue, what: &str) -> Result<Cow<'r, str>, ParseError> {
    let not_string = || ParseError::InvalidEvent(format!("{what} is not a string"));
    let inner = raw
        .get()
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .ok_or_else(not_string)?;
    let bytes = inner.as_bytes();
    let Some(first) = memchr::memchr(b'\\', bytes) else {
        return Ok(Cow::Borrowed(inner));
    };
    let bad = || ParseError::InvalidEvent(format!("{what}: invalid escape"));
    let mut out = String::with_capacity(inner.len());
    let mut i = 0;
    let mut next = Some(first);
    while let Some(p) = next {
        // `\\` is ASCII, so `i..i + p` ends on a character boundary.
        out.push_str(inner.get(i..i + p).ok_or_else(bad)?);
        let at = i + p;
        let esc = *bytes.get(at + 1).ok_or_else(bad)?;
        i = at + 2;
        match esc {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let hex4 = |from: usize| -> Option<u32> {
                    let h = inner.get(from..from + 4)?;
                    u32::from_str_radix(h, 16)
                        .ok()
                        .filter(|_| h.bytes().all(|b| b.is_ascii_hexdigit()))
                };
                let hi = hex4(i).ok_or_else(bad)?;
                i += 4;
                let c = if (0xD800..0xDC00).contains(&hi) {
                    if bytes.get(i..i + 2) != Some(b"\\u") {
                        return Err(bad());
                    }
                    let lo = hex4(i + 2).ok_or_else(bad)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(bad());
                    }
                    i += 6;
                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                } else {
                    char::from_u32(hi)
                };
                out.push(c.ok_or_else(bad)?);
            }
            _ => return Err(bad()),
        }
        next = memchr::memchr(b'\\', bytes.get(i..).ok_or_else(bad)?);
    }
    out.push_str(inner.get(i..).ok_or_else(bad)?);
    Ok(Cow::Owned(out))
}

fn epoch_millis(raw: &RawValue) -> Option<i64> {
    raw.get().parse::<i64>().ok()?.checked_mul(1_000_000)
}

/// The cluster name in an EKS log group `/aws/eks/<name>/cluster` (also inside Logs Insights'
/// `@log`, `account:/aws/eks/<name>/cluster`).
pub(crate) fn eks_cluster(group: &str) -> Option<&str> {
    let at = group.find("/aws/eks/")?;
    let rest = &group[at + "/aws/eks/".len()..];
    let name = rest.strip_suffix("/cluster").unwrap_or(rest);
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

#[derive(Deserialize)]
struct V1beta1Meta<'a> {
    #[serde(borrow, rename = "creationTimestamp")]
    creation_timestamp: Option<S<'a>>,
}

fn native_event<'a>(doc: Doc<'a>, ctx: &Ctx<'a>) -> Result<AuditEvent<'a>, ParseError> {
    check_version(doc.api_version.as_ref())?;
    check_depth(doc.request_object)?;
    check_depth(doc.response_object)?;
    check_depth(doc.user.as_ref().and_then(|u| u.extra))?;
    let format = ctx.native_label(doc.p_log_type.as_ref().map(|s| s.0.as_ref()));
    // v1beta1: `timestamp` and `metadata.creationTimestamp` predate requestReceivedTimestamp.
    let mut received = cow(doc.request_received_timestamp);
    if received.is_none()
        && let Some(ts) = present(doc.timestamp)
    {
        received = serde_json::from_str::<S<'a>>(ts.get()).ok().map(|s| s.0);
    }
    if received.is_none()
        && let Some(meta) = present(doc.metadata)
    {
        received = serde_json::from_str::<V1beta1Meta<'a>>(meta.get())
            .ok()
            .and_then(|m| cow(m.creation_timestamp));
    }
    Ok(AuditEvent {
        format,
        api_version: cow(doc.api_version),
        level: cow(doc.level),
        audit_id: cow(doc.audit_id),
        stage: cow(doc.stage),
        request_uri: cow(doc.request_uri),
        verb: cow(doc.verb).map(lower),
        user: user_info(doc.user),
        impersonated_user: doc.impersonated_user.map(|u| user_info(Some(u))),
        source_ips: doc.source_ips.map(|s| s.0).unwrap_or_default(),
        user_agent: cow(doc.user_agent),
        object_ref: object_ref(doc.object_ref),
        response_status: response_status(doc.response_status),
        request_object: LazyJson::new(present(doc.request_object).map(RawJson::Borrowed)),
        response_object: LazyJson::new(present(doc.response_object).map(RawJson::Borrowed)),
        annotations: Annotations::new(present(doc.annotations).map(RawJson::Borrowed)),
        request_received_timestamp: received,
        stage_timestamp: cow(doc.stage_timestamp),
        export_timestamp: cow(doc.p_event_time),
        ..AuditEvent::default()
    })
}

#[cfg(test)]
mod tests {
    use super::embedded_json;
    use serde_json::value::RawValue;

    #[test]
    fn embedded_json_unescapes_like_serde_json() {
        for text in [
            "",
            "plain",
            r#"{"kind":"Event","reason":"RBAC: allowed by \"x\""}"#,
            "tab\t newline\n slash/ back\\ quote\" \u{8}\u{c}\r",
            "unicode é ✓ 😀 \u{1F600} \u{7f}",
        ] {
            let encoded = serde_json::to_string(text).expect("encode");
            let raw: Box<RawValue> = RawValue::from_string(encoded).expect("raw");
            assert_eq!(embedded_json(&raw, "t").expect("decodes"), text);
        }
        // Escapes serde_json would write for control characters and surrogate pairs.
        let raw: Box<RawValue> =
            RawValue::from_string(r#""a\u0001b\ud83d\ude00c\u00e9""#.to_string()).expect("raw");
        assert_eq!(embedded_json(&raw, "t").expect("decodes"), "a\u{1}b😀cé");
        for bad in [
            r#""\ud83d""#,
            r#""\ud83dx""#,
            r#""\ude00""#,
            r#"5"#,
            r#"{}"#,
        ] {
            let raw: Box<RawValue> = RawValue::from_string(bad.to_string()).expect("raw json");
            assert!(embedded_json(&raw, "t").is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    fn pieces(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut splitter = Splitter::new(1 << 20);
        let mut on = |p: Piece<'_>| match p {
            Piece::Doc(d) => out.push(String::from_utf8_lossy(d).into_owned()),
            Piece::TooLarge(n) => out.push(format!("too large {n}")),
        };
        splitter.feed(text.as_bytes(), &mut on);
        splitter.finish(&mut on);
        out
    }

    #[test]
    fn document_boundaries_inside_a_line_are_found() {
        assert!(has_document_boundary(br#"{"a":1}{"b":2}"#));
        assert!(has_document_boundary(br#"{"a":1} 	 [1]"#));
        assert!(!has_document_boundary(br#"[{"a":1}, {"b":[2]}]"#));
        assert!(!has_document_boundary(br#"{"a":{"b":[]}}"#));
    }

    #[test]
    fn lines_take_the_fast_path_and_everything_else_the_bracket_scan() {
        // One document per line, CRLF and trailing blanks trimmed.
        assert_eq!(pieces("{\"a\":1}\r\n[2]  \n"), ["{\"a\":1}", "[2]"]);
        // Two documents on one line, and a string that merely looks like a boundary.
        assert_eq!(pieces("{\"a\":1}{\"b\":2}\n"), ["{\"a\":1}", "{\"b\":2}"]);
        assert_eq!(pieces("{\"s\":\"}{\"}\n"), ["{\"s\":\"}{\"}"]);
        // A truncated line is cut at its newline and the next line survives.
        assert_eq!(
            pieces("{\"a\":[1,\n{\"b\":2}\n"),
            ["{\"a\":[1,", "{\"b\":2}"]
        );
        // Pretty-printed documents span lines.
        assert_eq!(pieces("{\n  \"a\": 1\n}\n"), ["{\n  \"a\": 1\n}"]);
    }
}
