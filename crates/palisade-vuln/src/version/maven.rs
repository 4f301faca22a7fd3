//! Maven versions, ordered like Maven 3.9's `ComparableVersion`.
//!
//! A version becomes a tree of items: numbers, qualifiers (`alpha < beta < milestone < rc = cr <
//! snapshot < "" = ga = final = release < sp`, unknown qualifiers after those, alphabetically),
//! "combinations" of a qualifier and a number (`rc1`, `alpha-2`), and sub-lists started by a `-`
//! or a digit/letter transition. Trailing "null" items (`0`, empty qualifier) are trimmed in
//! each list. Comparison is case-insensitive. Only ASCII versions are accepted.

use super::{VersionError, VersionScheme, cmp_digits};
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// Digits without leading zeros (`"0"` for zero).
    Num(String),
    /// A qualifier after aliasing (`cr` → `rc`, `a1` → `alpha`).
    Str(String),
    /// A qualifier immediately followed by a number, e.g. `rc1`.
    Comb(String, String),
    List(Vec<Item>),
}

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE_INDEX: &str = "5";

fn qualifier(value: &str, followed_by_digit: bool) -> String {
    let v = match (followed_by_digit, value) {
        (true, "a") => "alpha",
        (true, "b") => "beta",
        (true, "m") => "milestone",
        (_, "cr") => "rc",
        (_, v) => v,
    };
    v.to_string()
}

/// A string whose lexical order is the qualifier order.
fn comparable(q: &str) -> String {
    if matches!(q, "ga" | "final" | "release") {
        return RELEASE_INDEX.to_string();
    }
    match QUALIFIERS.iter().position(|&k| k == q) {
        Some(i) => i.to_string(),
        None => format!("{}-{}", QUALIFIERS.len(), q),
    }
}

fn strip_zeros(d: &str) -> String {
    let t = d.trim_start_matches('0');
    if t.is_empty() { "0" } else { t }.to_string()
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Num(n) => n == "0",
            Item::Str(s) => s.is_empty(),
            Item::Comb(..) => false,
            Item::List(l) => l.is_empty(),
        }
    }

    fn parse(is_comb: bool, is_digit: bool, buf: &str) -> Item {
        if is_comb {
            let joined: String = buf.chars().filter(|&c| c != '-').collect();
            let idx = joined.find(|c: char| c.is_ascii_digit()).unwrap_or(0);
            let (s, d) = joined.split_at(idx);
            Item::Comb(qualifier(s, true), strip_zeros(d))
        } else if is_digit {
            Item::Num(strip_zeros(buf))
        } else {
            Item::Str(qualifier(buf, false))
        }
    }

    /// `self` against an absent item (padding).
    fn cmp_null(&self) -> Ordering {
        match self {
            Item::Num(n) => {
                if n == "0" {
                    Ordering::Equal
                } else {
                    Ordering::Greater
                }
            }
            Item::Str(s) | Item::Comb(s, _) => comparable(s).as_str().cmp(RELEASE_INDEX),
            Item::List(l) => l
                .iter()
                .map(Item::cmp_null)
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal),
        }
    }

    fn cmp_item(&self, other: &Item) -> Ordering {
        use Item::*;
        use Ordering::*;
        match (self, other) {
            (Num(a), Num(b)) => cmp_digits(a.as_bytes(), b.as_bytes()),
            (Num(_), _) => Greater,
            (Str(_), Num(_)) => Less,
            (Str(a), Str(b)) => comparable(a).cmp(&comparable(b)),
            (Str(a), Comb(b, _)) => match comparable(a).cmp(&comparable(b)) {
                Equal => Less,
                o => o,
            },
            (Str(_), List(_)) => Less,
            (Comb(..), Num(_)) => Less,
            (Comb(a, _), Str(b)) => match comparable(a).cmp(&comparable(b)) {
                Equal => Greater,
                o => o,
            },
            (Comb(..), List(_)) => Less,
            (Comb(a, x), Comb(b, y)) => match comparable(a).cmp(&comparable(b)) {
                Equal => cmp_digits(x.as_bytes(), y.as_bytes()),
                o => o,
            },
            (List(_), Num(_)) => Less,
            (List(_), Str(_) | Comb(..)) => Greater,
            (List(a), List(b)) => {
                for k in 0..a.len().max(b.len()) {
                    let o = match (a.get(k), b.get(k)) {
                        (Some(x), Some(y)) => x.cmp_item(y),
                        (Some(x), None) => x.cmp_null(),
                        (None, Some(y)) => y.cmp_null().reverse(),
                        (None, None) => Equal,
                    };
                    if o != Equal {
                        return o;
                    }
                }
                Equal
            }
        }
    }
}

/// Removes "null" items that end the list or precede a qualifier.
fn normalize(list: &mut Vec<Item>) {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        if !list[i].is_null() {
            continue;
        }
        let remove = match list.get(i + 1) {
            None | Some(Item::Str(_)) => true,
            Some(Item::List(next)) => matches!(next.first(), Some(Item::Comb(..) | Item::Str(_))),
            Some(_) => false,
        };
        if remove {
            list.remove(i);
        }
    }
}

