//! A bounded table of processes (pid → parent, exe, command line), seeded from `/proc` when the
//! sensor starts and kept current by exec and exit records, so non-exec events and parents get
//! their executable and command line without reading `/proc` on every event, and so ancestors of
//! a short-lived process are still known after it is gone.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

/// What the table knows about one process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessEntry {
    pub ppid: u32,
    pub comm: String,
    pub exe: String,
    pub cmdline: String,
}

/// Counters of the process table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessCounters {
    pub hits: u64,
    pub misses: u64,
    /// Misses answered by reading `/proc/<pid>`.
    pub read_from_proc: u64,
    pub evictions: u64,
    /// Processes read when the table was seeded.
    pub seeded: u64,
}

/// Longest command line kept per process (bytes); argv beyond it is cut.
pub const MAX_CMDLINE: usize = 4096;

/// Exited processes kept for late events and their children's ancestry.
const EXITED_KEPT: usize = 1024;

struct Slot {
    entry: ProcessEntry,
    used: u64,
    /// 0 while alive; the exit's sequence number once it exited.
    exited: u64,
}

/// pid → [`ProcessEntry`], at most `capacity` entries.
pub struct ProcessTable {
    proc_root: PathBuf,
    capacity: usize,
    entries: HashMap<u32, Slot>,
    /// (pid, exit sequence): an entry is dropped when its exit leaves this queue, unless the pid
    /// was reused (exec'd again) since.
    exited: VecDeque<(u32, u64)>,
    exit_seq: u64,
    tick: u64,
    counters: ProcessCounters,
}

impl ProcessTable {
    /// An empty table reading misses from `proc_root`.
    pub fn new(proc_root: PathBuf, capacity: usize) -> ProcessTable {
        ProcessTable {
            proc_root,
            capacity: capacity.max(16),
            entries: HashMap::new(),
            exited: VecDeque::new(),
            exit_seq: 0,
            tick: 0,
            counters: ProcessCounters::default(),
        }
    }

    /// Reads every process under the proc root (up to the capacity). Returns how many.
    pub fn seed(&mut self) -> usize {
        let Ok(dir) = std::fs::read_dir(&self.proc_root) else {
            return 0;
        };
        let mut seeded = 0;
        for item in dir.flatten() {
            if self.entries.len() >= self.capacity {
                break;
            }
            let Some(pid) = item
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(entry) = read_process(&self.proc_root, pid) {
                self.insert(pid, entry);
                seeded += 1;
            }
        }
        self.counters.seeded += seeded as u64;
        seeded
    }

    /// The process `pid`: from the table, or read from `/proc` (and remembered) on a miss.
    pub fn get(&mut self, pid: u32) -> Option<ProcessEntry> {
        self.tick += 1;
        if let Some(slot) = self.entries.get_mut(&pid) {
            slot.used = self.tick;
            self.counters.hits += 1;
            return Some(slot.entry.clone());
        }
        self.counters.misses += 1;
        if pid == 0 {
            return None;
        }
        let entry = read_process(&self.proc_root, pid)?;
        self.counters.read_from_proc += 1;
        self.insert(pid, entry.clone());
        Some(entry)
    }

    /// The process only if the table has it (no `/proc` read): for walking ancestors.
    pub fn peek(&self, pid: u32) -> Option<&ProcessEntry> {
        self.entries.get(&pid).map(|slot| &slot.entry)
    }

    /// Records an exec: `pid` now runs `exe` with `cmdline`.
    pub fn exec(&mut self, pid: u32, entry: ProcessEntry) {
        self.tick += 1;
        self.insert(pid, entry);
    }

