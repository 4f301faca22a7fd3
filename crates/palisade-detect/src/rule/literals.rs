//! Required literals of a regex: a set of strings one of which occurs in every string the regex
//! matches, so the literal prefilter can skip a regex-only rule on events where none occurs.
//!
//! Derived from the regex's syntax tree (`regex-syntax`, the parser the `regex` crate uses), only
//! where each match must contain one:
//! - a literal requires itself;
//! - a concatenation requires what any one of its parts requires, or one of the prefixes that
//!   every match of a suffix of it starts with (the `regex-syntax` prefix extractor, which also
//!   expands small classes such as `(?i)` letters into their variants): a match of the
//!   concatenation contains a match of each part and of each suffix;
//! - an alternation requires the union of what its branches require, nothing when one branch
//!   requires nothing;
//! - a repetition of at least one requires what its body requires; an optional one nothing;
//! - a capture group requires what its body requires; a class its characters when few;
//!   an empty pattern or a look-around nothing.
//!
//! Literals are kept as found (the prefilter's scan ignores ASCII case, so it finds at least
//! them); one cut short inside a UTF-8 sequence is trimmed to its valid prefix, still contained
//! in every match it stood for.

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Hir, HirKind};

/// Most literals kept for one regex: beyond that the set hardly narrows anything.
const MAX_LITERALS: usize = 64;

/// The literals one of which every match of `pattern` (compiled as the `regex` crate compiles it,
/// case-insensitive when `icase`) contains; `None` when no such set is derivable.
pub(crate) fn required_literals(pattern: &str, icase: bool) -> Option<Vec<String>> {
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(icase)
        .build()
        .parse(pattern)
        .ok()?;
    need(&hir).map(|set| set.into_iter().map(|l| l.into_string()).collect())
}

/// A candidate requirement: distinct non-empty literals, ASCII-lowercased.
type Set = Vec<Lit>;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Lit(String);

impl Lit {
    fn into_string(self) -> String {
        self.0
    }
}

/// Normalises raw literals into a set: the valid UTF-8 prefix of each, ASCII-lowercased (the scan
/// ignores ASCII case), sorted, deduplicated. `None` if one is empty (nothing is required) or
/// there are too many.
fn normalise(raw: impl IntoIterator<Item = Vec<u8>>) -> Option<Set> {
    let mut out = Vec::new();
    for bytes in raw {
        let valid = match std::str::from_utf8(&bytes) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()?,
        };
        if valid.is_empty() {
            return None;
        }
        out.push(Lit(valid.to_ascii_lowercase()));
    }
    minimise(out)
}

/// Sorts and deduplicates a set and drops every literal that contains another one (a string
/// containing it contains the shorter one too). `None` when empty or too large.
fn minimise(mut set: Set) -> Option<Set> {
    set.sort_unstable();
    set.dedup();
    if set.is_empty() || set.len() > MAX_LITERALS {
        return None;
    }
    let keep: Vec<bool> = set
        .iter()
        .map(|l| !set.iter().any(|o| o != l && l.0.contains(&o.0)))
        .collect();
    let mut keep = keep.into_iter();
    set.retain(|_| keep.next().unwrap_or(true));
    Some(set)
}

/// How selective a set is: its shortest literal (longer is rarer), then fewer literals.
fn score(set: &Set) -> (usize, std::cmp::Reverse<usize>) {
    (
        set.iter().map(|l| l.0.len()).min().unwrap_or(0),
        std::cmp::Reverse(set.len()),
    )
}

fn better(a: Option<Set>, b: Option<Set>) -> Option<Set> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if score(&b) > score(&a) { b } else { a }),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The literals every match of `hir` starts with (finite sets only).
fn prefixes(hir: &Hir) -> Option<Set> {
    let mut extractor = Extractor::new();
    extractor.kind(ExtractKind::Prefix);
    let seq = extractor.extract(hir);
    let literals = seq.literals()?;
    normalise(literals.iter().map(|l| l.as_bytes().to_vec()))
}

