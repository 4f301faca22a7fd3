//! Test suites in the format of Gatekeeper's `gator verify`, so the suites users already keep next
//! to their ConstraintTemplates run here unchanged.
//!
//! A suite (`kind: Suite`, `apiVersion: test.gatekeeper.sh/v1alpha1`) lists tests; each test pairs
//! a template with a constraint and runs cases: one object to review (a plain object, or an
//! `AdmissionReview` whose `request` is reviewed as it stands, so `operation`, `userInfo` and
//! `oldObject` can be tested), optional inventory files for `data.inventory`, and assertions on
//! the violations. Paths are relative to the suite file. Semantics follow `gator verify`:
//!
//! - an assertion counts the violations whose message matches its `message` regular expression
//!   (unanchored; every violation when there is none) and compares the count with `violations`:
//!   `yes` (the default) at least one, `no` none, `N` exactly N;
//! - every assertion of a case must hold; a case needs an object and at least one assertion;
//! - `skip: true` on a suite, test or case skips it; `invalid: true` on a test expects the
//!   constraint to be rejected (for example by the template's parameter schema);
//! - the object file must hold exactly one object; inventory files may hold many;
//! - `--run` filters like gator's: `REGEX` selects tests or cases whose name matches,
//!   `TEST_REGEX//CASE_REGEX` selects cases matching both.
//!
//! Malformed suite files are [`SuiteError`]s naming the file and line; problems of one test or case
//! (a missing file, a template that does not compile) are that test's or case's error in the
//! [`SuiteReport`], and the other tests still run.

use crate::constraint::EnforcementPoint;
use crate::policy::{PolicyError, PolicySet, PolicySettings, Violation};
use crate::review::{GroupVersionKind, ReviewRequest};
use palisade_kube::{KubeObject, SourceLocation};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use serde_saphyr::Spanned;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// API group of test suites.
pub const SUITE_GROUP: &str = "test.gatekeeper.sh";
/// Kind of test suites.
pub const SUITE_KIND: &str = "Suite";
/// Largest file a suite, template, constraint or object may be.
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Why suites could not be found or read.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML or a field has the wrong shape.
    #[error("{path}:{line}: {message}")]
    Malformed {
        path: String,
        line: u64,
        message: String,
    },
    #[error(
        "{path}: not a test suite (want `apiVersion: test.gatekeeper.sh/v1alpha1` and `kind: Suite`)"
    )]
    NotASuite { path: String },
    #[error("{path}: suites are .yaml or .yml files")]
    UnsupportedExtension { path: String },
    #[error("{path}: `/...` (recursive) needs a directory")]
    NotADirectory { path: String },
    #[error("{path}: larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: String },
    #[error("invalid --run filter `{filter}`: {message}")]
    Filter { filter: String, message: String },
}

/// What an assertion expects of the number of matching violations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expectation {
    /// At least one.
    Yes,
    /// None.
    No,
    /// Exactly this many.
    Count(u64),
}

impl Expectation {
    /// Whether `matching` violations satisfy the expectation.
    pub fn holds(self, matching: usize) -> bool {
        match self {
            Expectation::Yes => matching > 0,
            Expectation::No => matching == 0,
            Expectation::Count(n) => matching as u64 == n,
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expectation::Yes => f.write_str("at least 1"),
            Expectation::No => f.write_str("none"),
            Expectation::Count(n) => write!(f, "exactly {n}"),
        }
    }
}

