//! Compiles the sensitive-path patterns into the two LPM tries the kernel filter reads
//! (`prefixes` and `rests`, see `src/bpf/sensor.h`).
//!
//! A pattern is an absolute path prefix. One `*` may stand for exactly one whole path component
//! (`/proc/*/environ`, `/home/*/.kube/`). Patterns are matched against the path as the process
//! named it (absolute, or the cwd/dirfd path + the relative name); symlinks are not resolved.

/// Key bytes of the LPM tries: `u32 prefixlen` (bits) then 256 data bytes.
pub(crate) const KEY_LEN: usize = 260;
const DATA_LEN: usize = 256;
/// Map capacity of each trie (`max_entries` in the C source).
pub(crate) const MAX_ENTRIES: usize = 256;

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sensitive path pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: &'static str,
}

/// One entry for the `prefixes` trie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrefixEntry {
    pub key: Vec<u8>,
    pub plain: bool,
    pub write_only: bool,
    pub group: u8,
}

/// One entry for the `rests` trie: `[group][rest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RestEntry {
    pub group: u8,
    pub rest: Vec<u8>,
    pub write_only: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Compiled {
    pub prefixes: Vec<PrefixEntry>,
    pub rests: Vec<RestEntry>,
}

impl PrefixEntry {
    pub(crate) fn key_bytes(&self) -> [u8; KEY_LEN] {
        lpm_key(&self.key)
    }
    /// `struct prefix_val`: plain, plen, group, write_only.
    pub(crate) fn value_bytes(&self) -> [u8; 16] {
        let mut v = [0u8; 16];
        v[0..4].copy_from_slice(&u32::from(self.plain).to_le_bytes());
        v[4..8].copy_from_slice(&(self.key.len() as u32).to_le_bytes());
        v[8..12].copy_from_slice(&u32::from(self.group).to_le_bytes());
        v[12..16].copy_from_slice(&u32::from(self.write_only).to_le_bytes());
        v
    }
}

impl RestEntry {
    pub(crate) fn key_bytes(&self) -> [u8; KEY_LEN] {
        let mut data = Vec::with_capacity(self.rest.len() + 1);
        data.push(self.group);
        data.extend_from_slice(&self.rest);
        lpm_key(&data)
    }
    pub(crate) fn value_bytes(&self) -> [u8; 4] {
        u32::from(self.write_only).to_le_bytes()
    }
}

fn lpm_key(data: &[u8]) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    let n = data.len().min(DATA_LEN);
    k[0..4].copy_from_slice(&((n * 8) as u32).to_le_bytes());
    k[4..4 + n].copy_from_slice(&data[..n]);
    k
}

enum Pattern {
    Plain(Vec<u8>),
    Wild { base: Vec<u8>, rest: Vec<u8> },
}

fn parse(p: &str) -> Result<Pattern, PatternError> {
    let err = |reason| PatternError {
        pattern: p.to_string(),
        reason,
    };
    if !p.starts_with('/') {
        return Err(err("must be an absolute path"));
    }
    if p.len() > 200 {
        return Err(err("longer than 200 bytes"));
    }
    match p.matches('*').count() {
        0 => Ok(Pattern::Plain(p.as_bytes().to_vec())),
        1 => {
            let (base, rest) = p
                .split_once('*')
                .ok_or_else(|| err("unreadable wildcard"))?;
            if !base.ends_with('/') || !rest.starts_with('/') || rest.len() < 2 {
                return Err(err(
                    "`*` must be a whole path component followed by more path, as in /proc/*/environ",
                ));
            }
            Ok(Pattern::Wild {
                base: base.as_bytes().to_vec(),
                rest: rest.as_bytes().to_vec(),
            })
        }
        _ => Err(err("at most one `*` is supported")),
    }
}