fn need(hir: &Hir) -> Option<Set> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => None,
        HirKind::Literal(lit) => normalise([lit.0.to_vec()]),
        HirKind::Class(_) => prefixes(hir),
        HirKind::Capture(cap) => need(&cap.sub),
        HirKind::Repetition(rep) => {
            if rep.min == 0 {
                None
            } else {
                need(&rep.sub)
            }
        }
        HirKind::Alternation(branches) => {
            let mut union = Vec::new();
            for branch in branches {
                union.extend(need(branch)?);
            }
            better(minimise(union), prefixes(hir))
        }
        HirKind::Concat(parts) => {
            let mut best = None;
            for part in parts {
                best = better(best, need(part));
            }
            for start in 0..parts.len() {
                let rest = Hir::concat(parts[start..].to_vec());
                best = better(best, prefixes(&rest));
            }
            best
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex::RegexBuilder;

    fn lits(pattern: &str) -> Option<Vec<String>> {
        required_literals(pattern, false)
    }

    fn v(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn literals_where_every_match_needs_one() {
        assert_eq!(lits("abc"), v(&["abc"]));
        assert_eq!(lits(r"\bauditd?\b"), v(&["audit"]));
        assert_eq!(lits("x+"), v(&["x"]));
        assert_eq!(lits("(foo|bar)baz"), v(&["barbaz", "foobaz"]));
        assert_eq!(
            lits(r"(^|\.)(xmr|monero|stratum|mine|pool)[.-]?[a-z0-9-]*\.(pool|mining|miner)\."),
            v(&[".miner.", ".mining.", ".pool."])
        );
        assert_eq!(
            lits(r"https?://kubernetes\.default(\.svc)?"),
            v(&["http://kubernetes.default", "https://kubernetes.default"])
        );
        assert_eq!(lits(r"\s(0|[Pp]ermissive)\b"), v(&["0", "permissive"]));
        // Case-insensitive: the variants fold into one lowercased literal (plus the Unicode ones
        // that fold to ASCII letters, e.g. the Kelvin sign for `k`).
        assert_eq!(lits("(?i)find"), v(&["find"]));
        assert_eq!(required_literals("FIND", true), v(&["find"]));
        let kelvin = required_literals("kube", true).expect("literals");
        assert!(kelvin.contains(&"kube".to_string()), "{kelvin:?}");
        assert!(kelvin.iter().any(|l| l.contains('\u{212a}')), "{kelvin:?}");
    }

    #[test]
    fn nothing_where_a_match_can_avoid_every_literal() {
        assert_eq!(lits(r"\d+"), None);
        assert_eq!(lits("a*"), None);
        assert_eq!(lits("(abc)?"), None);
        assert_eq!(lits("abc|.*"), None);
        assert_eq!(lits(r"\s-[a-zA-Z]*[LRD]"), v(&["-"]));
        assert_eq!(lits(""), None);
        assert_eq!(lits(r"^\b$"), None);
        assert_eq!(lits("(unclosed"), None);
    }

    /// Strings over an alphabet the patterns below draw their literals from, so matches are
    /// frequent.
    fn text() -> impl Strategy<Value = String> {
        proptest::string::string_regex(r"[a-cA-CkK\u{212a}x0-9 ./|:-]{0,24}").expect("strategy")
    }

    fn pattern() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            "[a-c]{1,3}".prop_map(|s| s),
            Just("[abk]".to_string()),
            Just(r"\d".to_string()),
            Just(r"\b".to_string()),
            Just("^".to_string()),
            Just(".".to_string()),
            Just(r"\.".to_string()),
            Just("(?i:ab)".to_string()),
            Just("(?i:k)".to_string()),
            Just(r"\s".to_string()),
            Just("x".to_string()),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 1..4).prop_map(|v| v.join("")),
                proptest::collection::vec(inner.clone(), 2..4)
                    .prop_map(|v| format!("(?:{})", v.join("|"))),
                (
                    inner.clone(),
                    prop_oneof![Just("*"), Just("+"), Just("?"), Just("{2}")]
                )
                    .prop_map(|(p, q)| format!("(?:{p}){q}")),
                inner.prop_map(|p| format!("({p})")),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Soundness: whenever the regex matches a string, the string contains one of the
        /// extracted literals (ignoring ASCII case, as the prefilter's scan does).
        #[test]
        fn every_match_contains_a_literal(p in pattern(), icase in any::<bool>(), texts in proptest::collection::vec(text(), 1..16)) {
            let re = RegexBuilder::new(&format!("(?s)(?:{p})")).case_insensitive(icase).build().expect("valid");
            if let Some(literals) = required_literals(&format!("(?s)(?:{p})"), icase) {
                prop_assert!(!literals.is_empty());
                for t in &texts {
                    for m in re.find_iter(t) {
                        let hay = m.as_str().to_ascii_lowercase();
                        prop_assert!(
                            literals.iter().any(|l| hay.contains(&l.to_ascii_lowercase())),
                            "{p:?} (icase {icase}) matched {:?} in {t:?}, none of {literals:?}", m.as_str()
                        );
                    }
                }
            }
        }

        /// The same over strings built to match: a match of the pattern itself.
        #[test]
        fn generated_matches_contain_a_literal(p in pattern(), icase in any::<bool>(), seed in "[a-cA-CkK\u{212a}x0-9 .|-]{0,40}") {
            let re = RegexBuilder::new(&format!("(?s)(?:{p})")).case_insensitive(icase).build().expect("valid");
            if let Some(literals) = required_literals(&format!("(?s)(?:{p})"), icase) {
                // Every substring of the seed that the regex matches in full.
                let chars: Vec<(usize, char)> = seed.char_indices().collect();
                let anchored = RegexBuilder::new(&format!("(?s)^(?:{p})$")).case_insensitive(icase).build().expect("valid");
                for (i, (a, _)) in chars.iter().enumerate() {
                    for (b, _) in chars.iter().skip(i).map(|x| (x.0, x.1)).chain([(seed.len(), ' ')]) {
                        if b < *a { continue; }
                        let sub = &seed[*a..b];
                        if anchored.is_match(sub) {
                            let hay = sub.to_ascii_lowercase();
                            prop_assert!(literals.iter().any(|l| hay.contains(&l.to_ascii_lowercase())),
                                "{p:?} (icase {icase}) matches {sub:?} wholly, none of {literals:?}");
                        }
                    }
                }
                let _ = re;
            }
        }
    }
}