impl<'de> Deserialize<'de> for Expectation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExpectationVisitor;
        impl Visitor<'_> for ExpectationVisitor {
            type Value = Expectation;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`yes`, `no` or a non-negative number of violations")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Expectation, E> {
                // YAML 1.1 readers turn `yes`/`no` into booleans; accept what they meant.
                Ok(if v { Expectation::Yes } else { Expectation::No })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Expectation, E> {
                Ok(Expectation::Count(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Expectation, E> {
                u64::try_from(v)
                    .map(Expectation::Count)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Expectation, E> {
                match v {
                    "yes" => Ok(Expectation::Yes),
                    "no" => Ok(Expectation::No),
                    other => other
                        .parse::<u64>()
                        .map(Expectation::Count)
                        .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(ExpectationVisitor)
    }
}

/// One assertion about a case's violations.
#[derive(Debug, Clone)]
pub struct Assertion {
    pub violations: Expectation,
    /// The `message` pattern, as written.
    pub message: Option<String>,
    pattern: Option<regex::Regex>,
    /// 1-based line of the assertion in the suite file.
    pub line: u64,
}

impl Assertion {
    /// How many of `violations` this assertion counts.
    pub fn matching(&self, violations: &[Violation]) -> usize {
        match &self.pattern {
            Some(re) => violations
                .iter()
                .filter(|v| re.is_match(&v.message))
                .count(),
            None => violations.len(),
        }
    }
}

/// One case: an object reviewed against the test's constraint.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    /// Path of the object file, relative to the suite.
    pub object: Option<String>,
    /// Paths of inventory files, relative to the suite.
    pub inventory: Vec<String>,
    pub assertions: Vec<Assertion>,
    pub skip: bool,
    pub line: u64,
}

/// One test: a template and a constraint, and the cases run against them.
#[derive(Debug, Clone)]
pub struct Test {
    pub name: String,
    pub template: Option<String>,
    pub constraint: Option<String>,
    pub cases: Vec<Case>,
    /// The constraint is expected to be rejected.
    pub invalid: bool,
    pub skip: bool,
    /// Set when the test uses mutation expansion (`expansion`), which is not run here.
    pub expansion: bool,
    pub line: u64,
}

/// A parsed suite file.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The suite file as found (relative paths stay relative).
    pub path: PathBuf,
    pub name: Option<String>,
    pub skip: bool,
    pub tests: Vec<Test>,
}

// ---- parsing ---------------------------------------------------------------------------------

#[derive(Deserialize)]
struct RawHeader {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct RawSuite {
    #[serde(default)]
    metadata: Option<RawMetadata>,
    #[serde(default)]
    tests: Option<Vec<Spanned<RawTest>>>,
    #[serde(default)]
    skip: Option<bool>,
}

#[derive(Deserialize)]
struct RawMetadata {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawTest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    constraint: Option<String>,
    #[serde(default)]
    cases: Option<Vec<Spanned<RawCase>>>,
    #[serde(default)]
    invalid: Option<bool>,
    #[serde(default)]
    skip: Option<bool>,
    #[serde(default)]
    expansion: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct RawCase {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    inventory: Option<Vec<String>>,
    #[serde(default)]
    assertions: Option<Vec<Spanned<RawAssertion>>>,
    #[serde(default)]
    skip: Option<bool>,
}

#[derive(Deserialize)]
struct RawAssertion {
    #[serde(default)]
    violations: Option<Expectation>,
    #[serde(default)]
    message: Option<String>,
}

fn read_text(path: &Path) -> Result<String, SuiteError> {
    let display = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| SuiteError::Io {
        path: display.clone(),
        source,
    })?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(SuiteError::TooLarge { path: display });
    }
    let bytes = std::fs::read(path).map_err(|source| SuiteError::Io {
        path: display.clone(),
        source,
    })?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    String::from_utf8(bytes.to_vec()).map_err(|e| SuiteError::Malformed {
        path: display,
        line: line_of_offset(bytes, e.utf8_error().valid_up_to()),
        message: "not UTF-8 text".into(),
    })
}

fn line_of_offset(bytes: &[u8], offset: usize) -> u64 {
    1 + bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u64
}

/// The first line of a serde-saphyr error message (later lines draw a snippet), without the
/// location it repeats.
fn yaml_error(path: &Path, e: &serde_saphyr::Error) -> SuiteError {
    let line = e.location().map(|l| l.line()).unwrap_or(0);
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // `line N column M: message` or `message at line N column M`
    let first = match first.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((_, rest)) => rest,
        None => first,
    };
    let message = match first.find(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    SuiteError::Malformed {
        path: path.display().to_string(),
        line,
        message: message.trim().to_string(),
    }
}

/// The first YAML document of a file (suite files hold one; `gator` reads the first).
fn first_document(text: &str) -> &str {
    let mut offset = 0;
    let mut seen_content = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            if seen_content {
                return &text[..offset];
            }
        } else if !trimmed.is_empty() && !trimmed.starts_with('#') {
            seen_content = true;
        }
        offset += line.len();
    }
    text
}

/// Whether a parsed header names a suite.
fn is_suite_header(header: &RawHeader) -> bool {
    let group = header
        .api_version
        .as_deref()
        .and_then(|v| v.split_once('/'))
        .map(|(g, _)| g);
    group == Some(SUITE_GROUP) && header.kind.as_deref() == Some(SUITE_KIND)
}

/// Reads a suite file. Errors if the file is not a suite or is malformed.
pub fn read_suite(path: &Path) -> Result<Suite, SuiteError> {
    match parse_suite_file(path)? {
        Some(suite) => Ok(suite),
        None => Err(SuiteError::NotASuite {
            path: path.display().to_string(),
        }),
    }
}

/// Parses a file: `Ok(None)` when it is YAML but not a suite.
fn parse_suite_file(path: &Path) -> Result<Option<Suite>, SuiteError> {
    let text = read_text(path)?;
    parse_suite_text(&text, path)
}

/// Parses suite text (`path` names it in errors and anchors relative paths).
pub fn parse_suite(text: &str, path: &Path) -> Result<Suite, SuiteError> {
    parse_suite_text(text, path)?.ok_or_else(|| SuiteError::NotASuite {
        path: path.display().to_string(),
    })
}

fn parse_suite_text(text: &str, path: &Path) -> Result<Option<Suite>, SuiteError> {
    let doc = first_document(text);
    let header: Option<RawHeader> =
        serde_saphyr::from_str(doc).map_err(|e| yaml_error(path, &e))?;
    let Some(header) = header else {
        return Ok(None);
    };
    if !is_suite_header(&header) {
        return Ok(None);
    }
    let raw: RawSuite = serde_saphyr::from_str(doc).map_err(|e| yaml_error(path, &e))?;
    let display = path.display().to_string();
    let mut tests = Vec::new();
    for (ti, t) in raw.tests.unwrap_or_default().into_iter().enumerate() {
        let line = t.referenced.line();
        let t = t.value;
        let mut cases = Vec::new();
        for (ci, c) in t.cases.unwrap_or_default().into_iter().enumerate() {
            let case_line = c.referenced.line();
            let c = c.value;
            let mut assertions = Vec::new();
            for a in c.assertions.unwrap_or_default() {
                let a_line = a.referenced.line();
                let a = a.value;
                let pattern = match &a.message {
                    Some(m) => Some(regex::Regex::new(m).map_err(|e| SuiteError::Malformed {
                        path: display.clone(),
                        line: a_line,
                        message: format!(
                            "assertion message `{m}` is not a regular expression: {e}"
                        ),
                    })?),
                    None => None,
                };
                assertions.push(Assertion {
                    violations: a.violations.unwrap_or(Expectation::Yes),
                    message: a.message,
                    pattern,
                    line: a_line,
                });
            }
            cases.push(Case {
                name: c.name.unwrap_or_else(|| format!("case-{ci}")),
                object: c.object.filter(|s| !s.is_empty()),
                inventory: c.inventory.unwrap_or_default(),
                assertions,
                skip: c.skip.unwrap_or(false),
                line: case_line,
            });
        }
        tests.push(Test {
            name: t.name.unwrap_or_else(|| format!("test-{ti}")),
            template: t.template.filter(|s| !s.is_empty()),
            constraint: t.constraint.filter(|s| !s.is_empty()),
            cases,
            invalid: t.invalid.unwrap_or(false),
            skip: t.skip.unwrap_or(false),
            expansion: t.expansion.is_some(),
            line,
        });
    }
    Ok(Some(Suite {
        path: path.to_path_buf(),
        name: raw.metadata.and_then(|m| m.name),
        skip: raw.skip.unwrap_or(false),
        tests,
    }))
}