/// Parses a version into its item tree.
fn parse(input: &str) -> Result<Item, VersionError> {
    let err = |reason: &str| VersionError::new(VersionScheme::Maven, input, reason);
    let v = input.trim();
    if v.is_empty() {
        return Err(err("empty version"));
    }
    if !v.is_ascii()
        || v.bytes()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Err(err("non-ASCII, whitespace or control characters"));
    }
    let v = v.to_ascii_lowercase();
    let b = v.as_bytes();
    // stack[0] is the root; each later entry is the newest sub-list of the one before it.
    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    let mut is_digit = false;
    let mut is_comb = false;
    let mut start = 0usize;
    let mut i = 0usize;
    while i < b.len() {
        let c = b[i];
        let top = stack.len() - 1;
        if c == b'.' {
            let item = if i == start {
                Item::Num("0".into())
            } else {
                Item::parse(is_comb, is_digit, &v[start..i])
            };
            stack[top].push(item);
            is_comb = false;
            start = i + 1;
        } else if c == b'-' {
            if i == start {
                stack[top].push(Item::Num("0".into()));
            } else {
                if !is_digit && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    // `X-1` is read as `X1`.
                    is_comb = true;
                    i += 1;
                    continue;
                }
                stack[top].push(Item::parse(is_comb, is_digit, &v[start..i]));
            }
            start = i + 1;
            if !stack[top].is_empty() {
                stack.push(Vec::new());
            }
            is_comb = false;
        } else if c.is_ascii_digit() {
            if !is_digit && i > start {
                is_comb = true;
                if !stack[top].is_empty() {
                    stack.push(Vec::new());
                }
            }
            is_digit = true;
        } else {
            if is_digit && i > start {
                stack[top].push(Item::parse(is_comb, true, &v[start..i]));
                start = i;
                stack.push(Vec::new());
                is_comb = false;
            }
            is_digit = false;
        }
        i += 1;
    }
    if b.len() > start {
        let top = stack.len() - 1;
        if !is_digit && !stack[top].is_empty() {
            stack.push(Vec::new());
        }
        let top = stack.len() - 1;
        stack[top].push(Item::parse(is_comb, is_digit, &v[start..]));
    }
    while stack.len() > 1 {
        let mut child = stack.pop().unwrap_or_default();
        normalize(&mut child);
        if let Some(parent) = stack.last_mut() {
            parent.push(Item::List(child));
        }
    }
    let mut root = stack.pop().unwrap_or_default();
    normalize(&mut root);
    Ok(Item::List(root))
}

/// Orders two Maven versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(parse(a)?.cmp_item(&parse(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn c(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap()
    }

    #[test]
    fn pom_reference_examples() {
        // maven.apache.org/pom.html, "Version Order Specification".
        assert_eq!(c("1", "1.1"), Less);
        assert_eq!(c("1-snapshot", "1"), Less);
        assert_eq!(c("1", "1-sp"), Less);
        assert_eq!(c("1-foo2", "1-foo10"), Less);
        assert_eq!(c("1.foo", "1-foo"), Equal);
        assert_eq!(c("1-foo", "1-1"), Less);
        assert_eq!(c("1-1", "1.1"), Less);
        for v in ["1.ga", "1-ga", "1-0", "1.0", "1"] {
            assert_eq!(c(v, "1"), Equal, "{v}");
        }
        assert_eq!(c("1-sp", "1-ga"), Greater);
        assert_eq!(c("1-sp.1", "1-ga.1"), Greater);
        assert_eq!(c("1-a1", "1-alpha-1"), Equal);
        // The page also lists `1-sp-1 < 1-ga-1 = 1-1`; Maven 3.9 reads `X-1` as the combination
        // `X1` (MNG-7559), so the released implementation orders them by qualifier instead.
        assert_eq!(c("1-sp-1", "1-ga-1"), Greater);
        assert_eq!(c("1-ga-1", "1-ga1"), Equal);
        assert_eq!(c("1-ga-1", "1-1"), Less);
    }

    #[test]
    fn javadoc_examples() {
        assert_eq!(c("1.0.RC2", "1.0-RC3"), Less);
        assert_eq!(c("1.0-RC3", "1.0.1"), Less);
        assert_eq!(c("1.0.X2", "1.0-X3"), Less);
        assert_eq!(c("1.0-X3", "1.0.1"), Less);
    }

    #[test]
    fn qualifier_chain() {
        let chain = [
            "1.0-alpha-1",
            "1.0-alpha-2",
            "1.0-beta-1",
            "1.0-milestone-1",
            "1.0-rc-1",
            "1.0-SNAPSHOT",
            "1.0",
            "1.0-sp-1",
            "1.0-abc",
            "1.0-xyz",
            "1.0-1",
            "1.0.1",
            "1.1",
        ];
        for w in chain.windows(2) {
            assert_eq!(c(w[0], w[1]), Less, "{} < {}", w[0], w[1]);
            assert_eq!(c(w[1], w[0]), Greater, "{} > {}", w[1], w[0]);
        }
        assert_eq!(c("1.0-CR1", "1.0-rc1"), Equal);
        assert_eq!(c("1.0.Final", "1.0"), Equal);
        assert_eq!(c("2.13.4.1", "2.13.4"), Greater);
        assert_eq!(c("9.4.41.v20210516", "9.4.40.v20210413"), Greater);
        assert_eq!(c("2.0.0-M1", "2.0.0"), Less);
        assert_eq!(c("1.10", "1.9"), Greater);
        assert_eq!(
            c("1.0.0.99999999999999999999", "1.0.0.100000000000000000000"),
            Less
        );
    }

    #[test]
    fn invalid() {
        assert!(compare("", "1").is_err());
        assert!(compare("1.0 final", "1").is_err());
        assert!(compare("1.é", "1").is_err());
    }
}