    /// Records an exit. The entry stays for the last [`EXITED_KEPT`] exits, so late events of
    /// the process and the ancestry of its orphans still resolve.
    pub fn exit(&mut self, pid: u32) {
        let Some(slot) = self.entries.get_mut(&pid) else {
            return;
        };
        self.exit_seq += 1;
        slot.exited = self.exit_seq;
        self.exited.push_back((pid, self.exit_seq));
        while self.exited.len() > EXITED_KEPT {
            if let Some((old, seq)) = self.exited.pop_front()
                && self.entries.get(&old).is_some_and(|s| s.exited == seq)
            {
                self.entries.remove(&old);
            }
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Counters so far.
    pub fn counters(&self) -> ProcessCounters {
        self.counters
    }

    fn insert(&mut self, pid: u32, entry: ProcessEntry) {
        if !self.entries.contains_key(&pid) && self.entries.len() >= self.capacity {
            // Exited processes go first, then the least recently used; an eighth at a time so
            // the scan is amortised.
            let mut ages: Vec<(bool, u64, u32)> = self
                .entries
                .iter()
                .map(|(p, slot)| (slot.exited == 0, slot.used, *p))
                .collect();
            ages.sort_unstable();
            for (_, _, old) in ages.into_iter().take((self.capacity / 8).max(1)) {
                self.entries.remove(&old);
                self.counters.evictions += 1;
            }
        }
        self.entries.insert(
            pid,
            Slot {
                entry,
                used: self.tick,
                exited: 0,
            },
        );
    }
}

/// Reads `/proc/<pid>/{stat,exe,cmdline}`. `None` when the process is gone.
pub fn read_process(proc_root: &Path, pid: u32) -> Option<ProcessEntry> {
    let dir = proc_root.join(pid.to_string());
    let stat = std::fs::read(dir.join("stat")).ok()?;
    let (comm, ppid) = parse_stat(&stat)?;
    // Kernel threads and processes of other users we may not inspect have no readable exe.
    let exe = std::fs::read_link(dir.join("exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cmdline = std::fs::read(dir.join("cmdline"))
        .map(|raw| cmdline_from_raw(&raw))
        .unwrap_or_default();
    Some(ProcessEntry {
        ppid,
        comm,
        exe,
        cmdline,
    })
}

/// `comm` and `ppid` from `/proc/<pid>/stat`. The name sits in parentheses and may itself
/// contain `)` and spaces, so the fields after it start at the last `)`.
pub fn parse_stat(stat: &[u8]) -> Option<(String, u32)> {
    let (comm, rest) = split_stat(stat)?;
    let mut fields = rest.split_ascii_whitespace();
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((comm, ppid))
}

fn split_stat(stat: &[u8]) -> Option<(String, &str)> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let comm = String::from_utf8_lossy(&stat[open + 1..close]).into_owned();
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    Some((comm, rest))
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks since boot.
pub fn parse_start_ticks(stat: &[u8]) -> Option<u64> {
    let (_, rest) = split_stat(stat)?;
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// When process `pid` started, in boot-clock nanoseconds (clock-tick resolution).
pub fn process_start_boot_ns(proc_root: &Path, pid: u32) -> Option<u64> {
    let stat = std::fs::read(proc_root.join(pid.to_string()).join("stat")).ok()?;
    let ticks = parse_start_ticks(&stat)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0)?;
    Some(ticks.saturating_mul(1_000_000_000) / hz)
}

/// NUL-separated argv → one line with single spaces, cut at [`MAX_CMDLINE`] bytes.
pub fn cmdline_from_raw(raw: &[u8]) -> String {
    let raw = &raw[..raw.len().min(MAX_CMDLINE)];
    let text: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    text.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_hostile_comm() {
        let stat = b"1234 (evil) (x) 9) S 77 1234 1234 0 -1 4194304";
        assert_eq!(parse_stat(stat), Some(("evil) (x) 9".to_string(), 77)));
        assert_eq!(parse_stat(b"garbage"), None);
        assert_eq!(parse_stat(b"1 (a) S notanumber"), None);
        let full = b"1 (a b) S 0 1 1 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 1 0 4242 1000 10";
        assert_eq!(parse_start_ticks(full), Some(4242));
        assert_eq!(parse_start_ticks(b"1 (a) S 0 1"), None);
    }

    #[test]
    fn cmdline_joins_and_bounds() {
        assert_eq!(cmdline_from_raw(b"sh\0-c\0echo hi\0"), "sh -c echo hi");
        let long = vec![b'a'; MAX_CMDLINE * 2];
        assert_eq!(cmdline_from_raw(&long).len(), MAX_CMDLINE);
    }

    #[test]
    fn seeded_from_real_proc_and_bounded() {
        let mut table = ProcessTable::new(PathBuf::from("/proc"), 1 << 16);
        assert!(table.seed() > 0);
        let me = table.get(std::process::id()).expect("this test process");
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert_eq!(
            me.exe,
            std::env::current_exe().expect("exe").to_string_lossy()
        );
        let mut small = ProcessTable::new(PathBuf::from("/nonexistent"), 16);
        for pid in 1..100 {
            small.exec(
                pid,
                ProcessEntry {
                    ppid: pid - 1,
                    comm: format!("p{pid}"),
                    ..Default::default()
                },
            );
        }
        assert!(small.len() <= 16);
        assert!(small.counters().evictions > 0);
        assert_eq!(small.get(99).map(|e| e.comm), Some("p99".to_string()));
        assert_eq!(small.get(1), None, "evicted and not in /proc");
    }

    #[test]
    fn exited_entries_kept_then_dropped() {
        let mut table = ProcessTable::new(PathBuf::from("/nonexistent"), 1 << 16);
        for pid in 1..=(EXITED_KEPT as u32 + 10) {
            table.exec(pid, ProcessEntry::default());
            table.exit(pid);
        }
        assert!(table.peek(1).is_none(), "oldest exits are dropped");
        assert!(table.peek(EXITED_KEPT as u32 + 10).is_some());
        assert_eq!(table.len(), EXITED_KEPT);
        // A pid that exited and was reused is not dropped by its old exit.
        let mut reuse = ProcessTable::new(PathBuf::from("/nonexistent"), 1 << 16);
        reuse.exec(7, ProcessEntry::default());
        reuse.exit(7);
        reuse.exec(
            7,
            ProcessEntry {
                comm: "again".into(),
                ..Default::default()
            },
        );
        for pid in 100..(100 + EXITED_KEPT as u32 + 5) {
            reuse.exec(pid, ProcessEntry::default());
            reuse.exit(pid);
        }
        assert_eq!(reuse.peek(7).map(|e| e.comm.as_str()), Some("again"));
    }
}