// ---- discovery -------------------------------------------------------------------------------

fn is_yaml_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Finds the suites a `gator verify` argument names: a suite file; a directory (the suites among
/// its YAML files); or `DIR/...` (the suites in DIR and every directory below it). YAML files that
/// are not suites are passed over; a directory's file that is not even YAML is passed over too
/// unless it claims to be a suite. Suites come back sorted by path.
pub fn discover(target: &str) -> Result<Vec<Suite>, SuiteError> {
    let (root, recursive) = match target.strip_suffix("...") {
        Some(rest) => {
            let rest = rest.trim_end_matches('/');
            (
                PathBuf::from(if rest.is_empty() { "." } else { rest }),
                true,
            )
        }
        None => (PathBuf::from(target), false),
    };
    let meta = std::fs::metadata(&root).map_err(|source| SuiteError::Io {
        path: root.display().to_string(),
        source,
    })?;
    if !meta.is_dir() {
        if recursive {
            return Err(SuiteError::NotADirectory {
                path: root.display().to_string(),
            });
        }
        if !is_yaml_name(&root) {
            return Err(SuiteError::UnsupportedExtension {
                path: root.display().to_string(),
            });
        }
        return Ok(vec![read_suite(&root)?]);
    }
    let mut files = Vec::new();
    collect_yaml(&root, recursive, &mut files, 0)?;
    files.sort();
    let mut suites = Vec::new();
    for file in files {
        match parse_suite_file(&file) {
            Ok(Some(s)) => suites.push(s),
            Ok(None) => {}
            Err(e @ SuiteError::Malformed { .. }) => {
                // Broken YAML that is not a suite (a template under edit) is not our business.
                let claims_suite = std::fs::read_to_string(&file)
                    .map(|t| t.contains(SUITE_GROUP))
                    .unwrap_or(false);
                if claims_suite {
                    return Err(e);
                }
                tracing::debug!("{}: skipped: {e}", file.display());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(suites)
}

/// Directories nested deeper than this are not walked.
const MAX_DEPTH: usize = 64;

fn collect_yaml(
    dir: &Path,
    recursive: bool,
    out: &mut Vec<PathBuf>,
    depth: usize,
) -> Result<(), SuiteError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SuiteError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        // Symlinks to directories are not followed: a loop would never end.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if recursive && depth < MAX_DEPTH {
                collect_yaml(&path, recursive, out, depth + 1)?;
            }
        } else if is_yaml_name(&path) {
            out.push(path);
        }
    }
    Ok(())
}

// ---- filter ----------------------------------------------------------------------------------

/// Which tests and cases to run (`--run`), as `gator verify --run`.
#[derive(Debug, Clone, Default)]
pub enum Filter {
    /// Everything.
    #[default]
    All,
    /// Tests whose name matches, and the cases of any test whose name or case name matches.
    Either(regex::Regex),
    /// Cases matching the case pattern in tests matching the test pattern.
    Both {
        test: regex::Regex,
        case: regex::Regex,
    },
}

impl Filter {
    /// Parses `REGEX` or `TEST_REGEX//CASE_REGEX`; empty selects everything.
    pub fn parse(filter: &str) -> Result<Filter, SuiteError> {
        let compile = |p: &str| {
            regex::Regex::new(p).map_err(|e| SuiteError::Filter {
                filter: filter.to_string(),
                message: e.to_string(),
            })
        };
        if filter.is_empty() {
            return Ok(Filter::All);
        }
        let parts: Vec<&str> = filter.split("//").collect();
        match parts.as_slice() {
            [one] => Ok(Filter::Either(compile(one)?)),
            [test, case] => Ok(Filter::Both {
                test: compile(test)?,
                case: compile(case)?,
            }),
            _ => Err(SuiteError::Filter {
                filter: filter.to_string(),
                message: "at most one `//` may separate the test and case patterns".into(),
            }),
        }
    }

    pub fn matches_test(&self, test: &Test) -> bool {
        match self {
            Filter::All => true,
            Filter::Either(re) => {
                re.is_match(&test.name) || test.cases.iter().any(|c| re.is_match(&c.name))
            }
            Filter::Both { test: t, .. } => t.is_match(&test.name),
        }
    }