/// Compiles read+write patterns and write-only patterns (matched only by opens for write and
/// unlinks) into trie entries.
pub(crate) fn compile(
    read_write: &[String],
    write_only: &[String],
) -> Result<Compiled, PatternError> {
    // (pattern, write_only)
    let mut plains: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut wilds: Vec<(Vec<u8>, Vec<u8>, bool)> = Vec::new();
    for (list, wo) in [(read_write, false), (write_only, true)] {
        for p in list {
            match parse(p)? {
                Pattern::Plain(b) => plains.push((b, wo)),
                Pattern::Wild { base, rest } => wilds.push((base, rest, wo)),
            }
        }
    }
    let mut bases: Vec<Vec<u8>> = Vec::new();
    for (base, _, _) in &wilds {
        if !bases.contains(base) {
            bases.push(base.clone());
        }
    }
    if bases.len() > 255 {
        return Err(PatternError {
            pattern: String::new(),
            reason: "more than 255 wildcard prefixes",
        });
    }
    let group_of = |key: &[u8]| -> u8 {
        // the longest wildcard base that is a prefix of `key`
        bases
            .iter()
            .enumerate()
            .filter(|(_, b)| key.starts_with(b))
            .max_by_key(|(_, b)| b.len())
            .map(|(i, _)| (i + 1) as u8)
            .unwrap_or(0)
    };

    let mut keys: Vec<Vec<u8>> = plains.iter().map(|(k, _)| k.clone()).collect();
    keys.extend(bases.iter().cloned());
    keys.sort();
    keys.dedup();
    let mut out = Compiled::default();
    for key in keys {
        let covering: Vec<bool> = plains
            .iter()
            .filter(|(p, _)| key.starts_with(p))
            .map(|(_, wo)| *wo)
            .collect();
        out.prefixes.push(PrefixEntry {
            plain: !covering.is_empty(),
            write_only: !covering.is_empty() && covering.iter().all(|wo| *wo),
            group: group_of(&key),
            key,
        });
    }
    for (gi, base) in bases.iter().enumerate() {
        let group = (gi + 1) as u8;
        let mine: Vec<&(Vec<u8>, Vec<u8>, bool)> =
            wilds.iter().filter(|(b, _, _)| b == base).collect();
        let mut rests: Vec<Vec<u8>> = mine.iter().map(|(_, r, _)| r.clone()).collect();
        rests.sort();
        rests.dedup();
        for rest in rests {
            let covering: Vec<bool> = mine
                .iter()
                .filter(|(_, r, _)| rest.starts_with(r))
                .map(|(_, _, wo)| *wo)
                .collect();
            out.rests.push(RestEntry {
                group,
                write_only: covering.iter().all(|wo| *wo),
                rest,
            });
        }
    }
    if out.prefixes.len() > MAX_ENTRIES || out.rests.len() > MAX_ENTRIES {
        return Err(PatternError {
            pattern: String::new(),
            reason: "more than 256 patterns",
        });
    }
    Ok(out)
}

/// The same matching the kernel does, for tests and for userspace re-checks.
#[cfg(test)]
pub(crate) fn matches(c: &Compiled, path: &str, is_write: bool) -> bool {
    let p = path.as_bytes();
    let Some(e) = c
        .prefixes
        .iter()
        .filter(|e| p.starts_with(&e.key))
        .max_by_key(|e| e.key.len())
    else {
        return false;
    };
    if e.plain && (is_write || !e.write_only) {
        return true;
    }
    if e.group == 0 {
        return false;
    }
    let after = &p[e.key.len()..];
    let Some(slash) = after.iter().position(|&b| b == b'/') else {
        return false;
    };
    if slash == 0 {
        return false;
    }
    let rest = &after[slash..];
    c.rests
        .iter()
        .filter(|r| r.group == e.group && rest.starts_with(&r.rest))
        .max_by_key(|r| r.rest.len())
        .is_some_and(|r| is_write || !r.write_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn plain_and_wildcard_patterns() {
        let c = compile(
            &s(&[
                "/etc/shadow",
                "/proc/*/environ",
                "/home/*/.kube/",
                "/home/*/.bash_history",
                "/etc/kubernetes/",
            ]),
            &s(&["/etc/passwd", "/var/log/"]),
        )
        .expect("compiles");
        assert!(matches(&c, "/etc/shadow", false));
        assert!(matches(&c, "/etc/kubernetes/admin.conf", false));
        assert!(!matches(&c, "/etc/hostname", false));
        assert!(matches(&c, "/proc/1234/environ", false));
        assert!(matches(&c, "/proc/self/environ", false));
        assert!(!matches(&c, "/proc/1234/status", false));
        assert!(!matches(&c, "/proc/environ", false));
        assert!(matches(&c, "/home/alice/.kube/config", false));
        assert!(matches(&c, "/home/bob/.bash_history", true));
        assert!(!matches(&c, "/home/bob/notes.txt", false));
        assert!(
            !matches(&c, "/etc/passwd", false),
            "write-only entries ignore reads"
        );
        assert!(matches(&c, "/etc/passwd", true));
        assert!(matches(&c, "/var/log/syslog", true));
        assert!(!matches(&c, "/var/log/syslog", false));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for p in ["etc/shadow", "/a/*/b/*/c", "/proc/*", "/proc/x*/environ"] {
            assert!(compile(&s(&[p]), &[]).is_err(), "{p} accepted");
        }
    }

    #[test]
    fn key_layout() {
        let e = PrefixEntry {
            key: b"/etc/".to_vec(),
            plain: true,
            write_only: false,
            group: 2,
        };
        let k = e.key_bytes();
        assert_eq!(u32::from_le_bytes([k[0], k[1], k[2], k[3]]), 40);
        assert_eq!(&k[4..9], b"/etc/");
        let v = e.value_bytes();
        assert_eq!(v[0], 1);
        assert_eq!(v[4], 5);
        assert_eq!(v[8], 2);
    }
}