    pub fn matches_case(&self, test: &str, case: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Either(re) => re.is_match(case) || re.is_match(test),
            Filter::Both { test: t, case: c } => c.is_match(case) && t.is_match(test),
        }
    }
}

// ---- report ----------------------------------------------------------------------------------

/// How a suite, test or case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
    /// The test or case could not be run (missing file, template that does not compile, …).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
            Outcome::Error => "error",
        }
    }
}

/// An assertion that did not hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssertionFailure {
    /// 0-based index of the assertion in its case.
    pub index: usize,
    pub line: u64,
    pub expected: Expectation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How many violations the assertion counted.
    pub got: usize,
}

impl fmt::Display for AssertionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => write!(
                f,
                "assertion {} (line {}): got {} violation(s) matching `{m}`, want {}",
                self.index + 1,
                self.line,
                self.got,
                self.expected
            ),
            None => write!(
                f,
                "assertion {} (line {}): got {} violation(s), want {}",
                self.index + 1,
                self.line,
                self.got,
                self.expected
            ),
        }
    }
}

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    pub name: String,
    pub line: u64,
    pub outcome: Outcome,
    /// Why the case was skipped or could not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<AssertionFailure>,
    /// The messages of every violation the review produced.
    pub violations: Vec<String>,
    #[serde(with = "millis")]
    pub duration: Duration,
}

/// The result of one test.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub name: String,
    pub line: u64,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub cases: Vec<CaseReport>,
    #[serde(with = "millis")]
    pub duration: Duration,
}

/// The result of one suite.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub outcome: Outcome,
    pub tests: Vec<TestReport>,
    #[serde(with = "millis")]
    pub duration: Duration,
}

/// Counts of cases by outcome (a test that errs before its cases run counts as one error).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
    pub error: usize,
}

impl Tally {
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Pass => self.pass += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Skip => self.skip += 1,
            Outcome::Error => self.error += 1,
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.pass += other.pass;
        self.fail += other.fail;
        self.skip += other.skip;
        self.error += other.error;
    }

    /// Whether nothing failed or erred.
    pub fn ok(&self) -> bool {
        self.fail == 0 && self.error == 0
    }
}

impl SuiteReport {
    /// Case outcomes of the whole suite.
    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        if self.outcome == Outcome::Skip && self.tests.is_empty() {
            t.add(Outcome::Skip);
        }
        for test in &self.tests {
            if test.cases.is_empty() {
                t.add(test.outcome);
            }
            for c in &test.cases {
                t.add(c.outcome);
            }
        }
        t
    }
}

mod millis {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0)
    }
}

fn overall<'a>(outcomes: impl Iterator<Item = &'a Outcome>) -> Outcome {
    let mut any_pass = false;
    let mut any = false;
    let mut worst = Outcome::Skip;
    for o in outcomes {
        any = true;
        match o {
            Outcome::Error => return Outcome::Error,
            Outcome::Fail => worst = Outcome::Fail,
            Outcome::Pass => any_pass = true,
            Outcome::Skip => {}
        }
    }
    if worst == Outcome::Fail {
        Outcome::Fail
    } else if any_pass || !any {
        if any { Outcome::Pass } else { Outcome::Skip }
    } else {
        Outcome::Skip
    }
}

// ---- running ---------------------------------------------------------------------------------

/// How suites are run.
#[derive(Clone, Default)]
pub struct RunOptions {
    pub filter: Filter,
    /// Settings of every policy set built for a test (external data providers, timeout).
    pub settings: PolicySettings,
}

/// Runs every selected test and case of a suite.
pub fn run_suite(suite: &Suite, options: &RunOptions) -> SuiteReport {
    let start = Instant::now();
    let path = suite.path.display().to_string();
    if suite.skip {
        return SuiteReport {
            path,
            name: suite.name.clone(),
            outcome: Outcome::Skip,
            tests: Vec::new(),
            duration: start.elapsed(),
        };
    }
    let dir = suite.path.parent().unwrap_or(Path::new("")).to_path_buf();
    let tests: Vec<TestReport> = suite
        .tests
        .iter()
        .map(|t| run_test(suite, &dir, t, options))
        .collect();
    SuiteReport {
        path,
        name: suite.name.clone(),
        outcome: overall(tests.iter().map(|t| &t.outcome)),
        tests,
        duration: start.elapsed(),
    }
}

fn test_report(
    test: &Test,
    outcome: Outcome,
    reason: Option<String>,
    start: Instant,
) -> TestReport {
    TestReport {
        name: test.name.clone(),
        line: test.line,
        outcome,
        reason,
        cases: Vec::new(),
        duration: start.elapsed(),
    }
}

fn run_test(suite: &Suite, dir: &Path, test: &Test, options: &RunOptions) -> TestReport {
    let start = Instant::now();
    let at = |what: &str| format!("{}:{}: {what}", suite.path.display(), test.line);
    if test.skip {
        return test_report(test, Outcome::Skip, Some("skip: true".into()), start);
    }
    if !options.filter.matches_test(test) {
        return test_report(
            test,
            Outcome::Skip,
            Some("not selected by --run".into()),
            start,
        );
    }
    if test.expansion {
        return test_report(
            test,
            Outcome::Skip,
            Some("expansion tests (ExpansionTemplate) are not supported".into()),
            start,
        );
    }
    let Some(template_path) = &test.template else {
        return test_report(test, Outcome::Error, Some(at("missing `template`")), start);
    };
    let Some(constraint_path) = &test.constraint else {
        return test_report(
            test,
            Outcome::Error,
            Some(at("missing `constraint`")),
            start,
        );
    };
    let template = match read_single_object(&dir.join(template_path), "template") {
        Ok(t) => t,
        Err(e) => return test_report(test, Outcome::Error, Some(e), start),
    };
    if is_expansion_template(&template) {
        return test_report(
            test,
            Outcome::Skip,
            Some("expansion tests (ExpansionTemplate) are not supported".into()),
            start,
        );
    }
    let constraint = match read_single_object(&dir.join(constraint_path), "constraint") {
        Ok(c) => c,
        Err(e) => return test_report(test, Outcome::Error, Some(e), start),
    };
    let policy = [template, constraint];
    let compiled = PolicySet::compile(&policy, &[], &options.settings);
    if test.invalid {
        let (outcome, reason) = match compiled {
            Err(errors) if errors.iter().all(is_constraint_error) => (
                Outcome::Pass,
                Some(format!(
                    "constraint rejected as expected: {}",
                    join_errors(&errors)
                )),
            ),
            Err(errors) => (
                Outcome::Error,
                Some(format!(
                    "want the constraint rejected, but: {}",
                    join_errors(&errors)
                )),
            ),
            Ok(_) => (
                Outcome::Fail,
                Some("want the constraint rejected (`invalid: true`), but it was accepted".into()),
            ),
        };
        return test_report(test, outcome, reason, start);
    }
    let base = match compiled {
        Ok((set, _warnings)) => set,
        Err(errors) => {
            return test_report(test, Outcome::Error, Some(join_errors(&errors)), start);
        }
    };
    let cases: Vec<CaseReport> = test
        .cases
        .iter()
        .map(|c| run_case(suite, dir, test, c, &policy, &base, options))
        .collect();
    TestReport {
        name: test.name.clone(),
        line: test.line,
        outcome: overall(cases.iter().map(|c| &c.outcome)),
        reason: None,
        cases,
        duration: start.elapsed(),
    }
}

fn is_constraint_error(e: &PolicyError) -> bool {
    matches!(e, PolicyError::Constraint { .. })
}

fn join_errors(errors: &[PolicyError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn is_expansion_template(object: &KubeObject) -> bool {
    object.kind == "ExpansionTemplate" || object.api_version.starts_with("expansion.gatekeeper.sh/")
}

fn run_case(
    suite: &Suite,
    dir: &Path,
    test: &Test,
    case: &Case,
    policy: &[KubeObject],
    base: &PolicySet,
    options: &RunOptions,
) -> CaseReport {
    let start = Instant::now();
    let report = |outcome: Outcome, reason: Option<String>, violations: Vec<String>| CaseReport {
        name: case.name.clone(),
        line: case.line,
        outcome,
        reason,
        failures: Vec::new(),
        violations,
        duration: start.elapsed(),
    };
    let at = |what: &str| format!("{}:{}: {what}", suite.path.display(), case.line);
    if case.skip {
        return report(Outcome::Skip, Some("skip: true".into()), Vec::new());
    }
    if !options.filter.matches_case(&test.name, &case.name) {
        return report(
            Outcome::Skip,
            Some("not selected by --run".into()),
            Vec::new(),
        );
    }
    let Some(object_path) = &case.object else {
        return report(Outcome::Error, Some(at("missing `object`")), Vec::new());
    };
    if case.assertions.is_empty() {
        return report(
            Outcome::Error,
            Some(at("a case needs at least one assertion")),
            Vec::new(),
        );
    }
    let object_file = dir.join(object_path);
    let mut documents = match read_documents(&object_file) {
        Ok(d) => d,
        Err(e) => return report(Outcome::Error, Some(e), Vec::new()),
    };
    if documents.len() != 1 {
        return report(
            Outcome::Error,
            Some(format!(
                "{}: defines {} objects; a case reviews exactly one",
                object_file.display(),
                documents.len()
            )),
            Vec::new(),
        );
    }
    let object = documents.remove(0);
    let request = match review_request(object) {
        Ok(r) => r,
        Err(e) => {
            return report(
                Outcome::Error,
                Some(format!("{}: {e}", object_file.display())),
                Vec::new(),
            );
        }
    };
    let mut inventory = Vec::new();
    for p in &case.inventory {
        match read_objects(&dir.join(p)) {
            Ok(mut objects) => inventory.append(&mut objects),
            Err(e) => return report(Outcome::Error, Some(e), Vec::new()),
        }
    }
    let set = if inventory.is_empty() {
        base.clone()
    } else {
        match PolicySet::compile(policy, &inventory, &options.settings) {
            Ok((set, _)) => set,
            Err(errors) => return report(Outcome::Error, Some(join_errors(&errors)), Vec::new()),
        }
    };
    let mut evaluator = set.evaluator();
    let outcome = evaluator.review_all(&request, EnforcementPoint::Gator);
    let messages: Vec<String> = outcome
        .violations
        .iter()
        .map(|v| v.message.clone())
        .collect();
    if !outcome.errors.is_empty() {
        let reason = outcome
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return report(Outcome::Error, Some(reason), messages);
    }
    let failures: Vec<AssertionFailure> = case
        .assertions
        .iter()
        .enumerate()
        .filter_map(|(index, a)| {
            let got = a.matching(&outcome.violations);
            (!a.violations.holds(got)).then(|| AssertionFailure {
                index,
                line: a.line,
                expected: a.violations,
                message: a.message.clone(),
                got,
            })
        })
        .collect();
    CaseReport {
        name: case.name.clone(),
        line: case.line,
        outcome: if failures.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        reason: None,
        failures,
        violations: messages,
        duration: start.elapsed(),
    }
}

/// The non-empty YAML documents of a file, as JSON values.
fn read_documents(path: &Path) -> Result<Vec<Value>, String> {
    let text = read_text(path).map_err(|e| e.to_string())?;
    let docs: Vec<Option<Value>> =
        serde_saphyr::from_multiple(&text).map_err(|e| yaml_error(path, &e).to_string())?;
    let docs: Vec<Value> = docs
        .into_iter()
        .flatten()
        .filter(|d| !d.is_null())
        .collect();
    if docs.is_empty() {
        return Err(format!("{}: defines no objects", path.display()));
    }
    Ok(docs)
}

/// The objects of a file (templates, constraints, inventory).
fn read_objects(path: &Path) -> Result<Vec<KubeObject>, String> {
    let docs = read_documents(path)?;
    let text = read_text(path).map_err(|e| e.to_string())?;
    let starts = document_lines(&text);
    docs.into_iter()
        .enumerate()
        .map(|(i, d)| {
            let line = starts.get(i).copied().unwrap_or(1);
            let source = SourceLocation::new(path.display().to_string(), line, i as u32);
            KubeObject::from_value(d, Some(source))
                .map_err(|e| format!("{}:{line}: {e}", path.display()))
        })
        .collect()
}

/// 1-based first content line of each document of a YAML stream.
fn document_lines(text: &str) -> Vec<u32> {
    let mut starts = Vec::new();
    let mut pending = true;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            pending = true;
            continue;
        }
        if pending && !trimmed.is_empty() && !trimmed.starts_with('#') {
            starts.push(i as u32 + 1);
            pending = false;
        }
    }
    starts
}

fn read_single_object(path: &Path, what: &str) -> Result<KubeObject, String> {
    let mut objects = read_objects(path)?;
    if objects.len() != 1 {
        return Err(format!(
            "{}: the {what} file defines {} objects; want exactly one",
            path.display(),
            objects.len()
        ));
    }
    Ok(objects.remove(0))
}

/// Fields of an `admission.k8s.io` AdmissionRequest (gator rejects unknown ones).
const REQUEST_FIELDS: &[&str] = &[
    "uid",
    "kind",
    "resource",
    "subResource",
    "requestKind",
    "requestResource",
    "requestSubResource",
    "name",
    "namespace",
    "operation",
    "userInfo",
    "object",
    "oldObject",
    "dryRun",
    "options",
];

/// The review of a case object: an AdmissionReview's request as written, else the review of a
/// stored object (as Gatekeeper's audit and `gator` build it).
pub fn review_request(object: Value) -> Result<ReviewRequest, String> {
    let is_review = object.get("kind").and_then(Value::as_str) == Some("AdmissionReview")
        && object
            .get("apiVersion")
            .and_then(Value::as_str)
            .and_then(|v| v.split_once('/'))
            .is_some_and(|(g, _)| g == "admission.k8s.io");
    if !is_review {
        return ReviewRequest::from_object(object).map_err(|e| e.to_string());
    }
    let Value::Object(mut review) = object else {
        return Err("AdmissionReview is not a mapping".into());
    };
    for key in review.keys() {
        if !matches!(key.as_str(), "apiVersion" | "kind" | "request" | "response") {
            return Err(format!("AdmissionReview has unknown field `{key}`"));
        }
    }
    let request = match review.remove("request") {
        Some(Value::Object(r)) => r,
        None | Some(Value::Null) => {
            return Err("AdmissionReview has no `request` to review".into());
        }
        Some(_) => return Err("AdmissionReview `request` is not a mapping".into()),
    };
    admission_request(request)
}

fn present(map: &Map<String, Value>, key: &str) -> Option<Value> {
    map.get(key).filter(|v| !v.is_null()).cloned()
}

fn admission_request(mut request: Map<String, Value>) -> Result<ReviewRequest, String> {
    for key in request.keys() {
        if !REQUEST_FIELDS.contains(&key.as_str()) {
            return Err(format!("AdmissionReview request has unknown field `{key}`"));
        }
    }
    let object = present(&request, "object");
    let old_object = present(&request, "oldObject");
    let Some(reviewed) = object.clone().or(old_object.clone()) else {
        return Err(
            "AdmissionReview request has neither `object` nor `oldObject` to review".into(),
        );
    };
    // Gatekeeper reviews a DELETE's oldObject as the object.
    if object.is_none()
        && request.get("operation").and_then(Value::as_str) == Some("DELETE")
        && let Some(old) = old_object
    {
        request.insert("object".into(), old);
    }
    // A hand-written request often leaves out `kind`: match on the object's own kind then, while
    // templates still see the request as written (the zero kind, as Go serialises it).
    let written_kind = present(&request, "kind");
    if written_kind.is_none() {
        let api_version = reviewed
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = reviewed
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind.is_empty() {
            return Err(
                "AdmissionReview request has no `kind` and its object names no kind".into(),
            );
        }
        let gvk = GroupVersionKind::from_api_version(api_version, kind);
        request.insert(
            "kind".into(),
            json!({"group": gvk.group, "version": gvk.version, "kind": gvk.kind}),
        );
    }
    let mut review =
        ReviewRequest::from_admission_request(Value::Object(request)).map_err(|e| e.to_string())?;
    if written_kind.is_none()
        && let Value::Object(map) = &mut review.json
    {
        map.insert(
            "kind".into(),
            json!({"group": "", "version": "", "kind": ""}),
        );
    }
    Ok(review)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Suite, SuiteError> {
        parse_suite(text, Path::new("dir/suite.yaml"))
    }

    const SUITE: &str = "\
kind: Suite
apiVersion: test.gatekeeper.sh/v1alpha1
metadata:
  name: labels
tests:
- name: required-labels
  template: template.yaml
  constraint: constraint.yaml
  cases:
  - name: has-owner
    object: allowed.yaml
    assertions:
    - violations: no
  - name: missing-owner
    object: disallowed.yaml
    inventory: [ns.yaml]
    assertions:
    - violations: 1
      message: owner
    - violations: yes
    - message: team
  - name: later
    skip: true
    object: x.yaml
    assertions:
    - violations: 0
- name: bad-parameters
  template: template.yaml
  constraint: bad.yaml
  invalid: true
";

    #[test]
    fn parses_tests_cases_and_assertions_with_lines() {
        let s = parse(SUITE).unwrap();
        assert_eq!(s.name.as_deref(), Some("labels"));
        assert_eq!(s.tests.len(), 2);
        let t = &s.tests[0];
        assert_eq!(t.name, "required-labels");
        assert_eq!(t.line, 6);
        assert_eq!(t.template.as_deref(), Some("template.yaml"));
        assert_eq!(t.cases.len(), 3);
        assert_eq!(t.cases[0].line, 10);
        assert_eq!(t.cases[0].assertions[0].violations, Expectation::No);
        let c = &t.cases[1];
        assert_eq!(c.inventory, vec!["ns.yaml".to_string()]);
        assert_eq!(c.assertions[0].violations, Expectation::Count(1));
        assert_eq!(c.assertions[0].message.as_deref(), Some("owner"));
        assert_eq!(c.assertions[1].violations, Expectation::Yes);
        // `violations` defaults to yes
        assert_eq!(c.assertions[2].violations, Expectation::Yes);
        assert_eq!(c.assertions[2].line, 21);
        assert!(t.cases[2].skip);
        assert_eq!(t.cases[2].assertions[0].violations, Expectation::Count(0));
        assert!(s.tests[1].invalid);
        assert!(s.tests[1].cases.is_empty());
    }

    #[test]
    fn bad_violations_value_names_file_and_line() {
        let text = SUITE.replace("violations: 1", "violations: maybe");
        let err = parse(&text).unwrap_err();
        let SuiteError::Malformed {
            path,
            line,
            message,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(path, "dir/suite.yaml");
        assert_eq!(*line, 18, "{message}");
        assert!(message.starts_with("invalid value"), "{message}");
        assert!(
            message.contains("maybe") || message.contains("yes"),
            "{message}"
        );
        let negative = SUITE.replace("violations: 1", "violations: -2");
        assert!(matches!(
            parse(&negative),
            Err(SuiteError::Malformed { line: 18, .. })
        ));
    }

    #[test]
    fn bad_message_regex_names_the_assertion_line() {
        let text = SUITE.replace("message: owner", "message: \"own(er\"");
        match parse(&text) {
            Err(SuiteError::Malformed { line, message, .. }) => {
                assert_eq!(line, 18);
                assert!(message.contains("own(er"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn broken_yaml_is_malformed_with_line() {
        let text =
            "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\ntests:\n- name: [unclosed\n";
        match parse(text) {
            Err(SuiteError::Malformed { line, .. }) => assert!(line >= 4, "line {line}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_shape_is_malformed() {
        let text =
            "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\ntests:\n  name: not-a-list\n";
        assert!(matches!(parse(text), Err(SuiteError::Malformed { .. })));
    }

    #[test]
    fn other_kinds_are_not_suites() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n";
        assert!(matches!(parse(text), Err(SuiteError::NotASuite { .. })));
        let wrong_group = "apiVersion: example.com/v1\nkind: Suite\n";
        assert!(matches!(
            parse(wrong_group),
            Err(SuiteError::NotASuite { .. })
        ));
    }

    #[test]
    fn yes_no_and_booleans() {
        for (text, want) in [
            ("yes", Expectation::Yes),
            ("\"no\"", Expectation::No),
            ("true", Expectation::Yes),
            ("false", Expectation::No),
            ("3", Expectation::Count(3)),
            ("\"2\"", Expectation::Count(2)),
        ] {
            let a: RawAssertion = serde_saphyr::from_str(&format!("violations: {text}\n")).unwrap();
            assert_eq!(a.violations, Some(want), "{text}");
        }
        assert!(Expectation::Yes.holds(2) && !Expectation::Yes.holds(0));
        assert!(Expectation::No.holds(0) && !Expectation::No.holds(1));
        assert!(Expectation::Count(2).holds(2) && !Expectation::Count(2).holds(1));
    }

    #[test]
    fn filter_semantics_follow_gator() {
        let t = |name: &str, cases: &[&str]| Test {
            name: name.into(),
            template: None,
            constraint: None,
            cases: cases
                .iter()
                .map(|c| Case {
                    name: (*c).into(),
                    object: None,
                    inventory: vec![],
                    assertions: vec![],
                    skip: false,
                    line: 1,
                })
                .collect(),
            invalid: false,
            skip: false,
            expansion: false,
            line: 1,
        };
        let f = Filter::parse("missing-label").unwrap();
        assert!(f.matches_test(&t("required-labels", &["missing-label"])));
        assert!(f.matches_test(&t("forbid-missing-label", &["x"])));
        assert!(!f.matches_test(&t("other", &["x"])));
        assert!(f.matches_case("required-labels", "missing-label"));
        assert!(f.matches_case("forbid-missing-label", "with-foo"));
        assert!(!f.matches_case("required-labels", "with-foo"));

        let f = Filter::parse("^require-foo$//empty").unwrap();
        assert!(f.matches_test(&t("require-foo", &[])));
        assert!(!f.matches_test(&t("require-foo-bar", &["empty"])));
        assert!(f.matches_case("require-foo", "an-empty-object"));
        assert!(!f.matches_case("require-foo", "full"));

        let f = Filter::parse("//empty").unwrap();
        assert!(f.matches_test(&t("anything", &[])));
        assert!(f.matches_case("anything", "empty-object"));

        assert!(matches!(
            Filter::parse("a//b//c"),
            Err(SuiteError::Filter { .. })
        ));
        assert!(matches!(
            Filter::parse("(("),
            Err(SuiteError::Filter { .. })
        ));
        assert!(matches!(Filter::parse(""), Ok(Filter::All)));
    }

    #[test]
    fn first_document_only() {
        let text = "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\n---\nkind: Other\n";
        assert!(parse(text).is_ok());
        assert_eq!(document_lines("# c\n---\na: 1\n---\n\nb: 2\n"), vec![3, 6]);
    }

    #[test]
    fn admission_review_uses_its_request() {
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "operation": "UPDATE",
                "userInfo": {"username": "alice"},
                "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}},
                "oldObject": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}},
            }
        });
        let r = review_request(review).unwrap();
        assert_eq!(r.kind.kind, "Pod");
        assert_eq!(r.json["operation"], "UPDATE");
        assert_eq!(r.json["userInfo"]["username"], "alice");
        // as written: no kind in the request
        assert_eq!(r.json["kind"]["kind"], "");

        let delete = json!({
            "apiVersion": "admission.k8s.io/v1beta1",
            "kind": "AdmissionReview",
            "request": {
                "operation": "DELETE",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "oldObject": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gone"}},
            }
        });
        let r = review_request(delete).unwrap();
        assert_eq!(r.json["object"]["metadata"]["name"], "gone");
        assert_eq!(r.json["kind"]["kind"], "Pod");
    }

    #[test]
    fn admission_review_errors() {
        let no_request = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"});
        assert!(
            review_request(no_request)
                .unwrap_err()
                .contains("no `request`")
        );
        let nothing = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"operation": "CREATE"}});
        assert!(review_request(nothing).unwrap_err().contains("neither"));
        let unknown = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"operation": "CREATE", "objekt": {}}});
        assert!(review_request(unknown).unwrap_err().contains("objekt"));
        // an object of another group named AdmissionReview is an ordinary object
        let other = json!({"apiVersion": "example.com/v1", "kind": "AdmissionReview",
            "metadata": {"name": "x"}});
        assert_eq!(review_request(other).unwrap().kind.kind, "AdmissionReview");
    }

    #[test]
    fn discovery_like_gator_verify() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let suite = "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\ntests: []\n";
        std::fs::write(root.join("suite.yaml"), suite).unwrap();
        std::fs::write(
            root.join("template.yaml"),
            "kind: ConstraintTemplate\napiVersion: templates.gatekeeper.sh/v1\n",
        )
        .unwrap();
        // broken YAML that is not a suite is passed over
        std::fs::write(root.join("broken.yaml"), "a: [\n").unwrap();
        std::fs::write(root.join("notes.txt"), "x").unwrap();
        std::fs::create_dir_all(root.join("nested/deeper")).unwrap();
        std::fs::write(root.join("nested/deeper/other.yml"), suite).unwrap();
        let r = root.display().to_string();

        let flat = discover(&r).unwrap();
        assert_eq!(flat.len(), 1);
        assert!(flat[0].path.ends_with("suite.yaml"));
        let all = discover(&format!("{r}/...")).unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[0].path.ends_with("nested/deeper/other.yml"));
        assert_eq!(discover(&format!("{r}/suite.yaml")).unwrap().len(), 1);
        assert!(matches!(
            discover(&format!("{r}/notes.txt")),
            Err(SuiteError::UnsupportedExtension { .. })
        ));
        assert!(matches!(
            discover(&format!("{r}/suite.yaml/...")),
            Err(SuiteError::NotADirectory { .. })
        ));
        assert!(matches!(
            discover(&format!("{r}/template.yaml")),
            Err(SuiteError::NotASuite { .. })
        ));
        assert!(matches!(
            discover(&format!("{r}/missing")),
            Err(SuiteError::Io { .. })
        ));
        // a broken file that claims to be a suite is an error
        std::fs::write(
            root.join("bad-suite.yaml"),
            "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\ntests: [\n",
        )
        .unwrap();
        assert!(matches!(discover(&r), Err(SuiteError::Malformed { .. })));
    }

    #[test]
    fn overall_outcomes() {
        use Outcome::*;
        assert_eq!(overall([Pass, Skip].iter()), Pass);
        assert_eq!(overall([Pass, Fail, Skip].iter()), Fail);
        assert_eq!(overall([Fail, Error].iter()), Error);
        assert_eq!(overall([Skip, Skip].iter()), Skip);
        assert_eq!(overall([].iter()), Skip);
    }
}
